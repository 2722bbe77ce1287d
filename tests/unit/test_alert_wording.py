"""How alerts read (issue 11 item 8): byte counts in GB/MB, the bucket and address said once in
every open and update, and a capped ``event_ids`` list said to be capped in the alert itself."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from detector.alert import render_text
from detector.event import Event
from detector.pipeline import Detector
from detector.settings import load
from tests.factories import T0, assumed_role, event, get_object

HOUR = 3600.0
DAY = 86400.0
RAW_BYTES = re.compile(r"\d{4,}(\.\d+)? ?(bytes|B)\b")  # "22138617856 bytes/h": digits to count


def _detector(tmp_path: Path) -> Detector:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("")
    return Detector(load(cfg, env={}), None, store={})


def _history(days: int = 5) -> list[Event]:
    out = []
    for d in range(days):
        for i in range(40):
            t = T0 + d * DAY + i * 600
            out.append(event(name=("DescribeInstances", "ListBuckets", "GetCallerIdentity")[i % 3], t=t))
            if i % 4 == 0:
                out.append(get_object("team-data", f"reports/{d}-{i}.csv", t + 5))
    return out


def _run(det: Detector, events: list[Event], batch: int = 512) -> list:
    alerts = []
    for i in range(0, len(events), batch):
        alerts.extend(det.process(events[i : i + batch]).alerts)
    return alerts


def test_a_large_read_reads_in_gb_and_every_update_keeps_bucket_and_address(tmp_path: Path) -> None:
    det = _detector(tmp_path)
    assert _run(det, _history()) == []
    start = T0 + 5 * DAY + 2 * HOUR
    burst = [
        get_object("team-data", f"all/{i}", start + i * 0.2, nbytes=60_000_000, ip="198.51.100.9") for i in range(1200)
    ]
    alerts = _run(det, burst)
    assert {a.status for a in alerts} == {"open", "update"}
    for a in alerts:
        doc = orjson.loads(a.to_json())
        text = " ".join([doc["summary"]] + [f"{e['value']} {e['baseline']}" for e in doc["explanation"]])
        assert not RAW_BYTES.search(text), text
        assert doc["summary"].count("s3://team-data") == 1, doc["summary"]
        assert doc["summary"].count("198.51.100.9") == 1, doc["summary"]
    assert any("GB" in e.value for a in alerts for e in a.explanation) or any(" GB" in a.summary for a in alerts)


def test_a_capped_event_id_list_says_so(tmp_path: Path) -> None:
    det = _detector(tmp_path)
    _run(det, _history())
    start = T0 + 5 * DAY + 2 * HOUR
    alerts = _run(det, [get_object("team-data", f"all/{i}", start + i * 0.2) for i in range(1500)])
    docs = [orjson.loads(a.to_json()) for a in alerts]
    first, last = docs[0], docs[-1]
    assert first["status"] == "open" and first["event_ids_truncated"] is False
    assert last["event_count"] > 50 and len(last["event_ids"]) == 50
    assert last["event_ids_truncated"] is True
    assert "(the first 50 event IDs listed)" in render_text(last, "markdown")
    assert "event IDs listed" not in render_text(first, "markdown")


def test_a_new_network_is_named_once(tmp_path: Path) -> None:
    """An automation role from a new network: the address appears once, not "a new network from <ip>"."""
    det = _detector(tmp_path)
    role = assumed_role("etl-role", "b54f46e62ad2d70a")
    ua = "aws-sdk-java/2.29.29 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.13 exec-env/AWS_ECS_FARGATE"
    work = [
        event(name="GetObject", source="s3.amazonaws.com", t=T0 + i * 600, identity=role, ip="10.0.1.5", ua=ua,
              bucket="app", key=f"k{i}")
        for i in range(6 * 24 * 5)
    ]  # fmt: skip
    _run(det, work)
    moved = event(
        name="ListBuckets",
        source="s3.amazonaws.com",
        t=T0 + 5 * DAY + 60,
        identity=role,
        ip="5.188.206.55",
        ua="Boto3/1.26.0 md/Botocore#1.26.0 ua/2.0 os/linux#6.5.0-kali3-amd64 lang/python#3.11.4",
    )
    alerts = [a for a in _run(det, [moved]) if a.kind == "credential_misuse"]
    assert alerts, "the role used from a new network by a new client alerts"
    summary = alerts[0].summary
    assert summary.count("5.188.206.55") == 1 and "from a new network from" not in summary, summary
    assert "a new network" in summary
