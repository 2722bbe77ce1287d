"""Alert policy: which observations become findings, separate from how they are scored.

The isolation forest only scores; this module decides. Changing a threshold never touches
the model. Rules here are explicit and explainable:

* ``getobject_burst``: GetObjects (or bytes) in ~10 min above an absolute floor *and* a
  multiple of this principal's own decayed peak; per principal and per principal x bucket.
* ``exfiltration``: a bucket this principal first read less than a day ago being drained
  (many objects within the hour), or a burst that coincides with a new network, user agent
  or bucket.
* ``delete_burst``: S3 deletes, same shape as the GetObject burst.
* ``recon_burst``: many first-time APIs within ~10 min, for a principal with a baseline.
* ``credential_misuse``: an automation role (EC2 instance profile, ECS task, Lambda) used
  from a desktop client (macOS/Windows CLI or SDK) it never used, or from a new network
  with a new client: its credentials were taken off the workload (the flaws2 and OTRF
  real attacks look exactly like this).
* ``sensitive_api_first_use``: a sensitive API (sharing snapshots, bucket policies, trail
  changes, new credentials, ...) this principal never called before. Credential reads
  (``GetSecretValue``, ...) are routine the first time too, so they also need something else
  off: a new network or client (now or within the hour), an hour holding < 2% of the
  principal's activity, or a failed call.
* ``unusual_data_access`` / ``anomalous_activity``: the forest's score above the
  threshold, for a principal old enough to have a baseline, with enough individually
  unusual features to explain it.
"""

from __future__ import annotations

from dataclasses import dataclass

from detector.baseline import OFF_HOURS_SHARE, P_BYT10, P_DEL10, P_GET10, Observation, ua_family
from detector.event import Event
from detector.principal import AUTOMATION
from detector.settings import Burst, Thresholds

_DAY = 86400.0
# A feature counts as "unusual" in an explanation when at most ~0.3% of training rows are as
# extreme (surprise = -log10(tail) >= 2.5). At 1% (2.0), a failed call at an odd hour was enough.
UNUSUAL_SURPRISE = 2.5
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


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _burst(
    now: float, nbytes: float, peak: float, peak_bytes: float, rule: Burst, corroborated: bool
) -> tuple[float, float, str] | None:
    """(value, floor crossed, what was counted), or None. Objects and bytes are checked separately.

    Corroborating evidence (new network, client or bucket; off-hours) lowers the floors: the
    same volume means more when it comes from somewhere new, and catching it earlier matters.
    """
    scale = rule.corroborated_factor if corroborated else 1.0
    floor = max(rule.min_objects * scale, rule.multiplier * peak)
    if now >= floor:
        return now, floor, f"{now:.0f} objects ({_gb(nbytes)})"
    if rule.min_bytes > 0:
        bfloor = max(rule.min_bytes * scale, rule.multiplier * peak_bytes)
        if nbytes >= bfloor:
            return nbytes, bfloor, f"{_gb(nbytes)} in {now:.0f} objects"
    return None


# The novelty features that corroborate a burst, for each (prefix, ua, bucket) combination.
_NOVELTY: tuple[tuple[str, ...], ...] = tuple(
    tuple(name for bit, name in ((4, "prefix_novel"), (2, "ua_novel"), (1, "bucket_novel")) if i & bit)
    for i in range(8)
)


