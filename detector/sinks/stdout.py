"""Alerts on stdout (the demo's sink): JSON Lines, or one readable line each on a terminal.

``format="auto"`` (the default) writes a line per alert and per update through
``terminal.AlertLines`` when stdout is a terminal, and the full JSON line otherwise (a pipe,
a file, a log shipper); ``"json"`` always writes JSON (``detector run --json``).
"""

from __future__ import annotations

import sys
from typing import IO, Literal

from detector.alert import Alert
from detector.errors import SinkError
from detector.terminal import AlertLines, is_terminal

Format = Literal["auto", "json", "lines"]


class StdoutSink:
    def __init__(
        self,
        out: IO[bytes] | None = None,
        name: str = "stdout",
        format: Format = "auto",
        text: IO[str] | None = None,
    ) -> None:
        self.name = name
        self.out = out if out is not None else sys.stdout.buffer
        stream = text if text is not None else sys.stdout
        lines = format == "lines" or (format == "auto" and is_terminal(stream))
        self.lines = AlertLines(stream) if lines else None

    def add(self, alert: Alert) -> None:
        try:
            if self.lines is not None:
                self.lines.write(alert)
                return
            self.out.write(alert.to_json() + b"\n")
            # A person (or a pipe to one) may be watching: show it now rather than at the next checkpoint.
            self.out.flush()
        except (OSError, ValueError) as exc:  # BrokenPipeError, or the stream was closed
            raise SinkError(f"{self.name}: cannot write alerts: {exc}") from exc

    def flush(self) -> None:
        try:
            self.out.flush()
        except (OSError, ValueError) as exc:
            raise SinkError(f"{self.name}: cannot flush alerts: {exc}") from exc

    def close(self) -> None:
        try:
            self.out.flush()
        except (OSError, ValueError):
            pass
