"""Faust worker throughput against bare aiokafka consumers reading the same topic.

One run, one broker (tansu on 127.0.0.1 unless ``--bootstrap``), one topic of N events
(default 200k, the simulator's bulk generator, 1,000 principals) written by the real bridge
(``runtime.bridge``: decode, event-time reorder, principal-keyed records). Then, one after the
other so each has the machine to itself:

* bare:        an aiokafka consumer reading the topic and splitting records into events
               (no decoding): the transport ceiling;
* bare+parse:  the same consumer also parsing each event's JSON (``orjson.loads``): the floor
               for any consumer of a JSON topic, as gunzip + orjson is for ``bench/replay.py``;
* bare+core:   the same consumer doing the worker's work without Faust: per ``getmany`` batch,
               ``parse_record`` + ``Detector.process`` on a dict store (no changelog, no alerts
               topic): the ceiling for any runtime on this core;
* worker:      ``detector worker`` as a subprocess (Faust agent, ``take_events`` micro-batches,
               changelog-backed table, alerts topic), timed from its first scored event to the
               last through its /metrics.

Prints events/s for each and the worker's ratio to both. Usage:
    python bench/faust.py [--events 200000] [--partitions 4] [--principals 1000]
                          [--bootstrap HOST:PORT] [--model DIR]
Without ``--model``, ``models/default`` is used if present, else a model is trained on a small
simulated archive first (~15 s). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
from orjson import loads

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detector import settings as settings_mod  # noqa: E402
from detector import simulate  # noqa: E402
from detector.cli import tune_gc  # noqa: E402
from detector.metrics import Metrics  # noqa: E402
from detector.model import ModelArtifact  # noqa: E402
from detector.pipeline import Detector  # noqa: E402
from detector.runtime.bridge import bridge_main  # noqa: E402
from detector.runtime.faust_app import Rejection, parse_record  # noqa: E402
from detector.sources.files import FileSource  # noqa: E402
from tests.services import free_port, start_tansu  # noqa: E402


def write_events(path: Path, n: int, principals: int) -> None:
    with path.open("wb") as f:
        for ev in simulate.iter_bulk(n, seed=1, principals=principals):
            f.write(orjson.dumps(ev) + b"\n")


def train_model(out: Path) -> ModelArtifact:
    from detector.replay import open_inputs
    from detector.train import train

    archive = out.parent / "train-archive"
    simulate.write_archive(simulate.plan(days=3, seed=7, principals=20, test_days=1), archive)
    artifact, _ = train(open_inputs([str(archive)]), out, settings_mod.Settings(), trees=50)
    return artifact


def settings_for(
    bootstrap: str,
    topic: str,
    partitions: int,
    state: Path,
    model: Path,
    group: str,
    take: int | None,
    compression: str | None = None,
) -> dict:
    kafka_take = {} if take is None else {"take_records": take}
    if compression is not None:
        kafka_take["compression"] = compression
    return {
        "model": str(model),
        "state_dir": str(state),
        "sinks": [],
        "log_level": "WARNING",
        "kafka": {
            "bootstrap_servers": [bootstrap],
            "events_topic": topic,
            "alerts_topic": f"{topic}-alerts",
            "dead_letter_topic": f"{topic}-dead",
            "partitions": partitions,
            "consumer_group": group,
            "session_timeout_s": 10,
            "rebalance_timeout_s": 20,
            "standby_replicas": 0,
            **kafka_take,
        },
    }


def consumer(bootstrap: str, topic: str, take: int):
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        max_poll_records=take,
    )


async def bare(bootstrap: str, topic: str, n: int, take: int, detector: Detector | None, parse: bool = False) -> float:
    """Events/s from the first record to the n-th event; parses each event's JSON when ``parse``,
    and scores them when ``detector`` is given."""
    c = consumer(bootstrap, topic, take)
    await c.start()
    seen = 0
    started = 0.0
    try:
        while seen < n:
            batch = await c.getmany(timeout_ms=1000, max_records=take)
            if not batch:
                continue
            if not started:
                started = time.perf_counter()
            if detector is None and not parse:
                seen += sum(m.value.count(b"\n") + 1 for msgs in batch.values() for m in msgs if m.value)
                continue
            if detector is None:
                seen += sum(
                    1
                    for msgs in batch.values()
                    for m in msgs
                    if m.value
                    for line in m.value.split(b"\n")
                    if line and loads(line) is not None
                )
                continue
            events = [
                ev
                for msgs in batch.values()
                for m in msgs
                for ev in parse_record(m.value)
                if not isinstance(ev, Rejection)
            ]
            seen += len(events)
            detector.process(events)
        return n / (time.perf_counter() - started)
    finally:
        await c.stop()


def scored(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("detector_events_scored_total "):
                    return float(line.split()[1])
    except OSError:
        pass
    return -1.0


def faust_worker(config: Path, n: int, timeout_s: float) -> float:
    port = free_port()
    log = config.with_suffix(".log")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "detector.cli", "worker", "--config", str(config), "--metrics-port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        first_at, first = 0.0, 0.0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited with {proc.returncode}; log: {log}")
            value = scored(port)
            now = time.perf_counter()
            if value > 0 and not first_at:
                first_at, first = now, value
            if value >= n:
                return (n - first) / (now - first_at)
            time.sleep(0.1)
        raise SystemExit(f"worker did not score {n} events in {timeout_s:.0f}s; log: {log}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--principals", type=int, default=1000)
    ap.add_argument("--bootstrap", help="HOST:PORT of a running broker (default: start tansu)")
    ap.add_argument("--model", help="model artifact (default: models/default, else train one)")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--take", type=int, help="kafka.take_records for the worker (default: the config default)")
    ap.add_argument(
        "--compression",
        choices=["zstd", "lz4", "gzip", "snappy", "none"],
        help="kafka.compression of the topics (default: the config default, zstd). Compressed, the bare "
        "consumer moves ~10x fewer bytes and runs several times faster; the worker barely changes",
    )
    args = ap.parse_args()
    tune_gc()  # what every `detector` verb does (the bridge runs in this process)

    work = Path(tempfile.mkdtemp(prefix="bench-faust-"))
    broker = None
    if args.bootstrap:
        bootstrap = args.bootstrap
    else:
        broker = start_tansu(log_dir=work)
        bootstrap = broker.endpoint
    try:
        model_dir = Path(args.model) if args.model else ROOT / "models" / "default"
        if not model_dir.exists():
            print("training a model on a small simulated archive ...", flush=True)
            model_dir = work / "model"
            train_model(model_dir)
        model = ModelArtifact.load(model_dir)

        topic = f"bench-{uuid.uuid4().hex[:8]}"
        group = f"{topic}-workers"
        config = settings_for(
            bootstrap, topic, args.partitions, work / "state", model_dir, group, args.take, args.compression
        )
        (work / "worker.yaml").write_bytes(orjson.dumps(config))  # JSON is YAML
        settings = settings_mod.load(work / "worker.yaml", env={})
        take = settings.kafka.take_records

        events_file = work / "events.jsonl"
        t = time.perf_counter()
        write_events(events_file, args.events, args.principals)
        print(f"generated {args.events} events in {time.perf_counter() - t:.1f}s", flush=True)

        metrics = Metrics.create()
        summary = asyncio.run(bridge_main(settings, lambda: FileSource([str(events_file)]), metrics, inputs=None))
        print(
            f"bridge:     {summary.produced / summary.seconds:10,.0f} ev/s  "
            f"({summary.produced} events in {summary.records_out} records)",
            flush=True,
        )

        rate_bare = asyncio.run(bare(bootstrap, topic, args.events, take, None))
        print(f"bare:       {rate_bare:10,.0f} ev/s  (aiokafka getmany, read only)", flush=True)
        rate_parse = asyncio.run(bare(bootstrap, topic, args.events, take, None, parse=True))
        print(f"bare+parse: {rate_parse:10,.0f} ev/s  (aiokafka getmany + orjson.loads per event)", flush=True)
        detector = Detector(settings, model, store={})
        rate_core = asyncio.run(bare(bootstrap, topic, args.events, take, detector))
        print(f"bare+core:  {rate_core:10,.0f} ev/s  (aiokafka getmany + parse + Detector.process)", flush=True)
        rate_worker = faust_worker(work / "worker.yaml", args.events, args.timeout)
        print(f"worker:     {rate_worker:10,.0f} ev/s  (detector worker: Faust, changelog table)", flush=True)
        print(f"topics compressed with {settings.kafka.compression}")
        print(f"worker / bare      = {rate_worker / rate_bare:6.1%}   (goal >= 50%)")
        print(f"worker / bare+parse= {rate_worker / rate_parse:6.1%}")
        print(f"worker / bare+core = {rate_worker / rate_core:6.1%}")
    finally:
        if broker is not None:
            broker.stop()
        if not os.environ.get("BENCH_KEEP"):
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
