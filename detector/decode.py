"""Bytes and envelopes -> CloudTrail event dicts.

This module owns every shape in which CloudTrail reaches us: the S3 archive
(``{"Records": [...]}``, usually gzipped), digest files, JSON arrays, JSON Lines, CloudWatch Logs
subscription payloads (gzip, sometimes base64 on top), EventBridge envelopes and Insights events.
The shape is sniffed from the bytes, never taken from a file name.

Pure functions over bytes, no I/O. ``decode`` never raises on bad input: a bad blob or record
becomes a ``Rejected`` with a bounded ``reason`` (a metric label), a ``position`` naming where
it was, and escaped ``detail``/``sample`` strings that are safe to log; the good records next to
it still come out. Clean blobs usually never get here: ``typed.read`` turns them into events
straight from the bytes and hands this module only what it is unsure of; the verdicts and
reasons live here alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from msgspec import Raw, Struct

from detector.memo import remember
from detector.textsafe import clip

__all__ = [
    "EVENTBRIDGE_EVENT_TYPES",
    "INSIGHT_EVENT_TYPE",
    "JSON_LINES_HEAD",
    "MAX_BLOB_BYTES",
    "MAX_RECORD_BYTES",
    "REJECT_REASONS",
    "Decoded",
    "Rejected",
    "check_event",
    "decode",
    "gunzip",
    "parse_event_time",
]

MAX_RECORD_BYTES = 1 << 20
"""One event, JSON line or Kinesis record larger than this is rejected as ``oversized``."""

MAX_BLOB_BYTES = 1 << 28
"""Cap on any blob, before or after decompression: the gzip-bomb guard.

