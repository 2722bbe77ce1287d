"""``detector bridge``: sources -> principal-keyed records on Kafka, positions after the acks.

Against tansu: every event of a simulated archive arrives once, each record holds one
principal's events and sits on that principal's only partition, and each principal's events
come in exactly the order the single-process runtime scores them (the reorder buffer's
release order). With a stand-in producer: positions are stored only for what Kafka
acknowledged, a producer failure rewinds the source to the checkpoint with nothing lost, and a
restart resumes after the stored positions.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from detector import settings as settings_mod
from detector import simulate
from detector.event import Event
from detector.ingest import Ingest
from detector.metrics import Metrics
from detector.ordering import Reorder
from detector.replay import open_inputs
from detector.runtime import bridge as bridge_mod
from detector.runtime.bridge import Bridge, PositionFile, RawIngest, bridge_main
from detector.sources.files import FileSource
from tests.services import Service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bridge") / "archive"
    simulate.write_archive(simulate.plan(days=2, seed=5, principals=20, test_days=1), out)
    return out


def release_order(archive: Path, lateness_s: float) -> dict[str, list[str]]:
    """Per principal, the eventIDs in the order the single-process runtime scores them."""
    reorder: Reorder[Event] = Reorder(lateness_s)
    ingest = Ingest()
    released: list[Event] = []
    for data, position, source in open_inputs([str(archive)]):
        released.extend(reorder.push(ingest.blob(data, position, source)))
    released.extend(reorder.flush())
    out: dict[str, list[str]] = defaultdict(list)
    for ev in released:
        out[ev.principal.key].append(ev.event_id)
    return out


def settings_for(tmp_path: Path, bootstrap: str = "127.0.0.1:9", **kafka: Any) -> settings_mod.Settings:
    return settings_mod.Settings.model_validate(
        {
            "state_dir": str(tmp_path / "state"),
            "checkpoint_interval_s": 0.001,  # checkpoint after every poll
            "kafka": {"bootstrap_servers": [bootstrap], "events_topic": "events", "partitions": 4, **kafka},
        }
    )


def test_records_are_keyed_by_principal_in_scoring_order(
    kafka_broker: Service, archive: Path, tmp_path: Path
) -> None:
    topic = f"bridge-{uuid.uuid4().hex[:8]}"
    settings = settings_for(tmp_path, kafka_broker.endpoint, events_topic=topic)
    summary = asyncio.run(
        bridge_main(settings, lambda: FileSource([str(archive)]), Metrics.create(), inputs=[str(archive)])
    )

    from tests.integration.test_faust_worker import read_topic

    records = read_topic(kafka_broker.endpoint, topic)
    seen: dict[str, list[str]] = defaultdict(list)
    partition_of: dict[str, set[int]] = defaultdict(set)
    for partition, recs in records.items():
        for _, key, value in recs:
            for line in (value or b"").split(b"\n"):
                ev = Event.of(orjson.loads(line))
                assert key == ev.principal.key.encode(), "a record holds one principal's events"
                seen[ev.principal.key].append(ev.event_id)
                partition_of[ev.principal.key].add(partition)

    expected = release_order(archive, settings.pipeline.allowed_lateness_s)
    assert summary.produced == sum(len(v) for v in expected.values())
    assert summary.records_out < summary.produced, "a principal's events should be packed"
    assert dict(seen) == dict(expected)  # same events, once each, in the same order per principal
    assert all(len(p) == 1 for p in partition_of.values())
    assert len({p for ps in partition_of.values() for p in ps}) > 1, "principals spread over partitions"
    stored = orjson.loads((tmp_path / "state" / "bridge" / "positions.json").read_bytes())
    assert stored["source_id"] == f"file:{archive}"
    assert stored["positions"][str(archive)].endswith("#*")


# -- stand-in producer: delivery is in our hands --------------------------------------------------
class FakeProducer:
    """``send`` queues; ``flush`` acknowledges everything queued, or fails it while ``down``."""

    def __init__(self, down_flushes: int = 0) -> None:
        self.delivered: list[tuple[bytes, bytes]] = []
        self.pending: list[tuple[asyncio.Future[Any], bytes, bytes]] = []
        self.down_flushes = down_flushes

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((fut, key, value))
        return fut

    async def flush(self) -> None:
        pending, self.pending = self.pending, []
        for fut, key, value in pending:
            if self.down_flushes:
                fut.set_exception(KafkaConnectionError("broker down"))
            else:
                fut.set_result(None)
                self.delivered.append((key, value))
        if self.down_flushes:
            self.down_flushes -= 1

    def event_ids(self) -> list[str]:
        return [orjson.loads(line)["eventID"] for _, v in self.delivered for line in v.split(b"\n")]


def run(bridge: Bridge, **kwargs: Any) -> bridge_mod.BridgeSummary:
    return asyncio.run(bridge.run(**kwargs))


def make_bridge(settings: settings_mod.Settings, archive: Path, producer: FakeProducer) -> Bridge:
    checkpoint = PositionFile(settings.state_dir / "positions.json", "file:test")
    return Bridge(settings, lambda: FileSource([str(archive)]), producer, checkpoint, ingest=RawIngest())


def test_positions_are_stored_only_after_kafka_acknowledges(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge_mod, "MAX_RECORDS_PER_POLL", 50)
    monkeypatch.setattr(bridge_mod, "BACKOFF_FIRST_S", 0.01)
    settings = settings_for(tmp_path)
    producer = FakeProducer(down_flushes=3)
    saved: list[dict[str, str]] = []
    bridge = make_bridge(settings, archive, producer)
    real_save = bridge.checkpoint.save

    def save(positions: dict[str, str]) -> None:
        # every event sent so far from the records these positions cover must be delivered
        assert not producer.pending
        saved.append(positions)
        real_save(positions)

    monkeypatch.setattr(bridge.checkpoint, "save", save)
    summary = run(bridge)

    assert summary.rewinds == 3
    expected = release_order(archive, settings.pipeline.allowed_lateness_s)
    all_ids = {e for ids in expected.values() for e in ids}
    delivered = producer.event_ids()
    assert set(delivered) == all_ids, "nothing lost across the rewinds"
    assert saved and saved[-1][str(archive)].endswith("#*")


def test_restart_resumes_after_the_stored_positions(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge_mod, "MAX_RECORDS_PER_POLL", 50)
    settings = settings_for(tmp_path)
    first = FakeProducer()
    stop = asyncio.Event()
    bridge = make_bridge(settings, archive, first)
    real_send = first.send

    async def send(topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        if len(first.pending) + len(first.delivered) > 200:
            stop.set()  # stop mid-archive, with events still held in the reorder buffer
        return await real_send(topic, value, key)

    monkeypatch.setattr(first, "send", send)
    run(bridge, stop=stop)
    assert 0 < len(first.delivered)
    assert PositionFile(settings.state_dir / "positions.json", "file:test").load(), "some positions were stored"

    second = FakeProducer()
    run(make_bridge(settings, archive, second))
    expected = {e for ids in release_order(archive, settings.pipeline.allowed_lateness_s).values() for e in ids}
    resumed = second.event_ids()
    assert set(first.event_ids()) | set(resumed) == expected, "nothing lost over the restart"
    assert len(resumed) < len(expected), "the second run resumed, it did not start over"
    assert not set(first.event_ids()) & set(resumed), "a graceful stop drains, so nothing is sent twice"
