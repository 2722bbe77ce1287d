"""The fast reader: the common CloudTrail shapes straight from JSON bytes to ``Event``.

``decode`` builds a dict for every key of every event (a CloudTrail event has 20 to 60 of
them, most never read here) and ``Event.of`` then reads a dozen. This reader declares the
fields the core reads as msgspec structs; msgspec skips everything else without building
it, in about a third of the time ``orjson.loads`` takes for the same archive.

It reads archives, JSON arrays, JSON Lines, CloudWatch Logs ``DATA_MESSAGE`` payloads,
EventBridge envelopes and single events, and only ever the clean case: ``read`` returns
None for anything it is not sure of (any JSON type other than the one AWS writes in a field
that is read or checked, a missing ``eventID``, a ``userIdentity`` with no known key,
Insights events, digests, control messages, empty containers, oversized events). The
caller then hands the same bytes to ``decode``, which gives the verdicts and reasons. For
input ``orjson`` accepts, both readers produce the same events (tests/unit/test_typed.py
checks this on generated and real events). Where ``orjson`` refuses a whole document over
a field that is never read (invalid UTF-8 inside a string, a number beyond double range),
this reader still returns its events: one bad field does not blind the detector to a file
of 5,000 events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
import orjson
from msgspec import UNSET, Raw, Struct, UnsetType, field

from detector.decode import (
    EVENTBRIDGE_EVENT_TYPES,
    INSIGHT_EVENT_TYPE,
    JSON_LINES_HEAD,
    MAX_RECORD_BYTES,
    Decoded,
    gunzip,
)
from detector.event import Event, bounded_ua, memo_principal

__all__ = ["Pair", "read", "read_event", "read_pairs"]

_GZIP_MAGIC = b"\x1f\x8b"


class _Object(Struct, gc=False):
    """Any JSON object; its members are skipped unread (``responseElements``, ``resources[]``)."""


class _Issuer(Struct, gc=False):
    arn: Any = None


class _Session(Struct, gc=False):
    sessionIssuer: _Issuer | None = None


class _Identity(Struct, gc=False):
    # UNSET, not None, when absent: principal_of tells ``{}`` (anonymous) from ``{"type": null}``.
    type: Any = UNSET
    arn: Any = UNSET
    accountId: Any = UNSET
    principalId: Any = UNSET
    invokedBy: Any = UNSET
    userName: Any = UNSET
    sessionContext: _Session | UnsetType | None = UNSET
    onBehalfOf: Any = UNSET


class _Params(Struct, gc=False):
    bucketName: Any = None
    key: Any = None


class _Extra(Struct, gc=False):
    bytesTransferredOut: Any = None


class _Event(Struct, gc=False):
    eventName: str | UnsetType = UNSET
    eventSource: str | UnsetType = UNSET
    eventTime: str | UnsetType = UNSET
    eventID: str | None = None
    eventType: Any = None
    awsRegion: Any = None
    recipientAccountId: Any = None
    sourceIPAddress: Any = None
    userAgent: Any = None
    eventCategory: Any = None
    managementEvent: Any = None
    errorCode: str | None = None
    userIdentity: _Identity | None = None
    requestParameters: _Params | None = None
    additionalEventData: _Extra | None = None
    responseElements: _Object | None = None
    resources: list[_Object] | None = None
    # Present only on what decode routes elsewhere.
    insightDetails: Raw | UnsetType = UNSET
    detail_type: Raw | UnsetType = field(default=UNSET, name="detail-type")


class _LogEvent(Struct, gc=False):
    message: str | UnsetType = UNSET


Item = TypeVar("Item", _Event, Raw)


class _Document(_Event, Generic[Item], gc=False):
    """A whole blob: an archive, a CloudWatch Logs payload, an EventBridge envelope or one event.

    ``Item`` is how archive records and EventBridge details are read: ``_Event`` for ``read``,
    ``Raw`` (their bytes, decoded one by one) for ``read_pairs``.
    """

    Records: list[Item] | UnsetType = UNSET
    messageType: Any = UNSET
    logEvents: list[_LogEvent] | UnsetType = UNSET
    detail: Item | UnsetType = UNSET
    digestStartTime: Raw | UnsetType = UNSET
    digestEndTime: Raw | UnsetType = UNSET
    previousDigestSignature: Raw | UnsetType = UNSET


_read_document = msgspec.json.Decoder(_Document[_Event]).decode
_read_raw_document = msgspec.json.Decoder(_Document[Raw]).decode
_read_array = msgspec.json.Decoder(list[_Event]).decode
_read_raw_array = msgspec.json.Decoder(list[Raw]).decode
_read_event = msgspec.json.Decoder(_Event).decode

# What makes a reader step aside for decode: msgspec's errors, bad UTF-8 and a bad eventTime
# are ValueErrors, an int past float range an OverflowError, nesting deeper than the
# interpreter allows a RecursionError, and re-serialising an event nested past orjson's limit
# (a pretty-printed record the bridge forwards) a JSONEncodeError. decode then judges.
_DOUBT = (ValueError, OverflowError, RecursionError, orjson.JSONEncodeError)

Pair = tuple[Event, bytes]
T = TypeVar("T")


def read(data: bytes) -> tuple[list[Event] | None, bytes]:
    """(events, data), or (None, data) when ``decode`` must read it.

    A single gzip layer is removed first; when that uncovers JSON the returned ``data`` is
    the decompressed bytes, so a fallback does not gunzip twice. Never raises on bad input.
    """
    return _read(data, _events_of)


def read_pairs(data: bytes) -> tuple[list[Pair] | None, bytes]:
    """``read``, each event with its own JSON (one line: the bridge forwards it as it came)."""
    return _read(data, _pairs_of)


def read_event(line: bytes) -> Event | None:
    """One CloudTrail event (a Kafka record, a Kinesis record), or None for ``decode`` to read."""
    if len(line) > MAX_RECORD_BYTES:
        return None
    try:
        return _event(_read_event(line))
    except _DOUBT:
        return None


def _read(data: bytes, document: Callable[[bytes], list[T] | None]) -> tuple[list[T] | None, bytes]:
    if type(data) is not bytes:
        data = bytes(data)
    # decode unwraps again and reports if this fails; its reject is not ours to count
    inner = (gunzip(data, "", Decoded()) or b"") if data[:2] == _GZIP_MAGIC else data
    head = inner[:1]
    if head != b"{" and head != b"[":
        return None, data  # base64, nested gzip, whitespace, not JSON: decode unwraps and judges
    # Either way decode reads the blob and says what is wrong (see _DOUBT).
    try:
        return document(inner), inner
    except _DOUBT:
        pass
    if not JSON_LINES_HEAD.match(inner):
        return None, inner
    out: list[T] = []
    try:
        for raw_line in inner.split(b"\n"):
            line = raw_line.strip()
            if not line:
                continue
            got = document(line) if len(line) <= MAX_RECORD_BYTES and line[:1] in (b"{", b"[") else None
            if got is None:
                return None, inner
            out.extend(got)
    except _DOUBT:
        return None, inner
    return out, inner


def _events_of(doc: bytes) -> list[Event] | None:
    if doc[:1] == b"[":
        return _all(_read_array(doc), _event)
    return _dispatch(_read_document(doc), len(doc), _event, _event_of_log, _event)


def _pairs_of(doc: bytes) -> list[Pair] | None:
    if doc[:1] == b"[":
        return _all(_read_raw_array(doc), _pair_of_raw)
    whole = _read_raw_document(doc)
    return _dispatch(whole, len(doc), _pair_of_raw, _pair_of_log, lambda e: _pair(_event(e), doc))


def _dispatch(
    doc: _Document[Any],
    size: int,
    item: Callable[[Any], T | None],
    log_event: Callable[[_LogEvent], T | None],
    whole: Callable[[_Event], T | None],
) -> list[T] | None:
    """What one JSON object holds, in the order decode._decode_value looks: records, a
    CloudWatch Logs payload, a digest, an EventBridge envelope, one event."""
    if doc.Records is not UNSET:
        return _all(doc.Records, item)
    if doc.messageType is not UNSET:
        if doc.messageType != "DATA_MESSAGE" or doc.logEvents is UNSET:
            return None
        return _all(doc.logEvents, log_event)
    if not (doc.digestStartTime is UNSET and doc.digestEndTime is UNSET and doc.previousDigestSignature is UNSET):
        return None
    if size > MAX_RECORD_BYTES:
        return None
    if doc.detail_type is not UNSET:
        kind = msgspec.json.decode(doc.detail_type)
        if type(kind) is not str or kind not in EVENTBRIDGE_EVENT_TYPES or doc.detail is UNSET:
            return None
        one = item(doc.detail)
    else:
        one = whole(doc)
    return None if one is None else [one]


def _all(items: list[Any], convert: Callable[[Any], T | None]) -> list[T] | None:
    if not items:
        return None  # decode counts the empty container
    out: list[T] = []
    append = out.append
    for item in items:
        got = convert(item)
        if got is None:
            return None
        append(got)
    return out


def _message(log_event: _LogEvent) -> str | None:
    message = log_event.message
    return None if message is UNSET or len(message) > MAX_RECORD_BYTES else message


def _event_of_log(log_event: _LogEvent) -> Event | None:
    message = _message(log_event)
    return None if message is None else _event(_read_event(message))


def _pair_of_log(log_event: _LogEvent) -> Pair | None:
    message = _message(log_event)
    return None if message is None else _pair(_event(_read_event(message)), message.encode())


def _pair_of_raw(raw: Any) -> Pair | None:
    data = bytes(raw)
    return _pair(_event(_read_event(data)), data)


def _pair(ev: Event | None, data: bytes) -> Pair | None:
    if ev is None:
        return None
    if b"\n" in data:  # pretty-printed: one line, as the JSON Lines of a packed Kafka record need
        data = orjson.dumps(orjson.loads(data))
    return ev, data


def _event(e: _Event) -> Event | None:
    """The Event decode + Event.of would make of ``e``, or None if decode must decide."""
    name, source, when, event_id = e.eventName, e.eventSource, e.eventTime, e.eventID
    if (
        name is UNSET
        or source is UNSET
        or when is UNSET
        or not event_id  # absent, null or "": decode gives it a synthetic one
        or e.insightDetails is not UNSET
        or e.detail_type is not UNSET
        or e.eventType == INSIGHT_EVENT_TYPE
    ):
        return None
    ui = e.userIdentity
    if ui is not None and ui.type is UNSET and _is_blank(ui):
        return None  # {} and {"unknownKey": ...} are different principals; decode tells them apart
    ctx = ui.sessionContext if ui is not None else None
    issuer = ctx.sessionIssuer if isinstance(ctx, _Session) else None
    key = (
        "typed",
        None if ui is None else (ui.type, ui.arn, ui.accountId, ui.principalId, ui.invokedBy, ui.userName),
        issuer.arn if issuer is not None else None,
        e.recipientAccountId,
        e.sourceIPAddress,
        bounded_ua(e.userAgent),
        None if ui is None or ui.onBehalfOf is UNSET else ui.onBehalfOf,
    )
    params = e.requestParameters
    extra = e.additionalEventData
    # Event.build raises ValueError on a bad eventTime: read() then falls back to decode.
    return Event.build(
        event_id,
        when,
        name,
        source,
        e.awsRegion,
        e.recipientAccountId,
        memo_principal(key, lambda: _identity_dict(e)),
        e.sourceIPAddress,
        e.userAgent,
        e.errorCode,
        e.eventCategory == "Data" or e.managementEvent is False,
        None if params is None else params.bucketName,
        None if params is None else params.key,
        None if extra is None else extra.bytesTransferredOut,
    )


# The identity keys principal_of reads, from the struct itself (one list, not a copy per use).
_IDENTITY_FIELDS: tuple[str, ...] = _Identity.__struct_fields__
_PLAIN_IDENTITY_FIELDS = tuple(name for name in _IDENTITY_FIELDS if name != "sessionContext")


def _is_blank(ui: _Identity) -> bool:
    return all(getattr(ui, name) is UNSET for name in _IDENTITY_FIELDS)


def _identity_dict(e: _Event) -> dict[str, Any]:
    """The part of the event dict ``principal.principal_of`` reads, rebuilt from the struct."""
    event: dict[str, Any] = {
        "recipientAccountId": e.recipientAccountId,
        "sourceIPAddress": e.sourceIPAddress,
        "userAgent": e.userAgent,
    }
    ui = e.userIdentity
    if ui is None:
        event["userIdentity"] = None
        return event
    identity = {
        name: value
        for name in _PLAIN_IDENTITY_FIELDS
        if (value := getattr(ui, name)) is not UNSET
    }
    ctx = ui.sessionContext
    if isinstance(ctx, _Session):
        identity["sessionContext"] = (
            {} if ctx.sessionIssuer is None else {"sessionIssuer": {"arn": ctx.sessionIssuer.arn}}
        )
    elif ctx is None:
        identity["sessionContext"] = None
    event["userIdentity"] = identity
    return event
