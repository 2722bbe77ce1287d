"""The core: a batch of events in, alerts out. No I/O, no wall clock in the decisions.

Both runtimes call ``Detector.process``: the single process (``runtime/local.py``) with a
dict as the state store, the Faust workers (``runtime/faust_app.py``) with a
changelog-backed table. State is one value per principal key (``PrincipalState``:
its baseline plus the alerts it has open), so a partition that owns a principal owns
all of its state.

Per batch: drop duplicate eventIDs, order by event time, walk each principal's events
through its baseline (features are taken *before* each event updates it), score all rows in
one vectorised call per peer group, then walk the events in order through the policy: the
explicit rules, the forest's persistence gate, and the alert dedup. Nothing depends on where
batch boundaries fall. Principals idle for ``pipeline.evict_idle_days`` of event time are
forgotten, so the store stays bounded whatever identities appear.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import struct
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from detector.alert import Alert, Explanation, alert_id
from detector.baseline import ENCODED_SIZE, Baseline, Observation
from detector.event import Event
from detector.features import FEATURE_NAMES, N_FEATURES, baseline_value, current_value, phrase, reference, row
from detector.memo import remember
from detector.metrics import Metrics
from detector.model import ModelArtifact
from detector.ordering import SeenIds
from detector.policy import Finding, anomaly_finding, eligible, rule_findings
from detector.settings import Settings, ThresholdResolver, Thresholds

# Alert updates are re-emitted when the number of contributing events reaches these.
UPDATE_AT = frozenset({10, 100, 1000, 10_000, 100_000})
FAMILIES = ("forest", "rules")  # what ``Detector(only=...)`` may keep
_EVICT_EVERY_S = 6 * 3600.0  # event time between sweeps for idle principals
_LAST_TIME = 0  # offset of last_time (float64) in an encoded baseline


@dataclass
class OpenAlert:
    alert_id: str
    first_time: float
    last_time: float
    count: int
    score: float
    event_ids: list[str]
    kind: str = ""  # the kind it opened as (the forest's one slot holds either of its kinds)


def _where(ev: Event, detail: str) -> str:
    """The bucket and address of the event behind an alert, unless its detail already names them.

    Every open and update of an alert says both, whichever finding (principal-wide burst or
    one bucket's) happened to trigger it.
    """
    parts = []
    if ev.bucket and f"s3://{ev.bucket}" not in detail:
        parts.append(f"in s3://{ev.bucket}")
    if ev.source_ip and ev.source_ip not in detail:
        parts.append(f"from {ev.source_ip}")
    return "".join(f", {part}" for part in parts)


@dataclass
class PrincipalState:
    """What is stored per principal key: encoded baseline + open alerts (rarely any)."""

    baseline: Baseline
    open: dict[str, OpenAlert] = field(default_factory=dict)

    def encode(self) -> bytes:
        head = self.baseline.encode()
        if not self.open:
            return head
        return head + orjson.dumps({k: list(v.__dict__.values()) for k, v in self.open.items()})

    @classmethod
    def decode(cls, data: bytes | None) -> PrincipalState:
        if not data:
            return cls(Baseline())
        state = cls(Baseline.decode(data[:ENCODED_SIZE]))
        if len(data) > ENCODED_SIZE:
            for kind, v in orjson.loads(data[ENCODED_SIZE:]).items():
                state.open[kind] = OpenAlert(*v)
        return state


@dataclass
class BatchResult:
    alerts: list[Alert]
    scored: int
    duplicates: int
    scores: np.ndarray
    features: np.ndarray  # the rows scored, in event-time order (training reuses them)
    events: list[Event]  # the events scored (duplicates dropped), aligned with features/scores
    eligible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # may alert (mature baseline)
    classes: list[str] = field(default_factory=list)  # each event's sticky caller class


class Detector:
    """Stateless apart from what is passed in: ``store`` (principal key -> bytes) and ``seen``.

    ``only``: ``"forest"`` or ``"rules"`` keeps one family of detections (ablation); None both.
    """

    def __init__(
        self,
        settings: Settings,
        model: ModelArtifact | None,
        store: MutableMapping[str, bytes],
        seen: SeenIds | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        only: str | None = None,
    ) -> None:
        if only is not None and only not in FAMILIES:
            raise ValueError(f"only must be one of {', '.join(FAMILIES)} or None, got {only!r}")
        self.store = store
        self.seen = seen if seen is not None else SeenIds(settings.pipeline.dedup_window_s)
        self.metrics = metrics
        self.clock = clock
        self.model = model
        self.only = only
        # Learning (a bootstrap from the archive): baselines only, no findings, nothing scored.
        self.learning = False
        self.watermark = 0.0  # the latest event time processed
        self._swept = 0.0
        # Decoded states of recently active principals, each with the bytes it was encoded to.
        # Reused only while the store still holds exactly those bytes, so a store changed behind
        # our back (a Faust table recovered from its changelog, a batch whose writes were never
        # committed) is always re-read. Entries are taken out while a batch uses them: a batch
        # that raises half-way leaves nothing half-updated behind. Saves decoding every busy
        # principal in every batch.
        self._states: dict[str, tuple[bytes, PrincipalState]] = {}
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        """Swap config (hot reload): thresholds, sensitive APIs, suppressions."""
        self.settings = settings
        self.resolver = ThresholdResolver(settings.detection)
        self.sensitive = frozenset(settings.detection.sensitive_apis)
        self.sensitive_reads = frozenset(settings.detection.sensitive_reads)
        self.known_nets = [ipaddress.ip_network(c, strict=False) for c in settings.detection.known_cidrs]
        self._known_ips: dict[str, bool] = {}  # source IP -> in a known network (a cache)

    def set_model(self, model: ModelArtifact | None) -> None:
        self.model = model

    def anomaly_threshold(self, caller_class: str, th: Thresholds) -> float:
        """Score threshold: scores are calibrated shares of the peer group's eligible training
        rows (``GroupModel.score``), so the threshold is the configured quantile itself."""
        return th.anomaly_quantile

    def _known_source(self, ip: str) -> bool:
        known = self._known_ips.get(ip)
        if known is None:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                known = False
            else:
                known = any(addr in net for net in self.known_nets)
            remember(self._known_ips, ip, known, 100_000)
        return known

    # -- the batch ------------------------------------------------------------------------
    def process(self, events: Sequence[Event]) -> BatchResult:
        """Update baselines with ``events`` and return the alerts they raise."""
        started = time.perf_counter()
        fresh = [ev for ev in events if self.seen.add(ev.event_id, ev.time)]
        duplicates = len(events) - len(fresh)
        fresh.sort(key=lambda ev: ev.time)

        by_principal: dict[str, list[int]] = {}
        for i, ev in enumerate(fresh):
            by_principal.setdefault(ev.principal.key, []).append(i)

        n = len(fresh)
        model = self.model
        rules_on = self.only != "forest" and not self.learning
        group_index = model.group_index() if model is not None else {}
        rows: list[list[float]] = [[]] * n
        observations: list[Observation | None] = [None] * n
        refs: list[tuple[float, ...]] = [()] * n
        findings: list[list[Finding]] = [[] for _ in range(n)]
        thresholds: list[Thresholds | None] = [None] * n
        classes = [""] * n
        groups = np.zeros(n, dtype=np.int64)
        may_alert = np.zeros(n, dtype=bool)
        cuts = np.ones(n)  # each event's anomaly-score threshold
        states: dict[str, PrincipalState] = {}
        store = self.store
        cache = self._states
        known_nets = bool(self.known_nets)
        for key, idxs in by_principal.items():
            data = store.get(key)
            hit = cache.pop(key, None)
            state = hit[1] if hit is not None and data is not None and hit[0] == data else PrincipalState.decode(data)
            states[key] = state
            p = fresh[idxs[0]].principal
            observe = state.baseline.observe
            cls = ""
            th: Thresholds | None = None
            peer: tuple[float, ...] | None = None
            gi = 0
            cut = 1.0
            for i in idxs:
                ev = fresh[i]
                obs = observe(ev, known_nets and self._known_source(ev.source_ip))
                if th is None or (obs.caller_class and obs.caller_class != cls):
                    # the sticky class settles once, on one of a principal's first events
                    cls = obs.caller_class or p.caller_class
                    th = self.resolver.for_principal(key, p.role_arn, cls)
                    if model is not None:
                        g = model.group(cls)
                        peer = tuple(g.peer_peaks.tolist())
                        gi = group_index[g.name]
                        cut = self.anomaly_threshold(cls, th)
                ref = reference(obs, peer)
                rows[i] = row(ev, obs, ref)
                observations[i] = obs
                refs[i] = ref
                thresholds[i] = th
                classes[i] = cls
                groups[i] = gi
                cuts[i] = cut
                may_alert[i] = eligible(obs, th)
                if rules_on:
                    found = rule_findings(ev, obs, ref, th, self.sensitive, self.sensitive_reads)
                    if found:
                        findings[i] = found

        x = np.array(rows, dtype=np.float64) if n else np.empty((0, N_FEATURES))
        scoring = model is not None and n > 0 and not self.learning
        scores = model.score(x, groups) if scoring and model is not None else np.zeros(n)
        if scoring and model is not None and self.only != "rules":
            over = (scores >= cuts) & may_alert
            for i in np.flatnonzero(over).tolist():  # in event-time order: the persistence gate
                ev = fresh[i]
                th_i, obs_i = thresholds[i], observations[i]
                assert th_i is not None and obs_i is not None
                b = states[ev.principal.key].baseline
                t = int(ev.time)
                b.over_n = b.over_n + 1 if b.over_n and t - b.over_at <= th_i.persist_window_s else 1
                b.over_at = max(b.over_at, t)
                if b.over_n < th_i.persist_events:
                    continue
                surprise = model.groups[list(model.groups)[groups[i]]].surprise(x[i]).tolist()
                f = anomaly_finding(
                    ev, obs_i, float(scores[i]), float(cuts[i]), surprise, th_i, self._phrase(ev, obs_i, surprise)
                )
                if f is not None:
                    findings[i].append(f)

        alerts: list[Alert] = []
        for i in range(n):
            if findings[i]:
                seen_obs = observations[i]
                assert seen_obs is not None
                state = states[fresh[i].principal.key]
                for f in findings[i]:
                    alert = self._raise(state, fresh[i], seen_obs, refs[i], x[i], int(groups[i]), classes[i], f)
                    if alert is not None:
                        alerts.append(alert)
        limit = self.settings.pipeline.state_cache_principals
        for key, state in states.items():
            self._expire(state, fresh[by_principal[key][-1]].time)
            data = store[key] = state.encode()
            if limit:
                cache[key] = (data, state)  # inserted last: the cache evicts the least recently active
        while len(cache) > limit:
            del cache[next(iter(cache))]
        if n:
            self.watermark = max(self.watermark, fresh[-1].time)
            if self.watermark - self._swept >= _EVICT_EVERY_S:
                self.evict(self.watermark)

        if self.metrics is not None:
            self._observe_metrics(fresh, scores, duplicates, time.perf_counter() - started)
        return BatchResult(
            alerts=alerts,
            scored=n,
            duplicates=duplicates,
            scores=scores,
            features=x,
            events=fresh,
            eligible=may_alert,
            classes=classes,
        )

    def evict(self, now: float) -> int:
        """Forget principals idle for ``pipeline.evict_idle_days`` before ``now`` (event time)."""
        self._swept = now
        horizon = now - self.settings.pipeline.evict_idle_days * 86400.0
        idle = [
            key
            for key, data in list(self.store.items())
            if data and _last_time(data) < horizon
        ]
        for key in idle:
            del self.store[key]
            self._states.pop(key, None)
        if idle and self.metrics is not None:
            self.metrics.principals_evicted.inc(len(idle))
        return len(idle)

    def _phrase(self, ev: Event, obs: Observation, surprise: list[float]) -> str:
        ranked = sorted(range(len(surprise)), key=lambda j: -surprise[j])
        parts = [phrase(FEATURE_NAMES[j], ev, obs) for j in ranked[:3] if surprise[j] >= 1.0]
        return "; ".join(parts) if parts else f"made an unusual {ev.service}:{ev.name} call"

    def _expire(self, state: PrincipalState, now: float) -> None:
        for slot in [k for k, a in state.open.items() if now - a.last_time > self._hold(k)]:
            del state.open[slot]

    def _hold(self, slot: str) -> float:
        """How long an open alert in ``slot`` takes in recurrences as updates."""
        cfg = self.settings.alerts
        return cfg.forest_hold_s if slot == "forest" else cfg.dedup_window_s

    def _raise(
        self,
        state: PrincipalState,
        ev: Event,
        obs: Observation,
        ref: tuple[float, ...],
        x: np.ndarray,
        group: int,
        cls: str,
        f: Finding,
    ) -> Alert | None:
        cfg = self.settings.alerts
        # The forest's verdicts on one principal are one alert, whichever kind it opened as.
        slot = "forest" if f.family == "forest" else f.kind
        window = self._hold(slot)
        current = state.open.get(slot)
        if current is not None and ev.time - current.last_time <= window:
            current.last_time = max(current.last_time, ev.time)
            current.count += 1
            current.score = max(current.score, f.score)
            if len(current.event_ids) < cfg.max_event_ids:
                current.event_ids.append(ev.event_id)
            if current.count not in UPDATE_AT:
                return None
            if current.kind and current.kind != f.kind:
                f = Finding(current.kind, f.score, f.threshold, f.features, f.detail, f.family)
            return self._alert(ev, obs, ref, x, group, cls, f, current, status="update")
        opened_id = alert_id(ev.principal.key, slot, ev.time, window)  # not the first event's ID
        opened = OpenAlert(opened_id, ev.time, ev.time, 1, f.score, [ev.event_id], f.kind)
        state.open[slot] = opened
        if self._suppressed(f.kind, ev.principal.key, ev.time):
            if self.metrics is not None:
                self.metrics.alerts_suppressed.labels(f.kind).inc()
            return None
        return self._alert(ev, obs, ref, x, group, cls, f, opened, status="open")

    def _suppressed(self, kind: str, key: str, t: float) -> bool:
        day = dt.datetime.fromtimestamp(t, tz=dt.UTC).date()
        return any(s.matches(kind, key, day) for s in self.settings.suppressions)

    def _alert(
        self,
        ev: Event,
        obs: Observation,
        ref: tuple[float, ...],
        x: np.ndarray,
        group: int,
        cls: str,
        f: Finding,
        open_: OpenAlert,
        status: str,
    ) -> Alert:
        surprise: dict[str, float] = {}
        if self.model is not None:
            g = self.model.groups[list(self.model.groups)[group]]
            surprise = {name: round(float(v), 3) for name, v in zip(FEATURE_NAMES, g.surprise(x), strict=True)}
        ranked = sorted((k for k, v in surprise.items() if v >= 1.0), key=lambda k: -surprise[k])
        names = list(dict.fromkeys([*f.features, *ranked]))
        limit = self.settings.alerts.max_explanations
        explanation = [
            Explanation(name, current_value(name, ev, obs), baseline_value(name, obs, ref), surprise.get(name, 0.0))
            for name in names[:limit]
            if name in FEATURE_NAMES
        ]
        p = ev.principal
        who = p.arn or p.key
        where = _where(ev, f.detail)
        summary = f"{who} {f.detail}{where}. Confirm with the owner; if unexpected, revoke its credentials."
        return Alert(
            alert_id=open_.alert_id,
            kind=f.kind,
            principal=p.key,
            principal_arn=p.arn,
            caller_class=cls,
            account_id=ev.account_id,
            score=open_.score,
            threshold=f.threshold,
            first_event_time=open_.first_time,
            last_event_time=open_.last_time,
            detected_at=self.clock(),
            event_ids=list(open_.event_ids),
            event_count=open_.count,
            explanation=explanation,
            summary=summary,
            status=status,
            context={
                "event_name": ev.name,
                "event_source": ev.service,
                "source_ip": ev.source_ip,
                "user_agent": ev.user_agent,
                "region": ev.region,
                "bucket": ev.bucket,
                "session": p.session,
                "trigger_event_time": ev.time,
                "family": f.family,
            },
        )

    def _observe_metrics(self, fresh: list[Event], scores: np.ndarray, duplicates: int, seconds: float) -> None:
        m = self.metrics
        assert m is not None
        m.events_scored.inc(len(fresh))
        if duplicates:
            m.events_duplicate.inc(duplicates)
        m.batch_seconds.observe(seconds)
        now = self.clock()
        # Histograms per event would cost more than scoring: sample evenly (<= 256 per batch).
        step = max(1, len(fresh) // 256)
        for i in range(0, len(fresh), step):
            m.anomaly_score.observe(float(scores[i]) if scores.size else 0.0)
            m.event_age_seconds.observe(max(0.0, now - fresh[i].time))
        m.principals_tracked.set(len(self.store))
        m.last_event_timestamp.set(now)


def _last_time(data: bytes) -> float:
    """The last event time of an encoded state, without decoding the rest."""
    return float(_F64.unpack_from(data, _LAST_TIME)[0])


_F64 = struct.Struct("<d")
