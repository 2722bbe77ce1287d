"""A service role reads a bucket it never touched, at a modest steady rate, for hours, from its
usual network with its usual SDK (a compromised workload draining data slowly).

No rule is meant to catch the quiet variant: nothing but the bucket is new and the rate stays
under every burst floor. Exercises the forest's context ages (``new_bucket``,
``new_bucket_reads`` stay high while the bucket is hours old) and ``reads_1h`` against the
role's own peak. Loud: from an outside network. Intensity: objects per hour.
"""

from __future__ import annotations

from detector.simulate.plan import _HOUR
from detector.simulate.records import _object_key, _s3, _size
from detector.simulate.scenarios.base import (
    WORKLOADS,
    Attack,
    Intensity,
    Out,
    Scenario,
    attack_caller,
    pick_time,
    unread_bucket,
)


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    hours_n = rng.uniform(3, 8)
    t0 = pick_time(rng, p, hours_n * _HOUR + 600, 0.0, None)
    c = attack_caller(rng, p, pr, t0, new_ip=not a.quiet)
    bucket = unread_bucket(rng, w, pr, sensitive=None)
    t, end, i = t0, t0 + hours_n * _HOUR, 0
    while True:
        t += rng.expovariate(a.level / _HOUR)
        if t >= end:
            break
        out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i), size=_size(rng, bucket))))
        i += 1
    return out


SCENARIO = Scenario(
    name="service_new_bucket_steady",
    summary="a service role reads a bucket it never touched at a steady modest rate for hours",
    detection="forest: new_bucket, new_bucket_reads, reads_1h (no rule: under every burst floor)",
    intensity=Intensity(40, 150, 600, "objects/hour for 3-8 h"),
    victims=(WORKLOADS, ()),
    build=build,
)
