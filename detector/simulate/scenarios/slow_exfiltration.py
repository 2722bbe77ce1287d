"""Slow exfiltration: a few dozen objects an hour, for hours, from a sensitive bucket the victim
never used; loud at night, quiet in its usual hours from its usual network and tool.

Exercises the ``exfiltration`` rule's new-bucket drain (a bucket first read today, read on
with something else off) and the forest's context ages (``new_bucket``, ``new_bucket_reads``
stay high while the bucket is hours old) and ``hour_rarity``. Intensity: objects per hour.
"""

from __future__ import annotations

from detector.simulate.plan import _HOUR
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


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    hours_n = rng.randint(5, 7)
    night = (0.5, 2.5) if is_human(pr) else None
    t0 = pick_time(rng, p, hours_n * _HOUR + 600, pr.tz, usual_hours(pr) if a.quiet else night)
    c = attack_caller(rng, p, pr, t0, new_ip=not a.quiet and rng.random() < 0.5)
    bucket = unread_bucket(rng, w, pr, sensitive=True)
    i = 0
    for h in range(hours_n):
        for _ in range(max(1, round(a.level * rng.uniform(0.8, 1.2)))):
            t = t0 + h * _HOUR + rng.uniform(0, _HOUR)
            out.append(
                (t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i), size=_size(rng, bucket)))
            )
            i += 1
    out.sort(key=lambda x: x[0])
    return out


SCENARIO = Scenario(
    name="slow_exfiltration",
    summary="a few dozen objects an hour for hours from a sensitive bucket it never used",
    detection="rule: exfiltration (new-bucket drain); forest: new_bucket, new_bucket_reads, reads_1h, hour_rarity",
    intensity=Intensity(8, 40, 150, "objects/hour for 5-7 h"),
    victims=(HUMANS, ("ec2_instance",)),
    build=build,
)
