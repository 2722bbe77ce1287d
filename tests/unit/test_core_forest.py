"""The compiled forest scorer (``detector.core.CompiledForest``): scikit-learn's scores to 1e-12,
and crafted node tables refused with ``ValueError`` (never a crash or a hang)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import IsolationForest

from detector.core import CompiledForest
from detector.features import N_FEATURES, SUBSPACES
from detector.model import Forest, fit_forest

EXTREMES = (1e300, -1e300, np.inf, -np.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e-45)


def _probe(rng: np.random.Generator, x: np.ndarray, forest: Forest) -> np.ndarray:
    """Training rows, fresh rows, extreme values, and values on the float32 split thresholds."""
    fresh = rng.normal(0, 3, (100, N_FEATURES))
    extreme = rng.choice(EXTREMES, (60, N_FEATURES))
    on_split = np.zeros((60, N_FEATURES))
    inner = np.flatnonzero(forest.left != np.arange(forest.left.size))
    for r in range(on_split.shape[0]):
        for node in rng.choice(inner, 6):
            t = np.float32(forest.threshold[node])  # a float32 value as close to the split as x gets
            on_split[r, forest.feature[node]] = rng.choice([t, np.nextafter(t, np.float32(np.inf))])
    return np.vstack([x[:200], fresh, extreme, on_split])


def _data(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "ties":  # few distinct values, so many rows sit on every split
        return rng.integers(0, 3, (n, N_FEATURES)).astype(np.float64)
    if kind == "wide":
        return rng.lognormal(0, 4, (n, N_FEATURES)) * rng.choice([-1, 1], (n, N_FEATURES))
    return rng.normal(0, 1, (n, N_FEATURES))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # 1e300 -> float32 inf
@pytest.mark.parametrize(
    ("kind", "max_samples", "max_features", "seed"),
    [
        ("normal", 256, 1.0, 0),
        ("ties", 64, 1.0, 1),
        ("wide", 512, 0.5, 2),
        ("normal", 16, 0.3, 3),
        ("ties", 300, 0.7, 4),
    ],
)
def test_scores_equal_scikit_learn_to_1e_12(kind: str, max_samples: int, max_features: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = _data(kind, rng, 1500)
    sk = IsolationForest(n_estimators=40, max_samples=max_samples, max_features=max_features, random_state=seed)
    sk.fit(x)
    forest = Forest.from_sklearn(sk)
    probe = _probe(rng, x, forest)
    assert np.max(np.abs(forest.score(probe) + sk.score_samples(probe))) <= 1e-12


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("subspace", ["volume", "time", "calls"])
def test_a_subspace_forest_scores_whole_rows_as_scikit_learn_scores_its_columns(subspace: str) -> None:
    rng = np.random.default_rng(7)
    x = _data("ties", rng, 2000)
    cols = np.array(SUBSPACES[subspace])
    forest, sk = fit_forest(x, trees=30, max_samples=128, seed=5, columns=cols)
    probe = _probe(rng, x, forest)
    assert np.max(np.abs(forest.score(probe) + sk.score_samples(probe[:, cols]))) <= 1e-12
    # max_features < 1 inside a subspace: both column maps compose
    sub = IsolationForest(n_estimators=30, max_samples=128, max_features=0.5, random_state=5).fit(x[:, cols])
    forest = Forest.from_sklearn(sub, cols)
    assert np.max(np.abs(forest.score(probe) + sub.score_samples(probe[:, cols]))) <= 1e-12


def test_nan_goes_right_at_every_split_as_before() -> None:
    """NaN compares false with ``<=``, so a NaN row walks as +inf does. (scikit-learn >= 1.x sends
    NaN to a split's larger child instead; rows here never hold NaN, and this rule is the one
    the detector has always scored with.)"""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(1000, N_FEATURES))
    forest, _ = fit_forest(x, trees=30, seed=2)
    probe = x[:50].copy()
    probe[::2, rng.integers(0, N_FEATURES, 25)] = np.nan
    as_inf = np.where(np.isnan(probe), np.inf, probe)
    assert np.array_equal(forest.path_lengths(probe), forest.path_lengths(as_inf))


def test_rows_of_another_width_and_zero_rows() -> None:
    forest, _ = fit_forest(np.random.default_rng(9).normal(size=(300, N_FEATURES)), trees=5)
    for bad in (np.zeros((3, N_FEATURES - 1)), np.zeros(N_FEATURES), np.zeros((2, N_FEATURES, 1))):
        with pytest.raises(ValueError, match=f"rows of {N_FEATURES} features"):
            forest.path_lengths(bad)
    with pytest.raises(ValueError, match="numeric"):
        forest.path_lengths(np.array([["a"] * N_FEATURES]))
    assert forest.path_lengths(np.zeros((0, N_FEATURES))).shape == (0,)
    assert forest.score(np.zeros((0, N_FEATURES))).shape == (0,)


def test_the_scorer_keeps_its_own_copy_of_the_checked_table() -> None:
    forest, _ = fit_forest(np.random.default_rng(10).normal(size=(300, N_FEATURES)), trees=5)
    probe = np.random.default_rng(11).normal(size=(20, N_FEATURES))
    before = forest.path_lengths(probe)
    forest.left[:] = -(2**31)  # an edit after the check cannot send the walk out of bounds
    forest.feature[:] = 10**6
    assert np.array_equal(forest.path_lengths(probe), before)


def test_scoring_runs_in_threads_without_the_gil_and_agrees() -> None:
    forest, _ = fit_forest(np.random.default_rng(12).normal(size=(2000, N_FEATURES)), trees=50)
    probe = np.random.default_rng(13).normal(size=(4000, N_FEATURES))
    want = forest.path_lengths(probe)
    got: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: got.append(forest.path_lengths(probe))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(np.array_equal(g, want) for g in got)


# -- crafted node tables -----------------------------------------------------------------

WIDTH = 3  # features of the fuzzed forests


def _tree_table(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed forest of 1-4 random trees, numbered breadth first (children after parents)."""
    nodes: list[list[Any]] = []  # [left, right, feature, threshold, leaf value]
    roots: list[int] = []
    depth_cap = draw(st.integers(1, 6))
    for _ in range(draw(st.integers(1, 4))):
        roots.append(len(nodes))
        nodes.append([0, 0, 0, np.inf, 0.0])
        queue = [(roots[-1], 0)]
        while queue:
            node, depth = queue.pop(0)
            if depth < depth_cap and draw(st.booleans()):
                a = len(nodes)
                nodes += [[0, 0, 0, np.inf, 0.0], [0, 0, 0, np.inf, 0.0]]
                queue += [(a, depth + 1), (a + 1, depth + 1)]
                nodes[node][:4] = [a, a + 1, draw(st.integers(0, WIDTH - 1)), draw(st.floats(-2, 2))]
            else:
                nodes[node][:2] = [node, node]
                nodes[node][4] = depth + draw(st.floats(0, 10))
    left, right, feature, threshold, value = zip(*nodes, strict=True)
    return {
        "left": np.array(left, np.int32),
        "right": np.array(right, np.int32),
        "feature": np.array(feature, np.int32),
        "threshold": np.array(threshold, np.float64),
        "leaf_value": np.array(value, np.float64),
        "roots": np.array(roots, np.int32),
        "max_depth": depth_cap,
        "n_features": WIDTH,
    }


