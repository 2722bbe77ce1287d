"""Issue 12 item 9: the 256 MiB blob cap holds while reading, for files and for gzip.

``detector replay`` over a directory holding a 3 GB file (sparse: no disk used), a 3 GB-of-zeros
gzip bomb (~3 MB on disk) and one valid archive: both big ones must be rejected as ``oversized``,
the valid events processed, and peak RSS stay far below 3 GB.

Usage: PYTHONPATH=. python bench/probes/blob_cap.py
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import zlib
from pathlib import Path

import orjson

from bench.probes import common
from bench.probes.malformed import _summary, peak_rss_mb, valid


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="probe-blobcap-"))
    d = tmp / "in"
    d.mkdir()
    with (d / "huge.json").open("wb") as f:
        f.write(b'{"Records": [')
        f.truncate(3 << 30)  # 3 GiB, sparse
    bomb = zlib.compressobj(1, zlib.DEFLATED, 31)
    with (d / "bomb.json.gz").open("wb") as f:
        chunk = b" " * (1 << 24)
        for _ in range(3 << 30 >> 24):
            f.write(bomb.compress(chunk))
        f.write(bomb.flush())
    import random

    rng = random.Random(1)
    (d / "ok.json.gz").write_bytes(gzip.compress(orjson.dumps({"Records": [valid(i, rng) for i in range(100)]})))
    dead = tmp / "dead.jsonl"
    code, out, err, rss, seconds = peak_rss_mb(
        [
            sys.executable,
            "-m",
            "detector.cli",
            "replay",
            str(d),
            "--only",
            "rules",
            "--alerts",
            str(tmp / "alerts.jsonl"),
            "--dead-letters",
            str(dead),
            "--quiet",
        ]
    )
    summary = _summary(out) or _summary(err[err.find(b"\n{") + 1 :] if err[:1] != b"{" else err)
    letters = common.dead_letters(dead)
    report = {
        "exit": code,
        "seconds": round(seconds, 1),
        "peak_rss_mb": rss,
        "bomb_bytes_on_disk": (d / "bomb.json.gz").stat().st_size,
        "rejected": summary.get("rejected"),
        "events": summary.get("events"),
        "dead_letters": [(x.get("reason"), str(x.get("position")).rsplit("/", 1)[-1]) for x in letters],
        "tracebacks": err.count(b"Traceback"),
        "workdir": str(tmp),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    ok = code == 0 and rss < 1024 and report["events"] == 100 and (summary.get("rejected") or {}).get("oversized") == 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
