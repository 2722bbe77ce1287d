"""Where `replay` time goes, per stage, in µs per event.

Replays a gzip CloudTrail archive (bench/replay.py's, written once into ``--dir``) twice
through the whole live path: once plainly timed, then once under cProfile. Each stage is
the cumulative time of the functions that implement it; a function nested in another
stage's is subtracted from that stage, so the rows add up to the profiled total ("other" is
what no stage names). The "measured as" column says which functions each row is.

cProfile charges a fixed cost per Python call, so it inflates call-heavy Python stages more
than compiled ones (``detector.core`` is one call per batch to it). The estimate column
scales each stage's share of profiled time to the plain run's µs/event: read it as a
guide, not a measurement (py-spy, which samples, puts the compiled forest nearer its
profiled figure than its estimate). The profiled run starts with the module memo caches (event
times, principals, hashes) warm from the plain run, as a long-running ``detector run`` has them.

Usage: python bench/profile.py [--events 100000] [--dir /tmp/bench-profile-archive]
       [--model models/default] [--top K] [--pstats FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ is sys.path[0], where this file would shadow the stdlib's `profile`
# that cProfile imports; the repository root goes there instead (bench.replay imports from it).
sys.path[0] = str(ROOT)

import cProfile  # noqa: E402
import pstats  # noqa: E402

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.replay import ensure_archive, replay_once  # noqa: E402
from detector import features, policy, typed  # noqa: E402
from detector.alert import Alert  # noqa: E402
from detector.baseline import Baseline  # noqa: E402
from detector.cli import tune_gc  # noqa: E402
from detector.model import Forest, ModelArtifact  # noqa: E402
from detector.ordering import Reorder, SeenIds  # noqa: E402
from detector.pipeline import Detector  # noqa: E402
from detector.replay import run_replay  # noqa: E402
from detector.settings import load  # noqa: E402
from detector.sources.file import list_files  # noqa: E402

Key = tuple[str, int, str]  # pstats' (file, first line, name)
LIST_SORT: Key = ("~", 0, "<method 'sort' of 'list' objects>")  # Detector.process sorts each batch by time


def key(fn: Any) -> Key:
    """pstats' key of a Python function; AttributeError here means the code it names has moved."""
    code = fn.__code__
    return code.co_filename, code.co_firstlineno, code.co_name


def stages(st: pstats.Stats, events: int) -> tuple[float, list[tuple[str, float, str]]]:
    """(total seconds, [(stage, seconds, measured as)]), the last row "other"."""
    table: dict[Key, Any] = st.stats  # type: ignore[attr-defined]  # key -> (cc, calls, tottime, cumtime, callers)

    def cum(fn: Any, caller: Callable[..., Any] | None = None) -> float:
        """Cumulative seconds of ``fn`` (a function or a pstats key), only as called from ``caller`` if given.

        Every replay calls each named function but the alert ones, so a missing one means the
        code has moved and this table would silently put its time in "other"."""
        entry = table.get(fn if isinstance(fn, tuple) else key(fn))
        edge = entry and (entry[4].get(key(caller)) if caller is not None else entry)
        if edge:
            return float(edge[3])
        if fn in (Detector._raise, Alert.to_json):
            return 0.0
        name = fn[2] if isinstance(fn, tuple) else fn.__qualname__
        raise SystemExit(f"{name} was not called{' from ' + caller.__qualname__ if caller else ''}: update stages()")

    def inside(fn: Any) -> float:
        return cum(fn, Detector.process)

    build = cum(typed._event)
    # SeenIds.add: all of it, from process's comprehension (its own frame before Python 3.12)
    dedup = cum(SeenIds.add) + inside(LIST_SORT)
    order = cum(Reorder.push) + cum(Reorder.flush) + dedup
    observe = inside(Baseline.observe)
    feats = inside(features.row) + inside(features.reference)
    forest = inside(ModelArtifact.score)
    compiled = cum(Forest.path_lengths) / events * 1e6
    rules = inside(policy.rule_findings)
    raised = inside(Detector._raise)
    own = cum(Detector.process) - dedup - observe - feats - forest - rules - raised
    rows = [
        ("typed read", cum(typed.read) - build, "typed.read - typed._event: gunzip, msgspec decode to structs"),
        ("Event building", build, "typed._event: struct -> Event (Event.build, memo_principal)"),
        ("ordering + dedup", order, "Reorder.push + flush; in Detector.process: SeenIds.add, list.sort"),
        ("Baseline.observe", observe, "Baseline.observe"),
        ("features.row", feats, "features.row + features.reference"),
        ("forest scoring", forest, f"ModelArtifact.score: Forest.path_lengths (compiled: {compiled:.2f}), calibration"),
        ("policy.rule_findings", rules, "policy.rule_findings"),
        ("pipeline bookkeeping", own, "Detector.process - the rows above it calls: grouping, state, persistence gate"),
        ("alert building", raised + cum(Alert.to_json), "Detector._raise + Alert.to_json"),
    ]
    total = cum(run_replay)
    rest = total - sum(r[1] for r in rows)
    rows.append(("other", rest, "run_replay - the rows above: the replay loop, Ingest accounting"))
    return total, rows


