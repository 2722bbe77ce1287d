"""The `detector` command as a user runs it: help, replay with bad input, config errors."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.factories import T0, cloudtrail

ROOT = Path(__file__).resolve().parents[2]
VERBS = ["train", "replay", "simulate", "evaluate", "run", "config", "bridge", "worker"]


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "detector.cli", *args], cwd=ROOT, capture_output=True, timeout=300, input=stdin
    )


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb: str) -> None:
    proc = _run(verb, "--help")
    assert proc.returncode == 0, proc.stderr
    assert b"usage: detector " + verb.encode() in proc.stdout


def test_replay_keeps_valid_records_around_bad_ones(tmp_path: Path) -> None:
    good = [cloudtrail(t=T0 + i) for i in range(5)]
    alert = cloudtrail(name="StopLogging", source="cloudtrail.amazonaws.com", t=T0 + 10)
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(orjson.dumps({"Records": [*good, {"eventName": 3}, alert]})))
    (tmp_path / "b.json.gz").write_bytes(gzip.compress(orjson.dumps({"Records": good}))[:-20])  # truncated
    lines = b"\n".join([orjson.dumps(cloudtrail(t=T0 + 20)), b"{not json", orjson.dumps(cloudtrail(t=T0 + 21))])
    (tmp_path / "c.jsonl").write_bytes(lines + b"\n")
    dead = tmp_path / "dead.jsonl"
    proc = _run("replay", str(tmp_path), "--dead-letters", str(dead), "--alerts", "-", "--quiet")
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stderr[proc.stderr.index(b"{") :])
    assert summary["events"] == 8  # 5 + 1 from a.json.gz, 2 from c.jsonl
    # every file here holds something bad, so the typed reader left each one to the general decoder
    assert (summary["records"], summary["records_general_reader"]) == (3, 3)
    assert summary["rejected"] == {"bad_field_type": 1, "truncated_gzip": 1, "invalid_json": 1}  # eventName: 3
    dead_rows = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    assert len(dead_rows) == 3
    positions = " ".join(r["position"] for r in dead_rows)
    assert "a.json.gz#record=5" in positions and "b.json.gz" in positions and "c.jsonl#line=2" in positions
    alerts = [orjson.loads(x) for x in proc.stdout.splitlines()]
    assert [a["kind"] for a in alerts] == ["sensitive_api_first_use"]
    assert alerts[0]["event_ids"] == [alert["eventID"]]
    # without --dead-letters the rejects are still counted, and stderr says where details would go
    dead.unlink()  # not an input of the second run
    proc = _run("replay", str(tmp_path), "--alerts", "-", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert b"3 records rejected (bad_field_type 1, invalid_json 1, truncated_gzip 1); rerun with --dead-letters" in (
        proc.stderr
    )


def test_replay_reads_stdin(tmp_path: Path) -> None:
    body = b"".join(orjson.dumps(cloudtrail(t=T0 + i)) + b"\n" for i in range(3))
    proc = _run("replay", "-", "--quiet", stdin=body)
    assert proc.returncode == 0, proc.stderr
    assert b'"events": 3' in proc.stderr


def test_missing_input_is_one_clear_line(tmp_path: Path) -> None:
    proc = _run("replay", str(tmp_path / "nope"))
    assert proc.returncode == 3
    assert proc.stderr.decode().strip().count("\n") == 0
    assert "no such file or directory" in proc.stderr.decode()


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("pipeline:\n  batch_sise: 10\n")
    proc = _run("config", "check", str(f))
    assert proc.returncode == 2
    assert f"{f}: pipeline.batch_sise: unknown key" in proc.stderr.decode()
    proc = _run("config", "check", "--config", str(f))  # the flag names the same file
    assert proc.returncode == 2 and "batch_sise" in proc.stderr.decode()
    proc = _run("config", "show", str(f))
    assert proc.returncode == 2 and "batch_sise" in proc.stderr.decode()
    proc = _run("config", "check", "config/detector.yaml")
    assert proc.returncode == 0


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "sinks:\n  - {kind: webhook, url: 'http://127.0.0.1:9/x', token: s3cr3t}\n"
        "  - {kind: webhook, url: 'https://user:pw1@hooks.example.com/services/T0/B0/hooksecret?sig=qs2'}\n"
    )
    proc = _run("config", "show", "--config", str(f))
    assert proc.returncode == 0 and b"**********" in proc.stdout
    for secret in (b"s3cr3t", b"pw1", b"hooksecret", b"qs2"):
        assert secret not in proc.stdout
    assert b"https://hooks.example.com/**********" in proc.stdout


def test_tampered_model_is_refused_with_exit_2(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "models" / "default", tmp_path / "m")
    blob = bytearray((tmp_path / "m" / "forest.npz").read_bytes())
    blob[100] ^= 1
    (tmp_path / "m" / "forest.npz").write_bytes(bytes(blob))
    f = tmp_path / "e.jsonl"
    f.write_bytes(orjson.dumps(cloudtrail()) + b"\n")
    proc = _run("replay", str(f), "--model", str(tmp_path / "m"), "--quiet")
    assert proc.returncode == 2
    assert b"sha256" in proc.stderr and b"Traceback" not in proc.stderr


def test_parallel_replay_gives_the_single_process_answers(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    assert (
        _run("simulate", str(sim), "--days", "3", "--test-days", "1", "--principals", "20", "--seed", "5").returncode
        == 0
    )
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    for out, workers in ((one, "1"), (two, "2")):
        proc = _run("replay", str(sim / "AWSLogs"), "--alerts", str(out), "--quiet", "--workers", workers)
        assert proc.returncode == 0, proc.stderr

    def keyset(p: Path) -> set[tuple[str, str, int]]:
        return {(a["alert_id"], a["status"], a["event_count"]) for a in map(orjson.loads, p.read_bytes().splitlines())}

    assert keyset(one) and keyset(one) == keyset(two)


def test_run_refuses_a_bad_config_or_model_at_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {kind: kinesis, strem: x}\n")
    proc = _run("run", "--config", str(bad))
    assert proc.returncode == 2 and f"{bad}: source.strem: unknown key".encode() in proc.stderr
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text("{not json")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {tmp_path / 'm'}\nstate_dir: {tmp_path / 's'}\nmetrics: {{port: 0}}\n")
    proc = _run("run", "--config", str(cfg))
    assert proc.returncode == 2 and b"unreadable manifest" in proc.stderr and b"Traceback" not in proc.stderr


def test_run_starts_from_baselines_seeded_by_replay(tmp_path: Path) -> None:
    """`replay --state-out` on history, then `run` on new traffic: a principal's routine
    sensitive call is not its "first use", as it would be for a detector starting cold."""
    policy = {"name": "PutBucketPolicy", "source": "s3.amazonaws.com"}
    history = [cloudtrail(t=T0 + i * 60) for i in range(30)] + [cloudtrail(**policy, t=T0 + 1800)]
    (tmp_path / "history.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in history))
    later = [cloudtrail(t=T0 + 86400 + i * 60) for i in range(5)] + [cloudtrail(**policy, t=T0 + 86400 + 400)]
    (tmp_path / "later.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in later))

    def run_on_later(state: Path) -> list[str]:
        cfg = tmp_path / f"{state.name}.yaml"
        alerts = tmp_path / f"{state.name}-alerts.jsonl"
        cfg.write_text(
            f"model: {tmp_path / 'no-model'}\nstate_dir: {state}\nmetrics: {{port: 0}}\n"
            f'source: {{kind: file, paths: ["{tmp_path / "later.jsonl"}"]}}\n'
            f'sinks: [{{kind: file, path: "{alerts}"}}]\n'
        )
        proc = _run("run", "--once", "--config", str(cfg))
        assert proc.returncode == 0, proc.stderr
        return [orjson.loads(x)["kind"] for x in alerts.read_bytes().splitlines()] if alerts.exists() else []

    assert run_on_later(tmp_path / "cold") == ["sensitive_api_first_use"]

    seeded = tmp_path / "seeded"
    proc = _run("replay", str(tmp_path / "history.jsonl"), "--state-out", str(seeded), "--alerts", "-", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert [orjson.loads(x)["kind"] for x in proc.stdout.splitlines()] == ["sensitive_api_first_use"]
    assert orjson.loads(proc.stderr[proc.stderr.index(b"{") :])["state_out"]["bytes"] > 0
    assert run_on_later(seeded) == []
