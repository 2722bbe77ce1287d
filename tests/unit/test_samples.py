"""Every detection's sample events (``detector/samples/<kind>.json``) replayed through the real
reader and detector: each case fires its detection, or stays quiet, as its file says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml

from detector import samples
from detector.alert import KINDS
from detector.ingest import Ingest
from detector.model import fit
from detector.pipeline import Detector
from detector.settings import load

CASES = [(kind, i) for kind in samples.kinds() for i in range(len(samples.load(kind)["cases"]))]


def _detector(sample: dict[str, Any], tmp_path: Path) -> tuple[Detector, Ingest]:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(sample.get("settings", {})))
    det = Detector(load(config, env={}), None, store={})
    ingest = Ingest(clock=lambda: samples.T0 + 365 * 86400.0)
    records = list(samples.history(sample))
    rows, eligible = [], []
    for i in range(0, len(records), 1000):
        events = ingest.blob(orjson.dumps({"Records": records[i : i + 1000]}), f"history#{i}", "file")
        result = det.process(events)
        assert not result.alerts, [a.summary for a in result.alerts]  # the history itself is quiet
        rows.append(result.features)
        eligible.append(result.eligible)
    if sample.get("model") == "history":  # a forest fitted on the rows the history gives
        x = np.vstack(rows)[np.concatenate(eligible)]
        det.set_model(fit(x, trees=100, seed=0))
    return det, ingest


@pytest.mark.parametrize(("kind", "index"), CASES, ids=[f"{k}-{i}" for k, i in CASES])
def test_each_sample_fires_or_stays_quiet_as_it_says(kind: str, index: int, tmp_path: Path) -> None:
    sample = samples.load(kind)
    case = sample["cases"][index]
    det, ingest = _detector(sample, tmp_path)
    records = samples.case_records(sample, case)
    alerts = det.process(ingest.blob(orjson.dumps({"Records": records}), "case", "file")).alerts
    assert not ingest.rejected
    raised = {a.kind for a in alerts if a.status == "open"}
    if case["expect"] == "fires":
        assert kind in raised, (case["case"], raised)
    else:
        assert case["expect"] == "quiet"
        assert kind not in raised, (case["case"], [a.summary for a in alerts if a.kind == kind])


def test_every_detection_has_samples_that_fire_and_that_stay_quiet() -> None:
    have = {kind: {c["expect"] for c in samples.load(kind)["cases"]} for kind in samples.kinds()}
    assert set(have) <= set(KINDS)
    missing = [k for k in KINDS if have.get(k) != {"fires", "quiet"}]
    assert not missing, missing
