"""Forged and hostile records found by an adversarial review: each is counted, never fatal.

Every case here once escaped as an exception (killing a replay, or crash-looping `run` and the
workers on the same record), corrupted a baseline, merged distinct events, or kept megabytes
alive in a cache. The valid records around each must still come through.
"""

from __future__ import annotations

import gzip
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector import event as event_module
from detector import typed
from detector.baseline import Baseline
from detector.decode import MAX_REJECTS_KEPT, decode
from detector.errors import SourceError
from detector.event import MAX_BYTES_OUT, Event
from detector.ingest import DeadLetters, Ingest
from detector.pipeline import Detector
from detector.principal import MAX_PRINCIPAL_KEY, MAX_UA
from detector.runtime.faust_app import parse_event
from detector.settings import load
from detector.sources.file import iter_file_blobs, list_files
from detector.sources.files import FileSource
from tests.unit.test_decode import make_event

ROOT = Path(__file__).resolve().parents[2]


def _ingest(blob: bytes) -> tuple[list[Event], Ingest]:
    ingest = Ingest()
    return ingest.blob(blob, "blob", "file"), ingest


def _archive(records: list[Any]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": records}))


@pytest.mark.parametrize(
    "when",
    [
        "2106-02-07T06:28:16Z",  # past the baselines' 32-bit seconds
        "1969-12-31T23:59:59Z",  # before the epoch
        "9999-12-31T23:59:59-01:00",  # past year 9999 once in UTC: no datetime can hold it
        "0001-01-01T00:00:00+01:00",
        "2026-01-05T09:00:00." + "1" * 100_000 + "Z",  # a megabyte-scale time would sit in the time cache
    ],
)
def test_an_event_time_outside_2000_to_2100_is_a_bad_timestamp(when: str) -> None:
    records = [make_event(1), make_event(2, eventTime=when), make_event(3)]
    events, ingest = _ingest(_archive(records))
    assert [ev.event_id for ev in events] == [records[0]["eventID"], records[2]["eventID"]]
    assert ingest.rejected == {"bad_timestamp": 1}
    assert isinstance(parse_event(orjson.dumps(make_event(2, eventTime=when))), tuple)  # the workers' reader too


def test_the_scorer_survives_the_edges_of_the_time_range() -> None:
    edge = [make_event(1, eventTime="2000-01-01T00:00:00Z"), make_event(2, eventTime="2099-12-31T23:59:59Z")]
    ingest = Ingest(clock=lambda: 4_102_444_800.0)  # a clock in 2100: 2099 is not in its future
    events = ingest.blob(_archive(edge), "blob", "file")
    assert len(events) == 2 and not ingest.rejected
    result = Detector(load(None, env={}), None, store={}).process(events)
    assert result.scored == 2


def test_a_non_string_detail_type_is_an_unknown_envelope() -> None:
    for blob in (
        orjson.dumps({"detail-type": ["x"], "detail": make_event(1)}),
        orjson.dumps({"detail-type": {"a": 1}, "detail": make_event(1)}),
    ):
        events, ingest = _ingest(blob)
        assert events == [] and ingest.rejected == {"unknown_envelope": 1}


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [300, 2_000, 100_000])
def test_deep_nesting_in_a_field_nobody_reads_never_escapes(depth: int) -> None:
    good = orjson.dumps(make_event(1))
    bad = orjson.dumps(make_event(2))[:-1] + b',"unreadField":' + _nested(depth) + b"}"
    events, ingest = _ingest(b"\n".join([good, bad, orjson.dumps(make_event(3))]) + b"\n")
    assert len(events) + sum(ingest.rejected.values()) == 3 and len(events) >= 2
    assert typed.read_event(bad) is None or depth <= 300  # steps aside rather than raise
    got = parse_event(bad)  # the workers' reader
    assert isinstance(got, Event) or got[0] == "invalid_json"
    # the bridge's reader forwards each event's JSON: re-serialising it must not raise either
    # (an archive nested past orjson's 1024 levels is invalid JSON as a whole: one counted reject)
    bridge = Ingest()
    pretty = bad.replace(b',"unreadField"', b',\n  "unreadField"')  # one line is forwarded as it came
    pairs = bridge.pairs(b'{"Records": [' + good + b",\n" + pretty + b"]}", "p", "s")
    if depth <= 1000:
        assert [ev.event_id for ev, _ in pairs] == [make_event(1)["eventID"]]
        assert bridge.rejected == {"oversized": 1}
    else:
        assert pairs == [] and bridge.rejected == {"invalid_json": 1}


