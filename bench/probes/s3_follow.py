"""Issue 12, S3 follow mode (moto on 127.0.0.1): kill -9, alert-ID stability, new-prefix latency.

A simulated CloudTrail archive is uploaded to a bucket in delivery order, a few files at a time,
while ``detector run`` follows the bucket (TRIM_HORIZON, rules only unless ``--model``). Three runs, each with its own
bucket so that arrival timing differs:

* ``a`` and ``b``: uninterrupted, uploads paced differently. Their alert IDs must be the same
  (item 6: the ID may not depend on which event of a window arrived first);
* ``crashy``: SIGKILLed ``--kills`` times at random points while the upload goes on, then run
  to the end: events lost or double-counted, totals and alert IDs against ``a``.

Then item 5: with ``a``'s follower caught up (a fresh run on its bucket), files under new
account prefixes are uploaded one at a time; the latency is upload -> the new partition in a
checkpoint (checkpoints every 0.2 s, listing every ``--poll`` s).

Usage: PYTHONPATH=. python bench/probes/s3_follow.py [--days 4] [--kills 3] [--poll 1]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import orjson

from bench.probes import common
from tests.services import start_moto


def config(tmp: Path, name: str, bucket: str, endpoint: str, poll: float, model: str) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(
        f"""
model: {model or tmp / "no-model"}
state_dir: {tmp / name / "state"}
checkpoint_interval_s: 0.2
source: {{kind: s3, bucket: {bucket}, region: us-east-1, endpoint_url: "{endpoint}", start: TRIM_HORIZON,
          follow: true, poll_interval_s: {poll}}}
