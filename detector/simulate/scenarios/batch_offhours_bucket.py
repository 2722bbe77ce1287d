"""A nightly batch role reads an unrelated bucket in the afternoon, outside its batch window,
with its own task credentials, network and SDK.

Exercises the forest's ``hour_rarity`` (a job active only at night) with ``new_bucket`` /
``new_bucket_reads``, and the ``exfiltration`` rule's new-bucket drain in a rare hour.
Loud: from an outside network. Intensity: objects read.
"""

from __future__ import annotations

from detector.simulate.ids import _hex
from detector.simulate.records import _object_key, _s3, _size
from detector.simulate.scenarios.base import Attack, Intensity, Out, Scenario, attack_caller, pick_time, unread_bucket


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    n = a.count(5)
    span = rng.uniform(1200, 3600)
    t = pick_time(rng, p, span + 600, 0.0, (13.0, 17.0))
    session = pr.session or _hex(p.seed, pr.key, "afternoon", n=32)
    c = attack_caller(rng, p, pr, t, new_ip=not a.quiet, session=session)
    bucket = unread_bucket(rng, w, pr, sensitive=None)
    out.append((t, _s3(rng, c, t, "ListObjects", bucket, "")))
    for i in range(n):
        t += rng.expovariate(n / span)
        out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i), size=_size(rng, bucket))))
    return out


SCENARIO = Scenario(
    name="batch_offhours_bucket",
    summary="a nightly batch role reads an unrelated bucket in the afternoon",
    detection="forest: hour_rarity, new_bucket, new_bucket_reads; rule: exfiltration (new-bucket drain in a rare hour)",
    intensity=Intensity(50, 300, 2000, "objects read"),
    victims=(("batch",), ()),
    build=build,
)
