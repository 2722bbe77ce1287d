"""The status server, over real HTTP on 127.0.0.1 with a free port."""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from detector.errors import ConfigError
from detector.http import Health, StatusServer
from detector.metrics import Metrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) without raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers["Content-Type"], err.read().decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> Health:
    return Health(liveness_timeout=30.0, clock=clock)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics.create(registry)


@pytest.fixture
def base_url(registry: CollectorRegistry, metrics: Metrics, health: Health) -> Iterator[str]:
    server = StatusServer(registry, health, port=0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_metrics_serves_the_registry_in_text_format(base_url: str, metrics: Metrics) -> None:
    metrics.records_received.labels(source="kinesis").inc(3)
    metrics.model_info.info({"name": "default", "feature_version": "1"})

    status, ctype, body = get(f"{base_url}/metrics")

    assert status == 200
    assert ctype.startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body)
        for s in fam.samples
    }
    assert samples[("detector_records_received_total", (("source", "kinesis"),))] == 3
    assert samples[("detector_model_info", (("feature_version", "1"), ("name", "default")))] == 1


def test_metrics_ignores_a_query_string(base_url: str) -> None:
    status, _, body = get(f"{base_url}/metrics?name[]=x")
    assert status == 200
    assert "detector_events_scored_total" in body


def test_healthz_is_ok_while_the_loop_ticks_and_503_once_it_stalls(
    base_url: str, health: Health, clock: FakeClock
) -> None:
    status, _, body = get(f"{base_url}/healthz")
    assert (status, body) == (200, "ok\n")

    clock.now += 29
    assert get(f"{base_url}/healthz")[0] == 200

    clock.now += 2  # 31 s since construction, which counts as the first tick
    assert get(f"{base_url}/healthz")[0] == 503

    health.tick()
    assert get(f"{base_url}/healthz")[0] == 200


def test_readyz_waits_for_the_model_and_every_registered_source(base_url: str, health: Health) -> None:
    health.set_ready("source:kinesis", False, "connecting to stream trail")

    status, ctype, body = get(f"{base_url}/readyz")
    assert status == 503
    assert ctype == "application/json"
    assert json.loads(body) == {
        "ready": False,
        "not_ready": {"model": "not loaded", "source:kinesis": "connecting to stream trail"},
    }

    health.set_ready("model", True)
    status, _, body = get(f"{base_url}/readyz")
    assert status == 503
    assert json.loads(body)["not_ready"] == {"source:kinesis": "connecting to stream trail"}

    health.set_ready("source:kinesis", True)
    status, _, body = get(f"{base_url}/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True, "not_ready": {}}

    # A source that drops out takes the instance out of rotation again.
    health.set_ready("source:kinesis", False)
    status, _, body = get(f"{base_url}/readyz")
    assert status == 503
    assert json.loads(body)["not_ready"] == {"source:kinesis": "not ready"}


def test_unknown_path_is_404(base_url: str) -> None:
    status, _, body = get(f"{base_url}/")
    assert status == 404
    assert "/metrics" in body


def test_scrapes_are_not_logged_at_info(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        get(f"{base_url}/metrics")
        get(f"{base_url}/healthz")
    assert [r for r in caplog.records if r.name == "detector.http"] == []


def test_a_failing_collector_gives_500_and_probes_keep_working(base_url: str, registry: CollectorRegistry) -> None:
    class Broken:
        def describe(self) -> list[object]:
            return []

        def collect(self) -> list[object]:
            raise RuntimeError("collector bug")

    registry.register(Broken())  # type: ignore[arg-type]

    assert get(f"{base_url}/metrics")[0] == 500
    assert get(f"{base_url}/healthz")[0] == 200


def test_health_ready_reports_what_is_missing(clock: FakeClock) -> None:
    health = Health(clock=clock)
    assert health.ready() == (False, {"model": "not loaded"})
    health.set_ready("model", True, "default@2024-05-01")
    assert health.ready() == (True, {})


def test_health_rejects_a_nonpositive_timeout() -> None:
    with pytest.raises(ValueError, match="liveness_timeout"):
        Health(liveness_timeout=0)


def test_port_is_the_bound_port_and_stop_releases_it(health: Health) -> None:
    server = StatusServer(CollectorRegistry(), health, port=0)
    with pytest.raises(RuntimeError, match="start"):
        _ = server.port
    server.start()
    port = server.port
    assert port > 0
    server.stop()
    server.stop()  # idempotent

    # The port is free again: a new server can take it.
    again = StatusServer(CollectorRegistry(), health, port=port)
    again.start()
    try:
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        again.stop()


def test_a_port_in_use_is_a_config_error_naming_the_address(health: Health) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = StatusServer(CollectorRegistry(), health, port=port)
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            server.start()
