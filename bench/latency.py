"""Live latency and throughput through the Kinesis path, against a local emulator (kinesalite).

Phase 1 (latency): a producer thread calls PutRecords at ``--rate`` events/s (default 2,000)
for ``--seconds`` (default 60), one CloudTrail event per record with ``eventTime`` = now, while
the detector (``runtime.local.Runtime`` + ``KinesisSource``, default settings) consumes the
stream in this process. Every ``--marker-every`` seconds a marker event is injected that must
alert at once (a new IAM user's first ``PutBucketPolicy``: ``sensitive_api_first_use``). Per
marker:

* total      = alert handed to the sink - PutRecords called
* emulator   = GetRecords returned the record - PutRecords called (the emulator's share)
* processing = alert handed to the sink - record read (ours: decode, reorder hold, batch
               delay, scoring, policy)

Phase 2 (throughput): the same records, pre-loaded into a fresh stream, read from TRIM_HORIZON
as fast as the pipeline goes (events/s through the Kinesis path), then the same bytes through
``replay.run_replay`` (no Kinesis), in the same process.

Usage: python bench/latency.py [--seconds 60] [--rate 2000] [--endpoint URL] [--shards 2]
       [--max-hold-s 1.0] [--model models/default]
Without ``--endpoint`` kinesalite is started on a free port (tests/services.py; needs node and
``bash .ci/run``'s kinesalite install). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detector import simulate  # noqa: E402
from detector.alert import Alert  # noqa: E402
from detector.ingest import Ingest  # noqa: E402
from detector.metrics import Metrics  # noqa: E402
from detector.model import ModelArtifact  # noqa: E402
from detector.pipeline import Detector  # noqa: E402
from detector.replay import run_replay  # noqa: E402
from detector.runtime.local import Runtime  # noqa: E402
from detector.settings import Settings  # noqa: E402
from detector.sources.base import Record  # noqa: E402
from detector.sources.kinesis import KinesisSource  # noqa: E402

MARKER = b'"eventID":"marker-'


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def marker_event(n: int, t: float) -> dict[str, Any]:
    """A new IAM user's first PutBucketPolicy: alerts on the spot (sensitive_api_first_use)."""
    user = f"bench-marker-{n}"
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": f"AIDAMARKER{n}",
            "arn": f"arn:aws:iam::111122223333:user/{user}",
            "accountId": "111122223333",
            "userName": user,
        },
        "eventTime": iso(t),
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutBucketPolicy",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.77",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
        "requestParameters": {"bucketName": "payroll-exports", "Host": "payroll-exports.s3.amazonaws.com"},
        "responseElements": None,
        "requestID": f"MARKERREQ{n:08d}",
        "eventID": f"marker-{n}",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
    }


class Producer(threading.Thread):
    """PutRecords at ``rate`` events/s in 100 ms ticks; remembers when each marker was put."""

    def __init__(self, client: Any, stream: str, rate: int, seconds: float, marker_every: float) -> None:
        super().__init__(name="producer", daemon=True)
        self.client = client
        self.stream = stream
        self.rate = rate
        self.seconds = seconds
        self.marker_every = marker_every
        self.put_at: dict[str, float] = {}  # marker id -> monotonic time PutRecords was called
        self.records: list[bytes] = []  # everything produced, for phase 2
        self.produced = 0
        self.started = 0.0
        self.elapsed = 0.0
        self.failed = 0

    def run(self) -> None:
        bulk: Iterator[dict[str, Any]] = simulate.iter_bulk(int(self.rate * self.seconds * 1.1) + 1000, seed=3)
        first: dict[str, Any] | None = next(bulk)  # builds the simulator's world before the clock starts
        tick = 0.1
        started = time.monotonic()
        self.started = started
        next_marker = started + 1.0
        n_marker = 0
        k = 0
        sent = 0
        while True:
            now_m = time.monotonic()
            if now_m - started >= self.seconds:
                break
            now = time.time()
            # as many events as the rate says are due by now: a slow put is caught up, never lost
            due = min(int(self.rate * (now_m - started + tick)) - sent, self.rate)
            batch: list[bytes] = []
            markers: list[str] = []
            for _ in range(max(due, 0)):
                ev = first if first is not None else next(bulk)
                first = None
                ev["eventTime"] = iso(now)
                batch.append(orjson.dumps(ev))
            sent += len(batch)
            if now_m >= next_marker:
                n_marker += 1
                batch.append(orjson.dumps(marker_event(n_marker, now)))
                markers.append(f"marker-{n_marker}")
                next_marker += self.marker_every
            for i in range(0, len(batch), 500):
                part = batch[i : i + 500]
                called = time.monotonic()
                resp = self.client.put_records(
                    StreamName=self.stream,
                    Records=[{"Data": d, "PartitionKey": str(k + j)} for j, d in enumerate(part)],
                )
                k += len(part)
                self.failed += resp.get("FailedRecordCount", 0)
                for m in markers:
                    if any(f'"eventID":"{m}"'.encode() in d for d in part):
                        self.put_at[m] = called
            self.records.extend(batch)
            self.produced += len(batch)
            sleep = started + sent / self.rate - time.monotonic()
            if sleep > 0:
                time.sleep(sleep)
        self.elapsed = time.monotonic() - started


