"""decode: every envelope from small hand-built inputs, plus property tests over any bytes."""

from __future__ import annotations

import base64
import gzip
import hashlib
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import detector.decode as decode_module
from detector.decode import (
    MAX_RECORD_BYTES,
    MAX_REJECTS_KEPT,
    REJECT_REASONS,
    Decoded,
    Rejected,
    check_event,
    decode,
    parse_event_time,
)
from detector.textsafe import clip


def make_event(n: int = 0, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::653711331788:assumed-role/level3/d190d14a",
            "accountId": "653711331788",
        },
        "eventTime": "2018-11-28T23:05:53Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListObjects",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "104.102.221.250",
        "requestParameters": {"bucketName": "the-end-962b72bjahfm5b4wcktm8t9z4sapemjb"},
        "responseElements": None,
        "eventID": f"00000000-0000-0000-0000-{n:012d}",
        "eventType": "AwsApiCall",
    }
    event.update(overrides)
    return event


def without(event: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in keys}


def records_blob(records: list[Any]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": records}))


def cwl_payload(messages: list[str], message_type: str = "DATA_MESSAGE") -> bytes:
    payload = {
        "messageType": message_type,
        "owner": "653711331788",
        "logGroup": "aws-cloudtrail-logs",
        "logStream": "653711331788_CloudTrail_us-east-1",
        "subscriptionFilters": ["to-kinesis"],
        "logEvents": [
            {"id": str(i), "timestamp": 1543446353000, "message": message} for i, message in enumerate(messages)
        ],
    }
    return gzip.compress(orjson.dumps(payload))


def eventbridge(detail: Any, detail_type: str = "AWS API Call via CloudTrail") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6f87d04b-9f74-4f04-a780-7acf4b0a9b38",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "653711331788",
        "time": "2018-11-28T23:05:53Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def ids(decoded: Decoded) -> list[str]:
    return [event["eventID"] for event in decoded.events]


def reasons(decoded: Decoded) -> list[tuple[str, str]]:
    return [(r.reason, r.position) for r in decoded.rejected]


# --- S3 archive ------------------------------------------------------------------------------


def test_gzip_archive_decodes_every_record():
    decoded = decode(records_blob([make_event(0), make_event(1)]), "s3://b/k.json.gz")
    assert ids(decoded) == [make_event(0)["eventID"], make_event(1)["eventID"]]
    assert decoded.rejected == [] and decoded.aside == [] and decoded.skipped == {}


def test_plain_archive_with_extra_top_level_and_record_keys():
    blob = orjson.dumps({"Records": [make_event(0, evt={"name": "x"})], "forwarder": {"name": "datadog"}})
    decoded = decode(blob, "f.json")
    assert ids(decoded) == [make_event(0)["eventID"]]
    assert decoded.events[0]["evt"] == {"name": "x"}


def test_bad_record_is_rejected_alone_with_its_index():
    records = [make_event(0), make_event(1, eventName=7), "text", {"hello": 1}, make_event(4)]
    decoded = decode(records_blob(records), "s3://b/k.json.gz")
    assert ids(decoded) == [make_event(0)["eventID"], make_event(4)["eventID"]]
    assert reasons(decoded) == [
        ("bad_field_type", "s3://b/k.json.gz#record=1"),
        ("not_an_object", "s3://b/k.json.gz#record=2"),
        ("unknown_envelope", "s3://b/k.json.gz#record=3"),
    ]
    assert "eventName" in decoded.rejected[0].detail


def test_records_that_is_not_an_array_is_wrong_shape():
    decoded = decode(orjson.dumps({"Records": {"a": 1}}), "f.json")
    assert reasons(decoded) == [("wrong_shape", "f.json")]


def test_empty_archive_is_counted_not_rejected():
    decoded = decode(records_blob([]), "k")
    assert decoded.events == [] and decoded.rejected == []
    assert decoded.skipped == {"empty_container": 1}


def test_concatenated_gzip_members():
    blob = gzip.compress(b'[{"eventName":"A","eventSource":"s","eventTime":"2020-01-01T00:00:00Z","eventID":"a"},')
    blob += gzip.compress(b'{"eventName":"B","eventSource":"s","eventTime":"2020-01-01T00:00:00Z","eventID":"b"}]')
    assert ids(decode(blob, "k")) == ["a", "b"]


def test_zero_padding_after_gzip_is_ignored():
    assert ids(decode(records_blob([make_event(3)]) + b"\x00" * 16, "k")) == [make_event(3)["eventID"]]


def test_insight_and_digest_are_set_aside():
    insight = {
        "eventVersion": "1.07",
        "eventTime": "2019-11-14T00:51:00Z",
        "awsRegion": "us-east-1",
        "eventID": "ee2f8b7c",
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": "123456789012",
        "sharedEventID": "12edc982",
        "insightDetails": {
            "state": "Start",
            "eventSource": "ssm.amazonaws.com",
            "eventName": "UpdateInstanceInformation",
        },
        "eventCategory": "Insight",
    }
    decoded = decode(records_blob([make_event(0), insight]), "k")
    assert ids(decoded) == [make_event(0)["eventID"]]
    assert decoded.aside == [("insight", insight)]

    digest = {
        "awsAccountId": "111122223333",
        "digestStartTime": "2015-08-17T14:01:31Z",
        "digestEndTime": "2015-08-17T15:01:31Z",
        "digestS3Bucket": "S3-bucket-name",
        "previousDigestSignature": None,
        "logFiles": [],
    }
    decoded = decode(gzip.compress(orjson.dumps(digest)), "k")
    assert decoded.aside == [("digest", digest)]
    assert decoded.events == [] and decoded.rejected == []


# --- arrays, JSON Lines, single events --------------------------------------------------------


def test_json_array_of_bare_events():
    decoded = decode(orjson.dumps([make_event(0), make_event(1)], option=orjson.OPT_INDENT_2), "f.json")
    assert ids(decoded) == [make_event(0)["eventID"], make_event(1)["eventID"]]


def test_json_lines_bad_line_in_the_middle_keeps_its_neighbours():
    lines = [
        orjson.dumps(make_event(0)),
        b"",
        b'{"eventName": "Broken", ',
        b"   ",
        orjson.dumps(make_event(4)),
        b'["not", "an", "event"]',
        orjson.dumps(make_event(6)) + b"\r",
    ]
    decoded = decode(b"\n".join(lines) + b"\n", "f.jsonl")
    assert ids(decoded) == [make_event(0)["eventID"], make_event(4)["eventID"], make_event(6)["eventID"]]
    assert reasons(decoded) == [
        ("invalid_json", "f.jsonl#line=3"),
        ("not_an_object", "f.jsonl#line=6#record=0"),
        ("not_an_object", "f.jsonl#line=6#record=1"),
        ("not_an_object", "f.jsonl#line=6#record=2"),
    ]


def test_json_lines_of_envelopes():
    lines = [orjson.dumps(eventbridge(make_event(0))), orjson.dumps({"Records": [make_event(1)]})]
    decoded = decode(b"\n".join(lines), "stdin")
    assert ids(decoded) == [make_event(0)["eventID"], make_event(1)["eventID"]]


def test_single_bare_event():
    decoded = decode(orjson.dumps(make_event(9)), "stdin#line=1")
    assert ids(decoded) == [make_event(9)["eventID"]]


def test_pretty_printed_invalid_json_is_one_reject_naming_where_it_failed():
    text = orjson.dumps({"Records": [make_event(0), make_event(1)]}, option=orjson.OPT_INDENT_2)
    broken = text.replace(b"},\n    {", b"}\n    {", 1)
    assert broken != text
    decoded = decode(broken, "f.json")
    assert reasons(decoded) == [("invalid_json", "f.json")]
    assert "line " in decoded.rejected[0].detail and "column" in decoded.rejected[0].detail
    assert decoded.events == []


def test_json_document_that_is_not_an_object():
    assert reasons(decode(b'"just a string"', "k")) == [("not_an_object", "k")]
    assert reasons(decode(b"42", "k")) == [("not_an_object", "k")]


def test_unknown_object_is_unknown_envelope():
    decoded = decode(b'{"hello": "world", "answer": 42}', "k")
    assert reasons(decoded) == [("unknown_envelope", "k")]
    assert "hello" in decoded.rejected[0].detail


# --- CloudWatch Logs subscription ------------------------------------------------------------


def test_cloudwatch_logs_gzip_data_message():
    messages = [orjson.dumps(make_event(0)).decode(), "{not json", orjson.dumps(make_event(2)).decode()]
    decoded = decode(cwl_payload(messages), "shard-0001:4953")
    assert ids(decoded) == [make_event(0)["eventID"], make_event(2)["eventID"]]
    assert reasons(decoded) == [("invalid_json", "shard-0001:4953#logEvent=1")]


def test_cloudwatch_logs_base64_gzip_even_when_line_wrapped():
    encoded = base64.encodebytes(cwl_payload([orjson.dumps(make_event(5)).decode()]))
    assert b"\n" in encoded.strip()
    assert ids(decode(encoded, "k")) == [make_event(5)["eventID"]]
    assert ids(decode(base64.b64encode(records_blob([make_event(6)])), "k")) == [make_event(6)["eventID"]]


def test_cloudwatch_logs_control_message_is_skipped():
    decoded = decode(cwl_payload(["CWL CONTROL MESSAGE: Checking health of destination"], "CONTROL_MESSAGE"), "k")
    assert decoded.skipped == {"control_message": 1}
    assert decoded.events == [] and decoded.rejected == []


def test_cloudwatch_logs_unknown_message_type_and_bad_log_events():
    assert reasons(decode(cwl_payload([], "WHAT_MESSAGE"), "k")) == [("unknown_envelope", "k")]
    bad = gzip.compress(orjson.dumps({"messageType": "DATA_MESSAGE", "logEvents": [{"id": "1"}, 3]}))
    assert reasons(decode(bad, "k")) == [("wrong_shape", "k#logEvent=0"), ("wrong_shape", "k#logEvent=1")]
    no_list = gzip.compress(orjson.dumps({"messageType": "DATA_MESSAGE", "logEvents": "x"}))
    assert reasons(decode(no_list, "k")) == [("wrong_shape", "k")]


def test_bad_base64_only_when_it_claims_to_be_base64_gzip():
    assert reasons(decode(b"H4sIAAAA!!!not-base64", "k")) == [("bad_base64", "k")]
    # Base64 that is not gzip is not claimed as base64: it is simply not JSON.
    assert reasons(decode(base64.b64encode(b"hello world"), "k")) == [("invalid_json", "k")]


# --- EventBridge -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "detail_type",
    ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail", "AWS Service Event via CloudTrail"],
)
def test_eventbridge_cloudtrail_detail_is_the_event(detail_type):
    decoded = decode(orjson.dumps(eventbridge(make_event(1), detail_type)), "k")
    assert decoded.events == [make_event(1)]


