"""Checkpoints: exact round trip, atomic replace with fallback, speed at 100k principals, and a
runtime resumed from any checkpoint ending exactly where an uninterrupted run ends."""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from detector import simulate
from detector.alert import KINDS
from detector.baseline import ENCODED_SIZE, STATE_FORMAT
from detector.ingest import Ingest
from detector.metrics import Metrics
from detector.ordering import SeenIds
from detector.pipeline import Detector
from detector.runtime.checkpoint import (
    CURRENT,
    MAGIC,
    PREVIOUS,
    Checkpoint,
    CheckpointError,
    LocalCheckpointStore,
    decode,
    encode,
    seed,
)
from detector.runtime.local import LiveReorder, Runtime, resumable
from detector.runtime.local import source_id as source_id_of
from detector.settings import Settings, load
from detector.sources.files import FileSource
from tests.factories import T0, ListSink, assumed_role, event


def _checkpoint(n: int = 3) -> Checkpoint:
    seen = SeenIds(3600)
    for i in range(50):
        seen.add(f"id-{i}", T0 + i)
    evs = [event(t=T0 + i, identity=assumed_role("app", f"i-{i:017x}")) for i in range(n)]
    return Checkpoint(
        source_id="kinesis:trail",
        positions={"shardId-000000000000": "4960" * 10, "shardId-000000000001": "END"},
        store={"arn:aws:iam::1:user/alice": b"\x01" * ENCODED_SIZE, "ünïcode/\udcff": b""},
        seen=seen.encode(),
        pending=evs[:1],
        held=evs[1:],
        watermark_max_time=T0 + 99.5,
        emitted=["abc:open:1", "abc:update:10"],
        created=123.0,
    )


def test_a_checkpoint_with_another_baseline_layout_is_refused_with_the_way_out() -> None:
    data = encode(_checkpoint())
    # Rewrite the header as an older version wrote it (state format 1), keeping the CRC valid.
    hlen = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "little")
    header = orjson.loads(data[len(MAGIC) + 4 : len(MAGIC) + 4 + hlen])
    header["state_format"] = STATE_FORMAT - 1
    new_header = orjson.dumps(header)
    body = MAGIC + len(new_header).to_bytes(4, "little") + new_header + data[len(MAGIC) + 4 + hlen : -4]
    with pytest.raises(CheckpointError, match=r"state format .* delete the checkpoint"):
        decode(body + zlib.crc32(body).to_bytes(4, "little"))


def test_round_trip_is_exact() -> None:
    cp = _checkpoint()
    back = decode(encode(cp))
    assert back.source_id == cp.source_id
    assert back.positions == cp.positions
    assert dict(back.store) == dict(cp.store)
    assert back.seen == cp.seen
    assert back.pending == cp.pending and back.held == cp.held
    assert back.watermark_max_time == cp.watermark_max_time
    assert back.emitted == cp.emitted and back.created == 123.0


@settings(max_examples=60, deadline=None)
@given(
    store=st.dictionaries(st.text(max_size=40), st.binary(max_size=400), max_size=30),
    positions=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=60), max_size=5),
    seen=st.binary(max_size=200),
)
def test_any_state_round_trips(store: dict[str, bytes], positions: dict[str, str], seen: bytes) -> None:
    cp = Checkpoint("s", positions, store, seen)
    back = decode(encode(cp))
    assert dict(back.store) == store and back.positions == positions and back.seen == seen


@pytest.mark.parametrize("cut", [0, 1, 9, 100, -5, -1])
def test_a_torn_or_corrupt_file_is_detected(cut: int) -> None:
    data = encode(_checkpoint())
    with pytest.raises(CheckpointError):
        decode(data[:cut])
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(CheckpointError, match="checksum"):
        decode(bytes(flipped))


