"""Remote sinks deliver from an on-disk spool, in a background thread, so the pipeline never waits.

``SpooledSink.add`` appends the alert to the sink's spool (``state_dir/spool/<sink>/``) and
returns; a delivery thread sends spooled alerts in order through a ``Transport`` (webhook,
SNS). ``flush`` (called before every checkpoint) fsyncs the spool, so once a checkpoint is
written every alert it produced is either delivered or on disk: a crash, a dead endpoint or a
restart never loses one. A failed send is counted (``sink_failures``) and retried with
exponential back-off and jitter: ``max_retries`` quick retries, then every ``cap_backoff_s``
for as long as it takes, the alert staying in the spool (``spool_alerts``). An alert the
receiver rejects outright (HTTP 400, SNS InvalidParameter) is moved to ``rejected.jsonl`` next
to the spool and logged, not retried forever and not dropped silently.

On disk: segments ``<n>.jsonl`` (one alert JSON a line) and ``<n>.ack`` (how many lines of it
are delivered, written at each flush). A segment is deleted once fully delivered. After a
crash, at most the alerts delivered since the last flush are sent again; each carries its
``alert_id`` (an idempotency key for receivers), and alerts already delivered by this process
are skipped by ``alert_id`` + ``status`` + ``event_count``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from detector.alert import Alert
from detector.errors import SinkError
from detector.metrics import Metrics

log = logging.getLogger(__name__)

REJECTED = "rejected.jsonl"


class DeliveryError(SinkError):
    """One send failed. ``retryable`` False means the receiver will never accept this alert."""

    def __init__(self, message: str, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Transport(Protocol):
    def send(self, payload: bytes, alert: dict[str, Any]) -> None:
        """Deliver one alert (``payload`` is its JSON) or raise ``DeliveryError``."""


def alert_key(alert: dict[str, Any]) -> str:
    """What makes a delivery distinct: the same alert is re-sent only when it changed."""
    return f"{alert.get('alert_id')}:{alert.get('status')}:{alert.get('event_count')}"


class Spool:
    """Alerts waiting for one sink: append-only segments plus how far each is delivered."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._waiting: deque[tuple[int, bytes]] = deque()  # (segment, line), oldest first
        self._segments: dict[int, list[int]] = {}  # segment -> [lines written, lines delivered]
        self._dirty: set[int] = set()
        self._file: IO[bytes] | None = None
        self._current = -1
        self._load()

    def _load(self) -> None:
        numbers = sorted(int(p.stem) for p in self.directory.glob("*.jsonl") if p.stem.isdigit())
        for n in numbers:
            raw = (self.directory / f"{n:012d}.jsonl").read_bytes()
            if raw and not raw.endswith(b"\n"):  # torn by a crash mid-write: that line never counted
                raw = raw[: raw.rfind(b"\n") + 1]
            lines = raw.splitlines()
            try:
                acked = int((self.directory / f"{n:012d}.ack").read_text() or 0)
            except (FileNotFoundError, ValueError):
                acked = 0
            self._segments[n] = [len(lines), min(acked, len(lines))]
            self._waiting.extend((n, line) for line in lines[acked:])
            if acked >= len(lines):
                self._remove(n)
        self._next = (numbers[-1] + 1) if numbers else 0

    def __len__(self) -> int:
        return len(self._waiting)

    def append(self, line: bytes) -> None:
        with self._lock:
            if self._file is None:
                self._current = self._next
                self._next += 1
                self._file = (self.directory / f"{self._current:012d}.jsonl").open("ab")
                self._segments[self._current] = [0, 0]
            self._file.write(line + b"\n")
            self._segments[self._current][0] += 1
            self._waiting.append((self._current, line))

    def head(self) -> bytes | None:
        with self._lock:
            return self._waiting[0][1] if self._waiting else None

    def ack(self) -> None:
        """The head alert is delivered (or rejected for good)."""
        with self._lock:
            n, _ = self._waiting.popleft()
            seg = self._segments[n]
            seg[1] += 1
            self._dirty.add(n)
            if seg[1] >= seg[0] and n != self._current:
                self._remove(n)

    def sync(self) -> None:
        """Make every appended alert durable and record delivery progress; rolls the segment."""
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._file = None
                n, self._current = self._current, -1
                seg = self._segments[n]
                if seg[1] >= seg[0]:
                    self._remove(n)
            for n in sorted(self._dirty):
                if n in self._segments:
                    (self.directory / f"{n:012d}.ack").write_text(str(self._segments[n][1]))
            self._dirty.clear()

    def _remove(self, n: int) -> None:
        for suffix in (".jsonl", ".ack"):
            (self.directory / f"{n:012d}{suffix}").unlink(missing_ok=True)
        self._segments.pop(n, None)
        self._dirty.discard(n)

    def close(self) -> None:
        self.sync()


