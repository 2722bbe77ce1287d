"""What to simulate and the ground truth: :func:`plan`, :class:`SimulationPlan`, :class:`Label`."""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detector.errors import ConfigError

ACCOUNTS: tuple[str, str] = ("111122223333", "444455556666")
"""Production account (apps, deploys) and data account (data lake, finance, HR)."""

DEFAULT_START = calendar.timegm((2026, 1, 5, 0, 0, 0))
"""Monday 2026-01-05 00:00 UTC: a fixed start keeps output reproducible and weekdays aligned."""

MIN_PRINCIPALS = 20
"""Fewer principals cannot hold one of every kind plus distinct victims for every scenario."""

_DAY = 86400
_HOUR = 3600
_TRAIL_BUCKET = {ACCOUNTS[0]: "acme-prod-cloudtrail-logs", ACCOUNTS[1]: "acme-data-cloudtrail-logs"}
_EXTERNAL_ACCOUNT = "999988887777"
_ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"


@dataclass(frozen=True)
class Label:
    """The ground truth for one injected attack.

    ``start`` and ``end`` are the event times (epoch seconds, UTC) of the first and last attack
    event; ``event_ids`` names every event of the attack, in the order they were generated.
    ``principal_arn`` is the ``userIdentity.arn`` all of them carry.
    """

    scenario: str
    principal_arn: str
    account_id: str
    start: float
    end: float
    event_ids: tuple[str, ...]
    intensity: float = 0.0  # in the scenario's unit (CATALOGUE[scenario].intensity.unit)
    variant: str = "loud"  # loud | quiet (known network and tool, usual hours and bucket)


VARIANTS = ("loud", "quiet")


@dataclass(frozen=True)
class SimulationPlan:
    """What to simulate. Build it with :func:`plan`, which validates it."""

    start: float
    days: int
    test_start: float
    seed: int
    scenarios: tuple[str, ...]
    n_principals: int
    intensity: str | tuple[tuple[str, float], ...] = "random"  # random | nominal | per-scenario values
    variant: str | tuple[tuple[str, str], ...] = "random"  # random | loud | quiet | per-scenario

    def level_of(self, name: str) -> float | str:
        """The intensity asked for ``name``: a value, or "random" / "nominal"."""
        if isinstance(self.intensity, str):
            return self.intensity
        return dict(self.intensity).get(name, "random")

    def variant_of(self, name: str) -> str:
        if isinstance(self.variant, str):
            return self.variant
        return dict(self.variant).get(name, "random")

    @property
    def end(self) -> float:
        return self.start + self.days * _DAY

    @property
    def history_days(self) -> int:
        return int((self.test_start - self.start) // _DAY)


def plan(
    days: int,
    seed: int = 7,
    scenarios: Sequence[str] | None = None,
    test_days: int = 3,
    principals: int = 60,
    start: float | None = None,
    intensity: str | Mapping[str, float] = "random",
    variant: str | Mapping[str, str] = "random",
) -> SimulationPlan:
    """Validate the simulation parameters.

    Parameters
    ----------
    days : int
        Total simulated days; the first ``days - test_days`` are clean history.
    seed : int
        Seed of every random draw; the same plan always gives the same events. The benign
        traffic, the victims and the attack times do not depend on ``scenarios``,
        ``intensity`` or ``variant``, so plans that differ only there are comparable.
    scenarios : sequence of str or None
        Attack scenarios to inject (keys of :data:`CATALOGUE`); ``None`` means all of them, an
        empty sequence means benign traffic only.
    test_days : int
        Number of final days that may hold attacks (benign change happens on every day).
    principals : int
        Size of the roster, at least :data:`MIN_PRINCIPALS` (AWS service callers included).
    start : float or None
        Epoch seconds of the first day, a UTC midnight; default :data:`DEFAULT_START`.
    intensity : "random", "nominal" or {scenario: value}
        Each attack's intensity, in its scenario's unit: drawn log-uniformly from the scenario's
        range (``random``), its nominal value, or the value given (others drawn).
    variant : "random", "loud", "quiet" or {scenario: variant}
        ``quiet`` attacks come from the victim's known network and tool, at its usual hours,
        on its usual bucket where the scenario allows; ``random`` draws one per attack.

    Raises
    ------
    ConfigError
        (a ``ValueError``) for an unknown scenario or inconsistent sizes; the message says what is valid.
    """
    from detector.simulate.scenarios import CATALOGUE

    names = tuple(CATALOGUE) if scenarios is None else tuple(dict.fromkeys(scenarios))
    unknown = [s for s in names if s not in CATALOGUE]
    if unknown:
        raise ConfigError(f"unknown scenario {', '.join(map(repr, unknown))}; valid names: {', '.join(CATALOGUE)}")
    if days < 1:
        raise ConfigError(f"--days must be at least 1, got {days}")
    if not 0 <= test_days < days:
        raise ConfigError(
            f"--test-days (default 3) must be at least 0 and less than --days ({days}), so that one "
            f"history day remains; got {test_days}"
        )
    if names and test_days < 1:
        raise ConfigError("scenarios need --test-days >= 1; pass scenarios=[] for benign traffic only")
    if principals < MIN_PRINCIPALS:
        raise ConfigError(f"--principals must be at least {MIN_PRINCIPALS}, got {principals}")
    begin = float(DEFAULT_START if start is None else start)
    if begin % _DAY:
        raise ConfigError(f"start must be a UTC midnight (a multiple of 86400), got {begin}")
    return SimulationPlan(
        start=begin,
        days=days,
        test_start=begin + (days - test_days) * _DAY,
        seed=seed,
        scenarios=names,
        n_principals=principals,
        intensity=_intensity(intensity, CATALOGUE),
        variant=_variant(variant, CATALOGUE),
    )


def _intensity(value: Any, catalogue: Mapping[str, Any]) -> str | tuple[tuple[str, float], ...]:
    if isinstance(value, str):
        if value not in ("random", "nominal"):
            raise ConfigError(f"--intensity must be random, nominal or NAME=VALUE, got {value!r}")
        return value
    out = []
    for name, level in dict(value).items():
        if name not in catalogue:
            raise ConfigError(f"--intensity names unknown scenario {name!r}; valid names: {', '.join(catalogue)}")
        try:
            v = float(level)
        except (TypeError, ValueError):
            raise ConfigError(f"--intensity {name}= needs a number, got {level!r}") from None
        if not math.isfinite(v) or v <= 0:
            raise ConfigError(f"--intensity {name}= must be a positive number, got {level!r}")
        out.append((name, v))
    return tuple(sorted(out))


def _variant(value: Any, catalogue: Mapping[str, Any]) -> str | tuple[tuple[str, str], ...]:
    allowed = ("random", *VARIANTS)
    if isinstance(value, str):
        if value not in allowed:
            raise ConfigError(f"--variant must be one of {', '.join(allowed)}, got {value!r}")
        return value
    out = []
    for name, v in dict(value).items():
        if name not in catalogue:
            raise ConfigError(f"--variant names unknown scenario {name!r}; valid names: {', '.join(catalogue)}")
        if v not in allowed:
            raise ConfigError(f"--variant for {name} must be one of {', '.join(allowed)}, got {v!r}")
        out.append((name, str(v)))
    return tuple(sorted(out))
