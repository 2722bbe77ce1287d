"""Bulk exfiltration: thousands of objects (GBs) from a sensitive bucket the victim never read,
in minutes, as ``aws s3 sync`` does.

Exercises the ``getobject_burst`` / ``exfiltration`` rules (a burst above floor and own peak,
corroborated by the new bucket or network) and the forest's ``reads_10m``, ``bytes_1h``,
``new_bucket_reads``. Quiet: the victim's own network and tool, at its usual hours.
Intensity: objects read in the burst.
"""

from __future__ import annotations

from detector.simulate.records import _object_key, _s3, _size
from detector.simulate.scenarios.base import (
    HUMANS,
    Attack,
    Intensity,
    Out,
    Scenario,
    attack_caller,
    is_human,
    pick_time,
    unread_bucket,
    usual_hours,
)
from detector.simulate.world import _ATTACK_UAS


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    n = a.count(10)
    span = max(120.0, n / 5.0) * rng.uniform(0.8, 1.2)  # ~5 objects/s, as s3 sync does
    t = pick_time(rng, p, span + 600, pr.tz, usual_hours(pr) if is_human(pr) or a.quiet else None)
    c = attack_caller(rng, p, pr, t, new_ip=not a.quiet, ua="" if a.quiet else rng.choice(_ATTACK_UAS[1:]))
    bucket = unread_bucket(rng, w, pr, sensitive=True)
    for page in range(n // 1000 + 1):
        t += rng.uniform(0.3, 1.5)
        prefix = "" if page == 0 else bucket.shape + "/"
        out.append((t, _s3(rng, c, t, "ListObjects", bucket, prefix, command="s3.sync")))
    for i in range(n):
        t += rng.expovariate(n / span)
        out.append(
            (
                t,
                _s3(
                    rng,
                    c,
                    t,
                    "GetObject",
                    bucket,
                    _object_key(rng, bucket, t, i),
                    size=int(_size(rng, bucket) * 1.5),
                    command="s3.sync",
                ),
            )
        )
    return out


SCENARIO = Scenario(
    name="bulk_exfiltration",
    summary="a principal suddenly downloads thousands of objects (GBs) from a sensitive bucket it never reads",
    detection="rules: getobject_burst, exfiltration; forest: reads_10m, bytes_1h, new_bucket_reads",
    intensity=Intensity(150, 3000, 8000, "objects read in minutes"),
    victims=((*HUMANS, "ec2_instance", "lambda"), ()),
    build=build,
)
