"""The worker's agent body without a broker: record parsing, the table adapter and replay skipping.

``BatchScorer`` is what the Faust agent runs per micro-batch; here it gets plain lists and a
dict for the table, so the delivery rules are checked in milliseconds: each state write goes
to its events partition, carries the offset it includes, and a redelivered record (a crash
before the offset commit) is skipped instead of counted twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from detector import simulate
from detector.alert import Alert
from detector.event import Event
from detector.pipeline import Detector, PrincipalState
from detector.runtime.faust_app import BatchScorer, BatchStore, Message, Rejection, parse_record
from detector.settings import Settings

pytestmark = pytest.mark.integration  # lives with the worker tests; needs no server


def events(n: int) -> list[dict[str, Any]]:
    return list(simulate.iter_bulk(n, seed=3, principals=30))


def records(raw: list[dict[str, Any]], partitions: int = 2) -> list[Message]:
    """One record per principal run, like the bridge; partition by key hash."""
    by_key: dict[str, list[bytes]] = {}
    for ev in raw:
        by_key.setdefault(Event.of(ev).principal.key, []).append(orjson.dumps(ev))
    out: list[Message] = []
    offsets = [0] * partitions
    for key, lines in by_key.items():
        p = sum(key.encode()) % partitions
        out.append(Message("events", p, offsets[p], b"\n".join(lines)))
        offsets[p] += 1
    return out


class Harness:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.changelog: list[tuple[int, str]] = []
        self.alerts: list[Alert] = []
        self.dead: list[bytes] = []
        self.scorer = BatchScorer(
            Detector(Settings(), None, store={}), self.data, self.send, self.emit_alerts, self.emit_dead
        )

    def send(self, partition: int, key: str, value: bytes | None) -> None:
        self.changelog.append((partition, key))

    async def emit_alerts(self, alerts: list[Alert]) -> None:
        self.alerts.extend(alerts)

    async def emit_dead(self, dead: list[bytes]) -> None:
        self.dead.extend(dead)

    def handle(self, messages: list[Message]) -> list[Alert]:
        return asyncio.run(self.scorer.handle(messages))


def test_parse_record_accepts_one_event_or_json_lines_and_names_the_bad_line() -> None:
    a, b = events(2)
    single = parse_record(orjson.dumps(a))
    assert [type(x) for x in single] == [Event]
    mixed = parse_record(b"\n".join([orjson.dumps(a), b"[1, 2]", orjson.dumps(b)]))
    assert isinstance(mixed[0], Event) and isinstance(mixed[2], Event)
    bad = mixed[1]
    assert isinstance(bad, Rejection) and (bad.reason, bad.line) == ("not_an_object", 2)
    empty = parse_record(b"")
    assert isinstance(empty[0], Rejection) and empty[0].reason == "empty"


def test_state_goes_to_the_events_partition_with_its_offset() -> None:
    h = Harness()
    msgs = records(events(400))
    h.handle(msgs)
    partition_of = {}
    for m in msgs:
        key = Event.of(orjson.loads((m.value or b"").split(b"\n")[0])).principal.key
        partition_of[key] = m.partition
        assert BatchStore(h.data).applied(key) == (m.partition, m.offset)
        # the core sees a plain PrincipalState
        assert PrincipalState.decode(BatchStore(h.data)[key]).baseline is not None
    assert sorted(h.changelog) == sorted((p, k) for k, p in partition_of.items())


def test_a_redelivered_batch_changes_nothing() -> None:
    raw = events(600)
    msgs = records(raw)
    h = Harness()
    h.handle(msgs)
    before = dict(h.data)
    h.changelog.clear()
    # A crash before the offset commit: the same records again, to a fresh process (no eventID memory).
    h.scorer.detector.seen = type(h.scorer.detector.seen)(3600)
    again = h.handle(msgs)
    assert again == [] and h.data == before and h.changelog == []
    assert h.scorer.replayed == len(raw)


def test_split_batches_give_the_same_state_as_one() -> None:
    msgs = records(events(800), partitions=3)
    whole, parts = Harness(), Harness()
    whole.handle(msgs)
    for p in range(3):
        parts.handle([m for m in msgs if m.partition == p])
    assert whole.data == parts.data
    assert {a.alert_id for a in whole.alerts} == {a.alert_id for a in parts.alerts}


def test_bad_records_are_dead_lettered_and_the_rest_scored() -> None:
    raw = events(50)
    good = records(raw, partitions=1)
    bad = Message("events", 0, len(good), b"\xff\xfe not json")
    h = Harness()
    h.handle([*good, bad])
    assert h.scorer.rejected == 1
    (letter,) = [orjson.loads(d) for d in h.dead]
    assert (letter["partition"], letter["offset"], letter["reason"]) == (0, len(good), "invalid_json")
    assert letter["position"] == f"kafka:events/0@{len(good)}"
    assert len(h.data) == len({Event.of(e).principal.key for e in raw})
