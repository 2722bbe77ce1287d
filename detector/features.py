"""The per-event feature vector: one event against its principal's own baseline.

Training (``detector train``) and scoring (every runtime) both call ``row`` on the
``Observation`` that ``Baseline.observe`` returns, so the model sees exactly the same numbers
offline and live. Changing a feature's meaning bumps ``FEATURE_VERSION``; an artifact trained
on another version is refused at load.

Every feature is 0 for "as usual" and grows with how unusual the event is *for this
principal*, in one direction only (a quiet hour is not an anomaly):

* rates are log-ratios of the current window to the principal's own decayed peak, minus a
  dead band (``DEAD_BAND``: half again its peak is still "as usual"); besides all calls, reads
  and deletes, credential reads (``secret_reads_10m``) have a rate of their own, since a role
  busy with other calls hides a harvest of secrets in its overall rate;
* contexts (bucket, network, client, region) are *ages*: "activity in a network first seen
  under an hour ago" is 1 for as long as it goes on, fading to 0 once the context is a day old;
* the hour of day is rare when the principal was active in it on few of its recent days;
* reads in a rare hour (``rare_hour_reads``) join the two: objects read within the hour above
  an absolute floor, weighed by the hour's rarity. Its own peak says how much it reads when it
  works; at an hour it never works, its peak is nothing, so the floor is the only reference.
  An isolation forest splits one feature at a time: two marginals that are each common (a late
  login, a large sync) hide a conjunction that is rare, unless the conjunction is a feature.

Identity context (age, history size, caller class) is not an input: it picks the peer group
whose forest scores the row and decides maturity. A principal too young for its own history
to mean anything has its contexts and hours left at 0 and its rates compared with its peer
group's typical peaks (``reference``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detector.baseline import (
    N_PEAKS,
    P_BYT60,
    P_DEL10,
    P_ERR10,
    P_EVT1,
    P_EVT10,
    P_GET10,
    P_GET60,
    P_SEC10,
    Observation,
    youth,
)
from detector.event import Event
from detector.textsafe import human_bytes

FEATURE_VERSION = 5
DEAD_BAND = math.log(1.5)  # up to 1.5x its own peak is still "as usual"
SIZE_DEAD_BAND = 2.0  # an hour's mean object size within 2 of its own hour-to-hour deviations is usual
MIN_SIZE_SD = 0.25  # ...and a principal always reading alike objects still varies this much
MIN_SIZE_READS = 10.0  # GetObjects within the hour before their mean size means anything
_DAY = 86400.0


@dataclass(frozen=True)
class Feature:
    name: str
    group: str  # subspace: volume | context | calls (errors, credential reads) | time
    unit: str
    meaning: str
    span: float = 1.0  # the largest value that still means something (model.py's range anchors)


FEATURES: tuple[Feature, ...] = (
    Feature("events_1m", "volume", "log-ratio", "events in ~1 min above 1.5x its own 1 min peak (at least 30)", 8.0),
    Feature("events_10m", "volume", "log-ratio", "events in ~10 min above 1.5x its 10 min peak (at least 100)", 8.0),
    Feature("reads_10m", "volume", "log-ratio", "GetObjects in ~10 min above 1.5x its own peak (at least 15)", 8.0),
    Feature("reads_1h", "volume", "log-ratio", "GetObjects in ~1 h above 1.5x its own peak (at least 30)", 8.0),
    Feature("bytes_1h", "volume", "log-ratio", "bytes read in ~1 h above 1.5x its own peak (at least 50 MB)", 8.0),
    Feature(
        "object_size",
        "volume",
        "deviations",
        "mean log size of objects read in ~1 h, in its own hourly spreads, past 2",
        20.0,
    ),
    Feature("deletes_10m", "volume", "log-ratio", "S3 deletes in ~10 min above 1.5x its own peak (at least 10)", 8.0),
    Feature(
        "new_bucket", "context", "0..1", "reads of an S3 bucket it first touched under an hour ago (full at 20 reads)"
    ),
    Feature(
        "new_bucket_reads", "context", "log1p count", "GetObjects in ~1 h from a bucket first read < 1 day ago", 8.0
    ),
    Feature("new_network", "context", "0..1", "source /24 it first used under an hour ago (fades over a day)"),
    Feature("new_client", "context", "0..1", "client (user agent or session-name shape) first seen under an hour ago"),
    Feature("new_region", "context", "0..1", "AWS region it first used under an hour ago (fades over a day)"),
    Feature("new_api", "context", "0/1", "an API (service:eventName) it never called before"),
    Feature("new_apis_10m", "context", "log1p count", "first-time APIs it called in ~10 min", 4.6),
    Feature("errors_10m", "calls", "log-ratio", "failed calls in ~10 min above 1.5x its own peak (at least 5)", 8.0),
    Feature("failed", "calls", "0/1", "the call failed (errorCode present, e.g. AccessDenied)"),
    Feature("hour_rarity", "time", "0..1", "1 - share of its recent active days on which it was active in this hour"),
    Feature(
        "rare_hour_reads",
        "time",
        "rarity x log-ratio",
        "GetObjects in ~1 h above 1.5x the 30/h floor, times hour_rarity (reads in an hour it rarely works)",
        8.0,
    ),
    Feature(
        "secret_reads_10m",
        "calls",
        "log-ratio",
        "credential reads (secrets, parameters) in ~10 min above 1.5x its own peak (at least 5)",
        8.0,
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
SUBSPACES: dict[str, tuple[int, ...]] = {}
for _i, _f in enumerate(FEATURES):
    SUBSPACES.setdefault(_f.group, ())
    SUBSPACES[_f.group] = (*SUBSPACES[_f.group], _i)


# Rates are compared with the larger of the principal's own peak and an absolute floor: reading
# 60 MB or 25 objects in an hour, or 25 calls in a minute of console clicking, is never unusual
# by its volume alone, however quiet the principal was before.
FLOOR_EVT1, FLOOR_EVT10 = 30.0, 100.0
FLOOR_GET10, FLOOR_GET60 = 15.0, 30.0
FLOOR_BYT60 = 50e6
FLOOR_DEL10, FLOOR_ERR10, FLOOR_SEC10 = 10.0, 5.0, 5.0
NEW_BUCKET_READS = 20.0  # GetObjects within the hour at which a young bucket counts as fully new
SPREAD_SETTLED = 13  # active in at most this many hours of the day: its hours are a habit...
SPREAD_ANY = 21  # ...in this many or more: no hour is rare for it (linear between)


def reference(obs: Observation, peer: tuple[float, ...] | None) -> tuple[float, ...]:
    """The peaks an event is compared with: its own once mature, else at least its peer group's."""
    if peer is None or obs.mature:
        return obs.peaks
    own = obs.peaks
    return tuple(own[i] if own[i] > peer[i] else peer[i] for i in range(N_PEAKS))


