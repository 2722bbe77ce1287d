"""A real Prometheus server for integration tests, and helpers to query it.

``start_prometheus`` runs the ``prometheus`` binary (Debian package ``prometheus``) on
127.0.0.1 with its TSDB under the test's tmp dir; ``prometheus_factory`` is the session
fixture that stops every server it started. Missing binaries fail the test (not skip) with
the install command, so a CI image without Prometheus cannot pass by running nothing.

``fill_every_metric`` gives every detector metric at least one sample, so the dashboard and
rules can be checked against what the detector really exports.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from detector.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "prometheus" / "rules.yml"
RULES_TEST = REPO / "config" / "prometheus" / "rules_test.yml"
DASHBOARD = REPO / "config" / "grafana" / "cloudtrail-detector.json"
JOB = "cloudtrail-detector"

StartPrometheus = Callable[..., tuple[str, Callable[[], None]]]


def load_rules() -> list[dict[str, Any]]:
    """The rules of the one group in rules.yml."""
    doc = yaml.safe_load(RULES.read_text())
    [group] = doc["groups"]
    assert group["name"] == "cloudtrail-detector"
    return list(group["rules"])


def load_dashboard() -> dict[str, Any]:
    """The Grafana dashboard JSON."""
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query target, rows included."""
    out: list[tuple[str, dict[str, Any]]] = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            out.extend((inner["title"], target) for target in inner.get("targets", []))
    return out


def require_binary(name: str) -> str:
    """Path of ``name`` (``prometheus``, ``promtool``); fails the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH; install it with `apt-get install prometheus` "
            "(the Debian package ships both prometheus and promtool)",
            pytrace=False,
        )
    return path


def start_prometheus(
    tmp_path: Path, scrape_targets: list[str], rule_files: list[Path], scrape_interval: str = "1s"
) -> tuple[str, Callable[[], None]]:
    """Start Prometheus scraping ``scrape_targets`` as job ``cloudtrail-detector``.

    Rules are evaluated every ``scrape_interval`` too. Returns ``(base_url, stop)`` once
    ``/-/ready`` answers 200; ``stop()`` terminates the server and may be called twice.
    """
    binary = require_binary("prometheus")
    workdir = tmp_path / "prometheus"
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(scrape_targets)}]}],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))

    # Picking a free port and handing it over is racy; on a lost race Prometheus exits at once
    # with "address already in use", so try again with a new port.
    last_log = ""
    for attempt in range(3):
        port = _free_port()
        log_path = workdir / f"prometheus-{attempt}.log"
        log_file = log_path.open("wb")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / f'data-{attempt}'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"

        def stop(proc: subprocess.Popen[bytes] = proc, log_file: Any = log_file) -> None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log_file.close()

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if _get_status(f"{base_url}/-/ready") == 200:
                return base_url, stop
            time.sleep(0.1)
        stop()
        last_log = log_path.read_text(errors="replace")
        if "address already in use" not in last_log:
            break
    raise AssertionError(f"prometheus did not become ready; its log:\n{last_log[-4000:]}")


def query(base_url: str, expr: str) -> list[dict[str, Any]]:
    """Instant query via /api/v1/query; returns ``data.result``.

    Raises AssertionError naming the expression when Prometheus rejects it, so a bad PromQL
    expression fails with Prometheus's own parse or evaluation error.
    """
    url = f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as err:
        with err:
            body = json.load(err)
    if body.get("status") != "success":
        raise AssertionError(f"Prometheus rejected {expr!r}: {body.get('errorType')}: {body.get('error')}")
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    return list(data["result"])


def api_get(base_url: str, path: str) -> Any:
    """GET a Prometheus API path (``/api/v1/rules``) and return ``data``."""
    with urllib.request.urlopen(f"{base_url}{path}", timeout=10) as resp:
        body = json.load(resp)
    assert body.get("status") == "success", body
    return body["data"]


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> None:
    """Poll ``check`` until it returns True; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def prometheus_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartPrometheus]:
    """``start(scrape_targets, rule_files, scrape_interval="1s") -> (base_url, stop)``.

    Every server started through the factory is stopped at the end of the session.
    """
    stops: list[Callable[[], None]] = []

    def start(
        scrape_targets: list[str], rule_files: list[Path], scrape_interval: str = "1s"
    ) -> tuple[str, Callable[[], None]]:
        base_url, stop = start_prometheus(tmp_path_factory.mktemp("prom"), scrape_targets, rule_files, scrape_interval)
        stops.append(stop)
        return base_url, stop

    yield start
    for stop in stops:
        stop()


def fill_every_metric(metrics: Metrics, now: float | None = None) -> None:
    """Give every metric in ``metrics`` samples, as a running detector would.

    Call it repeatedly: counters grow and histograms gain observations each time, so
    ``rate()`` and ``histogram_quantile()`` over them return real numbers.
    """
    now = time.time() if now is None else now
    for source in ("kinesis", "s3"):
        metrics.records_received.labels(source=source).inc(10)
        metrics.records_general_reader.labels(source=source).inc()
        metrics.events_decoded.labels(source=source).inc(40)
        metrics.records_rejected.labels(source=source, reason="invalid_json").inc()
        metrics.records_skipped.labels(source=source, reason="control_message").inc()
        metrics.source_up.labels(source=source).set(1)
    metrics.events_duplicate.inc()
    metrics.events_late.inc()
    metrics.events_scored.inc(80)
    for kind in ("sensitive_api", "get_object_burst"):
        metrics.alerts.labels(kind=kind).inc()
        metrics.alerts_suppressed.labels(kind=kind).inc()
    for score in (0.2, 0.42, 0.5, 0.58, 0.63, 0.71, 0.85, 0.97):
        metrics.anomaly_score.observe(score)
    for seconds in (0.002, 0.008, 0.03, 0.2):
        metrics.batch_seconds.observe(seconds)
    for age in (3, 40, 200, 700):
        metrics.event_age_seconds.observe(age)
    for seconds in (0.008, 0.04, 0.3, 1.2):
        metrics.processing_seconds.observe(seconds)
    metrics.millis_behind_latest.labels(shard="shardId-000000000000").set(1200)
    metrics.millis_behind_latest.labels(shard="shardId-000000000001").set(0)
    metrics.checkpoint_timestamp.set(now - 5)
    metrics.principals_tracked.set(1234)
    metrics.partitions_assigned.set(4)
    metrics.model_info.info({"name": "default", "version": "2024-05-01", "feature_version": "1"})
    metrics.model_trained_timestamp.set(now - 3 * 86400)
    metrics.model_reloads.labels(result="ok").inc()
    metrics.config_reloads.labels(result="ok").inc()
    for sink in ("webhook", "sns"):
        metrics.sink_delivered.labels(sink=sink).inc(2)
        metrics.sink_failures.labels(sink=sink).inc()
        metrics.spool_alerts.labels(sink=sink).set(3)
    metrics.last_event_timestamp.set(now)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        err.close()
        return err.code
    except OSError:
        return None
