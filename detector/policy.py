"""Alert policy: which observations become findings, separate from how they are scored.

The isolation forest scores; this module decides. Changing a threshold never touches the
model. Two families:

**The forest** (``anomaly_finding``): a principal old enough to alert (``eligible``) whose
events score above its peer group's calibrated threshold *persistently*: ``persist_events``
over-threshold events with no more than ``persist_window_s`` between them. One odd event is
noise; a run of them is behaviour. It explains itself with the features that were rarest for
the principal's peer group.

**Explicit rules** (``rule_findings``), the safety net for what must alert however the forest
scores it. Each is documented with sample events that fire and do not fire in
``tests/unit/test_policy.py``:

* ``getobject_burst``: GetObjects (or bytes) in ~10 min above an absolute floor *and* a
  multiple of this principal's own decayed peak (its peer group's, while young); per
  principal and per principal x bucket.
* ``exfiltration``: such a burst corroborated by a new network, client or bucket, or an hour
  the principal is rarely active in (floors x ``corroborated_factor``); or a bucket first read
  within the day being drained with something else off.
* ``delete_burst``: S3 deletes, same shape as the GetObject burst.
* ``recon_burst``: many first-time APIs within ~10 min.
* ``credential_misuse``: an automation role (EC2 instance profile, ECS task, Lambda) used
  from a desktop client (macOS/Windows CLI or SDK) it never used, or from a new network with
  a new client: its credentials were taken off the workload (the flaws2 and OTRF real
  attacks look exactly like this).
* ``sensitive_api_first_use``: a sensitive API (sharing snapshots, bucket policies, trail
  changes, new credentials, ...) this principal never called before. Credential reads
  (``GetSecretValue``, ...) are routine the first time too, so they also need something else
  off: a new network or client, an hour it is rarely active in, or a failed call.

Cold start: until a principal's own history is mature (``Observation.mature``) it has no
novelty to speak of and its peaks are its peer group's; rules that lean on its history
(recon, burst multipliers) ask ``cold_start_factor`` times more of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from detector.baseline import P_BYT10, P_DEL10, P_GET10, Observation, ua_family, youth
from detector.event import Event
from detector.features import FEATURE_INDEX, FEATURE_NAMES, _ago, hour_rarity
from detector.principal import AUTOMATION
from detector.settings import Burst, Thresholds
from detector.textsafe import human_bytes

_DAY = 86400.0
# An hour the principal was active in on at most 1 in 10 of its recent days.
RARE_HOUR = 0.9
# Workloads run on Linux (or are AWS SDKs in AWS); a macOS/Windows client on their
# credentials is a person holding them.
DESKTOP_OS = (" darwin", " windows", " mac os")


@dataclass(slots=True)
class Finding:
    kind: str
    score: float  # in the unit of ``threshold`` (objects, APIs, or the calibrated anomaly score)
    threshold: float
    features: tuple[str, ...]  # the features that made it fire, most important first
    detail: str  # a sentence fragment for the summary
    family: str = "rules"  # rules | forest


def _burst(
    now: float, nbytes: float, peak: float, peak_bytes: float, rule: Burst, corroborated: bool, young: float
) -> tuple[float, float, str] | None:
    """(value, floor crossed, what was counted), or None. Objects and bytes are checked separately.

    Corroborating evidence (new network, client or bucket; a rare hour) lowers the floors: the
    same volume means more when it comes from somewhere new, and catching it earlier matters.
    """
    scale = (rule.corroborated_factor if corroborated else 1.0) * young
    floor = max(rule.min_objects * scale, rule.multiplier * peak)
    if now >= floor:
        return now, floor, f"{now:.0f} objects ({human_bytes(nbytes)})"
    if rule.min_bytes > 0:
        bfloor = max(rule.min_bytes * scale, rule.multiplier * peak_bytes)
        if nbytes >= bfloor:
            return nbytes, bfloor, f"{human_bytes(nbytes)} in {now:.0f} objects"
    return None


def rule_findings(
    ev: Event,
    obs: Observation,
    ref: tuple[float, ...],
    th: Thresholds,
    sensitive: frozenset[str],
    sensitive_reads: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Explicit detectors for one event; ``ref`` are the peaks it is compared with. Cheap."""
    out: list[Finding] = []
    mature = obs.mature
    young = 1.0 if mature else th.cold_start_factor
    if mature:
        novelty = tuple(
            name
            for name, age in (
                ("new_network", obs.net_age_s),
                ("new_client", obs.client_age_s),
                ("new_bucket", obs.bucket_age_s if ev.bucket else _INF),
            )
            if age < 3600.0
        )
    else:
        novelty = ()
    rare_hour = hour_rarity(obs) >= RARE_HOUR
    # A bucket first read within the day by an established principal: a new starter reads new
    # buckets, an established one rarely starts draining one.
    new_bucket = mature and obs.bucket_age_s < _DAY
    corroborated = bool(novelty) or rare_hour
    if ev.is_get_object:
        hit = _burst(obs.get10m, obs.bytes10m, ref[P_GET10], ref[P_BYT10], th.getobject_burst, corroborated, young)
        if hit is not None:
            out.append(
                Finding(
                    "exfiltration" if corroborated else "getobject_burst",
                    hit[0],
                    hit[1],
                    ("reads_10m", "bytes_1h", *novelty, *(["hour_rarity"] if rare_hour else [])),
                    f"read {hit[2]} in ~10 min, against its own peak of {ref[P_GET10]:.0f} objects",
                )
            )
        elif ev.bucket:
            hit = _burst(
                obs.bucket_get10m,
                obs.bucket_bytes10m,
                ref[P_GET10],
                ref[P_BYT10],
                th.bucket_burst,
                corroborated,
                young,
            )
            if hit is not None:
                out.append(
                    Finding(
                        "exfiltration" if corroborated else "getobject_burst",
                        hit[0],
                        hit[1],
                        ("reads_10m", "new_bucket", *novelty),
                        f"read {hit[2]} from s3://{ev.bucket} in ~10 min",
                    )
                )
        # A new bucket being drained, and something else off: jobs and people start reading
        # new buckets all the time, at their usual hours, from their usual places.
        if (
            new_bucket
            and obs.bucket_get1h >= th.new_bucket_drain_objects
            and ([n for n in novelty if n != "new_bucket"] or rare_hour)
        ):
            out.append(
                Finding(
                    "exfiltration",
                    obs.bucket_get1h,
                    th.new_bucket_drain_objects,
                    ("new_bucket_reads", *(["hour_rarity"] if rare_hour else []), *novelty),
                    f"read {obs.bucket_get1h:.0f} objects within the hour from s3://{ev.bucket}, first read "
                    f"{_ago(obs.bucket_age_s)}" + (", in an hour it is rarely active in" if rare_hour else ""),
                )
            )
    elif ev.is_delete:
        hit = _burst(obs.del10m, 0.0, ref[P_DEL10], 0.0, th.delete_burst, corroborated, young)
        if hit is not None:
            out.append(
                Finding(
                    "delete_burst",
                    hit[0],
                    hit[1],
                    ("deletes_10m",),
                    f"deleted {obs.del10m:.0f} S3 objects in ~10 min, against its own peak of {ref[P_DEL10]:.0f}",
                )
            )
    if (
        (obs.caller_class or ev.principal.caller_class) == AUTOMATION
        and ev.principal.identity_type == "AssumedRole"
        and ev.user_agent
        and (obs.client_age_s < 60.0 or obs.total == 0)
    ):
        family = ua_family(ev.user_agent)
        desktop = family.endswith(DESKTOP_OS)
        if desktop or (mature and youth(obs.net_age_s) >= 1.0):
            out.append(
                Finding(
                    "credential_misuse",
                    1.0,
                    1.0,
                    ("new_client", "new_network", "new_api"),
                    f"(an automation role) was used by a new client '{family}'"
                    + (" from a desktop OS" if desktop else f" from {ev.source_ip or 'no address'}, a new network"),
                )
            )
    if obs.nov10m >= th.recon_novel_apis * young and obs.total >= th.min_history_events:
        out.append(
            Finding(
                "recon_burst",
                obs.nov10m,
                th.recon_novel_apis * young,
                ("new_apis_10m", "errors_10m", "new_api"),
                f"called {obs.nov10m:.0f} APIs it never used before within ~10 min",
            )
        )
    if (
        th.sensitive_first_use
        and ev.name in sensitive
        and (obs.api_novel or obs.total == 0)
        and (ev.name not in sensitive_reads or novelty or rare_hour or ev.error_code)
    ):
        out.append(
            Finding(
                "sensitive_api_first_use",
                1.0,
                1.0,
                ("new_api", *novelty),
                f"called sensitive API {ev.service}:{ev.name} for the first time"
                + (f" (it failed: {ev.error_code})" if ev.error_code else ""),
            )
        )
    return out


