"""Type stub for the compiled ``_forest`` module (see ``_forest.pyx``)."""

import numpy as np
import numpy.typing as npt

class CompiledForest:
    """A validated, immutable copy of a flattened isolation forest.

    Raises ``ValueError`` for arrays of the wrong dtype, shape or length, an index out of
    range, a child numbered before its parent, a NaN threshold, a leaf path length that is
    not finite and >= 0, or a tree deeper than ``max_depth``.
    """

    @property
    def n_nodes(self) -> int: ...
    @property
    def n_trees(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def max_depth(self) -> int: ...
    def __init__(
        self,
        left: npt.NDArray[np.int32],
        right: npt.NDArray[np.int32],
        feature: npt.NDArray[np.int32],
        threshold: npt.NDArray[np.float64],
        leaf_value: npt.NDArray[np.float64],
        roots: npt.NDArray[np.int32],
        max_depth: int,
        n_features: int,
    ) -> None: ...
    def path_lengths(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Mean path length over all trees of each row (rows x ``n_features``); ``ValueError`` on another shape."""
