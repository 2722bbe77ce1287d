"""An installed detector has the demo's forest outside the checkout (issue 11 item 6).

Builds the wheel as `pip install .` does (non-editable), installs it into a fresh directory
and imports it from there, run from a directory with no models/: the default model is the
packaged copy, verified like any artifact (an edited copy is refused).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from detector import settings
from detector.errors import ModelError
from detector.model import ModelArtifact
from detector.train import model_key
s = settings.load(None, env={})
print(s.model)
try:
    print(ModelArtifact.load(s.model, key=model_key()).version)
except ModelError as exc:
    print("refused:", exc)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(base / "dist")],
        check=True, env=env, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = (base / "dist").glob("cloudtrail_detector-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"detector/_default_model/manifest.json", "detector/_default_model/forest.npz"} <= set(names)
    # the compiled core is built into the wheel, with its stub; its sources stay out
    assert any(n.startswith("detector/core/_forest.") and n.endswith(".so") for n in names)
    assert "detector/core/_forest.pyi" in names and "detector/core/_forest.c" not in names
    target = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True, env=env, capture_output=True, timeout=600,
    )  # fmt: skip
    return target


def _probe(site: Path, cwd: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    env["PYTHONPATH"] = str(site)  # the installed copy, not this checkout
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, timeout=120, check=True)
    return proc.stdout.decode().splitlines()


def test_the_installed_package_loads_its_own_default_model(installed: Path, tmp_path: Path) -> None:
    path, version = _probe(installed, tmp_path)
    assert Path(path) == installed / "detector" / "_default_model"
    assert version.startswith("default-")
    manifest = (ROOT / "models" / "default" / "manifest.json").read_bytes()
    assert (installed / "detector" / "_default_model" / "manifest.json").read_bytes() == manifest  # the same files


def test_the_packaged_model_is_verified_like_any_artifact(installed: Path, tmp_path: Path) -> None:
    shipped = installed / "detector" / "_default_model" / "forest.npz"
    original = shipped.read_bytes()
    try:
        shipped.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        path, verdict = _probe(installed, tmp_path)
        assert Path(path) == shipped.parent
        assert verdict.startswith("refused:") and "sha256" in verdict
    finally:
        shipped.write_bytes(original)


def test_a_configured_model_path_is_never_replaced(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    env.update(PYTHONPATH=str(installed), DETECTOR_MODEL=str(tmp_path / "mine"))
    code = "from detector import settings; print(settings.load(None).model)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, check=True)
    assert proc.stdout.decode().strip() == str(tmp_path / "mine")


def test_from_a_checkout_run_elsewhere_the_default_is_the_checkouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editable install (this checkout) run from another directory still finds models/default."""
    from detector import settings

    monkeypatch.chdir(tmp_path)
    assert settings.load(None, env={}).model == ROOT / "models" / "default"
