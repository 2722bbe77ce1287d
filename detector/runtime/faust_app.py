"""Faust workers: the events topic -> the same core as ``detector replay`` -> alerts.

``detector bridge`` keys every record by principal, so all of one principal's events sit on one
partition of the events topic, in the order the single-process runtime scores them (the bridge
runs the reorder buffer; see ``runtime/bridge.py``). A record is one CloudTrail event as JSON,
or several consecutive events of one principal as JSON Lines. A worker owns some partitions;
for each micro-batch (``stream.take_events``) it decodes the records, hands the events to
``Detector.process`` with a :class:`BatchStore` over a changelog-backed table (principal key ->
``PrincipalState`` bytes) and sends the alerts to the alerts topic and the sinks. Each state
write goes to the changelog partition with the number of the events partition it came from,
so a partition's principals and their state move together when the group rebalances, and the
worker taking a partition over rebuilds that state from the changelog before it scores.

Delivery: a batch's state is written only after its alerts are acknowledged, and Faust
flushes the producer before it commits consumer offsets, so alerts are at-least-once (their
IDs are deterministic) and state is never ahead of what was delivered. Each stored value
carries the partition and offset of the last record it includes; records redelivered after a
crash at or below it are skipped, so a baseline never counts an event twice. Records that are
not CloudTrail events are counted and sent to the dead-letter topic with their partition and
offset; the partition keeps flowing. Alerts or dead letters that cannot be delivered are
retried for ``DELIVERY_GIVE_UP_S``, then the process exits without committing the batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import orjson

from detector import typed
from detector.alert import Alert
from detector.baseline import STATE_FORMAT
from detector.decode import SAMPLE_LIMIT, check_event
from detector.errors import SinkError
from detector.event import Event
from detector.metrics import Metrics
from detector.pipeline import Detector
from detector.settings import Settings
from detector.sinks.base import Sink
from detector.textsafe import clip

log = logging.getLogger(__name__)

SOURCE = "kafka"  # the metrics label for records read from the events topic
ALERTS_TOPIC_SINK = "alerts_topic"  # the sink label for alerts acknowledged by the alerts topic
STATE_TABLE = f"principal-state-v{STATE_FORMAT}"  # a new baseline layout, a new changelog

_HEADER = struct.Struct(">iq")  # events-topic partition and offset of the last record applied
NOTHING_APPLIED = (-1, -1)


# -- the agent body, without Faust ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Message:
    """One record of the events topic, as the agent body needs it."""

    topic: str
    partition: int
    offset: int
    value: bytes | None

    def position(self, line: int | None = None) -> str:
        where = f"kafka:{self.topic}/{self.partition}@{self.offset}"
        return where if line is None else f"{where}#line={line}"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # one of decode.REJECT_REASONS: a bounded metric label
    detail: str
    line: int | None  # 1-based line in a record of several events, else None
    sample: bytes


def parse_event(line: bytes) -> Event | tuple[str, str]:
    """One CloudTrail event as JSON -> ``Event``, or (reject reason, detail)."""
    fast = typed.read_event(line)
    if fast is not None:
        return fast
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return "invalid_json", clip(str(exc), 300)
    reason = check_event(obj)
    if reason is not None:
        return reason, "not a usable CloudTrail event"
    try:
        return Event.of(obj)
    except (ValueError, TypeError, KeyError) as exc:
        return "bad_field_type", clip(str(exc), 300)


def parse_record(value: bytes | None) -> list[Event | Rejection]:
    """An events-topic value -> its events: one CloudTrail event as JSON, or several as JSON Lines."""
    if not value:
        return [Rejection("empty", "record has no value", None, b"")]
    lines = value.split(b"\n") if b"\n" in value else [value]
    several = len(lines) > 1
    out: list[Event | Rejection] = []
    for i, line in enumerate(lines, start=1):
        parsed = parse_event(line)
        if isinstance(parsed, tuple):
            out.append(Rejection(parsed[0], parsed[1], i if several else None, line))
        else:
            out.append(parsed)
    return out


def dead_letter(message: Message, rejection: Rejection) -> bytes:
    """The dead-letter record: the fields of ``ingest.DeadLetters`` plus topic, partition, offset."""
    return orjson.dumps(
        {
            "at": time.time(),
            "source": SOURCE,
            "reason": rejection.reason,
            "position": message.position(rejection.line),
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "line": rejection.line,
            "detail": rejection.detail,
            "sample": clip(rejection.sample, SAMPLE_LIMIT),
        }
    )


class BatchStore(MutableMapping[str, bytes]):
    """``Detector``'s state store for one micro-batch, over a table's local data.

    Table values are ``partition (4 bytes) + offset (8 bytes) + PrincipalState bytes``
    (big-endian), naming the last events-topic record the state includes. The core sees only the state
    bytes. Writes are held until :meth:`commit`, which the worker calls once the batch's alerts
    are delivered: a crash in between leaves the old state, and the batch is replayed.
    """

    def __init__(self, data: MutableMapping[str, bytes]) -> None:
        self._data = data
        self._written: dict[str, bytes | None] = {}

    def applied(self, key: str) -> tuple[int, int]:
        """(partition, offset) of the last record in ``key``'s stored state, or ``NOTHING_APPLIED``."""
        raw = self._data.get(key)
        return _HEADER.unpack_from(raw) if raw else NOTHING_APPLIED

    def __getitem__(self, key: str) -> bytes:
        if key in self._written:
            value = self._written[key]
            if value is None:
                raise KeyError(key)
            return value
        return self._data[key][_HEADER.size :]

    def __setitem__(self, key: str, value: bytes) -> None:
        self._written[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._written[key] = None

    def __iter__(self) -> Iterator[str]:
        yield from (k for k in self._data if self._written.get(k, b"") is not None)
        yield from (k for k, v in self._written.items() if v is not None and k not in self._data)

    def __len__(self) -> int:
        # The core reads len() once per batch for the principals gauge: keep it O(1).
        return len(self._data) + sum(1 for k, v in self._written.items() if v is not None and k not in self._data)

    def commit(self, owners: dict[str, tuple[int, int]], send: Callable[[int, str, bytes | None], None]) -> int:
        """Write the batch's state: to the local data and, via ``send``, to the changelog.

        ``owners`` maps each key seen in the batch to (partition, last offset). Keys whose
        events were all duplicates still get their offset advanced, so a replay after a crash
        cannot mistake those records for new ones once the in-memory eventID memory is gone.
        """
        count = 0
        for key, (partition, offset) in owners.items():
            if key in self._written:
                state = self._written[key]
            else:
                old = self._data.get(key)
                if old is None:
                    continue
                state = old[_HEADER.size :]
            value = None if state is None else _HEADER.pack(partition, offset) + state
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value
            send(partition, key, value)
            count += 1
        self._written.clear()
        return count


AlertEmitter = Callable[[list[Alert]], Awaitable[None]]
DeadLetterEmitter = Callable[[list[bytes]], Awaitable[None]]
ChangelogSend = Callable[[int, str, bytes | None], None]


class BatchScorer:
    """What the agent does with one micro-batch; Faust-free, so a test drives it with lists.

    ``emit_alerts`` and ``emit_dead`` must return only once delivery is acknowledged;
    ``send_changelog(partition, key, value)`` may buffer (Faust flushes before committing).
    """

    def __init__(
        self,
        detector: Detector,
        data: MutableMapping[str, bytes],
        send_changelog: ChangelogSend,
        emit_alerts: AlertEmitter,
        emit_dead: DeadLetterEmitter,
        metrics: Metrics | None = None,
    ) -> None:
        self.detector = detector
        self.data = data
        self.send_changelog = send_changelog
        self.emit_alerts = emit_alerts
        self.emit_dead = emit_dead
        self.metrics = metrics
        self.replayed = 0
        self.rejected = 0

    async def handle(self, messages: Sequence[Message]) -> list[Alert]:
        """Score one micro-batch; returns its alerts once they and its dead letters are delivered."""
        store = BatchStore(self.data)
        self.detector.store = store
        events: list[Event] = []
        owners: dict[str, tuple[int, int]] = {}  # key -> (partition, last offset in this batch)
        applied: dict[str, tuple[int, int]] = {}  # key -> (partition, offset) already in its stored state
        dead: list[bytes] = []
        replayed = 0
        for m in messages:
            for parsed in parse_record(m.value):
                if isinstance(parsed, Rejection):
                    dead.append(dead_letter(m, parsed))
                    self._count_rejected(m, parsed)
                    continue
                key = parsed.principal.key
                done = applied.get(key)
                if done is None:
                    done = applied[key] = store.applied(key)
                if m.partition == done[0] and m.offset <= done[1]:
                    replayed += 1  # already in the stored state: redelivered after a crash or rebalance
                    continue
                owner = owners.get(key)
                if owner is not None and owner[0] != m.partition:
                    # Only a producer other than the bridge (another key or partitioner) does this.
                    log.warning(
                        "principal on two partitions",
                        extra={"event": "principal_split", "partition": m.partition, "offset": m.offset},
                    )
                owners[key] = (m.partition, m.offset)
                events.append(parsed)
        if self.metrics is not None:
            self.metrics.records_received.labels(SOURCE).inc(len(messages))
            if events:
                self.metrics.events_decoded.labels(SOURCE).inc(len(events))
            if replayed:
                self.metrics.events_duplicate.inc(replayed)
        self.replayed += replayed
        if dead:
            await self.emit_dead(dead)
        if not events:
            return []
        result = self.detector.process(events)
        if result.alerts:
            await self.emit_alerts(result.alerts)
        store.commit(owners, self.send_changelog)
        return result.alerts

    def _count_rejected(self, m: Message, r: Rejection) -> None:
        self.rejected += 1
        if self.metrics is not None:
            self.metrics.records_rejected.labels(SOURCE, r.reason).inc()
        log.warning(
            "rejected record",
            extra={"event": "rejected", "reason": r.reason, "position": m.position(r.line), "detail": r.detail},
        )


# -- the Faust app ----------------------------------------------------------------------------
def faust_settings(settings: Settings, name: str) -> dict[str, Any]:
    """Keyword settings for ``faust.App`` from our ``kafka`` section."""
    from detector.runtime.kafka_config import compression_type, faust_broker, faust_credentials

    k = settings.kafka
    conf: dict[str, Any] = {
        "broker": faust_broker(k),
        "broker_credentials": faust_credentials(k),
        "broker_client_id": f"detector-worker-{name}",
        # Rebuilt from the changelog at start. Not RocksDB: its store files a key under the
        # partition of Faust's "current event", which in a micro-batch spanning partitions is
        # the batch's last event, not the key's own partition (BatchStore writes by partition).
        "store": "memory://",
        "datadir": str(settings.state_dir / "faust"),
        "topic_partitions": k.partitions,
        "topic_replication_factor": k.replication_factor,
        "table_standby_replicas": k.standby_replicas,
        "broker_session_timeout": k.session_timeout_s,
        "broker_heartbeat_interval": max(0.5, k.session_timeout_s / 10),
        "broker_rebalance_timeout": k.rebalance_timeout_s,
        "consumer_auto_offset_reset": "earliest",
        "processing_guarantee": "at_least_once",  # exactly_once needs transactions (and tansu has none)
        "producer_acks": -1,
        "producer_compression_type": compression_type(k),
        "broker_max_poll_records": k.take_records,
        "consumer_max_fetch_size": 4 * 1024 * 1024,
        "stream_buffer_maxsize": max(64, k.take_records * 2),
        "web_enabled": False,  # /metrics, /healthz, /readyz come from detector.http.StatusServer
        "worker_redirect_stdouts": False,
    }
    if k.changelog_one_record_per_batch:
        # tansu's ListOffsets answers "start of the last record batch + 1", so a changelog
        # partition whose last batch holds several records looks shorter than it is and table
        # recovery stops early. One record per batch makes that answer exact. Test profile
        # only: it makes every produce request carry a single record.
        conf["producer_max_batch_size"] = 1
        conf["producer_linger_ms"] = 0
    return conf


DELIVERY_GIVE_UP_S = 300.0
"""How long alerts or dead letters that cannot be delivered are retried before the worker stops."""
EX_SOFTWARE = 70


async def retrying(what: str, attempt: Callable[[], Awaitable[bool]], give_up_s: float = DELIVERY_GIVE_UP_S) -> None:
    """Call ``attempt`` until it returns True, backing off 0.5 s -> 30 s; ``SinkError`` after ``give_up_s``."""
    delay = 0.5
    deadline = time.monotonic() + give_up_s
    while not await attempt():
        if time.monotonic() + delay > deadline:
            raise SinkError(f"{what}: still failing after {give_up_s:.0f}s; stopping so the batch is redelivered")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


def crash(exc: BaseException) -> NoReturn:
    """Stop the process now, without Faust's shutdown (which would commit the failed batch)."""
    log.critical(
        "batch failed; exiting without committing it",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"event": "worker_crash"},
    )
    logging.shutdown()
    os._exit(EX_SOFTWARE)