def test_save_replaces_atomically_and_falls_back_to_the_previous(tmp_path: Path) -> None:
    store = LocalCheckpointStore(tmp_path)
    assert store.load() is None
    first = _checkpoint()
    store.save(first)
    second = _checkpoint()
    second.positions = {"shardId-000000000000": "later"}
    store.save(second)
    assert store.load().positions == second.positions  # type: ignore[union-attr]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # a crash mid-write leaves a torn current file: the previous one is used
    (tmp_path / CURRENT).write_bytes((tmp_path / CURRENT).read_bytes()[:50])
    assert store.load().positions == first.positions  # type: ignore[union-attr]
    (tmp_path / PREVIOUS).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="start from scratch"):
        store.load()


def test_100k_principals_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    # How long it takes is measured by bench/state.py, not asserted here (noisy machines).
    store = {f"arn:aws:iam::111122223333:role/service-{i:06d}": os.urandom(ENCODED_SIZE) for i in range(100_000)}
    cp = Checkpoint("s", {"p": "1"}, store, SeenIds(3600).encode())
    local = LocalCheckpointStore(tmp_path)
    size = local.save(cp)
    back = local.load()
    assert back is not None and back.store == store
    assert size > 100_000 * ENCODED_SIZE


# -- the runtime resumed from checkpoints ----------------------------------------------------------
def _archive_plan() -> simulate.SimulationPlan:
    return simulate.plan(
        days=2,
        seed=11,
        test_days=1,
        principals=20,
        scenarios=["privilege_escalation", "mass_delete"],
        intensity="nominal",
        variant="loud",
    )


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archive")
    simulate.write_archive(_archive_plan(), out)
    return out / "AWSLogs"


def _settings(tmp_path: Path) -> Settings:
    f = tmp_path / "c.yaml"
    f.write_text("pipeline: {batch_size: 300}\ncheckpoint_interval_s: 1000\n")
    return load(f, env={})


def _runtime(settings: Settings, archive: Path, state: Path, sink: ListSink) -> Runtime:
    source = FileSource([str(archive)])
    detector = Detector(settings, None, store={})
    return Runtime(
        settings, source, [sink], detector, Ingest(), LocalCheckpointStore(state), source_id="file:a", poll_records=40
    )


def test_resumed_runs_end_exactly_where_an_uninterrupted_run_ends(tmp_path: Path, archive: Path) -> None:
    settings = _settings(tmp_path)
    whole_sink = ListSink()
    whole = _runtime(settings, archive, tmp_path / "whole", whole_sink)
    whole.source.start({})
    steps = 0
    while not whole.drained:
        whole.step()
        steps += 1
    assert steps > 20 and whole_sink.alerts

    # Crash after steps 2, 3 and 5: each time only what the last checkpoint holds survives.
    state = tmp_path / "crashy"
    sink = ListSink()
    rt = _runtime(settings, archive, state, sink)
    rt.source.start({})
    crash_after = [2, 3, 5]
    done = 0
    while True:
        rt.step()
        done += 1
        if crash_after and done == crash_after[0]:
            rt.checkpoint()
            rt.step()  # work after the checkpoint is lost in the "crash"
            crash_after.pop(0)
            done = 0
            cp = LocalCheckpointStore(state).load()
            assert cp is not None and (cp.pending or cp.held)
            rt = _runtime(settings, archive, state, sink)
            rt.source.start(rt.restore(cp))
        if rt.drained:
            break
    assert rt.detector.store == whole.detector.store
    assert rt.detector.seen._buckets == whole.detector.seen._buckets
    assert {a.alert_id for a in sink.alerts} == {a.alert_id for a in whole_sink.alerts}


def test_the_demos_checkpoint_never_seeds_a_real_source(tmp_path: Path) -> None:
    demo = seed({"arn:aws:iam::1:user/sim": b"x"}, SeenIds(3600).encode(), "unused")
    demo = Checkpoint(source_id_of(load(None, env={})), {}, demo.store, demo.seen)
    assert demo.source_id.startswith("simulate:")  # the default config runs the demo
    assert resumable(demo) is None
    real = Checkpoint("kinesis:trail", {"shard-0": "42"}, demo.store, demo.seen)
    assert resumable(real) is real
    seeded = seed(demo.store, demo.seen, "replay of s3://archive")
    assert resumable(seeded) is seeded