def test_a_forged_byte_count_is_clamped_and_keeps_the_baseline_finite() -> None:
    forged = make_event(1, eventName="GetObject", requestParameters={"bucketName": "b", "key": "k"})
    forged["additionalEventData"] = {"bytesTransferredOut": 1e308}
    huge_int = dict(forged, eventID="evt-2", additionalEventData={"bytesTransferredOut": 10**400})
    events, ingest = _ingest(orjson.dumps([forged]))
    assert events[0].bytes_out == MAX_BYTES_OUT and not ingest.rejected
    raw_events, _ = _ingest(orjson.dumps({"Records": [forged]}))
    assert raw_events[0].bytes_out == MAX_BYTES_OUT
    assert Event.of(huge_int).bytes_out == MAX_BYTES_OUT  # a 400-digit int: no OverflowError
    b = Baseline()
    for day in range(30):
        ev = events[0]
        later = Event(**{**{f: getattr(ev, f) for f in ev.__slots__}, "time": ev.time + day * 86400})
        obs = b.observe(later)
        assert all(math.isfinite(v) for v in (obs.bytes10m, obs.bytes1h, *obs.peaks))


def test_empty_event_ids_get_distinct_synthetic_ones_instead_of_merging() -> None:
    records = [make_event(1, eventID=""), make_event(2, eventID="", eventName="StopLogging")]
    for blob in (_archive(records), b"\n".join(orjson.dumps(r) for r in records)):
        events, ingest = _ingest(blob)
        assert not ingest.rejected
        ids = [ev.event_id for ev in events]
        assert len(ids) == 2 and len(set(ids)) == 2 and all(ids), ids
        assert Detector(load(None, env={}), None, store={}).process(events).duplicates == 0


def test_a_megabyte_user_agent_is_read_only_as_far_as_cloudtrail_keeps_it() -> None:
    event_module._principals.clear()
    ua = "aws-cli/2.0 " + "A" * 1_000_000
    records = [make_event(i, userAgent=ua + str(i)) for i in range(20)]
    events, _ = _ingest(_archive(records))
    assert len(events) == 20 and all(len(ev.user_agent) == MAX_UA for ev in events)
    assert len({ev.principal for ev in events}) == 1
    longest = max((len(v) for key in event_module._principals for v in key if isinstance(v, str)), default=0)
    assert longest <= MAX_UA  # the memo keeps no megabyte strings alive


