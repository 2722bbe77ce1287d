"""typed: the fast reader gives exactly the events decode + Event.of give, or steps aside."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from detector import typed
from detector.decode import decode
from detector.event import Event
from detector.ingest import Ingest
from detector.metrics import Metrics
from tests.unit.test_decode import cwl_payload, make_event, records_blob


def slow(data: bytes) -> tuple[list[Event], list[dict[str, Any]], bool]:
    """(events, dicts, clean): what decode + Event.of make of ``data``; clean = nothing rejected or set aside."""
    decoded = decode(data, "blob")
    events = []
    clean = not decoded.rejected and not decoded.aside and not decoded.skipped
    for raw in decoded.events:
        try:
            events.append(Event.of(raw))
        except (ValueError, TypeError, KeyError):
            clean = False
    return events, decoded.events, clean


def assert_same_as_decode(data: bytes) -> list[Event] | None:
    """typed.read and typed.read_pairs agree with decode (events, and each event's JSON), or step aside."""
    events, _ = typed.read(data)
    pairs, _ = typed.read_pairs(data)
    assert (events is None) == (pairs is None)
    if events is not None and pairs is not None:
        expected, dicts, clean = slow(data)
        assert clean, "typed read a blob that decode rejects part of"
        assert events == expected
        assert [ev for ev, _ in pairs] == expected
        for (_, line), raw in zip(pairs, dicts, strict=True):
            assert b"\n" not in line and orjson.loads(line) == raw
    return events


def data_message(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": "aws.s3",
        "detail-type": "AWS API Call via CloudTrail",
        "account": "111122223333",
        "detail": event,
    }


def test_every_shape_reads_fast_and_the_same(tmp_path: Path) -> None:
    events = [make_event(i) for i in range(3)]
    events[1]["additionalEventData"] = {"bytesTransferredOut": 1234}
    events[1]["requestParameters"] = {"bucketName": "b", "key": "k" * 5000}
    events[2]["userIdentity"] = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_1/ana@example.com",
        "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/AWSReservedSSO_Admin_1"}},
    }
    shapes = {
        "archive": records_blob(events),
        "plain archive": orjson.dumps({"Records": events}),
        "array": orjson.dumps(events),
        "one event": orjson.dumps(events[2]),
        "eventbridge": orjson.dumps(data_message(events[0])),
        "cloudwatch logs": cwl_payload([orjson.dumps(e).decode() for e in events]),
        "json lines": b"\n".join(orjson.dumps(e) for e in events) + b"\n",
        "pretty archive": orjson.dumps({"Records": events}, option=orjson.OPT_INDENT_2),
    }
    for name, blob in shapes.items():
        got = assert_same_as_decode(blob)
        assert got is not None, f"{name}: the fast reader stepped aside on a clean blob"
        assert len(got) in (1, 3), name
    key = assert_same_as_decode(orjson.dumps(events[2]))
    assert key is not None and key[0].principal.key.endswith("/ana@example.com")


def test_what_decode_must_judge_is_left_to_it() -> None:
    event = make_event(0)
    cases = {
        "bad eventTime": make_event(1, eventTime="yesterday"),
        "no eventID": {k: v for k, v in event.items() if k != "eventID"},
        "numeric eventName": make_event(1, eventName=7),
        "string requestParameters": make_event(1, requestParameters="x"),
        "Insights event": make_event(1, eventType="AwsCloudTrailInsight"),
        "blank identity": make_event(1, userIdentity={"somethingNew": 1}),
        "@timestamp": {k: v for k, v in event.items() if k != "eventTime"} | {"@timestamp": event["eventTime"]},
    }
    for name, bad in cases.items():
        blob = records_blob([event, bad])
        assert typed.read(blob)[0] is None, name
        assert typed.read_event(orjson.dumps(bad)) is None, name
    for blob in (
        records_blob([]),
        cwl_payload([], "CONTROL_MESSAGE"),
        orjson.dumps({"digestStartTime": "2020-01-01T00:00:00Z", "digestEndTime": "x"}),
        b"\n".join([orjson.dumps(make_event(0)), orjson.dumps(make_event(1, eventID=None))]),
        b"[1]\n[2]",  # lines of arrays are one broken document to decode, not JSON Lines
        gzip.compress(b"{}")[:-3],
        b"not json",
    ):
        assert typed.read(blob)[0] is None


def test_ingest_keeps_the_good_records_when_one_sends_it_the_slow_way(tmp_path: Path) -> None:
    good = [make_event(i) for i in range(5)]
    blob = records_blob([*good[:2], make_event(9, eventName=None), *good[2:]])
    registry = CollectorRegistry()
    ingest = Ingest(metrics=Metrics.create(registry))
    events = ingest.blob(blob, "s3://b/k.json.gz", "s3")
    assert [e.event_id for e in events] == [e["eventID"] for e in good]
    assert ingest.rejected == {"bad_field_type": 1}
    assert ingest.blob(records_blob(good), "s3://b/k2.json.gz", "s3") == events
    assert (ingest.records, ingest.general_reader, ingest.events) == (2, 1, 10)

    def sample(name: str) -> float | None:
        return registry.get_sample_value(f"detector_{name}_total", {"source": "s3"})

    assert (sample("records_received"), sample("records_general_reader"), sample("events_decoded")) == (2, 1, 10)