ARRAYS = ("left", "right", "feature", "threshold", "leaf_value", "roots")
DTYPES = (np.int64, np.int16, np.uint32, np.float64, np.float32, ">i4", bool, object)


@st.composite
def crafted(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed table with a few hostile edits: wild indices, cycles, other dtypes and
    lengths, NaN and infinite values, a wrong depth or width, an empty forest."""
    t = _tree_table(draw)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([*ARRAYS, "max_depth", "n_features"]))
        edit = draw(st.sampled_from(["value", "dtype", "length", "shape", "list"]))
        a = t[name]
        if not isinstance(a, np.ndarray):
            t[name] = draw(st.one_of(st.integers(-(2**40), 2**40), st.floats(), st.none(), st.booleans()))
        elif edit == "value" and a.size and a.ndim == 1 and a.dtype in (np.int32, np.float64):
            i = draw(st.integers(0, a.size - 1))
            a = a.copy()
            if a.dtype.kind == "f":
                a[i] = draw(st.floats(allow_nan=True, allow_infinity=True))
            else:
                a[i] = draw(st.integers(-(2**31), 2**31 - 1) | st.integers(-3, a.size + 3))
            t[name] = a
        elif edit == "dtype":
            with np.errstate(invalid="ignore"):  # inf -> int is garbage, which is the point
                t[name] = a.astype(draw(st.sampled_from(DTYPES)))
        elif edit == "length":
            t[name] = a[: draw(st.integers(0, a.size))] if draw(st.booleans()) else np.append(a, a[:1])
        elif edit == "shape":
            t[name] = a.reshape(1, -1)
        else:
            t[name] = a.tolist()
    return t


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    crafted(),
    st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=WIDTH, max_size=WIDTH), max_size=6),
)
def test_a_crafted_table_is_refused_or_scores_finite_never_a_crash(table: dict[str, Any], rows: list) -> None:
    try:
        forest = CompiledForest(**table)
    except ValueError:
        return
    with pytest.raises(ValueError):
        forest.path_lengths(np.zeros((1, forest.n_features + 1)))
    if forest.n_features > 64:  # an edited width the tree allows; rows that wide are not the point
        return
    flat = np.array(rows, dtype=np.float64).ravel()
    x = np.resize(flat, (len(rows), forest.n_features)) if flat.size else np.zeros((0, forest.n_features))
    with np.errstate(over="ignore"):  # a float64 past float32's range is inf, as in scikit-learn
        out = forest.path_lengths(x)
    assert out.shape == (len(rows),) and np.all(np.isfinite(out)) and np.all(out >= 0)


def test_cycles_wild_indices_and_empty_forests_are_refused_by_name() -> None:
    def table(**edits: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "left": np.array([1, 1, 2], np.int32),
            "right": np.array([2, 1, 2], np.int32),
            "feature": np.array([0, 0, 0], np.int32),
            "threshold": np.array([0.5, np.inf, np.inf]),
            "leaf_value": np.array([0.0, 1.0, 1.0]),
            "roots": np.array([0], np.int32),
            "max_depth": 1,
            "n_features": 2,
        }
        return {**base, **edits}

    assert np.array_equal(CompiledForest(**table()).path_lengths(np.array([[0.0, 9.0]])), [1.0])
    cases = {
        "numbered after it": table(left=np.array([1, 0, 2], np.int32)),  # 0 -> 1 -> 0
        "feature 7": table(feature=np.array([7, 0, 0], np.int32)),
        "root 0 is node 5": table(roots=np.array([5], np.int32)),
        "at least one tree": table(roots=np.zeros(0, np.int32)),
        "differ in length": table(threshold=np.zeros(2)),
        "int32 array": table(left=np.array([1, 1, 2], np.int64)),
        "NaN threshold": table(threshold=np.array([np.nan, np.inf, np.inf])),
        "not a finite number": table(leaf_value=np.array([0.0, np.inf, 1.0])),
        "deeper than max_depth": table(max_depth=0),
        "max_depth must be an integer": table(max_depth=1.5),
    }
    for message, t in cases.items():
        with pytest.raises(ValueError, match=message):
            CompiledForest(**t)
