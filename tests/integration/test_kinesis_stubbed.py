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
