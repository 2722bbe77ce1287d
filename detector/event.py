"""The normalised event the core works on.

``Event.of`` reads the handful of CloudTrail fields the detectors need out of a decoded
event dict (one that passed ``decode.check_event``). Optional CloudTrail keys may be
absent or null; nothing here raises on them. Attacker-controlled strings are kept as
they are (bounded) for hashing and escaped only when written out.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from msgspec import UNSET

from detector.decode import parse_event_time
from detector.memo import remember
from detector.principal import MAX_UA, Principal, principal_of

MAX_KEY = 1024
# CloudTrail's own bounds on the fields that become cache and baseline keys (API names are at
# most 128 characters, bucket names 63, IPv6 text 45 or a service DNS name 253, session names
# 64). A longer value is forged: it becomes its head plus a digest of the whole (``bounded``),
# still one distinct value, so the memo caches keyed on these hold bytes, not megabytes.
MAX_NAME = 128  # eventName, eventSource, errorCode
MAX_REGION = 64
MAX_ACCOUNT = 64
MAX_IP = 256
MAX_BUCKET = 256
MAX_EVENT_ID = 128
MAX_SESSION = 128
# A principal memo key longer than this (a forged megabyte ARN) is not kept in the memo.
_MAX_MEMO_KEY_CHARS = 4096
# One GetObject returns at most one object, and S3 objects are at most 5 TiB. A larger count
# is forged; clamped, it cannot overflow the baselines' float32 counters into inf and NaN.
MAX_BYTES_OUT = float(5 * 2**40)

S3_GET = frozenset({"GetObject"})
S3_DELETE = frozenset({"DeleteObject", "DeleteObjects", "DeleteBucket", "DeleteObjectVersion"})


# Source "IPs" that are AWS itself: service names and "AWS Internal". Novelty of these
# says nothing about who is calling.
def is_aws_source(ip: str) -> bool:
    return ip.endswith(".amazonaws.com") or ip == "AWS Internal" or not ip


_principals: dict[tuple[object, ...], Principal] = {}
# An identity key that is absent reads differently from one that is null (``{}`` is anonymous,
# ``{"type": null}`` an unknown caller), so the memo key must tell them apart.
_ABSENT = object()
_RAW_IDENTITY_KEYS = ("type", "arn", "accountId", "principalId", "invokedBy", "userName")


def principal_of_raw(raw: dict[str, Any]) -> Principal:
    """``principal_of`` memoised on everything it reads (identity, user agent, accounts)."""
    ui = raw.get("userIdentity")
    if (
        not isinstance(ui, dict)
        or "onBehalfOf" in ui
        or ("sessionContext" in ui and not isinstance(ui.get("sessionContext"), dict))
    ):
        return principal_of(raw)
    ctx = ui.get("sessionContext")
    issuer = ctx.get("sessionIssuer") if isinstance(ctx, dict) else None
    key = (
        *[ui.get(name, _ABSENT) for name in _RAW_IDENTITY_KEYS],
        "identity" if ui else "empty",  # {} and {"unknownKey": 1} read no known key, but only {} is anonymous
        issuer.get("arn") if isinstance(issuer, dict) else None,
        raw.get("recipientAccountId"),
        raw.get("sourceIPAddress"),
        bounded_ua(raw.get("userAgent")),
    )
    return memo_principal(key, lambda: raw)


def bounded_ua(ua: object) -> object:
    """The part of a user agent ``principal_of`` reads: what a memo key must hold, and no more."""
    return ua[:MAX_UA] if type(ua) is str else ua


def bounded(text: str, limit: int) -> str:
    """``text``, or past ``limit`` characters its head plus a digest of the whole (as long as ``limit``)."""
    if len(text) <= limit:
        return text
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{text[: limit - 18]}…#{digest}"


def _attributed(event: dict[str, Any]) -> Principal:
    p = principal_of(event)
    if len(p.session) > MAX_SESSION:
        p = dataclasses.replace(p, session=bounded(p.session, MAX_SESSION))
    return p


def memo_principal(key: tuple[object, ...], event: Callable[[], dict[str, Any]]) -> Principal:
    """``principal_of(event())``, memoised on ``key``: every value ``principal_of`` reads.

    The memo is bounded by count and, since a key holds raw identity strings, by their size:
    a key with more than ``_MAX_MEMO_KEY_CHARS`` characters of strings (nested tuples included)
    is computed, not kept. So is a key holding anything but strings, null and absent markers:
    ``1``, ``True`` and ``1.0`` are one dict key, but ``principal_of`` reads them as three
    different callers, so keeping one would attribute the others by arrival order.
    """
    try:
        hit = _principals.get(key)
    except TypeError:  # an unhashable value where a string belongs
        return _attributed(event())
    if hit is None:
        hit = _attributed(event())
        size = _memo_chars(key)
        if size is not None and size <= _MAX_MEMO_KEY_CHARS:
            remember(_principals, key, hit, 100_000)
    return hit


def _memo_chars(key: tuple[object, ...]) -> int | None:
    """Characters of the strings in ``key``, or None if it holds a value no memo key may hold."""
    chars = 0
    for value in key:
        if type(value) is str:
            chars += len(value)
        elif type(value) is tuple:
            inner = _memo_chars(value)
            if inner is None:
                return None
            chars += inner
        elif value is not None and value is not _ABSENT and value is not UNSET:
            return None
    return chars


@dataclass(slots=True)
class Event:
    event_id: str
    time: float  # event time, Unix seconds UTC
    name: str  # eventName
    service: str  # eventSource without ".amazonaws.com"
    region: str
    account_id: str  # recipientAccountId (whose resources were touched)
    principal: Principal
    source_ip: str
    user_agent: str
    error_code: str  # "" when the call succeeded
    is_data: bool  # data event (S3 object level, Lambda invoke, ...)
    bucket: str
    object_key: str
    bytes_out: float
    is_get_object: bool  # s3:GetObject
    is_delete: bool  # an S3 object or bucket delete

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Event:
        get = raw.get
        params = get("requestParameters")
        bucket = key = None
        if type(params) is dict:
            bucket = params.get("bucketName")
            key = params.get("key")
        extra = get("additionalEventData")
        return cls.build(
            get("eventID"),
            raw["eventTime"],
            get("eventName"),
            get("eventSource"),
            get("awsRegion"),
            get("recipientAccountId"),
            principal_of_raw(raw),
            get("sourceIPAddress"),
            get("userAgent"),
            get("errorCode"),
            get("eventCategory") == "Data" or get("managementEvent") is False,
            bucket,
            key,
            extra.get("bytesTransferredOut") if type(extra) is dict else None,
        )

    @classmethod
    def build(
        cls,
        event_id: object,
        event_time: str,
        name: object,
        source: object,
        region: object,
        recipient: object,
        principal: Principal,
        ip: object,
        ua: object,
        error: object,
        is_data: bool,
        bucket: object,
        key: object,
        bytes_out: object,
    ) -> Event:
        """An Event from CloudTrail field values as decoded, whatever their JSON types.

        The one place field values are normalised, for both readers: ``of`` (a decoded dict)
        and ``typed`` (msgspec structs). Wrong-typed optional values read as empty.
        """
        if type(source) is not str:
            source = str(source or "")
        if len(source) > MAX_NAME:
            source = bounded(source, MAX_NAME)
        service = source[:-14] if source.endswith(".amazonaws.com") else source
        if type(name) is not str:
            name = str(name or "")
        if len(name) > MAX_NAME:
            name = bounded(name, MAX_NAME)
        s3 = service == "s3"
        ip = (ip if len(ip) <= MAX_IP else bounded(ip, MAX_IP)) if type(ip) is str else ""
        bucket = (bucket if len(bucket) <= MAX_BUCKET else bounded(bucket, MAX_BUCKET)) if type(bucket) is str else ""
        error = (error if len(error) <= MAX_NAME else bounded(error, MAX_NAME)) if type(error) is str else ""
        event_id = event_id if type(event_id) is str else str(event_id or "")
        if len(event_id) > MAX_EVENT_ID:
            event_id = bounded(event_id, MAX_EVENT_ID)
        region = region if type(region) is str else str(region or "")
        if len(region) > MAX_REGION:
            region = bounded(region, MAX_REGION)
        recipient = recipient if type(recipient) is str and recipient else str(recipient or principal.account_id)
        if len(recipient) > MAX_ACCOUNT:
            recipient = bounded(recipient, MAX_ACCOUNT)
        # Positional, in field order: keywords cost a few tenths of a microsecond per event.
        return cls(
            event_id,
            parse_event_time(event_time),
            name,
            service,
            region,
            recipient,
            principal,
            ip,
            ua[:MAX_UA] if type(ua) is str else "",
            error,
            is_data,
            bucket,
            key[:MAX_KEY] if type(key) is str else "",
            (float(bytes_out) if bytes_out < MAX_BYTES_OUT else MAX_BYTES_OUT)
            if (type(bytes_out) is int or type(bytes_out) is float) and bytes_out > 0  # NaN is not > 0
            else 0.0,
            s3 and name in S3_GET,
            s3 and name in S3_DELETE,
        )