class MarkerSink:
    name = "bench"

    def __init__(self) -> None:
        self.alerted_at: dict[str, float] = {}
        self.alerts = 0

    def add(self, alert: Alert) -> None:
        self.alerts += 1
        for eid in alert.event_ids:
            if eid.startswith("marker-") and eid not in self.alerted_at:
                self.alerted_at[eid] = time.monotonic()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class ReadTimes:
    """Wraps a source's poll to note when each marker's record was read (GetRecords returned)."""

    def __init__(self, source: KinesisSource) -> None:
        self.source = source
        self.read_at: dict[str, float] = {}
        self.polled_at: dict[str, float] = {}
        self.records = 0
        self._poll = source.poll
        source.poll = self.poll  # type: ignore[method-assign]

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        out = self._poll(max_records, timeout_s)
        now = time.monotonic()
        self.records += len(out)
        for r in out:
            if MARKER in r.data:
                eid = orjson.loads(r.data)["eventID"]
                self.read_at.setdefault(eid, r.arrival)
                self.polled_at.setdefault(eid, now)
        return out


def kinesis_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


def new_stream(client: Any, shards: int) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return name


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def build_runtime(settings: Settings, source: KinesisSource, sink: MarkerSink, model: ModelArtifact | None) -> Runtime:
    metrics = Metrics.create()
    detector = Detector(settings, model, store={}, metrics=metrics)
    return Runtime(settings, source, [sink], detector, Ingest(metrics), None, metrics, source_id="bench")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=2000, help="events per second to produce")
    ap.add_argument("--marker-every", type=float, default=0.5, help="seconds between marker events")
    ap.add_argument("--endpoint", help="Kinesis endpoint (default: start kinesalite)")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--max-hold-s", type=float, help="source.max_hold_s (default: the settings default)")
    ap.add_argument(
        "--max-batch-delay-s", type=float, help="pipeline.max_batch_delay_s (default: the settings default)"
    )
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of markers left out of the percentiles")
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    args = ap.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

    service = None
    endpoint = args.endpoint
    if endpoint is None:
        from tests.services import start_kinesalite

        service = start_kinesalite()
        endpoint = service.endpoint
    try:
        return bench(args, endpoint)
    finally:
        if service is not None:
            service.stop()


