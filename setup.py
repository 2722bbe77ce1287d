"""One build step beyond pyproject.toml: the demo's model goes into the package.

``models/default`` stays the only copy in the repository. A built package (``pip install .``,
a wheel, the Docker image's venv) gets its files as ``detector/_default_model/``, package data
that ``detector.default_model`` finds with ``importlib.resources``, so an installed
``detector run`` outside the checkout still has the forest. An editable install reads
``models/default`` from the checkout instead, so nothing is copied for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "models" / "default"
TARGET = ("detector", "_default_model")


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


setup(cmdclass={"build_py": BuildWithDefaultModel})
