"""decode against the real CloudTrail corpus in ../shared/corpus (see its README.md).

Every file is decoded; each result is checked against what the file itself says (record counts,
`shape`/`kind` labels in wrapper files), not against numbers typed in here. The README's counts
are asserted too, as a guard that the corpus is the one the README describes.
"""

from __future__ import annotations

import gzip
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.decode import REJECT_REASONS, Decoded, check_event, decode

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"

if not CORPUS.is_dir():
    pytest.skip(f"CloudTrail corpus not found at {CORPUS}", allow_module_level=True)

# One `{..., "event": {...}}` wrapper a line: each line's `event` is decoded on its own.
WRAPPED = {
    "panther-tests.jsonl",
    "labelled-real-events.jsonl",
    "awsdocs-cloudtrail-user-guide/doc_examples.jsonl",
}
# The negative test the README announces: records not separated by commas at line 112.
INVALID = {"cloudtrail2sightings/aws.execution.ec2-user-data.json": "line 112"}
# A CSV export of honey-bucket alerts: not CloudTrail JSON, so it must be rejected, not crash.
NOT_CLOUDTRAIL = {"otrf-security-datasets/AWS_S3_HoneyBucketLogs.csv"}

FILES = sorted(
    path.relative_to(CORPUS).as_posix() for path in CORPUS.rglob("*") if path.is_file() and path.name != "README.md"
)


def lines_of(rel: str) -> list[tuple[int, dict[str, Any]]]:
    raw = (CORPUS / rel).read_bytes().split(b"\n")
    return [(number, orjson.loads(line)) for number, line in enumerate(raw, 1) if line.strip()]


@cache
def decode_file(rel: str) -> Decoded:
    if rel not in WRAPPED:
        return decode((CORPUS / rel).read_bytes(), rel)
    out = Decoded()
    for number, wrapper in lines_of(rel):
        out.extend(decode(orjson.dumps(wrapper["event"]), f"{rel}#line={number}"))
    return out


def decode_line(rel: str, number: int, event: dict[str, Any]) -> Decoded:
    return decode(orjson.dumps(event), f"{rel}#line={number}")


def describe(decoded: Decoded) -> str:
    return "; ".join(f"{r.position}: {r.reason}: {r.detail}" for r in decoded.rejected[:10])


def test_corpus_is_present_and_walked():
    assert len(FILES) >= 50
    assert {rel.rsplit(".", 1)[-1] for rel in FILES} >= {"json", "gz", "jsonl", "csv"}


@pytest.mark.parametrize("rel", FILES)
def test_every_file_decodes_or_is_rejected_cleanly(rel):
    decoded = decode_file(rel)
    for event in decoded.events:
        assert check_event(event) is None
        assert isinstance(event["eventID"], str)
    for rejected in decoded.rejected:
        assert rejected.reason in REJECT_REASONS
        assert rejected.position.startswith(rel)
        assert rejected.detail.isprintable() and rejected.sample.isprintable()
    reasons = Counter(r.reason for r in decoded.rejected)

    if rel in INVALID:
        assert decoded.events == [] and decoded.aside == []
        assert reasons == {"invalid_json": 1}
        assert decoded.rejected[0].position == rel
        assert INVALID[rel] in decoded.rejected[0].detail
        assert "column" in decoded.rejected[0].detail
    elif rel in NOT_CLOUDTRAIL:
        assert decoded.events == [] and decoded.aside == []
        assert reasons and set(reasons) <= {"invalid_json", "unknown_envelope", "not_an_object"}
    else:
        assert decoded.events, describe(decoded)
        assert "invalid_json" not in reasons, describe(decoded)


def test_labelled_real_events_all_decode():
    rel = "labelled-real-events.jsonl"
    decoded = decode_file(rel)
    assert decoded.rejected == [], describe(decoded)
    assert len(decoded.events) == len(lines_of(rel)) == 462