def test_eventbridge_insight_is_set_aside_and_other_detail_types_are_unknown():
    insight = {"eventType": "AwsCloudTrailInsight", "insightDetails": {"state": "End"}, "eventTime": "x"}
    decoded = decode(orjson.dumps(eventbridge(insight, "AWS Insight via CloudTrail")), "k")
    assert decoded.aside == [("insight", insight)]
    decoded = decode(orjson.dumps(eventbridge({"instance-id": "i-1"}, "EC2 Instance State-change Notification")), "k")
    assert reasons(decoded) == [("unknown_envelope", "k")]
    assert "EC2 Instance State-change Notification" in decoded.rejected[0].detail
    assert reasons(decode(orjson.dumps(eventbridge("oops")), "k")) == [("wrong_shape", "k")]


# --- blob-level failures ---------------------------------------------------------------------


@pytest.mark.parametrize("blob", [b"", b"   \n\t\r\n", b"\xef\xbb\xbf"])
def test_empty_input(blob):
    decoded = decode(blob, "k")
    assert reasons(decoded) == [("empty", "k")]


def test_truncated_gzip_is_one_reject_for_the_blob():
    blob = records_blob([make_event(i) for i in range(50)])
    decoded = decode(blob[: len(blob) // 2], "s3://b/k.json.gz")
    assert reasons(decoded) == [("truncated_gzip", "s3://b/k.json.gz")]
    assert decoded.events == []
    assert decode(b"\x1f\x8b", "k").rejected[0].reason == "truncated_gzip"


def test_corrupt_gzip_and_trailing_garbage():
    blob = bytearray(records_blob([make_event(i) for i in range(50)]))
    blob[40] ^= 0xFF
    assert decode(bytes(blob), "k").rejected[0].reason == "truncated_gzip"
    assert reasons(decode(records_blob([make_event(0)]) + b"garbage", "k")) == [("truncated_gzip", "k")]


def test_random_garbage():
    decoded = decode(bytes(range(256)) * 4, "k")
    assert reasons(decoded) == [("invalid_json", "k")]
    assert decoded.rejected[0].sample.isprintable()


def test_oversized_line_and_event():
    huge = orjson.dumps(make_event(1, userAgent="a" * MAX_RECORD_BYTES))
    blob = orjson.dumps(make_event(0)) + b"\n" + huge + b"\n" + orjson.dumps(make_event(2))
    decoded = decode(blob, "f.jsonl")
    assert ids(decoded) == [make_event(0)["eventID"], make_event(2)["eventID"]]
    assert reasons(decoded) == [("oversized", "f.jsonl#line=2")]
    assert len(decoded.rejected[0].sample) <= 200
    assert reasons(decode(huge, "kinesis")) == [("oversized", "kinesis")]


def test_gzip_bomb_guard(monkeypatch):
    monkeypatch.setattr(decode_module, "MAX_BLOB_BYTES", 10_000)
    decoded = decode(gzip.compress(b" " * 20_000), "k")
    assert reasons(decoded) == [("oversized", "k")]


def test_rejects_are_escaped_and_bounded():
    nasty = make_event(0, eventName=None, eventTime="\x1b[31m2018\n" + "x" * 1000)
    decoded = decode(orjson.dumps([without(nasty, "eventName"), make_event(1, eventTime=nasty["eventTime"])]), "k")
    assert [r.reason for r in decoded.rejected] == ["missing_field", "bad_timestamp"]
    for rejected in decoded.rejected:
        assert len(rejected.detail) <= 300 and len(rejected.sample) <= 200
        assert rejected.detail.isprintable() and rejected.sample.isprintable()
        assert "\x1b" not in rejected.sample
    assert "eventName" in decoded.rejected[0].detail


# --- event validity --------------------------------------------------------------------------


def test_check_event_accepts_real_shapes():
    assert check_event(make_event(0)) is None
    assert check_event(without(make_event(0), "userIdentity", "eventID", "requestParameters")) is None
    assert check_event(make_event(0, userIdentity=None, errorCode=None, resources=None)) is None
    assert check_event(make_event(0, eventTime="2020-09-14T00:44:23.000Z")) is None
    assert check_event(make_event(0, eventTime="2020-09-14T00:44:23+00:00")) is None


@pytest.mark.parametrize(
    ("event", "reason", "named"),
    [
        (without(make_event(0), "eventName"), "missing_field", "eventName"),
        (without(make_event(0), "eventSource"), "missing_field", "eventSource"),
        (without(make_event(0), "eventTime"), "missing_field", "eventTime"),
        (make_event(0, eventSource=["s3"]), "bad_field_type", "eventSource"),
        (make_event(0, eventTime=1543446353), "bad_field_type", "eventTime"),
        (make_event(0, eventTime="yesterday"), "bad_timestamp", "eventTime"),
        (make_event(0, userIdentity="root"), "bad_field_type", "userIdentity"),
        (make_event(0, requestParameters="{}"), "bad_field_type", "requestParameters"),
        (make_event(0, responseElements=[]), "bad_field_type", "responseElements"),
        (make_event(0, additionalEventData=1), "bad_field_type", "additionalEventData"),
        (make_event(0, resources={}), "bad_field_type", "resources"),
        (make_event(0, errorCode=403), "bad_field_type", "errorCode"),
        (make_event(0, eventID=17), "bad_field_type", "eventID"),
        ({k.lower(): v for k, v in make_event(0).items()}, "missing_field", "eventName"),
    ],
)
def test_invalid_events_are_rejected_with_the_field_named(event, reason, named):
    assert check_event(event) == reason
    decoded = decode(orjson.dumps(event), "k")
    assert reasons(decoded) == [(reason, "k")]
    assert named in decoded.rejected[0].detail


def test_check_event_on_non_objects():
    assert check_event([make_event(0)]) == "not_an_object"
    assert check_event(None) == "not_an_object"


def test_lowercased_keys_detail_points_at_case():
    decoded = decode(orjson.dumps({k.lower(): v for k, v in make_event(0).items()}), "k")
    assert "eventname" in decoded.rejected[0].detail


def test_logstash_timestamp_becomes_event_time():
    event = without(make_event(0), "eventTime")
    event["@timestamp"] = "2020-09-14T00:44:23.000Z"
    assert check_event(event) == "missing_field"  # check_event is pure; decode does the copy
    decoded = decode(orjson.dumps(event), "k")
    assert decoded.events[0]["eventTime"] == "2020-09-14T00:44:23.000Z"
    assert check_event(decoded.events[0]) is None


def test_synthetic_event_id_is_deterministic_and_content_based():
    event = without(make_event(0), "eventID")
    first = decode(orjson.dumps(event), "a").events[0]["eventID"]
    again = decode(orjson.dumps(dict(reversed(list(event.items())))), "b").events[0]["eventID"]
    other = decode(orjson.dumps(make_event(0, eventID=None, eventName="GetObject")), "c").events[0]["eventID"]
    assert first == again
    assert first.startswith("synthetic-") and len(first) == len("synthetic-") + 32
    assert other != first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-11-28T23:05:53Z", 1543446353.0),
        ("2018-11-28T23:05:53.250Z", 1543446353.25),
        ("2018-11-28T23:05:53+00:00", 1543446353.0),
        ("2018-11-29T00:05:53+01:00", 1543446353.0),
        ("2018-11-28 23:05:53", 1543446353.0),  # no offset: UTC, as CloudTrail means it
        ("2018-11-28 23:05:53.250000000", 1543446353.25),
    ],
)
def test_parse_event_time(text, expected):
    assert parse_event_time(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "yesterday", "2018-13-01T00:00:00Z", "2018-11-28T25:00:00Z", "redacted"])
