"""Detection quality on labelled traffic: recall per scenario and family, false alerts, delay.

An alert *detects* a labelled attack when it names one of the attack's eventIDs, or when
it is about the attack's principal (same ``userIdentity.arn``) and fired between the
attack's start and one hour after its end. Every other alert opened in the test window is
a false alert. Only alerts whose first event lies in the test days count, and updates are
folded into the alert they update. Delay is event time: the time of the event at which the
first matching alert fired minus the attack's first event, i.e. what the pipeline itself
adds once CloudTrail has delivered the events. Each alert says which family raised it
(``context.family``: ``forest`` or ``rules``), so one run reports the whole system, the
forest alone and the rules alone.

Three ways to run it:

* ``evaluate_archive``: one ``detector simulate`` output, through ``detector replay``'s own
  loop (files, decoding, reordering);
* ``run_suite``: many seeds of the simulator, in memory, each trained on its own history
  (``detector train``'s code) and replayed history + test days with warm baselines, or test
  days only with no history (``cold``: the first days of a new deployment);
* ``run_sweep``: one scenario at a series of intensities on many seeds; the history of a
  seed is replayed once and its state reused for every intensity.

Events reach the pipeline as CloudTrail delivers them: each 1-10 minutes late (a fixed
delay per eventID, so a seed's background is delivered identically whatever attack is
injected), through the same reorder buffer and micro-batches as every runtime.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import heapq
import math
import multiprocessing
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detector.event import Event
from detector.ingest import Ingest
from detector.model import ModelArtifact
from detector.ordering import Reorder
from detector.pipeline import BatchResult, Detector
from detector.replay import Progress, TrainingRows, open_inputs, run_replay
from detector.settings import Settings

MATCH_AFTER_END_S = 3600.0
FAMILIES = ("forest", "rules")
_DELIVERY = (60.0, 600.0)  # CloudTrail's S3 delivery: 1-10 minutes after the call


def score_alerts(
    alerts: Iterable[dict[str, Any]], labels: list[dict[str, Any]], test_start: float, test_end: float, principals: int
) -> dict[str, Any]:
    """Pure: alerts (as written, status ``open`` only) + labels -> the report."""
    by_event: dict[str, int] = {}
    for i, label in enumerate(labels):
        for eid in label["event_ids"]:
            by_event[eid] = i
    detected: dict[int, float] = {}
    detected_by: dict[int, dict[str, float]] = defaultdict(dict)  # label -> family -> delay
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
        fam = str(a["context"].get("family", "rules"))
        detected_by[hit][fam] = min(delay, detected_by[hit].get(fam, delay))
    per_scenario: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"attacks": 0, "detected": 0, "delays_s": [], "forest": 0, "rules": 0, "intensities": []}
    )
    for i, label in enumerate(labels):
        row = per_scenario[label["scenario"]]
        row["attacks"] += 1
        row["intensities"].append(label.get("intensity"))
        if i in detected:
            row["detected"] += 1
            row["delays_s"].append(round(detected[i], 1))
        for fam in detected_by.get(i, {}):
            row[fam] += 1
    for row in per_scenario.values():
        row["recall"] = row["detected"] / row["attacks"] if row["attacks"] else 0.0
    days = max((test_end - test_start) / 86400.0, 1e-9)
    delays = list(detected.values())
    false_kinds: dict[str, int] = defaultdict(int)
    false_families: dict[str, int] = defaultdict(int)
    for a in false_alerts:
        false_kinds[a["kind"]] += 1
        false_families[str(a["context"].get("family", "rules"))] += 1
    return {
        "scenarios": dict(per_scenario),
        "recall": len(detected) / len(labels) if labels else 0.0,
        "recall_forest": sum(1 for d in detected_by.values() if "forest" in d) / len(labels) if labels else 0.0,
        "recall_rules": sum(1 for d in detected_by.values() if "rules" in d) / len(labels) if labels else 0.0,
        "alerts_in_test_window": total,
        "false_alerts": len(false_alerts),
        "false_alerts_by_kind": dict(false_kinds),
        "false_alerts_by_family": dict(false_families),
        "principal_days": round(principals * days, 1),
        "false_per_1000_principal_days": round(1000.0 * len(false_alerts) / (principals * days), 2),
        "median_delay_s": statistics.median(delays) if delays else None,
        "false_alert_samples": [
            {k: a[k] for k in ("kind", "principal", "summary", "event_time")} for a in false_alerts[:10]
        ],
    }


def only_family(alerts: Iterable[dict[str, Any]], only: str | None) -> list[dict[str, Any]]:
    """The alerts one family raised (``--only``); both families' alerts are independent kinds."""
    return [a for a in alerts if only is None or a["context"].get("family", "rules") == only]


