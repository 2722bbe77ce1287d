"""Model contract: same scores as scikit-learn, peer groups and their calibration, safe round
trip, tampering refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from detector.baseline import N_PEAKS
from detector.errors import ModelError
from detector.features import FEATURE_INDEX, FEATURES, N_FEATURES
from detector.model import FOREST, MANIFEST, ModelArtifact, fit, fit_forest, fit_group, range_anchors


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Zero-inflated rows like real ones: most features 0, a few percent of each mildly positive."""
    x = np.zeros((n, N_FEATURES))
    for j, f in enumerate(FEATURES):
        hit = rng.random(n) < 0.03
        x[hit, j] = rng.uniform(0, 0.3 * f.span, hit.sum())
    return x


@pytest.fixture(scope="module")
def trained() -> tuple[ModelArtifact, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = _rows(rng, 4000)
    groups = np.array(["human"] * 1500 + ["automation"] * 2500)
    peaks = {"human": rng.uniform(0, 50, (30, N_PEAKS)), "automation": rng.uniform(0, 5000, (40, N_PEAKS))}
    return fit(x, groups, peaks, trees=50, seed=1), x, groups


def test_scores_match_scikit_learn_and_higher_is_more_anomalous() -> None:
    x = _rows(np.random.default_rng(4), 3000)
    forest, sk = fit_forest(x, trees=50, seed=1)
    probe = np.vstack([x[:200], np.full((1, N_FEATURES), 6.0)])
    ours = forest.score(probe)
    assert np.allclose(ours, -sk.score_samples(probe), atol=1e-12)
    assert ours[-1] > np.quantile(ours[:-1], 0.99)  # the outlier scores highest


def test_a_feature_that_never_moved_in_training_still_isolates_a_row() -> None:
    # Nobody deleted anything in training: without range anchors no tree could split on deletes.
    x = _rows(np.random.default_rng(5), 3000)
    j = FEATURE_INDEX["deletes_10m"]
    x[:, j] = 0.0
    probe = np.zeros((2, N_FEATURES))
    probe[1, j] = 5.0
    bare, _ = fit_forest(x, trees=50, seed=1, anchors=0.0)
    anchored, _ = fit_forest(x, trees=50, seed=1)
    assert bare.score(probe)[1] == pytest.approx(bare.score(probe)[0])  # blind to it
    assert anchored.score(probe)[1] > np.quantile(anchored.score(x), 0.8)
    # one feature far out is diluted in a forest over every feature; the group's volume forest
    # (a subspace of 7) puts it above all but 1 in 200 training rows
    g = fit_group("human", x, np.zeros((0, N_PEAKS)), trees=50, seed=1)
    assert g.score(probe)[1] > 0.995 > g.score(probe)[0]
    anchors = range_anchors(100, np.random.default_rng(0))
    assert ((anchors > 0).sum(axis=1) >= 1).all() and ((anchors > 0).sum(axis=1) <= 3).all()


def test_each_peer_group_is_scored_and_calibrated_on_its_own_rows(trained) -> None:
    art, x, _groups = trained
    assert set(art.groups) == {"human", "automation", "all"}
    assert art.group("human").name == "human" and art.group("aws-service").name == "automation"
    h = art.groups["human"]
    assert h.rows == 1500 and [m.name for m in h.members] == ["all", "volume", "context", "calls", "time"]
    idx = np.array([art.group_index()["human"]] * 10)
    assert np.array_equal(art.score(x[:10], idx), h.score(x[:10]))
    # scores are calibrated shares of the group's own rows: about 1 in 100 is above 0.99. Rows
    # tied at the top (saturated rarity) share one score: the share of the tie, never more.
    s = h.score(x[:1500])
    for q in (0.9, 0.99, 0.997):
        assert 0.0 < (s > q).mean() <= (1.0 - q) + 2 / 1500, q
    assert (s > 0.999).mean() <= 0.001 + 2 / 1500  # past what 1,500 rows resolve, the tail is extrapolated
    far = h.score(np.full((1, N_FEATURES), 50.0))
    assert far[0] > s.max() and far[0] > 1 - 1e-4  # a row far past every training row ranks above them all
    # a young principal is compared with its group's typical peaks, not the other group's
    assert art.groups["automation"].peer_peaks.mean() > 20 * h.peer_peaks.mean()


def test_a_group_too_small_for_its_own_forest_falls_back_to_all() -> None:
    x = _rows(np.random.default_rng(6), 2000)
    art = fit(x, np.array(["human"] * 100 + ["automation"] * 1900), trees=20, seed=0)
    assert "human" not in art.groups and art.group("human").name == "all"


def test_surprise_says_how_rare_a_value_is_for_the_group(trained) -> None:
    art, x, _ = trained
    g = art.groups["human"]
    row = np.zeros(N_FEATURES)
    row[FEATURE_INDEX["bytes_1h"]] = 7.0  # past every training row
    s = g.surprise(row)
    assert s[FEATURE_INDEX["bytes_1h"]] == pytest.approx(np.log10(g.rows) + 0.3)
    assert s[FEATURE_INDEX["reads_10m"]] == 0.0  # an ordinary 0 is not surprising
    typical = np.quantile(x[:1500, FEATURE_INDEX["bytes_1h"]][x[:1500, FEATURE_INDEX["bytes_1h"]] > 0], 0.5)
    row[FEATURE_INDEX["bytes_1h"]] = typical
    assert 1.0 < g.surprise(row)[FEATURE_INDEX["bytes_1h"]] < 2.5  # about 1 in 70 rows are that large


def test_save_load_round_trip_is_identical(trained, tmp_path: Path) -> None:
    art, x, _ = trained
    art.save(tmp_path / "m", training={"events": len(x)})
    loaded = ModelArtifact.load(tmp_path / "m")
    for name, g in art.groups.items():
        lg = loaded.groups[name]
        assert np.array_equal(lg.score(x[:100]), g.score(x[:100]))
        assert np.array_equal(lg.tails, g.tails) and np.array_equal(lg.peer_peaks, g.peer_peaks)
    manifest = json.loads((tmp_path / "m" / MANIFEST).read_text())
    assert set(manifest["files"]) == {FOREST}
    assert {"scikit-learn", "numpy"} <= set(manifest["libraries"])
    assert set(manifest["groups"]["human"]["members"]) == {"all", "volume", "context", "calls", "time"}


def test_tampered_arrays_are_refused(trained, tmp_path: Path) -> None:
    art, _, _ = trained
    out = art.save(tmp_path / "m", training={})
    blob = bytearray((out / FOREST).read_bytes())
    blob[-40] ^= 0xFF
    (out / FOREST).write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="sha256"):
        ModelArtifact.load(out)


