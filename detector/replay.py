"""Finite inputs through the live code path: blobs -> ingest -> reorder -> core -> alerts.

``detector replay``, ``detector train`` and ``detector evaluate`` all run this loop, so a
number measured offline is a number about the live pipeline.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detector.alert import Alert
from detector.errors import SourceError
from detector.event import Event
from detector.ingest import Ingest
from detector.ordering import Reorder
from detector.pipeline import BatchResult, Detector
from detector.principal import Principal
from detector.sources.file import iter_file_blobs, iter_stdin_blobs, list_files
from detector.terminal import Bar


@dataclass
class Summary:
    records: int = 0
    general_reader: int = 0  # records the fast typed reader left to the general decoder
    events: int = 0
    scored: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    first_event: float = 0.0
    last_event: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "records_general_reader": self.general_reader,
            "events": self.events,
            "scored": self.scored,
            "duplicates": self.duplicates,
            "late": self.late,
            "rejected": dict(self.rejected),
            "skipped": dict(self.skipped),
            "alerts": dict(self.alerts),
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds) if self.seconds else 0,
        }


def open_inputs(specs: Iterable[str], endpoint_url: str | None = None) -> Iterator[tuple[bytes, str, str]]:
    """(blob, position, source label) for each path, directory, ``-`` or ``s3://`` URI."""
    for spec in specs:
        if spec == "-":
            for data, pos in iter_stdin_blobs():
                yield data, pos, "stdin"
        elif spec.startswith("s3://"):
            from detector.sources.s3 import iter_s3_blobs, s3_client

            client = s3_client(endpoint_url)
            for data, pos in iter_s3_blobs(spec, client):
                yield data, pos, "s3"
        else:
            path = Path(spec)
            if not path.exists():
                raise SourceError(f"{spec}: no such file or directory")
            for data, pos in iter_file_blobs(path):
                yield data, pos, "file"


def input_sizes(specs: Iterable[str]) -> dict[str, int] | None:
    """Each local input file's size in bytes, by the position ``open_inputs`` gives it; None when
    a total cannot be known up front (stdin, S3, a path that does not exist)."""
    sizes: dict[str, int] = {}
    for spec in specs:
        path = Path(spec)
        if spec == "-" or spec.startswith("s3://") or not path.exists():
            return None
        for f in list_files(path):
            try:
                sizes[str(f)] = f.stat().st_size
            except OSError:  # unreadable: open_inputs counts it as a reject; it adds nothing to read
                sizes[str(f)] = 0
    return sizes


class Progress:
    """A progress bar on a terminal (stderr) over the input bytes, with total and ETA; silent otherwise.

    Local files and their sizes are known up front (``input_sizes``), so the bar has a total; for
    stdin and S3 it counts the bytes read. The description keeps the events, rejects and alerts
    so far.
    """

    def __init__(
        self,
        enabled: bool | None = None,
        sizes: dict[str, int] | None = None,
        description: str = "replay",
        alerts: bool = True,
    ) -> None:
        """``alerts=False`` leaves the alert count out (training runs no model: its rule alerts mean nothing)."""
        self.alerts = alerts
        self.sizes = dict(sizes) if sizes is not None else None
        total = sum(self.sizes.values()) if self.sizes is not None else None
        self.bar = Bar(description, total, "bytes", enabled=enabled)
        self.enabled = self.bar.enabled
        self.description = description
        self.done = 0

    @classmethod
    def for_inputs(
        cls, specs: Iterable[str], enabled: bool | None = None, description: str = "replay", alerts: bool = True
    ) -> Progress:
        specs = list(specs)
        probe = Bar(description, None, "bytes", enabled=enabled)
        return cls(probe.enabled, input_sizes(specs) if probe.enabled else None, description, alerts)

    def update(self, summary: Summary, force: bool = False, position: str | None = None, nbytes: int = 0) -> None:
        if not self.enabled:
            return
        if position is not None:
            self.done += self.sizes.pop(position, 0) if self.sizes is not None else nbytes
        alerts = sum(summary.alerts.values())
        rejected = sum(summary.rejected.values())
        counts = f"{summary.events:,} events, {rejected:,} rejected" + (f", {alerts:,} alerts" if self.alerts else "")
        self.bar.update(self.done, description=f"{self.description}: {counts}")
        if force:
            self.bar.close()


