"""The bridge: live sources -> decode -> event-time order -> Kafka, keyed by principal.

``detector bridge`` is the only reader of the sources when the detector runs as Faust
workers. Each record is decoded through ``Ingest`` (same metrics and dead letters as every
other runtime); each event goes to the events topic as its CloudTrail JSON, keyed by
``principal.key``, so one principal's events land on one partition and its state on the one
worker that owns that partition. Consecutive events of one principal released together share
a record (JSON Lines, up to ``PACK_EVENTS``): a Faust consumer pays a fixed ~100 us per record,
which would otherwise cap a worker near 5k events/s whatever the scoring costs.

Ordering: the bridge, not the workers, runs the reorder buffer, the same ``LiveReorder``
that ``detector run`` uses (watermark = newest event time minus ``allowed_lateness_s``; a
live source also releases after ``source.max_hold_s`` of wall-clock time). Each partition is
then, per principal, in the order the single-process runtime scores in, and a worker scores
records as they come. Doing it here keeps a worker stateless apart from its table: an event
held for reordering is not yet in Kafka, so no consumer offset ever covers an event that was
not scored, and there is one watermark for the whole input rather than one per worker.

Delivery: source positions are committed only when every event of every record up to them is
acknowledged by Kafka (``acks=all``; the producer is flushed before each checkpoint). Events
still held by the reorder buffer keep their records uncommitted, so after a crash those
records are read again; events produced twice are dropped by the workers' eventID dedup. If
Kafka stays unreachable past the producer's own retries, the bridge backs off, rewinds the
source to the last checkpoint and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from detector.decode import Rejected
from detector.errors import ConfigError, SourceError
from detector.event import Event
from detector.ingest import DeadLetters, Ingest
from detector.metrics import Metrics
from detector.runtime.local import LiveReorder, build_source
from detector.settings import Settings
from detector.sources.base import Source
from detector.textsafe import clip

log = logging.getLogger(__name__)

MAX_RECORDS_PER_POLL = 500
POLL_TIMEOUT_S = 0.2  # longest a live poll waits: signals and health ticks stay prompt
BACKOFF_FIRST_S = 1.0
BACKOFF_CAP_S = 30.0
# A CloudTrail event can be up to decode.MAX_RECORD_BYTES (1 MiB); leave room for the batch
# framing. Brokers must accept it too (message.max.bytes); a record they refuse is dead-lettered.
MAX_REQUEST_BYTES = (1 << 20) + (64 << 10)
# A record carries one principal's consecutive events (JSON Lines) up to these limits: Faust
# spends ~100 us of Python per consumed record whatever its size, so one record per event caps
# a worker near 5k records/s, while packing lets its cost follow the events' own.
PACK_EVENTS = 500
PACK_BYTES = 256 << 10


# -- pieces without I/O ------------------------------------------------------------------------
# The bridge needs each event's CloudTrail JSON too: ``Ingest.pairs``.
RawIngest = Ingest


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What the producer needs for one event held in the reorder buffer."""

    key: bytes
    value: bytes
    poll: int  # the poll it was read in: its positions commit once every such event is sent
    position: str


def packs(items: list[Outgoing]) -> Iterator[list[Outgoing]]:
    """Split one principal's run of events into records of at most ``PACK_EVENTS`` / ``PACK_BYTES``."""
    pack: list[Outgoing] = []
    size = 0
    for item in items:
        if pack and (len(pack) >= PACK_EVENTS or size + len(item.value) > PACK_BYTES):
            yield pack
            pack, size = [], 0
        pack.append(item)
        size += len(item.value) + 1
    if pack:
        yield pack


class PositionLedger:
    """Which source positions may be committed: those whose events have all left the bridge.

    Each poll's positions snapshot is kept with the number of its events not yet sent. The
    newest snapshot whose poll, and every poll before it, has nothing outstanding is safe to
    commit once the producer is flushed.
    """

    def __init__(self) -> None:
        self._polls: deque[list[Any]] = deque()  # [poll number, outstanding events, positions]
        self._index: dict[int, list[Any]] = {}
        self._safe: dict[str, str] | None = None

    def polled(self, poll: int, positions: dict[str, str], events: int) -> None:
        entry = [poll, events, positions]
        self._polls.append(entry)
        self._index[poll] = entry
        self._advance()

    def sent(self, poll: int) -> None:
        self._index[poll][1] -= 1
        self._advance()

    def _advance(self) -> None:
        while self._polls and self._polls[0][1] == 0:
            entry = self._polls.popleft()
            del self._index[entry[0]]
            self._safe = entry[2]

    def committable(self) -> dict[str, str] | None:
        """Positions covered entirely by sent events (None: nothing new since the start)."""
        return self._safe


