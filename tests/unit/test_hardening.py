"""Issue 12: the defects an adversarial review found, each closed by a test named after it.

Each test here failed on the code before its fix. The valid records around every bad one
must still come through, counted and dead-lettered where they are not.
"""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from detector import event as event_module
from detector import typed
from detector.decode import decode
from detector.event import Event, principal_of_raw
from detector.ingest import Ingest
from tests.unit.test_decode import make_event


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
