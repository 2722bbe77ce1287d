"""From raw blobs to normalised events, with every bad record counted and dead-lettered.

Shared by every runtime (replay, run, bridge, train): ``Ingest.blob`` decodes one blob,
normalises its events, and accounts for what did not make it (metrics by source and
reason, a dead-letter line with the position). The valid records around a bad one are
always kept.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from detector import typed
from detector.decode import LATEST_EVENT_TIME, Rejected, decode
from detector.event import Event, principal_of_raw
from detector.metrics import Metrics
from detector.principal import Principal
from detector.sources.file import SetAside, Unreadable
from detector.textsafe import clip

T = TypeVar("T")

MAX_FUTURE_S = 3600.0  # an eventTime further past this machine's clock is a future_timestamp reject


class DeadLetters:
    """Append-only JSONL of rejected records: reason, position, detail, escaped sample."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()
        self.written = 0

    def write(self, rejected: Rejected, source: str) -> None:
        if self.path is None:
            return
        line = orjson.dumps(
            {
                "at": time.time(),
                "source": source,
                "reason": rejected.reason,
                "position": rejected.position,
                "detail": rejected.detail,
                "sample": rejected.sample,
            }
        )
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
            self._file.write(line + b"\n")
            self.written += 1

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class Ingest:
    """Decode + normalise + account. ``source`` is a bounded label (``file``, ``kinesis``, ...)."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        dead: DeadLetters | None = None,
        log: Any = None,
        keep: Callable[[Principal], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``keep`` selects this process's principals when work is split by principal: the
        others' events are read and counted, then dropped before any baseline work.

        An event timed more than ``MAX_FUTURE_S`` past ``clock()`` is a ``future_timestamp``
        reject: AWS stamps ``eventTime`` before delivery, so such a time is forged or corrupt,
        and accepted it would move the principal's clock (its counters would stop decaying)
        and the event-time watermark (idle eviction would forget everyone) for good.
        """
        self.keep = keep
        self.clock = clock
        self.metrics = metrics
        self.dead = dead or DeadLetters(None)
        self.log = log
        self.rejected: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.records = 0
        self.general_reader = 0  # records the typed reader left to decode
        self.events = 0

    def blob(self, data: bytes, position: str, source: str) -> list[Event]:
        """The normalised events of one blob; everything else is accounted for.

        The fast typed reader takes clean blobs; anything it is unsure of goes through
        ``decode``, which gives the same events plus reasons for what it rejects.
        """
        if type(data) is Unreadable:
            self._unreadable(data, position, source)
            return []
        if type(data) is SetAside:
            self._set_aside(data, source)
            return []
        events, data = typed.read(data)
        if events is None:
            return [ev for ev, _ in self._decoded(data, position, source)]
        return self._kept(events, lambda ev: ev, source, position)

    def pairs(self, data: bytes, position: str, source: str) -> list[tuple[Event, bytes]]:
        """Like ``blob``, each event with its CloudTrail JSON on one line (the bridge forwards it)."""
        if type(data) is Unreadable:
            self._unreadable(data, position, source)
            return []
        if type(data) is SetAside:
            self._set_aside(data, source)
            return []
        pairs, data = typed.read_pairs(data)
        if pairs is None:
            out = []
            for ev, raw in self._decoded(data, position, source):
                try:
                    out.append((ev, orjson.dumps(raw)))
                except orjson.JSONEncodeError as exc:  # nested past orjson's 255 levels: cannot be forwarded
                    sample = clip(repr(raw), 200)
                    self._reject(Rejected("oversized", position, f"cannot forward: {exc}", sample), source)
            return out
        return self._kept(pairs, lambda pair: pair[0], source, position)

    def _kept(self, items: list[T], event: Callable[[T], Event], source: str, position: str) -> list[T]:
        limit = self.clock() + MAX_FUTURE_S
        if any(event(item).time > limit for item in items):
            items = self._drop_future(items, event, limit, position, source)
        total = len(items)
        if self.keep is not None:
            keep = self.keep
            items = [item for item in items if keep(event(item).principal)]
        self._received(source, total, len(items))
        return items

    def _drop_future(
        self, items: list[T], event: Callable[[T], Event], limit: float, position: str, source: str
    ) -> list[T]:
        kept = []
        for item in items:
            ev = event(item)
            if ev.time <= limit:
                kept.append(item)
                continue
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(ev.time, LATEST_EVENT_TIME)))
            self._reject(
                Rejected(
                    "future_timestamp",
                    position,
                    f"eventTime {when} is more than {MAX_FUTURE_S:.0f} s past this machine's clock",
                    clip(f"eventID={ev.event_id} eventName={ev.name}", 200),
                ),
                source,
            )
        return kept

    def _decoded(self, data: bytes, position: str, source: str) -> list[tuple[Event, dict[str, Any]]]:
        """The general reader: ``decode`` and ``Event.of``, every reject accounted for."""
        self.general_reader += 1
        if self.metrics is not None:
            self.metrics.records_general_reader.labels(source).inc()
        decoded = decode(data, position)
        events: list[tuple[Event, dict[str, Any]]] = []
        keep = self.keep
        others = 0
        for raw in decoded.events:
            if keep is not None and not keep(principal_of_raw(raw)):
                others += 1
                continue
            try:
                events.append((Event.of(raw), raw))
            except (ValueError, TypeError, KeyError) as exc:
                # check_event passed, so this is a field of a type we did not expect
                self._reject(
                    Rejected("bad_field_type", position, clip(str(exc), 300), clip(orjson.dumps(raw), 200)), source
                )
        limit = self.clock() + MAX_FUTURE_S
        if any(ev.time > limit for ev, _ in events):
            events = self._drop_future(events, lambda pair: pair[0], limit, position, source)
        for r in decoded.rejected:
            self._reject(r, source)
        for reason, n in decoded.more_rejected.items():
            self._reject_more(reason, n, position, source)
        for kind, _ in decoded.aside:
            self.skipped[kind] += 1
            if self.metrics is not None:
                self.metrics.records_skipped.labels(source, kind).inc()
        for kind, n in decoded.skipped.items():
            self.skipped[kind] += n
            if self.metrics is not None:
                self.metrics.records_skipped.labels(source, kind).inc(n)
        self._received(source, len(events) + others, len(events))
        return events

    def _received(self, source: str, events: int, kept: int) -> None:
        self.records += 1
        self.events += events
        if self.metrics is not None:
            self.metrics.records_received.labels(source).inc()
            if kept:
                self.metrics.events_decoded.labels(source).inc(kept)

    def reject(self, r: Rejected, source: str) -> None:
        """Account for a record refused after decoding (e.g. a Kafka broker would not take it)."""
        self._reject(r, source)

    def _unreadable(self, blob: Unreadable, position: str, source: str) -> None:
        self._received(source, 0, 0)
        self._reject(Rejected(blob.reason, position, clip(blob.detail, 300), ""), source)

    def _set_aside(self, blob: SetAside, source: str) -> None:
        self._received(source, 0, 0)
        self.skipped[blob.kind] += 1
        if self.metrics is not None:
            self.metrics.records_skipped.labels(source, blob.kind).inc()

    def _reject_more(self, reason: str, n: int, position: str, source: str) -> None:
        """Rejects past ``MAX_REJECTS_KEPT`` in one blob: counted, and one dead letter says so."""
        detail = f"{n} more {reason} records in this blob, counted but not written one by one"
        self._reject(Rejected(reason, position, detail, ""), source, count=n)

    def _reject(self, r: Rejected, source: str, count: int = 1) -> None:
        """Count ``count`` records refused for ``r.reason``; ``r`` is their one dead letter and log line."""
        self.rejected[r.reason] += count
        if self.metrics is not None:
            self.metrics.records_rejected.labels(source, r.reason).inc(count)
        self.dead.write(r, source)
        if self.log is not None:
            self.log.warning(
                "rejected record",
                extra={
                    "event": "rejected",
                    "reason": r.reason,
                    "position": r.position,
                    "detail": r.detail,
                    "count": count,
                },
            )
