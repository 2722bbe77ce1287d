"""Smoke tests proving each test server really works: Kinesis on moto and kinesalite, S3 on moto,
the CloudWatch Logs -> Kinesis subscription path on moto, and a Kafka round trip through tansu.

The CloudWatch Logs test pins down what moto delivers, because the end-to-end test depends on it:
one Kinesis record per put_log_events call, the data is the raw gzip of a compact JSON
DATA_MESSAGE envelope (what real AWS sends), roleArn is optional, the filterPattern is NOT applied,
no CONTROL_MESSAGE is sent when the filter is created, and each logEvents[].id is a
process-wide integer counter (real AWS sends a 56-digit string), so decoders must accept both.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid
from typing import Any

import pytest

from tests.services import Service

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_stream_active(kinesis: Any, name: str, timeout_s: float = 15.0) -> str:
    """Poll until the stream is ACTIVE (boto3's stream_exists waiter sleeps 10 s between polls)."""
    deadline = time.monotonic() + timeout_s
    while True:
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            return str(summary["StreamARN"])
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {name} still {summary['StreamStatus']} after {timeout_s}s")
        time.sleep(0.05)


def read_all(kinesis: Any, name: str, expect: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """All records from every shard, from TRIM_HORIZON, polling until `expect` have arrived."""
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    iterators = {
        shard["ShardId"]: kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for shard in shards
    }
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < expect and time.monotonic() < deadline:
        for shard_id, iterator in iterators.items():
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(page["Records"])
            iterators[shard_id] = page["NextShardIterator"]
        if len(records) < expect:
            time.sleep(0.1)
    return records


def report_startup(service: Service) -> None:
    print(f"{service.name} started in {service.startup_s:.2f}s at {service.endpoint}")
    assert service.startup_s < 30


@pytest.mark.parametrize("server", ["moto_server", "kinesalite"])
def test_kinesis_put_and_get_record(server: str, request: pytest.FixtureRequest, boto_client_factory: Any) -> None:
    service: Service = request.getfixturevalue(server)
    report_startup(service)
    kinesis = boto_client_factory("kinesis", service)
    name = unique("smoke")
    kinesis.create_stream(StreamName=name, ShardCount=2)
    wait_stream_active(kinesis, name)

    kinesis.put_record(StreamName=name, Data=b'{"eventName":"GetObject"}', PartitionKey="principal-1")
    kinesis.put_records(
        StreamName=name,
        Records=[{"Data": f"r{i}".encode(), "PartitionKey": f"p{i}"} for i in range(5)],
    )

    records = read_all(kinesis, name, expect=6)
    assert sorted(r["Data"] for r in records) == sorted(
        [b'{"eventName":"GetObject"}', *(f"r{i}".encode() for i in range(5))]
    )
    assert {r["PartitionKey"] for r in records} >= {"principal-1", "p0"}


def test_s3_put_and_get_object(moto_server: Service, boto_client_factory: Any) -> None:
    s3 = boto_client_factory("s3", moto_server)
    bucket = unique("trail-archive")
    key = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/01/x.json.gz"
    body = gzip.compress(json.dumps({"Records": [{"eventName": "ListBuckets"}]}).encode())
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)

    got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert json.loads(gzip.decompress(got)) == {"Records": [{"eventName": "ListBuckets"}]}
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="AWSLogs/")["Contents"]
    assert [o["Key"] for o in listed] == [key]


def test_cloudwatch_logs_subscription_delivers_gzip_to_kinesis(moto_server: Service, boto_client_factory: Any) -> None:
    kinesis = boto_client_factory("kinesis", moto_server)
    logs = boto_client_factory("logs", moto_server)
    stream = unique("cwl-dest")
    group = unique("aws-cloudtrail-logs")
    log_stream = "123456789012_CloudTrail_us-east-1"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = wait_stream_active(kinesis, stream)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=log_stream)
    logs.put_subscription_filter(
        logGroupName=group,
        filterName="to-detector",
        filterPattern='{ $.eventSource = "s3.amazonaws.com" }',  # moto ignores it: see module doc
        destinationArn=stream_arn,
        roleArn="arn:aws:iam::123456789012:role/CWLtoKinesis",  # optional in moto, required by AWS
    )

    events = [
        {"eventVersion": "1.08", "eventSource": "s3.amazonaws.com", "eventName": "GetObject"},
        {"eventVersion": "1.08", "eventSource": "iam.amazonaws.com", "eventName": "CreateUser"},
    ]
    now_ms = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=log_stream,
        logEvents=[{"timestamp": now_ms + i, "message": json.dumps(e)} for i, e in enumerate(events)],
    )

    records = read_all(kinesis, stream, expect=1)
    assert len(records) == 1, "moto sends one record per put_log_events call, and no CONTROL_MESSAGE"
    data = records[0]["Data"]
    assert data[:2] == b"\x1f\x8b", "record data is raw gzip, as from real CloudWatch Logs"
    envelope = json.loads(gzip.decompress(data))
    assert envelope["messageType"] == "DATA_MESSAGE"
    assert envelope["logGroup"] == group
    assert envelope["logStream"] == log_stream
    assert envelope["owner"] == "123456789012"
    assert envelope["subscriptionFilters"] == ["to-detector"]
    assert [json.loads(e["message"]) for e in envelope["logEvents"]] == events  # pattern not applied
    assert [e["timestamp"] for e in envelope["logEvents"]] == [now_ms, now_ms + 1]
    assert all(isinstance(e["id"], int | str) for e in envelope["logEvents"])


def test_kafka_produce_and_consume(kafka_broker: Service) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    report_startup(kafka_broker)
    topic = unique("alerts")
    sent = [(f"k{i}".encode(), json.dumps({"n": i}).encode()) for i in range(10)]

    async def round_trip() -> list[tuple[bytes | None, bytes | None]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.endpoint)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
            assert topic in await admin.list_topics()
        finally:
            await admin.close()

        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.endpoint)
        await producer.start()
        try:
            for key, value in sent:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker.endpoint,
            group_id=unique("smoke"),
            auto_offset_reset="earliest",
            # tansu completes a group join only after about session_timeout_ms / 2 (5 s at the
            # default 10 s), so keep it short here; Faust workers will see the same delay.
            session_timeout_ms=2000,
            heartbeat_interval_ms=300,
        )
        await consumer.start()
        received: list[tuple[bytes | None, bytes | None]] = []
        try:
            while len(received) < len(sent):
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), timeout=20)
                received.extend((m.key, m.value) for msgs in batch.values() for m in msgs)
            await consumer.commit()
        finally:
            await consumer.stop()
        return received

    received = asyncio.run(asyncio.wait_for(round_trip(), timeout=60))
    assert sorted(received) == sorted(sent)  # order holds per partition only