def commit_sensor(metrics: Metrics) -> Any:
    """A Faust sensor that stamps ``checkpoint_timestamp`` at each offset commit.

    Faust flushes the producer (alerts, dead letters, changelog) before it commits offsets, so a
    completed commit is this runtime's checkpoint: what it covers survives a crash.
    """
    import faust

    class _CommitSensor(faust.Sensor):
        def on_commit_completed(self, consumer: Any, state: Any) -> None:
            metrics.checkpoint_timestamp.set(time.time())

    return _CommitSensor()


@dataclass
class WorkerApp:
    """The Faust app plus the pieces a test or the CLI needs to reach."""

    app: Any  # faust.App
    scorer: BatchScorer
    sinks: list[Sink]


def build_app(
    settings: Settings,
    detector: Detector,
    metrics: Metrics | None,
    sinks: Sequence[Sink] = (),
    name: str = "worker",
    health: Any = None,
) -> WorkerApp:
    """The Faust app: one agent on the events topic, one table, alerts and dead-letter topics."""
    import faust

    k = settings.kafka
    app = faust.App(k.consumer_group, **faust_settings(settings, name))
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    events_topic = app.topic(k.events_topic, partitions=k.partitions, internal=False, **raw)
    alerts_topic = app.topic(k.alerts_topic, internal=False, **raw)
    dead_topic = app.topic(k.dead_letter_topic, internal=False, **raw)
    # str keys travel as JSON strings, bytes values raw (Faust picks both from the types).
    table = app.Table(STATE_TABLE, key_type=str, value_type=bytes, partitions=k.partitions)
    loop_sinks = list(sinks)

    async def send_all(topic: Any, records: list[tuple[bytes | None, bytes]], what: str) -> None:
        """Send, wait for the acks, re-send what failed: returns only once all are in Kafka."""
        from aiokafka.errors import KafkaError

        async def attempt() -> bool:
            nonlocal records
            try:
                futures = [await topic.send(key=key, value=value) for key, value in records]
            except KafkaError as exc:
                log.warning("produce failed", extra={"event": "produce_failed", "what": what, "detail": str(exc)})
                return False
            results = await asyncio.gather(*futures, return_exceptions=True)
            records = [r for r, result in zip(records, results, strict=True) if isinstance(result, BaseException)]
            return not records

        await retrying(what, attempt)

    async def flush_sink(sink: Sink) -> None:
        loop = asyncio.get_running_loop()

        async def attempt() -> bool:
            try:
                # Sinks may block (fsync, HTTP): off the event loop, or heartbeats stall.
                await loop.run_in_executor(None, sink.flush)
                return True
            except SinkError as exc:
                if metrics is not None:
                    metrics.sink_failures.labels(sink.name).inc()
                log.warning("sink flush failed", extra={"event": "sink_failure", "sink": sink.name, "detail": str(exc)})
                return False

        await retrying(f"sink {sink.name}", attempt)

    async def emit_alerts(alerts: list[Alert]) -> None:
        await send_all(alerts_topic, [(a.alert_id.encode(), a.to_json()) for a in alerts], "alerts topic")
        if metrics is not None:
            metrics.sink_delivered.labels(ALERTS_TOPIC_SINK).inc(len(alerts))
            metrics.count_alerts(alerts)
        for sink in loop_sinks:
            for a in alerts:
                sink.add(a)
            await flush_sink(sink)

    async def emit_dead(records: list[bytes]) -> None:
        await send_all(dead_topic, [(None, r) for r in records], "dead-letter topic")

    def send_changelog(partition: int, key: str, value: bytes | None) -> None:
        table.send_changelog(partition, key, value)

    if metrics is not None:
        app.sensors.add(commit_sensor(metrics))

    scorer = BatchScorer(detector, table.data, send_changelog, emit_alerts, emit_dead, metrics)

    @app.agent(events_topic)
    async def score(stream: Any) -> None:
        async for batch in stream.take_events(k.take_records, within=settings.pipeline.max_batch_delay_s):
            messages = [
                Message(ev.message.topic, ev.message.partition, ev.message.offset, ev.message.value) for ev in batch
            ]
            try:
                await scorer.handle(messages)
            except BaseException as exc:  # noqa: BLE001 - whatever it is, the batch must not be acked
                # take_events acks a batch even when the loop body raises, and Faust would then
                # restart the agent past it. Stopping the process leaves its offsets uncommitted:
                # the batch is redelivered after the restart (the stored offsets skip what its
                # state already holds), and a batch that always fails shows as a crash loop.
                crash(exc)
            if health is not None:
                health.tick()

    if health is not None:
        health.set_ready("source:kafka", False, "joining the consumer group")

        @app.timer(interval=1.0)
        async def status() -> None:
            # An idle topic yields no batches: the loop is still turning, so tick here too.
            health.tick()
            mine = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == k.events_topic)
            if app.rebalancing:
                health.set_ready("source:kafka", False, "rebalancing")
            elif not mine:
                health.set_ready("source:kafka", False, "no partitions assigned (more workers than partitions?)")
            else:
                health.set_ready("source:kafka", True)
            if metrics is not None:
                metrics.source_up.labels(SOURCE).set(1 if mine and not app.rebalancing else 0)
                metrics.partitions_assigned.set(len(mine))

    return WorkerApp(app=app, scorer=scorer, sinks=loop_sinks)


