"""The S3 source against moto: backfill by account, region and time range; follow mode with a
listing watermark (late-landing keys included); SQS event notifications deleted only on commit;
and the runtime turning a backfill into alerts."""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import time
import uuid
from typing import Any

import orjson
import pytest

from detector.errors import SourceError
from detector.ingest import Ingest
from detector.pipeline import Detector
from detector.runtime.local import Runtime
from detector.settings import Settings
from detector.sources.base import Record
from detector.sources.s3follow import READ_SUFFIX, S3Source, delivery_time, objects_in_message
from tests.factories import ListSink, cloudtrail, iam_user

DAY0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp()
ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1", "eu-west-1")
_n = itertools.count()


def trail_key(account: str, region: str, t: float, suffix: str = "") -> str:
    day = time.strftime("%Y/%m/%d", time.gmtime(t))
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(t))
    unique = suffix or f"{next(_n):016d}"
    return f"AWSLogs/{account}/CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz"


def put_trail_file(s3: Any, bucket: str, key: str, events: list[dict[str, Any]]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(orjson.dumps({"Records": events})))


def bucket_with_history(s3: Any) -> tuple[str, dict[str, str]]:
    """2 accounts x 2 regions x 3 days x 2 files; returns the bucket and key -> event tag."""
    bucket = f"trail-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    tags = {}
    for acct, region, day, hour in itertools.product(ACCOUNTS, REGIONS, range(3), (6, 18)):
        t = DAY0 + day * 86400 + hour * 3600
        key = trail_key(acct, region, t)
        tag = f"{acct[:3]}-{region}-d{day}-h{hour}"
        put_trail_file(s3, bucket, key, [cloudtrail(name=tag, t=t - 300, region=region)])
        tags[key] = tag
    # digests sit beside the logs and are never read as events
    s3.put_object(
        Bucket=bucket, Key=f"AWSLogs/{ACCOUNTS[0]}/CloudTrail-Digest/us-east-1/2026/01/05/x.json.gz", Body=b"{}"
    )
    return bucket, tags


def drain(src: S3Source, want: int | None = None, timeout_s: float = 15.0) -> list[Record]:
    out: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out.extend(src.poll(100, 0.2))
        if (want is None and src.exhausted) or (want is not None and len(out) >= want):
            break
    return out


def tags_of(records: list[Record]) -> list[str]:
    return [ev["eventName"] for r in records for ev in orjson.loads(gzip.decompress(r.data))["Records"]]


def make_source(bucket: str, endpoint: str, **kw: Any) -> S3Source:
    return S3Source(bucket, region="us-east-1", endpoint_url=endpoint, poll_interval_s=0.2, **kw)


def test_backfill_by_account_region_and_time_range(moto_server: Any, boto_client_factory: Any) -> None:
    s3 = boto_client_factory("s3", moto_server)
    bucket, _ = bucket_with_history(s3)
    src = make_source(
        bucket,
        moto_server.endpoint,
        accounts=(ACCOUNTS[1],),
        start_timestamp=dt.datetime(2026, 1, 6, tzinfo=dt.UTC),
        end_timestamp=dt.datetime(2026, 1, 7, tzinfo=dt.UTC),
        follow=False,
    )
    assert not src.live  # a pure backfill is finite: batched by count, like replay
    src.start({})
    got = drain(src)
    assert src.exhausted
    assert sorted(tags_of(got)) == sorted(f"444-{r}-d1-h{h}" for r in REGIONS for h in (6, 18))
    times = [delivery_time(r.cursor[1]) or 0.0 for r in got]
    assert times == sorted(times)  # regions are merged in delivery order, not one after the other
    positions = src.positions()
    partitions = {f"AWSLogs/{ACCOUNTS[1]}/CloudTrail/{r}/" for r in REGIONS}
    # each partition's last key, and the keys returned inside the relist margin behind it
    assert set(positions) == partitions | {p + READ_SUFFIX for p in partitions}


