"""Isolation-forest scoring per peer group, and the model artifact.

``fit`` trains one scikit-learn ``IsolationForest`` per peer group (``human``, ``automation``,
and ``all`` as the fallback for a group too small to have its own) on the feature rows of
principals that are *allowed to alert* (a mature baseline: ``eligible`` rows), and calibrates
each on those same rows: its score quantiles (thresholds are a quantile of these, not of rows
from principals hours old, which policy never lets alert anyway), a finely spaced tail table
of every feature (to say which features made a row unusual *for its group*), and the group's
typical peaks (what a principal too young for its own peaks is compared with).

The fitted trees are flattened into plain integer/float arrays (children, split feature,
threshold, and the path length credited at each leaf) and saved in ``forest.npz`` with the
calibration arrays. Loading reads them with ``allow_pickle=False``: an artifact is data, never
code, so a tampered file can at worst give wrong scores, and the manifest's sha256 of every
file catches that too.

Scores follow the original isolation-forest definition ``s = 2 ** (-E[h(x)] / c(n))`` in
(0, 1]: **higher = more anomalous**, ~0.5 is unremarkable. (scikit-learn's ``score_samples``
returns ``-s``.) Scoring is compiled (``detector.core``) and takes a micro-batch at a time;
scikit-learn is needed only to train.
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
from typing import IO, Any

import numpy as np

from detector import __version__, artifact_checks
from detector.baseline import N_PEAKS
from detector.core import CompiledForest
from detector.errors import ModelError
from detector.features import FEATURE_NAMES, FEATURE_VERSION, N_FEATURES, SUBSPACES

ARTIFACT_FORMAT = 2
MANIFEST = "manifest.json"
FOREST = "forest.npz"
MAX_MANIFEST_BYTES = 1 << 20
# Quantile levels of the calibration tables: 0, then tails 10^(-k/8) for k = 1..40 (down to
# 1 in 100,000), then 1: fine where thresholds and "1 in 3,000 rows" explanations live.
LEVELS = np.concatenate([[0.0], 1.0 - 10.0 ** (-np.arange(1, 41) / 8.0), [1.0]])
_LEVEL_X = np.concatenate([[0.0], np.arange(1, 41) / 8.0, [40 / 8.0 + 0.5]])  # -log10(1 - level)
TAIL_X_MAX = 12.0  # extrapolated rarities stop at 1 in 10^12
GROUPS = ("human", "automation", "all")
# Which forest scores a principal of each caller class ("all" when its own is missing).
GROUP_OF_CLASS = {"human": "human", "automation": "automation", "aws-service": "automation", "anonymous": "automation"}
MIN_GROUP_ROWS = 500  # eligible rows a peer group needs for a forest of its own
PEER_QUANTILE = 0.95  # a young principal is compared with this quantile of its group's peaks


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
    """All trees flattened into one node table; leaves point to themselves.

    Building one checks the table and compiles it (``detector.core.CompiledForest``, which
    keeps its own copy): a malformed table is a ``ValueError`` here, never a crash later.
    """

    left: np.ndarray  # int32 [nodes]
    right: np.ndarray  # int32 [nodes]
    feature: np.ndarray  # int32 [nodes], index into FEATURE_NAMES
    threshold: np.ndarray  # float64 [nodes]; +inf at leaves
    leaf_value: np.ndarray  # float64 [nodes]: depth + c(samples) at leaves
    roots: np.ndarray  # int32 [trees]
    max_depth: int
    max_samples: int

    _compiled: CompiledForest = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._compiled = CompiledForest(
            self.left,
            self.right,
            self.feature,
            self.threshold,
            self.leaf_value,
            self.roots,
            self.max_depth,
            N_FEATURES,
        )

    def path_lengths(self, x: np.ndarray) -> np.ndarray:
        """Mean path length of each row over all trees (rows x ``N_FEATURES``), as scikit-learn
        compares: float32 copies of the values against double thresholds (a NaN goes right)."""
        return self._compiled.path_lengths(x)

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
    def from_sklearn(cls, forest: Any, columns: np.ndarray | None = None) -> Forest:
        """Flatten a fitted ``IsolationForest``; ``columns`` maps its input columns to feature
        indices (a forest fitted on a subspace then scores whole rows)."""
        lefts, rights, feats, thrs, values, roots = [], [], [], [], [], []
        offset = 0
        max_depth = 0
        for est, est_cols in zip(forest.estimators_, forest.estimators_features_, strict=True):
            cols = np.asarray(est_cols) if columns is None else np.asarray(columns)[np.asarray(est_cols)]
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
            feats.append(np.where(leaf, 0, cols[np.maximum(t.feature, 0)]))
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
    with path.open("rb") as f:
        return _sha256_of(f)


def _sha256_of(f: IO[bytes]) -> str:
    """The sha256 of what ``f`` holds from its current position on; leaves it at its start."""
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    f.seek(0)
    return h.hexdigest()


# The arrays of one forest and of one group's calibration, by name (see Forest.arrays and
# GroupModel.arrays): anything else in forest.npz is refused before it is read.
_FOREST_ARRAYS = frozenset({"left", "right", "feature", "threshold", "leaf_value", "roots", "shape", "scores"})
_GROUP_ARRAYS = frozenset({"combined", "tails", "peer_peaks", "rows"})


def _check_array_names(headers: dict[str, tuple[np.dtype, tuple[int, ...]]], where: Path) -> None:
    for name, (_, shape) in headers.items():
        group, _, rest = name.partition(".")
        member, _, array = rest.partition(".")
        known = group in GROUPS and (
            (not array and member in _GROUP_ARRAYS) or (member in {"all", *SUBSPACES} and array in _FOREST_ARRAYS)
        )
        if not known:
            raise ModelError(f"{where}: unexpected array {name[:80]!r}; refusing to read it")
        if len(shape) > 2:
            raise ModelError(f"{where}: array {name[:80]!r} has {len(shape)} dimensions")


def _signature(manifest_bytes: bytes, key: bytes) -> str:
    return hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()


def tail_x(values: np.ndarray, table: np.ndarray, rows: int = 0) -> np.ndarray:
    """``-log10`` of the share of rows at least as large as each value, from a ``LEVELS`` quantile table.

    Zero-inflated data put many levels on one value (most rows score alike): a value equal to
    that mass is as common as the mass, so the *first* level at or above it counts (``np.interp``
    would pick any level of the run).

    With ``rows`` (the table's sample size), the far tail is extrapolated: past the last level
    the rows can resolve (``log10(rows) - 0.5``), the share is taken to keep falling as it did
    over the decade below it (an exponential tail), up to ``1e-12``. Without it every row past
    the few most extreme training rows would tie with them, and no threshold finer than
    ``1 / rows`` could ever be reached.
    """
    v = np.asarray(values, dtype=np.float64)
    k = np.clip(np.searchsorted(table, v, side="left"), 1, table.size - 1)
    lo, hi = table[k - 1], table[k]
    width = hi - lo
    frac = np.clip(np.divide(v - lo, width, out=np.ones_like(v), where=width > 0), 0.0, 1.0)
    x = _LEVEL_X[k - 1] + frac * (_LEVEL_X[k] - _LEVEL_X[k - 1])
    x = np.where(v <= table[0], 0.0, x)
    x = np.where(v > table[-1], _LEVEL_X[-1], x)
    if rows > 0:
        x_res = max(1.0, math.log10(rows) - 0.5)
        k_hi = int(np.searchsorted(_LEVEL_X, x_res, side="right")) - 1
        k_lo = int(np.searchsorted(_LEVEL_X, x_res - 1.0, side="right")) - 1
        if 0 < k_lo < k_hi < table.size - 1 and table[k_hi] > table[k_lo]:
            slope = (_LEVEL_X[k_hi] - _LEVEL_X[k_lo]) / (table[k_hi] - table[k_lo])
            line = _LEVEL_X[k_hi] + slope * (v - table[k_hi])
            x = np.where(v > table[k_hi], np.minimum(line, TAIL_X_MAX), x)
    return x


@dataclass
class Member:
    """One forest of a group's ensemble: over all features or one subspace of them."""

    name: str  # "all" or a subspace (features.SUBSPACES)
    forest: Forest
    scores: np.ndarray  # float64 [len(LEVELS)]: its raw-score quantiles on the group's eligible rows

    def rarity(self, x: np.ndarray, rows: int = 0) -> np.ndarray:
        """-log10 of the share of the group's eligible rows this forest scored at least as high
        (``rows`` of them: past what they resolve, extrapolated; see ``tail_x``)."""
        return tail_x(self.forest.score(x), self.scores, rows)


@dataclass
class GroupModel:
    """One peer group's forests and calibration.

    A row is scored by every member forest: the forest over all features finds unusual
    combinations, each subspace forest (volume, context, calls, time) finds a row far out on a few features
    of one kind, which an isolation forest over every feature dilutes. Each member's raw score
    becomes a rarity against the group's own eligible rows; the row's score is the largest,
    calibrated again, as the share of those rows it beats: **0.9995 means higher than 99.95%
    of this peer group's training rows**, so a threshold is simply the quantile.
    """

    name: str
    members: list[Member]
    combined: np.ndarray  # float64 [len(LEVELS)]: quantiles of the members' largest rarity
    tails: np.ndarray  # float64 [len(LEVELS), N_FEATURES]: feature quantiles of the eligible rows
    peer_peaks: np.ndarray  # float64 [N_PEAKS]: PEER_QUANTILE of its mature principals' peaks
    rows: int  # eligible rows it was calibrated on

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The largest member rarity of each row."""
        out = self.members[0].rarity(x, self.rows)
        for m in self.members[1:]:
            out = np.maximum(out, m.rarity(x, self.rows))
        return out

    def score(self, x: np.ndarray) -> np.ndarray:
        """Calibrated score in [0, 1): the share of the group's eligible rows this row outscores."""
        if x.shape[0] == 0:
            return np.zeros(0)
        return 1.0 - np.power(10.0, -tail_x(self.raw(x), self.combined, self.rows))

    def surprise(self, row: np.ndarray) -> np.ndarray:
        """Per feature: ``-log10`` of the share of the group's eligible rows at least as extreme.

        Every feature grows with how unusual it is, so "at least as extreme" is "at least as
        large". 0 for a value most rows reach; capped at ``log10(rows) + 0.3`` past the largest.
        """
        out = np.zeros(N_FEATURES)
        cap = math.log10(max(self.rows, 1)) + 0.3
        for j in range(N_FEATURES):
            v = row[j]
            if v <= 0.0:
                continue
            q = self.tails[:, j]
            k = int(np.searchsorted(q, v, side="left"))  # q[k-1] < v <= q[k]
            if k >= q.size:
                out[j] = cap
            elif k == 0:
                out[j] = 0.0
            else:
                lo, hi = q[k - 1], q[k]
                frac = (v - lo) / (hi - lo) if hi > lo else 1.0
                out[j] = min(cap, _LEVEL_X[k - 1] + frac * (_LEVEL_X[k] - _LEVEL_X[k - 1]))
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for m in self.members:
            out.update({f"{self.name}.{m.name}.{k}": v for k, v in m.forest.arrays().items()})
            out[f"{self.name}.{m.name}.scores"] = m.scores
        out[f"{self.name}.combined"] = self.combined
        out[f"{self.name}.tails"] = self.tails
        out[f"{self.name}.peer_peaks"] = self.peer_peaks
        out[f"{self.name}.rows"] = np.array([self.rows], dtype=np.int64)
        return out


@dataclass
class ModelArtifact:
    """Trained peer-group forests plus what is needed to calibrate and explain their scores."""

    groups: dict[str, GroupModel]
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unsaved"))

    @property
    def trained_at(self) -> float:
        return float(self.manifest.get("trained_at", 0.0))

    def group(self, caller_class: str) -> GroupModel:
        """The forest that scores a principal of ``caller_class``."""
        name = GROUP_OF_CLASS.get(caller_class, "all")
        return self.groups.get(name) or self.groups["all"]

    def group_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.groups)}

    def score(self, x: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
        """Batch score rows of ``FEATURE_NAMES`` features, each by its group's forest (index into
        ``groups``; default the fallback); higher = more anomalous."""
        if x.ndim != 2 or x.shape[1] != N_FEATURES:
            raise ModelError(f"expected rows of {N_FEATURES} features, got shape {x.shape}")
        models = list(self.groups.values())
        if group is None:
            return self.groups["all"].score(x)
        out = np.zeros(x.shape[0])
        for gi in np.unique(group).tolist():
            rows = group == gi
            out[rows] = models[gi].score(x[rows])
        return out

    # -- artifact I/O --------------------------------------------------------------------
    def save(self, out: Path, training: dict[str, Any], key: bytes | None = None) -> Path:
        """Write the artifact directory atomically (temp dir + rename)."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; an artifact is read by other users and packaged
        arrays: dict[str, np.ndarray] = {}
        for g in self.groups.values():
            arrays.update(g.arrays())
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
            "groups": {
                g.name: {
                    "rows": g.rows,
                    "members": {
                        m.name: {"trees": int(m.forest.roots.size), "max_samples": m.forest.max_samples}
                        for m in g.members
                    },
                }
                for g in self.groups.values()
            },
            "libraries": {
                "detector": __version__,
                "numpy": np.__version__,
                "scikit-learn": _sklearn_version(),
                "python": platform.python_version(),
            },
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
    def load(cls, path: Path, key: bytes | None = None, require_signature: bool = False) -> ModelArtifact:
        """Load and verify an artifact; any mismatch raises ``ModelError`` naming what is wrong.

        With ``key`` (``DETECTOR_MODEL_KEY``) the manifest's HMAC signature must match; with
        ``require_signature`` (the ``require_signature`` setting) there must be a key to check
        it with, so an unsigned, edited manifest (``score_quantiles`` raised to silence alerts)
        is never scored with.

        Only regular files directly inside ``path`` are read, each through one descriptor that
        is hashed and then parsed; arrays are checked from their headers and trees whole before
        use (``detector.artifact_checks``).
        """
        path = Path(path)
        if require_signature and key is None:
            raise ModelError(
                f"{path}: require_signature is set but DETECTOR_MODEL_KEY is not: "
                "set the key the artifact was signed with (`DETECTOR_MODEL_KEY=... detector train`)"
            )
        try:
            directory = artifact_checks.open_directory(str(path))
        except FileNotFoundError as exc:
            raise ModelError(f"{path}: not a model artifact (no {MANIFEST}); train one with `detector train`") from exc
        try:
            return cls._load_from(directory, path, key)
        finally:
            os.close(directory)

    @classmethod
    def _load_from(cls, directory: int, path: Path, key: bytes | None) -> ModelArtifact:
        mpath = path / MANIFEST
        try:
            with artifact_checks.open_regular(directory, MANIFEST, str(mpath), MAX_MANIFEST_BYTES) as f:
                body = f.read(MAX_MANIFEST_BYTES + 1)
            manifest = json.loads(body)
        except FileNotFoundError as exc:
            raise ModelError(f"{path}: not a model artifact (no {MANIFEST}); train one with `detector train`") from exc
        except ModelError:
            raise
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nesting past the parser's depth
            raise ModelError(f"{mpath}: unreadable manifest: {str(exc)[:200]}") from exc
        artifact_checks.check_manifest(manifest, str(mpath))
        if key is not None:
            sig = manifest.get("signature")
            unsigned = {k: v for k, v in manifest.items() if k != "signature"}
            expect = _signature(json.dumps(unsigned, indent=2, sort_keys=True).encode(), key)
            if not isinstance(sig, str) or not hmac.compare_digest(sig, expect):
                raise ModelError(f"{mpath}: signature missing or wrong (DETECTOR_MODEL_KEY is set)")
        if manifest.get("format") != ARTIFACT_FORMAT:
            raise ModelError(
                f"{mpath}: artifact format {manifest.get('format')!r}, this build reads {ARTIFACT_FORMAT}; "
                "retrain with `detector train`"
            )
        if manifest.get("feature_version") != FEATURE_VERSION or manifest.get("feature_names") != list(FEATURE_NAMES):
            raise ModelError(
                f"{mpath}: trained on feature version {manifest.get('feature_version')!r}, this build computes "
                f"version {FEATURE_VERSION}; retrain with `detector train`"
            )
        files = manifest.get("files")
        if not isinstance(files, dict) or FOREST not in files:
            raise ModelError(f"{mpath}: manifest lists no {FOREST}")
        for name in files:
            if not isinstance(name, str) or Path(name).name != name or name in (".", ".."):
                raise ModelError(f"{mpath}: file name {name!r} is not a plain file name")
        forest_file: IO[bytes] | None = None
        try:
            for name, digest in files.items():
                fpath = path / name
                try:
                    f = artifact_checks.open_regular(directory, name, str(fpath))
                except FileNotFoundError as exc:
                    raise ModelError(f"{fpath}: missing or unreadable: {exc.strerror or exc}") from exc
                try:
                    actual = _sha256_of(f)
                except OSError as exc:
                    f.close()
                    raise ModelError(f"{fpath}: missing or unreadable: {exc}") from exc
                if name == FOREST:
                    forest_file = f
                else:
                    f.close()
                if not hmac.compare_digest(actual, str(digest)):
                    raise ModelError(
                        f"{fpath}: sha256 {actual} does not match the manifest; refusing a tampered artifact"
                    )
            assert forest_file is not None  # FOREST is in files, checked above
            headers = artifact_checks.check_npz(forest_file, str(path / FOREST))
            _check_array_names(headers, path / FOREST)
            try:
                with np.load(forest_file, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            except (OSError, ValueError, EOFError) as exc:
                raise ModelError(f"{path / FOREST}: unreadable arrays: {exc}") from exc
        finally:
            if forest_file is not None:
                forest_file.close()
        groups_meta = manifest.get("groups")
        if not isinstance(groups_meta, dict) or "all" not in groups_meta:
            raise ModelError(f"{mpath}: manifest lists no peer groups (needs at least 'all')")
        groups: dict[str, GroupModel] = {}
        for name in groups_meta:
            if name not in GROUPS:
                raise ModelError(f"{mpath}: unknown peer group {name!r}")
            groups[name] = _group_from_arrays(name, groups_meta[name], arrays, path)
        return cls(groups=groups, manifest=manifest, path=path)


def _group_from_arrays(name: str, meta: Any, arrays: dict[str, np.ndarray], path: Path) -> GroupModel:
    prefix = f"{name}."
    a = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    where = f"{path / FOREST} ({name})"
    names = meta.get("members") if isinstance(meta, dict) else None
    if not isinstance(names, dict) or not names or not set(names) <= {"all", *SUBSPACES}:
        raise ModelError(f"{path / MANIFEST}: group {name!r} lists no forests, or unknown ones")
    members = []
    for member in names:
        sub = {k[len(member) + 1 :]: v for k, v in a.items() if k.startswith(f"{member}.")}
        forest = _forest_from_arrays(sub, f"{where} {member}")
        scores = sub.get("scores")
        if scores is None or scores.shape != LEVELS.shape or not np.all(np.isfinite(scores)):
            raise ModelError(f"{where} {member}: scores missing or not {LEVELS.shape}")
        members.append(Member(member, forest, scores.astype(np.float64)))
    combined, tails, peer, rows = a.get("combined"), a.get("tails"), a.get("peer_peaks"), a.get("rows")
    if combined is None or combined.shape != LEVELS.shape or not np.all(np.isfinite(combined)):
        raise ModelError(f"{where}: combined missing or not {LEVELS.shape}")
    if tails is None or tails.shape != (LEVELS.size, N_FEATURES) or not np.all(np.isfinite(tails)):
        raise ModelError(f"{where}: tails missing or not {(LEVELS.size, N_FEATURES)}")
    if peer is None or peer.shape != (N_PEAKS,) or not np.all(np.isfinite(peer)) or peer.min() < 0:
        raise ModelError(f"{where}: peer_peaks missing or not ({N_PEAKS},) non-negative")
    if rows is None or rows.shape != (1,) or int(rows[0]) < 1:
        raise ModelError(f"{where}: rows missing")
    return GroupModel(
        name, members, combined.astype(np.float64), tails.astype(np.float64), peer.astype(np.float64), int(rows[0])
    )


def _forest_from_arrays(a: dict[str, np.ndarray], where: str) -> Forest:
    need = ("left", "right", "feature", "threshold", "leaf_value", "roots", "shape")
    missing = [k for k in need if k not in a]
    if missing:
        raise ModelError(f"{where}: missing arrays {missing}")
    for k in ("left", "right", "feature", "roots", "shape"):
        if a[k].dtype.kind not in "iu" or a[k].ndim != 1:
            raise ModelError(f"{where}: array {k} is not a 1-D integer array")
    n = a["left"].shape[0]
    if n >= 2**31:
        raise ModelError(f"{where}: {n} nodes, more than an int32 index holds")
    for k in ("right", "feature", "threshold", "leaf_value"):
        if a[k].shape != (n,):
            raise ModelError(f"{where}: array {k} has shape {a[k].shape}, expected ({n},)")
    for k in ("left", "right", "roots"):
        if a[k].size and (a[k].min() < 0 or a[k].max() >= n):
            raise ModelError(f"{where}: array {k} points outside the node table")
    if a["feature"].size and (a["feature"].min() < 0 or a["feature"].max() >= N_FEATURES):
        raise ModelError(f"{where}: split feature index out of range")
    if a["shape"].shape != (2,):
        raise ModelError(f"{where}: array shape is not (max_depth, max_samples)")
    max_depth, max_samples = (int(v) for v in a["shape"])
    if not 0 < max_depth <= 64 or max_samples < 2:
        raise ModelError(f"{where}: implausible forest shape depth={max_depth} samples={max_samples}")
    left, right, roots = a["left"].astype(np.int32), a["right"].astype(np.int32), a["roots"].astype(np.int32)
    artifact_checks.check_trees(left, right, roots, max_depth, where)
    threshold, leaf_value = a["threshold"].astype(np.float64), a["leaf_value"].astype(np.float64)
    leaf = left == np.arange(n)
    if np.any(np.isnan(threshold)) or not np.all(np.isfinite(leaf_value[leaf])) or np.any(leaf_value[leaf] < 0):
        raise ModelError(f"{where}: NaN split thresholds or leaf path lengths that are not finite and >= 0")
    try:
        return Forest(
            left=left,
            right=right,
            feature=a["feature"].astype(np.int32),
            threshold=threshold,
            leaf_value=leaf_value,
            roots=roots,
            max_depth=max_depth,
            max_samples=max_samples,
        )
    except ValueError as exc:  # the compiled scorer's own checks, should the ones above miss something
        raise ModelError(f"{where}: {exc}") from exc


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


ANCHORS = 0.05  # range anchors, as a share of the rows a forest is fitted on


def range_anchors(n: int, rng: np.random.Generator, columns: np.ndarray | None = None) -> np.ndarray:
    """``n`` synthetic rows, each with one to three features drawn across the feature's whole span.

    An isolation tree can only split on a feature that varies in its sample, so a feature that
    never moved in training (no principal of the group ever deleted objects, say) could never
    isolate anything, however extreme. Anchors show every tree that each feature *can* move:
    a row far along any feature is then isolated near the top of the trees that split on it.
    They are part of the fit only: calibration (thresholds, tails) uses real rows.
    ``columns``: draw only these features (a subspace forest).
    """
    from detector.features import FEATURES

    span = np.array([f.span for f in FEATURES])
    cols_all = np.arange(N_FEATURES) if columns is None else np.asarray(columns)
    out = np.zeros((n, N_FEATURES))
    for i in range(n):
        k = int(rng.integers(1, min(3, cols_all.size) + 1))
        cols = rng.choice(cols_all, size=k, replace=False)
        out[i, cols] = rng.uniform(0.0, span[cols])
    return out


def fit_forest(
    x: np.ndarray,
    trees: int = 100,
    max_samples: int = 256,
    seed: int = 0,
    anchors: float = ANCHORS,
    columns: np.ndarray | None = None,
) -> tuple[Forest, Any]:
    """One scikit-learn isolation forest on ``x`` (plus range anchors), over all features or over
    ``columns``, flattened so that it scores whole rows; also returns the scikit-learn object."""
    from sklearn.ensemble import IsolationForest

    if x.ndim != 2 or x.shape[1] != N_FEATURES or x.shape[0] < 2:
        raise ModelError(f"need at least 2 rows of {N_FEATURES} features to train, got shape {x.shape}")
    rng = np.random.default_rng(seed)
    extra = range_anchors(round(anchors * x.shape[0]), rng, columns) if anchors > 0 else np.zeros((0, N_FEATURES))
    data = np.concatenate([x, extra])
    if columns is not None:
        data = data[:, np.asarray(columns)]
    sk = IsolationForest(n_estimators=trees, max_samples=min(max_samples, data.shape[0]), random_state=seed)
    sk.fit(data)
    return Forest.from_sklearn(sk, columns), sk


# The subspaces that get a forest of their own (besides the one over all features): how much,
# where from, what it calls and how that fares (errors, credential reads), and when (an hour it
# rarely works, and what it reads in it).
MEMBER_SUBSPACES = ("volume", "context", "calls", "time")


def fit_group(
    name: str, x: np.ndarray, peaks: np.ndarray, trees: int = 100, max_samples: int = 256, seed: int = 0
) -> GroupModel:
    """A group's ensemble, fitted and calibrated on its eligible rows ``x``; ``peaks``: its mature
    principals' peaks (rows of ``N_PEAKS``)."""
    members = []
    for member in ("all", *MEMBER_SUBSPACES):
        cols = None if member == "all" else np.array(SUBSPACES[member])
        forest, _ = fit_forest(x, trees, max_samples, seed, columns=cols)
        members.append(Member(member, forest, np.quantile(forest.score(x), LEVELS)))
    g = GroupModel(name, members, np.zeros(LEVELS.size), np.quantile(x, LEVELS, axis=0), np.zeros(N_PEAKS), x.shape[0])
    g.combined = np.quantile(g.raw(x), LEVELS)
    if peaks.shape[0]:
        g.peer_peaks = np.quantile(peaks, PEER_QUANTILE, axis=0).astype(np.float64)
    return g


def fit(
    x: np.ndarray,
    groups: np.ndarray | None = None,
    peaks: dict[str, np.ndarray] | None = None,
    trees: int = 100,
    max_samples: int = 256,
    seed: int = 0,
) -> ModelArtifact:
    """Train on eligible feature rows; ``groups`` names each row's peer group (default: all "all").

    ``peaks``: per group, the peaks of its mature principals (rows of ``N_PEAKS``), for the
    reference young principals are compared with. A group with fewer than ``MIN_GROUP_ROWS``
    rows gets no forests of its own; "all" is always trained.
    """
    if groups is None:
        groups = np.array(["all"] * x.shape[0])
    peaks = peaks or {}
    every = np.concatenate([p for p in peaks.values() if p.size] or [np.zeros((0, N_PEAKS))])
    out: dict[str, GroupModel] = {"all": fit_group("all", x, every, trees, max_samples, seed)}
    for name in ("human", "automation"):
        rows = groups == name
        if int(rows.sum()) < MIN_GROUP_ROWS:
            continue
        out[name] = fit_group(name, x[rows], peaks.get(name, np.zeros((0, N_PEAKS))), trees, max_samples, seed)
    return ModelArtifact(groups={k: out[k] for k in GROUPS if k in out})
