"""Mass delete: versioning suspended, then hundreds of DeleteObject calls on one bucket within
minutes (ransomware's habit of making deletions stick).

Exercises ``delete_burst`` and ``sensitive_api_first_use`` (PutBucketVersioning) and the
forest's ``deletes_10m``. Quiet: the victim's network and tool. Intensity: objects deleted.
"""

from __future__ import annotations

from detector.simulate.records import _mgmt, _object_key, _s3
from detector.simulate.scenarios.base import (
    HUMANS,
    Attack,
    Intensity,
    Out,
    Scenario,
    attack_caller,
)
from detector.simulate.world import _ATTACK_UAS, _BUCKETS


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    t = a.start(1800)
    c = attack_caller(rng, p, pr, t, new_ip=not a.quiet, ua="" if a.quiet else _ATTACK_UAS[1])
    bucket = (
        w.buckets[pr.write_buckets[0]]
        if pr.write_buckets
        else w.buckets[rng.choice([b for b in _BUCKETS if b.account_id == pr.account_id and b.shape != "trail"]).name]
    )
    out.append((t, _s3(rng, c, t, "ListObjects", bucket, "")))
    if rng.random() < 0.7:  # ransomware habit: make the deletions stick
        bp = {"bucketName": bucket.name, "Host": bucket.host}
        t += rng.uniform(3, 30)
        out.append((t, _mgmt(rng, w, c, t, "s3:GetBucketVersioning", params={**bp, "versioning": ""})))
        t += rng.uniform(3, 30)
        suspend = {"Status": "Suspended", "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}
        out.append(
            (
                t,
                _mgmt(
                    rng,
                    w,
                    c,
                    t,
                    "s3:PutBucketVersioning",
                    params={**bp, "versioning": "", "VersioningConfiguration": suspend},
                ),
            )
        )
    n = a.count(5)
    span = max(60.0, n / 1.5) * rng.uniform(0.8, 1.2)
    for i in range(n):
        t += rng.expovariate(n / span)
        out.append((t, _s3(rng, c, t, "DeleteObject", bucket, _object_key(rng, bucket, t, i))))
    return out


SCENARIO = Scenario(
    name="mass_delete",
    summary="hundreds of DeleteObject calls on one bucket within minutes, versioning suspended first",
    detection="rules: delete_burst, sensitive_api_first_use; forest: deletes_10m",
    intensity=Intensity(40, 500, 2000, "objects deleted"),
    victims=((*HUMANS, "ec2_instance", "lambda"), ()),
    build=build,
)
