"""What a model artifact's bytes must satisfy before any of them is used.

A model directory is input like any other: whoever can write it controls every byte we read.
This module owns the checks that keep a crafted artifact from crashing, hanging or exhausting
the process, before ``model.ModelArtifact.load`` trusts anything in it:

* files are opened by plain name relative to the directory, never following a symlink
  (``O_NOFOLLOW``), never blocking (``O_NONBLOCK``: a FIFO would wait for a writer), and are
  read only if ``fstat`` says they are regular files under a size cap. The same descriptor is
  hashed and then parsed, so what was verified is what is read;
* every array of ``forest.npz`` is checked from its ``.npy`` header (dtype, shape, bytes)
  before its data is read, against a cap on the total;
* every tree is checked whole (``check_trees``): children inside their own tree and numbered
  after their parent (so acyclic), one parent per node, and no deeper than the forest says.
  The compiled scorer (``detector.core``) checks what it needs to stay in bounds once more
  when it is built, and follows child indices unchecked after that; the checks here are the
  stricter format (one tree after another, one parent per node), named in a ``ModelError``.

Each check raises ``ModelError`` with one sentence naming the file and what is wrong.
"""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from detector.errors import ModelError

__all__ = [
    "MAX_ARRAY_BYTES",
    "MAX_FILE_BYTES",
    "check_manifest",
    "check_npz",
    "check_trees",
    "open_directory",
    "open_regular",
]

MAX_FILE_BYTES = 1 << 30
"""A file of an artifact larger than this is refused unread (the default model is ~1 MB)."""

MAX_ARRAY_BYTES = 1 << 30
"""Cap on the bytes all arrays of one ``forest.npz`` would take once read, from their headers.

100 trees of 4,096 samples for each of the nine forests (three groups, three members) is
~250 MB of node tables; several times that is still a forged header, not a model.
"""

_NUMERIC_KINDS = frozenset("biuf")
MAX_VERSION_CHARS = 256
"""A model version is a name (``default-20261207T132927Z``); it becomes a log field and a metric label."""


def open_directory(path: str) -> int:
    """A descriptor of the artifact directory (the directory itself may be a symlink)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ModelError(f"{path}: not a readable directory: {exc.strerror or exc}") from exc


def open_regular(directory: int, name: str, where: str, limit: int = MAX_FILE_BYTES) -> IO[bytes]:
    """Open ``name`` inside ``directory`` for reading if it is a regular file of at most ``limit`` bytes.

    Raises ``FileNotFoundError`` if it does not exist, ``ModelError`` for a symlink, FIFO,
    device, directory or oversized file.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=directory)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ModelError(f"{where}: is a symlink; only regular files inside the model directory are read") from exc
        raise ModelError(f"{where}: cannot open: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelError(f"{where}: is not a regular file (a FIFO, device or directory); refusing it")
        if info.st_size > limit:
            raise ModelError(f"{where}: is {info.st_size} bytes, over the {limit}-byte cap for artifact files")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_npz(f: IO[bytes], where: str, limit: int | None = None) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Each array's (dtype, shape) from its ``.npy`` header, without reading any data.

    Refuses non-numeric dtypes (object arrays are pickles), members that are not ``.npy``,
    headers that promise more data than the member holds, and a total over ``limit`` bytes.
    Leaves ``f`` at its start for ``np.load``. ``limit`` defaults to ``MAX_ARRAY_BYTES``.
    """
    limit = MAX_ARRAY_BYTES if limit is None else limit
    out: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    total = 0
    try:
        f.seek(0)
        with zipfile.ZipFile(f) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    raise ModelError(f"{where}: member {info.filename[:80]!r} is not a .npy array")
                name = info.filename[: -len(".npy")]
                with z.open(info) as member:
                    dtype, shape = _npy_header(member)
                if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
                    raise ModelError(
                        f"{where}: unreadable arrays: {name[:80]!r} has dtype {dtype}, not a number type "
                        "(an object array is a pickle)"
                    )
                size = dtype.itemsize
                for dim in shape:
                    size *= dim
                if size > info.file_size:
                    raise ModelError(f"{where}: array {name[:80]!r} promises {size} bytes, its member holds less")
                total += size
                if total > limit:
                    raise ModelError(f"{where}: arrays would take over {limit} bytes once read; refusing to read them")
                out[name] = (dtype, shape)
    except ModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise ModelError(f"{where}: unreadable arrays: {exc}") from exc
    f.seek(0)
    return out


def _npy_header(member: IO[bytes]) -> tuple[np.dtype, tuple[int, ...]]:
    version = npy_format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = npy_format.read_array_header_2_0(member)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return np.dtype(dtype), tuple(int(d) for d in shape)


def check_trees(left: np.ndarray, right: np.ndarray, roots: np.ndarray, max_depth: int, where: str) -> None:
    """Refuse a node table that is not ``roots.size`` well-formed trees stored one after another.

    The layout ``Forest.from_sklearn`` writes: tree ``t`` is the nodes ``roots[t]`` up to the
    next root; a leaf's children are itself; an internal node's two children lie in its own
    tree after it; every node but a root has exactly one parent; no internal node is at depth
    ``max_depth`` or below.
    """
    n = left.size
    if roots.size == 0 or n == 0:
        raise ModelError(f"{where}: forest has no trees")
    ends = np.append(roots[1:], n).astype(np.int64)
    if roots[0] != 0 or np.any(ends <= roots):
        raise ModelError(f"{where}: tree roots are not increasing from node 0")
    ids = np.arange(n)
    tree_end = np.repeat(ends, ends - roots)
    leaf = left == ids
    if np.any(leaf != (right == ids)):
        raise ModelError(f"{where}: a node has only one child")
    inner = ids[~leaf]
    lefts, rights, end = left[inner], right[inner], tree_end[inner]
    if np.any(lefts <= inner) or np.any(rights <= inner):
        raise ModelError(f"{where}: a child is numbered before its parent (a cycle, or a broken tree)")
    if np.any(lefts >= end) or np.any(rights >= end):
        raise ModelError(f"{where}: a child index points into another tree")
    parents = np.bincount(np.concatenate([lefts, rights]), minlength=n)
    is_root = np.zeros(n, dtype=bool)
    is_root[roots] = True
    if np.any(parents[~is_root] != 1) or np.any(parents[is_root] != 0):
        raise ModelError(f"{where}: a node has no parent or more than one")
    frontier = roots.astype(np.int64)
    for _ in range(max_depth):
        frontier = frontier[~leaf[frontier]]
        frontier = np.concatenate([left[frontier], right[frontier]])
    if np.any(~leaf[frontier]):
        raise ModelError(f"{where}: a tree is deeper than its stated max depth {max_depth}")


def check_manifest(manifest: object, where: str) -> None:
    """Refuse a manifest whose top-level fields the runtime uses as they are would break it.

    ``version`` (a log field and metric label) must be a short string and ``trained_at`` (a
    gauge) a finite number, when present; everything else is checked where it is read.
    """
    if not isinstance(manifest, dict):
        raise ModelError(f"{where}: manifest is not a JSON object")
    version = manifest.get("version")
    if version is not None and (type(version) is not str or len(version) > MAX_VERSION_CHARS):
        raise ModelError(f"{where}: manifest version is not a string of at most {MAX_VERSION_CHARS} characters")
    trained_at = manifest.get("trained_at")
    if trained_at is not None and (type(trained_at) not in (int, float) or not -1e12 < trained_at < 1e12):
        raise ModelError(f"{where}: manifest trained_at is not a plausible number of Unix seconds")
