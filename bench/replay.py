"""`replay` throughput on a gzip CloudTrail archive against the raw parse floor.

Writes an archive of N events (default 1M) from the simulator's bulk generator as real
CloudTrail files (`{"Records": [...]}`, gzip, ~5k events each), then in the same run:

* floor: gunzip + orjson.loads of every file (no CloudTrail work at all);
* decode: the floor plus our envelope detection and per-event checks (the general reader);
* typed read: the fast reader replay actually uses on clean files (gunzip + msgspec structs
  straight to normalised events, without building each event's dict);
* replay: the whole live path (decode, normalise, reorder, dedup, baselines, features,
  isolation-forest scoring in micro-batches, policy, alert JSON) with the shipped model.

Usage: python bench/replay.py [--events 1000000] [--dir /tmp/bench-archive] [--model models/default]
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import orjson

from detector import typed
from detector.alert import Alert
from detector.cli import tune_gc
from detector.decode import decode
from detector.ingest import Ingest
from detector.model import ModelArtifact
from detector.pipeline import Detector
from detector.replay import Summary, replay_parallel, run_replay
from detector.settings import Settings, load
from detector.simulate import iter_bulk
from detector.sources.file import list_files

GOAL_RATIO = 0.30
GOAL_EPS = 50_000


def ensure_archive(out: Path, events: int, per_file: int = 5000) -> None:
    """An archive of ``events`` events in ``out``: reused when its marker says it has that many
    (bench/profile.py shares it), else written afresh."""
    marker = out / f".events-{events}"
    if marker.exists():
        return
    t = time.perf_counter()
    for old in [*out.glob("*.json.gz"), *out.glob(".events-*")]:  # another size's marker would lie later
        old.unlink()
    write_archive(out, events, per_file)
    marker.touch()
    print(f"wrote {events:,} events in {time.perf_counter() - t:.1f} s to {out}")


def replay_once(
    blobs: list[bytes], files: list[Path], settings: Settings, model: ModelArtifact
) -> tuple[Summary, Detector, int]:
    """The whole live path once, from fresh state: decode ... alerts, each alert serialised.
    Returns the replay's summary, the detector (its store) and the alerts raised."""
    detector = Detector(settings, model, store={})
    alerts = 0

    def count(batch: list[Alert]) -> None:
        nonlocal alerts
        for a in batch:
            a.to_json()
        alerts += len(batch)

    inputs = ((b, str(f), "file") for b, f in zip(blobs, files, strict=True))
    p = settings.pipeline
    summary = run_replay(inputs, detector, Ingest(), p.allowed_lateness_s, p.batch_size, on_alerts=count)
    return summary, detector, alerts


def write_archive(out: Path, events: int, per_file: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    batch: list[dict] = []
    n = 0
    for ev in iter_bulk(events, seed=1):
        batch.append(ev)
        if len(batch) == per_file:
            _flush(out, n, batch)
            n += 1
            batch = []
    if batch:
        _flush(out, n, batch)


def _flush(out: Path, n: int, batch: list[dict]) -> None:
    name = f"111122223333_CloudTrail_us-east-1_20260105T{n // 60 % 24:02d}{n % 60:02d}Z_bench{n:06d}.json.gz"
    (out / name).write_bytes(gzip.compress(orjson.dumps({"Records": batch}), compresslevel=6, mtime=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--per-file", type=int, default=5000)
    ap.add_argument("--dir", default="/tmp/bench-archive")
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--workers", type=int, default=2, help="also time `replay --workers N` (0: skip)")
    args = ap.parse_args()
    tune_gc()  # what `detector replay` does

    out = Path(args.dir)
    ensure_archive(out, args.events, args.per_file)
    files = list_files(out)
    blobs = [f.read_bytes() for f in files]  # read once: measure CPU, not the page cache
    size = sum(len(b) for b in blobs)

    t = time.perf_counter()
    floor_events = sum(len(orjson.loads(gzip.decompress(b))["Records"]) for b in blobs)
    floor_s = time.perf_counter() - t

    t = time.perf_counter()
    decoded = sum(len(decode(b, str(f)).events) for b, f in zip(blobs, files, strict=True))
    decode_s = time.perf_counter() - t

    t = time.perf_counter()
    fast = sum(len(typed.read(b)[0] or ()) for b in blobs)
    typed_s = time.perf_counter() - t

    settings = load(None, env={})
    model = ModelArtifact.load(Path(args.model))
    t = time.perf_counter()
    summary, detector, alerts = replay_once(blobs, files, settings, model)
    replay_s = time.perf_counter() - t
    assert summary.events == floor_events == decoded, (summary.events, floor_events, decoded)

    floor_eps = floor_events / floor_s
    replay_eps = summary.events / replay_s
    print(f"archive: {len(files)} files, {floor_events:,} events, {size / 1e6:.0f} MB gzip")
    print(f"{'stage':<28}{'seconds':>9}{'events/s':>12}{'vs floor':>10}")
    print(f"{'floor (gunzip+orjson)':<28}{floor_s:>9.2f}{floor_eps:>12,.0f}{1:>10.0%}")
    print(f"{'decode()':<28}{decode_s:>9.2f}{decoded / decode_s:>12,.0f}{floor_s / decode_s:>10.0%}")
    print(f"{'typed read (-> Events)':<28}{typed_s:>9.2f}{fast / typed_s:>12,.0f}{floor_s / typed_s:>10.0%}")
    print(f"{'replay (full live path)':<28}{replay_s:>9.2f}{replay_eps:>12,.0f}{floor_s / replay_s:>10.0%}")
    if args.workers > 1:
        t = time.perf_counter()
        par = replay_parallel([str(out)], settings, args.model, args.workers)
        par_s = time.perf_counter() - t
        assert par.summary.scored == summary.scored and len(par.alerts) == alerts, (par.summary, alerts)
        label = f"replay --workers {args.workers}"
        print(f"{label:<28}{par_s:>9.2f}{summary.events / par_s:>12,.0f}{floor_s / par_s:>10.0%}")
    print(f"principals {len(detector.store):,}, alerts {alerts:,} ({dict(summary.alerts)})")
    print(
        f"goals: >= {GOAL_RATIO:.0%} of floor and >= {GOAL_EPS:,} events/s -> "
        f"{floor_s / replay_s:.0%}, {replay_eps:,.0f}/s"
    )


if __name__ == "__main__":
    main()
