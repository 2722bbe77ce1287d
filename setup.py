"""The build steps beyond pyproject.toml: the compiled core, and the demo's model in the package.

``detector/core/*.pyx`` is compiled with Cython into extension modules (``pip install -e .``
builds them in place). They use typed memoryviews only, not numpy's C API, so the build
needs Cython and a C compiler but not numpy. Without a compiler the build stops with one
line saying what to install.

``models/default`` stays the only copy in the repository. A built package (``pip install .``,
a wheel, the Docker image's venv) gets its files as ``detector/_default_model/``, package data
that ``detector.default_model`` finds with ``importlib.resources``, so an installed
``detector run`` outside the checkout still has the forest. An editable install reads
``models/default`` from the checkout instead, so nothing is copied for it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sysconfig
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.errors import CompileError, ExecError, LinkError, PlatformError

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "models" / "default"
TARGET = ("detector", "_default_model")
NEEDS_COMPILER = (
    "cloudtrail-detector compiles detector/core with Cython and needs a C compiler and the Python "
    "headers: install them (Debian/Ubuntu: apt-get install gcc libc6-dev python3-dev) and retry"
)


class BuildWithDefaultModel(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        files = sorted(p for p in SOURCE.iterdir() if p.is_file()) if SOURCE.is_dir() else []
        if not any(p.name == "manifest.json" for p in files):
            raise SystemExit(f"{SOURCE}: the default model is missing (manifest.json); it ships inside the package")
        target = Path(self.build_lib, *TARGET)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for p in files:
            shutil.copyfile(p, target / p.name)


class BuildCompiledCore(build_ext):
    """``build_ext`` that turns a missing compiler or missing headers into one line, not a traceback."""

    def run(self) -> None:
        cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[0]  # as distutils picks it
        headers = Path(sysconfig.get_paths()["include"], "Python.h")
        if shutil.which(cc) is None or not headers.is_file():
            raise SystemExit(NEEDS_COMPILER)
        try:
            super().run()
        except (CompileError, LinkError, ExecError, PlatformError) as exc:
            raise SystemExit(f"{NEEDS_COMPILER} ({exc})") from exc


CORE = [
    Extension(
        "detector.core._forest",
        ["detector/core/_forest.pyx"],
        extra_compile_args=["-O3"],
    )
]

setup(
    ext_modules=cythonize(CORE, compiler_directives={"language_level": "3"}),
    cmdclass={"build_py": BuildWithDefaultModel, "build_ext": BuildCompiledCore},
)
