"""``detector run``: the single-process runtime around the core.

One loop: ``source.poll`` -> ``Ingest.blob`` -> reorder buffer -> micro-batches ->
``Detector.process`` -> sinks, with a checkpoint every ``checkpoint_interval_s`` (sinks are
flushed first; if a flush fails the checkpoint is skipped, so nothing is acknowledged that
was not delivered or spooled). Metrics and ``/healthz`` ``/readyz`` are served by
``StatusServer``; the loop calls ``Health.tick`` each turn.

Ordering and batching, by source:

* a **finite** source (files, an S3 backfill) is batched by count only and its reorder
  buffer releases by watermark only (largest event time minus ``allowed_lateness_s``), so a
  run gives the same alerts and baselines as ``detector replay`` of the same input, whatever
  the timing, and a run resumed from a checkpoint ends exactly where an uninterrupted one does;
* a **live** source (Kinesis, S3 follow, stdin, the demo) also releases on wall-clock time: an
  event is held at most ``source.max_hold_s`` (default 1 s) in the reorder buffer, and a
  partial batch waits at most ``pipeline.max_batch_delay_s``. On a live stream event time
  advances with the wall clock, so a watermark of "newest minus 10 minutes" alone would delay
  every alert by 10 minutes and hold a quiet stream's last events forever. The hold still
  orders what arrives together (records of several shards, CloudWatch Logs batches); anything
  later is scored as it comes and the baselines absorb it without decaying backwards
  (``Baseline.observe``). Backfill-speed bursts are still ordered by the watermark.

Shutdown (SIGTERM/SIGINT): stop reading, finish the batch in hand, flush the sinks, write the
final checkpoint (events still buffered are part of it), exit 0; a watchdog ends the process
if that takes longer than ``shutdown_timeout_s``.
"""

from __future__ import annotations

import heapq
import logging
import os
import signal
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry

from detector.alert import Alert, iso
from detector.errors import DetectorError, SinkError
from detector.event import Event
from detector.http import MODEL, Health, StatusServer
from detector.ingest import DeadLetters, Ingest
from detector.logs import configure_logging
from detector.metrics import Metrics
from detector.model import ModelArtifact
from detector.ordering import Reorder, SeenIds
from detector.pipeline import Detector
from detector.runtime import bootstrap
from detector.runtime.checkpoint import SEED_SOURCE, Checkpoint, CheckpointStore, LocalCheckpointStore
from detector.runtime.statelock import StateDirLock
from detector.settings import Settings
from detector.sinks import build_sinks
from detector.sinks.base import Sink
from detector.sources.base import Record, Source
from detector.terminal import StatusLine

log = logging.getLogger("detector.run")

MAX_EMITTED = 10_000  # alert keys remembered to avoid re-delivering after a restart
IDLE_POLL_S = 0.2  # longest the loop waits in poll: signals and health ticks stay prompt
POLL_RECORDS = 100  # records per poll: a file record holds up to 1000 events, a Kinesis one often 1


# -- ordering --------------------------------------------------------------------------------------
class LiveReorder(Reorder[Event]):
    """``Reorder`` that can also release by wall-clock hold time and be checkpointed.

    ``push(events, now)`` records when each group of events arrived; ``due(now)`` releases,
    in event-time order, every held event not later than the newest event of any group that
    has waited ``max_hold_s`` (so a group is released whole, together with anything older).
    ``max_hold_s=None`` disables the wall-clock release (finite sources).
    """

    def __init__(self, lateness_s: float, max_hold_s: float | None) -> None:
        super().__init__(lateness_s)
        self.max_hold_s = max_hold_s
        self._arrivals: deque[tuple[float, float]] = deque()  # (arrived, newest event time in the group)

    def push_at(self, events: Sequence[Event], now: float) -> list[Event]:
        if self.max_hold_s is not None and events:
            self._arrivals.append((now, max(ev.time for ev in events)))
        return self.push(events)

    def due(self, now: float) -> list[Event]:
        if self.max_hold_s is None:
            return []
        until = float("-inf")
        while self._arrivals and now - self._arrivals[0][0] >= self.max_hold_s:
            until = max(until, self._arrivals.popleft()[1])
        return self._release(until) if until > float("-inf") else []

    def next_due(self, now: float) -> float | None:
        """Seconds until ``due`` releases something, or None when nothing waits on the clock."""
        if self.max_hold_s is None or not self._arrivals or not len(self):
            return None
        return max(0.0, self._arrivals[0][0] + self.max_hold_s - now)

    def held(self) -> list[Event]:
        """Everything held, in the order it would be released."""
        return [ev for _, _, ev in sorted(self._heap, key=lambda item: (item[0], item[1]))]

    def restore(self, events: Sequence[Event], max_time: float, now: float) -> None:
        for ev in events:
            heapq.heappush(self._heap, (ev.time, next(self._seq), ev))
        self.max_time = max(self.max_time, max_time)
        if events and self.max_hold_s is not None:
            self._arrivals.append((now, max(ev.time for ev in events)))


