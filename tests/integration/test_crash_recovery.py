"""kill -9 ``detector run`` at random points, restart it, and end exactly where an uninterrupted
run ends: every event processed (exactly once in the baselines), the same final baselines and
eventID memory, and the same set of alert IDs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from detector import simulate
from detector.baseline import ENCODED_SIZE, Baseline
from detector.ordering import SeenIds
from detector.runtime.checkpoint import Checkpoint, LocalCheckpointStore

ROOT = Path(__file__).resolve().parents[2]
KILLS = 3


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("crash-archive")
    plan = simulate.plan(
        days=3, seed=5, test_days=1, principals=20, scenarios=["privilege_escalation", "sensitive_config_change"]
    )
    summary = simulate.write_archive(plan, out)
    return out / "AWSLogs", int(summary["events"])


def config(tmp: Path, name: str, archive: Path) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(
        f"""
model: {tmp / "no-model"}
state_dir: {tmp / name / "state"}
checkpoint_interval_s: 0.05
source: {{kind: file, paths: ["{archive}"]}}
sinks: [{{kind: file, path: "{tmp / name / "alerts.jsonl"}"}}]
metrics: {{port: 0}}
pipeline: {{batch_size: 256}}
"""
    )
    return path


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    clean["PYTHONPATH"] = str(ROOT)
    return clean


def run(cfg: Path, cwd: Path, kill: tuple[int, float] | None = None) -> tuple[bool, int]:
    """Run to the end, or with ``kill=(n, s)`` SIGKILL it ``s`` seconds after its n-th checkpoint
    (progress, not wall time, so the kill lands mid-run however fast the machine is).

    Returns (killed while running, exit code)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "detector.cli", "run", "--once", "--config", str(cfg)],
        cwd=cwd,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    reached = threading.Event()
    log: list[bytes] = []
    checkpoints = 0

    def read() -> None:
        nonlocal checkpoints
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if b'"event": "checkpoint"' in line and b'"reason": "interval"' in line:
                checkpoints += 1
                if kill is not None and checkpoints >= kill[0]:
                    reached.set()
        reached.set()  # exited before that checkpoint

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed = False
    if kill is not None:
        assert reached.wait(60), b"".join(log).decode()[-2000:]
        time.sleep(kill[1])
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
    code = proc.wait(timeout=120)
    reader.join(timeout=5)
    if not killed:
        assert code == 0, b"".join(log).decode()[-3000:]
    return killed, code


def final(state: Path) -> Checkpoint:
    cp = LocalCheckpointStore(state).load()
    assert cp is not None
    return cp


def alert_ids(path: Path) -> set[str]:
    # the file sink cuts a line torn by a kill when it reopens; the last run may leave none
    return {orjson.loads(line)["alert_id"] for line in path.read_bytes().splitlines() if line.endswith(b"}")}


def test_kill_9_and_restart_ends_where_an_uninterrupted_run_ends(tmp_path: Path, archive: tuple[Path, int]) -> None:
    root, n_events = archive
    run(config(tmp_path, "whole", root), tmp_path)
    whole = final(tmp_path / "whole" / "state")

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    cfg = config(tmp_path, "crashy", root)
    kills, attempts = 0, 0
    while kills < KILLS and attempts < 12:
        attempts += 1
        killed, _ = run(cfg, tmp_path, kill=(rng.randint(1, 2), rng.uniform(0.0, 0.08)))
        kills += killed
    assert kills == KILLS, f"only {kills} kills landed mid-run (seed {seed})"
    run(cfg, tmp_path)  # the last restart runs to the end
    crashy = final(tmp_path / "crashy" / "state")

    total = sum(Baseline.decode(v[:ENCODED_SIZE]).total for v in crashy.store.values())
    assert total == n_events, f"events in baselines {total} != {n_events} in the archive (seed {seed})"
    assert crashy.positions == whole.positions
    assert not crashy.pending and not crashy.held
    assert dict(crashy.store) == dict(whole.store), f"baselines differ (seed {seed})"
    # same eventIDs remembered (the encoding's byte order follows set iteration, so compare contents)
    assert SeenIds.decode(crashy.seen)._buckets == SeenIds.decode(whole.seen)._buckets
    whole_ids = alert_ids(tmp_path / "whole" / "alerts.jsonl")
    assert whole_ids and alert_ids(tmp_path / "crashy" / "alerts.jsonl") == whole_ids, f"seed {seed}"
