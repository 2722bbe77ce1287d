"""The README's two set-up commands are the ones the tests and CI actually exercise."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_first_command_runs_the_demo_second_runs_the_tests() -> None:
    demo, tests = _blocks()[:2]
    assert demo.strip() == "pip install -e . && detector run"  # exercised by test_run_demo.py
    assert tests.strip() == "pip install -e '.[test]' && python -m pytest -q"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "python -m pytest -q"
    assert any(line.strip() == "python -m pip install -q -e '.[test]'" for line in ci)
