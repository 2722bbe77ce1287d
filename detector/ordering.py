"""Event time: deduplication by eventID and a bounded reorder buffer.

CloudTrail delivers late and out of order (S3 files ~5 min after the calls, overlapping in
time, unsorted inside). ``Reorder`` holds events until the watermark (the largest event
time seen minus the allowed lateness) passes them, then releases them sorted. An event
that arrives behind the watermark is released at once and counted as late: it is still
scored, and baselines absorb it without decaying backwards.

``SeenIds`` remembers eventIDs for a window of event time so an event delivered twice
(overlapping files, a replay after a crash, CloudWatch Logs and S3 both configured) is
counted once. It stores 64-bit digests in per-minute buckets, so memory is bounded by the
event rate times the window, and it serialises for checkpoints.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import struct
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar


class Timed(Protocol):
    @property
    def time(self) -> float: ...

    @property
    def event_id(self) -> str: ...


T = TypeVar("T", bound=Timed)


def _digest(event_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class SeenIds:
    """eventIDs seen within ``window_s`` of event time (a 64-bit digest each)."""

    def __init__(self, window_s: float = 3600.0) -> None:
        self.window_s = window_s
        self._buckets: dict[int, set[int]] = {}
        self._newest = 0

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def add(self, event_id: str, time: float) -> bool:
        """Record an eventID; False if it was already seen (a duplicate)."""
        if self.window_s <= 0:
            return True
        h = _digest(event_id)
        minute = int(time // 60)
        # Duplicates of one event share its event time, so only its own minute is checked.
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._buckets[minute] = set()
        elif h in bucket:
            return False
        bucket.add(h)
        if minute > self._newest:
            self._newest = minute
            self._expire()
        return True

    def _expire(self) -> None:
        oldest = self._newest - int(self.window_s // 60) - 1
        for m in [m for m in self._buckets if m < oldest]:
            del self._buckets[m]

    def encode(self) -> bytes:
        parts = [struct.pack("<dq", self.window_s, self._newest)]
        for minute, ids in sorted(self._buckets.items()):
            parts.append(struct.pack("<qI", minute, len(ids)))
            parts.append(struct.pack(f"<{len(ids)}Q", *sorted(ids)))  # sorted: equal sets, equal bytes
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> SeenIds:
        window, newest = struct.unpack_from("<dq", data, 0)
        seen = cls(window)
        seen._newest = newest
        off = 16
        while off < len(data):
            minute, n = struct.unpack_from("<qI", data, off)
            off += 12
            seen._buckets[minute] = set(struct.unpack_from(f"<{n}Q", data, off))
            off += 8 * n
        return seen


class Reorder(Generic[T]):
    """Release events in event-time order once the watermark has passed them."""

    def __init__(self, lateness_s: float, max_buffered: int = 2_000_000) -> None:
        self.lateness_s = lateness_s
        self.max_buffered = max_buffered
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self.max_time = float("-inf")
        self.late = 0

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def watermark(self) -> float:
        return self.max_time - self.lateness_s

    def push(self, events: Iterable[T]) -> list[T]:
        """Add events; return those now behind the watermark, oldest first."""
        heap = self._heap
        for ev in events:
            t = ev.time
            if t > self.max_time:
                self.max_time = t
            elif t < self.max_time - self.lateness_s:
                self.late += 1  # behind the watermark: released with the next batch, counted
            heapq.heappush(heap, (t, next(self._seq), ev))
        return self._release(self.watermark)

    def _release(self, until: float) -> list[T]:
        heap = self._heap
        out = []
        while heap and (heap[0][0] <= until or len(heap) > self.max_buffered):
            out.append(heapq.heappop(heap)[2])
        return out

    def flush(self) -> list[T]:
        """Everything still held (end of input, shutdown)."""
        return self._release(float("inf"))