def test_unread_fields_orjson_refuses_do_not_hide_a_file() -> None:
    # One string of invalid UTF-8 in a field nothing reads: orjson refuses the whole file.
    body = orjson.dumps({"Records": [make_event(0, responseElements={"x": "PLACEHOLDER"}), make_event(1)]})
    blob = body.replace(b"PLACEHOLDER", b"\xff\xfe")
    assert decode(blob, "f").rejected[0].reason == "invalid_json"
    events, _ = typed.read(blob)
    assert events is not None and [e.event_id for e in events] == [make_event(i)["eventID"] for i in (0, 1)]


def test_corpus_events_read_the_same_both_ways(corpus_dir: Path) -> None:
    fast = total = 0
    for name in ("labelled-real-events.jsonl", "panther-tests.jsonl"):
        for line in (corpus_dir / name).read_bytes().splitlines():
            event = orjson.loads(line)["event"]
            total += 1
            blob = orjson.dumps(event)
            got = assert_same_as_decode(blob)
            single = typed.read_event(blob)
            assert single is None or got == [single]
            fast += got is not None
            wrapped = assert_same_as_decode(records_blob([event, make_event(1)]))
            assert (wrapped is None) == (got is None)
    # Panther's test events are partial on purpose (no eventID, odd types); most real ones are clean.
    assert total > 500 and fast > total // 2, (fast, total)
    for path in sorted((corpus_dir / "flaws2-cloud").rglob("*.json.gz")):
        assert assert_same_as_decode(path.read_bytes()) is not None, path


# --- properties ------------------------------------------------------------------------------

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["s3.amazonaws.com", "GetObject", "Data", "AwsCloudTrailInsight", "AWS Internal", ""]),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=2),
    st.dictionaries(st.sampled_from(["arn", "bucketName", "key", "x"]), st.text(max_size=5), max_size=2),
)
_FIELDS = [
    "eventName",
    "eventSource",
    "eventTime",
    "eventID",
    "eventType",
    "awsRegion",
    "recipientAccountId",
    "sourceIPAddress",
    "userAgent",
    "eventCategory",
    "managementEvent",
    "errorCode",
    "userIdentity",
    "requestParameters",
    "additionalEventData",
    "responseElements",
    "resources",
    "insightDetails",
]
_IDENTITY_FIELDS = ["type", "arn", "accountId", "principalId", "invokedBy", "userName", "onBehalfOf", "x"]


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    event = make_event(draw(st.integers(0, 5)))
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=3)):
        if draw(st.booleans()):
            event.pop(name, None)
        else:
            event[name] = draw(_values)
    identity = draw(st.dictionaries(st.sampled_from(_IDENTITY_FIELDS), _values, max_size=4))
    if draw(st.booleans()):
        identity["type"] = draw(st.sampled_from(["AssumedRole", "IAMUser", "AWSService", "AWSAccount", "Root"]))
        identity["sessionContext"] = draw(
            st.one_of(st.none(), st.just({}), st.builds(lambda a: {"sessionIssuer": {"arn": a}}, _values))
        )
    if draw(st.booleans()):
        event["userIdentity"] = identity
    if draw(st.booleans()):
        event["additionalEventData"] = {"bytesTransferredOut": draw(_values)}
    return event


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(mutated_events(), min_size=1, max_size=4),
    st.sampled_from(["archive", "array", "cwl", "one", "eb", "lines"]),
)
def test_any_mix_of_fields_reads_the_same_or_steps_aside(events: list[dict[str, Any]], shape: str) -> None:
    blob = {
        "archive": lambda: records_blob(events),
        "array": lambda: orjson.dumps(events),
        "cwl": lambda: cwl_payload([orjson.dumps(e).decode() for e in events]),
        "one": lambda: orjson.dumps(events[0]),
        "eb": lambda: orjson.dumps(data_message(events[0])),
        "lines": lambda: b"\n".join(orjson.dumps(e) for e in events),
    }[shape]()
    assert_same_as_decode(blob)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_never_raise(data: bytes) -> None:
    events, _ = typed.read(data)
    assert events is None or all(isinstance(e, Event) for e in events)
    pairs, _ = typed.read_pairs(data)
    assert pairs is None or all(isinstance(e, Event) and b"\n" not in line for e, line in pairs)
    assert typed.read_event(data) is None or isinstance(typed.read_event(data), Event)