def _lr(now: float, peak: float, floor: float) -> float:
    """How far ``now`` is past 1.5x ``peak`` (at least ``floor``), in natural log; 0 up to it."""
    v = math.log((1.0 + now) / (1.0 + (floor if floor > peak else peak))) - DEAD_BAND
    return v if v > 0.0 else 0.0


def hour_rarity(obs: Observation) -> float:
    """1 - the share of its recent active days it was active in this hour (or a neighbour),
    weighed by how settled its hours are: a principal active around the clock, or at a
    different hour every day (a deploy role), has no hour that is rare for it."""
    if obs.days_seen < 3:
        return 0.0
    settled = (SPREAD_ANY - obs.hours_active) / (SPREAD_ANY - SPREAD_SETTLED)
    weight = 1.0 if settled >= 1.0 else (settled if settled > 0.0 else 0.0)
    return weight * (1.0 - min(obs.hour_days, obs.days_seen) / obs.days_seen)


def size_excess(obs: Observation) -> float:
    """How far the hour's mean object size is above its typical one, in its own hour-to-hour deviations."""
    if obs.get1h < MIN_SIZE_READS or obs.size_mu <= 0.0 or obs.size_sd <= 0.0:
        return 0.0
    v = (obs.size1h - obs.size_mu) / max(obs.size_sd, MIN_SIZE_SD) - SIZE_DEAD_BAND
    return v if v > 0.0 else 0.0


