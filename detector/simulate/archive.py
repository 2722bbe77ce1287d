"""The event stream (:func:`iter_events`) and the S3-layout archive writer (:func:`write_archive`)."""

# ruff: noqa: S311 - seeded pseudo-randomness is the point here: reproducible traffic, not secrets

from __future__ import annotations

import dataclasses
import gzip
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from detector.simulate.ids import _ALNUM, _iso
from detector.simulate.plan import _DAY, _HOUR, ACCOUNTS
from detector.simulate.populations import _DAY_GENERATORS
from detector.simulate.scenarios import CATALOGUE, attacks, labels
from detector.simulate.world import _build_world, roster

if TYPE_CHECKING:
    from detector.simulate.plan import SimulationPlan
    from detector.simulate.records import _Out

# ---------------------------------------------------------------------------------------------
# The stream
# ---------------------------------------------------------------------------------------------


def _iter_tagged(p: SimulationPlan) -> Iterator[tuple[str, float, dict[str, Any]]]:
    """Events with the kind of principal (or ``attack:<scenario>``) that produced them and their time."""
    w = _build_world(p)
    pending: dict[int, list[tuple[float, str, dict[str, Any]]]] = defaultdict(list)
    total_hours = p.days * 24
    for a in attacks(p):
        for t, ev in a.events:
            pending[int((t - p.start) // _HOUR)].append((t, f"attack:{a.scenario}", ev))
    for d in range(p.days):
        # a day's generators only emit at or after that day's midnight, so hours of day d are
        # complete once every principal's day d is generated (people west of UTC spill into d+1)
        for pr in w.principals:
            if d < pr.first_day:  # not deployed (or not hired) yet
                continue
            rng = random.Random(f"{p.seed}|{pr.key}|{d}")
            out: _Out = []
            _DAY_GENERATORS[pr.kind](rng, w, pr, d, out)
            for t, ev in out:
                h = int((t - p.start) // _HOUR)
                if d * 24 <= h < total_hours:
                    pending[h].append((t, pr.kind, ev))
        for h in range(d * 24, (d + 1) * 24):
            batch = pending.pop(h, [])
            jitter = random.Random(f"{p.seed}|deliver|{h}")
            # delivery reorders events a little: sort on event time plus up to 20 s of noise
            keyed = sorted(((t + jitter.random() * 20, i) for i, (t, _, _) in enumerate(batch)))
            for _, i in keyed:
                t, kind, ev = batch[i]
                yield kind, t, ev


def iter_events(p: SimulationPlan) -> Iterator[dict[str, Any]]:
    """CloudTrail event dicts for the plan, in roughly event-time order.

    Events are generated a day at a time and released an hour at a time; inside an hour the order
    is shuffled by up to 20 seconds like real delivery. Memory holds about one day of events. The
    attack events of :func:`labels` are included exactly once each.
    """
    for _, _, ev in _iter_tagged(p):
        yield ev


# ---------------------------------------------------------------------------------------------
# Archive writer (the only I/O)
# ---------------------------------------------------------------------------------------------


def write_archive(
    p: SimulationPlan, out: Path, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Write the plan as a CloudTrail S3 archive under ``out``.

    Layout: ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_
    <YYYYMMDDTHHMMZ>_<16 alnum>.json.gz`` holding ``{"Records": [...]}``, one file per account and
    region per 5-minute delivery window. Each event is delivered 1-10 minutes after it happened,
    so files overlap in event time and records inside a file are unsorted, as in real trails.
    Also writes ``labels.jsonl`` and ``simulation.json`` (plan, roster, catalogue, counts).
    ``progress(done, total)`` is called as simulated days are written (``total`` is ``p.days``).

    Returns
    -------
    dict
        ``events``, ``files``, ``principals``, ``labels``, ``attack_events`` and ``by_kind``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{p.seed}|archive")
    windows: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    by_kind: dict[str, int] = defaultdict(int)
    counts = {"events": 0, "files": 0}

    def flush(keys: list[tuple[int, str, str]]) -> None:
        for key in sorted(keys):
            window, acct, region = key
            records = windows.pop(key)
            rng.shuffle(records)
            stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(window))
            day = time.strftime("%Y/%m/%d", time.gmtime(window))
            suffix = "".join(rng.choice(_ALNUM) for _ in range(16))
            folder = out / "AWSLogs" / acct / "CloudTrail" / region / day
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{acct}_CloudTrail_{region}_{stamp}_{suffix}.json.gz"
            # level 3: half the time of the default for ~20% larger files; mtime=0 keeps the bytes reproducible
            data = gzip.compress(orjson.dumps({"Records": records}), compresslevel=3, mtime=0)
            (folder / name).write_bytes(data)
            counts["files"] += 1

    last_flush = p.start
    day_done = 0
    if progress is not None:
        progress(0, p.days)
    for kind, t, ev in _iter_tagged(p):
        if progress is not None and t >= p.start + (day_done + 1) * _DAY:
            day_done = min(p.days - 1, int((t - p.start) // _DAY))
            progress(day_done, p.days)  # the days before this event's are written
        delivered = t + rng.uniform(60, 600)
        key = (int(delivered // 300 * 300), ev["recipientAccountId"], ev["awsRegion"])
        windows.setdefault(key, []).append(ev)
        by_kind[kind.split(":")[0]] += 1
        counts["events"] += 1
        if t - last_flush > 900:
            flush([k for k in windows if k[0] + 300 < t - 600])
            last_flush = t
    flush(list(windows))
    if progress is not None:
        progress(p.days, p.days)

    labs = labels(p)
    with (out / "labels.jsonl").open("wb") as fh:
        for lab in labs:
            fh.write(orjson.dumps(dataclasses.asdict(lab)) + b"\n")
    summary: dict[str, Any] = {
        "events": counts["events"],
        "files": counts["files"],
        "principals": p.n_principals,
        "labels": len(labs),
        "attack_events": sum(len(lab.event_ids) for lab in labs),
        "by_kind": dict(sorted(by_kind.items())),
        "test_start": _iso(p.test_start),  # attacks from here on: train with --until this
    }
    meta = {
        **dataclasses.asdict(p),
        "start_iso": _iso(p.start),
        "test_start_iso": _iso(p.test_start),
        "accounts": list(ACCOUNTS),
        "principals": roster(p),
        "catalogue": [CATALOGUE[name].describe() for name in p.scenarios],
        "counts": summary,
    }
    (out / "simulation.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    return summary
