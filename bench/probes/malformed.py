"""Issue 12, hostile input: 20,000 malformed records through ``detector replay`` and through a
Kinesis ``detector run`` (kinesalite), and peak RSS with 20 kB field values (item 8).

The corpus: 160 archives (``{"Records": [...]}``) of 100 malformed and 25 valid records each, and
40 JSON Lines files that start with 25 garbage lines, then 75 more malformed and 25 valid lines.
Malformed kinds: NaN / Infinity / -Infinity tokens, invalid UTF-8, ``1e999``, an integer past
2^64 as eventName, a missing eventTime, an unparseable or far-future eventTime, a record that is
a number, garbage lines. Valid neighbours include 20 kB eventName / bucket / IP values and a
userName past 2^64. Every malformed record must be one reject with one dead letter, every valid
one an event, and no traceback printed.

Kinesis gets every archive record as its own Kinesis record and each JSON Lines file as one.

Item 8: replay of 20,000 events whose eventName, bucket and sourceIPAddress are 20 kB (distinct
per event) against 20,000 with short values: peak RSS of each.

Usage: PYTHONPATH=. python bench/probes/malformed.py [--skip-kinesis] [--skip-rss]
"""

from __future__ import annotations

import argparse
import ast
import gzip
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bench.probes import common
from bench.probes.common import ROOT

VALID_PER_BLOB = 25
ARCHIVES, JSONL_FILES = 160, 40
BAD_PER_ARCHIVE, GARBAGE_LINES, BAD_LINES = 100, 25, 75
HUGE_INT = b"123456789012345678901234567890"


def valid(i: int, rng: random.Random) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::111122223333:user/u{i % 40}",
            "accountId": "111122223333",
            "userName": f"u{i % 40}",
        },
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_767_225_600 + i)),
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": f"10.0.{i % 200}.{i % 250}",
        "userAgent": "aws-cli/2.15",
        "requestParameters": {"bucketName": f"bucket-{i % 30}", "key": f"k/{i}"},
        "eventID": f"valid-{i}",
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
        "eventCategory": "Data",
        "managementEvent": False,
    }
    roll = rng.random()
    if roll < 0.05:
        ev["eventName"] = "x" * 20_000 + str(i)
        ev["sourceIPAddress"] = "y" * 20_000 + str(i)
        ev["requestParameters"]["bucketName"] = "z" * 20_000 + str(i)
    elif roll < 0.08:
        ev["userIdentity"]["userName"] = HUGE_USER  # past 2^64 (written by text()): valid, one principal
        del ev["userIdentity"]["arn"]
    return ev


HUGE_USER = "<huge-int>"


def text(ev: dict[str, Any]) -> bytes:
    return orjson.dumps(ev).replace(b'"' + HUGE_USER.encode() + b'"', b"12345678901234567890123")


# (kind, reject reason it must get): the malformed records
KINDS = [
    ("nan", "invalid_json"),
    ("infinity", "invalid_json"),
    ("neg_infinity", "invalid_json"),
    ("bad_utf8", "invalid_json"),
    ("e999", "invalid_json"),
    ("huge_int_name", "bad_field_type"),
    ("missing_time", "missing_field"),
    ("bad_time", "bad_timestamp"),
    ("future_time", "future_timestamp"),
    ("number", "not_an_object"),
]


def malformed(kind: str, i: int, rng: random.Random) -> bytes:
    base = text(valid(10_000_000 + i, random.Random(0)))
    body = base[:-1]
    if kind == "nan":
        return body + b',"x":NaN}'
    if kind == "infinity":
        return body + b',"additionalEventData":{"bytesTransferredOut":Infinity}}'
    if kind == "neg_infinity":
        return body + b',"x":[1,-Infinity]}'
    if kind == "bad_utf8":
        return body + b',"userAgent":"aws-cli/2 \xff\xfe"}'
    if kind == "e999":
        return body + b',"additionalEventData":{"bytesTransferredOut":1e999}}'
    ev = orjson.loads(base)
    if kind == "huge_int_name":
        return text(ev).replace(b'"eventName":"GetObject"', b'"eventName":' + HUGE_INT)
    if kind == "missing_time":
        del ev["eventTime"]
    elif kind == "bad_time":
        ev["eventTime"] = "yesterday-ish"
    elif kind == "future_time":
        ev["eventTime"] = "2099-01-01T00:00:00Z"
    elif kind == "number":
        return b"%d" % rng.randrange(1 << 40)
    return text(ev)


