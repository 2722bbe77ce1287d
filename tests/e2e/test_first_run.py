"""What a first-time user meets on the command line (issue 11): replay that finds nothing says so,
the simulator's own files are not rejects, train's summary says what its numbers mean, errors
name the option or key to change."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from detector import simulate

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "detector.cli", *args], cwd=cwd, env=env, capture_output=True, timeout=300
    )


def _summary(stream: bytes) -> dict:
    """The indented JSON summary a verb prints (after any JSON Lines before it)."""
    return orjson.loads(stream[stream.index(b"{\n") :])


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "out"
    simulate.write_archive(simulate.plan(days=3, seed=5, principals=20, test_days=1), out)
    return out


def test_replaying_a_simulate_output_sets_its_own_files_aside(sim: Path, tmp_path: Path) -> None:
    proc = _run(
        "replay",
        str(sim),
        "--alerts",
        str(tmp_path / "alerts.jsonl"),
        "--quiet",
        "--model",
        str(ROOT / "models/default"),
    )
    assert proc.returncode == 0, proc.stderr
    summary = _summary(proc.stdout)
    assert summary["skipped"] == {"simulator_metadata": 2}  # labels.jsonl and simulation.json
    assert summary["rejected"] == {}
    assert summary["events"] > 1000
    assert b"rejected" not in proc.stderr


def test_a_labels_file_elsewhere_is_still_read_as_input(tmp_path: Path) -> None:
    """Only the files of a directory `detector simulate` wrote are set aside, not any labels.jsonl."""
    (tmp_path / "labels.jsonl").write_bytes(b'{"not": "cloudtrail"}\n')
    proc = _run("replay", str(tmp_path), "--quiet", "--model", str(ROOT / "models/default"))
    assert proc.returncode == 3
    assert b"unknown_envelope 1" in proc.stderr


def test_replay_that_decodes_nothing_says_so_and_exits_3(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.json").write_bytes(b'{"hello": "world"}')
    (junk / "b.jsonl").write_bytes(b"[1, 2]\n")
    model = str(ROOT / "models/default")
    proc = _run("replay", str(junk), "--quiet", "--alerts", str(tmp_path / "alerts.jsonl"), "--model", model)
    assert proc.returncode == 3
    last = proc.stderr.decode().strip().splitlines()[-1]
    counts = "not_an_object 2, unknown_envelope 1"
    assert last == f"detector: {junk}: no CloudTrail events in 2 records ({counts}); nothing to replay"
    assert _summary(proc.stdout)["events"] == 0  # the summary is still there, on stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _run("replay", str(empty), "--quiet", "--model", model)
    assert proc.returncode == 3
    assert b"no input files (looked for .json" in proc.stderr


def test_replay_without_a_model_warns_like_run(sim: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {tmp_path / 'none'}\n")
    proc = _run("replay", str(sim), "--alerts", str(tmp_path / "a.jsonl"), "--quiet", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    warning = (
        f"detector: warning: no model at {tmp_path / 'none'} and no --model: replaying with the rule detectors only"
    )
    assert warning.encode() in proc.stderr
    assert _summary(proc.stdout)["model"] is None
    # asking for the rules only is not a reason to warn
    proc = _run(
        "replay", str(sim), "--alerts", str(tmp_path / "b.jsonl"), "--quiet", "--only", "rules", "--config", str(cfg)
    )
    assert proc.returncode == 0 and b"warning" not in proc.stderr


def test_train_summary_explains_late_and_has_no_alerts(sim: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "quick.yaml"
    cfg.write_text("detection: {defaults: {min_active_days: 1, min_age_hours: 12}}\n")  # two history days
    meta = orjson.loads((sim / "simulation.json").read_bytes())
    proc = _run(
        "train", str(sim), "--out", str(tmp_path / "m"), "--until", meta["test_start_iso"], "--trees", "20",
        "--config", str(cfg),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = _summary(proc.stdout)
    assert "alerts" not in summary
    assert set(summary["late"]) == {"events", "meaning"}
    assert "pipeline.allowed_lateness_s (600 s)" in summary["late"]["meaning"]
    assert summary["skipped"] == {"simulator_metadata": 2}
    assert summary["training"]["rows_fitted"] > 0 and summary["artifact"] == str(tmp_path / "m")


def test_bad_simulate_options_name_the_option_not_a_config_error(tmp_path: Path) -> None:
    proc = _run("simulate", str(tmp_path / "x"), "--days", "2")
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "config error" not in err
    assert err.startswith("detector: simulate: --test-days (default 3) must be at least 0 and less than --days (2)")
    assert not (tmp_path / "x").exists()


def test_a_port_in_use_names_metrics_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from detector import cli

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        cfg = tmp_path / "c.yaml"
        cfg.write_text(
            f"state_dir: {tmp_path / 's'}\nmodel: {tmp_path / 'm'}\n"
            f"metrics: {{port: {port}}}\nsource: {{kind: stdin}}\n"
        )
        assert cli.main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("{")]  # JSON logs aside
    assert len(lines) == 1 and "config error" not in lines[0]
    assert lines[0].startswith(f"detector: run: metrics.port: cannot serve /metrics on 127.0.0.1:{port}: ")
    assert "set metrics.port (DETECTOR_METRICS__PORT" in lines[0]