def rule_findings(
    ev: Event,
    obs: Observation,
    th: Thresholds,
    sensitive: frozenset[str],
    sensitive_reads: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Explicit detectors for one event. Cheap: float compares on the observation."""
    out: list[Finding] = []
    p = obs.peaks
    novelty = _NOVELTY[4 * obs.prefix_novel + 2 * obs.ua_novel + obs.bucket_novel]
    off_hours = obs.total >= th.min_history_events and obs.hour_share < OFF_HOURS_SHARE
    # A bucket new to an established principal (first read within the day, after its warm-up):
    # a new starter reads new buckets, an established one rarely starts draining one.
    established = obs.age_s - obs.bucket_age_s >= th.min_age_hours * 3600.0
    new_bucket = obs.bucket_age_s < _DAY and established
    new_origin = obs.origin_age_s < 3600.0 and obs.total >= th.min_history_events
    corroborated = bool(novelty) or off_hours or new_bucket or new_origin
    if ev.is_get_object:
        hit = _burst(obs.get10m, obs.bytes10m, p[P_GET10], p[P_BYT10], th.getobject_burst, corroborated)
        if hit is not None:
            out.append(
                Finding(
                    "exfiltration" if corroborated else "getobject_burst",
                    hit[0],
                    hit[1],
                    ("get_burst_10m", "bytes_burst_1h", *novelty),
                    f"read {hit[2]} in ~10 min, against its own peak of {p[P_GET10]:.0f} objects",
                )
            )
        elif ev.bucket:
            hit = _burst(
                obs.bucket_get10m,
                obs.bucket_bytes10m,
                p[P_GET10],
                p[P_BYT10],
                th.bucket_burst,
                corroborated,
            )
            if hit is not None:
                out.append(
                    Finding(
                        "exfiltration" if corroborated else "getobject_burst",
                        hit[0],
                        hit[1],
                        ("get_burst_10m", "bucket_novel"),
                        f"read {hit[2]} from s3://{ev.bucket} in ~10 min",
                    )
                )
        # A new bucket being drained, and something else off: jobs and people start reading
        # new buckets all the time, at their usual hours, from their usual places.
        if new_bucket and obs.bucket_get1h >= th.new_bucket_drain_objects and (novelty or off_hours):
            out.append(
                Finding(
                    "exfiltration",
                    obs.bucket_get1h,
                    th.new_bucket_drain_objects,
                    ("new_bucket_reads_1h", *(["hour_rarity"] if off_hours else []), *novelty),
                    f"read {obs.bucket_get1h:.0f} objects within the hour from s3://{ev.bucket}, first read "
                    f"{obs.bucket_age_s / 3600:.1f} h ago" + (", outside its usual hours" if off_hours else ""),
                )
            )
        if obs.off_reads1h >= th.off_hours_reads and obs.total >= th.min_history_events:
            out.append(
                Finding(
                    "unusual_data_access",
                    obs.off_reads1h,
                    th.off_hours_reads,
                    ("hour_rarity", "hour_novel", "get_burst_10m", "bytes_burst_1h"),
                    f"read {obs.off_reads1h:.0f} objects within the hour at {int(ev.time // 3600) % 24:02d}:00 UTC, "
                    f"an hour it is almost never active in (s3://{ev.bucket})",
                )
            )
    elif ev.is_delete:
        hit = _burst(obs.del10m, 0.0, p[P_DEL10], 0.0, th.delete_burst, corroborated)
        if hit is not None:
            out.append(
                Finding(
                    "delete_burst",
                    hit[0],
                    hit[1],
                    ("delete_burst_10m",),
                    f"deleted {obs.del10m:.0f} S3 objects in ~10 min, against its own peak of {p[P_DEL10]:.0f}",
                )
            )
    if (
        ev.principal.caller_class == AUTOMATION
        and ev.principal.identity_type == "AssumedRole"
        and ev.user_agent
        and (obs.ua_novel or obs.total == 0)
    ):
        family = ua_family(ev.user_agent)
        desktop = family.endswith(DESKTOP_OS)
        if desktop or (obs.prefix_novel and obs.total >= th.min_history_events):
            out.append(
                Finding(
                    "credential_misuse",
                    1.0,
                    1.0,
                    ("ua_novel", "prefix_novel", "ip_novel", "api_novel"),
                    f"(an automation role) was used by a new client '{family}'"
                    + (" from a desktop OS" if desktop else " from a new network"),
                )
            )
    if obs.nov10m >= th.recon_novel_apis and obs.total >= th.min_history_events:
        out.append(
            Finding(
                "recon_burst",
                obs.nov10m,
                th.recon_novel_apis,
                ("novel_api_10m", "error_burst_10m", "api_novel"),
                f"called {obs.nov10m:.0f} APIs it never used before within ~10 min",
            )
        )
    if (
        th.sensitive_first_use
        and ev.name in sensitive
        and (obs.api_novel or obs.total == 0)
        and (ev.name not in sensitive_reads or novelty or off_hours or new_origin or ev.error_code)
    ):
        out.append(
            Finding(
                "sensitive_api_first_use",
                1.0,
                1.0,
                ("api_novel", *novelty),
                f"called sensitive API {ev.service}:{ev.name} for the first time"
                + (f" (it failed: {ev.error_code})" if ev.error_code else ""),
            )
        )
    return out


def anomaly_finding(
    ev: Event,
    obs: Observation,
    score: float,
    threshold: float,
    surprises: list[tuple[str, float]],
    th: Thresholds,
) -> Finding | None:
    """The forest's verdict, gated on a mature baseline and an explainable set of features."""
    if score < threshold:
        return None
    if obs.total < th.min_history_events or obs.age_s < th.min_age_hours * 3600.0:
        return None
    unusual = [name for name, s in surprises if s >= UNUSUAL_SURPRISE]
    if len(unusual) < th.min_unusual_features:
        return None
    kind = "unusual_data_access" if ev.is_data or ev.bucket else "anomalous_activity"
    return Finding(
        kind,
        score,
        threshold,
        tuple(unusual),
        f"made an unusual {ev.service}:{ev.name} call (unusual: {', '.join(unusual[:4])})",
    )
