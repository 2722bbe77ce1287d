"""The ``detector`` command: argument parsing only; every verb calls into the modules.

Exit codes: 0 success, 1 a run that failed, 2 bad usage, config or model artifact (argparse's
convention), 3 a source that cannot be used (missing stream/bucket/file, no credentials) or a
state_dir another `detector run` holds.
Errors are one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from detector.errors import ConfigError, DetectorError, InUseError, ModelError, SourceError, UsageError
from detector.textsafe import clip

DEFAULT_CONFIG = Path("config/detector.yaml")
# The pipeline allocates a few dozen short-lived objects per event (decoded JSON, Event,
# Observation) next to a large, long-lived heap (baselines, the reorder buffer). With
# CPython's default generation-0 threshold (700) a collection runs every ~20 events and the
# full ones rescan that heap: about a third of replay time (bench/replay.py). There are few reference
# cycles to reclaim, so collect far less often.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Set ``GC_THRESHOLDS`` and move everything loaded so far out of the collector's sight."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()


def _when(text: str) -> float:
    """ISO date or date-time (UTC when no offset) -> Unix seconds."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date/time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _config_path(path: str | None) -> str | None:
    if path is None:
        env_path = os.environ.get("DETECTOR_CONFIG")
        path = env_path or (str(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else None)
    return path


def _settings(path: str | None) -> Any:
    from detector import settings

    resolved = _config_path(path)
    return settings.load(Path(resolved) if resolved else None)


def _load_model(path: str | None, required: bool, require_signature: bool = False) -> Any:
    from detector.model import ModelArtifact
    from detector.train import model_key

    if not path:
        if required:
            raise ModelError("no model: pass --model DIR (train one with `detector train`)")
        return None
    return ModelArtifact.load(Path(path), key=model_key(), require_signature=require_signature)


def _print_summary(summary: dict[str, Any], stream: Any = None) -> None:
    """A verb's summary, indented JSON, on stdout (``stream``: replay's alerts may hold stdout)."""
    out = sys.stdout if stream is None else stream
    out.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    out.flush()


# -- verbs -----------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from detector.replay import Progress, open_inputs
    from detector.train import train

    settings = _settings(args.config)
    artifact, summary = train(
        open_inputs(args.inputs, args.endpoint_url),
        Path(args.out),
        settings,
        since=args.since,
        until=args.until,
        trees=args.trees,
        seed=args.seed,
        progress=Progress.for_inputs(args.inputs, description="train: reading", alerts=False),
    )
    summary["artifact"] = str(artifact.path)
    summary["version"] = artifact.version
    _print_summary(summary)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from detector.ingest import DeadLetters, Ingest
    from detector.pipeline import Detector
    from detector.replay import Progress, open_inputs, run_replay

    settings = _settings(args.config)
    model_path = args.model or (str(settings.model) if settings.model.exists() else None)
    model = _load_model(model_path, required=False, require_signature=settings.require_signature)
    if model is None and args.only != "rules":
        _warn(
            f"no model at {settings.model} and no --model: replaying with the rule detectors only "
            "(pass --model DIR, or train one with `detector train`)"
        )
    if args.workers > 1:
        if args.state_out:
            raise UsageError("--state-out needs one process: the baselines of --workers > 1 stay in the workers")
        return _replay_parallel(args, settings, model_path, model)
    out = sys.stdout.buffer if args.alerts == "-" else open(args.alerts, "ab")
    dead = DeadLetters(Path(args.dead_letters) if args.dead_letters else None)
    detector = Detector(settings, model, store={}, only=args.only)
    lines = _alert_lines(args)

    def emit(alerts: list[Any]) -> None:
        for a in alerts:
            if lines is not None:
                lines.write(a)
            else:
                out.write(a.to_json() + b"\n")
        out.flush()

    try:
        summary = run_replay(
            open_inputs(args.inputs, args.endpoint_url),
            detector,
            Ingest(dead=dead),
            settings.pipeline.allowed_lateness_s,
            settings.pipeline.batch_size,
            on_alerts=emit,
            progress=Progress.for_inputs(args.inputs, enabled=False if args.quiet else None),
        )
    finally:
        dead.close()
        if out is not sys.stdout.buffer:
            out.close()
    _hint_dead_letters(summary.rejected, args.dead_letters)
    result = summary.to_dict()
    result["model"] = model.version if model is not None else None
    result["principals"] = len(detector.store)
    _refuse_empty(args.inputs, summary, result, _summary_stream(args))
    if args.state_out:
        from detector.runtime.checkpoint import LocalCheckpointStore, seed

        origin = ",".join(args.inputs)
        size = LocalCheckpointStore(Path(args.state_out)).save(seed(detector.store, detector.seen.encode(), origin))
        result["state_out"] = {"dir": args.state_out, "bytes": size}
    _print_summary(result, _summary_stream(args))
    return 0


def _alert_lines(args: argparse.Namespace) -> Any:
    """Readable alert lines when the alerts go to a terminal (``--alerts -``) and --json is not given."""
    from detector.terminal import AlertLines, is_terminal

    if args.alerts == "-" and not args.json and is_terminal(sys.stdout):
        return AlertLines()  # sys.stdout at each line: above the progress bar while it is drawn
    return None


def _warn(message: str) -> None:
    sys.stderr.write(f"detector: warning: {clip(message, 2000)}\n")


def _summary_stream(args: argparse.Namespace) -> Any:
    """Replay's summary goes to stdout, unless the alerts do (``--alerts -``): then stdout stays JSON Lines."""
    return sys.stderr if args.alerts == "-" else sys.stdout


def _refuse_empty(inputs: Sequence[str], summary: Any, result: dict[str, Any], stream: Any) -> None:
    """Nothing decoded is not a successful replay: the summary, then one line and exit 3."""
    from detector.sources.file import SUFFIXES

    if summary.events:
        return
    _print_summary(result, stream)
    what = ", ".join(inputs)
    if not summary.records:
        raise SourceError(f"{what}: no input files (looked for {', '.join(SUFFIXES)}); nothing to replay")
    aside = {**summary.rejected, **summary.skipped}
    counts = ", ".join(f"{reason} {n}" for reason, n in sorted(aside.items()))
    raise SourceError(
        f"{what}: no CloudTrail events in {summary.records} records ({counts or 'all empty'}); nothing to replay"
    )


def _hint_dead_letters(rejected: Mapping[str, int], dead_letters: str | None) -> None:
    """Rejects are in the summary; without --dead-letters, say where their details would be."""
    if rejected and not dead_letters:
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items()))
        sys.stderr.write(
            f"detector: {sum(rejected.values())} records rejected ({counts}); "
            "rerun with --dead-letters FILE for each one's position, reason and sample\n"
        )


