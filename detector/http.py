"""The status endpoint: ``/metrics``, ``/healthz`` and ``/readyz`` on one small HTTP server.

Liveness and readiness mean different things and are kept apart:

* live  = the main loop is still turning (it called :meth:`Health.tick` recently). A wedged
  loop is only fixed by a restart, so this is what an orchestrator's liveness probe watches.
* ready = the detector can do useful work: the model is loaded and every registered source is
  connected. Not being ready is normal while connecting or after a transient source error; it
  takes the instance out of rotation but does not restart it.

The server is stdlib ``ThreadingHTTPServer`` in a daemon thread: the endpoints are tiny, and a
framework would be one more dependency in the scrape path. Requests are logged at DEBUG only,
since Prometheus scrapes every few seconds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from detector.errors import ConfigError, UsageError

log = logging.getLogger(__name__)

MODEL = "model"
"""The one component that must always be ready; sources register as ``source:<name>``."""

# A detail is shown in the /readyz body; keep one misbehaving component from bloating it.
_MAX_DETAIL_CHARS = 256
_TEXT = "text/plain; charset=utf-8"


class Health:
    """Liveness and readiness state, shared by the main loop and the HTTP threads.

    Parameters
    ----------
    liveness_timeout : float, default 60.0
        Seconds without a :meth:`tick` after which the process counts as not live. Construction
        counts as a tick, so a process gets this long to reach its main loop.
    clock : callable, default ``time.monotonic``
        Returns seconds; injected so tests control time.

    Notes
    -----
    ``"model"`` starts registered and not ready. Any other component (``"source:kinesis"``)
    counts from its first :meth:`set_ready` call, so register a source as not ready when it is
    created, not when it first connects.
    """

    def __init__(self, liveness_timeout: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if liveness_timeout <= 0:
            raise ValueError(f"liveness_timeout must be > 0 seconds, got {liveness_timeout!r}")
        self._liveness_timeout = liveness_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._last_tick = clock()
        self._components: dict[str, tuple[bool, str]] = {MODEL: (False, "not loaded")}

    def tick(self) -> None:
        """Record that the main loop completed an iteration."""
        now = self._clock()
        with self._lock:
            self._last_tick = now

    def set_ready(self, component: str, ready: bool, detail: str = "") -> None:
        """Register or update ``component`` (``"model"``, ``"source:<name>"``).

        ``detail`` says why it is not ready; it is served on ``/readyz``, so it must not
        carry secrets.
        """
        if not component:
            raise ValueError("component must be a non-empty name such as 'model' or 'source:kinesis'")
        with self._lock:
            self._components[component] = (ready, detail[:_MAX_DETAIL_CHARS])

    def live(self) -> bool:
        """True while the last tick is at most ``liveness_timeout`` seconds old."""
        now = self._clock()
        with self._lock:
            return now - self._last_tick <= self._liveness_timeout

    def ready(self) -> tuple[bool, dict[str, str]]:
        """``(all ready, {component: why not})``; the dict is empty when ready."""
        with self._lock:
            waiting = {name: detail or "not ready" for name, (ok, detail) in sorted(self._components.items()) if not ok}
        return not waiting, waiting


class StatusServer:
    """Serves ``/metrics`` from ``registry`` and probes from ``health`` in a daemon thread.

    ``port=0`` picks a free port; read :attr:`port` after :meth:`start`.
    """

    def __init__(self, registry: CollectorRegistry, health: Health, host: str = "127.0.0.1", port: int = 9108) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"status port must be between 0 and 65535, got {port}")
        self._registry = registry
        self._health = health
        self._host = host
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("StatusServer.port is known once the server is listening; call start() first")
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind and serve in a daemon thread; an unusable address is a ``UsageError`` naming metrics.port."""
        if self._server is not None:
            raise RuntimeError("StatusServer.start() called twice; call stop() first")
        handler = _handler_class(self._registry, self._health)
        try:
            server = ThreadingHTTPServer((self._host, self._requested_port), handler)
        except OSError as exc:
            raise UsageError(
                f"metrics.port: cannot serve /metrics on {self._host}:{self._requested_port}: {exc.strerror or exc}; "
                "set metrics.port (DETECTOR_METRICS__PORT, or --metrics-port for bridge and worker) to a free port, "
                "or stop the process holding it"
            ) from exc
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="status-http", daemon=True
        )
        self._thread.start()
        log.info(
            "status server listening",
            extra={"event": "status_server_started", "host": self._host, "port": self.port},
        )

    def stop(self) -> None:
        """Stop serving and release the port; safe to call more than once."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)


def _handler_class(registry: CollectorRegistry, health: Health) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to this server's registry and health (no globals)."""

    class StatusHandler(BaseHTTPRequestHandler):
        server_version = "cloudtrail-detector"
        sys_version = ""
        # A client that connects and sends nothing must not hold a thread forever.
        timeout = 10

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                try:
                    body = generate_latest(registry)
                except Exception:  # a broken collector must not take the probes down with it
                    log.exception("metrics collection failed", extra={"event": "metrics_error"})
                    self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, b"metrics collection failed\n")
                    return
                self._reply(HTTPStatus.OK, body, CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                if health.live():
                    self._reply(HTTPStatus.OK, b"ok\n")
                else:
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE, b"main loop stalled\n")
            elif path == "/readyz":
                ok, waiting = health.ready()
                body = json.dumps({"ready": ok, "not_ready": waiting}, sort_keys=True).encode() + b"\n"
                status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
                self._reply(status, body, "application/json")
            else:
                self._reply(HTTPStatus.NOT_FOUND, b"not found: try /metrics, /healthz or /readyz\n")

        def _reply(self, status: HTTPStatus, body: bytes, content_type: str = _TEXT) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("status request: " + format, *args)

    return StatusHandler
