"""The ``kafka`` settings turned into client options, once, for the bridge and the workers.

Both shells talk to the same cluster with the same security settings: aiokafka clients (the
bridge's producer, the topic check, the benchmark's bare consumer) take
:func:`client_options`, the Faust app takes :func:`faust_credentials`. Setting combinations
are checked here rather than in ``settings.py`` because a pydantic error there would quote the
whole ``kafka`` block, password included.
"""

from __future__ import annotations

import ssl
from typing import Any

from detector.errors import ConfigError, SourceError
from detector.settings import Kafka


def check(kafka: Kafka) -> None:
    """Raise ``ConfigError`` for settings that cannot connect; says which key to set."""
    if kafka.security_protocol.startswith("SASL_"):
        if kafka.sasl_mechanism is None:
            raise ConfigError(f"kafka.security_protocol {kafka.security_protocol} needs kafka.sasl_mechanism")
        if not kafka.sasl_username or kafka.sasl_password is None:
            raise ConfigError(
                f"kafka.security_protocol {kafka.security_protocol} needs kafka.sasl_username and "
                "kafka.sasl_password (DETECTOR_KAFKA__SASL_PASSWORD keeps it out of the file)"
            )
    elif kafka.sasl_mechanism is not None:
        raise ConfigError(
            f"kafka.sasl_mechanism is set but kafka.security_protocol is {kafka.security_protocol}; "
            "use SASL_SSL (or SASL_PLAINTEXT on a trusted network)"
        )
    if kafka.ssl_cafile is not None and not kafka.ssl_cafile.is_file():
        raise ConfigError(f"kafka.ssl_cafile {kafka.ssl_cafile}: no such file")
    if kafka.session_timeout_s > kafka.rebalance_timeout_s:
        raise ConfigError("kafka.session_timeout_s must not exceed kafka.rebalance_timeout_s")


def ssl_context(kafka: Kafka) -> ssl.SSLContext | None:
    """A verifying TLS context for SSL/SASL_SSL (system CAs unless ``ssl_cafile``), else None."""
    if not kafka.security_protocol.endswith("SSL"):
        return None
    cafile = str(kafka.ssl_cafile) if kafka.ssl_cafile is not None else None
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)


def compression_type(kafka: Kafka) -> str | None:
    """The producer ``compression_type`` (aiokafka and Faust alike) for ``kafka.compression``."""
    return None if kafka.compression == "none" else kafka.compression


def client_options(kafka: Kafka) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    check(kafka)
    options: dict[str, Any] = {
        "bootstrap_servers": list(kafka.bootstrap_servers),
        "security_protocol": kafka.security_protocol,
    }
    context = ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.sasl_mechanism is not None:
        assert kafka.sasl_password is not None  # check() made sure
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options


def faust_broker(kafka: Kafka) -> list[str]:
    return [f"kafka://{server}" for server in kafka.bootstrap_servers]


def faust_credentials(kafka: Kafka) -> Any:
    """``faust.SASLCredentials`` / ``faust.SSLCredentials`` for the settings, or None (PLAINTEXT)."""
    import faust

    check(kafka)
    context = ssl_context(kafka)
    if kafka.sasl_mechanism is not None:
        assert kafka.sasl_password is not None
        credentials = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=kafka.sasl_mechanism,
        )
        return credentials
    if context is not None:
        return faust.SSLCredentials(context)
    return None


async def ensure_topics(kafka: Kafka, timeout_s: float = 30.0) -> None:
    """Create the events, alerts and dead-letter topics when missing.

    The events topic must have exactly ``kafka.partitions`` partitions: the workers' state
    changelog is created with that many, and a principal's state lives in the changelog
    partition with the number of the events partition its events arrive on.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout_s * 1000), **client_options(kafka))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [kafka.events_topic, kafka.alerts_topic, kafka.dead_letter_topic]
        missing = [
            NewTopic(name, num_partitions=kafka.partitions, replication_factor=kafka.replication_factor)
            for name in wanted
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another bridge or worker won the race
        if kafka.events_topic in existing:
            described = await admin.describe_topics([kafka.events_topic])
            found = len(described[0].get("partitions") or []) if described else 0
            if found and found != kafka.partitions:
                raise ConfigError(
                    f"topic {kafka.events_topic} has {found} partitions but kafka.partitions is "
                    f"{kafka.partitions}; set kafka.partitions to {found} (partitions cannot shrink, and "
                    "the state changelog must match)"
                )
    except KafkaError as exc:
        servers = ",".join(kafka.bootstrap_servers)
        raise SourceError(f"kafka at {servers}: cannot check topics: {exc}; is the broker up and reachable?") from exc
    finally:
        await admin.close()
