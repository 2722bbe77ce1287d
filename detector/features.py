"""The per-event feature vector: one event against its principal's baseline.

Training (``detector train``) and scoring (every runtime) both call ``row`` on the
``Observation`` that ``Baseline.observe`` returns, so the model sees exactly the same
numbers offline and live. Changing a feature's meaning bumps ``FEATURE_VERSION``; a model
artifact trained on another version is refused at load.

Every feature is "relative to this principal": novelty is against its own history, bursts
are log-ratios of the current window to its own decayed peak. Units are in ``FEATURES``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detector.baseline import P_BYT60, P_DEL10, P_ERR10, P_EVT1, P_EVT10, P_GET10, P_NOV10, Observation
from detector.event import Event
from detector.principal import HUMAN

FEATURE_VERSION = 1


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    meaning: str


FEATURES: tuple[Feature, ...] = (
    Feature("api_novel", "0/1", "API (service:eventName) this principal never called before"),
    Feature("ip_novel", "0/1", "source IP never seen for this principal (0 for AWS-internal sources)"),
    Feature("prefix_novel", "0/1", "source /24 (IPv6 /48) never seen for this principal"),
    Feature("ua_novel", "0/1", "user-agent family (product, major version, OS) never seen"),
    Feature("region_novel", "0/1", "AWS region never used by this principal"),
    Feature("bucket_novel", "0/1", "S3 bucket never touched by this principal"),
    Feature("hour_novel", "0/1", "hour of the week (UTC) in which this principal was never active"),
    Feature("hour_rarity", "0..1", "1 - this UTC hour-of-day's share of the principal's activity"),
    Feature("burst_1m", "log-ratio", "log1p(events in ~1 min) - log1p(principal's decayed 1 min peak)"),
    Feature("burst_10m", "log-ratio", "log1p(events in ~10 min) - log1p(decayed 10 min peak)"),
    Feature("get_burst_10m", "log-ratio", "log1p(GetObjects in ~10 min) - log1p(decayed peak)"),
    Feature("bytes_burst_1h", "log-ratio", "log1p(bytes out in ~1 h) - log1p(decayed peak)"),
    Feature("delete_burst_10m", "log-ratio", "log1p(S3 deletes in ~10 min) - log1p(decayed peak)"),
    Feature("novel_api_10m", "log1p count", "first-time APIs called in the last ~10 min"),
    Feature("error", "0/1", "the call failed (errorCode present, e.g. AccessDenied)"),
    Feature("error_burst_10m", "log-ratio", "log1p(errors in ~10 min) - log1p(decayed peak)"),
    Feature("new_bucket_reads_1h", "log1p count", "GetObjects in ~1 h from a bucket first read < 24 h ago"),
    Feature("principal_age", "log1p days", "days since this principal was first seen"),
    Feature("history", "log1p events", "events in this principal's baseline"),
    Feature("human", "0/1", "caller class is human (SSO/federated person, IAM user with a CLI/console)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
_DAY = 86400.0


def row(ev: Event, obs: Observation) -> list[float]:
    """The feature vector of one event, in ``FEATURE_NAMES`` order. Pure."""
    p = obs.peaks
    log1p = math.log1p
    new_bucket_reads = obs.bucket_get1h if obs.bucket_age_s < _DAY else 0.0
    return [
        float(obs.api_novel),
        float(obs.ip_novel),
        float(obs.prefix_novel),
        float(obs.ua_novel),
        float(obs.region_novel),
        float(obs.bucket_novel),
        float(obs.hour_novel),
        1.0 - obs.hour_share,
        log1p(obs.evt1m) - log1p(p[P_EVT1]),
        log1p(obs.evt10m) - log1p(p[P_EVT10]),
        log1p(obs.get10m) - log1p(p[P_GET10]),
        log1p(obs.bytes1h) - log1p(p[P_BYT60]),
        log1p(obs.del10m) - log1p(p[P_DEL10]),
        log1p(obs.nov10m),
        1.0 if ev.error_code else 0.0,
        log1p(obs.err10m) - log1p(p[P_ERR10]),
        log1p(new_bucket_reads),
        log1p(max(obs.age_s, 0.0) / _DAY),
        log1p(obs.total),
        1.0 if ev.principal.caller_class == HUMAN else 0.0,
    ]


def baseline_value(name: str, obs: Observation) -> str:
    """This principal's own reference for a feature, as a person would read it."""
    d = obs.distinct
    p = obs.peaks
    refs = {
        "api_novel": f"~{d('api')} APIs seen before",
        "ip_novel": f"~{d('ip')} source IPs seen before",
        "prefix_novel": f"~{d('prefix')} source networks seen before",
        "ua_novel": f"~{d('ua')} user-agent families seen before",
        "region_novel": f"~{d('region')} regions seen before",
        "bucket_novel": f"~{d('bucket')} buckets seen before",
        "hour_novel": "never active in this hour of the week",
        "hour_rarity": f"{obs.hour_share:.1%} of activity in this hour",
        "burst_1m": f"peak {p[P_EVT1]:.0f} events/min",
        "burst_10m": f"peak {p[P_EVT10]:.0f} events/10 min",
        "get_burst_10m": f"peak {p[P_GET10]:.0f} GetObjects/10 min",
        "bytes_burst_1h": f"peak {p[P_BYT60]:.0f} bytes/h",
        "delete_burst_10m": f"peak {p[P_DEL10]:.0f} deletes/10 min",
        "novel_api_10m": f"peak {p[P_NOV10]:.0f} first-time APIs/10 min",
        "error": f"peak {p[P_ERR10]:.0f} errors/10 min",
        "error_burst_10m": f"peak {p[P_ERR10]:.0f} errors/10 min",
        "new_bucket_reads_1h": "bucket first read less than a day ago",
        "principal_age": f"first seen {obs.age_s / _DAY:.1f} days ago",
        "history": f"{obs.total} events in baseline",
        "human": "caller class",
    }
    return refs[name]


def current_value(name: str, ev: Event, obs: Observation) -> str:
    """The event's own value for a feature, as a person would read it."""
    values = {
        "api_novel": f"{ev.service}:{ev.name}",
        "ip_novel": ev.source_ip,
        "prefix_novel": ev.source_ip,
        "ua_novel": ev.user_agent,
        "region_novel": ev.region,
        "bucket_novel": ev.bucket,
        "hour_novel": f"{int(ev.time // 3600) % 24:02d}:00 UTC",
        "hour_rarity": f"{int(ev.time // 3600) % 24:02d}:00 UTC",
        "burst_1m": f"{obs.evt1m:.0f} events/min",
        "burst_10m": f"{obs.evt10m:.0f} events/10 min",
        "get_burst_10m": f"{obs.get10m:.0f} GetObjects/10 min",
        "bytes_burst_1h": f"{obs.bytes1h:.0f} bytes/h",
        "delete_burst_10m": f"{obs.del10m:.0f} deletes/10 min",
        "novel_api_10m": f"{obs.nov10m:.0f} first-time APIs/10 min",
        "error": ev.error_code or "ok",
        "error_burst_10m": f"{obs.err10m:.0f} errors/10 min",
        "new_bucket_reads_1h": f"{obs.bucket_get1h:.0f} GetObjects/h from {ev.bucket}",
        "principal_age": f"{obs.age_s / _DAY:.1f} days",
        "history": f"{obs.total} events",
        "human": ev.principal.caller_class,
    }
    return values[name]