def _rewrite(out: Path, **arrays: np.ndarray) -> None:
    """Replace the arrays and fix the digest, as an attacker who can write the directory would."""
    np.savez(out / FOREST, **arrays)  # type: ignore[arg-type]
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"][FOREST] = hashlib.sha256((out / FOREST).read_bytes()).hexdigest()
    (out / MANIFEST).write_text(json.dumps(manifest))


def test_pickled_payload_is_never_loaded(trained, tmp_path: Path) -> None:
    art, _, _ = trained
    out = art.save(tmp_path / "m", training={})
    _rewrite(out, **{"all.all.left": np.array([object()], dtype=object)})
    with pytest.raises(ModelError, match=r"unreadable arrays|missing arrays"):
        ModelArtifact.load(out)


def test_calibration_arrays_of_the_wrong_shape_are_refused(trained, tmp_path: Path) -> None:
    art, _, _ = trained
    out = art.save(tmp_path / "m", training={})
    with np.load(out / FOREST) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["human.tails"] = arrays["human.tails"][:, :3]
    _rewrite(out, **arrays)
    with pytest.raises(ModelError, match=r"\(human\): tails"):
        ModelArtifact.load(out)


def test_feature_version_mismatch_and_missing_artifact_are_clear(trained, tmp_path: Path) -> None:
    art, _, _ = trained
    out = art.save(tmp_path / "m", training={})
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["feature_version"] = 999
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="retrain"):
        ModelArtifact.load(out)
    with pytest.raises(ModelError, match="not a model artifact"):
        ModelArtifact.load(tmp_path / "nothing-here")


def test_signed_artifacts_need_the_right_key(trained, tmp_path: Path) -> None:
    art, _, _ = trained
    out = art.save(tmp_path / "m", training={}, key=b"k1")
    assert ModelArtifact.load(out, key=b"k1").version
    with pytest.raises(ModelError, match="signature"):
        ModelArtifact.load(out, key=b"k2")


def test_training_takes_a_busy_hour_as_one_hour_not_hundreds_of_usual_rows() -> None:
    from detector.replay import TrainingRows
    from detector.train import PER_HOUR_ROWS, fit_rows

    rng = np.random.default_rng(3)
    n = 3000
    x = _rows(rng, n)
    keys = np.array([f"p{i % 30}" for i in range(n)])
    hours = np.arange(n, dtype=np.int64) // 30  # every principal once an hour...
    burst = np.zeros((400, N_FEATURES))
    burst[:, FEATURE_INDEX["reads_10m"]] = 3.0  # ...and one of them reads 400 times in one hour
    rows = TrainingRows(
        np.vstack([x, burst]),
        np.ones(n + 400, bool),
        np.array(["human"] * (n + 400)),
        np.concatenate([keys, ["p0"] * 400]),
        0.0,
        3600.0 * 100,
        np.concatenate([hours, [7] * 400]),
    )
    art, training = fit_rows(rows, {}, trees=20)
    assert training["rows_fitted"] <= n + PER_HOUR_ROWS
    # that hour's rows are rare for the group: as rare as 20 rows in the fit make them, not 400
    probe = burst[:1]
    assert art.groups["all"].surprise(probe[0])[FEATURE_INDEX["reads_10m"]] >= 2.0
