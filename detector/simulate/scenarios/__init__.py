"""The attack catalogue: one module per scenario, each with the detection it exercises and its
intensity range (see ``base.Scenario``). :data:`CATALOGUE` keeps them in a fixed order.

Victims, attack times and the benign traffic are drawn from streams that do not depend on which
scenarios run, at what intensity or in which variant: plans that differ only there give the
same world and the same victims, so a sweep compares like with like.
"""

# ruff: noqa: S311 - seeded pseudo-randomness is the point here: reproducible traffic, not secrets

from __future__ import annotations

import random
from dataclasses import dataclass

from detector.simulate.plan import VARIANTS, Label, SimulationPlan
from detector.simulate.scenarios import (
    batch_offhours_bucket,
    bulk_exfiltration,
    compute_hijack,
    key_from_cloud_region,
    mass_delete,
    night_reads_known_network,
    privilege_escalation,
    quiet_recon,
    recon_burst,
    secrets_harvest,
    sensitive_config_change,
    service_new_bucket_steady,
    slow_exfiltration,
    stolen_credentials,
    worker_large_objects,
)
from detector.simulate.scenarios.base import Attack, Intensity, Out, Scenario
from detector.simulate.world import _build_world, _Principal

CATALOGUE: dict[str, Scenario] = {
    m.SCENARIO.name: m.SCENARIO
    for m in (
        bulk_exfiltration,
        stolen_credentials,
        recon_burst,
        slow_exfiltration,
        sensitive_config_change,
        mass_delete,
        privilege_escalation,
        service_new_bucket_steady,
        batch_offhours_bucket,
        worker_large_objects,
        key_from_cloud_region,
        night_reads_known_network,
        secrets_harvest,
        compute_hijack,
        quiet_recon,
    )
}
SCENARIOS: tuple[str, ...] = tuple(CATALOGUE)


@dataclass(slots=True)
class Injected:
    scenario: str
    victim: _Principal
    level: float
    variant: str
    events: Out


def _level(p: SimulationPlan, s: Scenario) -> float:
    asked = p.level_of(s.name)
    if asked == "nominal":
        return s.intensity.nominal
    if asked == "random":
        return s.intensity.draw(random.Random(f"{p.seed}|intensity|{s.name}"))
    return float(asked)


def _variant(p: SimulationPlan, s: Scenario) -> str:
    asked = p.variant_of(s.name)
    if asked != "random":
        return asked
    return random.Random(f"{p.seed}|variant|{s.name}").choice([v for v in VARIANTS if v in s.variants])


def attacks(p: SimulationPlan) -> list[Injected]:
    """Every selected scenario's events. Victims are drawn for all scenarios, so a subset is stable."""
    w = _build_world(p)
    taken: set[str] = set()
    out = []
    # victims need days of their own history before the attack (and are never this run's newcomers)
    settled = max(1, p.history_days - 2)
    eligible = [pr for pr in w.principals if not pr.starter and pr.first_day < settled]
    for name, s in CATALOGUE.items():
        rng = random.Random(f"{p.seed}|attack|{name}")
        preferred, fallback = s.victims
        victims = (
            [pr for pr in eligible if pr.kind in preferred and pr.key not in taken]
            or [pr for pr in eligible if pr.kind in fallback and pr.key not in taken]
            or [pr for pr in eligible if pr.kind in preferred + fallback]
        )
        if not victims:
            continue
        victim = rng.choice(victims)
        taken.add(victim.key)
        if name not in p.scenarios:
            continue
        level, variant = _level(p, s), _variant(p, s)
        build_rng = random.Random(f"{p.seed}|attack|{name}|build")
        events = s.build(Attack(build_rng, w, victim, level, variant == "quiet"))
        if events:
            out.append(Injected(name, victim, level, variant, events))
    return out


def labels(p: SimulationPlan) -> list[Label]:
    """The ground truth for ``iter_events`` of the same plan, one :class:`Label` per attack."""
    out = []
    for a in attacks(p):
        times = [t for t, _ in a.events]
        out.append(
            Label(
                scenario=a.scenario,
                principal_arn=a.events[0][1]["userIdentity"]["arn"],
                account_id=a.victim.account_id,
                start=float(int(min(times))),
                end=float(int(max(times))),
                event_ids=tuple(ev["eventID"] for _, ev in a.events),
                intensity=round(a.level, 4),
                variant=a.variant,
            )
        )
    return out


__all__ = ["CATALOGUE", "SCENARIOS", "Attack", "Intensity", "Scenario", "attacks", "labels"]
