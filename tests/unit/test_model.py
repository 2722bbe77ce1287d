"""Model contract: same scores as scikit-learn, safe round trip, tampering refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detector.errors import ModelError
from detector.features import N_FEATURES
from detector.model import FOREST, MANIFEST, ModelArtifact, fit


@pytest.fixture(scope="module")
def trained() -> tuple[ModelArtifact, object, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, N_FEATURES))
    x[:, :7] = rng.random((3000, 7)) < 0.02
    art, sk = fit(x, trees=50, seed=1)
    return art, sk, x


def test_scores_match_scikit_learn_and_higher_is_more_anomalous(trained) -> None:
    art, sk, x = trained
    probe = np.vstack([x[:200], np.full((1, N_FEATURES), 25.0)])
    ours = art.score(probe)
    assert np.allclose(ours, -sk.score_samples(probe), atol=1e-12)
    assert np.allclose(art.forest.path_lengths_numpy(probe), art.forest.path_lengths(probe), atol=1e-12)
    assert ours[-1] > np.quantile(ours[:-1], 0.99)  # the outlier scores highest


def test_save_load_round_trip_is_identical(trained, tmp_path: Path) -> None:
    art, _, x = trained
    art.save(tmp_path / "m", training={"events": len(x)}, scores=art.score(x))
    loaded = ModelArtifact.load(tmp_path / "m")
    assert np.array_equal(loaded.score(x[:100]), art.score(x[:100]))
    manifest = json.loads((tmp_path / "m" / MANIFEST).read_text())
    assert set(manifest["files"]) == {FOREST}
    assert {"scikit-learn", "numpy"} <= set(manifest["libraries"])
    assert manifest["score_quantiles"]["0.999"] > manifest["score_quantiles"]["0.5"]


def test_tampered_arrays_are_refused(trained, tmp_path: Path) -> None:
    art, _, x = trained
    out = art.save(tmp_path / "m", training={}, scores=art.score(x))
    blob = bytearray((out / FOREST).read_bytes())
    blob[-40] ^= 0xFF
    (out / FOREST).write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="sha256"):
        ModelArtifact.load(out)


def test_pickled_payload_is_never_loaded(trained, tmp_path: Path) -> None:
    art, _, x = trained
    out = art.save(tmp_path / "m", training={}, scores=art.score(x))
    # An attacker replaces the arrays with an object array (needs pickle) and fixes the digest.
    np.savez(out / FOREST, left=np.array([object()], dtype=object))
    manifest = json.loads((out / MANIFEST).read_text())
    import hashlib

    manifest["files"][FOREST] = hashlib.sha256((out / FOREST).read_bytes()).hexdigest()
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"unreadable arrays|missing arrays"):
        ModelArtifact.load(out)


def test_feature_version_mismatch_and_missing_artifact_are_clear(trained, tmp_path: Path) -> None:
    art, _, x = trained
    out = art.save(tmp_path / "m", training={}, scores=art.score(x))
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["feature_version"] = 999
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="retrain"):
        ModelArtifact.load(out)
    with pytest.raises(ModelError, match="not a model artifact"):
        ModelArtifact.load(tmp_path / "nothing-here")


def test_signed_artifacts_need_the_right_key(trained, tmp_path: Path) -> None:
    art, _, x = trained
    out = art.save(tmp_path / "m", training={}, scores=art.score(x), key=b"k1")
    assert ModelArtifact.load(out, key=b"k1").version
    with pytest.raises(ModelError, match="signature"):
        ModelArtifact.load(out, key=b"k2")


def test_contributions_rank_the_extreme_feature_first(trained) -> None:
    art, _, x = trained
    row = np.median(x, axis=0)
    row[9] = 30.0  # burst_10m far outside training
    name, surprise = art.contributions(row)[0]
    assert name == "burst_10m" and surprise >= 2
