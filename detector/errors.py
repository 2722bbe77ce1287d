"""One exception root for the detector.

Each subclass also derives from the builtin it means, so callers can catch either
(``except ValueError`` still catches a bad config value).
"""

from __future__ import annotations


class DetectorError(Exception):
    """Root of every error the detector raises on purpose."""


class ConfigError(DetectorError, ValueError):
    """A config file or environment override is invalid; the message names file and key."""


class DecodeError(DetectorError, ValueError):
    """A record could not be turned into CloudTrail events.

    ``reason`` is a short, bounded code used as a metric label (``invalid_json``,
    ``truncated_gzip``, ...); ``position`` names the file/shard and offset.
    """

    def __init__(self, reason: str, detail: str, position: str = "") -> None:
        super().__init__(f"{position}: {reason}: {detail}" if position else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.position = position


class ModelError(DetectorError, ValueError):
    """A model artifact is missing, tampered with, or does not match this code's features."""


class SourceError(DetectorError, RuntimeError):
    """A source (Kinesis stream, S3 bucket, file) cannot be read; the message says how to fix it."""


class SinkError(DetectorError, RuntimeError):
    """An alert sink failed to deliver; callers retry and spool."""


class Backpressure(DetectorError):
    """A downstream is saturated; ``retry_after`` seconds is how long to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InUseError(DetectorError, RuntimeError):
    """Another process holds what this one needs to itself (a ``state_dir``); the message names its PID."""


class UsageError(ConfigError):
    """An option or setting that cannot be used as given: ``--test-days`` not below ``--days``,
    a ``metrics.port`` already in use. The message names the option or key and what to change.

    A ``ConfigError`` (exit 2) for callers that catch those; the CLI prints it without the
    "config error" label, since the config file may be fine.
    """