def _replay_parallel(args: argparse.Namespace, settings: Any, model_path: str | None, model: Any) -> int:
    from detector.replay import replay_parallel

    if "-" in args.inputs:
        raise UsageError("--workers > 1 cannot read stdin (every worker reads all inputs); use files")
    result = replay_parallel(
        args.inputs,
        settings,
        model_path,
        args.workers,
        args.endpoint_url,
        dead_letters=args.dead_letters,
        only=args.only,
    )
    lines = _alert_lines(args)
    if lines is not None:  # the workers' JSON, as readable lines on this terminal
        for line in result.alerts:
            lines.write(orjson.loads(line))
    else:
        out = sys.stdout.buffer if args.alerts == "-" else open(args.alerts, "ab")
        try:
            for line in result.alerts:
                out.write(line + b"\n")
            out.flush()
        finally:
            if out is not sys.stdout.buffer:
                out.close()
    _hint_dead_letters(result.summary.rejected, args.dead_letters)
    summary = result.summary.to_dict()
    summary["model"] = model.version if model is not None else None
    summary["principals"] = result.principals
    summary["workers"] = args.workers
    _refuse_empty(args.inputs, result.summary, summary, _summary_stream(args))
    _print_summary(summary, _summary_stream(args))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from detector import simulate
    from detector.terminal import Bar

    try:
        plan = simulate.plan(
            days=args.days,
            seed=args.seed,
            scenarios=args.scenario or None,
            test_days=args.test_days,
            principals=args.principals,
            intensity=_intensity(args.intensity),
            variant=args.variant,
        )
    except ConfigError as exc:  # plan checks its parameters: this verb's options, which the message names
        raise UsageError(str(exc)) from exc
    bar = Bar("simulate", plan.days, "days")
    try:
        summary = simulate.write_archive(plan, Path(args.out), progress=lambda done, total: bar.update(done, total))
    finally:
        bar.close()
    _print_summary(summary)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from detector import evaluate
    from detector.replay import Progress
    from detector.terminal import Bar

    settings = _settings(args.config)
    if args.archive and (args.seeds or args.sweep):
        raise UsageError("give an ARCHIVE, or --seeds (with --sweep SCENARIO), not both")
    if not args.archive and not args.seeds:
        raise UsageError("give an ARCHIVE written by `detector simulate`, or --seeds N-M for a suite")
    if args.archive:
        model = _load_model(
            args.model or str(settings.model), required=True, require_signature=settings.require_signature
        )
        report = evaluate.evaluate_archive(
            Path(args.archive),
            settings,
            model,
            alerts_out=Path(args.alerts) if args.alerts else None,
            only=args.only,
            progress=Progress.for_inputs([str(Path(args.archive) / "AWSLogs")], description="evaluate"),
        )
        text = evaluate.format_report(report)
    else:
        cfg = evaluate.SeedConfig(
            days=args.days,
            test_days=args.test_days,
            principals=args.principals,
            scenarios=tuple(args.scenario) if args.scenario else None,
            intensity=_intensity(args.intensity),
            variant=args.variant,
            cold=args.cold,
            settings=settings,
            only=args.only,
        )
        if args.sweep:
            levels = [float(v) for v in args.levels.split(",")] if args.levels else evaluate.default_levels(args.sweep)
            bar = Bar(f"evaluate: sweep {args.sweep}", len(args.seeds), "seeds")
            try:
                report = evaluate.run_sweep(
                    args.sweep, levels, args.seeds, cfg, workers=args.workers, progress=bar.update
                )
            finally:
                bar.close()
            text = evaluate.format_sweep(report)
        else:
            bar = Bar("evaluate: suite", len(args.seeds), "seeds")
            try:
                report = evaluate.run_suite(args.seeds, cfg, workers=args.workers, progress=bar.update)
            finally:
                bar.close()
            text = evaluate.format_suite(report)
    sys.stdout.write(text + "\n")
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return 0


