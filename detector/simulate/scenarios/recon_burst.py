"""Reconnaissance burst: about a hundred Describe/List/Get calls across services within minutes,
none of which the victim ever made, many denied, with a sweep across regions.

Exercises ``recon_burst`` (first-time APIs within ~10 min) and the forest's ``new_apis_10m``,
``errors_10m``, ``new_region``. Quiet: from the victim's known network and tool.
Intensity: API calls in the burst.
"""

from __future__ import annotations

from detector.simulate.apis import _RECON_APIS
from detector.simulate.records import _mgmt
from detector.simulate.scenarios.base import (
    HUMANS,
    Attack,
    Intensity,
    Out,
    Scenario,
    attack_caller,
)
from detector.simulate.world import _ATTACK_UAS, _REGIONS


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    t = a.start(900)
    c = attack_caller(rng, p, pr, t, new_ip=not a.quiet, ua="" if a.quiet else _ATTACK_UAS[1])
    pool = [k for k in _RECON_APIS if k not in pr.apis]
    rng.shuffle(pool)
    denied = {k: rng.random() < 0.5 for k in pool}
    n = a.count(3)
    sweep = min(8, max(0, n // 12))
    body = [(k, pr.region) for k in pool[: max(1, n - 1 - sweep)]]
    body += [("ec2:DescribeInstances", region) for region in rng.sample(_REGIONS, sweep)]  # tools sweep regions
    while len(body) < n - 1:
        body.append((rng.choice(pool), pr.region))
    rng.shuffle(body)
    calls = [("sts:GetCallerIdentity", pr.region), *body]
    span = max(60.0, len(calls) * rng.uniform(1.8, 3.0))
    for key, region in calls:
        t += rng.expovariate(len(calls) / span)
        deny = denied.get(key, False) and key != "sts:GetCallerIdentity"
        out.append((t, _mgmt(rng, w, c, t, key, region=region, deny=deny)))
    return out


SCENARIO = Scenario(
    name="recon_burst",
    summary="about 100 Describe/List/Get calls across services in minutes, never used before, many denied",
    detection="rule: recon_burst; forest: new_apis_10m, errors_10m, new_api, new_region",
    intensity=Intensity(15, 100, 200, "API calls in minutes"),
    victims=((*HUMANS, "lambda", "ec2_instance"), ()),
    build=build,
)