@pytest.mark.parametrize(
    ("source", "folder"),
    [
        ("stratus-red-team", "stratus-red-team"),
        ("otrf-security-datasets", "otrf-security-datasets"),
        ("flaws2-cloud", "flaws2-cloud"),
        ("cloudtrail2sightings", "cloudtrail2sightings"),
    ],
)
def test_labelled_events_match_their_source_files(source, folder):
    """labelled-real-events joins the four raw sources: the same events must come out of both."""
    labelled = {
        decode_line("labelled", number, wrapper["event"]).events[0]["eventID"]
        for number, wrapper in lines_of("labelled-real-events.jsonl")
        if wrapper["source"] == source
    }
    raw = Decoded()
    for rel in FILES:
        if rel.startswith(folder + "/"):
            raw.extend(decode_file(rel))
    assert labelled == {event["eventID"] for event in raw.events}


def test_flaws2_archives_give_every_record():
    archives = [rel for rel in FILES if rel.startswith("flaws2-cloud/") and rel.endswith(".json.gz")]
    in_files = sum(len(orjson.loads(gzip.decompress((CORPUS / rel).read_bytes()))["Records"]) for rel in archives)
    decoded = sum(len(decode_file(rel).events) for rel in archives)
    assert decoded == in_files == 37
    assert len(archives) == 8


def test_stratus_arrays_give_every_element():
    files = [rel for rel in FILES if rel.startswith("stratus-red-team/")]
    for rel in files:
        assert len(decode_file(rel).events) == len(orjson.loads((CORPUS / rel).read_bytes())), rel
    assert sum(len(decode_file(rel).events) for rel in files) == 310


def test_otrf_logstash_events_get_event_time_from_timestamp():
    rel = "otrf-security-datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json"
    decoded = decode_file(rel)
    assert len(decoded.events) == len(lines_of(rel)) == 103
    for event in decoded.events:
        assert event["eventTime"] == event["@timestamp"]


def test_cloudtrail2sightings_valid_files_give_every_record():
    files = [rel for rel in FILES if rel.startswith("cloudtrail2sightings/") and rel not in INVALID]
    for rel in files:
        records = orjson.loads((CORPUS / rel).read_bytes())["Records"]
        assert len(decode_file(rel).events) == len(records), rel


def test_doc_examples_digests_and_insights_are_set_aside():
    rel = "awsdocs-cloudtrail-user-guide/doc_examples.jsonl"
    lines = lines_of(rel)
    digests = [w["event"] for _, w in lines if w["kind"] == "digest"]
    insights = [w["event"] for _, w in lines if w["event"].get("eventType") == "AwsCloudTrailInsight"]
    others = len(lines) - len(digests) - len(insights)
    decoded = decode_file(rel)
    assert decoded.rejected == [], describe(decoded)
    assert [obj for kind, obj in decoded.aside if kind == "digest"] == digests
    assert [obj for kind, obj in decoded.aside if kind == "insight"] == insights
    assert len(decoded.events) == others
    assert (len(digests), len(insights)) == (2, 5)


def test_panther_events_follow_their_shape_label():
    rel = "panther-tests.jsonl"
    lines = lines_of(rel)
    shapes = Counter()
    for number, wrapper in lines:
        event, shape = wrapper["event"], wrapper["shape"]
        decoded = decode_line(rel, number, event)
        shapes[shape] += 1
        where = f"{rel}#line={number}"
        if shape == "cloudtrail":
            if decoded.rejected:
                # Rule tests with a redacted timestamp ("redacted", "...") are the only full
                # events that cannot be placed in time.
                assert [r.reason for r in decoded.rejected] == ["bad_timestamp"], where
                assert not any(ch.isdigit() for ch in event["eventTime"]), where
            else:
                assert len(decoded.events) == 1, where
        elif shape == "lowercased_keys":
            assert [r.reason for r in decoded.rejected] == ["missing_field"], where
            assert "case-sensitive" in decoded.rejected[0].detail, where
        else:
            assert shape == "partial", where
            lacks_required = not {"eventName", "eventSource", "eventTime"} <= event.keys()
            assert bool(decoded.rejected) == lacks_required, where
            assert {r.reason for r in decoded.rejected} <= {"missing_field", "unknown_envelope"}, where
    assert shapes == {"cloudtrail": 446, "partial": 21, "lowercased_keys": 8}
