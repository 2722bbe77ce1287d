"""Make untrusted text safe to put in a log line, a metric sample or an alert.

CloudTrail fields are attacker-controlled (user agents, bucket keys, error messages), so
anything we echo back is escaped here first: no control characters, no terminal escapes, no
bidi overrides, bounded length. The output is for people to read, not to parse back.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MASK", "clip", "human_bytes", "markdown_escape", "mask_url", "slack_escape"]

MASK = "*" * 10  # what pydantic prints for a SecretStr


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def clip(text: object, limit: int = 256) -> str:
    """Return ``text`` as a printable, single-line string of at most ``limit`` characters.

    Parameters
    ----------
    text : object
        Anything. ``str`` is used as is, ``bytes`` are decoded as UTF-8 with undecodable
        bytes shown as ``\\xNN`` (only the head is decoded, so for bytes N below counts
        the undecoded tail in bytes), anything else goes through ``str()``.
    limit : int, default 256
        Maximum length of the result, including the truncation marker.

    Returns
    -------
    str
        Every non-printable character (controls, newlines, tabs, format characters such as
        U+202E, lone surrogates) replaced by ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``. When
        the escaped text is longer than ``limit`` it is cut and ``…(+N)`` is appended, N being
        the number of source characters left out.
    """
    if limit < 1:
        raise ValueError(f"clip limit must be a positive number of characters, got {limit!r}")
    extra = 0  # source length beyond `s`, for bytes we did not decode
    if isinstance(text, str):
        s = text
    elif isinstance(text, bytes | bytearray | memoryview):
        # Only the head is ever shown; decoding a megabyte blob to show 200 characters is waste.
        # 4 bytes per character at most, so this head always holds `limit` characters.
        head = bytes(text[: limit * 4])
        s = head.decode("utf-8", errors="backslashreplace")
        extra = len(text) - len(head)
    else:
        s = str(text)
    if not extra and len(s) <= limit and s.isprintable():
        return s

    # Each source character yields at least one output character, so at most `limit`
    # source characters can ever be shown.
    pieces = [ch if ch.isprintable() else _escape_char(ch) for ch in s[:limit]]
    if not extra and len(s) <= limit and sum(map(len, pieces)) <= limit:
        return "".join(pieces)

    total = len(s) + extra
    budget = max(limit - len(f"…(+{total})"), 0)
    shown = 0
    used = 0
    for piece in pieces:
        if used + len(piece) > budget:
            break
        used += len(piece)
        shown += 1
    marker = f"…(+{total - shown})"
    if len(marker) > limit:
        return marker[:limit]
    return "".join(pieces[:shown]) + marker


def human_bytes(n: float) -> str:
    """``22138617856`` -> ``22.1 GB``: byte counts as a person reads them (decimal units, as S3 bills)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def mask_url(url: object) -> str:
    """``scheme://host:port/**********``: a URL as it may appear in a log, error, metric or ``config show``.

    Webhook URLs carry their secret in the user info (``alice:PASSWORD@``), the path (Slack's
    ``/services/T000/B000/XXXX``) or the query (``?token=``), so only scheme, host and port are
    kept. Never raises: a URL that does not parse shows as ``<unparseable url>``.
    """
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable url>"
    scheme = parts.scheme if parts.scheme.isalnum() else ""
    return clip(f"{scheme}://{host}{port}/{MASK}", 300)


# Slack turns these words into mentions when a message is posted with link_names, and
# <!here>, <!channel>, <@U123> anywhere; a word joiner after the @ keeps them words.
_MENTION = re.compile(r"@(?=(?:here|channel|everyone|group)\b)", re.IGNORECASE)


def slack_escape(text: object, limit: int = 256) -> str:
    """``clip`` first, then what Slack mrkdwn would render: ``&``, ``<``, ``>`` (links, ``<!here>``),
    and ``@channel``-style mention words. The result shows the attacker's text, inert."""
    s = clip(text, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub("@\u2060", s)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>])")


def markdown_escape(text: object, limit: int = 256) -> str:
    """``clip`` first, then a backslash before every character Markdown could render (links,
    emphasis, HTML), and the mention words defused as in ``slack_escape``."""
    s = _MARKDOWN_SPECIAL.sub(r"\\\1", clip(text, limit))
    return _MENTION.sub("@\u2060", s)
