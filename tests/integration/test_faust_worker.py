"""``detector worker`` (Faust) on the tansu broker: same alerts as ``detector replay``, however
the partitions are split, moved, restarted or crashed.

One simulated archive (3 days, 20 principals, every attack scenario on the last day, ~29k
events) and a model trained on it are shared by the module; the single-process replay of the
archive is the reference. The bridge writes the archive once to a staging topic; each test
copies those records (same partition, key, order) into its own topic, in phases where the test
needs to stop or add workers between them, and runs workers as subprocesses on their own
consumer group. Alerts are compared as the set of (alert_id, kind, status, event_count), which
also checks that no baseline counted an event twice or missed one.

Test profile: ``kafka.changelog_one_record_per_batch`` is on, because tansu's ListOffsets
answers "start of the last record batch + 1" and Faust's table recovery would otherwise stop
before the end of a changelog partition; tansu joins a group only after about half the
rebalance timeout, so the timeouts here are short (6 s session, 10 s rebalance).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector import settings as settings_mod
from detector import simulate
from detector.ingest import Ingest
from detector.metrics import Metrics
from detector.model import ModelArtifact
from detector.pipeline import Detector
from detector.replay import open_inputs, run_replay
from detector.runtime.bridge import bridge_main
from detector.sources.files import FileSource
from detector.train import train
from tests.services import PROJECT_ROOT, Service, free_port

pytestmark = pytest.mark.integration

PARTITIONS = 4
AlertKey = tuple[str, str, str, int]
Record = tuple[bytes | None, bytes | None]  # key, value


# -- Kafka helpers ------------------------------------------------------------------------------
async def _read_topic(bootstrap: str, topic: str) -> dict[int, list[tuple[int, bytes | None, bytes | None]]]:
    """Every record of ``topic`` from the beginning to the current end: partition -> [(offset, key, value)]."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    try:
        await c.topics()
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        out: dict[int, list[tuple[int, bytes | None, bytes | None]]] = {tp.partition: [] for tp in tps}
        if not tps:
            return out
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > 0}
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=500)
            for tp, msgs in batch.items():
                out[tp.partition].extend((m.offset, m.key, m.value) for m in msgs)
            pending = {tp for tp in pending if await c.position(tp) < end[tp]}
        return out
    finally:
        await c.stop()