def test_parse_event_time_rejects(text):
    with pytest.raises(ValueError):
        parse_event_time(text)


def test_decoded_extend_merges_everything():
    total = decode(records_blob([make_event(0)]), "a")
    total.extend(decode(b"", "b"))
    total.extend(decode(cwl_payload([], "CONTROL_MESSAGE"), "c"))
    total.extend(decode(cwl_payload([], "CONTROL_MESSAGE"), "d"))
    assert ids(total) == [make_event(0)["eventID"]]
    assert reasons(total) == [("empty", "b")]
    assert total.skipped == {"control_message": 2}
    # rejects past MAX_REJECTS_KEPT are only counted: the count must survive a merge too
    many = b"[" + b",".join([b"1"] * (MAX_REJECTS_KEPT + 5)) + b"]"
    total.extend(decode(many, "e"))
    total.extend(decode(many, "f"))
    assert total.more_rejected == {"not_an_object": 10}


# --- textsafe.clip, which rejects rely on ----------------------------------------------------


def test_clip_escapes_and_caps():
    assert clip("plain") == "plain"
    assert clip("a\nb\x1b[0m\u202e") == "a\\x0ab\\x1b[0m\\u202e"
    assert clip("x" * 300, 20) == "x" * 13 + "…(+287)"
    assert clip(b"\xff\x00ok") == "\\xff\\x00ok"
    assert clip(None) == "None"


