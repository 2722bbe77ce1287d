"""A worker role reads its usual bucket at about three times its usual rate, but objects many
times larger than it ever reads, for about six hours (a copy of the big files, not the usual
small ones), from its own network and SDK.

Exercises the forest's ``object_size`` (mean size within the hour in the role's own hourly
spreads) and ``bytes_1h`` against its own peak; the object count stays ordinary. Loud: from an
outside network. Intensity: object size as a multiple of the role's usual size.
"""

from __future__ import annotations

from detector.simulate.plan import _HOUR
from detector.simulate.records import _object_key, _s3, _size
from detector.simulate.scenarios.base import WORKLOADS, Attack, Intensity, Out, Scenario, attack_caller, pick_time


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    hours_n = rng.uniform(5, 7)
    t0 = pick_time(rng, p, hours_n * _HOUR + 600, 0.0, None)
    c = attack_caller(rng, p, pr, t0, new_ip=not a.quiet)
    bucket = w.buckets[pr.buckets[0]]
    per_hour = max(6.0, 3.0 * 0.4 * pr.rate)  # three times its GetObject rate (40% of its calls)
    t, end, i = t0, t0 + hours_n * _HOUR, 0
    while True:
        t += rng.expovariate(per_hour / _HOUR)
        if t >= end:
            break
        size = int(_size(rng, bucket) * pr.size_scale * a.level)
        out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i), size=size)))
        i += 1
    return out


SCENARIO = Scenario(
    name="worker_large_objects",
    summary="a worker reads its usual bucket at ~3x its rate with ~25x larger objects for ~6 h",
    detection="forest: object_size, bytes_1h (object counts stay ordinary)",
    intensity=Intensity(4, 25, 100, "x its usual object size"),
    victims=(WORKLOADS, ()),
    build=build,
)