class SpooledSink:
    """A sink whose alerts are spooled to disk and delivered by a background thread."""

    def __init__(
        self,
        name: str,
        transport: Transport,
        spool_dir: Path,
        metrics: Metrics | None = None,
        max_retries: int = 5,
        base_backoff_s: float = 0.5,
        cap_backoff_s: float = 60.0,
        dedup_size: int = 10_000,
    ) -> None:
        self.name = name
        self.transport = transport
        self.spool = Spool(spool_dir)
        self.metrics = metrics
        self.max_retries = max_retries
        self.base_backoff_s = base_backoff_s
        self.cap_backoff_s = cap_backoff_s
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._dedup_size = dedup_size
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._stopped = threading.Event()
        self.delivered = 0
        self.failures = 0
        self.failing = False
        self._gauge()
        if len(self.spool):
            log.info(
                "re-sending spooled alerts",
                extra={"event": "spool_resend", "sink": name, "alerts": len(self.spool)},
            )
        self._thread = threading.Thread(target=self._deliver_loop, name=f"sink-{name}", daemon=True)
        self._thread.start()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.spool_alerts.labels(self.name).set(len(self.spool))

    def add(self, alert: Alert) -> None:
        self.spool.append(alert.to_json())
        self._gauge()
        self._wake.set()

    def flush(self) -> None:
        try:
            self.spool.sync()
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot write the spool in {self.spool.directory}: {exc}") from exc

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until the spool is empty (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while len(self.spool):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_s: float = 2.0) -> None:
        """Give delivery up to ``timeout_s`` to drain, then stop; what is left stays spooled."""
        self.wait_idle(timeout_s)
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout=max(1.0, timeout_s))
        self.spool.close()
        self._gauge()

    # -- the delivery thread ------------------------------------------------------------------
    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap_backoff_s)
        if attempt > self.max_retries:
            ceiling = self.cap_backoff_s  # past the quick retries: re-send later, slowly
        else:
            ceiling = min(self.cap_backoff_s, self.base_backoff_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not security)

    def _deliver_loop(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            line = self.spool.head()
            if line is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            alert = orjson.loads(line)
            key = alert_key(alert)
            if key in self._delivered:
                self.spool.ack()
                self._gauge()
                continue
            try:
                self.transport.send(line, alert)
            except DeliveryError as exc:
                self.failures += 1
                if self.metrics is not None:
                    self.metrics.sink_failures.labels(self.name).inc()
                if not exc.retryable:
                    self._reject(line, str(exc))
                    attempt = 0
                    continue
                attempt += 1
                delay = self._backoff(attempt, exc.retry_after)
                if not self.failing or attempt == self.max_retries + 1:
                    log.warning(
                        "sink delivery failed; alerts stay spooled and are retried",
                        extra={
                            "event": "sink_failure",
                            "sink": self.name,
                            "detail": str(exc),
                            "attempt": attempt,
                            "retry_in_s": round(delay, 2),
                            "spooled": len(self.spool),
                        },
                    )
                self.failing = True
                self._closing.wait(delay)
                continue
            if self.failing:
                log.info("sink delivering again", extra={"event": "sink_recovered", "sink": self.name})
            self.failing = False
            attempt = 0
            self.spool.ack()
            self.delivered += 1
            self._delivered[key] = None
            if len(self._delivered) > self._dedup_size:
                self._delivered.popitem(last=False)
            if self.metrics is not None:
                self.metrics.sink_delivered.labels(self.name).inc()
            self._gauge()
        self._stopped.set()

    def _reject(self, line: bytes, reason: str) -> None:
        with (self.spool.directory / REJECTED).open("ab") as f:
            f.write(orjson.dumps({"at": time.time(), "reason": reason, "alert": orjson.Fragment(line)}) + b"\n")
        log.error(
            "sink rejected an alert for good; kept in rejected.jsonl",
            extra={"event": "sink_rejected", "sink": self.name, "detail": reason},
        )
        self.spool.ack()
        self._gauge()