@given(st.one_of(st.text(), st.binary()), st.integers(min_value=1, max_value=400))
@settings(max_examples=200)
def test_clip_is_always_printable_and_bounded(text, limit):
    out = clip(text, limit)
    assert len(out) <= limit
    assert out.isprintable()


# --- properties ------------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither; orjson writes null
_JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _FLOATS | _TEXT
_INTERESTING_KEYS = st.sampled_from(
    [
        "Records",
        "messageType",
        "logEvents",
        "message",
        "detail-type",
        "detail",
        "eventName",
        "eventSource",
        "eventTime",
        "eventID",
        "@timestamp",
        "userIdentity",
        "insightDetails",
        "eventType",
        "digestStartTime",
        "requestParameters",
        "resources",
    ]
)
_INTERESTING_VALUES = st.sampled_from(
    [
        "DATA_MESSAGE",
        "CONTROL_MESSAGE",
        "AWS API Call via CloudTrail",
        "AWS Insight via CloudTrail",
        "AwsCloudTrailInsight",
        "2018-11-28T23:05:53Z",
        "GetObject",
        '{"eventName":"A","eventSource":"s","eventTime":"2018-11-28T23:05:53Z"}',
    ]
)
_JSON = st.recursive(
    _JSON_SCALARS | _INTERESTING_VALUES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_INTERESTING_KEYS | _TEXT, inner, max_size=6),
    max_leaves=25,
)


