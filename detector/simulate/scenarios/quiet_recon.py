"""Low-and-slow reconnaissance: one List/Describe call the victim never made every few minutes
for hours, across services, so that no 10-minute window holds a burst.

A class no issue names (a generalisation check). Exercises the forest's ``new_api`` and
``new_apis_10m`` against a principal whose API set is settled; ``recon_burst`` should not
fire. Quiet: the victim's own network and tool. Intensity: first-time APIs called.
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


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    pool = [k for k in _RECON_APIS if k not in pr.apis]
    rng.shuffle(pool)
    n = min(len(pool), a.count(3))
    gap = rng.uniform(60, 240)
    t = a.start(n * gap + 1200)
    c = attack_caller(rng, p, pr, t, new_ip=not a.quiet)
    for key in pool[:n]:
        t += rng.uniform(0.5, 1.5) * gap
        out.append((t, _mgmt(rng, w, c, t, key, deny=rng.random() < 0.3)))
    return out


SCENARIO = Scenario(
    name="quiet_recon",
    summary="one never-used List/Describe call every few minutes for hours across services",
    detection="forest: new_api, new_apis_10m, errors_10m (under the recon_burst rule's window)",
    intensity=Intensity(10, 40, 120, "first-time APIs over hours"),
    victims=((*HUMANS, "lambda"), ()),
    build=build,
)
