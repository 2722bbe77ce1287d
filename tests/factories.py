"""Factories for CloudTrail events in tests: real field shapes, only what a test varies."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from detector.alert import Alert
from detector.event import Event

_ids = itertools.count()
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC).timestamp()  # a Monday, 09:00 UTC


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iam_user(name: str = "alice", account: str = "111122223333") -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDA" + name.upper(),
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": "AKIA" + name.upper(),
        "userName": name,
    }


def assumed_role(role: str, session: str, account: str = "111122223333", path: str = "") -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": f"arn:aws:iam::{account}:role/{path}{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2026-01-05T08:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def cloudtrail(
    name: str = "DescribeInstances",
    source: str = "ec2.amazonaws.com",
    t: float = T0,
    identity: dict[str, Any] | None = None,
    ip: str = "203.0.113.10",
    ua: str = "aws-cli/2.13.5 Python/3.11.4 Linux/6.1 exe/x86_64",
    region: str = "us-east-1",
    error: str | None = None,
    bucket: str | None = None,
    key: str | None = None,
    bytes_out: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity if identity is not None else iam_user(),
        "eventTime": iso(t),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": None,
        "responseElements": None,
        "requestID": f"req-{next(_ids)}",
        "eventID": f"00000000-0000-4000-8000-{next(_ids):012d}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
    }
    if error:
        ev["errorCode"] = error
        ev["errorMessage"] = "denied"
    if bucket is not None:
        ev["requestParameters"] = {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3.amazonaws.com"}
        ev["resources"] = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"}]
        ev["managementEvent"] = False
        ev["eventCategory"] = "Data"
    if bytes_out is not None:
        ev["additionalEventData"] = {"bytesTransferredOut": bytes_out, "bytesTransferredIn": 0}
    ev.update(extra)
    return ev


def event(**kw: Any) -> Event:
    return Event.of(cloudtrail(**kw))


def get_object(bucket: str, key: str, t: float, nbytes: int = 50_000, **kw: Any) -> Event:
    return event(name="GetObject", source="s3.amazonaws.com", t=t, bucket=bucket, key=key, bytes_out=nbytes, **kw)


class ListSink:
    """An in-memory alert sink (the Sink protocol) for runtime tests."""

    name = "list"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def add(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
