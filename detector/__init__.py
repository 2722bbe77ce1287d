"""Streaming anomaly and exfiltration detector for AWS CloudTrail."""

__version__ = "0.1.0"
