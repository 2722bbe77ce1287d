"""HTTP webhook sink: POST each alert as JSON, from the spool, in a background thread.

``Authorization: Bearer <token>`` when ``sinks[].token`` is set (a ``SecretStr``: never
logged). ``Idempotency-Key`` carries ``alert_id:status:event_count`` so a receiver can drop
the rare re-send after a crash. 2xx is delivered; 408, 429 (honouring ``Retry-After``) and
5xx are retried with back-off; any other status means the receiver will never accept this
alert, which is kept in the spool's ``rejected.jsonl``.
"""

from __future__ import annotations

import http.client
import urllib.parse
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from detector import __version__
from detector.errors import ConfigError
from detector.metrics import Metrics
from detector.sinks.spool import DeliveryError, SpooledSink, alert_key

RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookTransport:
    def __init__(self, url: str, token: SecretStr | None = None, timeout_s: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"sinks: webhook url must be http(s)://host/path, got {url!r}")
        self.url = url
        self._parts = parts
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._token = token
        self.timeout_s = timeout_s

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self._parts.hostname or "", self._parts.port
        if self._parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout_s)
        return http.client.HTTPConnection(host, port, timeout=self.timeout_s)

    def send(self, payload: bytes, alert: dict[str, Any]) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"cloudtrail-detector/{__version__}",
            "Idempotency-Key": alert_key(alert),
        }
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=payload, headers=headers)
            resp = conn.getresponse()
            resp.read(4096)
            status = resp.status
            retry_after = resp.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"POST {self._parts.netloc}: {type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
        if 200 <= status < 300:
            return
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        retryable = status >= 500 or status in RETRYABLE_STATUS
        raise DeliveryError(f"POST {self._parts.netloc}: HTTP {status}", retryable=retryable, retry_after=wait)


def webhook_sink(
    name: str,
    url: str,
    token: SecretStr | None,
    timeout_s: float,
    max_retries: int,
    spool_dir: Path,
    metrics: Metrics | None = None,
    **kwargs: Any,
) -> SpooledSink:
    return SpooledSink(name, WebhookTransport(url, token, timeout_s), spool_dir, metrics, max_retries, **kwargs)
