"""The README's quick start: ``pip install -e . && detector run`` shows a real alert.

Runs the installed ``detector`` command from the project root with the shipped config (the
simulated demo), only moving its state to a temporary directory and its status port to a free
one. The first alert on stdout must be about a labelled attack; /metrics and /healthz answer
while it runs; SIGTERM stops it cleanly with a final checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from detector import simulate
from detector.runtime.checkpoint import LocalCheckpointStore
from detector.settings import load

ROOT = Path(__file__).resolve().parents[2]
# A hang guard, not a speed claim (a loaded 2-core CI machine is slow): the demo is stopped if no
# alert came by then, and the test fails with its log.
GIVE_UP_AFTER_S = 300


def test_detector_run_shows_a_real_alert(tmp_path: Path) -> None:
    settings = load(ROOT / "config" / "detector.yaml", env={})
    assert settings.source.kind == "simulate"
    attackers = {
        label.principal_arn for label in simulate.labels(simulate.plan(settings.source.days, settings.source.seed))
    }

    exe = shutil.which("detector")
    argv = [exe, "run"] if exe else [sys.executable, "-m", "detector.cli", "run"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    env.update({"DETECTOR_STATE_DIR": str(tmp_path / "state"), "DETECTOR_METRICS__PORT": "0"})
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    guard = threading.Timer(GIVE_UP_AFTER_S, proc.kill)
    guard.start()
    log: list[str] = []
    port: list[int] = []

    def read_log() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace")
            log.append(line)
            m = re.search(r'"event": "status_server_started".*"port": (\d+)', line)
            if m:
                port.append(int(m.group(1)))

    threading.Thread(target=read_log, daemon=True).start()
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the first alert (or exit, or the guard)
        guard.cancel()
        assert first, "".join(log)[-3000:]
        alert = json.loads(first)
        assert alert["principal_arn"] in attackers, alert
        assert alert["kind"] and alert["summary"] and alert["explanation"]

        base = f"http://127.0.0.1:{port[0]}"
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert "detector_events_scored_total" in body and "detector_alerts_total" in body
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
            assert resp.status == 200

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=settings.shutdown_timeout_s + 5)
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, "".join(log)[-3000:]
    events = [json.loads(line).get("event") for line in log if line.startswith("{")]
    assert "start" in events and "shutdown" in events
    cp = LocalCheckpointStore(tmp_path / "state").load()
    assert cp is not None and len(cp.store) > 20
