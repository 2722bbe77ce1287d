"""Helpers shared by the issue-12 probes: a simulated archive, `detector run` as a child process
(killed or stopped), and what a finished run left behind (per-principal totals, alert IDs,
rejects and dead letters).

The probes are scripts, not tests: each prints its numbers as one JSON object and exits non-zero
if a promise of issue 12 does not hold. Run them from a checkout with
``PYTHONPATH=. python bench/probes/<name>.py``.
"""

from __future__ import annotations

import gzip
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from detector import simulate  # noqa: E402
from detector.baseline import ENCODED_SIZE, Baseline  # noqa: E402
from detector.runtime.checkpoint import Checkpoint, LocalCheckpointStore  # noqa: E402

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(FAKE_AWS)
    return clean


def archive(
    out: Path, days: int = 5, seed: int = 5, principals: int = 30, all_scenarios: bool = False
) -> tuple[Path, int]:
    """A simulated CloudTrail archive (AWSLogs/...) with a few rule-firing attacks (or the whole
    catalogue); (root, events)."""
    plan = simulate.plan(
        days=days,
        seed=seed,
        test_days=1,
        principals=principals,
        scenarios=None if all_scenarios else ["privilege_escalation", "sensitive_config_change"],
    )
    summary = simulate.write_archive(plan, out)
    return out / "AWSLogs", int(summary["events"])


def archive_files(root: Path) -> list[Path]:
    """The archive's files in delivery order (the time in their names), as CloudTrail writes them."""
    return sorted(root.rglob("*.json.gz"), key=lambda p: (p.name.split("_")[3], p.name))


def archive_events(root: Path) -> Iterator[dict[str, Any]]:
    """Every event of the archive, file by file in delivery order."""
    for path in archive_files(root):
        yield from orjson.loads(gzip.decompress(path.read_bytes()))["Records"]


class Run:
    """``detector run`` in a child process; its stderr (JSON log lines) is collected."""

    def __init__(self, cfg: Path, args: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg), *args],
            cwd=cfg.parent,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.log: list[bytes] = []
        self.checkpoints = 0  # written at the interval
        self.saved = 0  # written for any reason
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if b'"event": "checkpoint"' in line:
                self.saved += 1
                self.checkpoints += b'"reason": "interval"' in line

    def wait_checkpoints(self, n: int, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while self.checkpoints < n and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.checkpoints >= n

    def kill(self) -> bool:
        """SIGKILL; True if it was still running."""
        if self.proc.poll() is not None:
            return False
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return True

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (a graceful shutdown and its checkpoint), then the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def wait(self, timeout: float = 600) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def tracebacks(self) -> int:
        return sum(b"Traceback (most recent call last)" in line for line in self.log)

    def tail(self, n: int = 20) -> str:
        return b"".join(self.log[-n:]).decode(errors="replace")


def load(state: Path) -> Checkpoint | None:
    return LocalCheckpointStore(state).load()


def totals(cp: Checkpoint) -> dict[str, int]:
    """Events counted in each principal's baseline."""
    return {k: Baseline.decode(v[:ENCODED_SIZE]).total for k, v in cp.store.items()}


def alerts(path: Path) -> list[dict[str, Any]]:
    """Alert lines of a file sink; a line torn by a kill is skipped (the sink cuts it on reopen)."""
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]


def alert_ids(path: Path) -> set[str]:
    return {a["alert_id"] for a in alerts(path)}


def deliveries(path: Path) -> Counter[tuple[str, str, int]]:
    """How often each (alert_id, status, event_count) was written: > 1 is a duplicate delivery."""
    return Counter((a["alert_id"], str(a.get("status")), int(a.get("event_count", 0))) for a in alerts(path))


def dead_letters(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


_REJECT_LINE = re.compile(rb'"event": "rejected"')


def rejected_in_log(log: list[bytes]) -> int:
    """Rejected records the log reports (each log line carries its ``count``)."""
    n = 0
    for line in log:
        if _REJECT_LINE.search(line):
            n += int(orjson.loads(line).get("count", 1))
    return n


def kill_loop(
    start: Callable[[], Run], kills: int, rng: random.Random, max_checkpoint: int = 3, max_delay: float = 0.3
) -> tuple[int, list[str]]:
    """Start runs and SIGKILL each at a random point after a random checkpoint; (kills landed, notes)."""
    landed, notes, attempts = 0, [], 0
    while landed < kills and attempts < kills * 4:
        attempts += 1
        run = start()
        n, delay = rng.randint(1, max_checkpoint), rng.uniform(0.0, max_delay)
        if not run.wait_checkpoints(n):
            notes.append(f"attempt {attempts}: exited before checkpoint {n}: {run.tail(3)}")
            run.stop()
            continue
        time.sleep(delay)
        if run.kill():
            landed += 1
            notes.append(f"kill {landed}: {delay * 1000:.0f} ms after checkpoint {n}")
    return landed, notes