def _seeds(text: str) -> list[int]:
    """``101-110`` or ``1,5,9`` (or both: ``1-3,7``) -> seeds."""
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"seeds are N, N-M or a comma-separated list of those, got {text!r}") from exc
    if not out:
        raise argparse.ArgumentTypeError("no seeds")
    return out


def _intensity(text: str) -> Any:
    """``random``, ``nominal`` or ``NAME=VALUE,...``."""
    if text in ("random", "nominal"):
        return text
    out: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError as exc:
            raise UsageError(f"--intensity: expected random, nominal or NAME=VALUE,..., got {part!r}") from exc
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from detector.runtime.local import run

    args.config_path = _config_path(args.config)
    settings = _settings(args.config)
    return run(settings, args)


def cmd_bridge(args: argparse.Namespace) -> int:
    from detector.runtime.bridge import run_bridge

    settings = _settings(args.config)
    return run_bridge(
        settings,
        inputs=args.inputs or None,
        endpoint_url=args.endpoint_url,
        status_port=args.metrics_port,
        max_seconds=args.max_seconds,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from detector.runtime.faust_app import run_worker

    settings = _settings(args.config)
    if args.model:
        settings = settings.model_copy(update={"model": Path(args.model)})
    return run_worker(settings, name=args.name, status_port=args.metrics_port)


def cmd_config(args: argparse.Namespace) -> int:
    if args.file and args.config and args.file != args.config:
        raise UsageError(f"{args.action}: two files given ({args.file} and --config {args.config}); give one")
    path = args.file or args.config
    settings = _settings(path)  # raises ConfigError naming the file and key
    if args.action == "check":
        from detector.sources import preflight

        where = _config_path(path) or "defaults"
        found = preflight.problems(settings)  # what the source needs from the environment (an AWS region)
        for problem in found:
            _fail(f"{where}: {problem}", 3)
        if found:
            return 3
        sys.stdout.write(f"{where}: ok\n")
        return 0
    sys.stdout.write(orjson.dumps(settings.masked(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


# -- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="detector", description="CloudTrail anomaly and exfiltration detector")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", help="YAML config (default: $DETECTOR_CONFIG or config/detector.yaml)")

    t = sub.add_parser("train", help="train an isolation-forest model on CloudTrail archives")
    t.add_argument("inputs", nargs="+", metavar="PATH_OR_S3_URI", help="files, directories, s3://bucket/prefix")
    t.add_argument("--out", required=True, help="artifact directory, e.g. models/NAME")
    t.add_argument("--since", type=_when, help="first event time to train on (ISO 8601, UTC)")
    t.add_argument("--until", type=_when, help="train on events before this time (ISO 8601, UTC)")
    t.add_argument("--trees", type=int, default=100, help="number of trees (default 100)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--endpoint-url", help="S3 endpoint (emulators)")
    common(t)
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("replay", help="run archived events through the live pipeline in event-time order")
    r.add_argument("inputs", nargs="+", metavar="PATH_OR_S3_URI", help="files, directories, s3:// URIs or - (stdin)")
    r.add_argument("--model", help="model artifact directory (default: the config's model, if present)")
    r.add_argument(
        "--alerts",
        default="-",
        help="alerts JSONL file, or - for stdout (default; the summary then goes to stderr: stdout stays JSON Lines)",
    )
    r.add_argument("--dead-letters", help="JSONL file for rejected records")
    r.add_argument("--endpoint-url", help="S3 endpoint (emulators)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument(
        "--json", action="store_true", help="with --alerts -: JSON lines on a terminal too (default: readable lines)"
    )
    r.add_argument("--workers", type=int, default=1, help="processes, each owning a share of principals (default 1)")
    r.add_argument("--only", choices=("forest", "rules"), help="keep one family of detections (ablation)")
    r.add_argument(
        "--state-out",
        metavar="DIR",
        help="write the baselines as a checkpoint in DIR; `detector run` with state_dir DIR starts from them",
    )
    common(r)
    r.set_defaults(func=cmd_replay)

    s = sub.add_parser("simulate", help="write a simulated CloudTrail S3 archive with labelled attacks")
    s.add_argument("out", help="output directory")
    s.add_argument("--days", type=int, required=True, help="days of traffic (history + test days)")
    s.add_argument("--test-days", type=int, default=3, help="final days that carry attack scenarios")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--principals", type=int, default=60)
    s.add_argument("--scenario", action="append", metavar="NAME", help="attack scenario (repeatable; default all)")
    s.add_argument(
        "--intensity",
        default="random",
        help="random (default: each attack drawn from its scenario's range), nominal, or NAME=VALUE,...",
    )
    s.add_argument(
        "--variant",
        choices=("random", "loud", "quiet"),
        default="random",
        help="quiet attacks use the victim's known network and tool, usual hours and bucket (default random)",
    )
    s.set_defaults(func=cmd_simulate)

    e = sub.add_parser(
        "evaluate",
        help="recall, false alerts and delay: on a simulated archive, on a suite of seeds, or as a sweep",
        description="One archive: `detector evaluate OUT --model M`. A suite: `detector evaluate --seeds 101-110` "
        "simulates each seed, trains on its history and replays history + test days (or only the test days with "
        "--cold). A sweep: `--sweep SCENARIO --seeds ...` detection against intensity.",
    )
    e.add_argument("archive", nargs="?", help="directory written by `detector simulate`")
    e.add_argument("--model", help="model artifact directory (one archive)")
    e.add_argument("--alerts", help="also write the alerts JSONL here (one archive)")
    e.add_argument("--json", help="write the report as JSON here")
    e.add_argument("--only", choices=("forest", "rules"), help="keep one family of detections (ablation)")
    e.add_argument("--seeds", type=_seeds, help="simulate and evaluate these seeds, e.g. 101-110")
    e.add_argument("--sweep", metavar="SCENARIO", help="with --seeds: detection against this scenario's intensity")
    e.add_argument("--levels", help="with --sweep: comma-separated intensities (default: across its range)")
    e.add_argument("--days", type=int, default=10, help="with --seeds: days per seed (default 10)")
    e.add_argument("--test-days", type=int, default=3, help="with --seeds: final days with attacks (default 3)")
    e.add_argument("--principals", type=int, default=60, help="with --seeds: roster size (default 60)")
    e.add_argument("--scenario", action="append", metavar="NAME", help="with --seeds: only these scenarios")
    e.add_argument("--intensity", default="random", help="with --seeds: random (default), nominal or NAME=VALUE,...")
    e.add_argument(
        "--variant",
        choices=("random", "loud", "quiet"),
        default="random",
        help="with --seeds: attack variants (default random: each attack loud or quiet)",
    )
    e.add_argument("--cold", action="store_true", help="with --seeds: replay only the test days, no history")
    e.add_argument("--workers", type=int, default=2, help="with --seeds: processes (default 2)")
    common(e)
    e.set_defaults(func=cmd_evaluate)

    u = sub.add_parser("run", help="long-lived detector (default config: the embedded demo)")
    u.add_argument("--once", action="store_true", help="stop when the source is exhausted")
    u.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    u.add_argument(
        "--json", action="store_true", help="alerts on stdout as JSON lines on a terminal too (default: readable lines)"
    )
    common(u)
    u.set_defaults(func=cmd_run)

    b = sub.add_parser("bridge", help="read the sources, produce each event to Kafka keyed by its principal")
    b.add_argument("inputs", nargs="*", metavar="PATH", help="backfill these files or directories, then stop")
    b.add_argument("--metrics-port", type=int, help="port for /metrics, /healthz, /readyz (default: metrics.port)")
    b.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    b.add_argument("--endpoint-url", help="Kinesis or S3 endpoint of the configured source (emulators)")
    common(b)
    b.set_defaults(func=cmd_bridge)

    w = sub.add_parser("worker", help="Faust worker: score the events topic with per-principal state in Kafka")
    w.add_argument("--name", default="worker", help="this worker's name in logs and its Kafka client id")
    w.add_argument(
        "--metrics-port", type=int, help="port for /metrics, /healthz, /readyz (default: metrics.port); one per worker"
    )
    w.add_argument("--model", help="model artifact directory (default: the config's model)")
    common(w)
    w.set_defaults(func=cmd_worker)

    c = sub.add_parser("config", help="check or show configuration")
    c.add_argument("action", choices=["check", "show"])
    c.add_argument("file", nargs="?", help="config file (same as --config)")
    common(c)
    c.set_defaults(func=cmd_config)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_gc()
    try:
        return int(args.func(args))
    except UsageError as exc:  # an option or setting that cannot be used as given: named in the message
        return _fail(f"{args.verb}: {exc}", 2)
    except ConfigError as exc:
        return _fail(f"config error: {exc}", 2, one_line=False)
    except ModelError as exc:  # the configured artifact is unusable: fix the config or retrain
        return _fail(f"model error: {exc}", 2)
    except (SourceError, InUseError) as exc:
        return _fail(str(exc), 3)
    except DetectorError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # an output path we cannot write (--alerts into a missing directory, ...)
        return _fail(f"{exc.filename or ''}: {exc.strerror or exc}", 3)


def _fail(message: str, code: int, one_line: bool = True) -> int:
    """The error on stderr, escaped (paths and details can come from file names and records).

    One line, a newline in a file name escaped rather than printed; a config error
    (``one_line=False``) lists up to ten problems, one per line.
    """
    for line in [message] if one_line else message.split("\n"):
        sys.stderr.write(f"detector: {clip(line, 2000)}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