def _json_bytes(value: Any) -> bytes:
    return orjson.dumps(value)


_ANY_BLOB = st.one_of(
    st.binary(max_size=512),
    st.binary(max_size=256).map(gzip.compress),
    st.binary(max_size=256).map(lambda b: b"H4sI" + b),
    _JSON.map(_json_bytes),
    _JSON.map(lambda v: gzip.compress(_json_bytes(v))),
    _JSON.map(lambda v: base64.b64encode(gzip.compress(_json_bytes(v)))),
    st.lists(_JSON.map(_json_bytes), min_size=1, max_size=5).map(b"\n".join),
    st.tuples(_JSON.map(lambda v: gzip.compress(_json_bytes(v))), st.integers(0, 64)).map(lambda t: t[0][: t[1]]),
)


def _assert_well_formed(decoded: Decoded, position: str) -> None:
    assert isinstance(decoded, Decoded)
    for event in decoded.events:
        assert check_event(event) is None
        assert isinstance(event["eventID"], str)
    for rejected in decoded.rejected:
        assert isinstance(rejected, Rejected)
        assert rejected.reason in REJECT_REASONS
        assert rejected.position.startswith(position)
        assert len(rejected.detail) <= 300 and rejected.detail.isprintable()
        assert len(rejected.sample) <= 200 and rejected.sample.isprintable()
    for kind, obj in decoded.aside:
        assert kind in {"digest", "insight"} and isinstance(obj, dict)
    assert all(isinstance(v, int) and v > 0 for v in decoded.skipped.values())


