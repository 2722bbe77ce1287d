"""A person's access key used from a cloud provider's address (another AWS region, GCP, Azure),
in a region they do not use, with an SDK client instead of their CLI or browser: a leaked key
run from a rented machine. A mix of whoami, List/Describe calls and some reads of their buckets.

Exercises the forest's ``new_network``, ``new_client``, ``new_region`` on a *person* (the
person's class is sticky: an SDK user agent does not turn them into automation). Quiet: at the
person's usual hours, calling only APIs they use. Intensity: API calls.
"""

from __future__ import annotations

from detector.simulate.records import _mgmt, _object_key, _s3, _size
from detector.simulate.scenarios.base import (
    Attack,
    Intensity,
    Out,
    Scenario,
    attack_caller,
    cloud_ip,
    pick_time,
    usual_hours,
)
from detector.simulate.world import _SDK_UAS

_LOOK = (
    "sts:GetCallerIdentity",
    "s3:ListBuckets",
    "ec2:DescribeInstances",
    "iam:ListUsers",
    "iam:ListRoles",
    "ec2:DescribeRegions",
    "lambda:ListFunctions20150331",
    "secretsmanager:ListSecrets",
)


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    n = a.count(3)
    span = max(300.0, n * rng.uniform(15, 40))
    t = pick_time(rng, p, span + 600, pr.tz, usual_hours(pr) if a.quiet else (0.0, 5.0))
    ip, region = cloud_ip(rng, pr.region)
    c = attack_caller(rng, p, pr, t, new_ip=True, ip=ip, ua=rng.choice(_SDK_UAS[1:]))
    c.region = region
    look = [k for k in pr.apis if k.split(":")[1].startswith(("List", "Describe", "Get"))] if a.quiet else list(_LOOK)
    look = look or ["sts:GetCallerIdentity"]
    for i in range(n):
        t += rng.expovariate(n / span)
        if pr.buckets and rng.random() < 0.3:
            bucket = w.buckets[rng.choice(pr.buckets)]
            out.append(
                (t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i), size=_size(rng, bucket)))
            )
        else:
            key = look[0] if i == 0 else rng.choice(look)
            out.append((t, _mgmt(rng, w, c, t, key, region=region, deny=key.startswith("iam") and rng.random() < 0.5)))
    return out


SCENARIO = Scenario(
    name="key_from_cloud_region",
    summary="a person's access key used from a cloud-provider address in another region with an SDK client",
    detection="forest: new_network, new_client, new_region (a person's sticky class keeps its own baseline)",
    intensity=Intensity(8, 40, 300, "API calls"),
    victims=(("human_iam_user", "human_sso"), ()),
    build=build,
)