def row(ev: Event, obs: Observation, ref: tuple[float, ...]) -> list[float]:
    """The feature vector of one event, in ``FEATURE_NAMES`` order; ``ref`` from ``reference``. Pure."""
    if obs.mature:
        young = obs.bucket_age_s < _DAY
        # activity in a bucket first touched under an hour ago: a look at one object is routine
        new_bucket = youth(obs.bucket_age_s) * min(1.0, obs.bucket_get1h / NEW_BUCKET_READS) if ev.bucket else 0.0
        new_bucket_reads = math.log1p(obs.bucket_get1h) if young else 0.0
        new_network = youth(obs.net_age_s)
        new_client = youth(obs.client_age_s)
        new_region = youth(obs.region_age_s)
        new_api = 1.0 if obs.api_novel else 0.0
        new_apis = math.log1p(obs.nov10m)
    else:
        new_bucket = new_bucket_reads = new_network = new_client = new_region = new_api = new_apis = 0.0
    rare = hour_rarity(obs)
    return [
        _lr(obs.evt1m, ref[P_EVT1], FLOOR_EVT1),
        _lr(obs.evt10m, ref[P_EVT10], FLOOR_EVT10),
        _lr(obs.get10m, ref[P_GET10], FLOOR_GET10),
        _lr(obs.get1h, ref[P_GET60], FLOOR_GET60),
        _lr(obs.bytes1h, ref[P_BYT60], FLOOR_BYT60),
        size_excess(obs),
        _lr(obs.del10m, ref[P_DEL10], FLOOR_DEL10),
        new_bucket,
        new_bucket_reads,
        new_network,
        new_client,
        new_region,
        new_api,
        new_apis,
        _lr(obs.err10m, ref[P_ERR10], FLOOR_ERR10),
        1.0 if ev.error_code else 0.0,
        rare,
        rare * _lr(obs.get1h, 0.0, FLOOR_GET60) if rare > 0.0 else 0.0,
        _lr(obs.secrets10m, ref[P_SEC10], FLOOR_SEC10),
    ]


def _age(seconds: float) -> str:
    if seconds == math.inf:
        return "long known"
    if seconds < 60:
        return "first seen just now"
    if seconds < 3600:
        return f"first seen {seconds / 60:.0f} min ago"
    return f"first seen {seconds / 3600:.1f} h ago"


def baseline_value(name: str, obs: Observation, ref: tuple[float, ...]) -> str:
    """This principal's own reference for a feature, as a person would read it."""
    d = obs.distinct
    p = ref
    peer = "" if obs.mature else " (its peer group's, while its own history is short)"
    hours = f"active in this hour on {min(obs.hour_days, obs.days_seen)} of its last {obs.days_seen} active days"
    refs = {
        "events_1m": f"peak {p[P_EVT1]:.0f} events/min{peer}",
        "events_10m": f"peak {p[P_EVT10]:.0f} events/10 min{peer}",
        "reads_10m": f"peak {p[P_GET10]:.0f} GetObjects/10 min{peer}",
        "reads_1h": f"peak {p[P_GET60]:.0f} GetObjects/h{peer}",
        "bytes_1h": f"peak {human_bytes(p[P_BYT60])}/h{peer}",
        "object_size": f"typical object {human_bytes(math.exp(obs.size_mu))}" if obs.size_mu else "no reads yet",
        "deletes_10m": f"peak {p[P_DEL10]:.0f} deletes/10 min{peer}",
        "new_bucket": f"~{d('bucket')} buckets seen before",
        "new_bucket_reads": f"~{d('bucket')} buckets seen before",
        "new_network": f"~{d('prefix')} source networks seen before",
        "new_client": f"~{d('client')} clients seen before",
        "new_region": f"~{d('region')} regions seen before",
        "new_api": f"~{d('api')} APIs seen before",
        "new_apis_10m": f"~{d('api')} APIs seen before",
        "errors_10m": f"peak {p[P_ERR10]:.0f} errors/10 min{peer}",
        "failed": f"peak {p[P_ERR10]:.0f} errors/10 min",
        "hour_rarity": hours,
        "rare_hour_reads": f"{hours}; {FLOOR_GET60:.0f} GetObjects/h is never unusual",
        "secret_reads_10m": f"peak {p[P_SEC10]:.0f} credential reads/10 min{peer}",
    }
    return refs[name]