sinks: [{{kind: file, path: "{tmp / name / "alerts.jsonl"}"}}]
metrics: {{port: 0}}
pipeline: {{batch_size: 256}}
"""
    )
    return path


def keys_of(root: Path) -> list[tuple[str, Path]]:
    """(S3 key, file) in delivery order: the order CloudTrail writes them."""
    return [("AWSLogs/" + str(p.relative_to(root)), p) for p in common.archive_files(root)]


def base_of(key: str) -> str:
    parts = key.split("/")
    return "/".join(parts[:4]) + "/"  # AWSLogs/<account>/CloudTrail/<region>/


class Uploader(threading.Thread):
    def __init__(self, s3: Any, bucket: str, files: list[tuple[str, Path]], chunk: int, pause: float) -> None:
        super().__init__(daemon=True)
        self.s3, self.bucket, self.files, self.chunk, self.pause = s3, bucket, files, chunk, pause

    def run(self) -> None:
        for i, (key, path) in enumerate(self.files):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
            if (i + 1) % self.chunk == 0:
                time.sleep(self.pause)


def last_keys(files: list[tuple[str, Path]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, _ in files:
        out[base_of(key)] = max(out.get(base_of(key), ""), key)
    return out


def finished(state: Path, last: dict[str, str]) -> bool:
    cp = common.load(state)
    if cp is None or cp.pending or cp.held:
        return False
    return all(cp.positions.get(base) == key for base, key in last.items())


def follow_to_end(run: common.Run, state: Path, last: dict[str, str], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while run.saved == 0 or not finished(state, last):
        if run.proc.poll() is not None:
            raise SystemExit(f"run exited early ({run.proc.returncode}):\n{run.tail()}")
        if time.monotonic() > deadline:
            run.kill()
            raise SystemExit(f"run did not finish in {timeout} s:\n{run.tail()}")
        time.sleep(0.2)


def new_account_file(path: Path, account: str) -> tuple[str, bytes]:
    """One archive file re-addressed to a new account: its key, its gzip body."""
    records = orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
    moved = []
    for r in records:
        r = copy.deepcopy(r)
        r["recipientAccountId"] = account
        r["eventID"] = f"{account}-{r['eventID']}"
        moved.append(r)
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
    day = time.strftime("%Y/%m/%d", time.gmtime())
    name = f"{account}_CloudTrail_us-east-1_{stamp}_probe{account[-4:]}.json.gz"
    key = f"AWSLogs/{account}/CloudTrail/us-east-1/{day}/{name}"
    return key, gzip.compress(orjson.dumps({"Records": moved}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--poll", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--model", default="", help="model artifact (default: none, rules only)")
    ap.add_argument("--all-scenarios", action="store_true", help="every attack scenario (more alerts)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="probe-s3-"))
    root, n_events = common.archive(tmp / "archive", days=args.days, all_scenarios=args.all_scenarios)
    files = keys_of(root)
    last = last_keys(files)
    report: dict[str, Any] = {"seed": seed, "events": n_events, "files": len(files), "partitions": len(last)}

    service = start_moto(log_dir=tmp)
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=service.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        results: dict[str, Any] = {}
        for name, chunk, pause in (("a", 100, 0.3), ("b", 37, 0.1)):
            s3.create_bucket(Bucket=f"trail-{name}")
            uploader = Uploader(s3, f"trail-{name}", files, chunk, pause)
            started = time.monotonic()
            run = common.Run(config(tmp, name, f"trail-{name}", service.endpoint, args.poll, args.model))
            uploader.start()
            follow_to_end(run, tmp / name / "state", last)
            assert run.stop() == 0, run.tail()
            report[f"{name}_s"] = round(time.monotonic() - started, 1)
            report[f"{name}_tracebacks"] = run.tracebacks()
            results[name] = common.load(tmp / name / "state")

        s3.create_bucket(Bucket="trail-crashy")
        cfg = config(tmp, "crashy", "trail-crashy", service.endpoint, args.poll, args.model)
        uploader = Uploader(s3, "trail-crashy", files, 60, 0.2)
        uploader.start()
        landed, notes = common.kill_loop(lambda: common.Run(cfg), args.kills, rng, max_checkpoint=30)
        run = common.Run(cfg)
        follow_to_end(run, tmp / "crashy" / "state", last)
        assert run.stop() == 0, run.tail()
        results["crashy"] = common.load(tmp / "crashy" / "state")

        # item 5: new account prefixes while a follower is caught up
        cfg = config(tmp, "discover", "trail-a", service.endpoint, args.poll, args.model)
        run = common.Run(cfg)
        follow_to_end(run, tmp / "discover" / "state", last)
        latencies = []
        sample = files[len(files) // 2][1]
        for account in ("999900000001", "999900000002", "999900000003"):
            key, body = new_account_file(sample, account)
            started = time.monotonic()
            s3.put_object(Bucket="trail-a", Key=key, Body=body)
            last[base_of(key)] = key
            follow_to_end(run, tmp / "discover" / "state", last, timeout=900)
            latencies.append(round(time.monotonic() - started, 2))
        assert run.stop() == 0, run.tail()
    finally:
        service.stop()

    a, b, crashy = results["a"], results["b"], results["crashy"]
    ids = {name: common.alert_ids(tmp / name / "alerts.jsonl") for name in ("a", "b", "crashy")}
    counted = sum(common.totals(crashy).values())
    report.update(
        {
            "item6_alert_ids_a": len(ids["a"]),
            "item6_alert_ids_b": len(ids["b"]),
            "item6_ids_differing_a_b": len(ids["a"] ^ ids["b"]),
            "item6_a_b_totals_match": common.totals(a) == common.totals(b),
            "kills_landed": landed,
            "kill_points": notes,
            "events_in_crashy_baselines": counted,
            "lost": max(0, n_events - counted),
            "double_counted": max(0, counted - n_events),
            "crashy_totals_match_a": common.totals(crashy) == common.totals(a),
            "crashy_baselines_byte_identical_a": dict(crashy.store) == dict(a.store),
            "crashy_alert_ids_match_a": ids["crashy"] == ids["a"],
            "crashy_duplicate_deliveries": sum(
                n - 1 for n in common.deliveries(tmp / "crashy" / "alerts.jsonl").values() if n > 1
            ),
            "item5_poll_interval_s": args.poll,
            "item5_new_prefix_latency_s": latencies,
            "workdir": str(tmp),
        }
    )
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    ok = (
        report["lost"] == 0
        and report["double_counted"] == 0
        and report["item6_ids_differing_a_b"] == 0
        and report["crashy_alert_ids_match_a"]
        and max(latencies) < 10 * args.poll + 5
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