class ModelWatch:
    """Reloads the model when its manifest changes (``detector train --out`` swaps it in).

    The artifact is verified like at start-up; a bad one is rejected (counted, logged once) and
    the current model stays in use. Checked every ``interval_s`` from the main loop, so a swap
    happens between batches.
    """

    def __init__(
        self,
        path: Path,
        detector: Detector,
        metrics: Metrics | None = None,
        health: Health | None = None,
        interval_s: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.detector = detector
        self.metrics = metrics
        self.health = health
        self.interval_s = interval_s
        self._seen = self._stamp()
        self._rejected: tuple[int, int] | None = None
        self._next = 0.0

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.path / "manifest.json").stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def check(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + self.interval_s
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return
        from detector.errors import ModelError
        from detector.train import model_key

        try:
            model = ModelArtifact.load(
                self.path, key=model_key(), require_signature=self.detector.settings.require_signature
            )
        except ModelError as exc:
            if stamp != self._rejected:  # a half-copied artifact is retried; logged once per version
                self._rejected = stamp
                if self.metrics is not None:
                    self.metrics.model_reloads.labels("rejected").inc()
                log.warning(
                    "new model rejected; keeping the current one",
                    extra={"event": "model_rejected", "path": str(self.path), "detail": str(exc)},
                )
            return
        self._seen = stamp
        self.detector.set_model(model)
        if self.metrics is not None:
            self.metrics.model_reloads.labels("ok").inc()
            self.metrics.model_info.info({"version": model.version, "path": str(self.path)})
            self.metrics.model_trained_timestamp.set(model.trained_at)
        if self.health is not None:
            self.health.set_ready(MODEL, True)
        log.info("model reloaded", extra={"event": "model_reloaded", "version": model.version, "path": str(self.path)})


class ConfigWatch:
    """Reloads the config file on SIGHUP or when it changes, between batches.

    What can change live: thresholds, classes, overrides, suppressions, sensitive APIs, alert
    dedup, batch sizes, log level and the model path. What needs a restart (source, sinks,
    metrics address, state directory) is kept, with a warning naming the keys. A config that
    fails validation is rejected (counted, logged) and the running one stays.
    """

    RESTART_KEYS = ("source", "sinks", "metrics", "state_dir", "kafka")

    def __init__(self, path: Path | None, runtime: Runtime, interval_s: float = 2.0) -> None:
        self.path = path
        self.runtime = runtime
        self.interval_s = interval_s
        self.hup = threading.Event()
        self._seen = self._stamp()
        self._next = 0.0

    def _stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def check(self, now: float) -> None:
        if self.path is None:
            return
        forced = self.hup.is_set()
        if not forced and now < self._next:
            return
        self._next = now + self.interval_s
        stamp = self._stamp()
        if not forced and stamp == self._seen:
            return
        self.hup.clear()
        self._seen = stamp
        self.reload()

    def reload(self) -> bool:
        from detector import settings as settings_mod
        from detector.errors import ConfigError

        rt = self.runtime
        metrics = rt.metrics
        try:
            new = settings_mod.load(self.path)
        except ConfigError as exc:
            if metrics is not None:
                metrics.config_reloads.labels("rejected").inc()
            log.error(
                "config reload rejected; keeping the running config",
                extra={"event": "config_rejected", "path": str(self.path), "detail": str(exc)},
            )
            return False
        old = rt.settings
        kept = [k for k in self.RESTART_KEYS if getattr(new, k) != getattr(old, k)]
        if kept:
            log.warning(
                "config keys that need a restart were not applied",
                extra={"event": "config_restart_needed", "keys": ",".join(kept)},
            )
            new = new.model_copy(update={k: getattr(old, k) for k in kept})
        rt.settings = new
        rt.detector.configure(new)
        if new.log_level != old.log_level:
            logging.getLogger().setLevel(new.log_level)
        if rt.model_watch is not None and Path(new.model) != rt.model_watch.path:
            rt.model_watch.path = Path(new.model)
            rt.model_watch._seen = None  # load the new path at the next check
            rt.model_watch._next = 0.0
        if metrics is not None:
            metrics.config_reloads.labels("ok").inc()
        log.info("config reloaded", extra={"event": "config_reloaded", "path": str(self.path)})
        return True


class Emitted:
    """Keys (``alert_id:status:event_count``) of alerts recently handed to the sinks."""

    def __init__(self, keys: Sequence[str] = (), size: int = MAX_EMITTED) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict((k, None) for k in keys)
        self.size = size

    @staticmethod
    def key(alert: Alert) -> str:
        return f"{alert.alert_id}:{alert.status}:{alert.event_count}"

    def add(self, alert: Alert) -> bool:
        """False when this exact alert was already emitted."""
        k = self.key(alert)
        if k in self._keys:
            return False
        self._keys[k] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True

    def keys(self) -> list[str]:
        return list(self._keys)


# -- the runtime -----------------------------------------------------------------------------------
class Runtime:
    """The loop, with every collaborator passed in (tests and the latency bench build their own)."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        sinks: Sequence[Sink],
        detector: Detector,
        ingest: Ingest,
        checkpoints: CheckpointStore | None,
        metrics: Metrics | None = None,
        health: Health | None = None,
        source_id: str = "",
        clock: Callable[[], float] = time.monotonic,
        poll_records: int = POLL_RECORDS,
        model_watch: ModelWatch | None = None,
        config_path: Path | None = None,
        status: StatusLine | None = None,
    ) -> None:
        self.settings = settings
        self.status = status
        self.poll_records = poll_records
        self.model_watch = model_watch
        self.config_watch = ConfigWatch(config_path, self)
        self.source = source
        self.sinks = list(sinks)
        self.detector = detector
        self.ingest = ingest
        self.checkpoints = checkpoints
        self.metrics = metrics
        self.health = health
        self.source_id = source_id
        self.clock = clock
        self.live = bool(getattr(source, "live", True))
        self.reorder = LiveReorder(
            settings.pipeline.allowed_lateness_s, settings.source.max_hold_s if self.live else None
        )
        self.pending: list[Event] = []
        self.pending_since = 0.0
        self.emitted = Emitted()
        self.arrivals: dict[str, float] = {}
        self.retry: dict[str, list[Alert]] = {}  # alerts a sink failed to take, per sink
        self.stop_requested = threading.Event()
        self.drained = False
        self.batches = 0
        self.alerts_out = 0
        self.last_checkpoint = clock()
        self._late_seen = 0
        self._rejected_seen = 0
        self.warmup_alerts = 0
        self._warm = False

    # -- state ------------------------------------------------------------------------------------
    def restore(self, cp: Checkpoint) -> dict[str, str]:
        """Load ``cp`` into the detector and buffers; returns the positions to resume from."""
        self.detector.store.clear()
        self.detector.store.update(cp.store)
        self.detector.seen = SeenIds.decode(cp.seen) if cp.seen else self.detector.seen
        self.pending = list(cp.pending)
        self.pending_since = self.clock()
        self.reorder.restore(cp.held, cp.watermark_max_time, self.clock())
        self.emitted = Emitted(cp.emitted)
        if cp.source_id.startswith(SEED_SOURCE + ":"):
            log.info(
                "starting from seeded baselines",
                extra={"event": "checkpoint_seed", "was": cp.source_id, "principals": len(cp.store)},
            )
            return {}
        if cp.source_id != self.source_id:
            log.warning(
                "checkpoint is from another source: keeping baselines, not positions",
                extra={"event": "checkpoint_source_changed", "was": cp.source_id, "now": self.source_id},
            )
            return {}
        return dict(cp.positions)

    def checkpoint(self, reason: str = "interval") -> bool:
        """Flush sinks, then write positions + state + in-flight events atomically."""
        started = time.perf_counter()
        self.last_checkpoint = self.clock()
        if not self._retry_sinks():
            return False
        for sink in self.sinks:
            try:
                sink.flush()
            except SinkError as exc:
                self._sink_failed(sink.name, exc, "flush")
                log.error(
                    "sink flush failed; checkpoint skipped (will retry)",
                    extra={"event": "checkpoint_skipped", "sink": sink.name, "detail": str(exc)},
                )
                return False
        if self.checkpoints is None:
            return True
        positions = self.source.positions()
        cp = Checkpoint(
            source_id=self.source_id,
            positions=positions,
            store=self.detector.store,
            seen=self.detector.seen.encode(),
            pending=list(self.pending),
            held=self.reorder.held(),
            watermark_max_time=self.reorder.max_time,
            emitted=self.emitted.keys(),
            created=time.time(),
        )
        try:
            size = self.checkpoints.save(cp)
        except OSError as exc:
            log.error(
                "cannot write checkpoint", extra={"event": "checkpoint_failed", "detail": f"{exc.strerror or exc}"}
            )
            return False
        self.source.commit(positions)
        if self.metrics is not None:
            self.metrics.checkpoint_timestamp.set(time.time())
        log.info(
            "checkpoint written",
            extra={
                "event": "checkpoint",
                "reason": reason,
                "bytes": size,
                "principals": len(self.detector.store),
                "in_flight": len(cp.pending) + len(cp.held),
                "seconds": round(time.perf_counter() - started, 4),
            },
        )
        return True

    # -- alerts -------------------------------------------------------------------------------------
    def warmup_until(self) -> float:
        """The demo's history days only warm the baselines: their alerts are counted, not delivered."""
        return float(getattr(self.source, "warmup_until", float("-inf")))

    def _sink_failed(self, name: str, exc: Exception, during: str) -> None:
        if self.metrics is not None:
            self.metrics.sink_failures.labels(name).inc()
        log.error("sink failed", extra={"event": "sink_failure", "sink": name, "during": during, "detail": str(exc)})

    def _retry_sinks(self) -> bool:
        """Hand over again what a sink refused earlier; False if any still refuses."""
        ok = True
        by_name = {s.name: s for s in self.sinks}
        for name, alerts in list(self.retry.items()):
            sink = by_name[name]
            while alerts:
                try:
                    sink.add(alerts[0])
                except SinkError as exc:
                    self._sink_failed(name, exc, "retry")
                    ok = False
                    break
                alerts.pop(0)
            if not alerts:
                del self.retry[name]
        if not ok:
            log.error("sink still failing; checkpoint skipped", extra={"event": "checkpoint_skipped"})
        return ok

    def _emit(self, alerts: list[Alert], batch_arrival: float) -> None:
        now = self.clock()
        for alert in alerts:
            if float(alert.context.get("trigger_event_time") or alert.last_event_time) < self.warmup_until():
                self.warmup_alerts += 1
                continue
            if not self.emitted.add(alert):
                continue
            if self.status is not None:  # the first alert ends the waiting: its line replaces the status
                self.status.stop()
            if self.metrics is not None:
                self.metrics.count_alerts([alert])
            for sink in self.sinks:
                if sink.name in self.retry:  # keep a failing sink's alerts in order
                    self.retry[sink.name].append(alert)
                    continue
                try:
                    sink.add(alert)
                except SinkError as exc:
                    self._sink_failed(sink.name, exc, "add")
                    self.retry.setdefault(sink.name, []).append(alert)
            self.alerts_out += 1
            if self.metrics is not None:
                trigger = self.arrivals.get(alert.event_ids[-1]) if alert.status == "open" and alert.event_ids else None
                self.metrics.processing_seconds.observe(max(0.0, now - (trigger or batch_arrival)))

    # -- the loop -----------------------------------------------------------------------------------
    def _run_batch(self, batch: list[Event]) -> None:
        arrivals = self.arrivals
        now = self.clock()
        batch_arrival = min((arrivals.get(ev.event_id, now) for ev in batch), default=now) if arrivals else now
        result = self.detector.process(batch)
        self.batches += 1
        if not self._warm and result.events and result.events[-1].time >= self.warmup_until():
            self._warm = True
            if self.warmup_alerts:
                log.info(
                    "warm-up done; alerts from here on are delivered",
                    extra={"event": "warmup_done", "warmup_alerts_not_delivered": self.warmup_alerts},
                )
        if result.alerts:
            self._emit(result.alerts, batch_arrival)
        if arrivals:
            for ev in batch:
                arrivals.pop(ev.event_id, None)

    def _process_pending(self, everything: bool) -> None:
        size = self.settings.pipeline.batch_size
        while len(self.pending) >= size:
            batch = self.pending[:size]
            del self.pending[:size]
            self._run_batch(batch)
        if everything and self.pending:
            batch, self.pending = self.pending, []
            self._run_batch(batch)
        # pending_since is left alone: what remains was released no earlier than it says

    def _ingest(self, records: list[Record]) -> None:
        track = self.live and self.metrics is not None
        for r in records:
            events = self.ingest.blob(r.data, r.position, r.source)
            if track:
                for ev in events:
                    self.arrivals[ev.event_id] = r.arrival
            released = self.reorder.push_at(events, self.clock())
            if released:
                if not self.pending:
                    self.pending_since = self.clock()
                self.pending.extend(released)
        rejected = sum(self.ingest.rejected.values())
        if rejected > self._rejected_seen:
            log.warning(
                "records rejected",
                extra={
                    "event": "rejected",
                    "rejected": rejected - self._rejected_seen,
                    "reasons": dict(self.ingest.rejected),
                    "last_position": records[-1].position if records else "",
                },
            )
            self._rejected_seen = rejected
        if self.reorder.late > self._late_seen:
            if self.metrics is not None:
                self.metrics.events_late.inc(self.reorder.late - self._late_seen)
            self._late_seen = self.reorder.late

    def _poll_timeout(self) -> float:
        if not self.live:
            return 0.0
        wait = IDLE_POLL_S
        now = self.clock()
        if self.pending:
            wait = min(wait, max(0.0, self.pending_since + self.settings.pipeline.max_batch_delay_s - now))
        due = self.reorder.next_due(now)
        if due is not None:
            wait = min(wait, due)
        return wait

    def step(self) -> None:
        """One turn: poll, ingest, release, score full (or overdue) batches, maybe checkpoint."""
        records = self.source.poll(self.poll_records, self._poll_timeout()) if not self.source.exhausted else []
        if records:
            self._ingest(records)
        now = self.clock()
        if self.live:
            released = self.reorder.due(now)
            if released:
                if not self.pending:
                    self.pending_since = now
                self.pending.extend(released)
        overdue = (
            self.live and bool(self.pending) and now - self.pending_since >= self.settings.pipeline.max_batch_delay_s
        )
        self._process_pending(everything=overdue)
        if self.source.exhausted and not self.drained:
            # End of a finite input: everything still held is as ordered as it will ever be.
            self.pending.extend(self.reorder.flush())
            self._process_pending(everything=True)
            self.drained = True
            self.checkpoint("source exhausted")
        elif now - self.last_checkpoint >= self.settings.checkpoint_interval_s:
            self.checkpoint()
        self.config_watch.check(now)
        if self.model_watch is not None:
            self.model_watch.check(now)
        if self.status is not None and self.status.enabled and not self.status.stopped:
            self.status.update(self._status_text())
        if self.health is not None:
            self.health.tick()
            status = self.source.status
            self.health.set_ready(f"source:{self.source.name}", not status, status)
            if self.metrics is not None:
                self.metrics.source_up.labels(self.source.name).set(0 if status else 1)

    def run(self, once: bool = False, max_seconds: float | None = None) -> int:
        """Loop until stopped (signal, ``max_seconds``, or with ``once`` the end of a finite source)."""
        started = self.clock()
        while not self.stop_requested.is_set():
            self.step()
            if once and self.drained:
                break
            if max_seconds is not None and self.clock() - started >= max_seconds:
                break
            if self.drained:  # a finished finite source: stay up (metrics) until told to stop
                self.stop_requested.wait(IDLE_POLL_S)
        return 0 if self.shutdown() else 1

    def _status_text(self) -> str:
        newest = self.reorder.max_time
        if newest == float("-inf"):
            return f"waiting for the first events from {self.source.name}"
        warming = newest < self.warmup_until()
        phase = (
            "warming up baselines on the simulated history days (their alerts are held back)"
            if warming
            else "watching for the first alert"
        )
        counts = f"{self.ingest.events:,} events, {len(self.detector.store):,} principals"
        return f"{phase}: {counts}, event time {iso(newest)}"

    def shutdown(self) -> bool:
        """Final flush + checkpoint; True when it was written. In-flight events go into it."""
        if self.status is not None:
            self.status.stop()
        ok = self.checkpoint("shutdown")
        for sink in self.sinks:
            try:
                sink.close()
            except SinkError as exc:
                self._sink_failed(sink.name, exc, "close")
                ok = False
        self.source.stop()
        log.info(
            "detector stopped",
            extra={
                "event": "shutdown",
                "checkpointed": ok,
                "events": self.ingest.events,
                "alerts": self.alerts_out,
                "principals": len(self.detector.store),
            },
        )
        return ok


# -- building it from settings -------------------------------------------------------------------
def source_id(settings: Settings) -> str:
    s = settings.source
    if s.kind == "kinesis":
        return f"kinesis:{s.stream}"
    if s.kind == "s3":
        return f"s3:{s.bucket}/{s.prefix}|{s.queue_url or ''}"
    if s.kind == "file":
        return "file:" + ",".join(s.paths)
    if s.kind == "simulate":
        return f"{DEMO_SOURCE}:seed={s.seed},days={s.days}"
    return s.kind


DEMO_SOURCE = "simulate"  # the source_id prefix of the demo's checkpoints


def resumable(cp: Checkpoint | None) -> Checkpoint | None:
    """``cp`` unless it is the demo's: simulated baselines must never become a real source's.

    The demo writes its checkpoint to the same ``state_dir`` a real source uses, so the first
    real run in a checkout that ran the demo finds it; it starts empty instead, and its own
    first checkpoint replaces the demo's.
    """
    if cp is not None and cp.source_id.startswith(DEMO_SOURCE + ":"):
        log.warning(
            "the checkpoint holds the demo's simulated baselines: starting with empty ones",
            extra={"event": "checkpoint_demo_ignored", "was": cp.source_id, "principals": len(cp.store)},
        )
        return None
    return cp


def build_source(settings: Settings, metrics: Metrics | None = None) -> Source:
    s = settings.source
    if s.kind == "simulate":
        from detector.sources.simulated import SimulatedSource

        return SimulatedSource(days=s.days, seed=s.seed, speed=s.speed)
    if s.kind == "kinesis":
        from detector.sources.kinesis import KinesisSource

        return KinesisSource(
            s.stream or "",
            region=s.region,
            endpoint_url=s.endpoint_url,
            start=s.start,
            start_timestamp=s.start_timestamp,
            poll_interval_s=s.poll_interval_s,
            shard_refresh_s=s.shard_refresh_s,
            limit=s.max_records_per_call,
            metrics=metrics,
        )
    if s.kind == "s3":
        from detector.sources.s3follow import S3Source

        return S3Source(
            s.bucket,
            prefix=s.prefix,
            accounts=s.accounts,
            regions=s.regions,
            start=s.start,
            start_timestamp=s.start_timestamp,
            end_timestamp=s.end_timestamp,
            follow=s.follow,
            queue_url=s.queue_url,
            poll_interval_s=s.poll_interval_s,
            region=s.region,
            endpoint_url=s.endpoint_url,
            rediscover_s=s.rediscover_s,
            get_attempts=s.get_attempts,
            # a message must stay invisible until the checkpoint that covers it deletes it
            visibility_timeout_s=int(min(43_200, max(60, 4 * settings.checkpoint_interval_s))),
        )
    from detector.sources.files import FileSource, StdinSource

    if s.kind == "stdin":
        return StdinSource()
    return FileSource(s.paths)


def load_model(settings: Settings, metrics: Metrics | None, health: Health | None) -> ModelArtifact | None:
    """The configured model, or None (with a warning) when there is none: the rules still run."""
    from detector.train import model_key

    path = settings.model
    if not (path / "manifest.json").exists():
        log.warning(
            "no model artifact; running the rule detectors only (train one with `detector train`)",
            extra={"event": "model_missing", "path": str(path)},
        )
        if health is not None:
            health.set_ready(MODEL, False, f"no model at {path}: rule detectors only")
        return None
    model = ModelArtifact.load(path, key=model_key(), require_signature=settings.require_signature)
    if metrics is not None:
        metrics.model_info.info({"version": model.version, "path": str(path)})
        metrics.model_trained_timestamp.set(model.trained_at)
        metrics.model_reloads.labels("ok").inc()
    if health is not None:
        health.set_ready(MODEL, True)
    log.info("model loaded", extra={"event": "model_loaded", "version": model.version, "path": str(path)})
    return model


class _Signals:
    """SIGTERM/SIGINT -> graceful stop; a watchdog ends the process if shutdown hangs."""

    def __init__(self, runtime: Runtime, timeout_s: float) -> None:
        self.runtime = runtime
        self.timeout_s = timeout_s
        self._previous: dict[int, Any] = {}
        self._watchdog: threading.Timer | None = None

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
            self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._reload)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._watchdog is not None:  # shut down in time: the process may live on (tests, benches)
            self._watchdog.cancel()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _reload(self, signum: int, frame: FrameType | None) -> None:
        self.runtime.config_watch.hup.set()  # the main loop reloads between batches

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.runtime.stop_requested.is_set():
            return
        log.info("stopping", extra={"event": "shutdown_requested", "signal": signal.Signals(signum).name})
        self.runtime.stop_requested.set()
        self._watchdog = threading.Timer(self.timeout_s, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        log.error(
            "shutdown took longer than shutdown_timeout_s; exiting without a final checkpoint",
            extra={"event": "shutdown_timeout", "timeout_s": self.timeout_s},
        )
        logging.shutdown()
        os._exit(1)


def run(settings: Settings, args: Any) -> int:
    """``detector run``: build everything from ``settings`` and loop until stopped."""
    from detector.sources import preflight

    preflight.check(settings)  # a missing region is one line and exit 3, before anything starts
    # One runtime per state_dir (InUseError names the holder), taken before the status port is bound.
    with StateDirLock(Path(settings.state_dir)):
        return _run(settings, args)


def _run(settings: Settings, args: Any) -> int:
    configure_logging(settings.log_level)
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    health = Health()
    server = StatusServer(registry, health, settings.metrics.host, settings.metrics.port)
    server.start()
    state_dir = Path(settings.state_dir)
    dead = DeadLetters(state_dir / "dead-letters.jsonl")
    try:
        model = load_model(settings, metrics, health)
        checkpoints = LocalCheckpointStore(state_dir)
        source = build_source(settings, metrics)
        health.set_ready(f"source:{source.name}", False, "connecting")
        sid = source_id(settings)
        detector = Detector(settings, model, store={}, metrics=metrics)
        ingest = Ingest(metrics, dead)
        sinks = build_sinks(settings, metrics, state_dir, "json" if getattr(args, "json", False) else "auto")
        metrics.prime([source.name], [s.name for s in sinks])
        watch = ModelWatch(settings.model, detector, metrics, health)
        config_path = getattr(args, "config_path", None)
        runtime = Runtime(
            settings,
            source,
            sinks,
            detector,
            ingest,
            checkpoints,
            metrics,
            health,
            sid,
            model_watch=watch,
            config_path=Path(config_path) if config_path else None,
            status=StatusLine(),  # draws only when stderr is a terminal
        )
        positions: dict[str, str] = {}
        resumed = False
        if settings.source.kind != "simulate":  # the demo always starts from the beginning
            cp = resumable(checkpoints.load())  # CheckpointError when unusable: stop, never silently start over
            if cp is not None:
                positions = runtime.restore(cp)
                resumed = True
        with _Signals(runtime, settings.shutdown_timeout_s):
            learned = False
            if bootstrap.wanted(settings, resumed):
                now = time.time()  # one window for the source and for its progress
                found = bootstrap.run_bootstrap(
                    settings,
                    detector,
                    ingest,
                    bootstrap.bootstrap_source(settings, now),
                    runtime.stop_requested,
                    health,
                    metrics,
                    now=now,
                )
                if found is None:  # stopped during the bootstrap: nothing to keep
                    return 0
                positions, learned = found, True
            source.start(positions)
            health.set_ready(f"source:{source.name}", True)
            metrics.source_up.labels(source.name).set(1)
            log.info(
                "detector started",
                extra={
                    "event": "start",
                    "source": source.name,
                    "source_id": sid,
                    "sinks": ",".join(s.name for s in sinks),
                    "model": model.version if model is not None else None,
                    "resumed": resumed,
                    "bootstrapped": learned,
                    "principals": len(detector.store),
                    "metrics": f"http://{settings.metrics.host}:{server.port}/metrics",
                },
            )
            if learned:
                runtime.checkpoint("bootstrap")  # a restart resumes from here, not from a second bootstrap
            try:
                return runtime.run(
                    once=bool(getattr(args, "once", False)), max_seconds=getattr(args, "max_seconds", None)
                )
            except DetectorError as exc:
                log.error("stopping on error", extra={"event": "fatal", "detail": str(exc)})
                runtime.shutdown()
                raise
    finally:
        dead.close()
        server.stop()