def evaluate_archive(
    archive: Path,
    settings: Settings,
    model: ModelArtifact,
    alerts_out: Path | None = None,
    only: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replay a ``detector simulate`` archive through the live path and score the alerts."""
    meta = orjson.loads((archive / "simulation.json").read_bytes())
    labels = [orjson.loads(line) for line in (archive / "labels.jsonl").read_bytes().splitlines() if line.strip()]
    alerts: list[dict[str, Any]] = []
    detector = Detector(settings, model, store={}, only=only)
    summary = run_replay(
        open_inputs([str(archive / "AWSLogs")]),
        detector,
        Ingest(),
        settings.pipeline.allowed_lateness_s,
        settings.pipeline.batch_size,
        on_alerts=lambda batch: alerts.extend(a.to_dict() for a in batch),
        progress=progress,
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


# -- in memory, many seeds ---------------------------------------------------------------------
def _delay(event_id: str) -> float:
    h = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")
    return _DELIVERY[0] + (_DELIVERY[1] - _DELIVERY[0]) * h / 2.0**64


def delivered(events: Iterable[dict[str, Any]]) -> Iterator[tuple[float, Event]]:
    """(delivery time, event) in delivery order, for events that come in (roughly) event time order."""
    heap: list[tuple[float, int, Event]] = []
    for n, raw in enumerate(events):
        ev = Event.of(raw)
        heapq.heappush(heap, (ev.time + _delay(ev.event_id), n, ev))
        # the simulator's stream is within ~20 s of event-time order: anything due before this
        # event's own time can no longer be overtaken
        while heap and heap[0][0] < ev.time:
            t, _, out = heapq.heappop(heap)
            yield t, out
    while heap:
        t, _, out = heapq.heappop(heap)
        yield t, out


class Stream:
    """Delivered events -> reorder buffer -> micro-batches -> ``Detector.process``."""

    def __init__(self, detector: Detector, settings: Settings, on_result: Callable[[BatchResult], None]) -> None:
        self.detector = detector
        self.batch_size = settings.pipeline.batch_size
        self.reorder: Reorder[Event] = Reorder(settings.pipeline.allowed_lateness_s)
        self.pending: list[Event] = []
        self.on_result = on_result

    def push(self, events: list[Event]) -> None:
        self.pending.extend(self.reorder.push(events))
        while len(self.pending) >= self.batch_size:
            self.on_result(self.detector.process(self.pending[: self.batch_size]))
            del self.pending[: self.batch_size]

    def flush(self) -> None:
        self.pending.extend(self.reorder.flush())
        for i in range(0, len(self.pending), self.batch_size):
            self.on_result(self.detector.process(self.pending[i : i + self.batch_size]))
        self.pending = []


def _feed(stream: Stream, items: Iterable[tuple[float, Event]], until: float = math.inf) -> tuple[float, Event] | None:
    """Push delivered events until one is delivered at or after ``until``; return that one."""
    chunk: list[Event] = []
    for t, ev in items:
        if t >= until:
            stream.push(chunk)
            return t, ev
        chunk.append(ev)
        if len(chunk) >= 1024:
            stream.push(chunk)
            chunk = []
    stream.push(chunk)
    return None


@dataclass
class SeedConfig:
    days: int = 10
    test_days: int = 3
    principals: int = 60
    scenarios: tuple[str, ...] | None = None
    intensity: Any = "random"
    variant: Any = "random"
    cold: bool = False
    trees: int = 100
    settings: Settings = field(default_factory=Settings)
    only: str | None = None  # keep one family of detections (ablation)


def _plan(seed: int, cfg: SeedConfig, intensity: Any = None, scenarios: Sequence[str] | None = None) -> Any:
    from detector import simulate

    kwargs: dict[str, Any] = {
        "days": cfg.days,
        "seed": seed,
        "scenarios": scenarios if scenarios is not None else cfg.scenarios,
        "test_days": cfg.test_days,
        "principals": cfg.principals,
    }
    extra = {"intensity": intensity if intensity is not None else cfg.intensity, "variant": cfg.variant}
    try:
        return simulate.plan(**kwargs, **extra)
    except TypeError:  # a simulator without intensity control
        return simulate.plan(**kwargs)


def train_on_history(seed: int, cfg: SeedConfig) -> ModelArtifact:
    """``detector train`` on a seed's history days, in memory."""
    from detector import simulate
    from detector.train import fit_rows

    p = _plan(seed, cfg, scenarios=())
    store: dict[str, bytes] = {}
    det = Detector(cfg.settings, None, store=store)
    chunks: list[tuple[np.ndarray, np.ndarray, list[str], list[str], np.ndarray]] = []

    def keep(result: BatchResult) -> None:
        times = np.fromiter((ev.time for ev in result.events), float, len(result.events))
        mask = times < p.test_start
        if mask.any():
            idx = np.flatnonzero(mask).tolist()
            chunks.append(
                (
                    result.features[mask],
                    result.eligible[mask],
                    [result.classes[i] for i in idx],
                    [result.events[i].principal.key for i in idx],
                    (times[mask] // 3600).astype(np.int64),
                )
            )

    stream = Stream(det, cfg.settings, keep)
    _feed(stream, delivered(simulate.iter_events(p)), until=p.test_start)
    stream.flush()
    rows = TrainingRows(
        np.concatenate([c[0] for c in chunks]),
        np.concatenate([c[1] for c in chunks]),
        np.array([c for ch in chunks for c in ch[2]]),
        np.array([k for ch in chunks for k in ch[3]]),
        p.start,
        p.test_start,
        np.concatenate([c[4] for c in chunks]),
    )
    artifact, _ = fit_rows(rows, store, trees=cfg.trees, seed=seed)
    return artifact


def _alerts_of(result: BatchResult, out: list[dict[str, Any]]) -> None:
    out.extend(a.to_dict() for a in result.alerts)


def run_seed(seed: int, cfg: SeedConfig) -> dict[str, Any]:
    """One seed: train on its history, replay it (warm, or test days only when cold), score."""
    from detector import simulate

    model = train_on_history(seed, cfg)
    p = _plan(seed, cfg)
    alerts: list[dict[str, Any]] = []
    det = Detector(cfg.settings, model, store={}, only=cfg.only)
    stream = Stream(det, cfg.settings, lambda r: _alerts_of(r, alerts))
    items = delivered(simulate.iter_events(p))
    if cfg.cold:
        items = ((t, ev) for t, ev in items if t >= p.test_start)
    _feed(stream, items)
    stream.flush()
    labels = [_label_dict(lab) for lab in simulate.labels(p)]
    principals = len(simulate.roster(p))
    report = score_alerts(alerts, labels, p.test_start, p.end, principals)
    report["seed"] = seed
    report["labels"] = labels
    report["alerts"] = [
        a for a in alerts if a["status"] == "open" and a["context"]["trigger_event_time"] >= p.test_start
    ]
    return report


def _label_dict(label: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(label)


def _call(fn_args: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    return fn_args[0](*fn_args[1])


def _map(
    fn: Callable[..., Any],
    args: list[tuple[Any, ...]],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """``fn(*a)`` for each of ``args``, in order; ``progress(done, total)`` after each one."""
    out: list[Any] = []
    if workers <= 1 or len(args) <= 1:
        for a in args:
            out.append(fn(*a))
            if progress is not None:
                progress(len(out), len(args))
        return out
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(min(workers, len(args))) as pool:
        for result in pool.imap(_call, [(fn, a) for a in args]):  # the pool forks before any progress thread
            out.append(result)
            if progress is not None:
                progress(len(out), len(args))
    return out


def run_suite(
    seeds: Sequence[int], cfg: SeedConfig, workers: int = 1, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Every seed of ``seeds``; the aggregate says per scenario in how many seeds it was detected."""
    reports = _map(run_seed, [(s, cfg) for s in seeds], workers, progress)
    return aggregate(reports)


def aggregate(reports: list[dict[str, Any]]) -> dict[str, Any]:
    scen: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"seeds": 0, "detected": 0, "forest": 0, "rules": 0, "delays_s": [], "missed_seeds": []}
    )
    false = 0
    pdays = 0.0
    false_by_family: dict[str, int] = defaultdict(int)
    false_by_kind: dict[str, int] = defaultdict(int)
    delays: list[float] = []
    samples: list[dict[str, Any]] = []
    for r in reports:
        for name, row in r["scenarios"].items():
            s = scen[name]
            s["seeds"] += row["attacks"]
            s["detected"] += row["detected"]
            s["forest"] += row["forest"]
            s["rules"] += row["rules"]
            s["delays_s"] += row["delays_s"]
            delays += row["delays_s"]
            if row["detected"] < row["attacks"]:
                s["missed_seeds"].append(r["seed"])
        false += r["false_alerts"]
        pdays += r["principal_days"]
        for k, v in r["false_alerts_by_family"].items():
            false_by_family[k] += v
        for k, v in r["false_alerts_by_kind"].items():
            false_by_kind[k] += v
        samples += [{"seed": r["seed"], **a} for a in r["false_alert_samples"]]
    per_seed_false = {r["seed"]: r["false_alerts"] for r in reports}
    attacks = sum(s["seeds"] for s in scen.values())
    return {
        "seeds": [r["seed"] for r in reports],
        "scenarios": {k: scen[k] for k in sorted(scen)},
        "recall": sum(s["detected"] for s in scen.values()) / attacks if attacks else 0.0,
        "recall_forest": sum(s["forest"] for s in scen.values()) / attacks if attacks else 0.0,
        "recall_rules": sum(s["rules"] for s in scen.values()) / attacks if attacks else 0.0,
        "false_alerts": false,
        "false_alerts_by_family": dict(false_by_family),
        "false_alerts_by_kind": dict(false_by_kind),
        "false_per_seed": per_seed_false,
        "principal_days": round(pdays, 1),
        "false_per_1000_principal_days": round(1000.0 * false / pdays, 2) if pdays else 0.0,
        "false_per_1000_principal_days_forest": round(1000.0 * false_by_family.get("forest", 0) / pdays, 2)
        if pdays
        else 0.0,
        "median_delay_s": statistics.median(delays) if delays else None,
        "false_alert_samples": samples[:30],
    }


# -- sensitivity sweeps -------------------------------------------------------------------------
def run_sweep_seed(seed: int, scenario: str, levels: Sequence[float], cfg: SeedConfig) -> dict[float, bool]:
    """One seed of a sweep: replay the history once, then each intensity from a copy of that state."""
    from detector import simulate

    model = train_on_history(seed, cfg)
    p0 = _plan(seed, cfg, intensity={scenario: levels[0]}, scenarios=[scenario])
    snap = p0.test_start - 2 * _DELIVERY[1]  # no attack event is delivered before this
    det = Detector(cfg.settings, model, store={}, only=cfg.only)
    alerts: list[dict[str, Any]] = []
    stream = Stream(det, cfg.settings, lambda r: _alerts_of(r, alerts))
    _feed(stream, delivered(simulate.iter_events(p0)), until=snap)
    frozen = copy.deepcopy((det.store, det.seen, stream.reorder, stream.pending, det.watermark, det._swept))
    out: dict[float, bool] = {}
    for level in levels:
        p = _plan(seed, cfg, intensity={scenario: level}, scenarios=[scenario])
        store, seen, reorder, pending, watermark, swept = copy.deepcopy(frozen)
        det = Detector(cfg.settings, model, store=store, seen=seen, only=cfg.only)
        det.watermark, det._swept = watermark, swept
        found: list[dict[str, Any]] = []
        stream = Stream(det, cfg.settings, functools.partial(_alerts_of, out=found))
        stream.reorder, stream.pending = reorder, pending
        _feed(stream, ((t, ev) for t, ev in delivered(simulate.iter_events(p)) if t >= snap))
        stream.flush()
        labels = [_label_dict(lab) for lab in simulate.labels(p)]
        report = score_alerts(found, labels, p.test_start, p.end, len(simulate.roster(p)))
        out[level] = bool(report["scenarios"].get(scenario, {}).get("detected"))
    return out


def default_levels(scenario: str, steps: int = 6) -> list[float]:
    """``steps`` intensities log-spaced across the scenario's range (its catalogue entry)."""
    from detector import simulate

    catalogue = getattr(simulate, "CATALOGUE", None)
    if catalogue is None or scenario not in catalogue:
        raise ValueError(f"no intensity range known for scenario {scenario!r}")
    spec = catalogue[scenario].intensity
    lo, hi = float(spec.low), float(spec.high)
    return [float(f"{v:.3g}") for v in np.geomspace(lo, hi, steps)]


def run_sweep(
    scenario: str,
    levels: Sequence[float],
    seeds: Sequence[int],
    cfg: SeedConfig,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    results = _map(run_sweep_seed, [(s, scenario, list(levels), cfg) for s in seeds], workers, progress)
    table = {level: sum(1 for r in results if r[level]) for level in levels}
    need = math.ceil(0.9 * len(seeds))
    smallest = next((level for level in sorted(levels) if table[level] >= need), None)
    return {"scenario": scenario, "seeds": list(seeds), "detected": table, "smallest_detected_9_of_10": smallest}


# -- reports -------------------------------------------------------------------------------------
def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'scenario':28} {'attacks':>7} {'detected':>8} {'recall':>7} {'forest':>6} {'rules':>5}  delays (s)"]
    for name, row in sorted(report["scenarios"].items()):
        lines.append(
            f"{name:28} {row['attacks']:>7} {row['detected']:>8} {row['recall']:>7.0%} "
            f"{row['forest']:>6} {row['rules']:>5}  {row['delays_s']}"
        )
    lines.append(
        f"overall recall: {report['recall']:.0%} (forest alone {report['recall_forest']:.0%}, "
        f"rules alone {report['recall_rules']:.0%})"
    )
    lines.append(
        f"false alerts: {report['false_alerts']} over {report['principal_days']} principal-days "
        f"= {report['false_per_1000_principal_days']} per 1000 principal-days {report['false_alerts_by_kind']}"
    )
    lines.append(f"median detection delay: {report['median_delay_s']} s (event time)")
    return "\n".join(lines)


def format_suite(report: dict[str, Any]) -> str:
    n = len(report["seeds"])
    lines = [
        f"seeds: {report['seeds']}",
        f"{'scenario':30} {'detected':>9} {'forest':>7} {'rules':>6} {'median delay':>13}  missed in seeds",
    ]
    for name, row in report["scenarios"].items():
        med = statistics.median(row["delays_s"]) if row["delays_s"] else None
        lines.append(
            f"{name:30} {row['detected']:>4}/{row['seeds']:<4} {row['forest']:>7} {row['rules']:>6} "
            f"{'-' if med is None else f'{med:.0f} s':>13}  {row['missed_seeds']}"
        )
    classes = len(report["scenarios"])
    ok = sum(1 for r in report["scenarios"].values() if r["detected"] >= math.ceil(0.9 * r["seeds"]))
    forest_ok = sum(1 for r in report["scenarios"].values() if r["forest"] >= math.ceil(0.9 * r["seeds"]))
    lines.append(
        f"recall {report['recall']:.0%} (forest alone {report['recall_forest']:.0%}, rules alone "
        f"{report['recall_rules']:.0%}); classes detected in >= 9/10 of their seeds: {ok}/{classes} "
        f"(forest alone: {forest_ok}/{classes})"
    )
    lines.append(
        f"false alerts: {report['false_alerts']} in {n} seeds over {report['principal_days']} principal-days = "
        f"{report['false_per_1000_principal_days']} per 1000 "
        f"(forest {report['false_per_1000_principal_days_forest']}); "
        f"by kind {report['false_alerts_by_kind']}; per seed {report['false_per_seed']}"
    )
    lines.append(f"median detection delay: {report['median_delay_s']} s (event time)")
    return "\n".join(lines)


def format_sweep(report: dict[str, Any]) -> str:
    n = len(report["seeds"])
    lines = [f"{report['scenario']}: detected / {n} seeds by intensity"]
    for level, hits in report["detected"].items():
        lines.append(f"  {level:>10g}  {hits:>3}/{n}  {'#' * hits}")
    lines.append(f"smallest intensity detected in >= 9 of 10 seeds: {report['smallest_detected_9_of_10']}")
    return "\n".join(lines)