class _WarmingSource(FileSource):
    """A file source with a warm-up, as the demo's simulator has: earlier alerts are not delivered."""

    warmup_until = float("-inf")


def test_alert_metrics_count_what_reached_the_sinks_and_every_series_starts_at_zero(
    tmp_path: Path, archive: Path
) -> None:
    settings = _settings(tmp_path)
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    sink = ListSink()
    metrics.prime(["file"], [sink.name])
    value = registry.get_sample_value
    assert value("detector_records_rejected_total", {"source": "file", "reason": "invalid_json"}) == 0
    assert value("detector_records_general_reader_total", {"source": "file"}) == 0
    assert value("detector_alerts_total", {"kind": "exfiltration"}) == 0
    assert value("detector_sink_delivered_total", {"sink": "list"}) == 0

    source = _WarmingSource([str(archive)])
    first, second = sorted(simulate.labels(_archive_plan()), key=lambda lab: lab.start)
    assert second.start > first.end + 1
    source.warmup_until = first.end + 1  # the first attack's alerts are warm-up, the second's delivered
    detector = Detector(settings, None, store={}, metrics=metrics)
    rt = Runtime(
        settings, source, [sink], detector, Ingest(metrics), None, metrics=metrics, source_id="file:a", poll_records=40
    )
    rt.source.start({})
    while not rt.drained:
        rt.step()
    assert rt.warmup_alerts > 0 and sink.alerts  # alerts on both sides of the warm-up
    opened: dict[str, int] = {}
    for a in sink.alerts:
        if a.status == "open":
            opened[a.kind] = opened.get(a.kind, 0) + 1
    counted = {kind: value("detector_alerts_total", {"kind": kind}) for kind in opened}
    assert counted == opened
    assert sum(registry.get_sample_value("detector_alerts_total", {"kind": k}) or 0 for k in KINDS) == sum(
        opened.values()
    )


def test_live_reorder_releases_by_hold_time_and_restores_in_order() -> None:
    r = LiveReorder(lateness_s=600, max_hold_s=1.0)
    evs = [event(t=T0 + dt) for dt in (5, 1, 3)]
    assert r.push_at(evs, now=100.0) == []
    assert r.due(100.5) == [] and r.next_due(100.5) == pytest.approx(0.5)
    later = [event(t=T0 + 2), event(t=T0 + 9)]
    r.push_at(later, now=100.8)
    out = r.due(101.0)  # the first group waited 1 s: it and anything older go, in time order
    assert [e.time for e in out] == [T0 + 1, T0 + 2, T0 + 3, T0 + 5]
    held = r.held()
    again = LiveReorder(600, 1.0)
    again.restore(held, r.max_time, now=0.0)
    assert again.held() == held and again.max_time == T0 + 9
    assert [e.time for e in again.flush()] == [T0 + 9]


def test_model_watch_swaps_a_new_artifact_in_and_rejects_a_tampered_one(tmp_path: Path) -> None:
    import numpy as np

    from detector.features import N_FEATURES
    from detector.model import FOREST, fit
    from detector.runtime.local import ModelWatch

    rows = np.random.default_rng(0).random((300, N_FEATURES))
    first = fit(rows, trees=5, seed=1)
    path = tmp_path / "model"
    first.save(path, training={})
    detector = Detector(load(None, env={}), first, store={})
    watch = ModelWatch(path, detector, interval_s=0)
    watch.check(1.0)
    assert detector.model is first  # unchanged artifact: nothing to do

    second = fit(rows, trees=7, seed=2)
    time.sleep(0.01)
    second.save(tmp_path / "model.new", training={})
    (tmp_path / "model").rename(tmp_path / "model.old")
    (tmp_path / "model.new").rename(path)
    watch.check(2.0)
    assert detector.model is not first and detector.model is not None
    loaded = detector.model

    manifest = path / "manifest.json"
    (path / FOREST).write_bytes(b"tampered")
    manifest.write_text(manifest.read_text() + " ")
    watch.check(3.0)
    assert detector.model is loaded  # rejected: the verified model stays