class PositionFile:
    """The bridge's checkpoint: source positions in one JSON file, replaced atomically."""

    def __init__(self, path: Path, source_id: str) -> None:
        self.path = path
        self.source_id = source_id

    def load(self) -> dict[str, str]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise SourceError(
                f"{self.path}: unreadable bridge checkpoint ({exc}); move it aside to start over"
            ) from exc
        if data.get("source_id") != self.source_id:
            log.warning(
                "bridge checkpoint is for another source; starting from the source's start position",
                extra={"event": "checkpoint_mismatch", "path": str(self.path), "found": data.get("source_id")},
            )
            return {}
        return {str(k): str(v) for k, v in (data.get("positions") or {}).items()}

    def save(self, positions: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = orjson.dumps({"source_id": self.source_id, "positions": positions, "created": time.time()})
        with tmp.open("wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


# -- the shell ---------------------------------------------------------------------------------
@dataclass
class BridgeSummary:
    records: int = 0
    events: int = 0
    produced: int = 0  # events produced
    records_out: int = 0  # Kafka records they were packed into
    late: int = 0
    rewinds: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "events": self.events,
            "produced": self.produced,
            "records_out": self.records_out,
            "late": self.late,
            "rewinds": self.rewinds,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.produced / self.seconds) if self.seconds else 0,
        }


class KafkaUnavailable(SourceError):
    """Kafka did not acknowledge produced events within the producer's retries."""


