"""Isolation-forest scoring and the model artifact.

``fit`` trains scikit-learn's ``IsolationForest`` on feature rows; the fitted trees are then
flattened into plain integer/float arrays (children, split feature, threshold, and the
path length credited at each leaf) and saved in ``forest.npz``. Loading reads those arrays
with ``allow_pickle=False``: an artifact is data, never code, so a tampered file can at
worst give wrong scores, and the manifest's sha256 of every file catches that too.

Scores follow the original isolation-forest definition ``s = 2 ** (-E[h(x)] / c(n))`` in
(0, 1]: **higher = more anomalous**, ~0.5 is unremarkable. (scikit-learn's ``score_samples``
returns ``-s``.) Scoring is vectorised over a micro-batch and over all trees at once; one
call per event would cost ~15 ms with scikit-learn.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detector import __version__
from detector.errors import ModelError
from detector.features import FEATURE_NAMES, FEATURE_VERSION, N_FEATURES

ARTIFACT_FORMAT = 1
MANIFEST = "manifest.json"
FOREST = "forest.npz"
MAX_MANIFEST_BYTES = 1 << 20
# Features that describe the principal rather than the event: they shape the forest but
# "your account is 3 days old" is not an explanation a person can act on.
CONTEXT_FEATURES = frozenset({"principal_age", "history", "human"})
QUANTILES = np.linspace(0.0, 1.0, 201)
SCORE_QUANTILES = (0.5, 0.9, 0.99, 0.999, 0.9995, 0.9999)


def _avg_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): average path length of an unsuccessful BST search among n points."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    big = n > 2
    out[n == 2] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


@dataclass
class Forest:
    """All trees flattened into one node table; leaves point to themselves."""

    left: np.ndarray  # int32 [nodes]
    right: np.ndarray  # int32 [nodes]
    feature: np.ndarray  # int32 [nodes], index into FEATURE_NAMES
    threshold: np.ndarray  # float64 [nodes]; +inf at leaves
    leaf_value: np.ndarray  # float64 [nodes]: depth + c(samples) at leaves
    roots: np.ndarray  # int32 [trees]
    max_depth: int
    max_samples: int

    _compiled: list[Any] | None = field(default=None, repr=False, compare=False)

    def path_lengths(self, x: np.ndarray) -> np.ndarray:
        """Mean path length of each row over all trees (rows x features)."""
        # scikit-learn splits on float32 copies of the data; compare on the same values.
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        trees = self._compile()
        if trees is None:
            return self.path_lengths_numpy(x32)
        total = np.zeros(x32.shape[0])
        for tree, root in zip(trees, self.roots.tolist(), strict=True):
            total += self.leaf_value[root + tree.apply(x32)]
        return total / len(trees)

    def path_lengths_numpy(self, x: np.ndarray) -> np.ndarray:
        """Reference traversal in plain numpy (all trees at once); ~6x slower than ``apply``."""
        x = np.asarray(x, dtype=np.float32).astype(np.float64)
        n = x.shape[0]
        idx = np.broadcast_to(self.roots, (n, self.roots.size)).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.max_depth):
            go_left = x[rows, self.feature[idx]] <= self.threshold[idx]
            idx = np.where(go_left, self.left[idx], self.right[idx])
        return self.leaf_value[idx].mean(axis=1)

    def _compile(self) -> list[Any] | None:
        """Rebuild scikit-learn ``Tree`` objects from our arrays for its compiled ``apply``.

        Built field by field from validated integer/float arrays (never unpickled). If this
        scikit-learn's private node layout is not the one we know, fall back to numpy.
        """
        if self._compiled is not None:
            return self._compiled or None
        try:
            from sklearn.tree._tree import NODE_DTYPE, Tree
        except ImportError:
            self._compiled = []
            return None
        known = {
            "left_child",
            "right_child",
            "feature",
            "threshold",
            "impurity",
            "n_node_samples",
            "weighted_n_node_samples",
            "missing_go_to_left",
        }
        if set(NODE_DTYPE.names or ()) - known:
            self._compiled = []
            return None
        trees = []
        bounds = [*self.roots.tolist(), self.left.size]
        for t in range(self.roots.size):
            lo, hi = bounds[t], bounds[t + 1]
            n = hi - lo
            ids = np.arange(n)
            left = self.left[lo:hi] - lo
            leaf = left == ids
            nodes = np.zeros(n, dtype=NODE_DTYPE)
            nodes["left_child"] = np.where(leaf, -1, left)
            nodes["right_child"] = np.where(leaf, -1, self.right[lo:hi] - lo)
            nodes["feature"] = np.where(leaf, -2, self.feature[lo:hi])
            nodes["threshold"] = np.where(leaf, -2.0, self.threshold[lo:hi])
            nodes["n_node_samples"] = 1
            nodes["weighted_n_node_samples"] = 1.0
            tree = Tree(N_FEATURES, np.array([1], dtype=np.intp), 1)
            tree.__setstate__(
                {"max_depth": self.max_depth, "node_count": n, "nodes": nodes, "values": np.zeros((n, 1, 1))}
            )
            trees.append(tree)
        self._compiled = trees
        return trees

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score in (0, 1], higher = more anomalous."""
        if x.shape[0] == 0:
            return np.zeros(0)
        c = float(_avg_path_length(np.array([self.max_samples]))[0])
        return np.power(2.0, -self.path_lengths(x) / c)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "left": self.left,
            "right": self.right,
            "feature": self.feature,
            "threshold": self.threshold,
            "leaf_value": self.leaf_value,
            "roots": self.roots,
            "shape": np.array([self.max_depth, self.max_samples], dtype=np.int64),
        }

    @classmethod
    def from_sklearn(cls, forest: Any) -> Forest:
        lefts, rights, feats, thrs, values, roots = [], [], [], [], [], []
        offset = 0
        max_depth = 0
        for est, cols in zip(forest.estimators_, forest.estimators_features_, strict=True):
            t = est.tree_
            n = t.node_count
            left = t.children_left.astype(np.int64)
            right = t.children_right.astype(np.int64)
            leaf = left == -1
            depth = np.zeros(n, dtype=np.int64)
            for node in range(n):  # nodes are numbered parents-first
                if not leaf[node]:
                    depth[left[node]] = depth[node] + 1
                    depth[right[node]] = depth[node] + 1
            max_depth = max(max_depth, int(depth.max()))
            ids = np.arange(n)
            lefts.append(np.where(leaf, ids, left) + offset)
            rights.append(np.where(leaf, ids, right) + offset)
            feats.append(np.where(leaf, 0, np.asarray(cols)[np.maximum(t.feature, 0)]))
            thrs.append(np.where(leaf, np.inf, t.threshold))
            values.append(np.where(leaf, depth + _avg_path_length(t.n_node_samples), 0.0))
            roots.append(offset)
            offset += n
        return cls(
            left=np.concatenate(lefts).astype(np.int32),
            right=np.concatenate(rights).astype(np.int32),
            feature=np.concatenate(feats).astype(np.int32),
            threshold=np.concatenate(thrs).astype(np.float64),
            leaf_value=np.concatenate(values).astype(np.float64),
            roots=np.array(roots, dtype=np.int32),
            max_depth=max_depth,
            max_samples=int(forest.max_samples_),
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _signature(manifest_bytes: bytes, key: bytes) -> str:
    return hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()


@dataclass
class ModelArtifact:
    """A trained forest plus what is needed to calibrate and explain its scores."""

    forest: Forest
    feature_quantiles: np.ndarray  # [len(QUANTILES), N_FEATURES] on the training rows
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unsaved"))

    @property
    def trained_at(self) -> float:
        return float(self.manifest.get("trained_at", 0.0))

    def score_quantile(self, q: float) -> float:
        table = self.manifest.get("score_quantiles", {})
        return float(table[f"{q:g}"])

    def score(self, x: np.ndarray) -> np.ndarray:
        """Batch score rows of ``FEATURE_NAMES`` features; higher = more anomalous."""
        if x.ndim != 2 or x.shape[1] != N_FEATURES:
            raise ModelError(f"expected rows of {N_FEATURES} features, got shape {x.shape}")
        return self.forest.score(x)

    def contributions(self, row: np.ndarray) -> list[tuple[str, float]]:
        """Per-feature surprise of one row against the training rows, largest first.

        Surprise is ``-log10`` of the fraction of training rows at least as extreme (every
        feature is oriented so that larger is more unusual); context features are left out.
        """
        out = []
        for j, name in enumerate(FEATURE_NAMES):
            if name in CONTEXT_FEATURES:
                continue
            q = self.feature_quantiles[:, j]
            tail = 1.0 - float(np.searchsorted(q, row[j], side="left")) / len(q)
            tail = max(tail, 0.5 / len(q))
            out.append((name, round(-math.log10(tail), 3)))
        out.sort(key=lambda kv: kv[1], reverse=True)
        return out

    # -- artifact I/O --------------------------------------------------------------------
    def save(self, out: Path, training: dict[str, Any], scores: np.ndarray, key: bytes | None = None) -> Path:
        """Write the artifact directory atomically (temp dir + rename)."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        arrays = {**self.forest.arrays(), "feature_quantiles": self.feature_quantiles}
        np.savez(tmp / FOREST, **arrays)  # type: ignore[arg-type]
        now = time.time()
        manifest = {
            "format": ARTIFACT_FORMAT,
            "name": out.name,
            "version": f"{out.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}",
            "trained_at": now,
            "feature_version": FEATURE_VERSION,
            "feature_names": list(FEATURE_NAMES),
            "training": training,
            "params": {"trees": int(self.forest.roots.size), "max_samples": self.forest.max_samples},
            "libraries": {
                "detector": __version__,
                "numpy": np.__version__,
                "scikit-learn": _sklearn_version(),
                "python": platform.python_version(),
            },
            "score_quantiles": {f"{q:g}": float(np.quantile(scores, q)) for q in SCORE_QUANTILES},
            "files": {FOREST: _sha256(tmp / FOREST)},
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        if key:
            manifest["signature"] = _signature(body, key)
            manifest_out = {**json.loads(body), "signature": manifest["signature"]}
            body = json.dumps(manifest_out, indent=2, sort_keys=True).encode()
        (tmp / MANIFEST).write_bytes(body)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        else:
            tmp.rename(out)
        self.manifest = manifest
        self.path = out
        return out

    @classmethod
    def load(cls, path: Path, key: bytes | None = None) -> ModelArtifact:
        """Load and verify an artifact; any mismatch raises ``ModelError`` naming what is wrong."""
        path = Path(path)
        mpath = path / MANIFEST
        try:
            if mpath.stat().st_size > MAX_MANIFEST_BYTES:
                raise ModelError(f"{mpath}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
            body = mpath.read_bytes()
            manifest = json.loads(body)
        except FileNotFoundError as exc:
            raise ModelError(f"{path}: not a model artifact (no {MANIFEST}); train one with `detector train`") from exc
        except (OSError, ValueError) as exc:
            raise ModelError(f"{mpath}: unreadable manifest: {exc}") from exc
        if not isinstance(manifest, dict):
            raise ModelError(f"{mpath}: manifest is not a JSON object")
        if key is not None:
            sig = manifest.get("signature")
            unsigned = {k: v for k, v in manifest.items() if k != "signature"}
            expect = _signature(json.dumps(unsigned, indent=2, sort_keys=True).encode(), key)
            if not isinstance(sig, str) or not hmac.compare_digest(sig, expect):
                raise ModelError(f"{mpath}: signature missing or wrong (DETECTOR_MODEL_KEY is set)")
        if manifest.get("format") != ARTIFACT_FORMAT:
            raise ModelError(f"{mpath}: artifact format {manifest.get('format')!r}, this build reads {ARTIFACT_FORMAT}")
        if manifest.get("feature_version") != FEATURE_VERSION or manifest.get("feature_names") != list(FEATURE_NAMES):
            raise ModelError(
                f"{mpath}: trained on feature version {manifest.get('feature_version')!r}, this build computes "
                f"version {FEATURE_VERSION}; retrain with `detector train`"
            )
        files = manifest.get("files")
        if not isinstance(files, dict) or FOREST not in files:
            raise ModelError(f"{mpath}: manifest lists no {FOREST}")
        for name, digest in files.items():
            fpath = path / str(name)
            if Path(str(name)).name != name:
                raise ModelError(f"{mpath}: file name {name!r} is not a plain file name")
            try:
                actual = _sha256(fpath)
            except OSError as exc:
                raise ModelError(f"{fpath}: missing or unreadable: {exc}") from exc
            if not hmac.compare_digest(actual, str(digest)):
                raise ModelError(f"{fpath}: sha256 {actual} does not match the manifest; refusing a tampered artifact")
        try:
            with np.load(path / FOREST, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path / FOREST}: unreadable arrays: {exc}") from exc
        forest = _forest_from_arrays(arrays, path)
        fq = arrays["feature_quantiles"]
        if fq.shape != (len(QUANTILES), N_FEATURES):
            raise ModelError(f"{path / FOREST}: feature_quantiles has shape {fq.shape}")
        return cls(forest=forest, feature_quantiles=fq, manifest=manifest, path=path)


def _forest_from_arrays(a: dict[str, np.ndarray], path: Path) -> Forest:
    need = ("left", "right", "feature", "threshold", "leaf_value", "roots", "shape", "feature_quantiles")
    missing = [k for k in need if k not in a]
    if missing:
        raise ModelError(f"{path / FOREST}: missing arrays {missing}")
    n = a["left"].shape[0]
    for k in ("right", "feature", "threshold", "leaf_value"):
        if a[k].shape != (n,):
            raise ModelError(f"{path / FOREST}: array {k} has shape {a[k].shape}, expected ({n},)")
    for k in ("left", "right", "roots"):
        if a[k].size and (a[k].min() < 0 or a[k].max() >= n):
            raise ModelError(f"{path / FOREST}: array {k} points outside the node table")
    if a["feature"].size and (a["feature"].min() < 0 or a["feature"].max() >= N_FEATURES):
        raise ModelError(f"{path / FOREST}: split feature index out of range")
    max_depth, max_samples = (int(v) for v in a["shape"])
    if not 0 < max_depth <= 64 or max_samples < 2:
        raise ModelError(f"{path / FOREST}: implausible forest shape depth={max_depth} samples={max_samples}")
    return Forest(
        left=a["left"].astype(np.int32),
        right=a["right"].astype(np.int32),
        feature=a["feature"].astype(np.int32),
        threshold=a["threshold"].astype(np.float64),
        leaf_value=a["leaf_value"].astype(np.float64),
        roots=a["roots"].astype(np.int32),
        max_depth=max_depth,
        max_samples=max_samples,
    )


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def fit(x: np.ndarray, trees: int = 100, max_samples: int = 256, seed: int = 0) -> tuple[ModelArtifact, Any]:
    """Train on feature rows; returns the artifact (unsaved) and the scikit-learn forest."""
    from sklearn.ensemble import IsolationForest

    if x.ndim != 2 or x.shape[1] != N_FEATURES or x.shape[0] < 2:
        raise ModelError(f"need at least 2 rows of {N_FEATURES} features to train, got shape {x.shape}")
    sk = IsolationForest(n_estimators=trees, max_samples=min(max_samples, x.shape[0]), random_state=seed)
    sk.fit(x)
    forest = Forest.from_sklearn(sk)
    fq = np.quantile(x, QUANTILES, axis=0)
    return ModelArtifact(forest=forest, feature_quantiles=fq), sk