def test_an_output_path_that_cannot_be_written_is_one_line_and_exit_3(tmp_path: Path) -> None:
    archive = tmp_path / "a.json"
    archive.write_bytes(orjson.dumps({"Records": [make_event(1)]}))
    proc = subprocess.run(
        [sys.executable, "-m", "detector.cli", "replay", str(archive), "--alerts", str(tmp_path / "no" / "a.jsonl")],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err and "No such file or directory" in err
    weird = tmp_path / "x\x1b[31m\nforged"
    proc = subprocess.run(
        [sys.executable, "-m", "detector.cli", "replay", str(weird)], cwd=ROOT, capture_output=True, timeout=120
    )
    assert proc.returncode == 3 and proc.stderr.count(b"\n") == 1 and b"\x1b" not in proc.stderr


def test_a_small_blob_of_millions_of_bad_records_is_counted_without_a_dead_letter_each(tmp_path: Path) -> None:
    bomb = gzip.compress(b"[" + b"0," * 500_000 + b"0]")  # ~1 kB: half a million non-objects
    dead = DeadLetters(tmp_path / "dead.jsonl")
    ingest = Ingest(dead=dead)
    good = _archive([make_event(1)])
    assert ingest.blob(bomb, "bomb", "file") == [] and len(ingest.blob(good, "good", "file")) == 1
    dead.close()
    assert ingest.rejected == {"not_an_object": 500_001}  # every one counted
    lines = (tmp_path / "dead.jsonl").read_bytes().splitlines()
    assert len(lines) == MAX_REJECTS_KEPT + 1  # the first ones whole, then one line for the rest
    assert b"499001 more not_an_object records" in lines[-1]


def test_json_lines_with_a_bad_first_line_lose_only_that_line() -> None:
    lines = [b"not json"] + [orjson.dumps(make_event(i)) for i in range(50)]
    events, ingest = _ingest(b"\n".join(lines) + b"\n")
    assert len(events) == 50 and ingest.rejected == {"invalid_json": 1}
    broken_pretty = orjson.dumps({"Records": [make_event(1)]}, option=orjson.OPT_INDENT_2)[:-3]
    events, ingest = _ingest(broken_pretty)  # one broken document: one reject, not one per line
    assert events == [] and ingest.rejected == {"invalid_json": 1}


@pytest.mark.parametrize(
    "poison",
    [
        b'"userAgent": "aws-cli/2 \xff\xfe"',  # invalid UTF-8 in a field the detector reads
        b'"awsRegion": "us-east-\xc3"',
        b'"additionalEventData": {"bytesTransferredOut": 1e400}',  # past double range
    ],
)
def test_one_bad_value_costs_its_record_not_the_archive(poison: bytes) -> None:
    records = [orjson.dumps(make_event(i)) for i in range(5)]
    records[2] = records[2][:-1] + b"," + poison + b"}"
    for blob in (b'{"Records": [' + b",".join(records) + b"]}", b"[" + b",\n".join(records) + b"]"):
        events, ingest = _ingest(gzip.compress(blob))
        assert [ev.event_id for ev in events] == [make_event(i)["eventID"] for i in (0, 1, 3, 4)]
        assert ingest.rejected == {"invalid_json": 1}
    decoded = decode(b'{"Records": [' + b",".join(records) + b"]}", "f.json")
    assert [r.position for r in decoded.rejected] == ["f.json#record=2"]


def test_archive_file_suffixes_match_in_any_case(tmp_path: Path) -> None:
    (tmp_path / "A.JSON").write_bytes(orjson.dumps({"Records": [make_event(1)]}))
    (tmp_path / "b.Json.GZ").write_bytes(_archive([make_event(2)]))
    (tmp_path / "notes.txt").write_text("not an archive")
    assert [p.name for p in list_files(tmp_path)] == ["A.JSON", "b.Json.GZ"]


def test_an_unreadable_file_in_a_directory_is_counted_and_the_others_are_read(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(orjson.dumps({"Records": [make_event(1)]}))
    (tmp_path / "b.json").mkdir()  # a directory named like an archive: reading it fails
    (tmp_path / "b.json" / "c.json").write_bytes(orjson.dumps({"Records": [make_event(3)]}))
    cut = gzip.compress(b"\n".join(orjson.dumps(make_event(i)) for i in range(10, 3000)))
    (tmp_path / "d.jsonl.gz").write_bytes(cut[: len(cut) // 2])  # streamed, cut short mid-file
    unreadable = tmp_path / "e.json"
    unreadable.symlink_to("/proc/self/mem")  # a file the OS refuses to read whole
    ingest = Ingest()
    events = [ev for data, pos in iter_file_blobs(tmp_path) for ev in ingest.blob(data, pos, "file")]
    assert {make_event(1)["eventID"], make_event(3)["eventID"]} <= {ev.event_id for ev in events}
    assert ingest.rejected["unreadable"] == 1  # e.json; d.jsonl.gz is one truncated_gzip blob here
    source = FileSource([str(tmp_path)], lines_per_record=100)
    source.start({})
    run = Ingest()
    seen = [ev for r in source.poll(10_000, 0.1) for ev in run.blob(r.data, r.position, r.source)]
    assert len(seen) > 2 and run.rejected["unreadable"] == 2  # e.json, and d.jsonl.gz after its good lines
    with pytest.raises(SourceError, match="cannot read"):  # named on its own, it is an error
        list(iter_file_blobs(unreadable))


def test_a_forged_megabyte_arn_becomes_a_bounded_key_still_one_per_identity() -> None:
    def user(name: str) -> dict[str, Any]:
        arn = f"arn:aws:iam::111122223333:user/{name}"
        return {"type": "IAMUser", "arn": arn, "accountId": "111122223333", "userName": name}

    long_a, long_b = "a" * 1_000_000, "a" * 999_999 + "b"  # the same head, different identities
    records = [make_event(i, userIdentity=user(name)) for i, name in enumerate((long_a, long_b, long_a))]
    events, ingest = _ingest(_archive(records))
    keys = [ev.principal.key for ev in events]
    assert not ingest.rejected and all(len(k) <= MAX_PRINCIPAL_KEY for k in keys)
    assert keys[0] == keys[2] != keys[1]
    assert events[0].principal.arn.endswith("a" * 10)  # the ARN itself is kept for the alert (escaped and capped there)


@pytest.mark.parametrize("typed_reader", [True, False])
def test_a_forged_far_future_time_is_rejected_and_cannot_poison_a_baseline(typed_reader: bool, tmp_path: Path) -> None:
    now = 1_796_000_000.0  # 2026-11-30
    good = [make_event(i, eventTime=f"2026-11-29T10:00:{i:02d}Z") for i in range(1, 4)]
    forged = make_event(9, eventTime="2090-01-01T00:00:00Z")
    records = [good[0], forged, good[1], good[2]]
    if not typed_reader:
        records.append({"eventVersion": 1})  # one odd record sends the blob to the general reader
    dead = DeadLetters(tmp_path / "dead.jsonl")
    ingest = Ingest(dead=dead, clock=lambda: now)
    events = ingest.blob(_archive(records), "s3://b/k.json.gz", "s3")
    dead.close()
    assert [ev.event_id for ev in events] == [r["eventID"] for r in good]
    assert ingest.rejected["future_timestamp"] == 1 and ingest.events == 3
    letters = [orjson.loads(line) for line in (tmp_path / "dead.jsonl").read_bytes().splitlines()]
    future = [d for d in letters if d["reason"] == "future_timestamp"]
    assert len(future) == 1 and "2090-01-01" in future[0]["detail"] and forged["eventID"] in future[0]["sample"]
    # accepted, the same event would have moved the watermark to 2090 and evicted everyone
    det = Detector(load(None, env={}), None, store={})
    det.process(events)
    assert det.watermark < now and len(det.store) == 1
