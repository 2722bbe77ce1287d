"""Sinks: stdout and file JSON Lines, the on-disk spool, the webhook against a real local HTTP
server that fails on purpose, and SNS against moto (read back through a subscribed SQS queue)."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from detector.alert import Alert, Explanation
from detector.errors import ConfigError
from detector.metrics import Metrics
from detector.settings import Settings, load
from detector.sinks import build_sinks, sink_names
from detector.sinks.file import FileSink
from detector.sinks.sns import MAX_SUBJECT, sns_sink, subject
from detector.sinks.spool import DeliveryError, Spool, SpooledSink
from detector.sinks.stdout import StdoutSink
from detector.sinks.webhook import webhook_sink

T = 1767571200.0


def make_alert(n: int = 0, status: str = "open", count: int = 1, kind: str = "getobject_burst") -> Alert:
    return Alert(
        alert_id=f"{n:024x}",
        kind=kind,
        principal="arn:aws:iam::111122223333:user/alice",
        principal_arn="arn:aws:iam::111122223333:user/alice",
        caller_class="human",
        account_id="111122223333",
        score=0.9,
        threshold=0.7,
        first_event_time=T + n,
        last_event_time=T + n,
        detected_at=T + n + 1,
        event_ids=[f"ev-{n}"],
        event_count=count,
        explanation=[Explanation("get10m", "900", "12", 3.2)],
        summary="alice read 900 objects\x1b[31m",
        status=status,
    )


def metrics() -> Metrics:
    return Metrics.create(CollectorRegistry())


def value(m: Metrics, name: str, sink: str) -> float:
    return float(getattr(m, name).labels(sink)._value.get())


# -- stdout and file ----------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stdout_writes_json_lines_when_not_a_terminal() -> None:
    out, text = io.BytesIO(), io.StringIO()
    sink = StdoutSink(out, text=text)
    sink.add(make_alert(1))
    sink.add(make_alert(1, status="update", count=10))
    lines = out.getvalue().splitlines()
    assert [orjson.loads(x)["status"] for x in lines] == ["open", "update"]
    assert "\x1b" not in out.getvalue().decode()  # attacker text is escaped
    assert text.getvalue() == ""


def test_stdout_on_a_terminal_is_one_readable_line_per_alert_and_update() -> None:
    out, tty = io.BytesIO(), _Terminal()
    sink = StdoutSink(out, text=tty)
    sink.add(make_alert(1))
    sink.add(make_alert(1, status="update", count=10))
    assert out.getvalue() == b""  # no JSON on the terminal
    lines = re.sub(r"\x1b\[[0-9;]*m", "", tty.getvalue()).splitlines()  # colours aside
    assert len(lines) == 2
    opened, updated = lines
    assert opened.startswith("HIGH   getobject_burst") and " open " in opened
    assert "arn:aws:iam::111122223333:user/alice" in opened and "read 900 objects" in opened
    assert "update (10 events)" in updated
    assert "111122223333" in opened.rsplit("[", 1)[1]  # where: account (and region, time)
    assert "\x1b[31m" not in tty.getvalue()  # the attacker's escape sequence stays escaped text
    # --json keeps the JSON lines on a terminal
    out, tty = io.BytesIO(), _Terminal()
    StdoutSink(out, text=tty, format="json").add(make_alert(2))
    assert orjson.loads(out.getvalue())["kind"] == "getobject_burst" and tty.getvalue() == ""


def test_file_sink_appends_and_cuts_a_line_torn_by_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "alerts" / "alerts.jsonl"
    sink = FileSink(path)
    sink.add(make_alert(1))
    sink.flush()
    sink.close()
    with path.open("ab") as f:
        f.write(b'{"alert_id": "torn')  # kill -9 mid-write
    sink = FileSink(path)
    sink.add(make_alert(2))
    sink.close()
    rows = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert [r["alert_id"] for r in rows] == [make_alert(1).alert_id, make_alert(2).alert_id]


# -- the spool ----------------------------------------------------------------------------------
def test_spool_survives_a_restart_and_forgets_what_was_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(5):
        spool.append(b"%d" % i)
    spool.sync()
    spool.ack()
    spool.ack()
    spool.append(b"5")
    spool.sync()
    again = Spool(tmp_path)
    assert len(again) == 4 and again.head() == b"2"
    for _ in range(4):
        again.ack()
    again.sync()
    assert len(Spool(tmp_path)) == 0
    assert not list(tmp_path.glob("*.jsonl"))


class FlakyTransport:
    def __init__(self, fail: int, retryable: bool = True) -> None:
        self.fail = fail
        self.retryable = retryable
        self.sent: list[dict[str, Any]] = []
        self.calls = 0

    def send(self, payload: bytes, alert: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise DeliveryError("boom", retryable=self.retryable)
        self.sent.append(alert)


def test_spooled_sink_retries_counts_and_never_reorders(tmp_path: Path) -> None:
    m = metrics()
    transport = FlakyTransport(fail=3)
    sink = SpooledSink("hook", transport, tmp_path, m, max_retries=5, base_backoff_s=0.01, cap_backoff_s=0.05)
    for i in range(4):
        sink.add(make_alert(i))
    sink.flush()
    assert sink.wait_idle(5)
    sink.close()
    assert [a["alert_id"] for a in transport.sent] == [make_alert(i).alert_id for i in range(4)]
    assert value(m, "sink_failures", "hook") == 3
    assert value(m, "sink_delivered", "hook") == 4
    assert value(m, "spool_alerts", "hook") == 0


def test_an_alert_the_receiver_refuses_is_kept_aside_not_retried_forever(tmp_path: Path) -> None:
    transport = FlakyTransport(fail=1, retryable=False)
    sink = SpooledSink("hook", transport, tmp_path, base_backoff_s=0.01)
    sink.add(make_alert(1))
    sink.add(make_alert(2))
    assert sink.wait_idle(5)
    sink.close()
    assert [a["alert_id"] for a in transport.sent] == [make_alert(2).alert_id]
    rejected = [orjson.loads(x) for x in (tmp_path / "rejected.jsonl").read_bytes().splitlines()]
    assert rejected[0]["alert"]["alert_id"] == make_alert(1).alert_id


def test_the_same_alert_is_delivered_once(tmp_path: Path) -> None:
    transport = FlakyTransport(fail=0)
    sink = SpooledSink("hook", transport, tmp_path)
    for a in (make_alert(1), make_alert(1), make_alert(1, "update", 10), make_alert(1)):
        sink.add(a)
    assert sink.wait_idle(5)
    sink.close()
    assert [(a["status"], a["event_count"]) for a in transport.sent] == [("open", 1), ("update", 10)]


# -- webhook against a real HTTP server ---------------------------------------------------------------
class Receiver:
    """A local HTTP server that answers 503 to the first ``fail`` requests, then 200."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), json.loads(body)))
                status = 503 if len(outer.requests) <= outer.fail else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=3)
    yield r
    r.close()


