"""Forest scoring per row: the compiled scorer (``detector.core``) against scikit-learn's own
compiled ``Tree.apply`` over the same node tables, in the same run.

The baseline is what ``Forest.path_lengths`` did before ``detector.core``: rebuild one
scikit-learn ``Tree`` per tree from our arrays (``_sklearn_trees`` below, kept here only as
the yardstick) and sum ``leaf_value`` at the leaves ``apply`` returns. Rows are drawn from the
model's own per-feature calibration quantiles, so each feature has its training marginal.

Prints, per micro-batch size: µs per row through one peer group's member forests (what
scoring one event costs), both ways, and their ratio; and checks the two agree bit for bit.

Usage: python bench/forest.py [--model models/default] [--rows 256,4096] [--repeat 30]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from detector.features import N_FEATURES
from detector.model import Forest, ModelArtifact


def _sklearn_trees(forest: Forest) -> list[Any]:
    """scikit-learn ``Tree`` objects rebuilt from the flattened arrays (the pre-core scorer)."""
    from sklearn.tree._tree import NODE_DTYPE, Tree

    trees = []
    bounds = [*forest.roots.tolist(), forest.left.size]
    for t in range(forest.roots.size):
        lo, hi = bounds[t], bounds[t + 1]
        n = hi - lo
        ids = np.arange(n)
        left = forest.left[lo:hi] - lo
        leaf = left == ids
        nodes = np.zeros(n, dtype=NODE_DTYPE)
        nodes["left_child"] = np.where(leaf, -1, left)
        nodes["right_child"] = np.where(leaf, -1, forest.right[lo:hi] - lo)
        nodes["feature"] = np.where(leaf, -2, forest.feature[lo:hi])
        nodes["threshold"] = np.where(leaf, -2.0, forest.threshold[lo:hi])
        nodes["n_node_samples"] = 1
        nodes["weighted_n_node_samples"] = 1.0
        tree = Tree(N_FEATURES, np.array([1], dtype=np.intp), 1)
        tree.__setstate__(
            {"max_depth": forest.max_depth, "node_count": n, "nodes": nodes, "values": np.zeros((n, 1, 1))}
        )
        trees.append(tree)
    return trees


def _sklearn_path_lengths(forest: Forest, trees: list[Any], x: np.ndarray) -> np.ndarray:
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    total = np.zeros(x32.shape[0])
    for tree, root in zip(trees, forest.roots.tolist(), strict=True):
        total += forest.leaf_value[root + tree.apply(x32)]
    return total / len(trees)


def _best(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--rows", default="256,4096", help="micro-batch sizes, comma separated")
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per measurement (the best is kept)")
    args = ap.parse_args()

    art = ModelArtifact.load(args.model)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    rebuilt = {(g.name, m.name): _sklearn_trees(m.forest) for g in art.groups.values() for m in g.members}
    print(f"model {art.version}: groups {list(art.groups)}; sklearn Tree rebuild {time.perf_counter() - t0:.3f} s")
    for g in art.groups.values():
        nodes = sum(m.forest.left.size for m in g.members)
        trees = sum(m.forest.roots.size for m in g.members)
        print(f"  {g.name}: members {[m.name for m in g.members]}, {trees} trees, {nodes} nodes")

    print(f"\n{'group':<11}{'rows':>6}  {'sklearn µs/row':>15}{'compiled µs/row':>17}{'ratio':>8}")
    for n in (int(v) for v in args.rows.split(",")):
        for g in art.groups.values():
            level = rng.integers(0, g.tails.shape[0], (n, N_FEATURES))
            x = g.tails[level, np.arange(N_FEATURES)]
            for m in g.members:
                want = _sklearn_path_lengths(m.forest, rebuilt[(g.name, m.name)], x)
                if not np.array_equal(m.forest.path_lengths(x), want):
                    raise SystemExit(f"{g.name}.{m.name}: compiled and sklearn path lengths differ")
            old = _best(
                lambda g=g, x=x: [_sklearn_path_lengths(m.forest, rebuilt[(g.name, m.name)], x) for m in g.members],
                args.repeat,
            )
            new = _best(lambda g=g, x=x: [m.forest.path_lengths(x) for m in g.members], args.repeat)
            print(f"{g.name:<11}{n:>6}  {old / n * 1e6:>15.2f}{new / n * 1e6:>17.2f}{old / new:>7.1f}x")
    print("\n(µs per row through all of a group's member forests; ratio = sklearn / compiled; same answers)")


if __name__ == "__main__":
    main()
