"""Amazon SNS sink: ``Publish`` each alert (JSON message, subject from severity and kind).

Delivery goes through the spool (``spool.py``), so a throttled or unreachable SNS never
blocks the pipeline. Limits are SNS's: the subject is ASCII, at most 100 characters, no
line breaks; a message over 256 KiB drops its explanation and event IDs (``truncated``).
``kind`` and ``severity`` are also message attributes, for subscription filter policies.
Errors are by code: throttling and server errors are retried, invalid parameters are not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from detector.metrics import Metrics
from detector.sinks.spool import DeliveryError, SpooledSink

MAX_MESSAGE_BYTES = 256 * 1024
MAX_SUBJECT = 100
NOT_RETRYABLE = frozenset({"InvalidParameter", "InvalidParameterValue", "ValidationError", "InvalidParameterException"})


def subject(alert: dict[str, Any]) -> str:
    who = alert.get("principal_arn") or alert.get("principal", "")
    text = f"[{alert.get('severity', '')}] {alert.get('kind', 'alert')}: {who}"
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return text[: MAX_SUBJECT - 1] + "~" if len(text) > MAX_SUBJECT else text


def message(payload: bytes, alert: dict[str, Any]) -> str:
    if len(payload) <= MAX_MESSAGE_BYTES:
        return payload.decode()
    slim = {k: v for k, v in alert.items() if k not in ("explanation", "event_ids", "context")}
    slim["truncated"] = True
    return orjson.dumps(slim).decode()[:MAX_MESSAGE_BYTES]


class SnsTransport:
    def __init__(
        self,
        topic_arn: str,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=timeout_s, read_timeout=timeout_s
            )
            from detector.sources.preflight import arn_region

            # The topic's ARN names its region: a sink needs no region of its own.
            client = boto3.session.Session().client(
                "sns", region_name=region or arn_region(topic_arn), endpoint_url=endpoint_url, config=config
            )
        self.topic_arn = topic_arn
        self.client = client

    def send(self, payload: bytes, alert: dict[str, Any]) -> None:
        attributes = {
            name: {"DataType": "String", "StringValue": str(alert.get(name) or "unknown")}
            for name in ("kind", "severity")
        }
        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Message=message(payload, alert),
                Subject=subject(alert),
                MessageAttributes=attributes,
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise DeliveryError(f"sns publish: {code}: {exc}", retryable=code not in NOT_RETRYABLE) from exc
        except BotoCoreError as exc:
            raise DeliveryError(f"sns publish: {exc}") from exc


def sns_sink(
    name: str,
    topic_arn: str,
    spool_dir: Path,
    metrics: Metrics | None = None,
    max_retries: int = 5,
    region: str | None = None,
    endpoint_url: str | None = None,
    timeout_s: float = 5.0,
    client: Any = None,
    **kwargs: Any,
) -> SpooledSink:
    transport = SnsTransport(topic_arn, client, region, endpoint_url, timeout_s)
    return SpooledSink(name, transport, spool_dir, metrics, max_retries, **kwargs)
