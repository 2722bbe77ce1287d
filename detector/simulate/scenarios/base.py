"""What a scenario is, and the helpers every scenario shares.

A :class:`Scenario` names the behaviour, the detection it exercises, the victims it needs and
its :class:`Intensity` range; its ``build`` turns one :class:`Attack` (victim, intensity,
variant, a seeded ``random.Random``) into CloudTrail events. ``quiet`` variants use what the
victim already uses (its network and tool, its hours, its bucket) wherever the behaviour
allows: what is left for the detector is the behaviour itself.
"""

# ruff: noqa: S311 - seeded pseudo-randomness is the point here: reproducible traffic, not secrets

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from detector.errors import ConfigError
from detector.simulate.ids import _token
from detector.simulate.plan import _DAY, _HOUR, VARIANTS, SimulationPlan
from detector.simulate.populations import _role_key
from detector.simulate.records import _Caller, _caller
from detector.simulate.world import _ATTACK_NETS, _AWS_NETS, _BUCKETS, _Bucket, _ip, _Principal, _World

Out = list[tuple[float, dict[str, Any]]]
HUMANS = ("human_sso", "human_iam_user")
WORKLOADS = ("ecs_task", "lambda", "ec2_instance")


@dataclass(frozen=True)
class Intensity:
    """How strong an attack is, in ``unit``; ``random`` draws log-uniformly in [low, high]."""

    low: float
    nominal: float
    high: float
    unit: str

    def draw(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))


@dataclass(frozen=True)
class Attack:
    """One attack to build: who, how strong, how quiet, with its own random stream."""

    rng: random.Random
    world: _World
    victim: _Principal
    level: float
    quiet: bool

    @property
    def plan(self) -> SimulationPlan:
        return self.world.plan

    def start(self, duration: float) -> float:
        """A start in the test window so ``duration`` fits: within a person's usual hours, any
        time for a workload (``pick_time`` for any other hours)."""
        pr = self.victim
        return pick_time(self.rng, self.plan, duration, pr.tz, usual_hours(pr) if is_human(pr) else None)

    def count(self, lo: float = 1.0) -> int:
        """The intensity as a whole number of things (objects, calls), at least ``lo``."""
        return max(int(lo), round(self.level))


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str  # one line: what the attacker does
    detection: str  # what in the detector it exercises (features, rules)
    intensity: Intensity
    victims: tuple[tuple[str, ...], tuple[str, ...]]  # (preferred kinds, fallback kinds)
    build: Callable[[Attack], Out]
    variants: tuple[str, ...] = VARIANTS

    def describe(self) -> dict[str, object]:
        i = self.intensity
        return {
            "name": self.name,
            "summary": self.summary,
            "detection": self.detection,
            "unit": i.unit,
            "low": i.low,
            "nominal": i.nominal,
            "high": i.high,
            "variants": list(self.variants),
        }


def is_human(pr: _Principal) -> bool:
    return pr.kind in HUMANS


def pick_time(
    rng: random.Random, p: SimulationPlan, duration: float, tz: float, local_hours: tuple[float, float] | None
) -> float:
    """A start inside the test window so the whole attack fits; at the victim's local hours if it can."""
    lo, hi = p.test_start + 600, p.end - duration - 600
    if hi <= lo:
        raise ConfigError(f"the test window is too short for a {duration / 3600:.1f} h scenario; use more --test-days")
    if local_hours is not None:
        for _ in range(40):
            day = rng.randrange(p.history_days - 1, p.days + 1)
            t = p.start + day * _DAY + (rng.uniform(*local_hours) - tz) * _HOUR
            if lo <= t <= hi:
                return t
    return rng.uniform(lo, hi)


def usual_hours(pr: _Principal) -> tuple[float, float]:
    """Local hours the victim is normally active in (people: their working day)."""
    return (pr.work[0] + 0.5, pr.work[1] - 1.0) if is_human(pr) else (9.0, 17.0)


def attack_caller(
    rng: random.Random,
    p: SimulationPlan,
    pr: _Principal,
    t: float,
    *,
    new_ip: bool,
    ua: str = "",
    ip: str = "",
    session: str = "",
) -> _Caller:
    """The victim's identity as the attacker presents it: a session of theirs, maybe from elsewhere."""
    if is_human(pr):
        addr = ip or (_ip(rng, rng.choice(_ATTACK_NETS)) if new_ip else pr.ips[-1])
        key = pr.access_key or "ASIA" + _token(p.seed, pr.key, t, "attack")
        created = None if pr.access_key else t - rng.uniform(60, 900)
        return _caller(pr, ip=addr, ua=ua or pr.cli_ua, key=key, created=created)
    key, created = _role_key(p, pr, t, 21600 if pr.kind == "ec2_instance" else 14400)
    if new_ip or ip:
        addr = ip or _ip(rng, rng.choice(_ATTACK_NETS))
        return _caller(pr, ip=addr, ua=ua or pr.sdk_ua, key=key, created=created, session=session)
    # abused from inside: the workload's own address (and VPC endpoint for S3)
    addr = pr.nat_ip or _ip(random.Random(key), _AWS_NETS["us-east-1"][0])
    c = _caller(pr, ip=addr, ua=ua or pr.sdk_ua, key=key, created=created, session=session)
    c.s3_ip, c.vpce = pr.private_ip, pr.vpce
    return c


def unread_bucket(rng: random.Random, w: _World, pr: _Principal, sensitive: bool | None) -> _Bucket:
    """A bucket of the victim's account it never reads or writes (``sensitive`` None: either)."""
    used = set(pr.buckets) | set(pr.write_buckets) | ({pr.new_bucket} if pr.new_bucket else set())
    options = [
        b
        for b in _BUCKETS
        if b.account_id == pr.account_id
        and b.name not in used
        and (sensitive is None or b.sensitive == sensitive)
        and b.shape != "trail"
    ]
    if not options:
        options = [b for b in _BUCKETS if b.name not in used and b.shape != "trail"]
    return w.buckets[rng.choice(options).name]


# cloud providers' address ranges in regions this world's accounts do not use
_CLOUD_NETS = {
    "us-west-2": ("34.208", "44.224", "52.88", "54.200"),
    "ap-southeast-1": ("13.212", "18.136", "52.74", "54.169"),
    "eu-central-1": ("3.120", "18.184", "35.156", "52.57"),
    "sa-east-1": ("18.228", "52.67", "54.232"),
}
_GCP = ("34.77", "35.195", "34.141", "35.246")
_AZURE = ("20.42", "40.113", "52.170", "20.191")


def cloud_ip(rng: random.Random, avoid_region: str) -> tuple[str, str]:
    """An address of a cloud provider (AWS, GCP or Azure) and an AWS region the world does not
    use (the attacker's machine calls the region it runs in)."""
    region = rng.choice([r for r in _CLOUD_NETS if r != avoid_region])
    provider = rng.random()
    if provider < 0.5:
        return _ip(rng, rng.choice(_CLOUD_NETS[region])), region
    return _ip(rng, rng.choice(_GCP if provider < 0.75 else _AZURE)), region
