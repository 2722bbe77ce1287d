"""Sensitive configuration changes: a bucket made public, its public-access block removed, a
snapshot shared with an outside account, the trail stopped or deleted; each looked at first.

Exercises ``sensitive_api_first_use``. Quiet: the victim's network and tool, usual hours.
Intensity: how many changes (1-5).
"""

from __future__ import annotations

from typing import Any

from detector.simulate.ids import _uuid
from detector.simulate.plan import _EXTERNAL_ACCOUNT
from detector.simulate.records import _mgmt
from detector.simulate.scenarios.base import (
    HUMANS,
    Attack,
    Intensity,
    Out,
    Scenario,
    attack_caller,
)
from detector.simulate.world import _BUCKETS


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    t = a.start(1800)
    c = attack_caller(rng, p, pr, t, new_ip=not a.quiet and rng.random() < 0.5)
    acct = pr.account_id
    bucket = rng.choice([b for b in _BUCKETS if b.account_id == acct and b.shape != "trail"])
    trail = w.names[acct].trails[0]
    snapshot = rng.choice(w.names[acct].snapshots)
    bp = {"bucketName": bucket.name, "Host": bucket.host}
    public = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket.name}/*",
            }
        ],
    }
    changes: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = [
        ("s3:GetBucketPolicy", "s3:PutBucketPolicy", {**bp, "policy": "", "bucketPolicy": public}, None),
        ("s3:GetBucketPublicAccessBlock", "s3:DeleteBucketPublicAccessBlock", {**bp, "publicAccessBlock": ""}, None),
        (
            "ec2:DescribeSnapshots",
            "ec2:ModifySnapshotAttribute",
            {
                "snapshotId": snapshot,
                "attributeType": "CREATE_VOLUME_PERMISSION",
                "createVolumePermission": {"add": {"items": [{"userId": _EXTERNAL_ACCOUNT}]}},
            },
            {"_return": True},
        ),
        ("cloudtrail:GetTrailStatus", "cloudtrail:StopLogging", {"name": trail}, None),
        ("cloudtrail:DescribeTrails", "cloudtrail:DeleteTrail", {"name": trail}, None),
    ]
    for look, change, params, response in rng.sample(changes, min(len(changes), a.count(1))):
        t += rng.uniform(20, 300)
        out.append((t, _mgmt(rng, w, c, t, look)))
        t += rng.uniform(5, 90)
        if response is not None:
            response = {"requestId": _uuid(rng), **response}
        out.append((t, _mgmt(rng, w, c, t, change, params=params, response=response)))
    return out


SCENARIO = Scenario(
    name="sensitive_config_change",
    summary="public bucket policy, public-access block removed, snapshot shared, trail stopped",
    detection="rule: sensitive_api_first_use",
    intensity=Intensity(1, 3, 5, "changes"),
    victims=((*HUMANS, "deploy"), ()),
    build=build,
)