def corpus(rng: random.Random) -> tuple[list[tuple[str, bytes, list[bytes]]], Counter[str], int]:
    """Blobs (name, bytes, its items for Kinesis), the rejects expected by reason, valid events."""
    blobs: list[tuple[str, bytes, list[bytes]]] = []
    expected: Counter[str] = Counter()
    n_valid = 0
    serial = 0
    for b in range(ARCHIVES):
        items: list[bytes] = []
        for _ in range(BAD_PER_ARCHIVE):
            kind, reason = rng.choice(KINDS)
            items.append(malformed(kind, serial, rng))
            expected[reason] += 1
            serial += 1
        for _ in range(VALID_PER_BLOB):
            items.append(text(valid(serial, rng)))
            n_valid += 1
            serial += 1
        rng.shuffle(items)
        blobs.append((f"archive-{b:03d}.json", b'{"Records":[' + b",".join(items) + b"]}", items))
    for f in range(JSONL_FILES):
        lines = [b"garbage line %d {{{ not json" % k for k in range(GARBAGE_LINES)]
        expected["invalid_json"] += GARBAGE_LINES
        rest: list[bytes] = []
        for _ in range(BAD_LINES):
            kind, reason = rng.choice([k for k in KINDS if k[0] != "number"] + [("garbage", "invalid_json")])
            rest.append(b"{garbage %d" % serial if kind == "garbage" else malformed(kind, serial, rng))
            expected[reason] += 1
            serial += 1
        for _ in range(VALID_PER_BLOB):
            rest.append(text(valid(serial, rng)))
            n_valid += 1
            serial += 1
        rng.shuffle(rest)
        data = b"\n".join(lines + rest) + b"\n"
        blobs.append((f"lines-{f:03d}.jsonl", data, [data]))
    return blobs, expected, n_valid