_INF = float("inf")
# Features that measure one fact twice count once towards ``min_unusual_features``: reads from a
# bucket first touched today are "a new bucket" however many of them there are, and a burst is
# "more than usual" however many of its windows it fills (a person's `aws s3 sync` of a dataset
# they always read, from their own desk, is one fact; the rules judge volume alone).
SAME_SIGNAL = {
    "new_bucket_reads": "new_bucket",
    **{name: "volume" for name in ("events_1m", "events_10m", "reads_10m", "reads_1h", "bytes_1h")},
}
# ...and a feature that is itself a conjunction of two facts counts as both: reads in a rare
# hour are "a rare hour" and "reads", whichever of the two alone is common in the peer group.
COMPOUND = {"rare_hour_reads": ("hour_rarity", "volume")}


def signals(features: list[str]) -> set[str]:
    """The distinct facts among unusual features (``SAME_SIGNAL``, ``COMPOUND``)."""
    out: set[str] = set()
    for name in features:
        out.update(COMPOUND.get(name, (SAME_SIGNAL.get(name, name),)))
    return out


def eligible(obs: Observation, th: Thresholds) -> bool:
    """Old enough for the forest's verdict: the calibration only knows principals like these."""
    return (
        obs.total >= th.min_history_events
        and obs.age_s >= th.min_age_hours * 3600.0
        and obs.days_seen >= th.min_active_days
    )


def anomaly_finding(
    ev: Event,
    obs: Observation,
    score: float,
    threshold: float,
    surprise: list[float],
    th: Thresholds,
    phrase: str,
) -> Finding | None:
    """The forest's verdict for an event that persisted over threshold; None if nothing explains it."""
    ranked = sorted(range(len(surprise)), key=lambda j: -surprise[j])
    unusual = [FEATURE_NAMES[j] for j in ranked if surprise[j] >= th.min_surprise]
    if len(signals(unusual)) < th.min_unusual_features:
        return None
    kind = "unusual_data_access" if ev.is_data or ev.bucket else "anomalous_activity"
    return Finding(kind, score, threshold, tuple(unusual), phrase, family="forest")


__all__ = ["FEATURE_INDEX", "Finding", "anomaly_finding", "eligible", "rule_findings"]
