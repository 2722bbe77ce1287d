"""The alert record a person reads, and its JSON line.

Every string that can come from an attacker (user agent, object key, bucket, session name,
ARN) goes through ``textsafe.clip`` on the way out: control characters are escaped and
lengths capped, so an alert can be pasted into a terminal, a ticket or a chat safely.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from detector.textsafe import clip, markdown_escape, slack_escape

KINDS = (
    "unusual_data_access",
    "anomalous_activity",
    "getobject_burst",
    "exfiltration",
    "sensitive_api_first_use",
    "delete_burst",
    "recon_burst",
    "credential_misuse",
)
SEVERITY = {
    "exfiltration": "high",
    "credential_misuse": "high",
    "getobject_burst": "high",
    "delete_burst": "high",
    "sensitive_api_first_use": "medium",
    "recon_burst": "medium",
    "unusual_data_access": "medium",
    "anomalous_activity": "low",
}


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_id(principal: str, kind: str, event_time: float, window_s: float) -> str:
    """The same for every run over the same events, so sinks can deduplicate by it.

    Made of what does not depend on arrival order: the principal, the kind (or the forest's one
    slot) and the ``window_s`` bucket of event time the alert opened in. Which event happened to
    arrive first (S3 files land in any order, seconds apart) does not change it. Two alerts of
    one principal and kind never share a bucket: the next opens only ``window_s`` after the
    last event of the one before (``alerts.dedup_window_s``).
    """
    bucket = int(event_time // window_s)
    return hashlib.sha256(f"{principal}\x1f{kind}\x1f{bucket}".encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Explanation:
    feature: str
    value: str  # this event's value
    baseline: str  # this principal's own reference
    contribution: float  # -log10 tail probability against the training data (higher = more unusual)


@dataclass
class Alert:
    alert_id: str
    kind: str
    principal: str
    principal_arn: str
    caller_class: str
    account_id: str
    score: float
    threshold: float
    first_event_time: float
    last_event_time: float
    detected_at: float
    event_ids: list[str]
    event_count: int
    explanation: list[Explanation]
    summary: str
    status: str = "open"  # open | update
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.kind, "medium")

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "severity": self.severity,
            "status": self.status,
            "principal": clip(self.principal, 512),
            "principal_arn": clip(self.principal_arn, 512),
            "caller_class": self.caller_class,
            "account_id": clip(self.account_id, 32),
            "score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "event_time": iso(self.first_event_time),
            "last_event_time": iso(self.last_event_time),
            "detected_at": dt.datetime.fromtimestamp(self.detected_at, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "event_ids": [clip(e, 64) for e in self.event_ids],
            "event_count": self.event_count,
            # the IDs are the first alerts.max_event_ids; event_count counts them all
            "event_ids_truncated": self.event_count > len(self.event_ids),
            "explanation": [
                {
                    "feature": e.feature,
                    "value": clip(e.value, 256),
                    "baseline": clip(e.baseline, 256),
                    "contribution": e.contribution,
                }
                for e in self.explanation
            ],
            "summary": clip(self.summary, 600),
            "context": {k: clip(v, 256) if isinstance(v, str) else v for k, v in self.context.items()},
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


# How a sink that renders text (Slack mrkdwn, Markdown) must escape each attacker-controlled string.
TEXT_STYLES: dict[str, Callable[[object, int], str]] = {"slack": slack_escape, "markdown": markdown_escape}


def render_text(alert: dict[str, Any], style: str) -> str:
    """An alert (``Alert.to_dict``) as a chat message in ``style`` (``slack`` or ``markdown``).

    Every value is escaped for that format, our own words included, so nothing an attacker put
    in an event (``<!here>``, ``<https://evil|Click>``, ``[login](...)``, ``@channel``) renders
    as a link or a mention: the receiver shows the text as it came, once escaped.
    """
    esc = TEXT_STYLES[style]
    bold = "*" if style == "slack" else "**"
    lines = [
        f"{bold}{esc(alert.get('severity', ''), 16)} {esc(alert.get('kind', ''), 40)}{bold} "
        f"{esc(alert.get('principal_arn') or alert.get('principal', ''), 512)} "
        f"(score {esc(alert.get('score', ''), 16)}, threshold {esc(alert.get('threshold', ''), 16)})",
        esc(alert.get("summary", ""), 600),
    ]
    for e in alert.get("explanation") or []:
        if isinstance(e, dict):
            lines.append(
                f"- {esc(e.get('feature', ''), 40)}: {esc(e.get('value', ''), 256)} "
                f"(usual: {esc(e.get('baseline', ''), 256)})"
            )
    capped = (
        f" (the first {len(alert.get('event_ids') or [])} event IDs listed)" if alert.get("event_ids_truncated") else ""
    )
    lines.append(
        f"alert {esc(alert.get('alert_id', ''), 40)}, {esc(alert.get('status', ''), 16)}, "
        f"{esc(alert.get('event_count', ''), 16)} events from {esc(alert.get('event_time', ''), 40)}{capped}"
    )
    return "\n".join(lines)
