"""CloudTrail -> CloudWatch Logs -> subscription filter -> Kinesis -> detector, on moto.

moto's subscription filter delivers each ``PutLogEvents`` call to the stream as one gzipped
``DATA_MESSAGE`` record, as AWS does; the detector must decode it and alert. A
``CONTROL_MESSAGE`` (AWS sends one when the filter is created) is recognised and skipped."""

from __future__ import annotations

import gzip
import time
import uuid
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from detector.ingest import Ingest
from detector.metrics import Metrics
from detector.pipeline import Detector
from detector.runtime.local import Runtime
from detector.settings import Settings
from detector.sources.kinesis import KinesisSource
from tests.factories import ListSink, cloudtrail, iam_user


def test_cloudwatch_logs_subscription_to_kinesis_raises_an_alert(moto_server: Any, boto_client_factory: Any) -> None:
    kinesis = boto_client_factory("kinesis", moto_server)
    logs = boto_client_factory("logs", moto_server)
    suffix = uuid.uuid4().hex[:8]
    stream = f"cwl-trail-{suffix}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    group = f"aws-cloudtrail-logs-{suffix}"
    log_stream = "111122223333_CloudTrail_us-east-1"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=log_stream)
    logs.put_subscription_filter(
        logGroupName=group,
        filterName="to-detector",
        filterPattern="",
        destinationArn=arn,
        roleArn="arn:aws:iam::123456789012:role/cwl-to-kinesis",
    )
    # what AWS sends first when a subscription filter is created
    control = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": 0, "message": "CWL CONTROL MESSAGE"}],
    }
    kinesis.put_record(StreamName=stream, Data=gzip.compress(orjson.dumps(control)), PartitionKey="c")

    settings = Settings.model_validate({"source": {"kind": "kinesis", "stream": stream}})
    metrics = Metrics.create(CollectorRegistry())
    source = KinesisSource(
        stream,
        region="us-east-1",
        endpoint_url=moto_server.endpoint,
        start="TRIM_HORIZON",
        poll_interval_s=0.1,
        metrics=metrics,
    )
    sink = ListSink()
    ingest = Ingest(metrics)
    runtime = Runtime(settings, source, [sink], Detector(settings, None, {}, metrics=metrics), ingest, None, metrics)
    source.start({})
    try:
        bob = iam_user("bob")
        t0 = time.time() - 3600  # CloudWatch Logs refuses events older than 14 days
        history = [cloudtrail(name="DescribeInstances", t=t0 + i * 60, identity=bob) for i in range(20)]
        attack = cloudtrail(
            name="PutBucketPolicy", source="s3.amazonaws.com", t=t0 + 1300, identity=bob, bucket="payroll"
        )
        for batch in (history[:10], [*history[10:], attack]):
            logs.put_log_events(
                logGroupName=group,
                logStreamName=log_stream,
                logEvents=[{"timestamp": int(ev_time(e) * 1000), "message": orjson.dumps(e).decode()} for e in batch],
            )
        deadline = time.monotonic() + 20
        while not sink.alerts and time.monotonic() < deadline:
            runtime.step()
    finally:
        source.stop()
    assert [(a.kind, a.context["event_name"]) for a in sink.alerts] == [("sensitive_api_first_use", "PutBucketPolicy")]
    assert ingest.events == 21 and ingest.skipped["control_message"] == 1
    assert not ingest.rejected
    assert metrics.processing_seconds._sum.get() > 0  # record read -> alert handed over was measured


def ev_time(event: dict[str, Any]) -> float:
    from detector.decode import parse_event_time

    return parse_event_time(event["eventTime"])
