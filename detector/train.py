"""Training: archives -> the live feature path -> IsolationForest -> a versioned artifact.

Rows come from ``replay.collect_features``, i.e. the same ingest, reorder, dedup and
baseline walk that scoring uses; only the model is absent. Baselines warm up on every
event, but rows are kept only inside the requested training window.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from detector.alert import iso
from detector.errors import ModelError
from detector.ingest import Ingest
from detector.model import ModelArtifact, fit
from detector.pipeline import Detector
from detector.replay import collect_features
from detector.settings import Settings

MIN_ROWS = 200


def model_key() -> bytes | None:
    """Optional HMAC key for signing/verifying artifacts (``DETECTOR_MODEL_KEY``)."""
    key = os.environ.get("DETECTOR_MODEL_KEY")
    return key.encode() if key else None


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
) -> tuple[ModelArtifact, dict[str, object]]:
    ingest = ingest or Ingest()
    detector = Detector(settings, None, store={})
    x, summary, span = collect_features(
        inputs, detector, ingest, settings.pipeline.allowed_lateness_s, settings.pipeline.batch_size, since, until
    )
    if x.shape[0] < MIN_ROWS:
        raise ModelError(
            f"only {x.shape[0]} events in the training window; need at least {MIN_ROWS} "
            "(check the paths and --since/--until)"
        )
    rng = np.random.default_rng(seed)
    rows = x if x.shape[0] <= max_rows else x[rng.choice(x.shape[0], max_rows, replace=False)]
    artifact, _ = fit(rows, trees=trees, seed=seed)
    scores = artifact.score(rows)
    training = {
        "start": iso(span["start"]),
        "end": iso(span["end"]),
        "events": int(x.shape[0]),
        "rows_fitted": int(rows.shape[0]),
        "principals": len(detector.store),
        "rejected": dict(ingest.rejected),
        "seed": seed,
    }
    artifact.save(out, training=training, scores=scores, key=model_key())
    return artifact, {**summary.to_dict(), "training": training}