def test_webhook_retries_then_delivers_with_bearer_token(tmp_path: Path, receiver: Receiver) -> None:
    m = metrics()
    sink = webhook_sink(
        "webhook", receiver.url, SecretStr("s3cret"), 2.0, 5, tmp_path, m, base_backoff_s=0.01, cap_backoff_s=0.05
    )
    sink.add(make_alert(1))
    sink.add(make_alert(2))
    sink.flush()
    assert sink.wait_idle(10)
    sink.close()
    headers, _ = receiver.requests[-1]
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Idempotency-Key"] == f"{make_alert(2).alert_id}:open:1"
    delivered = [body["alert_id"] for _, body in receiver.requests[3:]]
    assert delivered == [make_alert(1).alert_id, make_alert(2).alert_id]
    assert value(m, "sink_failures", "webhook") == 3


def test_webhook_down_spools_and_a_restart_resends(tmp_path: Path) -> None:
    dead = Receiver(fail=0)
    url = dead.url
    dead.close()  # nothing listens: connection refused
    m = metrics()
    sink = webhook_sink("webhook", url, None, 0.5, 1, tmp_path, m, base_backoff_s=0.01, cap_backoff_s=0.05)
    for i in range(3):
        sink.add(make_alert(i))
    sink.flush()
    assert not sink.wait_idle(0.5)
    sink.close(timeout_s=0.1)
    assert value(m, "spool_alerts", "webhook") == 3 and value(m, "sink_failures", "webhook") >= 2

    up = Receiver(fail=0)
    try:
        resent = webhook_sink("webhook", up.url, None, 2.0, 1, tmp_path, m)
        assert resent.wait_idle(10)
        resent.close()
        assert [b["alert_id"] for _, b in up.requests] == [make_alert(i).alert_id for i in range(3)]
        assert value(m, "spool_alerts", "webhook") == 0
    finally:
        up.close()


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="http"):
        webhook_sink("w", "file:///etc/passwd", None, 1.0, 1, Path("/nonexistent"))


# -- building from settings ------------------------------------------------------------------------
def test_build_sinks_names_repeats_and_requires_fields(tmp_path: Path) -> None:
    s = Settings.model_validate(
        {
            "sinks": [
                {"kind": "stdout"},
                {"kind": "file", "path": str(tmp_path / "a.jsonl")},
                {"kind": "file", "path": str(tmp_path / "b.jsonl")},
            ]
        }
    )
    assert sink_names(s) == ["stdout", "file", "file-2"]
    sinks = build_sinks(s, None, tmp_path)
    assert [x.name for x in sinks] == ["stdout", "file", "file-2"]
    for x in sinks:
        x.close()
    # A sink missing what its kind needs is a config error naming the file and key, so
    # `detector config check` catches it before `run` does.
    for kind, needs in (("webhook", "url"), ("file", "path"), ("sns", "topic_arn")):
        config = tmp_path / f"{kind}.yaml"
        config.write_text(f"sinks:\n  - kind: stdout\n  - kind: {kind}\n")
        with pytest.raises(ConfigError, match=rf"{config}: sinks\.1: .*a {kind} sink needs {needs}"):
            load(config, env={})


def test_sns_subject_respects_the_limits() -> None:
    alert = make_alert(1).to_dict()
    alert["principal_arn"] = "arn:aws:sts::1:assumed-role/r/" + "é\n" * 200
    s = subject(alert)
    assert len(s) <= MAX_SUBJECT and s.isascii() and "\n" not in s


# -- SNS against moto --------------------------------------------------------------------------------
def test_sns_sink_publishes_readable_through_a_subscribed_queue(
    tmp_path: Path, moto_server: Any, boto_client_factory: Any
) -> None:
    sns = boto_client_factory("sns", moto_server)
    sqs = boto_client_factory("sqs", moto_server)
    topic = sns.create_topic(Name="detector-alerts-test")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-readback")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    m = metrics()
    sink = sns_sink("sns", topic, tmp_path, m, client=sns)
    sink.add(make_alert(7, kind="exfiltration"))
    sink.flush()
    assert sink.wait_idle(10)
    sink.close()
    msgs = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", [])
    assert len(msgs) == 1
    envelope = json.loads(msgs[0]["Body"])
    assert envelope["Subject"].startswith("[high] exfiltration:")
    assert json.loads(envelope["Message"])["alert_id"] == make_alert(7).alert_id
    assert envelope["MessageAttributes"]["severity"]["Value"] == "high"
    assert value(m, "sink_delivered", "sns") == 1
