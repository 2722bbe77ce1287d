"""What a person at a terminal sees (issue 11 items 3 and 4), checked under a pseudo-terminal:
the demo's status line while it warms up and its first alert as one readable line (no JSON),
and progress bars with a total and an ETA. The same commands without a terminal print JSON
(test_run_demo.py reads the demo's JSON lines from a pipe)."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import orjson
import pexpect

from detector import simulate
from detector.alert import KINDS
from detector.settings import load

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SEVERITY = r"(HIGH|MEDIUM|LOW)"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    env.update(
        PYTHONPATH=str(ROOT),
        TERM="xterm-256color",
        DETECTOR_STATE_DIR=str(tmp_path / "state"),
        DETECTOR_METRICS__PORT="0",
    )
    return env


def _spawn(args: list[str], tmp_path: Path, timeout: float) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "detector.cli", *args],
        cwd=str(ROOT),
        env=_env(tmp_path),
        dimensions=(50, 400),  # wide: an alert line is not folded by the terminal
        timeout=timeout,
    )
    return child


def _plain(raw: bytes) -> str:
    return ANSI.sub("", raw.decode(errors="replace")).replace("\r", "\n")


def test_the_demo_shows_a_status_line_then_its_first_alert_as_one_line(tmp_path: Path) -> None:
    settings = load(ROOT / "config" / "detector.yaml", env={})
    attackers = {
        label.principal_arn for label in simulate.labels(simulate.plan(settings.source.days, settings.source.seed))
    }
    child = _spawn(["run"], tmp_path, timeout=300)  # a hang guard, not a speed claim
    try:
        child.expect("warming up baselines on the simulated history days")
        child.expect(r"\d[\d,]* events, \d[\d,]* principals, event time 2026-")  # it moves
        # the first alert: severity, kind, "open", the principal, what happened, where; one line
        kinds = "|".join(KINDS)
        gap = r"(?:\x1b\[[0-9;]*m|\s)+"
        child.expect(rf"{SEVERITY}{gap}({kinds}){gap}open{gap}(arn:aws:[^\r\n]*)\r\n")
        assert b'"alert_id"' not in child.before  # no JSON alert on the terminal
        line = _plain(child.match.group(3))
        principal, what = line.split("  ")[0], line.split("  ")[1]
        assert principal in attackers, line
        assert what and not what.startswith("[")  # what happened
        assert re.search(r"\[\d{12} [a-z]{2}-[a-z]+-\d 2026-\d\d-\d\dT\d\d:\d\d:\d\dZ\]$", line), line
        child.kill(signal.SIGTERM)
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.kill(signal.SIGKILL)
        child.close()
    assert child.exitstatus == 0
    rest = _plain(child.before)
    assert '"event": "shutdown"' in rest  # the JSON logs are still there, on stderr, unchanged


def test_simulate_and_replay_show_progress_bars_with_total_and_eta(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    child = _spawn(["simulate", str(out), "--days", "3", "--test-days", "1", "--principals", "20"], tmp_path, 300)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    text = _plain(child.before)
    assert re.search(r"simulate .*1/3 days eta", text), text[-2000:]
    assert re.search(r"simulate .*3/3 days eta 0:00:00 elapsed", text), text[-2000:]
    summary = orjson.loads(text[text.index("{") :].replace("\n\n", "\n"))  # the summary follows, on stdout
    assert summary["events"] > 1000

    child = _spawn(["replay", str(out), "--alerts", str(tmp_path / "alerts.jsonl")], tmp_path, 300)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    text = _plain(child.before)
    total = re.findall(r"replay: [\d,]+ events, 0 rejected, \d+ alerts .*? ([\d.]+)/([\d.]+) MB eta (\S+)", text)
    assert total, text[-2000:]
    done, size, eta = total[-1]
    assert done == size and eta == "0:00:00"  # the bar knew the total bytes from the start
    assert all(t[1] == size for t in total)


def test_train_and_evaluate_show_progress_bars_too(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    simulate.write_archive(simulate.plan(days=3, seed=5, principals=20, test_days=1), out)
    cfg = tmp_path / "quick.yaml"
    cfg.write_text("detection: {defaults: {min_active_days: 1, min_age_hours: 12}}\n")  # two history days
    meta = orjson.loads((out / "simulation.json").read_bytes())
    args = ["train", str(out), "--out", str(tmp_path / "m"), "--until", meta["test_start_iso"], "--trees", "20"]
    child = _spawn([*args, "--config", str(cfg)], tmp_path, 300)
    child.expect(pexpect.EOF)
    child.close()
    text = _plain(child.before)
    assert child.exitstatus == 0, text[-2000:]
    assert re.search(r"train: reading: [\d,]+ events, 0 rejected ━.* ([\d.]+)/\1 MB eta 0:00:00", text), text[-2000:]
    assert "fitting 20 trees per forest" in text
    assert orjson.loads(text[text.index("{") :])["artifact"] == str(tmp_path / "m")

    child = _spawn(["evaluate", str(out), "--model", str(tmp_path / "m")], tmp_path, 300)
    child.expect(pexpect.EOF)
    child.close()
    text = _plain(child.before)
    assert child.exitstatus == 0, text[-2000:]
    assert re.search(r"evaluate: [\d,]+ events, 0 rejected, \d+ alerts .* ([\d.]+)/\1 MB eta 0:00:00", text)
    assert "recall" in text  # the report follows, on stdout


def test_no_terminal_no_bars(tmp_path: Path) -> None:
    import subprocess

    env = _env(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "detector.cli", "simulate", str(tmp_path / "s"), "--days", "2", "--test-days", "1",
         "--principals", "20"],
        cwd=ROOT, env=env, capture_output=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0
    assert proc.stderr == b""  # no bar, no escape codes: stderr is not a terminal
    assert orjson.loads(proc.stdout)["events"] > 0  # the summary alone on stdout


def test_replay_to_a_terminal_prints_alert_lines_above_its_bar(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    simulate.write_archive(simulate.plan(days=3, seed=5, principals=20, test_days=1), out)
    child = _spawn(["replay", str(out)], tmp_path, 300)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    raw = child.before.decode(errors="replace")
    assert '"alert_id"' not in raw  # lines, not JSON, on a terminal
    lines = [line for line in _plain(child.before).splitlines() if line.strip()]
    alerts = [line for line in lines if re.match(rf"{SEVERITY} +[a-z_]+ +(open|update)", line)]
    assert alerts and all(" arn:aws:" in line for line in alerts)
    bar = [i for i, line in enumerate(lines) if line.startswith("replay: ")]
    assert bar and max(i for i, line in enumerate(lines) if line in alerts) < bar[-1]  # the bar stays last
    assert re.search(r"([\d.]+)/\1 MB eta 0:00:00", lines[bar[-1]])


def test_replay_with_workers_on_a_terminal_prints_lines_too(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    simulate.write_archive(simulate.plan(days=3, seed=5, principals=20, test_days=1), out)
    child = _spawn(["replay", str(out), "--workers", "2"], tmp_path, 300)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert '"alert_id"' not in child.before.decode(errors="replace")
    lines = [line for line in _plain(child.before).splitlines() if line.strip()]
    alerts = [line for line in lines if re.match(rf"{SEVERITY} +[a-z_]+ +(open|update)", line)]
    assert alerts and all(" arn:aws:" in line for line in alerts)
