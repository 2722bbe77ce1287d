"""Sample events beside each detection: the cases that prove it fires and that it stays quiet.

One JSON file per detection (``<kind>.json``, the alert kind it raises, or ``forest.json``):
who the principal is, the history that gives it a baseline, and cases, each with the events
that must (``"expect": "fires"``) or must not (``"quiet"``) raise that kind once replayed after
the history. ``tests/unit/test_samples.py`` replays every case through the real reader and
detector; reading the file is the quickest way to learn what a detection means.

A spec names only what varies; :func:`records` expands it into CloudTrail records with real
field shapes (``requestParameters.bucketName``, ``additionalEventData.bytesTransferredOut``...):

* ``history``: ``[{"days": 6, "hours": [9, 17], "every_s": 600, "name": "GetObject", "bucket": "b"}]``
  repeats an event every ``every_s`` within those UTC hours on each of ``days`` days;
* a case: ``{"at": "6d 10:00", "events": [{"name": "GetObject", "count": 600, "every_s": 0.5}]}``
  starts at that day and time and plays its events one spec after the other.

Every event field defaults to the file's ``usual`` (network, client, region).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp()  # day 0: a Monday, 00:00 UTC
_DAY = 86400.0


def kinds() -> list[str]:
    """The detections that have samples."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".json"))


def load(kind: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files(__name__).joinpath(f"{kind}.json").read_text())
    return data


def at(spec: str) -> float:
    """``"6d 10:30"`` -> epoch seconds: day 6 after ``T0``, 10:30 UTC."""
    day, clock = spec.split()
    h, m = clock.split(":")
    return T0 + int(day.rstrip("d")) * _DAY + int(h) * 3600 + int(m) * 60


def _record(sample: dict[str, Any], spec: dict[str, Any], t: float, n: int) -> dict[str, Any]:
    usual = sample["usual"]
    name = spec["name"]
    service = spec.get("source", "s3" if "bucket" in spec else "ec2")
    bucket = spec.get("bucket")
    identity = spec.get("identity", sample["identity"])
    eid = hashlib.sha256(f"{sample['detection']}|{name}|{t}|{n}".encode()).hexdigest()
    ev: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": spec.get("region", usual["region"]),
        "sourceIPAddress": spec.get("ip", usual["ip"]),
        "userAgent": spec.get("ua", usual["ua"]),
        "requestParameters": None,
        "responseElements": None,
        "eventID": f"{eid[:8]}-{eid[8:12]}-4{eid[13:16]}-8{eid[17:20]}-{eid[20:32]}",
        "readOnly": name.startswith(("Get", "List", "Describe", "Head")),
        "eventType": "AwsApiCall",
        "managementEvent": bucket is None,
        "recipientAccountId": identity.get("accountId", "111122223333"),
        "eventCategory": "Management" if bucket is None else "Data",
    }
    if "error" in spec:
        ev["errorCode"], ev["errorMessage"] = spec["error"], "denied"
    if bucket is not None:
        key = f"{spec.get('prefix', 'data')}/{n:06d}.parquet"
        ev["requestParameters"] = {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3.amazonaws.com"}
        ev["resources"] = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"}]
        if name == "GetObject":
            ev["additionalEventData"] = {"bytesTransferredOut": spec.get("bytes", 40_000), "bytesTransferredIn": 0}
    return ev


def history(sample: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The baseline-building records of ``sample``, in event-time order."""
    out: list[tuple[float, dict[str, Any]]] = []
    for spec in sample["history"]:
        lo, hi = spec.get("hours", [0, 24])
        for d in range(spec.get("first_day", 0), spec["days"]):
            t = T0 + d * _DAY + lo * 3600 + spec.get("offset_s", 0)
            n = 0
            while t < T0 + d * _DAY + hi * 3600:
                out.append((t, _record(sample, spec, t, d * 100_000 + n)))
                t += spec["every_s"]
                n += 1
    out.sort(key=lambda pair: pair[0])
    yield from (r for _, r in out)


def case_records(sample: dict[str, Any], case: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of one case, from its ``at`` on."""
    t = at(case["at"])
    out: list[dict[str, Any]] = []
    for spec in case["events"]:
        for _ in range(spec.get("count", 1)):
            out.append(_record(sample, spec, t, 900_000 + len(out)))
            t += spec.get("every_s", 1.0)
        t += spec.get("then_wait_s", 0.0)
    return out