def run_replay(
    inputs: Iterable[tuple[bytes, str, str]],
    detector: Detector,
    ingest: Ingest,
    lateness_s: float,
    batch_size: int,
    on_result: Callable[[list[Event], BatchResult], None] | None = None,
    on_alerts: Callable[[list[Alert]], None] | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Drive every blob through the core in event-time order; returns the run summary.

    ``Ingest(keep=...)`` selects this process's share of principals when a replay is split
    across processes (``replay_parallel``); the rest is decoded and accounted for, not scored.
    """
    summary = Summary()
    started = time.perf_counter()
    reorder: Reorder[Event] = Reorder(lateness_s)
    pending: list[Event] = []

    def run_batch(batch: list[Event]) -> None:
        result = detector.process(batch)
        summary.scored += result.scored
        summary.duplicates += result.duplicates
        for a in result.alerts:
            if a.status == "open":
                summary.alerts[a.kind] += 1
        if on_result is not None:
            on_result(batch, result)
        if on_alerts is not None and result.alerts:
            on_alerts(result.alerts)

    try:
        for data, position, source in inputs:
            events = ingest.blob(data, position, source)
            pending.extend(reorder.push(events))
            while len(pending) >= batch_size:
                run_batch(pending[:batch_size])
                del pending[:batch_size]
            summary.seconds = time.perf_counter() - started
            summary.records = ingest.records
            summary.events = ingest.events
            if progress is not None:
                summary.rejected = ingest.rejected
                progress.update(summary, position=position, nbytes=len(data))
    except BaseException:  # a source error (or Ctrl-C) mid-way: the bar gives the terminal back, then it goes on up
        if progress is not None:
            progress.bar.close()
        raise
    pending.extend(reorder.flush())
    for i in range(0, len(pending), batch_size):
        run_batch(pending[i : i + batch_size])
    summary.seconds = time.perf_counter() - started
    summary.records = ingest.records
    summary.general_reader = ingest.general_reader
    summary.events = ingest.events
    summary.rejected = Counter(ingest.rejected)
    summary.skipped = Counter(ingest.skipped)
    summary.late = reorder.late
    if progress is not None:
        progress.update(summary, force=True)
    return summary


@dataclass
class TrainingRows:
    """Feature rows for training, with what calibration needs to know about each."""

    x: np.ndarray  # [rows, N_FEATURES]
    eligible: np.ndarray  # bool: the principal was old enough to alert
    classes: np.ndarray  # str: its sticky caller class
    keys: np.ndarray  # str: its principal key (for per-principal caps)
    start: float = float("inf")
    end: float = float("-inf")
    hours: np.ndarray | None = None  # int64: each row's event hour (time // 3600), for per-hour caps


def collect_features(
    inputs: Iterable[tuple[bytes, str, str]],
    detector: Detector,
    ingest: Ingest,
    lateness_s: float,
    batch_size: int,
    since: float | None = None,
    until: float | None = None,
    progress: Progress | None = None,
) -> tuple[TrainingRows, Summary]:
    """Training: the same loop, keeping the feature rows of events inside [since, until)."""
    chunks: list[tuple[np.ndarray, np.ndarray, list[str], list[str], np.ndarray]] = []
    span = {"start": float("inf"), "end": float("-inf")}

    def keep(batch: list[Event], result: BatchResult) -> None:
        times = np.fromiter((ev.time for ev in result.events), float, len(result.events))
        mask = np.ones(times.size, dtype=bool)
        if since is not None:
            mask &= times >= since
        if until is not None:
            mask &= times < until
        if mask.any():
            idx = np.flatnonzero(mask).tolist()
            chunks.append(
                (
                    result.features[mask],
                    result.eligible[mask],
                    [result.classes[i] for i in idx],
                    [result.events[i].principal.key for i in idx],
                    (times[mask] // 3600).astype(np.int64),
                )
            )
            span["start"] = min(span["start"], float(times[mask].min()))
            span["end"] = max(span["end"], float(times[mask].max()))

    summary = run_replay(inputs, detector, ingest, lateness_s, batch_size, on_result=keep, progress=progress)
    if chunks:
        rows = TrainingRows(
            np.concatenate([c[0] for c in chunks]),
            np.concatenate([c[1] for c in chunks]),
            np.array([cls for c in chunks for cls in c[2]]),
            np.array([k for c in chunks for k in c[3]]),
            span["start"],
            span["end"],
            np.concatenate([c[4] for c in chunks]),
        )
    else:
        rows = TrainingRows(np.empty((0, 0)), np.zeros(0, bool), np.array([], str), np.array([], str))
    return rows, summary


@dataclass
class ParallelResult:
    summary: Summary
    alerts: list[bytes]  # JSON lines, in event-time order of their trigger
    principals: int


def _share(workers: int, index: int) -> Callable[[Principal], bool]:
    from detector.baseline import stable_hash

    return lambda p: stable_hash(p.key) % workers == index


def _replay_worker(
    specs: list[str],
    endpoint_url: str | None,
    settings: Any,
    model_path: str | None,
    workers: int,
    index: int,
    dead_letters: str | None,
    only: str | None = None,
) -> tuple[Summary, list[tuple[float, bytes]], int]:
    from detector.ingest import DeadLetters
    from detector.model import ModelArtifact
    from detector.train import model_key

    model = (
        ModelArtifact.load(Path(model_path), key=model_key(), require_signature=settings.require_signature)
        if model_path
        else None
    )
    detector = Detector(settings, model, store={}, only=only)
    # Every worker decodes everything; only the first one reports bad records, so each is
    # dead-lettered and counted once.
    dead = DeadLetters(Path(dead_letters) if dead_letters and index == 0 else None)
    alerts: list[tuple[float, bytes]] = []

    def collect(batch: list[Alert]) -> None:
        alerts.extend((float(a.context["trigger_event_time"]), a.to_json()) for a in batch)

    try:
        summary = run_replay(
            open_inputs(specs, endpoint_url),
            detector,
            Ingest(dead=dead, keep=_share(workers, index)),
            settings.pipeline.allowed_lateness_s,
            settings.pipeline.batch_size,
            on_alerts=collect,
        )
    finally:
        dead.close()
    return summary, alerts, len(detector.store)


def replay_parallel(
    specs: list[str],
    settings: Any,
    model_path: str | None,
    workers: int,
    endpoint_url: str | None = None,
    dead_letters: str | None = None,
    only: str | None = None,
) -> ParallelResult:
    """Replay split across processes by principal (each principal's state lives in one).

    The same partitioning as the Kafka workers: alerts and baselines are those of a
    single-process replay, because no state is shared between principals. Decoding is
    repeated in every process (that is the price of not shipping events between them).
    """
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        parts = pool.starmap(
            _replay_worker,
            [(list(specs), endpoint_url, settings, model_path, workers, i, dead_letters, only) for i in range(workers)],
        )
    first = parts[0][0]
    summary = Summary(
        records=first.records,
        general_reader=first.general_reader,
        events=first.events,
        rejected=first.rejected,
        skipped=first.skipped,
        seconds=max(p[0].seconds for p in parts),
    )
    for s, _, _ in parts:
        summary.scored += s.scored
        summary.duplicates += s.duplicates
        summary.late += s.late
        summary.alerts.update(s.alerts)
    merged = sorted((a for _, alerts, _ in parts for a in alerts), key=lambda ta: ta[0])
    return ParallelResult(summary, [line for _, line in merged], sum(p[2] for p in parts))
