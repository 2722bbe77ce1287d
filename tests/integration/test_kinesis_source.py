"""The Kinesis source against kinesalite: every shard read, resharding followed (split and merge,
parents drained before children), resume after checkpointed positions, start positions, and a
missing stream as one clear error."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from detector.errors import SourceError
from detector.metrics import Metrics
from detector.sources.base import Record
from detector.sources.kinesis import END, KinesisSource
from tests.factories import cloudtrail

HALF = 2**127


def make_stream(kinesis: Any, shards: int = 2) -> str:
    name = f"trail-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


def put(kinesis: Any, stream: str, tags: list[str], hash_key: int) -> None:
    """One CloudTrail event per record; its eventName carries ``tag`` so tests can follow it."""
    records = [
        {
            "Data": orjson.dumps(cloudtrail(name=tag)),
            "PartitionKey": "p",
            "ExplicitHashKey": str(hash_key),
        }
        for tag in tags
    ]
    resp = kinesis.put_records(StreamName=stream, Records=records)
    assert resp["FailedRecordCount"] == 0


def read_until(source: KinesisSource, want: int, timeout_s: float = 20.0) -> list[Record]:
    out: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < want and time.monotonic() < deadline:
        out.extend(source.poll(1000, 0.2))
    return out


def tag(r: Record) -> str:
    return str(orjson.loads(r.data)["eventName"])


def shard_of(kinesis: Any, stream: str) -> Callable[[str], dict[str, Any]]:
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=stream)["Shards"]}
    return shards.__getitem__


def source(stream: str, endpoint: str, **kw: Any) -> KinesisSource:
    kw.setdefault("start", "TRIM_HORIZON")
    return KinesisSource(
        stream,
        region="us-east-1",
        endpoint_url=endpoint,
        poll_interval_s=0.1,
        shard_refresh_s=0.3,
        **kw,
    )


def test_reads_all_shards_and_follows_a_split_and_a_merge(kinesalite: Any, boto_client_factory: Any) -> None:
    kinesis = boto_client_factory("kinesis", kinesalite)
    stream = make_stream(kinesis, shards=2)
    put(kinesis, stream, [f"A{i}" for i in range(30)], 1)
    put(kinesis, stream, [f"B{i}" for i in range(30)], HALF + 1)
    m = Metrics.create(CollectorRegistry())
    src = source(stream, kinesalite.endpoint, metrics=m)
    src.start({})
    try:
        first = read_until(src, 60)
        assert sorted(tag(r) for r in first) == sorted([f"A{i}" for i in range(30)] + [f"B{i}" for i in range(30)])
        assert {r.cursor[0] for r in first} == {"shardId-000000000000", "shardId-000000000001"}
        assert m.millis_behind_latest.labels("shardId-000000000000")._value.get() >= 0

        # split shard 0 in two, then write to both halves of its range
        kinesis.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(HALF // 2))
        time.sleep(0.2)
        put(kinesis, stream, [f"C{i}" for i in range(10)], 5)
        put(kinesis, stream, [f"D{i}" for i in range(10)], HALF // 2 + 5)
        split = read_until(src, 20)
        assert sorted(tag(r) for r in split) == sorted([f"C{i}" for i in range(10)] + [f"D{i}" for i in range(10)])
        children = {r.cursor[0] for r in split}
        assert len(children) == 2 and "shardId-000000000000" not in children
        parent_of = shard_of(kinesis, stream)
        assert all(parent_of(c)["ParentShardId"] == "shardId-000000000000" for c in children)
        deadline = time.monotonic() + 10
        while src.positions().get("shardId-000000000000") != END and time.monotonic() < deadline:
            src.poll(1000, 0.2)
        assert src.positions()["shardId-000000000000"] == END

        # merge the two children back: their records must all come before the merged shard's
        a, b = sorted(children)
        kinesis.merge_shards(StreamName=stream, ShardToMerge=a, AdjacentShardToMerge=b)
        time.sleep(0.2)
        put(kinesis, stream, [f"E{i}" for i in range(10)], 7)
        merged = read_until(src, 10)
        assert sorted(tag(r) for r in merged) == sorted(f"E{i}" for i in range(10))
        new = {r.cursor[0] for r in merged}
        assert len(new) == 1
        info = shard_of(kinesis, stream)(next(iter(new)))
        assert {info["ParentShardId"], info["AdjacentParentShardId"]} == {a, b}
        positions = src.positions()
        assert positions[a] == END and positions[b] == END
    finally:
        src.stop()


def test_resumes_after_checkpointed_positions(kinesalite: Any, boto_client_factory: Any) -> None:
    kinesis = boto_client_factory("kinesis", kinesalite)
    stream = make_stream(kinesis, shards=2)
    put(kinesis, stream, [f"old{i}" for i in range(20)], 1)
    put(kinesis, stream, [f"old{i}" for i in range(20, 40)], HALF + 1)
    src = source(stream, kinesalite.endpoint)
    src.start({})
    got = read_until(src, 40)
    positions = src.positions()
    src.stop()
    assert len(got) == 40 and len(positions) == 2

    put(kinesis, stream, ["new0", "new1"], 1)
    put(kinesis, stream, ["new2"], HALF + 1)
    again = source(stream, kinesalite.endpoint, start="LATEST")  # positions win over the start setting
    again.start(positions)
    try:
        resumed = read_until(again, 3, timeout_s=10)
        time.sleep(0.5)
        resumed += again.poll(1000, 0.2)
        assert sorted(tag(r) for r in resumed) == ["new0", "new1", "new2"]
    finally:
        again.stop()


def test_latest_skips_history_and_at_timestamp_starts_there(kinesalite: Any, boto_client_factory: Any) -> None:
    kinesis = boto_client_factory("kinesis", kinesalite)
    stream = make_stream(kinesis, shards=1)
    put(kinesis, stream, ["before"], 1)
    time.sleep(1.1)
    middle = dt.datetime.now(dt.UTC)
    time.sleep(1.1)
    put(kinesis, stream, ["after-ts"], 1)
    latest = source(stream, kinesalite.endpoint, start="LATEST")
    latest.start({})
    at = source(stream, kinesalite.endpoint, start="AT_TIMESTAMP", start_timestamp=middle)
    at.start({})
    try:
        time.sleep(0.5)
        put(kinesis, stream, ["live"], 1)
        assert [tag(r) for r in read_until(latest, 1)] == ["live"]
        assert [tag(r) for r in read_until(at, 2)] == ["after-ts", "live"]
    finally:
        latest.stop()
        at.stop()


def test_a_missing_stream_is_one_clear_error(kinesalite: Any, aws_env: None) -> None:
    src = source("no-such-stream", kinesalite.endpoint)
    with pytest.raises(SourceError, match="ResourceNotFoundException: the stream does not exist"):
        src.start({})


def test_a_parent_shard_is_drained_before_its_children(kinesalite: Any, boto_client_factory: Any) -> None:
    kinesis = boto_client_factory("kinesis", kinesalite)
    stream = make_stream(kinesis, shards=1)
    put(kinesis, stream, [f"parent{i}" for i in range(200)], 1)
    kinesis.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(HALF))
    time.sleep(0.2)
    put(kinesis, stream, [f"child{i}" for i in range(50)], 1)
    put(kinesis, stream, [f"child{i}" for i in range(50, 100)], HALF + 1)
    src = source(stream, kinesalite.endpoint, limit=25)  # many small GetRecords calls
    src.start({})
    try:
        got = [tag(r) for r in read_until(src, 300)]
    finally:
        src.stop()
    assert len(got) == 300
    last_parent = max(i for i, t in enumerate(got) if t.startswith("parent"))
    first_child = min(i for i, t in enumerate(got) if t.startswith("child"))
    assert last_parent < first_child


def test_detector_run_on_a_missing_stream_exits_3_with_one_line(kinesalite: Any, aws_env: None, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\nmetrics: {{port: 0}}\n"
        f"source: {{kind: kinesis, stream: nope, region: us-east-1, endpoint_url: '{kinesalite.endpoint}'}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 3
    last = proc.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("detector: kinesis stream nope: ResourceNotFoundException: the stream does not exist")