def bench(args: argparse.Namespace, endpoint: str) -> int:
    model = ModelArtifact.load(Path(args.model)) if (Path(args.model) / "manifest.json").exists() else None
    source_cfg: dict[str, Any] = {"kind": "kinesis", "stream": "bench", "poll_interval_s": 0.2}
    if args.max_hold_s is not None:
        source_cfg["max_hold_s"] = args.max_hold_s
    config: dict[str, Any] = {"source": source_cfg}
    if args.max_batch_delay_s is not None:
        config["pipeline"] = {"max_batch_delay_s": args.max_batch_delay_s}
    settings = Settings.model_validate(config)
    client = kinesis_client(endpoint)

    # -- phase 1: latency at a sustained rate ---------------------------------------------------------
    stream = new_stream(client, args.shards)
    source = KinesisSource(stream, client=kinesis_client(endpoint), start="TRIM_HORIZON", poll_interval_s=0.2)
    reads = ReadTimes(source)
    sink = MarkerSink()
    runtime = build_runtime(settings, source, sink, model)
    source.start({})
    producer = Producer(client, stream, args.rate, args.seconds, args.marker_every)
    cpu0 = time.process_time()
    producer.start()
    while producer.is_alive():
        runtime.step()
    deadline = time.monotonic() + 15
    while len(sink.alerted_at) < len(producer.put_at) and time.monotonic() < deadline:
        runtime.step()
    cpu = time.process_time() - cpu0
    source.stop()
    live_events = runtime.ingest.events

    total, emulator, processing, queued, pipeline = [], [], [], [], []
    for m, put in producer.put_at.items():
        if put - producer.started < args.warmup:
            continue
        if m in sink.alerted_at and m in reads.read_at:
            total.append(sink.alerted_at[m] - put)
            emulator.append(reads.read_at[m] - put)
            processing.append(sink.alerted_at[m] - reads.read_at[m])
            queued.append(reads.polled_at[m] - reads.read_at[m])
            pipeline.append(sink.alerted_at[m] - reads.polled_at[m])
    missed = sum(1 for m in producer.put_at if m not in sink.alerted_at)

    # -- phase 2: throughput, Kinesis path vs replay of the same bytes ------------------------------------
    records = producer.records
    stream2 = new_stream(client, args.shards)
    load_started = time.monotonic()
    for i in range(0, len(records), 500):
        client.put_records(
            StreamName=stream2,
            Records=[{"Data": d, "PartitionKey": str(i + j)} for j, d in enumerate(records[i : i + 500])],
        )
    load_s = time.monotonic() - load_started
    source2 = KinesisSource(stream2, client=kinesis_client(endpoint), start="TRIM_HORIZON", poll_interval_s=0.2)
    runtime2 = build_runtime(settings, source2, MarkerSink(), model)
    source2.start({})
    started = time.monotonic()
    while runtime2.ingest.events < len(records) and time.monotonic() - started < 600:
        runtime2.step()
    runtime2.pending.extend(runtime2.reorder.flush())
    runtime2._process_pending(everything=True)
    kinesis_s = time.monotonic() - started
    source2.stop()

    detector3 = Detector(settings, model, store={})
    started = time.monotonic()
    summary = run_replay(
        ((d, f"bench#{i}", "bench") for i, d in enumerate(records)),
        detector3,
        Ingest(),
        settings.pipeline.allowed_lateness_s,
        settings.pipeline.batch_size,
    )
    replay_s = time.monotonic() - started

    # -- report --------------------------------------------------------------------------------------------
    rows = [
        ("total (put -> alert to sink)", total),
        ("emulator (put -> GetRecords returned)", emulator),
        ("processing (read -> alert to sink)", processing),
        ("  of which: read -> polled by the loop", queued),
        ("  of which: polled -> alert (hold+batch)", pipeline),
    ]
    print()
    print(
        f"Kinesis latency bench: kinesalite at {endpoint}, {args.shards} shards, model: "
        f"{model.version if model else 'none (rules only)'}"
    )
    print(
        f"settings: max_hold_s={settings.source.max_hold_s}  max_batch_delay_s={settings.pipeline.max_batch_delay_s}"
        f"  batch_size={settings.pipeline.batch_size}  poll_interval_s={settings.source.poll_interval_s}"
    )
    print(
        f"produced {producer.produced:,} events in {producer.elapsed:.1f}s = "
        f"{producer.produced / producer.elapsed:,.0f} ev/s "
        f"(failed puts {producer.failed}); consumed {live_events:,}; markers {len(producer.put_at)}, alerted "
        f"{len(producer.put_at) - missed}, missed {missed}; process CPU {cpu / producer.elapsed:.0%} of one core"
    )
    print()
    print(
        f"{f'latency (ms), {len(total)} markers after {args.warmup:g}s warm-up':<40}{'p50':>10}{'p99':>10}{'max':>10}"
    )
    for name, values in rows:
        if values:
            print(
                f"{name:<40}{pct(values, 50) * 1000:>10.0f}{pct(values, 99) * 1000:>10.0f}{max(values) * 1000:>10.0f}"
            )
    print()
    n = len(records)
    print(f"{'throughput, same ' + format(n, ',') + ' events':<40}{'seconds':>10}{'events/s':>12}")
    print(f"{'Kinesis path (TRIM_HORIZON drain)':<40}{kinesis_s:>10.1f}{n / kinesis_s:>12,.0f}")
    print(f"{'replay (no Kinesis)':<40}{replay_s:>10.1f}{n / replay_s:>12,.0f}")
    print(f"{'Kinesis / replay':<40}{'':>10}{(n / kinesis_s) / (n / replay_s):>12.2f}")
    print(f"(pre-loading the stream took {load_s:.1f}s; replay scored {summary.scored:,})")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
