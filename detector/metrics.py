"""Every Prometheus metric the detector exports, in one object.

The registry is passed in (``Metrics.create(registry)``) so each test gets a fresh
``CollectorRegistry``. No label ever carries a principal, IP, key or bucket: those are
unbounded and attacker-influenced. Labels are bounded codes (reason, source kind, alert kind,
sink name, shard id: shards are few and operator-controlled).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

if TYPE_CHECKING:
    from detector.alert import Alert

# Anomaly scores are calibrated to [0, 1] (higher = more anomalous); alert thresholds sit
# between 0.55 and 0.8, so buckets are dense there.
SCORE_BUCKETS = (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0)
# One micro-batch is scored in ~1-50 ms; a slow batch (cold model, GC) can take a second.
BATCH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Event age at scoring: CloudWatch Logs delivers in < 3 min, S3 archives ~5 min after the call,
# backfills are hours or days old.
EVENT_AGE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400, 604800)
# Processing latency: from when a record was read to when its alert was handed to the sinks.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Metrics:
    records_received: Counter  # labels: source
    records_general_reader: Counter  # labels: source
    events_decoded: Counter  # labels: source
    records_rejected: Counter  # labels: source, reason
    records_skipped: Counter  # labels: source, reason (control_message, digest, insight, simulator_metadata)
    events_duplicate: Counter
    events_late: Counter
    events_scored: Counter
    alerts: Counter  # labels: kind
    alerts_suppressed: Counter  # labels: kind
    anomaly_score: Histogram
    batch_seconds: Histogram
    event_age_seconds: Histogram
    processing_seconds: Histogram
    millis_behind_latest: Gauge  # labels: shard
    checkpoint_timestamp: Gauge
    principals_tracked: Gauge
    principals_evicted: Counter
    model_info: Info
    model_trained_timestamp: Gauge
    model_reloads: Counter  # labels: result (ok, rejected)
    config_reloads: Counter  # labels: result (ok, rejected)
    sink_failures: Counter  # labels: sink
    sink_delivered: Counter  # labels: sink
    spool_alerts: Gauge  # labels: sink
    source_up: Gauge  # labels: source
    partitions_assigned: Gauge
    last_event_timestamp: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None, prefix: str = "detector") -> Metrics:
        """Build every metric on ``registry`` (a fresh one when None)."""
        reg = registry if registry is not None else CollectorRegistry()

        def name(n: str) -> str:
            return f"{prefix}_{n}"

        return cls(
            records_received=Counter(
                name("records_received"), "Raw records read from a source", ["source"], registry=reg
            ),
            records_general_reader=Counter(
                name("records_general_reader"),
                "Records the fast typed reader handed to the general decoder (odd field types, rejects, "
                "Insights, digests, control messages); a rising share means a slower path",
                ["source"],
                registry=reg,
            ),
            events_decoded=Counter(
                name("events_decoded"), "CloudTrail events decoded from records", ["source"], registry=reg
            ),
            records_rejected=Counter(
                name("records_rejected"),
                "Records or events rejected as malformed; dead-lettered",
                ["source", "reason"],
                registry=reg,
            ),
            records_skipped=Counter(
                name("records_skipped"),
                "Records recognised and routed aside (control messages, digests, Insights, the simulator's own files)",
                ["source", "reason"],
                registry=reg,
            ),
            events_duplicate=Counter(name("events_duplicate"), "Events dropped as duplicates by eventID", registry=reg),
            events_late=Counter(
                name("events_late"),
                "Events behind the reorder watermark (older than the allowed lateness): scored and added to "
                "baselines at once, without moving their clocks back",
                registry=reg,
            ),
            events_scored=Counter(name("events_scored"), "Events scored by the model", registry=reg),
            alerts=Counter(
                name("alerts"), "Alerts opened and handed to the sinks (updates not counted)", ["kind"], registry=reg
            ),
            alerts_suppressed=Counter(
                name("alerts_suppressed"), "Alerts matched by a suppression rule", ["kind"], registry=reg
            ),
            anomaly_score=Histogram(
                name("anomaly_score"),
                "Calibrated anomaly score per event (higher = more anomalous)",
                buckets=SCORE_BUCKETS,
                registry=reg,
            ),
            batch_seconds=Histogram(
                name("batch_seconds"),
                "Wall time to process one micro-batch through the core",
                buckets=BATCH_SECONDS_BUCKETS,
                registry=reg,
            ),
            event_age_seconds=Histogram(
                name("event_age_seconds"),
                "Now minus eventTime when the event is scored",
                buckets=EVENT_AGE_BUCKETS,
                registry=reg,
            ),
            processing_seconds=Histogram(
                name("processing_seconds"),
                "From record read to alerts handed to sinks",
                buckets=LATENCY_BUCKETS,
                registry=reg,
            ),
            millis_behind_latest=Gauge(
                name("kinesis_millis_behind_latest"),
                "MillisBehindLatest reported by GetRecords",
                ["shard"],
                registry=reg,
            ),
            checkpoint_timestamp=Gauge(
                name("checkpoint_timestamp_seconds"),
                "Unix time of the last successful checkpoint",
                registry=reg,
            ),
            principals_tracked=Gauge(
                name("principals_tracked"), "Principals with a baseline in this process", registry=reg
            ),
            principals_evicted=Counter(
                name("principals_evicted"),
                "Principals forgotten after pipeline.evict_idle_days without an event (event time)",
                registry=reg,
            ),
            model_info=Info(name("model"), "Loaded model artifact", registry=reg),
            model_trained_timestamp=Gauge(
                name("model_trained_timestamp_seconds"),
                "Unix time the loaded model was trained",
                registry=reg,
            ),
            model_reloads=Counter(name("model_reloads"), "Model (re)load attempts", ["result"], registry=reg),
            config_reloads=Counter(name("config_reloads"), "Config reload attempts", ["result"], registry=reg),
            sink_failures=Counter(
                name("sink_failures"), "Failed alert deliveries (retried or spooled)", ["sink"], registry=reg
            ),
            sink_delivered=Counter(name("sink_delivered"), "Alerts delivered by a sink", ["sink"], registry=reg),
            spool_alerts=Gauge(
                name("spool_alerts"), "Alerts waiting in a sink's on-disk spool", ["sink"], registry=reg
            ),
            source_up=Gauge(name("source_up"), "1 when a source is connected and reading", ["source"], registry=reg),
            partitions_assigned=Gauge(
                name("partitions_assigned"),
                "Kafka partitions of the events topic this worker owns (0 for single-process runs)",
                registry=reg,
            ),
            last_event_timestamp=Gauge(
                name("last_event_timestamp_seconds"),
                "Wall-clock Unix time the last event was processed",
                registry=reg,
            ),
        )

    def prime(self, sources: Iterable[str], sinks: Iterable[str] = (), scoring: bool = True) -> None:
        """Create every series this process can report, at zero.

        A labelled series exists only once it is first touched, so without this a panel or an
        alert rule over rejects, skips or alerts shows "no data" until the first one, and
        ``increase()`` misses that first one.
        """
        from detector.alert import KINDS
        from detector.decode import ASIDE_KINDS, REJECT_REASONS, SKIP_KINDS

        for source in sources:
            self.records_received.labels(source)
            self.records_general_reader.labels(source)
            self.events_decoded.labels(source)
            for reason in REJECT_REASONS:
                self.records_rejected.labels(source, reason)
            for kind in (*SKIP_KINDS, *ASIDE_KINDS):
                self.records_skipped.labels(source, kind)
        for sink in sinks:
            self.sink_delivered.labels(sink)
            self.sink_failures.labels(sink)
        if not scoring:  # the bridge: no alerts, no model
            return
        for kind in KINDS:
            self.alerts.labels(kind)
            self.alerts_suppressed.labels(kind)
        for result in ("ok", "rejected"):
            self.model_reloads.labels(result)
            self.config_reloads.labels(result)

    def count_alerts(self, alerts: Sequence[Alert]) -> None:
        """Count the alerts handed to the sinks: opened ones, by kind (updates are not new alerts)."""
        for a in alerts:
            if a.status == "open":
                self.alerts.labels(a.kind).inc()
