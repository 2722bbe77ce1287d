"""The README's two commands are the ones the tests and CI actually exercise.

The demo command is run by test_run_demo.py (the installed ``detector run`` from the project
root). The test command, ``scripts/test``, is what CI runs (``.ci/run`` execs it); it must do all
the set-up a fresh Debian machine needs, so the checks below read it for each step.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_first_command_runs_the_demo_second_runs_the_tests() -> None:
    demo, tests = _blocks()[:2]
    assert demo.strip() == "pip install -e . && detector run"  # exercised by test_run_demo.py
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
        "python -m mypy",
        'python -m pytest "$@"',
    ]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions), "set-up first, then ruff, mypy, pytest"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