def current_value(name: str, ev: Event, obs: Observation) -> str:
    """The event's own value for a feature, as a person would read it."""
    hour = f"{int(ev.time // 3600) % 24:02d}:00 UTC"
    values = {
        "events_1m": f"{obs.evt1m:.0f} events/min",
        "events_10m": f"{obs.evt10m:.0f} events/10 min",
        "reads_10m": f"{obs.get10m:.0f} GetObjects/10 min",
        "reads_1h": f"{obs.get1h:.0f} GetObjects/h",
        "bytes_1h": f"{human_bytes(obs.bytes1h)}/h",
        "object_size": f"objects of {human_bytes(math.exp(obs.size1h))} on average" if obs.size1h else "no reads",
        "deletes_10m": f"{obs.del10m:.0f} deletes/10 min",
        "new_bucket": f"s3://{ev.bucket}, {_age(obs.bucket_age_s)}",
        "new_bucket_reads": f"{obs.bucket_get1h:.0f} GetObjects/h from s3://{ev.bucket}, {_age(obs.bucket_age_s)}",
        "new_network": f"{ev.source_ip}, {_age(obs.net_age_s)}",
        "new_client": f"{ev.user_agent or ev.principal.session}, {_age(obs.client_age_s)}",
        "new_region": f"{ev.region}, {_age(obs.region_age_s)}",
        "new_api": f"{ev.service}:{ev.name}",
        "new_apis_10m": f"{obs.nov10m:.0f} first-time APIs/10 min",
        "errors_10m": f"{obs.err10m:.0f} errors/10 min",
        "failed": ev.error_code or "ok",
        "hour_rarity": hour,
        "rare_hour_reads": f"{obs.get1h:.0f} GetObjects/h at {hour}",
        "secret_reads_10m": f"{obs.secrets10m:.0f} credential reads/10 min",
    }
    return values[name]


def phrase(name: str, ev: Event, obs: Observation) -> str:
    """A sentence fragment for an alert summary: what was unusual, in words."""
    words = {
        "events_1m": f"made {obs.evt1m:.0f} calls in a minute",
        "events_10m": f"made {obs.evt10m:.0f} calls in ~10 min",
        "reads_10m": f"read {obs.get10m:.0f} objects in ~10 min",
        "reads_1h": f"read {obs.get1h:.0f} objects within the hour",
        "bytes_1h": f"read {human_bytes(obs.bytes1h)} within the hour",
        "object_size": f"read objects averaging {human_bytes(math.exp(obs.size1h))}" if obs.size1h else "read objects",
        "deletes_10m": f"deleted {obs.del10m:.0f} objects in ~10 min",
        "new_bucket": f"used s3://{ev.bucket}, a bucket it first touched {_ago(obs.bucket_age_s)}",
        "new_bucket_reads": f"read {obs.bucket_get1h:.0f} objects from s3://{ev.bucket} within the hour",
        "new_network": f"called from {ev.source_ip}, a network it first used {_ago(obs.net_age_s)}",
        "new_client": f"used a client it first used {_ago(obs.client_age_s)}",
        "new_region": f"worked in {ev.region}, a region it first used {_ago(obs.region_age_s)}",
        "new_api": f"called {ev.service}:{ev.name} for the first time",
        "new_apis_10m": f"called {max(1, round(obs.nov10m))} APIs it never used before in ~10 min",
        "errors_10m": f"had {obs.err10m:.0f} failed calls in ~10 min",
        "failed": f"had a call fail ({ev.error_code})",
        "hour_rarity": f"was active at {int(ev.time // 3600) % 24:02d}:00 UTC, an hour it is rarely active in",
        "rare_hour_reads": f"read {obs.get1h:.0f} objects within the hour at {int(ev.time // 3600) % 24:02d}:00 UTC, "
        "an hour it is rarely active in",
        "secret_reads_10m": f"read {obs.secrets10m:.0f} stored credentials (secrets, parameters) in ~10 min",
    }
    return words[name]


def _ago(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
