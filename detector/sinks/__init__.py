"""Alert sinks: stdout, file, webhook and SNS, built from ``settings.sinks``.

Each sink gets a bounded name (``sinks[].name``, else its kind, with ``-2``, ``-3`` ... for
repeats) used as its metrics label and its spool folder ``state_dir/spool/<name>/``.
"""

from __future__ import annotations

from pathlib import Path

from detector.errors import ConfigError
from detector.metrics import Metrics
from detector.settings import Settings
from detector.sinks.base import Sink


def sink_names(settings: Settings) -> list[str]:
    names: list[str] = []
    for cfg in settings.sinks:
        base = cfg.name or cfg.kind
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def build_sinks(
    settings: Settings, metrics: Metrics | None, state_dir: Path, stdout_format: str = "auto"
) -> list[Sink]:
    """One sink per ``settings.sinks`` entry (``settings.Sink`` has checked each one's fields).

    ``stdout_format`` is the stdout sink's: ``auto`` (readable lines on a terminal, JSON
    otherwise) or ``json`` (``--json``).
    """
    sinks: list[Sink] = []
    for i, (cfg, name) in enumerate(zip(settings.sinks, sink_names(settings), strict=True)):
        where = f"sinks.{i}"
        if cfg.kind == "stdout":
            from detector.sinks.stdout import StdoutSink

            sinks.append(StdoutSink(name=name, format="json" if stdout_format == "json" else "auto"))
        elif cfg.kind == "file":
            from detector.sinks.file import FileSink

            assert cfg.path is not None  # settings.Sink requires it
            sinks.append(FileSink(cfg.path, name=name))
        elif cfg.kind == "webhook":
            from detector.sinks.webhook import webhook_sink

            assert cfg.url  # settings.Sink requires it
            sinks.append(
                webhook_sink(
                    name,
                    cfg.url,
                    cfg.token,
                    cfg.timeout_s,
                    cfg.max_retries,
                    state_dir / "spool" / name,
                    metrics,
                    format=cfg.format,
                    allow_link_local=cfg.allow_link_local,
                )
            )
        elif cfg.kind == "sns":
            from detector.sinks.sns import sns_sink

            assert cfg.topic_arn  # settings.Sink requires it
            sinks.append(
                sns_sink(
                    name,
                    cfg.topic_arn,
                    state_dir / "spool" / name,
                    metrics,
                    cfg.max_retries,
                    region=cfg.region,
                    endpoint_url=cfg.endpoint_url,
                    timeout_s=cfg.timeout_s,
                )
            )
        else:  # pragma: no cover - the settings Literal rules this out
            raise ConfigError(f"{where}: unknown sink kind {cfg.kind!r}")
    return sinks