@given(_ANY_BLOB)
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_decode_never_raises_and_every_output_is_well_formed(blob):
    _assert_well_formed(decode(blob, "fuzz"), "fuzz")


_NAMES = st.text(string.ascii_letters + string.digits, min_size=1, max_size=24)
_TIMES = st.datetimes(min_value=datetime(2013, 1, 1), max_value=datetime(2035, 1, 1)).flatmap(
    lambda moment: st.sampled_from(
        [
            moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            moment.replace(tzinfo=UTC).isoformat(),
            (moment.replace(tzinfo=UTC) + timedelta(hours=2)).astimezone(timezone(timedelta(hours=2))).isoformat(),
        ]
    )
)
_EVENTS = st.fixed_dictionaries(
    {
        "eventName": _NAMES,
        "eventSource": _NAMES.map(lambda name: name.lower() + ".amazonaws.com"),
        "eventTime": _TIMES,
    },
    optional={
        "eventID": st.uuids().map(str),
        "userIdentity": st.none() | st.dictionaries(_TEXT, _JSON_SCALARS, max_size=4),
        "requestParameters": st.none() | st.dictionaries(_TEXT, _JSON, max_size=4),
        "responseElements": st.none() | st.dictionaries(_TEXT, _JSON, max_size=3),
        "resources": st.none() | st.lists(st.dictionaries(_TEXT, _TEXT, max_size=3), max_size=3),
        "errorCode": st.none() | _TEXT,
        "sourceIPAddress": _TEXT,
        "eventType": st.sampled_from(["AwsApiCall", "AwsConsoleSignIn", "AwsServiceEvent"]),
        "unknownExtra": _JSON,
    },
)


def _expected_id(event: dict[str, Any]) -> str:
    """The documented rule: keep eventID, else sha256 of the sorted-key orjson bytes."""
    if event.get("eventID") is not None:
        return event["eventID"]
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return "synthetic-" + hashlib.sha256(canonical).hexdigest()[:32]


def _wrap(envelope: str, events: list[dict[str, Any]]) -> list[bytes]:
    """Blobs carrying ``events`` in ``envelope``; several blobs for one-event-per-record envelopes."""
    messages = [orjson.dumps(event).decode() for event in events]
    if envelope == "records":
        return [records_blob(events)]
    if envelope == "array":
        return [orjson.dumps(events, option=orjson.OPT_INDENT_2)]
    if envelope == "jsonl":
        return [b"\n".join(orjson.dumps(event) for event in events) + b"\n"]
    if envelope == "cwl_gzip":
        return [cwl_payload(messages)]
    if envelope == "cwl_base64":
        return [base64.b64encode(cwl_payload(messages))]
    if envelope == "eventbridge":
        return [orjson.dumps(eventbridge(event)) for event in events]
    raise AssertionError(envelope)


_ENVELOPES = ["records", "array", "jsonl", "cwl_gzip", "cwl_base64", "eventbridge"]


@given(st.lists(_EVENTS, min_size=1, max_size=8), st.sampled_from(_ENVELOPES))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_valid_events_round_trip_through_every_envelope(events, envelope):
    expected_ids = [_expected_id(event) for event in events]
    decoded = Decoded()
    for blob in _wrap(envelope, events):
        decoded.extend(decode(blob, envelope))
    assert decoded.rejected == [] and decoded.aside == []
    assert ids(decoded) == expected_ids
    assert [without(event, "eventID") for event in decoded.events] == [without(event, "eventID") for event in events]
