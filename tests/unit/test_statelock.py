"""One `detector run` per state_dir (issue 11 item 9): a second one refuses in one line naming the first's PID."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from detector.errors import InUseError
from detector.runtime.statelock import StateDirLock

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_lock_on_one_state_dir_names_the_holder(tmp_path: Path) -> None:
    with StateDirLock(tmp_path / "state") as held:
        assert held.path.read_text().strip() == str(os.getpid())
        with pytest.raises(InUseError, match=rf"in use by another detector run \(pid {os.getpid()}\)"):
            StateDirLock(tmp_path / "state").acquire()
        with StateDirLock(tmp_path / "other"):  # another directory is free
            pass
    with StateDirLock(tmp_path / "state"):  # released on exit: the next run takes it
        pass


def test_a_second_detector_run_refuses_with_one_line_and_exit_3(tmp_path: Path) -> None:
    cfg = tmp_path / "detector.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\nmodel: {tmp_path / 'no-model'}\n"
        "metrics: {port: 0}\nsource: {kind: stdin}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg)]
    # stdin stays open: the first run is live until we end it
    first = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert first.stderr is not None
        for raw in first.stderr:  # wait until it has started (and so holds the lock)
            if b'"event": "start"' in raw:
                break
        else:
            raise AssertionError(f"the first run ended early: {first.wait()}")
        second = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        assert second.returncode == 3
        err = second.stderr.decode()
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"in use by another detector run (pid {first.pid})" in err and str(tmp_path / "state") in err
    finally:
        first.terminate()
        # exit 0: SIGTERM stops a run blocked reading stdin cleanly (no abort at interpreter shutdown)
        assert first.wait(timeout=30) == 0
    with StateDirLock(tmp_path / "state"):  # the lock went with the first process
        pass
