"""What every alert sink provides.

``add`` hands over one alert and must not block the pipeline for long; ``flush`` is called
at each checkpoint and returns only when every alert added so far is delivered or safely
spooled to disk (if ``flush`` raises, the checkpoint is aborted and the batch will be
replayed; alert IDs are deterministic, so receivers can deduplicate).
"""

from __future__ import annotations

from typing import Protocol

from detector.alert import Alert


class Sink(Protocol):
    name: str  # bounded label for metrics: "stdout", "file", "webhook", "sns", "kafka"

    def add(self, alert: Alert) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
