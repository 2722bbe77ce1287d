"""The README's two commands are the ones the tests and CI actually exercise.

The demo command runs here exactly as written, in a fresh virtualenv, from a clean clone of
this repository: ``pip install -e .`` installs from the wheel cache or the package index, then
``detector run`` must print an alert about a labelled attack (a normal-suite test, about a
minute). The test command, ``scripts/test``, is what CI runs (``.ci/run`` execs it); running it
from inside the suite would run the suite recursively, so the checks below read it for each
set-up step instead.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from detector import simulate
from detector.settings import load

ROOT = Path(__file__).resolve().parents[2]


def _blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_first_command_runs_the_demo_second_runs_the_tests() -> None:
    demo, tests = _blocks()[:2]
    assert demo.strip() == "pip install -e . && detector run"  # run as written below
    assert tests.strip() == "scripts/test"
    intro = (ROOT / "README.md").read_text().split("```sh", 1)[0]
    assert "Python >= 3.11" in intro and "virtualenv" in intro


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in ci if line and not line.startswith("#") and not line.startswith("set ")]
    assert commands[-1] == "exec scripts/test"


def test_the_test_script_does_every_set_up_step_then_lint_types_tests() -> None:
    script = ROOT / "scripts" / "test"
    assert script.stat().st_mode & 0o111, "scripts/test must be executable"
    text = script.read_text()
    steps = [
        "apt_install prometheus",
        "apt_install nodejs npm",
        "npm install --prefix .ci/node",
        "python -m pip install -q -e '.[test]'",
        "python -m ruff check .",
        "python -m cython_lint.cython_lint detector/core",
        "python -m mypy",
        'python -m pytest "$@"',
    ]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions), "set-up first, then ruff, cython-lint, mypy, pytest"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0


@pytest.mark.timeout(600)
def test_the_demo_command_as_written_in_a_fresh_virtualenv_from_a_clean_clone(tmp_path: Path) -> None:
    demo = _blocks()[0].strip()
    clone, venv, state = tmp_path / "clone", tmp_path / "venv", tmp_path / "state"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # what an activated virtualenv sets; nothing of this checkout's own environment (PYTHONPATH)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DETECTOR_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(venv))
    # isolation only: another test's detector may hold the default port or state directory
    env.update(DETECTOR_STATE_DIR=str(state), DETECTOR_METRICS__PORT="0")
    settings = load(clone / "config" / "detector.yaml", env={})
    attackers = {
        label.principal_arn for label in simulate.labels(simulate.plan(settings.source.days, settings.source.seed))
    }
    proc = subprocess.Popen(
        ["bash", "-c", demo],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: pip, then detector run
    )
    log: list[str] = []

    def read_log() -> None:
        assert proc.stderr is not None
        log.extend(raw.decode(errors="replace") for raw in proc.stderr)

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    alert = None
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:  # pip's own lines, then the alerts (JSON: stdout is a pipe here)
            if raw.startswith(b"{"):
                alert = orjson.loads(raw)
                break
        assert alert is not None, "".join(log)[-3000:]
        assert alert["principal_arn"] in attackers, alert
        assert alert["kind"] and alert["summary"] and alert["explanation"]
        where = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import detector; print(detector.__file__)"],
            capture_output=True,
            check=True,
            cwd=tmp_path,
            env=env,
        )
        assert Path(where.stdout.decode().strip()).is_relative_to(clone)  # the clone's code, installed editable
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=settings.shutdown_timeout_s + 10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)
    events = [orjson.loads(line).get("event") for line in log if line.startswith("{")]
    assert "start" in events and "shutdown" in events, "".join(log)[-3000:]
    assert (state / "run.lock").exists()