def peak_rss_mb(argv: list[str], timeout: float = 900) -> tuple[int, bytes, bytes, int, float]:
    """Like run_measured, peak RSS from the child's own rusage (``/usr/bin/time`` is not always there)."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "p = subprocess.run(sys.argv[1:])\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024\n"
        "sys.stderr.write(f'\\nPEAK_RSS_MB={rss} SECONDS={time.monotonic() - t:.1f}\\n')\n"
        "sys.exit(p.returncode)\n"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *argv], env=common.env(), capture_output=True, timeout=timeout
    )
    tail = proc.stderr.rsplit(b"PEAK_RSS_MB=", 1)
    rss = int(tail[1].split()[0]) if len(tail) == 2 else -1
    return proc.returncode, proc.stdout, tail[0], rss, time.monotonic() - started


def replay(
    tmp: Path, blobs: list[tuple[str, bytes, list[bytes]]], expected: Counter[str], n_valid: int
) -> dict[str, Any]:
    corpus_dir = tmp / "corpus"
    corpus_dir.mkdir()
    for name, data, _ in blobs:
        (corpus_dir / name).write_bytes(data)
    dead = tmp / "replay-dead.jsonl"
    code, out, err, rss, seconds = peak_rss_mb(
        [
            sys.executable,
            "-m",
            "detector.cli",
            "replay",
            str(corpus_dir),
            "--only",
            "rules",
            "--alerts",
            str(tmp / "replay-alerts.jsonl"),
            "--dead-letters",
            str(dead),
            "--quiet",
        ]
    )
    summary = _summary(out) or _summary(err[err.find(b"\n{") + 1 :] if err[:1] != b"{" else err)
    letters = common.dead_letters(dead)
    by_reason = Counter(str(d.get("reason")) for d in letters)
    rejected = Counter(summary.get("rejected", {}))
    return {
        "exit": code,
        "seconds": round(seconds, 1),
        "peak_rss_mb": rss,
        "tracebacks": err.count(b"Traceback"),
        "expected_rejects": sum(expected.values()),
        "counted_rejects": sum(rejected.values()),
        "rejects_by_reason_match": rejected == expected,
        "dead_letters": len(letters),
        "dead_letters_by_reason_match": by_reason == expected,
        "dead_letter_positions_distinct": len({d.get("position") for d in letters}) == len(letters),
        "valid_events_expected": n_valid,
        "valid_events_decoded": summary.get("events"),
        "mismatch": {
            k: (expected[k], rejected[k], by_reason[k]) for k in expected | rejected if expected[k] != rejected[k]
        },
    }


def _summary(output: bytes) -> dict[str, Any]:
    """The replay's summary: one pretty-printed JSON object (on stderr when alerts go to a file)."""
    try:
        value = orjson.loads(output)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def kinesis(
    tmp: Path, blobs: list[tuple[str, bytes, list[bytes]]], expected: Counter[str], n_valid: int
) -> dict[str, Any]:
    import boto3

    from bench.probes.kinesis_kill import finished, run_to_end
    from tests.services import start_kinesalite

    records = [item for _, _, items in blobs for item in items]
    service = start_kinesalite(log_dir=tmp)
    try:
        client = boto3.client(
            "kinesis",
            endpoint_url=service.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_stream(StreamName="hostile", ShardCount=2)
        client.get_waiter("stream_exists").wait(StreamName="hostile", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
        from bench.probes.kinesis_kill import put_all

        last = put_all(client, "hostile", records, random.Random(1))
        cfg = tmp / "kinesis.yaml"
        cfg.write_text(
            f"""
model: {tmp / "no-model"}
state_dir: {tmp / "kinesis" / "state"}
checkpoint_interval_s: 0.5
source: {{kind: kinesis, stream: hostile, region: us-east-1, endpoint_url: "{service.endpoint}", start: TRIM_HORIZON,
          poll_interval_s: 0.1}}
sinks: [{{kind: file, path: "{tmp / "kinesis" / "alerts.jsonl"}"}}]
metrics: {{port: 0}}
"""
        )
        started = time.monotonic()
        code, run = run_to_end(cfg, tmp / "kinesis" / "state", last)
        seconds = time.monotonic() - started
        assert finished(tmp / "kinesis" / "state", last)
    finally:
        service.stop()
    cp = common.load(tmp / "kinesis" / "state")
    assert cp is not None
    letters = common.dead_letters(tmp / "kinesis" / "state" / "dead-letters.jsonl")
    by_reason = Counter(str(d.get("reason")) for d in letters)
    counted: Counter[str] = Counter()  # the run logs its cumulative rejects by reason after each poll
    for line in run.log:
        if b'"event": "rejected"' in line:
            reasons = orjson.loads(line).get("reasons")
            if isinstance(reasons, str):  # the JSON log formatter writes a dict field as its repr
                reasons = ast.literal_eval(reasons)
            if isinstance(reasons, dict):
                counted = Counter({str(k): int(v) for k, v in reasons.items()})
    return {
        "exit": code,
        "seconds": round(seconds, 1),
        "kinesis_records": len(records),
        "tracebacks": run.tracebacks(),
        "expected_rejects": sum(expected.values()),
        "counted_rejects": sum(counted.values()),
        "rejects_by_reason_match": counted == expected,
        "dead_letters": len(letters),
        "dead_letters_by_reason_match": by_reason == expected,
        "valid_events_expected": n_valid,
        "valid_events_in_baselines": sum(common.totals(cp).values()),
        "mismatch": {
            k: (expected[k], counted[k], by_reason[k]) for k in expected | counted if expected[k] != counted[k]
        },
    }


def rss_item8(tmp: Path, n: int = 20_000, per_file: int = 500) -> dict[str, Any]:
    """Peak RSS of a replay (default model) of ``n`` events: short values (40 principals), short
    values with one principal per event, 20 kB eventName / bucket / IP, and those plus a 20 kB
    user ARN (one principal per event); every long value distinct."""
    out: dict[str, Any] = {}
    rng = random.Random(8)
    variants = (
        ("short", 0, False),
        ("short+distinct_arn", 0, True),
        ("20kB", 20_000, False),
        ("20kB+arn", 20_000, True),
    )
    for label, width, arn in variants:
        d = tmp / f"rss-{label}"
        d.mkdir()
        for f in range(n // per_file):
            records = []
            for k in range(per_file):
                i = f * per_file + k
                ev = valid(i, rng)
                ev["eventName"] = ("x" * width + str(i)) if width else "GetObject"
                ev["sourceIPAddress"] = ("y" * width + str(i)) if width else f"10.0.{i % 200}.{i % 250}"
                ev["requestParameters"]["bucketName"] = ("z" * width + str(i)) if width else f"bucket-{i % 30}"
                if arn:  # one principal per event
                    ev["userIdentity"]["arn"] = "arn:aws:iam::111122223333:user/" + "u" * width + str(i)
                records.append(ev)
            (d / f"part-{f:03d}.json.gz").write_bytes(gzip.compress(text_of_all(records), 1))
        code, _, err, rss, seconds = peak_rss_mb(
            [
                sys.executable,
                "-m",
                "detector.cli",
                "replay",
                str(d),
                "--model",
                str(ROOT / "models" / "default"),
                "--alerts",
                os.devnull,
                "--quiet",
            ]
        )
        out[label] = {
            "exit": code,
            "peak_rss_mb": rss,
            "seconds": round(seconds, 1),
            "tracebacks": err.count(b"Traceback"),
        }
    return out


def text_of_all(records: list[dict[str, Any]]) -> bytes:
    return b'{"Records":[' + b",".join(text(r) for r in records) + b"]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-kinesis", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--rss-only", action="store_true", help="only item 8's peak RSS")
    ap.add_argument("--rss-events", type=int, default=20_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="probe-malformed-"))
    if args.rss_only:
        print(orjson.dumps({"item8_rss": rss_item8(tmp, args.rss_events), "workdir": str(tmp)}).decode())
        return 0
    blobs, expected, n_valid = corpus(random.Random(args.seed))
    report: dict[str, Any] = {"expected_by_reason": dict(expected), "replay": replay(tmp, blobs, expected, n_valid)}
    if not args.skip_kinesis:
        report["kinesis"] = kinesis(tmp, blobs, expected, n_valid)
    if not args.skip_rss:
        report["item8_rss"] = rss_item8(tmp, args.rss_events)
    report["workdir"] = str(tmp)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    ok = all(
        part["tracebacks"] == 0 and part["rejects_by_reason_match"] and part["dead_letters_by_reason_match"]
        for key, part in report.items()
        if key in ("replay", "kinesis")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
