"""Detection quality on a labelled archive: recall per scenario, false alerts, delay.

An alert *detects* a labelled attack when it names one of the attack's eventIDs, or when
it is about the attack's principal (same ``userIdentity.arn``) and fired between the
attack's start and one hour after its end. Every other alert opened in the test window is
a false alert. Delay is event time: the time of the event at which the first matching
alert fired minus the attack's first event, i.e. what the pipeline itself adds once
CloudTrail has delivered the events.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from detector.ingest import Ingest
from detector.model import ModelArtifact
from detector.pipeline import Detector
from detector.replay import open_inputs, run_replay
from detector.settings import Settings

MATCH_AFTER_END_S = 3600.0


def score_alerts(
    alerts: Iterable[dict[str, Any]], labels: list[dict[str, Any]], test_start: float, test_end: float, principals: int
) -> dict[str, Any]:
    """Pure: alerts (as written, status ``open`` only) + labels -> the report."""
    by_event: dict[str, int] = {}
    for i, label in enumerate(labels):
        for eid in label["event_ids"]:
            by_event[eid] = i
    detected: dict[int, float] = {}
    false_alerts: list[dict[str, Any]] = []
    total = 0
    for a in alerts:
        if a.get("status", "open") != "open":
            continue
        trigger = float(a["context"]["trigger_event_time"])
        if trigger < test_start:
            continue
        total += 1
        hit = next((by_event[e] for e in a["event_ids"] if e in by_event), None)
        if hit is None:
            hit = next(
                (
                    i
                    for i, label in enumerate(labels)
                    if a.get("principal_arn") == label["principal_arn"]
                    and label["start"] <= trigger <= label["end"] + MATCH_AFTER_END_S
                ),
                None,
            )
        if hit is None:
            false_alerts.append(a)
            continue
        delay = max(0.0, trigger - float(labels[hit]["start"]))
        detected[hit] = min(delay, detected.get(hit, delay))
    per_scenario: dict[str, dict[str, Any]] = defaultdict(lambda: {"attacks": 0, "detected": 0, "delays_s": []})
    for i, label in enumerate(labels):
        row = per_scenario[label["scenario"]]
        row["attacks"] += 1
        if i in detected:
            row["detected"] += 1
            row["delays_s"].append(round(detected[i], 1))
    for row in per_scenario.values():
        row["recall"] = row["detected"] / row["attacks"] if row["attacks"] else 0.0
    days = max((test_end - test_start) / 86400.0, 1e-9)
    delays = list(detected.values())
    false_kinds: dict[str, int] = defaultdict(int)
    for a in false_alerts:
        false_kinds[a["kind"]] += 1
    return {
        "scenarios": dict(per_scenario),
        "recall": len(detected) / len(labels) if labels else 0.0,
        "alerts_in_test_window": total,
        "false_alerts": len(false_alerts),
        "false_alerts_by_kind": dict(false_kinds),
        "principal_days": round(principals * days, 1),
        "false_per_1000_principal_days": round(1000.0 * len(false_alerts) / (principals * days), 2),
        "median_delay_s": statistics.median(delays) if delays else None,
        "false_alert_samples": [
            {k: a[k] for k in ("kind", "principal", "summary", "event_time")} for a in false_alerts[:10]
        ],
    }


def evaluate_archive(
    archive: Path, settings: Settings, model: ModelArtifact, alerts_out: Path | None = None
) -> dict[str, Any]:
    """Replay a ``detector simulate`` archive through the live path and score the alerts."""
    meta = orjson.loads((archive / "simulation.json").read_bytes())
    labels = [orjson.loads(line) for line in (archive / "labels.jsonl").read_bytes().splitlines() if line.strip()]
    alerts: list[dict[str, Any]] = []
    detector = Detector(settings, model, store={})
    summary = run_replay(
        open_inputs([str(archive / "AWSLogs")]),
        detector,
        Ingest(),
        settings.pipeline.allowed_lateness_s,
        settings.pipeline.batch_size,
        on_alerts=lambda batch: alerts.extend(a.to_dict() for a in batch),
    )
    if alerts_out is not None:
        alerts_out.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in alerts))
    test_start = float(meta["test_start"])
    test_end = float(meta["start"]) + 86400.0 * int(meta["days"])
    principals = len(meta.get("principals") or []) or int(meta.get("n_principals", 0)) or len(detector.store)
    report = score_alerts(alerts, labels, test_start, test_end, principals)
    report["events"] = summary.events
    report["model"] = model.version
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'scenario':28} {'attacks':>7} {'detected':>8} {'recall':>7}  delays (s)"]
    for name, row in sorted(report["scenarios"].items()):
        lines.append(f"{name:28} {row['attacks']:>7} {row['detected']:>8} {row['recall']:>7.0%}  {row['delays_s']}")
    lines.append(f"overall recall: {report['recall']:.0%}")
    lines.append(
        f"false alerts: {report['false_alerts']} over {report['principal_days']} principal-days "
        f"= {report['false_per_1000_principal_days']} per 1000 principal-days {report['false_alerts_by_kind']}"
    )
    lines.append(f"median detection delay: {report['median_delay_s']} s (event time)")
    return "\n".join(lines)
