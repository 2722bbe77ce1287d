"""Shared fixtures: real test servers, fake AWS credentials, boto3 clients and the shared corpus.

Servers are session-scoped and start only when a test asks for them, so a unit-test run starts
nothing. Tests under tests/integration/ (and any test using a server fixture) get the
`integration` marker; nothing is skipped by default, `-m "not integration"` deselects them.
Each server's start-up time is printed in the terminal summary.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

# `python -m pytest` (the README's command) puts the project root on sys.path, plain `pytest`
# does not; without it `tests.services` would not import. (pythonpath = ["."] in the pytest
# settings would do the same.)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services import PROJECT_ROOT, Service, start_kinesalite, start_moto, start_tansu

AWS_REGION = "us-east-1"
SERVER_FIXTURES = frozenset({"moto_server", "kinesalite", "kafka_broker"})

_started: list[Service] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration_dir = Path(__file__).parent / "integration"
    for item in items:
        in_dir = integration_dir in Path(str(item.path)).parents
        if in_dir or SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _started:
        return
    times = ", ".join(f"{s.name} {s.startup_s:.2f}s" for s in _started)
    terminalreporter.write_line(f"test servers started: {times}")


def _serve(start: Callable[..., Service], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start(log_dir=tmp_path_factory.mktemp("services"))
    _started.append(service)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """moto_server on 127.0.0.1; `.endpoint` is "http://127.0.0.1:PORT". Shared by the session:
    give every stream, bucket and log group a unique name."""
    yield from _serve(start_moto, tmp_path_factory)


@pytest.fixture(scope="session")
def kinesalite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """kinesalite on 127.0.0.1 (streams ACTIVE almost at once); `.endpoint` is "http://127.0.0.1:PORT"."""
    yield from _serve(start_kinesalite, tmp_path_factory)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """tansu Kafka-protocol broker, in-memory; `.endpoint` is the bootstrap "127.0.0.1:PORT"."""
    yield from _serve(start_tansu, tmp_path_factory)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and region in the environment, so boto3 can never reach real AWS
    with a developer's own credentials, profile or instance role."""
    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": AWS_REGION,
        "AWS_REGION": AWS_REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        # Point at files that do not exist so ~/.aws is never read.
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for name, value in fake.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)


BotoClientFactory = Callable[[str, "str | Service"], Any]


@pytest.fixture
def boto_client_factory(aws_env: None) -> BotoClientFactory:
    """`make(service, endpoint)` -> a boto3 client for `service` ("kinesis", "s3", "logs", ...)
    talking to `endpoint` (a URL or a `Service`), with fake credentials and short timeouts."""
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 2, "mode": "standard"},
        s3={"addressing_style": "path"},  # moto serves buckets by path on 127.0.0.1
    )

    def make(service: str, endpoint: str | Service) -> Any:
        url = endpoint.endpoint if isinstance(endpoint, Service) else endpoint
        return boto3.client(
            service,
            endpoint_url=url,
            region_name=AWS_REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )

    return make


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared sample corpus: $DETECTOR_CORPUS_DIR, else ../shared/corpus beside the project."""
    path = Path(os.environ.get("DETECTOR_CORPUS_DIR") or PROJECT_ROOT.parent / "shared" / "corpus")
    if not path.is_dir():
        pytest.fail(
            f"corpus directory {path} is missing: the shared/ folder must sit beside the project "
            "checkout (or set DETECTOR_CORPUS_DIR to the corpus folder)",
            pytrace=False,
        )
    return path.resolve()