class Bridge:
    """Source -> ``RawIngest`` -> ``LiveReorder`` -> producer, with checkpointed positions.

    ``open_source`` makes a fresh, unstarted source (called again after a rewind: a stopped
    source is not restartable). ``producer`` is a started ``aiokafka.AIOKafkaProducer`` (or
    anything with its ``send`` and ``flush``). ``checkpoint`` stores the positions; ``clock``
    is monotonic seconds.
    """

    def __init__(
        self,
        settings: Settings,
        open_source: Callable[[], Source],
        producer: Any,
        checkpoint: PositionFile,
        ingest: RawIngest | None = None,
        metrics: Metrics | None = None,
        health: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.topic = settings.kafka.events_topic
        self.open_source = open_source
        self.source = open_source()
        self.producer = producer
        self.checkpoint = checkpoint
        self.ingest = ingest or RawIngest(metrics=metrics)
        self.metrics = metrics
        self.health = health
        self.clock = clock
        self.summary = BridgeSummary()
        self._reset()

    def _reset(self) -> None:
        self.live = bool(getattr(self.source, "live", True))
        self.reorder = LiveReorder(
            self.settings.pipeline.allowed_lateness_s, self.settings.source.max_hold_s if self.live else None
        )
        self._outgoing: dict[int, Outgoing] = {}  # id(event) -> what to produce; events are not hashable
        self.ledger = PositionLedger()
        self._poll = 0
        self._late_seen = 0
        self._failures: list[BaseException] = []
        # Sends from before a rewind may still fail later; their callbacks must not count.
        self._generation = getattr(self, "_generation", 0) + 1

    async def run(self, stop: asyncio.Event | None = None, max_seconds: float | None = None) -> BridgeSummary:
        """Until the source is exhausted, ``stop`` is set or ``max_seconds`` pass."""
        stop = stop or asyncio.Event()
        started = self.clock()
        backoff = BACKOFF_FIRST_S
        interval = self.settings.checkpoint_interval_s
        self.source.start(self.checkpoint.load())
        last_checkpoint = self.clock()
        try:
            while not stop.is_set():
                if max_seconds is not None and self.clock() - started >= max_seconds:
                    break
                try:
                    finished = await self._step()
                    if finished or self.clock() - last_checkpoint >= interval:
                        await self._checkpoint()
                        last_checkpoint = self.clock()
                        backoff = BACKOFF_FIRST_S
                    if finished:
                        break
                except KafkaUnavailable as exc:
                    await self._rewind(exc, backoff, stop)
                    backoff = min(backoff * 2, BACKOFF_CAP_S)
                if self.health is not None:
                    self.health.tick()
            with contextlib.suppress(KafkaUnavailable):
                if stop.is_set():
                    # A requested stop (SIGTERM, a deploy) drains the reorder buffer first, so the
                    # stored positions cover every event read and the next start re-sends none:
                    # workers restarted in the same deploy have lost their eventID memory and
                    # would count a re-sent event twice. An event older than the drained ones
                    # that arrives after the restart is scored as late instead.
                    await self._send(self.reorder.flush())
                await self._checkpoint()  # what is safe; if Kafka is down, held events are read again
        finally:
            self.source.stop()
            self.summary.seconds = self.clock() - started
            self.summary.records = self.ingest.records
            self.summary.events = self.ingest.events
            self.summary.rejected = dict(self.ingest.rejected)
            self.summary.late = self.reorder.late
        return self.summary

    async def _step(self) -> bool:
        """One poll through to the producer; True once a finite source is done."""
        timeout = 0.0 if not self.live else self._poll_timeout()
        records = await asyncio.to_thread(self.source.poll, MAX_RECORDS_PER_POLL, timeout)
        self._poll += 1
        released: list[Event] = []
        count = 0
        now = self.clock()
        for r in records:
            events: list[Event] = []
            for ev, value in self.ingest.pairs(r.data, r.position, r.source):
                events.append(ev)
                self._outgoing[id(ev)] = Outgoing(ev.principal.key.encode(), value, self._poll, r.position)
            count += len(events)
            # One push per record, as ``detector replay`` and ``detector run`` do: the release order
            # (and so each principal's order on its partition) depends on where the pushes fall.
            released.extend(self.reorder.push_at(events, now))
        self.ledger.polled(self._poll, self.source.positions(), count)
        await self._send(released)
        if self.live:
            await self._send(self.reorder.due(now))
        if self.reorder.late > self._late_seen:
            if self.metrics is not None:
                self.metrics.events_late.inc(self.reorder.late - self._late_seen)
            self._late_seen = self.reorder.late
        if self.health is not None:
            status = self.source.status
            self._set_ready(not status, status)
        if self.source.exhausted:
            # End of a finite input: everything still held is as ordered as it will ever be.
            await self._send(self.reorder.flush())
            return True
        return False

    def _poll_timeout(self) -> float:
        due = self.reorder.next_due(self.clock())
        return POLL_TIMEOUT_S if due is None else min(POLL_TIMEOUT_S, due)

    async def _send(self, events: list[Event]) -> None:
        """Produce released events, each principal's run of them packed into few records."""
        from aiokafka.errors import KafkaError, MessageSizeTooLargeError

        runs: dict[bytes, list[Outgoing]] = {}
        for ev in events:
            item = self._outgoing.pop(id(ev))
            runs.setdefault(item.key, []).append(item)
        for key, items in runs.items():
            for pack in packs(items):
                value = b"\n".join(item.value for item in pack)
                try:
                    fut = await self.producer.send(self.topic, value, key=key)
                except MessageSizeTooLargeError as exc:
                    for item in pack:
                        self._oversized(item, exc)
                except KafkaError as exc:
                    raise KafkaUnavailable(f"kafka refused a produce: {exc}") from exc
                else:
                    fut.add_done_callback(functools.partial(self._delivered, self._generation))
                    self.summary.produced += len(pack)
                    self.summary.records_out += 1
                for item in pack:
                    self.ledger.sent(item.poll)

    def _delivered(self, generation: int, fut: asyncio.Future[Any]) -> None:
        if generation == self._generation and not fut.cancelled() and fut.exception() is not None:
            self._failures.append(fut.exception())  # type: ignore[arg-type]

    def _oversized(self, item: Outgoing, exc: Exception) -> None:
        self.ingest.reject(
            Rejected("oversized", item.position, clip(f"kafka refused the event: {exc}", 300), clip(item.value, 200)),
            self.source.name,
        )

    async def _checkpoint(self) -> None:
        """Flush the producer; if every send was acknowledged, store and commit the safe positions."""
        from aiokafka.errors import KafkaError

        try:
            await self.producer.flush()
        except KafkaError as exc:
            raise KafkaUnavailable(f"kafka flush failed: {exc}") from exc
        await asyncio.sleep(0)  # let the delivery callbacks of the last batches run
        if self._failures:
            first = self._failures[0]
            raise KafkaUnavailable(f"{len(self._failures)} events not acknowledged by kafka: {first}")
        positions = self.ledger.committable()
        if positions is not None:
            self.checkpoint.save(positions)
            self.source.commit(positions)
        if self.metrics is not None:
            self.metrics.checkpoint_timestamp.set(time.time())  # everything sent is in Kafka

    async def _rewind(self, exc: Exception, backoff: float, stop: asyncio.Event) -> None:
        self.summary.rewinds += 1
        self._set_ready(False, str(exc))
        log.warning(
            "kafka unavailable; rewinding the source to the last checkpoint",
            extra={"event": "bridge_rewind", "detail": str(exc), "retry_in_s": backoff},
        )
        self.source.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
        self._reset()
        if not stop.is_set():
            self.source = self.open_source()
            self.source.start(self.checkpoint.load())

    def _set_ready(self, ready: bool, detail: str = "") -> None:
        if self.metrics is not None:
            self.metrics.source_up.labels(self.source.name).set(1 if ready else 0)
        if self.health is not None:
            self.health.set_ready(f"source:{self.source.name}", ready, detail)


# -- wiring ------------------------------------------------------------------------------------
def open_source(settings: Settings, inputs: list[str] | None, endpoint_url: str | None, metrics: Metrics) -> Source:
    """The source to bridge: ``inputs`` (a backfill of local files) or the configured one."""
    if inputs:
        if any(i.startswith("s3://") for i in inputs):
            raise ConfigError("bridge inputs are local files or directories; for S3 set source.kind: s3")
        from detector.sources.files import FileSource

        return FileSource(inputs)
    if endpoint_url:
        settings = settings.model_copy(
            update={"source": settings.source.model_copy(update={"endpoint_url": endpoint_url})}
        )
    return build_source(settings, metrics)


def source_id(settings: Settings, inputs: list[str] | None) -> str:
    """What the stored positions belong to; positions of another source are not resumed from."""
    src = settings.source
    if inputs:
        return "file:" + ",".join(inputs)
    where = {"file": ",".join(src.paths), "kinesis": src.stream, "s3": f"{src.bucket}/{src.prefix}"}.get(src.kind, "")
    return f"{src.kind}:{where or ''}"


def producer_options(settings: Settings) -> dict[str, Any]:
    from detector.runtime.kafka_config import client_options, compression_type

    return {
        **client_options(settings.kafka),
        "acks": "all",
        "linger_ms": settings.kafka.linger_ms,
        "compression_type": compression_type(settings.kafka),
        "max_batch_size": 512 * 1024,
        "max_request_size": MAX_REQUEST_BYTES,
        "enable_idempotence": False,  # not every broker has it (tansu); workers dedup by eventID
        "request_timeout_ms": 30_000,
        "retry_backoff_ms": 500,
    }


async def bridge_main(
    settings: Settings,
    open_source: Callable[[], Source],
    metrics: Metrics,
    health: Any = None,
    inputs: list[str] | None = None,
    max_seconds: float | None = None,
    stop: asyncio.Event | None = None,
) -> BridgeSummary:
    """Topics, producer and the bridge loop; stops cleanly on SIGTERM/SIGINT."""
    from aiokafka import AIOKafkaProducer

    from detector.runtime.kafka_config import ensure_topics

    await ensure_topics(settings.kafka)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    dead = DeadLetters(settings.state_dir / "bridge" / "dead-letters.jsonl")
    bridge = Bridge(
        settings,
        open_source,
        producer,
        PositionFile(settings.state_dir / "bridge" / "positions.json", source_id(settings, inputs)),
        ingest=RawIngest(metrics=metrics, dead=dead),
        metrics=metrics,
        health=health,
    )
    try:
        return await bridge.run(stop=stop, max_seconds=max_seconds)
    finally:
        dead.close()
        await producer.stop()


def run_bridge(
    settings: Settings,
    inputs: list[str] | None = None,
    endpoint_url: str | None = None,
    status_port: int | None = None,
    max_seconds: float | None = None,
) -> int:
    """``detector bridge``: status server, the source, then the bridge loop until done or stopped."""
    import sys

    from prometheus_client import CollectorRegistry

    from detector.http import MODEL, Health, StatusServer
    from detector.logs import configure_logging
    from detector.sources import preflight

    if not inputs:  # the configured source: a missing region is one line and exit 3
        preflight.check(settings)
    configure_logging(settings.log_level)
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    # The bridge scores nothing: no model series, so no model-staleness alert fires for it.
    registry.unregister(metrics.model_info)
    registry.unregister(metrics.model_trained_timestamp)
    health = Health()
    health.set_ready(MODEL, True)
    port = settings.metrics.port if status_port is None else status_port
    status = StatusServer(registry, health, host=settings.metrics.host, port=port)
    status.start()
    try:
        def make_source() -> Source:
            source = open_source(settings, inputs, endpoint_url, metrics)
            metrics.prime([source.name], scoring=False)
            return source

        summary = asyncio.run(bridge_main(settings, make_source, metrics, health, inputs, max_seconds))
    finally:
        status.stop()
    sys.stdout.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")  # summaries on stdout
    return 0
