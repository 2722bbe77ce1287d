"""What every live source provides: raw records with positions, and commits.

A source reads; it does not decode. ``poll`` returns raw records (bytes + where they came
from); the runtime decodes them through ``Ingest`` and, once the alerts for a batch are
handed to the sinks and the state is checkpointed, calls ``commit`` with the positions it
has fully processed. Delivery is at-least-once: after a crash the source resumes from the
last committed positions and the core's eventID dedup absorbs the replay.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Record:
    data: bytes
    position: str  # human-readable: "kinesis:stream/shardId-000:4960...", "s3://bucket/key"
    source: str  # bounded label for metrics: "kinesis", "s3", "file", "stdin", "simulate"
    cursor: tuple[str, str] = ("", "")  # (partition, offset) to commit: shard + sequence, or prefix + key
    arrival: float = 0.0  # monotonic time the record was read (latency metrics)


class Source(Protocol):
    name: str
    # True when records arrive in real time (Kinesis, S3 follow, the paced demo): the runtime
    # then also releases held events and partial batches on wall-clock time. A finite replayable
    # source (files) is batched by count only, so its results never depend on timing.
    live: bool

    def start(self, positions: dict[str, str]) -> None:
        """Connect and resume after ``positions`` (partition -> last committed offset)."""

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` new records; waits at most ``timeout_s`` when there are none."""
        ...

    def positions(self) -> dict[str, str]:
        """Offsets of everything returned by ``poll`` so far (what a checkpoint stores)."""
        ...

    def commit(self, positions: dict[str, str]) -> None:
        """``positions`` are checkpointed: acknowledge upstream (delete SQS messages); may be a no-op."""

    @property
    def status(self) -> str:
        """Why the source is not healthy right now (throttled, unreachable), or "" when it is."""
        ...

    @property
    def exhausted(self) -> bool:
        """True for a finite source (files, a backfill) that has returned everything."""
        ...

    def stop(self) -> None: ...


def describe(source: Any) -> str:
    return str(getattr(source, "name", type(source).__name__))


def drain(q: queue.Queue[T], timeout_s: float, enough: Callable[[], bool]) -> Iterator[T]:
    """What reader threads queued: the first item (waiting up to ``timeout_s``), then whatever
    else is already there, until the queue is empty or ``enough()`` says the poll is full."""
    try:
        item = q.get(timeout=timeout_s) if timeout_s > 0 else q.get_nowait()
    except queue.Empty:
        return
    while True:
        yield item
        if enough():
            return
        try:
            item = q.get_nowait()
        except queue.Empty:
            return


def put(q: queue.Queue[T], item: T, stop: threading.Event) -> bool:
    """Queue ``item`` for ``poll`` from a reader thread, waiting while the queue is full;
    False if ``stop`` was set first (the source is shutting down)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False