def test_follow_lists_new_files_including_late_landing_keys(moto_server: Any, boto_client_factory: Any) -> None:
    s3 = boto_client_factory("s3", moto_server)
    bucket, tags = bucket_with_history(s3)
    src = make_source(bucket, moto_server.endpoint, start="TRIM_HORIZON", follow=True)
    assert src.live
    src.start({})
    try:
        first = drain(src, want=len(tags))
        assert sorted(tags_of(first)) == sorted(tags.values())
        t = DAY0 + 2 * 86400 + 19 * 3600
        put_trail_file(s3, bucket, trail_key(ACCOUNTS[0], "us-east-1", t, "zzzz"), [cloudtrail(name="new-1", t=t)])
        time.sleep(0.5)
        # the same delivery minute, but a key that sorts *before* the one already read
        put_trail_file(s3, bucket, trail_key(ACCOUNTS[0], "us-east-1", t, "aaaa"), [cloudtrail(name="late-2", t=t)])
        more = drain(src, want=2, timeout_s=10)
        assert sorted(tags_of(more)) == ["late-2", "new-1"]
        positions = src.positions()
        assert positions[f"AWSLogs/{ACCOUNTS[0]}/CloudTrail/us-east-1/"].endswith("zzzz.json.gz")
    finally:
        src.stop()
    # a restart resumes at the watermark: the margin behind it is listed again, but the keys it
    # already returned there are skipped (eventID dedup would not catch a quiet partition's)
    again = make_source(bucket, moto_server.endpoint, follow=True)
    again.start(positions)
    try:
        assert drain(again, want=1, timeout_s=3) == []
        t = DAY0 + 2 * 86400 + 19 * 3600
        put_trail_file(s3, bucket, trail_key(ACCOUNTS[0], "us-east-1", t, "bbbb"), [cloudtrail(name="late-3", t=t)])
        assert tags_of(drain(again, want=1, timeout_s=10)) == ["late-3"]  # landed behind the last key
    finally:
        again.stop()


def test_sqs_notifications_are_deleted_only_after_commit(moto_server: Any, boto_client_factory: Any) -> None:
    s3 = boto_client_factory("s3", moto_server)
    sqs = boto_client_factory("sqs", moto_server)
    bucket = f"trail-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=f"trail-files-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    sqs.purge_queue(QueueUrl=queue_url)  # drop the s3:TestEvent
    t = time.time()
    for i in range(3):
        put_trail_file(s3, bucket, trail_key(ACCOUNTS[0], "us-east-1", t, f"f{i}"), [cloudtrail(name=f"q{i}", t=t)])
    src = make_source(bucket, moto_server.endpoint, queue_url=queue_url, visibility_timeout_s=2)
    src.start({})
    try:
        got = drain(src, want=3)
        assert sorted(tags_of(got)) == ["q0", "q1", "q2"]
        # not committed: after the visibility timeout the same files come again (at-least-once;
        # eventID dedup absorbs the repeat)
        redelivered = drain(src, want=3, timeout_s=8)
        assert sorted(tags_of(redelivered)) == ["q0", "q1", "q2"]
        src.commit(src.positions())
    finally:
        src.stop()
    time.sleep(2.5)
    left = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert left["ApproximateNumberOfMessages"] == "0" and left["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_notification_shapes() -> None:
    s3_event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "AWSLogs/1/x+y%3A.json.gz"}},
            }
        ]
    }
    assert objects_in_message(orjson.dumps(s3_event).decode()) == [("b", "AWSLogs/1/x y:.json.gz")]
    via_sns = {"Type": "Notification", "Message": orjson.dumps(s3_event).decode()}
    assert objects_in_message(orjson.dumps(via_sns).decode()) == [("b", "AWSLogs/1/x y:.json.gz")]
    cloudtrail_sns = {"s3Bucket": "b", "s3ObjectKey": ["AWSLogs/1/a.json.gz", "AWSLogs/1/CloudTrail-Digest/d.json.gz"]}
    assert objects_in_message(orjson.dumps(cloudtrail_sns).decode()) == [("b", "AWSLogs/1/a.json.gz")]
    assert objects_in_message('{"Event": "s3:TestEvent"}') == []
    assert objects_in_message("not json") == []


def test_a_missing_bucket_is_one_clear_error(moto_server: Any, aws_env: None) -> None:
    src = make_source("no-such-bucket-here", moto_server.endpoint)
    with pytest.raises(SourceError, match="NoSuchBucket"):
        src.start({})


def test_runtime_backfill_from_s3_alerts(moto_server: Any, boto_client_factory: Any) -> None:
    s3 = boto_client_factory("s3", moto_server)
    bucket = f"trail-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    carol = iam_user("carol")
    for i in range(6):
        t = DAY0 + i * 600
        events = [
            cloudtrail(name="ListBuckets", source="s3.amazonaws.com", t=t - 60 + j, identity=carol) for j in range(5)
        ]
        if i == 5:
            events.append(cloudtrail(name="StopLogging", source="cloudtrail.amazonaws.com", t=t, identity=carol))
        put_trail_file(s3, bucket, trail_key(ACCOUNTS[0], "us-east-1", t + 300), events)
    settings = Settings.model_validate({"source": {"kind": "s3", "bucket": bucket, "follow": False}})
    src = make_source(bucket, moto_server.endpoint, start="TRIM_HORIZON", follow=False)
    sink = ListSink()
    runtime = Runtime(settings, src, [sink], Detector(settings, None, {}), Ingest(), None)
    src.start({})
    deadline = time.monotonic() + 15
    while not runtime.drained and time.monotonic() < deadline:
        runtime.step()
    assert runtime.drained and runtime.ingest.events == 31
    assert [(a.kind, a.context["event_name"]) for a in sink.alerts] == [("sensitive_api_first_use", "StopLogging")]
