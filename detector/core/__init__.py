"""The compiled hot path: Cython modules (``*.pyx``) with a ``.pyi`` stub beside each.

Everything here is the implementation itself, not an accelerated copy of Python code kept
elsewhere; the plain modules (``detector.model``) build these objects from validated data
and call them. ``pip install -e .`` compiles them (setup.py).
"""

from __future__ import annotations

try:
    from detector.core._forest import CompiledForest
except ImportError as exc:  # a checkout used without building it
    raise ImportError(
        f"detector.core is not compiled ({exc}); build it with `pip install -e .` (needs a C compiler)"
    ) from exc

__all__ = ["CompiledForest"]