async def _produce(bootstrap: str, topic: str, records: dict[int, list[Record]]) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2 << 20)
    await producer.start()
    try:
        for partition, recs in records.items():
            for key, value in recs:
                await producer.send(topic, value, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def read_topic(bootstrap: str, topic: str) -> dict[int, list[tuple[int, bytes | None, bytes | None]]]:
    return asyncio.run(_read_topic(bootstrap, topic))


def produce(bootstrap: str, topic: str, records: dict[int, list[Record]]) -> None:
    asyncio.run(_produce(bootstrap, topic, records))


def alert_keys(bootstrap: str, topic: str) -> set[AlertKey]:
    out: set[AlertKey] = set()
    for recs in read_topic(bootstrap, topic).values():
        for _, _, value in recs:
            a = orjson.loads(value or b"{}")
            out.add((a["alert_id"], a["kind"], a["status"], a["event_count"]))
    return out


def wait_for_alerts(bootstrap: str, topic: str, expected: set[AlertKey], timeout_s: float = 15.0) -> set[AlertKey]:
    """The alerts topic's content once it equals ``expected`` (the last batch's alerts may still be in flight)."""
    deadline = time.monotonic() + timeout_s
    got = alert_keys(bootstrap, topic)
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        got = alert_keys(bootstrap, topic)
    return got


def count_events(records: list[Record]) -> int:
    return sum((value or b"").count(b"\n") + 1 for _, value in records)


# -- workers as subprocesses --------------------------------------------------------------------
class WorkerProcess:
    """``detector worker`` in a subprocess, read through its /metrics and /readyz."""

    def __init__(self, config: Path, name: str, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_dir / f"worker-{name}-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "detector.cli",
                    "worker",
                    "--config",
                    str(config),
                    "--name",
                    name,
                    "--metrics-port",
                    str(self.port),
                ],
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.final: dict[str, float] = {}

    def metrics(self) -> dict[str, float]:
        """The worker's /metrics; {} before its status server is up. A busy worker (recovering a
        table while two others share the two cores) can be slow to answer, so it gets time."""
        if self.final:
            return self.final
        text = ""
        for attempt in range(3):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
                    text = r.read().decode()
                break
            except (urllib.error.URLError, OSError):
                if not self.alive() or attempt == 2:
                    return {}
                time.sleep(0.5)
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def partitions(self) -> int:
        return int(self.metrics().get("detector_partitions_assigned", 0))

    def scored(self) -> int:
        return int(self.metrics().get("detector_events_scored_total", 0))

    def duplicates(self) -> int:
        return int(self.metrics().get("detector_events_duplicate_total", 0))

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        """Stop (SIGTERM: graceful, leaves the group; SIGKILL: a crash); keeps the last metrics."""
        if not self.alive():
            return
        if sig == signal.SIGTERM:
            self.final = self.metrics()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Scenario:
    bootstrap: str
    model: Path
    records: dict[int, list[Record]]  # the bridge's output, per partition, in order
    events: int
    expected: set[AlertKey]
    dir: Path

    def phase(self, start: float, end: float) -> dict[int, list[Record]]:
        """The records between two fractions of each partition (phases keep per-partition order)."""
        return {p: r[int(len(r) * start) : int(len(r) * end)] for p, r in self.records.items()}


@pytest.fixture(scope="module")
def scenario(kafka_broker: Service, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    base = tmp_path_factory.mktemp("faust")
    archive = base / "archive"
    simulate.write_archive(simulate.plan(days=3, seed=11, principals=20, test_days=1), archive)
    # two history days cannot make a principal old enough to alert (min_active_days): train as if
    # one were enough, so the forest has rows; the workers and the replay then run the defaults
    quick = settings_mod.Settings.model_validate({"detection": {"defaults": {"min_active_days": 1}}})
    train(open_inputs([str(archive)]), base / "model", quick, trees=50)
    settings = settings_mod.Settings()
    model = ModelArtifact.load(base / "model")

    alerts: list[Any] = []
    detector = Detector(settings, model, store={})
    summary = run_replay(
        open_inputs([str(archive)]),
        detector,
        Ingest(),
        settings.pipeline.allowed_lateness_s,
        settings.pipeline.batch_size,
        on_alerts=alerts.extend,
    )
    expected = {(a.alert_id, a.kind, a.status, a.event_count) for a in alerts}
    assert len({k[0] for k in expected}) >= 10, "the archive should raise a dozen alerts or more"

    staging = f"staging-{uuid.uuid4().hex[:8]}"
    bridge_settings = settings_mod.Settings.model_validate(
        {
            "state_dir": str(base / "bridge-state"),
            "kafka": {"bootstrap_servers": [kafka_broker.endpoint], "events_topic": staging, "partitions": PARTITIONS},
        }
    )
    produced = asyncio.run(
        bridge_main(bridge_settings, lambda: FileSource([str(archive)]), Metrics.create(), inputs=[str(archive)])
    )
    assert produced.produced == summary.scored
    records = {p: [(k, v) for _, k, v in recs] for p, recs in read_topic(kafka_broker.endpoint, staging).items()}
    assert sum(count_events(r) for r in records.values()) == summary.scored
    return Scenario(kafka_broker.endpoint, base / "model", records, summary.scored, expected, base)


@pytest.fixture
def workers(scenario: Scenario, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``start(config, name)``; every worker started is stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(config: Path, name: str) -> WorkerProcess:
        w = WorkerProcess(config, name, tmp_path)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop(signal.SIGKILL)


def worker_config(scenario: Scenario, tmp_path: Path, topic: str, group: str, **kafka: Any) -> Path:
    config = {
        "model": str(scenario.model),
        "state_dir": str(tmp_path / "state"),
        "sinks": [],
        "log_level": "INFO",
        "kafka": {
            "bootstrap_servers": [scenario.bootstrap],
            "events_topic": topic,
            "alerts_topic": f"{topic}-alerts",
            "dead_letter_topic": f"{topic}-dead",
            "partitions": PARTITIONS,
            "consumer_group": group,
            "session_timeout_s": 6,
            "rebalance_timeout_s": 10,
            "take_records": 16,
            "changelog_one_record_per_batch": True,  # tansu: see the module docstring
            **kafka,
        },
    }
    path = tmp_path / f"{group}.yaml"
    path.write_bytes(orjson.dumps(config))  # JSON is YAML
    settings_mod.load(path, env={})  # a typo here should fail here, not in a subprocess
    return path


def wait_until(what: str, done: Callable[[], bool], procs: list[WorkerProcess], timeout_s: float = 180.0) -> None:
    """Poll until ``done``; fail at once if a worker died. ``timeout_s`` is a hang guard, not a
    speed claim: the crash case's second half once took over 60 s on 2 cores that were also
    running an evaluation (alone it passed 6 of 6 runs)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        for w in procs:
            if not w.alive() and not w.final:
                pytest.fail(f"worker {w.name} exited with {w.process.returncode} waiting for {what}:\n{w.log_tail()}")
        if time.monotonic() > deadline:
            logs = "\n\n".join(f"--- worker {w.name}:\n{w.log_tail()}" for w in procs)
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.2)


def new_topic() -> str:
    return f"events-{uuid.uuid4().hex[:8]}"


def first_half_on_a_new_topic(scenario: Scenario, tmp_path: Path) -> tuple[str, Path, int]:
    """A new topic holding the first half of each partition; (topic, worker config, events in it)."""
    topic = new_topic()
    first = scenario.phase(0, 0.5)
    produce(scenario.bootstrap, topic, first)
    return topic, worker_config(scenario, tmp_path, topic, f"g-{topic}"), sum(count_events(r) for r in first.values())


# -- the tests ----------------------------------------------------------------------------------
def test_one_worker_same_alerts_as_replay_and_bad_records_dead_lettered(
    scenario: Scenario, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    topic = new_topic()
    records = scenario.phase(0, 1)
    # Mid-stream on partition 0: a record that is not JSON, and a bad line inside a good pack
    # (a JSON object that is not an event) between its first and second events.
    middle = len(records[0]) // 2
    key, value = records[0][middle]
    lines = (value or b"").split(b"\n")
    assert len(lines) >= 2, "the bridge should pack a principal's events"
    bad_pack = b"\n".join([lines[0], b'{"eventName": 3}', *lines[1:]])
    records[0][middle : middle + 1] = [(b"garbage", b"{not json"), (key, bad_pack)]
    produce(scenario.bootstrap, topic, records)

    w = workers(worker_config(scenario, tmp_path, topic, f"g-{topic}"), "solo")
    wait_until("every event scored", lambda: w.scored() >= scenario.events, [w])
    got = wait_for_alerts(scenario.bootstrap, f"{topic}-alerts", scenario.expected)
    assert got == scenario.expected
    assert w.scored() == scenario.events
    assert w.duplicates() == 0

    dead_topic = read_topic(scenario.bootstrap, f"{topic}-dead")
    dead = [orjson.loads(v or b"") for recs in dead_topic.values() for _, _, v in recs]
    assert sorted((d["partition"], d["offset"], d["line"], d["reason"]) for d in dead) == [
        (0, middle, None, "invalid_json"),
        (0, middle + 1, 2, "bad_field_type"),
    ]
    metrics = w.metrics()
    assert metrics['detector_records_rejected_total{reason="invalid_json",source="kafka"}'] == 1


def test_two_workers_split_partitions_and_give_the_same_alerts(
    scenario: Scenario, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    topic = new_topic()
    produce(scenario.bootstrap, topic, {p: [] for p in range(PARTITIONS)})  # the topic, empty
    config = worker_config(scenario, tmp_path, topic, f"g-{topic}")
    a, b = workers(config, "a"), workers(config, "b")
    wait_until("both workers assigned", lambda: a.ready() and b.ready(), [a, b], timeout_s=90)
    produce(scenario.bootstrap, topic, scenario.phase(0, 1))
    wait_until("every event scored", lambda: a.scored() + b.scored() >= scenario.events, [a, b], timeout_s=90)
    assert wait_for_alerts(scenario.bootstrap, f"{topic}-alerts", scenario.expected) == scenario.expected
    assert a.scored() + b.scored() == scenario.events
    assert a.scored() > 0 and b.scored() > 0, "both workers should own partitions"


@pytest.mark.parametrize("how", ["restart", "crash"])
def test_state_is_recovered_from_the_changelog(
    how: str, scenario: Scenario, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """Half the stream, stop (SIGTERM) or kill (SIGKILL) the worker, the rest in a new process.

    The new process starts with an empty memory store, so its baselines exist only if the
    table was rebuilt from the changelog. After a crash, records after the last committed
    offset are redelivered; the offset kept with each principal's state must skip them.
    """
    topic, config, first_events = first_half_on_a_new_topic(scenario, tmp_path)
    a = workers(config, "first")
    wait_until("the first half scored", lambda: a.scored() >= first_events, [a])
    if how == "crash":
        time.sleep(2.0)  # the batch's changelog writes are sent (not necessarily the offset commit)
        a.stop(signal.SIGKILL)
    else:
        a.stop(signal.SIGTERM)
    produce(scenario.bootstrap, topic, scenario.phase(0.5, 1))

    b = workers(config, "second")
    rest = scenario.events - first_events
    wait_until("the second half scored", lambda: b.scored() >= rest, [b])
    assert wait_for_alerts(scenario.bootstrap, f"{topic}-alerts", scenario.expected) == scenario.expected
    # Even a graceful stop may leave the last offsets uncommitted; what was redelivered must
    # have been skipped by the offsets stored with the state, not scored again.
    assert b.scored() == rest, "an event was scored twice (or one was lost) across the restart"


def test_partitions_move_to_a_new_worker_and_back(
    scenario: Scenario, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """A alone; B joins and takes partitions (with their state); B stops and A takes them back."""
    topic = new_topic()
    phases = [scenario.phase(0, 0.4), scenario.phase(0.4, 0.7), scenario.phase(0.7, 1)]
    counts = [sum(count_events(r) for r in ph.values()) for ph in phases]
    config = worker_config(scenario, tmp_path, topic, f"g-{topic}")

    produce(scenario.bootstrap, topic, phases[0])
    a = workers(config, "a")
    wait_until("phase 1 scored by A", lambda: a.scored() >= counts[0], [a])

    b = workers(config, "b")
    # Both must be past the rebalance: B can be assigned before A notices the new generation
    # (next heartbeat), and A would meanwhile take the next phase by itself. Wait until the
    # two assignments add up to the whole topic with both holding some.
    wait_until(
        "A and B share the partitions",
        lambda: (
            a.ready()
            and b.ready()
            and a.partitions() > 0
            and b.partitions() > 0
            and a.partitions() + b.partitions() == PARTITIONS
        ),
        [a, b],
    )
    a_before = a.scored()
    produce(scenario.bootstrap, topic, phases[1])
    wait_until("phase 2 scored by A and B", lambda: a.scored() + b.scored() >= sum(counts[:2]), [a, b], 90)
    a_phase2, b_phase2 = a.scored() - a_before, b.scored()
    assert b_phase2 > 0, f"B should have taken over some partitions (A scored {a_phase2} of phase 2)"
    assert a_phase2 > 0, f"A should have kept some partitions (B scored {b_phase2} of phase 2)"

    b.stop(signal.SIGTERM)
    b_total = b.scored()
    produce(scenario.bootstrap, topic, phases[2])
    wait_until("phase 3 scored by A alone", lambda: a.scored() + b_total >= scenario.events, [a, b], 90)
    assert wait_for_alerts(scenario.bootstrap, f"{topic}-alerts", scenario.expected) == scenario.expected
    assert a.scored() + b_total == scenario.events


def test_a_broker_outage_is_ridden_out_without_losing_or_double_counting(
    scenario: Scenario, kafka_broker: Service, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """The broker freezes (SIGSTOP: no answers, connections hang, as in a network partition)
    for longer than the session timeout while a worker is mid-stream, then comes back.

    The worker must retry, rejoin its group and finish: every event scored exactly once and
    the alerts of the single-process replay.
    """
    topic, config, first_events = first_half_on_a_new_topic(scenario, tmp_path)
    a = workers(config, "a")
    # Freeze mid-stream: batches in flight, changelog writes and offset commits unanswered.
    wait_until("a third of the first half scored", lambda: a.scored() >= first_events // 3, [a])

    os.killpg(kafka_broker.process.pid, signal.SIGSTOP)
    try:
        time.sleep(10)  # > the 6 s session timeout; the worker's requests time out meanwhile
        assert a.alive(), f"the worker gave up during the outage:\n{a.log_tail()}"
    finally:
        os.killpg(kafka_broker.process.pid, signal.SIGCONT)

    produce(scenario.bootstrap, topic, scenario.phase(0.5, 1))
    wait_until("the second half scored after the outage", lambda: a.scored() >= scenario.events, [a], 120)
    assert wait_for_alerts(scenario.bootstrap, f"{topic}-alerts", scenario.expected) == scenario.expected
    time.sleep(2)  # anything redelivered after the rejoin would be scored by now
    assert a.scored() == scenario.events, "an event was scored twice across the outage"