256 MiB is several times the largest CloudTrail file a busy account writes in its five
minutes. The cap is on bytes; JSON of tiny items (``[[],[],...]``) still parses into ~20x
its size in Python objects, so this also bounds that to a few GB.
"""

MAX_REJECTS_KEPT = 1000
"""Rejects of one blob kept whole (position, detail, sample); past this they are only counted
by reason. A 10 kB gzip of five million bad records must not become a gigabyte of dead letters."""

# The bounded set of Rejected.reason values (a metric label). `truncated_gzip` covers any gzip
# that cannot be read to its end (cut short, corrupt, or followed by non-gzip bytes);
# `wrong_shape` is a known envelope whose parts have the wrong JSON type; `unknown_envelope` is
# an object that is neither a CloudTrail event nor an envelope we know.
REJECT_REASONS: frozenset[str] = frozenset(
    {
        "invalid_json",
        "truncated_gzip",
        "bad_base64",
        "not_an_object",
        "wrong_shape",
        "missing_field",
        "bad_field_type",
        "bad_timestamp",
        "future_timestamp",
        "oversized",
        "unknown_envelope",
        "empty",
        "unreadable",
    }
)

# What is recognised and counted but not an event (``records_skipped`` reasons): skipped
# outright, or set aside whole (digests, Insights events).
SKIP_KINDS = ("control_message", "empty_container")
ASIDE_KINDS = ("digest", "insight")

DETAIL_LIMIT = 300
SAMPLE_LIMIT = 200
_POSITION_LIMIT = 1024

# gzip in base64 in gzip is already odd; anything deeper is a decompression trick, not a log.
_MAX_LAYERS = 3

_GZIP_MAGIC = b"\x1f\x8b"
# Base64 of any gzip header (1f 8b 08) starts with these four characters, so this is a sniff
# that cannot match JSON, which must start with one of `{["tfn-0123456789` or whitespace.
_BASE64_GZIP = b"H4sI"
_UTF8_BOM = b"\xef\xbb\xbf"

INSIGHT_EVENT_TYPE = "AwsCloudTrailInsight"
EVENTBRIDGE_EVENT_TYPES = frozenset(
    {
        "AWS API Call via CloudTrail",
        "AWS Console Sign In via CloudTrail",
        "AWS Service Event via CloudTrail",
    }
)
_EVENTBRIDGE_INSIGHT_TYPE = "AWS Insight via CloudTrail"
_DIGEST_KEYS = ("digestStartTime", "digestEndTime", "previousDigestSignature")

# Optional CloudTrail fields that downstream code reads: absent or null is fine, anything else
# must be the one JSON type AWS writes there.
_OPTIONAL_FIELD_TYPES: tuple[tuple[str, type, str], ...] = (
    ("userIdentity", dict, "an object"),
    ("requestParameters", dict, "an object"),
    ("responseElements", dict, "an object"),
    ("additionalEventData", dict, "an object"),
    ("resources", list, "an array"),
    ("errorCode", str, "a string"),
    ("eventID", str, "a string"),
)
# Keys (compared lowercased) that mark an object as an attempt at a CloudTrail event, so that a
# broken one is reported by its missing field rather than as an unknown envelope.
_EVENT_KEYS_LOWER = frozenset(
    {
        "eventname",
        "eventsource",
        "eventtime",
        "eventid",
        "eventversion",
        "eventtype",
        "useridentity",
        "@timestamp",
    }
)

# A blob that failed to parse as one JSON document is read as JSON Lines if its first non-blank
# line is a whole object on its own and more lines follow (the typed reader's test too), or if
# any of its lines is a whole object starting at column 0 (bad lines first, however many, must
# not hide the rest). Otherwise it is one broken, often pretty-printed, document: its records are read
# one by one if its structure holds (``_salvage``), else it gets one invalid_json reject.
JSON_LINES_HEAD = re.compile(rb"[ \t\r\n]*(\{[^\n]*\})[ \t\r]*\n[ \t\r\n]*\S")
_OBJECT_LINE = re.compile(rb"^(\{[^\n]*\})[ \t\r]*$", re.MULTILINE)

# orjson reads an integer past 64 bits as a float (user/1.2345678901234568e+22), where msgspec,
# and so the typed reader, keeps it whole. Any run of 19+ digits may be one: such text is parsed
# by msgspec instead, so both readers see the same value. (A run inside a string costs only that.)
# Found by mapping every digit to "0" and looking for nineteen of them: two C passes over the
# blob, where a regex tries 19 digits at every digit of every timestamp (185 ms a 5k-event file).
_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
_LONG_DIGITS_TEXT = re.compile(r"[0-9]{19}")
_decode_any = msgspec.json.decode

# A JSON string, or a bare NaN / Infinity / -Infinity token outside strings. Neither parser takes
# those tokens, so one of them would cost the whole archive; _salvage swaps each for a marker
# string, splits the records, and rejects exactly the records that held one.
_STRING_OR_NONFINITE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|(-?Infinity|NaN)', re.DOTALL)

_fromisoformat = datetime.fromisoformat


@dataclass(frozen=True, slots=True)
class Rejected:
    """One blob or record that did not become an event.

    ``reason`` is one of ``REJECT_REASONS`` (bounded: safe as a metric label); ``position`` is
    ``"<source>#<where>"`` (``s3://b/k.json.gz#record=12``, ``file.jsonl#line=7``); ``detail``
    is one escaped sentence of at most 300 characters; ``sample`` is the head (200 characters)
    of the offending input, escaped. All four are safe to log as they are.
    """

    reason: str
    position: str
    detail: str
    sample: str


@dataclass(slots=True)
class Decoded:
    """What one blob turned into.

    ``events`` are CloudTrail API, console and service events, each passing ``check_event`` and
    carrying an ``eventID`` (synthetic if the source had none). ``aside`` holds records that are
    CloudTrail but not events: ``("digest", obj)`` for digest files, ``("insight", ev)`` for
    Insights events. ``skipped`` counts inputs dropped on purpose (``control_message``,
    ``empty_container``).
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    aside: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    more_rejected: dict[str, int] = field(default_factory=dict)  # past MAX_REJECTS_KEPT, by reason

    def extend(self, other: Decoded) -> None:
        """Append everything in ``other`` to this result (for batching many blobs)."""
        self.events.extend(other.events)
        self.rejected.extend(other.rejected)
        self.aside.extend(other.aside)
        for key, count in other.skipped.items():
            self.skipped[key] = self.skipped.get(key, 0) + count
        for key, count in other.more_rejected.items():
            self.more_rejected[key] = self.more_rejected.get(key, 0) + count


def parse_event_time(value: str) -> float:
    """Return an ISO 8601 timestamp as epoch seconds (UTC).

    Accepts what CloudTrail and its re-packagers write: ``2018-11-28T23:05:53Z``, with
    fractional seconds (up to nanoseconds; digits past microseconds are dropped), with
    ``+00:00`` or any other offset, and with a space instead of ``T``. A timestamp without an
    offset is taken as UTC, because CloudTrail times are UTC by definition and tools that
    re-render them (Panther's ``2019-01-01 00:00:00``) drop the ``Z``.

    Raises
    ------
    ValueError
        If ``value`` is not a string, not an ISO 8601 date-time, or outside
        ``EARLIEST_EVENT_TIME`` .. ``LATEST_EVENT_TIME``.
    """
    if type(value) is not str:
        if not isinstance(value, str):
            raise ValueError(f"event time must be a string, got {type(value).__name__}")
        value = str(value)
    seconds = _times.get(value)
    if seconds is None:
        if len(value) > _MAX_TIME_TEXT:
            raise ValueError(f"event time is {len(value)} characters long")
        moment = _fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
        if not EARLIEST_EVENT_TIME <= seconds < LATEST_EVENT_TIME:
            raise ValueError("event time is outside 2000-01-01 .. 2100-01-01")
        remember(_times, value, seconds, _TIMES_MAX)
    return seconds


# Thousands of events share each second: memoise the parse (a bounded cache, never state).
_TIMES_MAX = 100_000
_times: dict[str, float] = {}
# CloudTrail began in 2013. A time outside this range is forged or corrupt, and would not fit
# the baselines' 32-bit second counters (or, past year 9999, a datetime) anyway.
EARLIEST_EVENT_TIME = 946_684_800.0  # 2000-01-01T00:00:00Z
LATEST_EVENT_TIME = 4_102_444_800.0  # 2100-01-01T00:00:00Z
_MAX_TIME_TEXT = 64  # "2026-01-05T09:00:00.123456789+00:00" is 35; nothing longer is a time


def check_event(obj: object) -> str | None:
    """Return None if ``obj`` is a usable CloudTrail event, else the reject reason code.

    Usable: a dict with string ``eventName`` and ``eventSource`` and a parseable ``eventTime``;
    ``userIdentity``, ``requestParameters``, ``responseElements`` and ``additionalEventData``
    absent, null or objects; ``resources`` absent, null or an array; ``errorCode`` and
    ``eventID`` absent, null or strings. Pure: ``decode`` copies Logstash's ``@timestamp`` into
    a missing ``eventTime`` and adds a synthetic ``eventID`` before it gets here.
    """
    if type(obj) is not dict:
        return "not_an_object"
    problem = _problem(obj)
    return None if problem is None else problem[0]


def decode(data: bytes, position: str) -> Decoded:
    """Turn one blob into CloudTrail events; never raises on bad input.

    Parameters
    ----------
    data : bytes
        A file's contents, an S3 object, a Kinesis record's data or one line from stdin, in any
        of the supported shapes (gzip and base64-of-gzip are unwrapped first).
    position : str
        Where the blob came from (``s3://bucket/key``, ``shard-0001:<sequence>``, a path).
        Rejects inside the blob add ``#record=i``, ``#line=N`` (1-based) or ``#logEvent=i``.

    Returns
    -------
    Decoded
        Events in input order, plus rejects, set-aside digests/Insights and skip counts.
    """
    out = Decoded()
    if not isinstance(data, bytes):
        data = bytes(data)
    _decode_blob(data, position, out, 0)
    return out


# --- blobs: compression, base64, JSON vs JSON Lines ------------------------------------------


def _loads(text: bytes | str) -> Any:
    """``orjson.loads``, but integers past 64 bits stay integers (see ``_ZERO_DIGITS``).

    Raises ``orjson.JSONDecodeError`` exactly when ``orjson.loads`` does.
    """
    value = orjson.loads(text)
    if type(text) is bytes:
        long_digits = _LONG_RUN in text.translate(_ZERO_DIGITS)
    else:
        long_digits = _LONG_DIGITS_TEXT.search(str(text)) is not None
    if long_digits:
        try:
            value = _decode_any(text)
        except (msgspec.DecodeError, RecursionError):
            return value  # msgspec refuses what orjson took (nesting): orjson's reading stands
    return value


def _decode_blob(data: bytes, position: str, out: Decoded, layers: int) -> None:
    if len(data) > MAX_BLOB_BYTES:
        _reject(out, "oversized", position, f"blob is {len(data)} bytes, over the {MAX_BLOB_BYTES} cap", data)
        return
    if data[:2] == _GZIP_MAGIC:
        if layers >= _MAX_LAYERS:
            _reject(out, "wrong_shape", position, f"more than {_MAX_LAYERS} nested gzip/base64 layers", data)
            return
        inner = gunzip(data, position, out)
        if inner is not None:
            _decode_blob(inner, position, out, layers + 1)
        return
    if data[:3] == _UTF8_BOM:
        data = data[3:]
    if not data or data.isspace():
        _reject(out, "empty", position, "blob is empty or only whitespace", data)
        return
    head = data[:64].lstrip()
    if not head:  # more than 64 bytes of leading whitespace: rare, pay for the copy
        head = data.lstrip()[:64]
    if head[:4] == _BASE64_GZIP:
        if layers >= _MAX_LAYERS:
            _reject(out, "wrong_shape", position, f"more than {_MAX_LAYERS} nested gzip/base64 layers", data)
            return
        raw = _unbase64(data, position, out)
        if raw is not None:
            _decode_blob(raw, position, out, layers + 1)
        return
    try:
        value = _loads(data)
    except orjson.JSONDecodeError as exc:
        if JSON_LINES_HEAD.match(data) or _has_object_line(data):
            _decode_lines(data, position, out)
        elif not _salvage(data, position, out):
            _reject(out, "invalid_json", position, f"not valid JSON: {exc}", data)
        return
    _decode_value(value, position, out, len(data))


def _has_object_line(data: bytes) -> bool:
    """A line is a whole JSON object at column 0: JSON Lines with bad lines, however many lead.

    A pretty-printed document indents its inner objects, so it has no such line; whole-object
    candidates are found by a regex, and only they are parsed, up to the first that is one.
    """
    if data.find(b"\n", 0, len(data.rstrip())) < 0:
        return False  # one line: a document, not JSON Lines
    for match in _OBJECT_LINE.finditer(data):
        try:
            if type(orjson.loads(match.group(1))) is dict:
                return True
        except orjson.JSONDecodeError:
            continue
    return False


class _RawArchive(Struct):
    Records: list[Raw]


_raw_archive = msgspec.json.Decoder(_RawArchive).decode
_raw_array = msgspec.json.Decoder(list[Raw]).decode


def _salvage(data: bytes, position: str, out: Decoded) -> bool:
    """Read an archive or array orjson refused as a whole record by record, if its structure holds.

    orjson refuses a whole document over one string of invalid UTF-8, one number past double
    range or one ``NaN``/``Infinity`` token; msgspec can still split it into records without
    reading inside them (the tokens swapped for marker strings first). Each record then stands
    alone: the bad one is rejected at ``#record=i``, the others are events.
    """
    marker: re.Pattern[bytes] | None = None
    tokens: list[bytes] = []
    if b"NaN" in data or b"Infinity" in data:
        data, marker, tokens = _mark_nonfinite(data)
    try:
        items = _raw_array(data) if data.lstrip()[:1] == b"[" else _raw_archive(data).Records
    except (ValueError, RecursionError):
        return False
    if not items:
        return False
    for index, raw in enumerate(items):
        text = bytes(raw)
        where = f"{position}#record={index}"
        if marker is not None and marker.search(text):
            original = marker.sub(lambda m: tokens[int(m.group(1))], text)
            detail = "record holds a NaN or Infinity token, which JSON does not allow"
            _reject(out, "invalid_json", where, detail, original)
            continue
        _decode_item_text(text, where, "record", out)
    return True


def _mark_nonfinite(data: bytes) -> tuple[bytes, re.Pattern[bytes] | None, list[bytes]]:
    """``data`` with each NaN/Infinity token outside strings replaced by a marker string.

    The marker carries a random nonce, so no string already in the data can pass for one.
    """
    nonce = secrets.token_hex(8).encode()
    tokens: list[bytes] = []

    def swap(match: re.Match[bytes]) -> bytes:
        token = match.group(1)
        if token is None:
            return match.group(0)  # a string: kept as it is
        tokens.append(token)
        return b'"<nonfinite-' + nonce + b'-%d>"' % (len(tokens) - 1)

    marked = _STRING_OR_NONFINITE.sub(swap, data)
    if not tokens:
        return data, None, tokens
    return marked, re.compile(rb'"<nonfinite-' + nonce + rb'-([0-9]+)>"'), tokens


def gunzip(data: bytes, position: str, out: Decoded) -> bytes | None:
    """Decompress all gzip members of ``data``, or reject the blob into ``out`` and return None."""
    pieces: list[bytes] = []
    total = 0
    rest = data
    while rest:
        if rest[:2] != _GZIP_MAGIC:
            if not rest.strip(b"\x00"):
                break  # zero padding after the last member, as some writers leave
            _reject(
                out,
                "truncated_gzip",
                position,
                f"{len(rest)} bytes after gzip member {len(pieces)} are not another gzip member",
                data,
            )
            return None
        inflater = zlib.decompressobj(wbits=31)
        try:
            chunk = inflater.decompress(rest, MAX_BLOB_BYTES - total + 1)
        except zlib.error as exc:
            _reject(out, "truncated_gzip", position, f"gzip member {len(pieces)} is corrupt: {exc}", data)
            return None
        total += len(chunk)
        if total > MAX_BLOB_BYTES:
            _reject(out, "oversized", position, f"gzip expands past the {MAX_BLOB_BYTES}-byte cap", data)
            return None
        if not inflater.eof:
            _reject(
                out,
                "truncated_gzip",
                position,
                f"gzip stream ends early: {len(data)} compressed bytes, member {len(pieces)} "
                f"unfinished after {total} decompressed bytes",
                data,
            )
            return None
        pieces.append(chunk)
        rest = inflater.unused_data
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _unbase64(data: bytes, position: str, out: Decoded) -> bytes | None:
    compact = b"".join(data.split())  # base64 may be wrapped at 76 columns
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error as exc:
        _reject(out, "bad_base64", position, f"starts like base64 gzip (H4sI) but does not decode: {exc}", data)
        return None


def _decode_lines(data: bytes, position: str, out: Decoded) -> None:
    for number, raw_line in enumerate(data.split(b"\n"), 1):
        line = raw_line.strip()
        if not line:
            continue
        where = f"{position}#line={number}"
        if len(line) > MAX_RECORD_BYTES:
            _reject(out, "oversized", where, f"line is {len(line)} bytes, over the {MAX_RECORD_BYTES} cap", line)
            continue
        try:
            value = _loads(line)
        except orjson.JSONDecodeError as exc:
            _reject(out, "invalid_json", where, f"line is not valid JSON: {exc}", line)
            continue
        _decode_value(value, where, out, len(line))


# --- JSON values: containers and envelopes ---------------------------------------------------


def _decode_value(value: object, position: str, out: Decoded, size: int) -> None:
    """Dispatch one parsed JSON document of ``size`` bytes."""
    if type(value) is list:
        _decode_items(value, position, "record", out)
    elif type(value) is dict:
        if "Records" in value:
            records = value["Records"]
            if type(records) is not list:
                _reject(
                    out,
                    "wrong_shape",
                    position,
                    f'"Records" is {_json_type(records)}, expected an array of events',
                    value,
                )
            else:
                _decode_items(records, position, "record", out)
        elif "messageType" in value:
            _decode_cloudwatch_logs(value, position, out)
        elif any(key in value for key in _DIGEST_KEYS):
            out.aside.append(("digest", value))
        elif size > MAX_RECORD_BYTES:
            _reject(out, "oversized", position, f"event is {size} bytes, over the {MAX_RECORD_BYTES} cap", value)
        else:
            _decode_item(value, position, out)
    else:
        _reject(
            out,
            "not_an_object",
            position,
            f"JSON document is {_json_type(value)}, not an object or array",
            value,
        )


def _decode_items(items: list[Any], position: str, label: str, out: Decoded) -> None:
    """Decode an array of events; the hot loop of an archive replay."""
    if not items:
        out.skipped["empty_container"] = out.skipped.get("empty_container", 0) + 1
        return
    append = out.events.append
    for index, item in enumerate(items):
        if type(item) is dict and _is_ready(item):
            append(item)
        else:
            _decode_item(item, f"{position}#{label}={index}", out)


def _decode_cloudwatch_logs(payload: dict[str, Any], position: str, out: Decoded) -> None:
    kind = payload.get("messageType")
    if kind == "CONTROL_MESSAGE":
        # CloudWatch Logs sends these to check the destination is reachable; they carry no events.
        out.skipped["control_message"] = out.skipped.get("control_message", 0) + 1
        return
    if kind != "DATA_MESSAGE":
        _reject(
            out,
            "unknown_envelope",
            position,
            f"CloudWatch Logs messageType {clip(kind, 60)} is neither DATA_MESSAGE nor CONTROL_MESSAGE",
            payload,
        )
        return
    log_events = payload.get("logEvents")
    if type(log_events) is not list:
        _reject(
            out,
            "wrong_shape",
            position,
            f"CloudWatch Logs logEvents is {_json_type(log_events)}, expected an array",
            payload,
        )
        return
    if not log_events:
        out.skipped["empty_container"] = out.skipped.get("empty_container", 0) + 1
        return
    for index, log_event in enumerate(log_events):
        where = f"{position}#logEvent={index}"
        message = log_event.get("message") if type(log_event) is dict else None
        if type(message) is not str:
            _reject(out, "wrong_shape", where, "log event has no string 'message'", log_event)
            continue
        if len(message) > MAX_RECORD_BYTES:
            _reject(
                out,
                "oversized",
                where,
                f"message is {len(message)} chars, over the {MAX_RECORD_BYTES} cap",
                message,
            )
            continue
        _decode_item_text(message, where, "log event message", out)


def _decode_item_text(text: bytes | str, position: str, what: str, out: Decoded) -> None:
    """``_decode_item`` of one item's own JSON text; text that is not JSON is rejected here."""
    try:
        value = _loads(text)
    except orjson.JSONDecodeError as exc:
        _reject(out, "invalid_json", position, f"{what} is not valid JSON: {exc}", text)
        return
    _decode_item(value, position, out)


def _decode_item(obj: object, position: str, out: Decoded) -> None:
    """One thing that should be an event: an event, an Insights event or an EventBridge envelope."""
    if type(obj) is not dict:
        _reject(out, "not_an_object", position, f"record is {_json_type(obj)}, not an object", obj)
    elif "detail-type" in obj:
        _decode_eventbridge(obj, position, out)
    else:
        _decode_event(obj, position, out)


def _decode_eventbridge(envelope: dict[str, Any], position: str, out: Decoded) -> None:
    kind = envelope.get("detail-type")
    detail = envelope.get("detail")
    if type(kind) is not str or (kind not in EVENTBRIDGE_EVENT_TYPES and kind != _EVENTBRIDGE_INSIGHT_TYPE):
        _reject(
            out,
            "unknown_envelope",
            position,
            f"EventBridge detail-type {clip(kind, 80)} is not a CloudTrail event",
            envelope,
        )
    elif type(detail) is not dict:
        _reject(
            out,
            "wrong_shape",
            position,
            f"EventBridge detail is {_json_type(detail)}, expected an object",
            envelope,
        )
    elif kind == _EVENTBRIDGE_INSIGHT_TYPE:
        out.aside.append(("insight", detail))
    else:
        _decode_event(detail, position, out)


# --- single events ---------------------------------------------------------------------------


def _is_ready(event: dict[str, Any]) -> bool:
    """True when ``event`` can be emitted untouched: the common case, a few dict lookups.

    Anything unusual (Insights, anonymous caller, missing eventID, any problem) returns False
    and goes the slow way through ``_decode_event``, which gives the same verdict plus reasons.
    """
    if (
        type(event.get("eventName")) is not str
        or type(event.get("eventSource")) is not str
        or type(event.get("eventID")) is not str
        or not event["eventID"]
        or type(event.get("userIdentity")) is not dict
        or "insightDetails" in event
        or event.get("eventType") == INSIGHT_EVENT_TYPE
    ):
        return False
    for name, kind, _ in _OPTIONAL_FIELD_TYPES:  # the table _problem reports from
        value = event.get(name)
        if value is not None and type(value) is not kind:
            return False
    value = event.get("eventTime")
    if type(value) is not str:
        return False
    try:
        parse_event_time(value)
    except ValueError:
        return False
    return True


def _decode_event(event: dict[str, Any], position: str, out: Decoded) -> None:
    if "insightDetails" in event or event.get("eventType") == INSIGHT_EVENT_TYPE:
        out.aside.append(("insight", event))
        return
    if "eventTime" not in event and "@timestamp" in event:
        # Logstash-processed CloudTrail (the OTRF datasets) renames eventTime to @timestamp.
        event["eventTime"] = event["@timestamp"]
    problem = _problem(event)
    if problem is not None:
        reason, detail = problem
        if reason == "missing_field" and not any(
            type(key) is str and key.lower() in _EVENT_KEYS_LOWER for key in event
        ):
            reason = "unknown_envelope"
            detail = (
                "object is not a CloudTrail event or a known envelope (Records, messageType, detail-type, "
                f"digest); its keys: {clip(', '.join(map(str, event)), 160)}"
            )
        _reject(out, reason, position, detail, event)
        return
    if not event.get("eventID"):  # absent, null or "" ("" would make every such event one duplicate)
        try:
            canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError as exc:
            _reject(
                out,
                "wrong_shape",
                position,
                f"event has no eventID and cannot be fingerprinted: {exc}",
                event,
            )
            return
        # Deterministic, so a replayed archive yields the same IDs and dedup still works.
        event["eventID"] = "synthetic-" + hashlib.sha256(canonical).hexdigest()[:32]
    out.events.append(event)


def _problem(event: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, detail) for the first thing wrong with ``event``, or None if it is usable."""
    for name in ("eventName", "eventSource", "eventTime"):
        if name not in event:
            return "missing_field", _missing_detail(event, name)
        value = event[name]
        if type(value) is not str:
            return "bad_field_type", f"{name} is {_json_type(value)}, expected a string"
    try:
        parse_event_time(event["eventTime"])
    except ValueError as exc:
        return "bad_timestamp", f"eventTime {clip(event['eventTime'], 60)} is not a usable ISO 8601 date-time: {exc}"
    for name, kind, kind_text in _OPTIONAL_FIELD_TYPES:
        value = event.get(name)
        if value is not None and type(value) is not kind:
            return "bad_field_type", f"{name} is {_json_type(value)}, expected {kind_text} or null"
    return None


def _missing_detail(event: dict[str, Any], name: str) -> str:
    lowered = name.lower()
    near = [key for key in event if type(key) is str and key != name and key.lower() == lowered]
    if near:
        found = clip(near[0], 40)
        return f"required field {name} is missing (found {found}: CloudTrail keys are case-sensitive)"
    if name == "eventTime":
        return "required field eventTime is missing (and there is no @timestamp to use instead)"
    return f"required field {name} is missing"


# --- rejects ---------------------------------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _reject(out: Decoded, reason: str, position: str, detail: str, offending: object) -> None:
    if len(out.rejected) >= MAX_REJECTS_KEPT:
        out.more_rejected[reason] = out.more_rejected.get(reason, 0) + 1
        return
    out.rejected.append(
        Rejected(
            reason=reason,
            position=clip(position, _POSITION_LIMIT),
            detail=clip(detail, DETAIL_LIMIT),
            sample=_sample(offending),
        )
    )


def _sample(offending: object) -> str:
    if isinstance(offending, bytes | str):
        return clip(offending, SAMPLE_LIMIT)
    try:
        text = orjson.dumps(offending)
    except orjson.JSONEncodeError:
        return clip(f"<{type(offending).__name__} too deeply nested to show>", SAMPLE_LIMIT)
    return clip(text, SAMPLE_LIMIT)
