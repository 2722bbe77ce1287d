"""Training: archives -> the live feature path -> one forest per peer group -> a versioned artifact.

Rows come from ``replay.collect_features``, i.e. the same ingest, reorder, dedup and
baseline walk that scoring uses; only the model is absent. Baselines warm up on every
event, but rows are kept only inside the requested training window. The forests are fitted
and calibrated on the rows of principals old enough to alert (``policy.eligible``): rows
from principals hours old would set thresholds for cases policy never lets alert. Each
principal contributes at most ``PER_HOUR_ROWS`` rows per hour of event time and
``PER_PRINCIPAL_ROWS`` in all, so the busiest job does not decide what "usual" means for
everyone, and one burst (an `aws s3 sync` of 400 objects) is one unusual hour, not 400 rows
that would make its own values look common.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from detector.alert import iso
from detector.baseline import N_PEAKS, N_WIN, Baseline
from detector.errors import ModelError
from detector.ingest import Ingest
from detector.model import GROUP_OF_CLASS, ModelArtifact, fit
from detector.pipeline import ENCODED_SIZE, Detector
from detector.replay import Progress, TrainingRows, collect_features
from detector.settings import Settings
from detector.terminal import StatusLine

MIN_ROWS = 200
PER_PRINCIPAL_ROWS = 5000
PER_HOUR_ROWS = 20


def model_key() -> bytes | None:
    """Optional HMAC key for signing/verifying artifacts (``DETECTOR_MODEL_KEY``)."""
    key = os.environ.get("DETECTOR_MODEL_KEY")
    return key.encode() if key else None


def _capped(keys: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Indices keeping at most ``limit`` rows per principal, drawn at random, in order."""
    order = rng.permutation(keys.size)
    seen: dict[str, int] = {}
    keep = []
    for i in order.tolist():
        k = keys[i]
        c = seen.get(k, 0)
        if c < limit:
            seen[k] = c + 1
            keep.append(i)
    return np.sort(np.array(keep, dtype=np.int64))


def mature_peaks(store: dict[str, bytes]) -> dict[str, np.ndarray]:
    """Per peer group, the committed peaks of every principal with a mature baseline."""
    out: dict[str, list[list[float]]] = {}
    for data in store.values():
        b = Baseline.decode(data[:ENCODED_SIZE])
        if b.total < 50 or b.last_time - b.first_seen < 86400.0:
            continue
        group = GROUP_OF_CLASS.get(b.caller_class, "automation")
        out.setdefault(group, []).append(list(b.fl[N_WIN : N_WIN + N_PEAKS]))
    return {g: np.array(v, dtype=np.float64) for g, v in out.items()}


def fit_rows(
    rows: TrainingRows, store: dict[str, bytes], trees: int = 100, max_rows: int = 500_000, seed: int = 0
) -> tuple[ModelArtifact, dict[str, object]]:
    """Fit the peer-group forests on the eligible rows (unsaved artifact, training summary)."""
    total = int(rows.x.shape[0])
    eligible = int(rows.eligible.sum())
    if eligible < MIN_ROWS:
        raise ModelError(
            f"only {eligible} events in the training window from principals old enough to alert "
            f"({total} in all); need at least {MIN_ROWS}: train on more days (check the paths and --since/--until)"
        )
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(rows.eligible)
    if rows.hours is not None:  # one burst is one busy hour, not hundreds of "usual" rows
        hour_keys = np.char.add(np.char.add(rows.keys[idx].astype(str), "\x1f"), rows.hours[idx].astype(str))
        idx = idx[_capped(hour_keys, PER_HOUR_ROWS, rng)]
    idx = idx[_capped(rows.keys[idx], PER_PRINCIPAL_ROWS, rng)]
    if idx.size > max_rows:
        idx = np.sort(rng.choice(idx, max_rows, replace=False))
    groups = np.array([GROUP_OF_CLASS.get(c, "automation") for c in rows.classes[idx].tolist()])
    artifact = fit(rows.x[idx], groups, mature_peaks(store), trees=trees, seed=seed)
    training = {
        "start": iso(rows.start),
        "end": iso(rows.end),
        "events": total,
        "rows_eligible": eligible,
        "rows_fitted": int(idx.size),
        "rows_by_group": {g: int((groups == g).sum()) for g in sorted(set(groups.tolist()))},
        "principals": len(store),
        "seed": seed,
    }
    return artifact, training


def train(
    inputs: Iterable[tuple[bytes, str, str]],
    out: Path,
    settings: Settings,
    since: float | None = None,
    until: float | None = None,
    trees: int = 100,
    max_rows: int = 500_000,
    seed: int = 0,
    ingest: Ingest | None = None,
    progress: Progress | None = None,
) -> tuple[ModelArtifact, dict[str, object]]:
    """``progress`` shows reading the inputs, then a status line while the forests are fitted."""
    ingest = ingest or Ingest()
    store: dict[str, bytes] = {}
    detector = Detector(settings, None, store=store)
    rows, summary = collect_features(
        inputs,
        detector,
        ingest,
        settings.pipeline.allowed_lateness_s,
        settings.pipeline.batch_size,
        since,
        until,
        progress=progress,
    )
    fitting = StatusLine(enabled=progress.enabled if progress is not None else False)
    fitting.update(f"train: fitting {trees} trees per forest on {int(rows.eligible.sum()):,} eligible rows")
    try:
        artifact, training = fit_rows(rows, store, trees, max_rows, seed)
    finally:
        fitting.stop()
    training["rejected"] = dict(ingest.rejected)
    artifact.save(out, training=training, key=model_key())
    read = summary.to_dict()
    # Training runs no model, so the rule alerts replay would count mean nothing here.
    del read["alerts"]
    read["late"] = {
        "events": summary.late,
        "meaning": f"arrived more than pipeline.allowed_lateness_s ({settings.pipeline.allowed_lateness_s:g} s) "
        "behind the newest event read; still learned from, out of event-time order",
    }
    return artifact, {**read, "training": training}