def where(k: Key) -> str:
    file, line, name = k
    if file == "~":
        return name
    path = Path(file)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path(path.name)
    return f"{shown}:{line}({name})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--dir", default="/tmp/bench-profile-archive")
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--top", type=int, default=0, metavar="K", help="also print the K hottest functions by tottime")
    ap.add_argument("--pstats", metavar="FILE", help="save the raw stats (snakeviz FILE, python -m pstats FILE)")
    args = ap.parse_args()
    tune_gc()  # what `detector replay` does

    out = Path(args.dir)
    ensure_archive(out, args.events)
    files = list_files(out)
    blobs = [f.read_bytes() for f in files]  # read once: measure CPU, not the page cache
    settings = load(None, env={})
    model = ModelArtifact.load(Path(args.model))

    t = time.perf_counter()
    plain = replay_once(blobs, files, settings, model)[0]
    plain_s = time.perf_counter() - t
    profiler = cProfile.Profile()
    profiled = profiler.runcall(replay_once, blobs, files, settings, model)[0]
    st = pstats.Stats(profiler)
    if args.pstats:
        st.dump_stats(args.pstats)
    assert profiled.events == plain.events and profiled.scored == plain.scored, (plain, profiled)

    events = plain.events
    total_s, rows = stages(st, events)
    plain_us = plain_s / events * 1e6
    table = Table(title=f"replay of {events:,} events ({len(files)} files), per stage")
    table.add_column("stage", style="bold")
    for name in ("µs/event profiled", "share", "µs/event est."):
        table.add_column(name, justify="right", no_wrap=True)
    for name, seconds, _ in rows:
        share = seconds / total_s
        table.add_row(name, f"{seconds / events * 1e6:.2f}", f"{share:.1%}", f"{share * plain_us:.2f}")
    table.add_section()
    table.add_row("total", f"{total_s / events * 1e6:.2f}", "100.0%", f"{plain_us:.2f}")
    console = Console(highlight=False)
    console.print(table)
    console.print(
        "est.: share x the plain run's total; it understates stages of few calls (forest scoring: its profiled "
        "figure is nearer the truth) and overstates call-heavy ones. Measured as (cProfile cumulative times):",
        style="dim",
        soft_wrap=True,
    )
    for name, _, how in [*rows, ("total", 0.0, "run_replay")]:
        console.print(f"  {name}: {how}", style="dim", soft_wrap=True)
    console.print(
        f"plain run {events / plain_s:,.0f} events/s ({plain_us:.2f} µs/event); "
        f"profiled {events / total_s:,.0f} events/s: cProfile costs x{total_s / plain_s:.2f}. "
        f"{sum(plain.alerts.values()):,} alerts opened.",
        soft_wrap=True,
    )
    if plain.general_reader:
        console.print(f"{plain.general_reader} files went to the general reader (decode): counted in other")

    if args.top:
        hot = Table(title=f"hottest {args.top} functions by own time (profiled)")
        hot.add_column("function", overflow="fold")
        for name in ("calls/event", "own µs/ev", "cum µs/ev"):
            hot.add_column(name, justify="right", no_wrap=True)
        by_own = sorted(st.stats.items(), key=lambda kv: -kv[1][2])  # type: ignore[attr-defined]
        for k, (_, calls, own, cum, _) in by_own[: args.top]:
            hot.add_row(where(k), f"{calls / events:.3g}", f"{own / events * 1e6:.2f}", f"{cum / events * 1e6:.2f}")
        console.print(hot)


if __name__ == "__main__":
    main()
