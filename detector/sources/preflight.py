"""What a configured source or sink needs from the environment before it can start.

``settings`` checks what the config alone decides (a kinesis source names its stream); this
module checks what the config and the environment decide together: an AWS region, which may
come from ``source.region``, ``AWS_DEFAULT_REGION`` or the AWS profile. No
network call is made. ``detector config check`` and the start of ``run`` and ``bridge`` call
it, so both say the same one line (exit 3) instead of a botocore traceback.
"""

from __future__ import annotations

import re

from botocore.exceptions import BotoCoreError

from detector.errors import SourceError
from detector.settings import Settings

# arn:aws:sns:<region>:<account>:<topic>
_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]+):")
_SET_REGION = "set {key} (or AWS_DEFAULT_REGION in the environment)"


def arn_region(arn: str | None) -> str | None:
    """The region an ARN names (``arn:aws:sns:eu-west-1:...`` -> ``eu-west-1``), or None."""
    m = _ARN_REGION.match(arn or "")
    return m.group(1) if m and m.group(1) else None


def environment_region() -> str | None:
    """The region boto3 would use when none is passed (environment, then the AWS profile).

    Raises ``SourceError`` when ``AWS_PROFILE`` names a profile that does not exist.
    """
    import boto3

    try:
        return boto3.session.Session().region_name
    except BotoCoreError as exc:  # ProfileNotFound and friends: the environment is wrong
        raise SourceError(f"AWS configuration: {exc}") from exc


def problems(settings: Settings) -> list[str]:
    """One line per thing the configured source or sinks lack to start; [] when nothing is missing."""
    out: list[str] = []
    src = settings.source
    needs_region: list[tuple[str, str]] = []  # (what, config key)
    if src.kind == "kinesis" and not src.region:
        needs_region.append((f"source.kind is kinesis (stream {src.stream})", "source.region"))
    if src.kind == "s3" and src.queue_url and not src.region:
        needs_region.append(("source.queue_url (SQS) is set", "source.region"))
    for i, sink in enumerate(settings.sinks):
        if sink.kind == "sns" and not sink.region and not arn_region(sink.topic_arn):
            needs_region.append((f"sinks.{i} is sns", f"sinks.{i}.region"))
    if needs_region:
        try:
            region = environment_region()
        except SourceError as exc:
            return [str(exc)]
        if region is None:
            out += [f"{what} but no AWS region is known: {_SET_REGION.format(key=key)}" for what, key in needs_region]
    return out


def check(settings: Settings) -> None:
    """Raise ``SourceError`` with the first of ``problems``; the runtimes call it before anything starts."""
    found = problems(settings)
    if found:
        raise SourceError(found[0])
