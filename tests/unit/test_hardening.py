"""Issue 12: the defects an adversarial review found, each closed by a test named after it.

Each test here failed on the code before its fix. The valid records around every bad one
must still come through, counted and dead-lettered where they are not.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from prometheus_client import CollectorRegistry, generate_latest

from detector import artifact_checks, cli, typed
from detector import decode as decode_module
from detector import event as event_module
from detector.alert import Alert, Explanation, alert_id, render_text
from detector.decode import decode
from detector.errors import ConfigError, ModelError, SourceError
from detector.event import Event, principal_of_raw
from detector.ingest import DeadLetters, Ingest
from detector.metrics import Metrics
from detector.model import FOREST, MANIFEST, ModelArtifact
from detector.pipeline import Detector
from detector.settings import load
from detector.sinks import webhook as webhook_module
from detector.sinks.spool import DeliveryError
from detector.sinks.webhook import WebhookTransport, webhook_sink
from detector.sources.file import TooLarge, Unreadable, iter_file_blobs, read_capped
from detector.sources.s3follow import S3Source
from tests.unit.test_decode import make_event

ROOT = Path(__file__).resolve().parents[2]


def _archive(records: list[Any]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": records}))


def _ingest(blob: bytes, source: str = "file") -> tuple[list[Event], Ingest]:
    ingest = Ingest()
    return ingest.blob(blob, "blob", source), ingest


# --- item 1: NaN / Infinity -------------------------------------------------------------------


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
@pytest.mark.parametrize("source", ["file", "kinesis"])
def test_item1_a_nan_or_infinity_token_costs_its_record_not_the_archive(token: bytes, source: str) -> None:
    records = [orjson.dumps(make_event(i)) for i in range(30)]
    poisoned = b'{"x":' + token + b"}"
    trap = orjson.dumps(make_event(99, userAgent="NaN Infinity"))  # the words inside a string are fine
    for blob in (
        b'{"Records":[' + b",".join([*records, trap, poisoned]) + b"]}",
        b"[" + b",\n".join([poisoned, *records, trap]) + b"]",
    ):
        for data in (blob, gzip.compress(blob)):
            events, ingest = _ingest(data, source)
            assert len(events) == 31 and ingest.rejected == {"invalid_json": 1}
    decoded = decode(b'{"Records":[' + b",".join([*records, poisoned]) + b"]}", "f.json")
    assert len(decoded.events) == 30 and [r.position for r in decoded.rejected] == ["f.json#record=30"]
    assert token.decode() in decoded.rejected[0].sample  # the dead letter shows the record as it came


def test_item1_a_nan_inside_an_event_field_rejects_only_that_event() -> None:
    records = [orjson.dumps(make_event(i)) for i in range(3)]
    records[1] = records[1][:-1] + b',"additionalEventData":{"bytesTransferredOut":NaN}}'
    events, ingest = _ingest(b'{"Records":[' + b",".join(records) + b"]}")
    assert [ev.event_id for ev in events] == [make_event(i)["eventID"] for i in (0, 2)]
    assert ingest.rejected == {"invalid_json": 1}


# --- item 2: JSON Lines after leading garbage -------------------------------------------------


@pytest.mark.parametrize("garbage", [20, 25, 500])
def test_item2_json_lines_after_many_garbage_lines_lose_only_those_lines(garbage: int) -> None:
    lines = [b"garbage line %d" % i for i in range(garbage)] + [orjson.dumps(make_event(i)) for i in range(40)]
    events, ingest = _ingest(b"\n".join(lines) + b"\n")
    assert len(events) == 40 and ingest.rejected == {"invalid_json": garbage}
    events, ingest = _ingest(gzip.compress(b"\n".join(lines)))
    assert len(events) == 40 and ingest.rejected == {"invalid_json": garbage}


# --- item 3: principal cache key --------------------------------------------------------------


@pytest.mark.parametrize("order", [("empty", "null_type"), ("null_type", "empty")])
def test_item3_empty_identity_and_null_type_do_not_share_a_principal(order: tuple[str, str]) -> None:
    event_module._principals.clear()
    shapes: dict[str, dict[str, Any]] = {"empty": {}, "null_type": {"type": None}}
    got = {name: principal_of_raw(make_event(1, userIdentity=shapes[name])) for name in order}
    assert got["empty"].caller_class == "anonymous"
    assert got["null_type"].caller_class == "human" and got["null_type"].key.startswith("unknown:")
    # and whichever reader reads them
    for name in order:
        blob = orjson.dumps({"Records": [make_event(1, userIdentity=shapes[name])]})
        events, _ = _ingest(blob)
        assert events[0].principal == got[name]


@pytest.mark.parametrize("field", ["type", "accountId", "principalId", "userName", "arn"])
@pytest.mark.parametrize("order", [(1, True, 1.0), (1.0, 1, True), (True, 1.0, 1)])
def test_item3_equal_json_values_of_different_types_do_not_share_a_principal(
    field: str, order: tuple[object, ...]
) -> None:
    # 1, true and 1.0 are one dict key, but principal_of reads them as "1", "True" and "1.0"
    from detector.principal import principal_of

    for reader in ("decode", "typed"):
        event_module._principals.clear()
        for value in order:
            raw = make_event(1, userIdentity={field: value})
            want = principal_of(raw).key
            if reader == "decode":
                got = principal_of_raw(raw).key
            else:
                fast, _ = typed.read(orjson.dumps({"Records": [raw]}))
                got = (fast[0] if fast else Event.of(raw)).principal.key
            assert got == want, (reader, field, order, value)


# --- item 4: integers past 64 bits ------------------------------------------------------------


def test_item4_both_readers_agree_on_a_huge_integer_user_name() -> None:
    identity = b'{"type":"IAMUser","accountId":"111122223333","userName":12345678901234567890123}'
    one = orjson.dumps(make_event(1))[:-1] + b',"userIdentity":' + identity + b"}"
    fast, _ = typed.read(b'{"Records":[' + one + b"]}")
    assert fast is not None and fast[0].principal.key == "arn:aws:iam::111122223333:user/12345678901234567890123"
    slow = Event.of(decode(b'{"Records":[' + one + b"]}", "f").events[0])
    assert slow.principal.key == fast[0].principal.key
    # through decode's salvage of a document orjson refuses (a bad record beside it), too
    mixed = decode(b'{"Records":[' + one + b',{"x":NaN}]}', "f")
    assert Event.of(mixed.events[0]).principal.key == fast[0].principal.key


# --- item 10: crafted model artifacts ---------------------------------------------------------

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"


def _artifact(tmp_path: Path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, out)
    return out


def _arrays(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / FOREST, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _rewrite(out: Path, arrays: dict[str, np.ndarray], files: dict[str, str] | None = None) -> None:
    """Replace the arrays and fix the digests, as an attacker who can write the directory would."""
    np.savez(out / FOREST, **arrays)  # type: ignore[arg-type]
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"][FOREST] = hashlib.sha256((out / FOREST).read_bytes()).hexdigest()
    manifest["files"].update(files or {})
    (out / MANIFEST).write_text(json.dumps(manifest))


def _tree_bounds(a: dict[str, np.ndarray], prefix: str = "all.all.") -> tuple[np.ndarray, np.ndarray, int]:
    left, roots = a[prefix + "left"], a[prefix + "roots"]
    return left, roots, int(roots[1])  # tree 0 is nodes 0 .. roots[1]-1


def _cross_tree(a: dict[str, np.ndarray]) -> None:
    left, roots, _ = _tree_bounds(a)
    left[0] = roots[2] + 1  # the root's left child: a node of tree 2, in range of the table


def _cycle(a: dict[str, np.ndarray]) -> None:
    left, _, end = _tree_bounds(a)
    leaf = next(i for i in range(end) if left[i] == i)
    left[leaf] = a["all.all.right"][leaf] = 0  # a leaf that leads back to the root


def _too_deep(a: dict[str, np.ndarray]) -> None:
    a["all.all.shape"][0] = 2  # the trees are deeper than the depth the numpy walk takes


def _shared_child(a: dict[str, np.ndarray]) -> None:
    a["all.all.right"][0] = a["all.all.left"][0]  # two edges to one node: a DAG, not a tree


@pytest.mark.parametrize("craft", [_cross_tree, _cycle, _too_deep, _shared_child])
def test_item10_a_forest_that_is_not_well_formed_trees_is_refused(tmp_path: Path, craft: Any) -> None:
    out = _artifact(tmp_path)
    arrays = _arrays(out)
    craft(arrays)
    _rewrite(out, arrays)
    with pytest.raises(ModelError, match=r"tree|child|parent|deeper"):
        ModelArtifact.load(out)


def test_item10_an_array_not_in_the_format_is_refused_before_it_is_read(tmp_path: Path) -> None:
    out = _artifact(tmp_path)
    arrays = _arrays(out)
    arrays["all.junk"] = np.zeros(8_000_000)  # 64 MB that no part of the model reads
    _rewrite(out, arrays)
    with pytest.raises(ModelError, match=r"unexpected array 'all\.junk'"):
        ModelArtifact.load(out)


def test_item10_arrays_past_the_byte_cap_are_refused_from_their_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _artifact(tmp_path)
    monkeypatch.setattr(artifact_checks, "MAX_ARRAY_BYTES", 100_000)
    read = []
    monkeypatch.setattr(np, "load", lambda *a, **k: read.append(a) or pytest.fail("np.load reached"))
    with pytest.raises(ModelError, match="over 100000 bytes") as caught:
        ModelArtifact.load(out)
    assert str(caught.value).count(str(out / FOREST)) == 1  # named once, not wrapped twice
    assert read == []


def _symlink_to_dev_zero(out: Path) -> None:
    (out / "extra.bin").symlink_to("/dev/zero")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"]["extra.bin"] = "0" * 64
    (out / MANIFEST).write_text(json.dumps(manifest))


def _fifo(out: Path) -> None:
    os.mkfifo(out / "extra.bin")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"]["extra.bin"] = "0" * 64
    (out / MANIFEST).write_text(json.dumps(manifest))


def _symlink_out(out: Path) -> None:
    outside = out.parent / "elsewhere.npz"
    (out / FOREST).rename(outside)
    (out / FOREST).symlink_to(outside)  # same bytes, same sha256: only where it lives is wrong


def _cross_tree_file(out: Path) -> None:
    arrays = _arrays(out)
    _cross_tree(arrays)
    _rewrite(out, arrays)


@pytest.mark.parametrize("craft", [_symlink_to_dev_zero, _fifo, _symlink_out, _cross_tree_file])
def test_item10_crafted_artifacts_exit_2_with_one_line_never_a_crash_or_hang(tmp_path: Path, craft: Any) -> None:
    out = _artifact(tmp_path)
    craft(out)
    events = tmp_path / "events.json"
    events.write_bytes(orjson.dumps({"Records": [make_event(i) for i in range(20)]}))
    proc = subprocess.run(
        [sys.executable, "-m", "detector.cli", "replay", "--model", str(out), str(events)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr[-500:]
    assert proc.stderr.count(b"\n") == 1 and proc.stderr.startswith(b"detector: model error:")


def _manifest_bytes(text: bytes) -> Any:
    return lambda out: (out / MANIFEST).write_bytes(text)


def _manifest_field(**edits: Any) -> Any:
    def craft(out: Path) -> None:
        manifest = json.loads((out / MANIFEST).read_text())
        manifest.update(edits)
        (out / MANIFEST).write_text(json.dumps(manifest))

    return craft


MANIFEST_CRAFTS = {
    "deep_nesting": _manifest_bytes(b"[" * 100_000 + b"]" * 100_000),
    "deep_nesting_in_a_field": _manifest_bytes(b'{"format": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "trained_at_text": _manifest_field(trained_at="yesterday"),
    "trained_at_list": _manifest_field(trained_at=[1]),
    "trained_at_nan": _manifest_field(trained_at=float("nan")),
    "trained_at_huge_int": _manifest_field(trained_at=10**400),
    "version_object": _manifest_field(version={"a": [1, 2]}),
    "version_megabyte": _manifest_field(version="v" * 500_000),
}


@pytest.mark.parametrize("name", sorted(MANIFEST_CRAFTS))
def test_item10_a_crafted_manifest_is_a_model_error_not_a_crash(tmp_path: Path, name: str) -> None:
    # the artifacts probe (bench/probes/artifacts.py): a deeply nested manifest raised RecursionError
    # (a traceback at start-up, and `run` died on hot reload, with DETECTOR_MODEL_KEY set too: the
    # manifest is parsed before its signature is checked); a text trained_at loaded, then crashed
    # `run` where it became a metric
    out = _artifact(tmp_path)
    MANIFEST_CRAFTS[name](out)
    for key in (None, b"some key"):
        with pytest.raises(ModelError, match="manifest"):
            ModelArtifact.load(out, key=key)


def test_item10_hot_reload_of_a_crafted_manifest_keeps_the_running_model(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from detector.runtime.local import ModelWatch

    out = _artifact(tmp_path)
    running = ModelArtifact.load(out)
    loaded: list[ModelArtifact] = []
    detector = SimpleNamespace(settings=SimpleNamespace(require_signature=False), set_model=loaded.append)
    metrics = Metrics.create(CollectorRegistry())
    watch = ModelWatch(out, detector, metrics, interval_s=0.0)  # type: ignore[arg-type]
    for i, name in enumerate(sorted(MANIFEST_CRAFTS)):
        shutil.copy(DEFAULT_MODEL / MANIFEST, out / MANIFEST)
        MANIFEST_CRAFTS[name](out)
        os.utime(out / MANIFEST, ns=(i * 10**9, i * 10**9))  # a new stamp each time
        watch.check(float(i + 1))
        assert loaded == [], name
    assert metrics.model_reloads.labels("rejected")._value.get() == len(MANIFEST_CRAFTS)
    shutil.copy(DEFAULT_MODEL / MANIFEST, out / MANIFEST)  # a good one still loads afterwards
    watch.check(100.0)
    assert len(loaded) == 1 and loaded[0].version == running.version


def test_item10_the_shipped_model_passes_every_check() -> None:
    model = ModelArtifact.load(DEFAULT_MODEL)
    assert set(model.groups) >= {"all"} and all(m.forest.roots.size > 1 for m in model.groups["all"].members)


# --- items 12, 13, 14: secrets in URLs, webhook destinations, text that renders -----------------


class _Receiver:
    """A local HTTP server answering ``status`` to every POST; keeps the bodies."""

    def __init__(self, status: int) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _alert(**kw: Any) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": "a" * 24,
        "kind": "getobject_burst",
        "principal": "arn:aws:iam::111122223333:user/alice",
        "principal_arn": "arn:aws:iam::111122223333:user/alice",
        "caller_class": "human",
        "account_id": "111122223333",
        "score": 0.9,
        "threshold": 0.7,
        "first_event_time": 1767571200.0,
        "last_event_time": 1767571200.0,
        "detected_at": 1767571201.0,
        "event_ids": ["ev-1"],
        "event_count": 1,
        "explanation": [Explanation("new_client", "ua\x1b[31m <!channel>, first seen just now", "~3 clients", 2.5)],
        "summary": "alice read 900 objects",
    }
    fields.update(kw)
    return Alert(**fields)


def test_item12_a_password_or_token_path_in_a_webhook_url_never_reaches_logs_or_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = _Receiver(500)
    registry = CollectorRegistry()
    url = f"http://alice:PASSWORD123@127.0.0.1:{receiver.port}/services/T000/B000/SECRETXYZ?token=QUERYSECRET"
    sink = webhook_sink("hook", url, None, 2.0, 1, tmp_path, Metrics.create(registry), base_backoff_s=0.01)
    try:
        with caplog.at_level(logging.DEBUG):
            sink.add(_alert())
            sink.flush()
            deadline = time.monotonic() + 10
            while len(receiver.bodies) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        sink.close(timeout_s=0.5)
        receiver.close()
    assert len(receiver.bodies) >= 2  # it failed, and was retried
    shown = caplog.text + generate_latest(registry).decode() + repr([r.__dict__ for r in caplog.records])
    assert f"POST http://127.0.0.1:{receiver.port}/" in shown  # the failure names where it went...
    for secret in ("PASSWORD123", "alice:", "SECRETXYZ", "QUERYSECRET", "/services/"):
        assert secret not in shown  # ...and nothing that opens it


def test_item12_config_check_refuses_a_bad_webhook_url_without_printing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sinks:\n  - kind: webhook\n    url: htps://hooks.slack.com/services/T0/B0/SECRETXYZ\n")
    assert cli.main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert "scheme 'htps' is not http or https" in err and "SECRETXYZ" not in err
    with pytest.raises(ConfigError) as caught:
        WebhookTransport("htps://alice:PASSWORD123@hooks.example/SECRETXYZ")
    assert "PASSWORD123" not in str(caught.value) and "SECRETXYZ" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/",
        "http://[fe80::1%25eth0]/x",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_item13_link_local_and_metadata_webhook_destinations_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ConfigError, match="link-local or cloud metadata"):
        load(None, env={"DETECTOR_SINKS": f'[{{"kind": "webhook", "url": "{url}"}}]'})
    allowed = load(None, env={"DETECTOR_SINKS": f'[{{"kind": "webhook", "url": "{url}", "allow_link_local": true}}]'})
    assert allowed.sinks[0].allow_link_local


def test_item13_a_name_that_resolves_to_a_link_local_address_is_refused_on_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = _Receiver(200)
    monkeypatch.setattr(webhook_module, "is_link_local", lambda address: address == "127.0.0.1")
    try:
        transport = WebhookTransport(f"http://localhost:{receiver.port}/hook")
        with pytest.raises(DeliveryError, match="refusing a link-local destination") as caught:
            transport.send(b"{}", {})
        assert not caught.value.retryable and receiver.bodies == []
    finally:
        receiver.close()


def test_item13_a_bearer_token_over_plain_http_is_refused_except_to_this_host() -> None:
    def sink(url: str) -> str:
        return f'[{{"kind": "webhook", "url": "{url}", "token": "s3cret"}}]'

    with pytest.raises(ConfigError, match="clear text over http") as caught:
        load(None, env={"DETECTOR_SINKS": sink("http://hooks.example.com/x")})
    assert "s3cret" not in str(caught.value)
    assert load(None, env={"DETECTOR_SINKS": sink("https://hooks.example.com/x")}).sinks[0].token is not None
    assert load(None, env={"DETECTOR_SINKS": sink("http://127.0.0.1:8080/x")}).sinks[0].token is not None


EVIL = "<https://evil.example/|Click here> [login](https://evil.example/) <!here> @channel a&b"


def test_item14_slack_and_markdown_sinks_escape_attacker_text_once(tmp_path: Path) -> None:
    alert = _alert(summary=f"alice used {EVIL}", principal_arn=f"arn:aws:iam::1:user/{EVIL}")
    alert.context["user_agent"] = EVIL
    slack = render_text(alert.to_dict(), "slack")
    for live in ("<http", "<!here>", "@channel", "a&b", "|Click here>"):
        assert live not in slack
    assert "&lt;!here&gt;" in slack and "a&amp;b" in slack and "@\u2060channel" in slack
    assert "ua\\x1b[31m &lt;!channel&gt;" in slack  # the explanation value: escaped once, not \\x1b
    markdown = render_text(alert.to_dict(), "markdown")
    assert "[login](" not in markdown and "\\[login\\]\\(https://evil\\.example/\\)" in markdown
    receiver = _Receiver(200)
    sink = webhook_sink("slack", f"http://127.0.0.1:{receiver.port}/hook", None, 2.0, 1, tmp_path, format="slack")
    try:
        sink.add(alert)
        sink.flush()
        assert sink.wait_idle(10)
    finally:
        sink.close()
        receiver.close()
    assert receiver.bodies == [{"text": slack}]


def test_item14_explanation_values_in_the_alert_json_are_escaped_once() -> None:
    doc = orjson.loads(_alert().to_json())
    assert doc["explanation"][0]["value"] == "ua\\x1b[31m <!channel>, first seen just now"


# --- item 11: require_signature ---------------------------------------------------------------


def _edited_quantiles(out: Path) -> None:
    """What an attacker with write access does to an unsigned artifact: silence the forest."""
    arrays = _arrays(out)
    for name in [k for k in arrays if k.endswith(".combined")]:
        arrays[name] = np.zeros_like(arrays[name])
    _rewrite(out, arrays)


def test_item11_require_signature_refuses_unsigned_artifacts(tmp_path: Path) -> None:
    out = _artifact(tmp_path)
    _edited_quantiles(out)
    assert ModelArtifact.load(out) is not None  # unsigned and edited: loads when nothing requires a signature
    with pytest.raises(ModelError, match="require_signature is set but DETECTOR_MODEL_KEY is not"):
        ModelArtifact.load(out, require_signature=True)
    with pytest.raises(ModelError, match="signature missing or wrong"):
        ModelArtifact.load(out, key=b"k" * 32, require_signature=True)
    assert load(None, env={"DETECTOR_REQUIRE_SIGNATURE": "true"}).require_signature
    config = tmp_path / "c.yaml"
    config.write_text("require_signature: true\n")
    events = tmp_path / "events.json"
    events.write_bytes(orjson.dumps({"Records": [make_event(1)]}))
    proc = subprocess.run(
        [sys.executable, "-m", "detector.cli", "replay", "--config", str(config), "--model", str(out), str(events)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "DETECTOR_MODEL_KEY"},
    )
    assert proc.returncode == 2 and b"require_signature is set" in proc.stderr


def test_item11_a_signed_artifact_loads_with_its_key_and_an_edit_breaks_it(tmp_path: Path) -> None:
    model = ModelArtifact.load(DEFAULT_MODEL)
    key = b"s" * 32
    out = model.save(tmp_path / "signed", training={}, key=key)
    signed = ModelArtifact.load(out, key=key, require_signature=True)
    assert set(signed.groups) == set(model.groups) and signed.manifest["signature"]
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["trained_at"] = 0.0
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    with pytest.raises(ModelError, match="signature missing or wrong"):
        ModelArtifact.load(out, key=key, require_signature=True)


# --- item 6: alert IDs from event time, not arrival order -------------------------------------


def test_item6_alert_id_does_not_depend_on_which_event_arrived_first(tmp_path: Path) -> None:
    from tests.factories import T0, event
    from tests.unit.test_pipeline import DAY, _history, _run, _settings

    first = event(name="StopLogging", source="cloudtrail.amazonaws.com", t=T0 + DAY + 600)
    second = event(name="StopLogging", source="cloudtrail.amazonaws.com", t=T0 + DAY + 649)
    ids = []
    for order in ((first, second), (second, first)):
        det = Detector(_settings(tmp_path), None, store={})
        _run(det, _history(1))
        alerts = [a for ev in order for a in det.process([ev]).alerts]
        assert [a.kind for a in alerts] == ["sensitive_api_first_use"]
        ids.append(alerts[0].alert_id)
    assert ids[0] == ids[1]
    later = alert_id("p", "k", T0 + DAY + 600 + 3600, 3600)  # the next alert of that kind: another window
    assert later != alert_id("p", "k", T0 + DAY + 600, 3600)


# --- items 5, 7, 9: the S3 source and blob caps -------------------------------------------------


def _trail_key(account: str, minute: int, region: str = "us-east-1") -> str:
    stamp = f"20260105T09{minute:02d}Z"
    return f"AWSLogs/{account}/CloudTrail/{region}/2026/01/05/{account}_CloudTrail_{region}_{stamp}_x{minute}.json.gz"


def _s3_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} on purpose"}}, "GetObject")


class _FakeS3:
    """ListObjectsV2 (with delimiters) and GetObject over a dict; GetObject fails as scripted."""

    def __init__(self, objects: dict[str, bytes], failures: dict[str, list[Exception]] | None = None) -> None:
        self.objects = objects
        self.failures = failures or {}
        self.gets: Counter[str] = Counter()

    def list_objects_v2(self, Bucket: str, Prefix: str, StartAfter: str = "", **kw: Any) -> dict[str, Any]:
        keys = sorted(k for k in list(self.objects) if k.startswith(Prefix) and k > StartAfter)
        return {"Contents": [{"Key": k} for k in keys], "IsTruncated": False}

    def get_paginator(self, name: str) -> Any:
        outer = self

        class Pages:
            def paginate(self, Bucket: str, Prefix: str, Delimiter: str = "") -> list[dict[str, Any]]:
                subs = sorted(
                    {Prefix + k[len(Prefix) :].split("/", 1)[0] + "/" for k in outer.objects if k.startswith(Prefix)}
                )
                return [{"CommonPrefixes": [{"Prefix": p} for p in subs]}]

        return Pages()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.gets[Key] += 1
        pending = self.failures.get(Key)
        if pending:
            raise pending.pop(0)
        body = self.objects[Key]
        return {"Body": io.BytesIO(body), "ContentLength": len(body)}


def _drain(source: S3Source, ingest: Ingest, until: Any, timeout_s: float = 10.0) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not until(events):
        for r in source.poll(1000, 0.05):
            events.extend(ingest.blob(r.data, r.position, r.source))
        if source.exhausted:
            break
    return events


def test_item7_a_getobject_error_is_retried_then_dead_lettered_and_the_source_goes_on(tmp_path: Path) -> None:
    keys = [_trail_key("111122223333", m) for m in range(4)]
    objects = {k: _archive([make_event(10 * i + j) for j in range(3)]) for i, k in enumerate(keys)}
    failures: dict[str, list[Exception]] = {
        keys[0]: [_s3_error("SlowDown"), ReadTimeoutError(endpoint_url="http://s3")],  # then it reads
        keys[1]: [_s3_error("InternalError")] * 10,  # never reads
        keys[2]: [_s3_error("AccessDenied")] * 10,  # no retry fixes this one
    }
    client = _FakeS3(objects, failures)
    source = S3Source(
        "trail",
        accounts=("111122223333",),
        regions=("us-east-1",),
        start="TRIM_HORIZON",
        follow=False,
        client=client,
        get_attempts=3,
        get_backoff_s=0.01,
    )
    dead = DeadLetters(tmp_path / "dead.jsonl")
    ingest = Ingest(dead=dead)
    source.start({})
    try:
        events = _drain(source, ingest, lambda evs: False)
    finally:
        source.stop()
    dead.close()
    assert sorted(ev.event_id for ev in events) == sorted(make_event(n)["eventID"] for n in (0, 1, 2, 30, 31, 32))
    assert ingest.rejected == {"unreadable": 2}
    assert source.get_failures == {"InternalError": 1, "AccessDenied": 1}
    assert client.gets[keys[0]] == 3 and client.gets[keys[1]] == 3 and client.gets[keys[2]] == 1
    letters = {
        row["position"]: row["detail"] for row in map(orjson.loads, (tmp_path / "dead.jsonl").read_bytes().splitlines())
    }
    assert "InternalError" in letters[f"s3://trail/{keys[1]}"] and "AccessDenied" in letters[f"s3://trail/{keys[2]}"]


def test_item7_an_error_of_the_whole_bucket_still_stops_the_source() -> None:
    key = _trail_key("111122223333", 1)
    client = _FakeS3({key: _archive([make_event(1)])}, {key: [_s3_error("ExpiredToken")]})
    source = S3Source(
        "trail",
        accounts=("111122223333",),
        regions=("us-east-1",),
        start="TRIM_HORIZON",
        follow=False,
        client=client,
        get_backoff_s=0.01,
    )
    source.start({})
    try:
        with pytest.raises(SourceError, match="ExpiredToken"):
            _drain(source, Ingest(), lambda evs: False)
    finally:
        source.stop()


def test_s3_kill_9_a_restart_does_not_reread_files_of_a_quiet_partition_it_already_returned() -> None:
    # The S3 kill -9 probe (bench/probes/s3_follow.py) double-counted an event: on restart each
    # partition re-lists RELIST_MARGIN_S behind its own last key, and eventID dedup only spans
    # the last hour of event time, so a quiet region's last files (hours old) were counted again.
    keys = [_trail_key("111122223333", m) for m in (1, 2, 3)]
    client = _FakeS3({k: _archive([make_event(i)]) for i, k in enumerate(keys)})

    def source() -> S3Source:
        return S3Source(
            "trail",
            accounts=("111122223333",),
            regions=("us-east-1",),
            start="TRIM_HORIZON",
            follow=False,
            client=client,
        )

    first = source()
    first.start({})
    try:
        assert len(_drain(first, Ingest(), lambda evs: False)) == 3
        positions = first.positions()
    finally:
        first.stop()
    again = source()
    again.start(positions)
    try:
        assert _drain(again, Ingest(), lambda evs: False) == []
    finally:
        again.stop()
    # a file that lands late, behind the last key read, is still read after a restart
    late = keys[1].replace("_x2.json.gz", "_a2.json.gz")
    assert late < keys[2]
    client.objects[late] = _archive([make_event(9)])
    resumed = source()
    resumed.start(positions)
    try:
        assert [ev.event_id for ev in _drain(resumed, Ingest(), lambda evs: False)] == [make_event(9)["eventID"]]
    finally:
        resumed.stop()


def test_item5_a_new_account_prefix_is_read_at_the_listing_cadence() -> None:
    first = _trail_key("111122223333", 1)
    client = _FakeS3({first: _archive([make_event(1)])})
    source = S3Source("trail", start="TRIM_HORIZON", follow=True, client=client, poll_interval_s=0.05)
    ingest = Ingest()
    source.start({})
    try:
        assert len(_drain(source, ingest, lambda evs: len(evs) >= 1)) == 1
        client.objects[_trail_key("444455556666", 2, "eu-west-1")] = _archive([make_event(2)])
        late = _drain(source, ingest, lambda evs: len(evs) >= 1, timeout_s=5.0)
    finally:
        source.stop()
    assert [ev.event_id for ev in late] == [make_event(2)["eventID"]]
    assert load(None, env={"DETECTOR_SOURCE__REDISCOVER_S": "300"}).source.rediscover_s == 300


class _Endless:
    """A stream (an S3 Body, a file that keeps growing) that never ends and announces no size."""

    def __init__(self) -> None:
        self.served = 0

    def read(self, n: int = -1) -> bytes:
        self.served += 1 << 20
        return b"\0" * (1 << 20)

    def close(self) -> None:
        return None


def test_item9_the_blob_cap_is_enforced_while_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "MAX_BLOB_BYTES", 8 << 20)
    stream = _Endless()
    with pytest.raises(TooLarge):
        read_capped(stream)
    assert stream.served <= (8 << 20) + (4 << 20)  # stopped within one chunk of the cap
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (9 << 20))
    (tmp_path / "ok.json").write_bytes(orjson.dumps({"Records": [make_event(1)]}))
    ingest = Ingest()
    events = [ev for data, pos in iter_file_blobs(tmp_path) for ev in ingest.blob(data, pos, "file")]
    assert len(events) == 1 and ingest.rejected == {"oversized": 1}  # the reason it had when read whole
    key = _trail_key("111122223333", 1)
    client = _FakeS3({key: b""})
    client.get_object = lambda Bucket, Key: {"Body": _Endless()}  # type: ignore[method-assign]
    source = S3Source("trail", accounts=("111122223333",), regions=("us-east-1",), follow=False, client=client)
    blob = source._get("trail", key)
    assert type(blob) is Unreadable and blob.reason == "oversized" and "blob cap" in blob.detail
    assert source.get_failures == {"oversized": 1}


# --- item 8: caches keyed on attacker-controlled strings -----------------------------------------


def _cached_chars() -> int:
    """Characters of string keys held by the module-level memo caches the hot path fills."""
    from detector import baseline as baseline_module

    total = 0
    for module in (baseline_module, event_module, decode_module):
        for value in vars(module).values():
            if type(value) is not dict:
                continue
            total += sum(_chars(key) for key in value)
    return total


def _chars(key: object) -> int:
    """Characters of the strings in a cache key, nested tuples included (the typed reader's keys)."""
    if type(key) is str:
        return len(key)
    if type(key) is tuple:
        return sum(_chars(part) for part in key)
    return 0


def test_item8_a_forged_20kb_arn_is_not_kept_in_the_principal_memo_by_either_reader() -> None:
    records = [
        make_event(
            i, userIdentity={"type": "IAMUser", "accountId": "1", "arn": "arn:aws:iam::1:user/" + "x" * 20_000 + str(i)}
        )
        for i in range(200)
    ]
    blob = orjson.dumps({"Records": records})
    for read in (lambda: typed.read(blob)[0], lambda: [Event.of(r) for r in decode(blob, "b").events]):
        event_module._principals.clear()
        events = read()
        assert events is not None and len({ev.principal.key for ev in events}) == 200
        assert all(len(ev.principal.key) <= 1024 for ev in events)
        assert sum(_chars(key) for key in event_module._principals) < 200 * 2_000  # 4 MB before the fix


def test_item8_forged_20kb_field_values_are_capped_before_any_cache_keys_on_them(tmp_path: Path) -> None:
    from tests.unit.test_pipeline import _settings

    def huge(tag: str, i: int) -> str:
        return "x" * 20_000 + f"{tag}{i}"  # one head, distinct tails: distinct values must stay distinct

    records = [
        make_event(
            i,
            eventName=huge("n", i),
            sourceIPAddress=huge("ip", i),
            errorCode=huge("e", i),
            userAgent=huge("ua", i),
            requestParameters={"bucketName": huge("b", i), "key": huge("k", i)},
            userIdentity={"type": "AssumedRole", "arn": f"arn:aws:sts::1:assumed-role/r/{huge('s', i)}"},
        )
        for i in range(300)
    ]
    events, ingest = _ingest(_archive(records))
    assert len(events) == 300 and not ingest.rejected
    for ev in events:
        assert len(ev.name) <= 128 and len(ev.source_ip) <= 256 and len(ev.bucket) <= 256 and len(ev.error_code) <= 128
        assert len(ev.principal.session) <= 128
    assert len({ev.name for ev in events}) == len({ev.bucket for ev in events}) == 300
    for module_cache in (event_module._principals,):
        module_cache.clear()
    before = _cached_chars()
    det = Detector(_settings(tmp_path), None, store={})
    det.process(events)
    det.process(_ingest(_archive(records))[0])  # the typed reader's events, the same bounds
    grown = _cached_chars() - before
    assert grown < 300 * 2_000  # ~300 chars per field per event; 20 kB each before the fix
