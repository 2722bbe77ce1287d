"""The demo's model: ``models/default`` in a checkout, the copy shipped in the package elsewhere.

``settings.model`` defaults to the relative path ``models/default``, which is there when the
detector runs from the repository. An installed detector runs from anywhere, so the build
(``setup.py``) puts the same files in the package as ``detector/_default_model``; when the
configured model is that default and the path does not exist, ``settings.load`` points it at
the packaged copy (or, for an editable install run elsewhere, at the checkout's
``models/default``). Either is loaded and verified like any artifact (``ModelArtifact.load``:
each file's sha256, the trees, the signature when a key is set); a configured path other than
the default is never replaced.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

DEFAULT = Path("models/default")
PACKAGED = "_default_model"


def packaged() -> Path | None:
    """The shipped copy (a built package), else the checkout's ``models/default`` (editable), else None."""
    shipped = importlib.resources.files("detector") / PACKAGED
    # a package imported from a zip would give a zipfile.Path: artifacts are read as real files
    if isinstance(shipped, Path) and (shipped / "manifest.json").is_file():
        return shipped
    checkout = Path(__file__).resolve().parents[1] / DEFAULT
    if (checkout / "manifest.json").is_file():
        return checkout
    return None


def resolve(path: Path) -> Path:
    """``path``, or the packaged default when ``path`` is the default ``models/default`` and absent."""
    if Path(path) == DEFAULT and not (Path(path) / "manifest.json").exists():
        return packaged() or Path(path)
    return Path(path)
