"""Every source kind with each value it needs missing: `config check` or the start of `run` says
so in one line (exit 2 for what the config alone decides, 3 for what the environment lacks),
never a traceback (issue 11 item 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detector import cli

NO_AWS_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}
AWS_NAMES = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)

# (case, source YAML, sinks YAML or "", what `config check` says: exit code and a phrase)
CASES = [
    ("kinesis without stream", "{kind: kinesis, region: us-east-1}", "", 2, "source.stream is not set"),
    ("kinesis without region", "{kind: kinesis, stream: s1}", "", 3, "set source.region"),
    (
        "kinesis with endpoint, without region",
        "{kind: kinesis, stream: s1, endpoint_url: 'http://127.0.0.1:1'}",
        "",
        3,
        "set source.region",
    ),
    (
        "kinesis AT_TIMESTAMP without start_timestamp",
        "{kind: kinesis, stream: s1, region: us-east-1, start: AT_TIMESTAMP}",
        "",
        2,
        "source.start_timestamp is not set",
    ),
    (
        "s3 without bucket or queue",
        "{kind: s3, region: us-east-1}",
        "",
        2,
        "neither source.bucket nor source.queue_url",
    ),
    (
        "s3 queue without region",
        "{kind: s3, queue_url: 'https://sqs.us-east-1.amazonaws.com/1/q'}",
        "",
        3,
        "set source.region",
    ),
    (
        "s3 AT_TIMESTAMP without start_timestamp",
        "{kind: s3, bucket: b, start: AT_TIMESTAMP}",
        "",
        2,
        "source.start_timestamp is not set",
    ),
    ("file without paths", "{kind: file}", "", 2, "source.paths is empty"),
    ("sns sink without region", "{kind: stdin}", "[{kind: sns, topic_arn: mytopic}]", 3, "set sinks.0.region"),
]


def _config(tmp_path: Path, source: str, sinks: str = "") -> Path:
    path = tmp_path / "detector.yaml"
    text = f"state_dir: {tmp_path / 'state'}\nmetrics: {{port: 0}}\nmodel: {tmp_path / 'no-model'}\nsource: {source}\n"
    if sinks:
        text += f"sinks: {sinks}\n"
    path.write_text(text)
    return path


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No region, credentials or profile from this machine: what a fresh one has."""
    for name in AWS_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in NO_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in [n for n in os.environ if n.startswith("DETECTOR_")]:
        monkeypatch.delenv(name)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(("case", "source", "sinks", "code", "phrase"), CASES, ids=[c[0] for c in CASES])
def test_config_check_reports_what_each_source_lacks(
    case: str,
    source: str,
    sinks: str,
    code: int,
    phrase: str,
    tmp_path: Path,
    no_aws: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = _config(tmp_path, source, sinks)
    assert cli.main(["config", "check", str(cfg)]) == code
    out = capsys.readouterr()
    assert "ok" not in out.out
    line = _one_line(out.err)
    assert phrase in line and str(cfg) in line


@pytest.mark.parametrize(("case", "source", "sinks", "code", "phrase"), CASES, ids=[c[0] for c in CASES])
def test_run_refuses_the_same_config_in_one_line(
    case: str,
    source: str,
    sinks: str,
    code: int,
    phrase: str,
    tmp_path: Path,
    no_aws: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = _config(tmp_path, source, sinks)
    assert cli.main(["run", "--config", str(cfg), "--max-seconds", "1"]) == code
    assert phrase in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "state").exists()  # refused before anything started


def test_what_only_the_start_can_tell_is_one_line_and_exit_3(
    tmp_path: Path, no_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file or missing credentials pass `config check` (the file may appear, the role may
    be there at run time) and stop `run` at start with one line."""
    runs = [
        ("{kind: file, paths: ['" + str(tmp_path / "nope") + "']}", "no such file or directory (source.paths)"),
        ("{kind: kinesis, stream: s1, region: us-east-1}", "no AWS credentials found"),
    ]
    for source, phrase in runs:
        cfg = _config(tmp_path, source)
        assert cli.main(["config", "check", str(cfg)]) == 0
        assert capsys.readouterr().out.strip().endswith(": ok")
        code = cli.main(["run", "--config", str(cfg), "--max-seconds", "1"])
        err = capsys.readouterr().err
        assert code == 3, err
        lines = [line for line in err.splitlines() if not line.startswith("{")]  # JSON logs aside
        assert len(lines) == 1 and phrase in lines[0] and "Traceback" not in err


def test_a_missing_aws_profile_is_one_line(
    tmp_path: Path, no_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    cfg = _config(tmp_path, "{kind: kinesis, stream: s1}")
    assert cli.main(["config", "check", str(cfg)]) == 3
    assert "no-such-profile" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("source", ["{kind: simulate}", "{kind: stdin}", "{kind: kinesis, stream: s1}"])
def test_a_complete_source_is_ok(
    source: str, tmp_path: Path, no_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the region may come from the environment
    cfg = _config(tmp_path, source)
    assert cli.main(["config", "check", str(cfg)]) == 0
    assert capsys.readouterr().out == f"{cfg}: ok\n"


def test_bridge_refuses_a_source_without_region_in_one_line(
    tmp_path: Path, no_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, "{kind: kinesis, stream: s1}")
    assert cli.main(["bridge", "--config", str(cfg), "--max-seconds", "1"]) == 3
    assert "set source.region" in _one_line(capsys.readouterr().err)
