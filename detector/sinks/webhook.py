"""HTTP webhook sink: POST each alert as JSON, from the spool, in a background thread.

``Authorization: Bearer <token>`` when ``sinks[].token`` is set (a ``SecretStr``: never
logged). The URL is a secret too (Slack keeps its key in the path, others in the user info or
query): every log line, error and metric names it as ``textsafe.mask_url`` shows it.
``format: slack`` or ``markdown`` posts ``{"text": ...}`` with every attacker-controlled
string escaped for that format (``alert.render_text``); ``json`` posts the alert itself.
Destinations at link-local addresses (``169.254.169.254``, the cloud metadata service) are
refused when the connection is made, after DNS, unless ``allow_link_local`` is set.
``Idempotency-Key`` carries ``alert_id:status:event_count`` so a receiver can drop
the rare re-send after a crash. 2xx is delivered; 408, 429 (honouring ``Retry-After``) and
5xx are retried with back-off; any other status means the receiver will never accept this
alert, which is kept in the spool's ``rejected.jsonl``.
"""

from __future__ import annotations

import http.client
import urllib.parse
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from detector import __version__
from detector.alert import render_text
from detector.errors import ConfigError
from detector.metrics import Metrics
from detector.sinks.spool import DeliveryError, SpooledSink, alert_key
from detector.textsafe import mask_url
from detector.urls import is_link_local

RETRYABLE_STATUS = frozenset({408, 425, 429})
FORMATS = ("json", "slack", "markdown")


class WebhookTransport:
    def __init__(
        self,
        url: str,
        token: SecretStr | None = None,
        timeout_s: float = 5.0,
        format: str = "json",
        allow_link_local: bool = False,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"sinks: webhook url must be http(s)://host/path, got {mask_url(url)}")
        if format not in FORMATS:
            raise ConfigError(f"sinks: webhook format must be one of {', '.join(FORMATS)}, got {format[:40]!r}")
        self.url = url
        self.shown = mask_url(url)  # the URL as logs and errors may show it
        self._parts = parts
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._token = token
        self.timeout_s = timeout_s
        self.format = format
        self.allow_link_local = allow_link_local

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self._parts.hostname or "", self._parts.port
        if self._parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout_s)
        return http.client.HTTPConnection(host, port, timeout=self.timeout_s)

    def send(self, payload: bytes, alert: dict[str, Any]) -> None:
        if self.format != "json":
            payload = orjson.dumps({"text": render_text(alert, self.format)})
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"cloudtrail-detector/{__version__}",
            "Idempotency-Key": alert_key(alert),
        }
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        conn = self._connection()
        try:
            conn.connect()
            peer = conn.sock.getpeername()[0] if conn.sock is not None else ""
            if not self.allow_link_local and is_link_local(str(peer)):
                raise DeliveryError(
                    f"POST {self.shown}: refusing a link-local destination ({peer}, the cloud metadata range); "
                    "set allow_link_local on this sink if that is really the receiver",
                    retryable=False,
                )
            conn.request("POST", self._path, body=payload, headers=headers)
            resp = conn.getresponse()
            resp.read(4096)
            status = resp.status
            retry_after = resp.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"POST {self.shown}: {type(exc).__name__}: {_masked(str(exc), self.url)}") from exc
        finally:
            conn.close()
        if 200 <= status < 300:
            return
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        retryable = status >= 500 or status in RETRYABLE_STATUS
        raise DeliveryError(f"POST {self.shown}: HTTP {status}", retryable=retryable, retry_after=wait)


def _masked(text: str, url: str) -> str:
    """``text`` with the URL's secret parts (user info, path, query) cut out, should it quote them."""
    parts = urllib.parse.urlsplit(url)
    for secret in (parts.netloc.rpartition("@")[0], parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, "**********")
    return text


def webhook_sink(
    name: str,
    url: str,
    token: SecretStr | None,
    timeout_s: float,
    max_retries: int,
    spool_dir: Path,
    metrics: Metrics | None = None,
    format: str = "json",
    allow_link_local: bool = False,
    **kwargs: Any,
) -> SpooledSink:
    transport = WebhookTransport(url, token, timeout_s, format, allow_link_local)
    return SpooledSink(name, transport, spool_dir, metrics, max_retries, **kwargs)
