"""Structured logging: one JSON object per line on stderr, for log shippers to index.

Every line has ``ts`` (ISO 8601, UTC, milliseconds), ``level``, ``logger`` and ``msg``. Fields
passed with ``extra={"event": "checkpoint", "shard": ...}`` are added as top-level keys, so a
line can be found by ``event`` rather than by matching message text. An exception adds
``exc: {type, message, traceback}``.

Log lines often quote attacker-controlled input (a malformed record, a user agent), so values
are made safe here rather than at each call site: only JSON scalars pass through as they are,
everything else goes through ``str()``; strings are clipped to 1 KiB (``msg`` to 8 KiB); and
the JSON is ASCII-escaped, so no value can start a new line or forge another record.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from detector.errors import ConfigError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_FIELD_CHARS = 1024
MAX_MSG_CHARS = 8192

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_CORE_KEYS = ("ts", "level", "logger", "msg", "exc", "stack")
_HANDLER_NAME = "detector.jsonlines"


class JsonLinesFormatter(logging.Formatter):
    """Formats a record as one line of JSON; see the module docstring for the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": _clip(_message(record), MAX_MSG_CHARS),
        }
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRS or key.startswith("_"):
                continue
            # A caller's extra never overwrites a core field; it is kept under ``<key>_``.
            line[f"{key}_" if key in _CORE_KEYS else key] = _json_safe(value)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc, _tb = record.exc_info
            line["exc"] = {
                "type": _qualified_name(exc_type),
                "message": _clip(str(exc), MAX_FIELD_CHARS),
                "traceback": self.formatException(record.exc_info),
            }
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=True, allow_nan=False, default=str)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record at ``level`` or above to ``stream`` as JSON lines.

    Parameters
    ----------
    level : str, default "INFO"
        One of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case).
    stream : text stream, optional
        Defaults to ``sys.stderr`` as it is when this is called (so a test's capture works).

    Calling again replaces the handler this function installed; handlers installed by others
    (pytest's capture, for instance) are left alone.

    Raises
    ------
    ConfigError
        (a ``ValueError``) when ``level`` is not one of the names above.
    """
    name = level.strip().upper() if isinstance(level, str) else ""
    if name not in LEVELS:
        raise ConfigError(f"log level {level!r} is not valid; use one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLinesFormatter())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(name)


def _iso_utc(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        # A %-format/args mismatch at a call site should cost a readable line, not the record.
        return f"{record.msg!s} (unformattable args: {record.args!r})"


def _json_safe(value: object) -> object:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _clip(value, MAX_FIELD_CHARS)
    try:
        text = str(value)
    except Exception as exc:  # noqa: BLE001 (a broken __str__ must not lose the log line)
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return _clip(text, MAX_FIELD_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _qualified_name(cls: type[BaseException]) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
