"""Kinesis error paths that emulators cannot produce on demand, with botocore's Stubber:
throttling (back off, then carry on), an expired iterator (re-acquire after the last record),
fatal errors by code, and missing credentials."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from detector.errors import SourceError
from detector.sources.base import Record
from detector.sources.kinesis import KinesisSource

STREAM = "trail"
SHARD = "shardId-000000000000"


def client() -> Any:
    return boto3.client(
        "kinesis", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def record(seq: str) -> dict[str, Any]:
    return {
        "SequenceNumber": seq,
        "Data": b'{"eventVersion": "1.09"}',
        "PartitionKey": "p",
        "ApproximateArrivalTimestamp": dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
    }


def shards() -> dict[str, Any]:
    return {
        "Shards": [
            {
                "ShardId": SHARD,
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"},
                "SequenceNumberRange": {"StartingSequenceNumber": "0"},
            }
        ]
    }


def drain(src: KinesisSource, want: int, timeout_s: float = 5.0) -> list[Record]:
    out: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < want and time.monotonic() < deadline:
        out.extend(src.poll(100, 0.05))
    return out


def test_throttling_backs_off_and_an_expired_iterator_resumes_after_the_last_record() -> None:
    c = client()
    stub = Stubber(c)
    stub.add_response("list_shards", shards(), {"StreamName": STREAM})
    stub.add_response(
        "get_shard_iterator",
        {"ShardIterator": "it-1"},
        {"StreamName": STREAM, "ShardId": SHARD, "ShardIteratorType": "TRIM_HORIZON"},
    )
    stub.add_client_error("get_records", "ProvisionedThroughputExceededException", http_status_code=400)
    stub.add_client_error("get_records", "ProvisionedThroughputExceededException", http_status_code=400)
    stub.add_response(
        "get_records",
        {"Records": [record("1"), record("2")], "NextShardIterator": "it-2", "MillisBehindLatest": 0},
        {"ShardIterator": "it-1", "Limit": 10_000},
    )
    stub.add_client_error("get_records", "ExpiredIteratorException", http_status_code=400)
    stub.add_response(
        "get_shard_iterator",
        {"ShardIterator": "it-3"},
        {
            "StreamName": STREAM,
            "ShardId": SHARD,
            "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
            "StartingSequenceNumber": "2",
        },
    )
    # the shard closes after one more record: no NextShardIterator
    stub.add_response(
        "get_records", {"Records": [record("3")], "MillisBehindLatest": 0}, {"ShardIterator": "it-3", "Limit": 10_000}
    )
    stub.add_response("list_shards", shards(), {"StreamName": STREAM})  # re-listed when a shard closes
    stub.activate()
    src = KinesisSource(STREAM, client=c, start="TRIM_HORIZON", backoff_base_s=0.01, shard_refresh_s=3600)
    started = time.monotonic()
    src.start({})
    try:
        got = drain(src, 3)
        assert [r.cursor for r in got] == [(SHARD, "1"), (SHARD, "2"), (SHARD, "3")]
        deadline = time.monotonic() + 5
        while src.positions().get(SHARD) != "END" and time.monotonic() < deadline:
            src.poll(100, 0.05)
        assert src.positions() == {SHARD: "END"}
        assert time.monotonic() - started >= 0.2  # the two throttles were waited out
        deadline = time.monotonic() + 5
        while True:
            try:
                stub.assert_no_pending_responses()
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        src.stop()


def test_a_deleted_stream_stops_the_run_with_one_line() -> None:
    c = client()
    stub = Stubber(c)
    stub.add_response("list_shards", shards(), {"StreamName": STREAM})
    stub.add_response("get_shard_iterator", {"ShardIterator": "it-1"})
    stub.add_client_error("get_records", "ResourceNotFoundException", "Stream trail not found", http_status_code=400)
    stub.activate()
    src = KinesisSource(STREAM, client=c, start="LATEST", shard_refresh_s=3600)
    src.start({})
    try:
        with pytest.raises(SourceError, match="the stream does not exist"):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                src.poll(100, 0.05)
        assert "stream does not exist" in src.status
    finally:
        src.stop()


def test_missing_credentials_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    src = KinesisSource(STREAM, region="us-east-1", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(SourceError, match="no AWS credentials found"):
        src.start({})


class _TwoShards:
    """A fake Kinesis client: two shards with a backlog each (MillisBehindLatest > 0 until the last
    page); shard 1 answers its first GetRecords ``slow_s`` late, as a busy or throttled shard does."""

    def __init__(self, pages: dict[str, list[list[int]]], slow_s: float) -> None:
        self.pages = pages  # shard -> pages of arrival seconds
        self.slow_s = slow_s

    def list_shards(self, **kw: Any) -> dict[str, Any]:
        return {
            "Shards": [
                {"ShardId": sid, "HashKeyRange": {}, "SequenceNumberRange": {"StartingSequenceNumber": "0"}}
                for sid in self.pages
            ]
        }

    def get_shard_iterator(self, ShardId: str, **kw: Any) -> dict[str, Any]:
        return {"ShardIterator": f"{ShardId}|0"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        sid, page = ShardIterator.split("|")
        n = int(page)
        if sid.endswith("1") and n == 0:
            time.sleep(self.slow_s)
        pages = self.pages[sid]
        if n >= len(pages):
            return {"Records": [], "NextShardIterator": ShardIterator, "MillisBehindLatest": 0}
        records = [
            {
                "SequenceNumber": f"{t:06d}",
                "Data": b"{}",
                "PartitionKey": "p",
                "ApproximateArrivalTimestamp": dt.datetime.fromtimestamp(1_767_600_000 + t, dt.UTC),
            }
            for t in pages[n]
        ]
        behind = 0 if n == len(pages) - 1 else 60_000
        return {"Records": records, "NextShardIterator": f"{sid}|{n + 1}", "MillisBehindLatest": behind}


def test_kinesis_kill_9_shards_are_merged_in_arrival_order_while_catching_up() -> None:
    # bench/probes/kinesis_kill.py: with two shards read independently, one shard's backlog was
    # scored before the other's, in an order that depended on thread timing: two clean runs of one
    # stream, and a run killed and restarted, ended with different baselines and alert IDs
    pages = {"shardId-000000000000": [[1, 3, 5], [7, 9, 11]], "shardId-000000000001": [[2, 4, 6], [8, 10, 12]]}
    src = KinesisSource(
        STREAM, client=_TwoShards(pages, slow_s=0.5), start="TRIM_HORIZON", poll_interval_s=0.05, shard_refresh_s=60
    )
    src.start({})
    try:
        got = drain(src, 12, timeout_s=10)
    finally:
        src.stop()
    assert [int(r.cursor[1]) for r in got] == list(range(1, 13))
    assert src.positions() == {"shardId-000000000000": "000011", "shardId-000000000001": "000012"}


def test_kinesis_a_shard_waited_for_does_not_let_the_others_backlog_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # while the merge waits for the slow shard, the fast one's reader must block on its own
    # bounded queue, not hand its whole backlog over to be held in memory
    from detector.sources import kinesis

    monkeypatch.setattr(kinesis, "MIN_CALL_INTERVAL_S", 0.0)  # the fast shard reads as fast as it can
    pages = {"shardId-000000000000": [[2 * i + 1] for i in range(200)], "shardId-000000000001": [[2], [4]]}
    client = _TwoShards(pages, slow_s=1.5)
    src = KinesisSource(
        STREAM, client=client, start="TRIM_HORIZON", poll_interval_s=0.05, shard_refresh_s=60, max_queued_calls=8
    )
    src.start({})
    try:
        first = drain(src, 1, timeout_s=1.0)  # shard 1 has not answered yet: nothing may come
        held = sum(len(s.head) + s.queue.qsize() for s in src._shards.values() if s.queue is not None)
        got = first + drain(src, 3, timeout_s=10)
    finally:
        src.stop()
    assert first == []
    assert held <= 8 + 2  # its queue's share of max_queued_calls and one batch in hand, not 200
    assert [int(r.cursor[1]) for r in got[:3]] == [1, 2, 3]
