"""JSON-lines logging: one parseable object per line, extras kept, hostile values made safe."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from detector.logs import LEVELS, MAX_FIELD_CHARS, JsonLinesFormatter, configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)
    yield out
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_record_is_one_json_line_with_the_core_fields(stream: io.StringIO) -> None:
    logging.getLogger("detector.sources.kinesis").info("shard %s opened", "shardId-000")

    [line] = lines(stream)
    assert line["level"] == "INFO"
    assert line["logger"] == "detector.sources.kinesis"
    assert line["msg"] == "shard shardId-000 opened"
    ts = str(line["ts"])
    assert ts.endswith("Z")
    assert datetime.fromisoformat(ts).utcoffset() is not None


def test_extra_fields_become_top_level_keys(stream: io.StringIO) -> None:
    logging.getLogger("detector.runtime").info(
        "checkpoint written",
        extra={"event": "checkpoint", "shard": "shardId-001", "records": 512, "lag_s": 1.5, "final": False},
    )

    [line] = lines(stream)
    assert line["event"] == "checkpoint"
    assert line["shard"] == "shardId-001"
    assert line["records"] == 512
    assert line["lag_s"] == 1.5
    assert line["final"] is False


def test_non_scalar_extras_are_stringified_and_clipped(stream: io.StringIO) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    logging.getLogger("t").warning(
        "odd values",
        extra={
            "items": [1, 2],
            "obj": Opaque(),
            "big": "x" * 5000,
            "big_list": ["y" * 100] * 100,
            "nan": float("nan"),
            "bad": Unprintable(),
        },
    )

    [line] = lines(stream)
    assert line["items"] == "[1, 2]"
    assert line["obj"] == "opaque"
    assert len(str(line["big"])) == MAX_FIELD_CHARS
    assert len(str(line["big_list"])) == MAX_FIELD_CHARS
    assert line["nan"] == "nan"
    assert str(line["bad"]).startswith("<unprintable Unprintable")


def test_newlines_in_values_cannot_forge_a_second_line(stream: io.StringIO) -> None:
    hostile = 'evil\n{"level": "INFO", "msg": "forged"}\u2028'
    logging.getLogger("t").error("bad record: %s", hostile, extra={"user_agent": hostile})

    [line] = lines(stream)
    assert line["msg"] == f"bad record: {hostile}"
    assert line["user_agent"] == hostile
    assert stream.getvalue().isascii()


def test_exceptions_carry_type_message_and_traceback(stream: io.StringIO) -> None:
    try:
        raise KeyError("eventTime")
    except KeyError:
        logging.getLogger("detector.decode").exception("cannot decode", extra={"event": "decode_error"})

    [line] = lines(stream)
    assert line["level"] == "ERROR"
    assert line["event"] == "decode_error"
    exc = line["exc"]
    assert isinstance(exc, dict)
    assert exc["type"] == "KeyError"
    assert exc["message"] == "'eventTime'"
    assert "Traceback" in exc["traceback"]
    assert "raise KeyError" in exc["traceback"]


def test_project_exceptions_are_module_qualified(stream: io.StringIO) -> None:
    from detector.errors import ConfigError

    try:
        raise ConfigError("detector.yaml: sinks[0].url: not a URL")
    except ConfigError:
        logging.getLogger("t").exception("config rejected")

    [line] = lines(stream)
    exc = line["exc"]
    assert isinstance(exc, dict)
    assert exc["type"] == "detector.errors.ConfigError"


def test_an_extra_cannot_overwrite_a_core_field(stream: io.StringIO) -> None:
    logging.getLogger("real").info("hello", extra={"level": "CRITICAL", "ts": "forged"})

    [line] = lines(stream)
    assert line["level"] == "INFO"
    assert line["ts"] != "forged"
    assert line["level_"] == "CRITICAL"
    assert line["ts_"] == "forged"


def test_mismatched_format_args_still_log_a_line() -> None:
    # Formatted directly: pytest's own capture handler would raise on this record first.
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "msg": "two %s %s", "args": ("only-one",)})

    line = json.loads(JsonLinesFormatter().format(record))
    assert "two %s %s" in str(line["msg"])
    assert "only-one" in str(line["msg"])


def test_level_filters_and_is_case_insensitive(stream: io.StringIO) -> None:
    configure_logging("warning", stream=stream)
    logging.getLogger("t").info("hidden")
    logging.getLogger("t").warning("shown")

    assert [line["msg"] for line in lines(stream)] == ["shown"]


def test_configuring_twice_does_not_duplicate_lines(stream: io.StringIO) -> None:
    configure_logging("INFO", stream=stream)
    configure_logging("INFO", stream=stream)
    logging.getLogger("t").info("once")

    assert len(lines(stream)) == 1


@pytest.mark.parametrize("bad", ["LOUD", "", "WARN ING"])
def test_an_invalid_level_names_the_valid_ones(bad: str) -> None:
    with pytest.raises(ValueError, match="DEBUG, INFO, WARNING, ERROR, CRITICAL") as err:
        configure_logging(bad)
    assert repr(bad) in str(err.value)
    assert LEVELS == ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def test_default_stream_is_stderr_at_call_time(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    try:
        configure_logging("INFO")
        logging.getLogger("t").info("to stderr", extra={"event": "probe"})
    finally:
        for handler in list(root.handlers):
            if handler not in saved_handlers:
                root.removeHandler(handler)
        root.setLevel(saved_level)

    err = capsys.readouterr().err
    assert json.loads(err.splitlines()[-1])["event"] == "probe"