def run_worker(settings: Settings, name: str = "worker", status_port: int | None = None) -> int:
    """``detector worker``: metrics server, model, topics, then the Faust worker until stopped."""
    from faust import Worker
    from prometheus_client import CollectorRegistry

    from detector.http import MODEL, Health, StatusServer
    from detector.logs import configure_logging
    from detector.model import ModelArtifact
    from detector.runtime.kafka_config import ensure_topics
    from detector.train import model_key

    configure_logging(settings.log_level)
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    health = Health()
    port = settings.metrics.port if status_port is None else status_port
    status = StatusServer(registry, health, host=settings.metrics.host, port=port)
    status.start()
    try:
        model = ModelArtifact.load(
            Path(settings.model), key=model_key(), require_signature=settings.require_signature
        )
        metrics.model_info.info({"version": model.version})
        metrics.model_trained_timestamp.set(model.trained_at)
        metrics.model_reloads.labels("ok").inc()
        health.set_ready(MODEL, True)
        asyncio.run(ensure_topics(settings.kafka))
        detector = Detector(settings, model, store={}, metrics=metrics)
        (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
        sinks = _build_sinks(settings, metrics)
        metrics.prime([SOURCE], [ALERTS_TOPIC_SINK, *(s.name for s in sinks)])
        worker_app = build_app(settings, detector, metrics, sinks, name=name, health=health)
        worker = Worker(
            worker_app.app,
            loglevel=settings.log_level,
            quiet=True,
            redirect_stdouts=False,
            override_logging=False,
        )
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            return int(exc.code or 0)
        finally:
            for sink in sinks:
                sink.close()
        return 0
    finally:
        status.stop()


def _build_sinks(settings: Settings, metrics: Metrics) -> list[Sink]:
    if not settings.sinks:
        return []
    from detector.sinks import build_sinks

    return list(build_sinks(settings, metrics, settings.state_dir))
