"""A person reads objects at night (their local 01:00-05:00) from a network they know with their
usual tool: a stolen laptop session or an insider, where nothing but the hour and the volume is
odd. Quiet: their usual bucket; loud: a bucket of their account they never read.

Exercises the forest's time member: ``hour_rarity`` (an hour profile of active days that one
night cannot overwrite) and ``rare_hour_reads`` (reads over an absolute floor in that hour: their
daytime peak may be far higher). Intensity: objects read.
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
    pick_time,
    unread_bucket,
)


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    n = a.count(5)
    span = rng.uniform(1800, 5400)
    t = pick_time(rng, p, span + 600, pr.tz, (1.0, 4.0))
    c = attack_caller(rng, p, pr, t, new_ip=False, ip=pr.ips[min(1, len(pr.ips) - 1)])
    bucket = w.buckets[rng.choice(pr.buckets)] if a.quiet and pr.buckets else unread_bucket(rng, w, pr, False)
    for i in range(n):
        t += rng.expovariate(n / span)
        out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i), size=_size(rng, bucket))))
    return out


SCENARIO = Scenario(
    name="night_reads_known_network",
    summary="a person reads ~150 objects at night from a known network with their usual tool",
    detection="forest: hour_rarity, rare_hour_reads (nothing else is new)",
    intensity=Intensity(30, 150, 1500, "objects read"),
    victims=(HUMANS, ()),
    build=build,
)
