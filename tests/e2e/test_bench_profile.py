"""bench/profile.py as the README runs it: every stage in its table, the rows adding up to the total.

Nothing here is timed; a tiny archive only checks that the stage table still matches the code
(a function that moved or stopped being called makes the script fail, not "other" grow) and
that no stage double counts (a nested function left unsubtracted would push "other" below 0).
"""

from __future__ import annotations

import os
import pstats
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES = [
    "typed read",
    "Event building",
    "ordering + dedup",
    "Baseline.observe",
    "features.row",
    "forest scoring",
    "policy.rule_findings",
    "pipeline bookkeeping",
    "alert building",
    "other",
]


def _table(stdout: str) -> dict[str, tuple[float, float, float]]:
    """stage -> (µs/event profiled, share %, µs/event estimated), from the rich table's rows."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 4 and (cells[0] in STAGES or cells[0] == "total"):
            rows[cells[0]] = (float(cells[1]), float(cells[2].rstrip("%")), float(cells[3]))
    return rows


def test_profile_prints_every_stage_and_the_stages_add_up_to_the_total(tmp_path: Path) -> None:
    raw = tmp_path / "replay.pstats"
    args = ["--events", "2000", "--dir", str(tmp_path / "archive"), "--top", "3", "--pstats", str(raw)]
    proc = subprocess.run(
        [sys.executable, "bench/profile.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},  # no wrapped cells in a pipe
    )
    assert proc.returncode == 0, proc.stderr
    rows = _table(proc.stdout)
    assert list(rows) == [*STAGES, "total"], proc.stdout
    for name in STAGES:
        assert all(v >= 0 for v in rows[name]), (name, rows[name])
    for column in range(3):
        parts = sum(rows[name][column] for name in STAGES)
        rounding = 0.006 * len(STAGES) * (10 if column == 1 else 1)  # shares print to 0.1 %, the rest to 0.01
        assert abs(parts - rows["total"][column]) <= rounding, (column, parts, rows["total"])
    assert rows["Baseline.observe"][0] > 0 and rows["forest scoring"][0] > 0  # the core did run
    assert "hottest 3 functions" in proc.stdout
    assert pstats.Stats(str(raw)).total_calls > 0  # type: ignore[attr-defined]
