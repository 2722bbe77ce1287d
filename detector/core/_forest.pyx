# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Isolation-forest scoring over the artifact's own flattened node table.

``CompiledForest`` copies the table (see ``detector.model.Forest``) into one array of C
structs when it is built, and checks every index there, once: children in range and
numbered after their parent (so every walk ends), split features inside the row, leaves
with finite path lengths, no tree deeper than ``max_depth``. The scoring loop then follows
indices unchecked and without the GIL. Because the struct array is its own copy, editing
the numpy arrays afterwards cannot break what was checked.

Rows are compared as scikit-learn compares them: cast to float32, then ``x <= threshold``
in double. A NaN compares false, so it goes right, as in scikit-learn's ``Tree.apply`` for
a tree fitted without missing values.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport isfinite, isnan
from libc.stdint cimport int32_t

import numpy as np


cdef struct Node:
    double value     # the split threshold, or at a leaf its path length (depth + c(samples))
    int32_t left
    int32_t right
    int32_t feature  # -1 at a leaf


cdef class CompiledForest:
    """A validated, immutable copy of a flattened isolation forest; see the module docstring."""

    cdef Node* nodes
    cdef int32_t* roots
    cdef readonly Py_ssize_t n_nodes
    cdef readonly Py_ssize_t n_trees
    cdef readonly Py_ssize_t n_features
    cdef readonly int max_depth

    def __cinit__(self, left, right, feature, threshold, leaf_value, roots, max_depth, n_features):
        self.nodes = NULL
        self.roots = NULL
        cdef int depth_cap = _bounded_int(max_depth, 0, 64, "max_depth")  # 0: every tree a single leaf
        cdef Py_ssize_t width = _bounded_int(n_features, 1, 2**31 - 1, "n_features")
        cdef const int32_t[::1] lc = _vector(left, np.int32, "left")
        cdef const int32_t[::1] rc = _vector(right, np.int32, "right")
        cdef const int32_t[::1] feat = _vector(feature, np.int32, "feature")
        cdef const double[::1] thr = _vector(threshold, np.float64, "threshold")
        cdef const double[::1] val = _vector(leaf_value, np.float64, "leaf_value")
        cdef const int32_t[::1] rts = _vector(roots, np.int32, "roots")
        cdef Py_ssize_t n = lc.shape[0]
        if rc.shape[0] != n or feat.shape[0] != n or thr.shape[0] != n or val.shape[0] != n:
            raise ValueError(
                f"node arrays differ in length: left {n}, right {rc.shape[0]}, feature {feat.shape[0]}, "
                f"threshold {thr.shape[0]}, leaf_value {val.shape[0]}"
            )
        if n == 0 or rts.shape[0] == 0:
            raise ValueError("a forest needs at least one tree and one node")
        if n >= 2**31 - 1:
            raise ValueError(f"{n} nodes, more than an int32 index holds")

        self.nodes = <Node*> PyMem_Malloc(n * sizeof(Node))
        self.roots = <int32_t*> PyMem_Malloc(rts.shape[0] * sizeof(int32_t))
        if self.nodes == NULL or self.roots == NULL:
            raise MemoryError()
        self.n_nodes = n
        self.n_trees = rts.shape[0]
        self.n_features = width
        self.max_depth = depth_cap

        cdef Py_ssize_t i
        cdef int32_t a, b
        for i in range(n):
            a, b = lc[i], rc[i]
            if a == i and b == i:
                if not isfinite(val[i]) or val[i] < 0:
                    raise ValueError(f"leaf {i} has path length {val[i]}, not a finite number >= 0")
                self.nodes[i] = Node(val[i], a, b, -1)
                continue
            if not (i < a < n and i < b < n):
                raise ValueError(
                    f"node {i} has children ({a}, {b}): each must be numbered after it and below {n}, "
                    "or both equal to it at a leaf"
                )
            if not 0 <= feat[i] < width:
                raise ValueError(f"node {i} splits on feature {feat[i]}, outside 0..{width - 1}")
            if isnan(thr[i]):
                raise ValueError(f"node {i} has a NaN threshold")
            self.nodes[i] = Node(thr[i], a, b, feat[i])
        for i in range(self.n_trees):
            if not 0 <= rts[i] < n:
                raise ValueError(f"root {i} is node {rts[i]}, outside 0..{n - 1}")
            self.roots[i] = rts[i]

        # Children are numbered after their parents, so one pass from the last node back gives
        # every node's height; a tree deeper than max_depth contradicts the forest's own shape.
        cdef int32_t[::1] height = np.zeros(n, dtype=np.int32)
        for i in range(n - 1, -1, -1):
            if self.nodes[i].feature >= 0:
                height[i] = 1 + max(height[self.nodes[i].left], height[self.nodes[i].right])
        for i in range(self.n_trees):
            if height[self.roots[i]] > depth_cap:
                raise ValueError(f"tree {i} is {height[self.roots[i]]} deep, deeper than max_depth {depth_cap}")

    def __dealloc__(self):
        PyMem_Free(self.nodes)
        PyMem_Free(self.roots)

    def path_lengths(self, x):
        """Mean path length over all trees of each row of ``x`` (rows x ``n_features``), float64."""
        cdef const float[:, ::1] rows = _rows(x, self.n_features)
        cdef Py_ssize_t n_rows = rows.shape[0]
        out = np.zeros(n_rows, dtype=np.float64)
        cdef double[::1] total = out
        cdef Py_ssize_t t, i
        cdef const Node* node
        cdef const float* row
        if n_rows == 0:
            return out
        with nogil:
            # Tree by tree keeps one tree's nodes in cache across the batch; each row's sum
            # still adds the trees in order, as the reference implementation does.
            for t in range(self.n_trees):
                for i in range(n_rows):
                    row = &rows[i, 0]
                    node = &self.nodes[self.roots[t]]
                    while node.feature >= 0:
                        if <double> row[node.feature] <= node.value:
                            node = &self.nodes[node.left]
                        else:
                            node = &self.nodes[node.right]
                    total[i] += node.value
            for i in range(n_rows):
                total[i] /= self.n_trees
        return out


def _vector(a, dtype, str name):
    """``a`` as a contiguous 1-D array of exactly ``dtype``: a different type is refused, not cast,
    so an int64 index above 2**31 can never wrap into range."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != dtype or a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D {np.dtype(dtype)} array, got {a.ndim}-D {a.dtype}")
    return np.ascontiguousarray(a)


def _bounded_int(value, Py_ssize_t least, Py_ssize_t most, str name):
    """``value`` as an int in ``least``..``most``; anything else (a float, a bool, a huge int) is a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not least <= value <= most:
        raise ValueError(f"{name} must be an integer in {least}..{most}, got {value!r}")
    return int(value)


def _rows(x, Py_ssize_t n_features):
    """``x`` as C-contiguous float32 rows of ``n_features`` (the values scikit-learn splits on)."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] != n_features:
        raise ValueError(f"expected rows of {n_features} features, got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"expected numeric rows, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)
