"""Alerts as JSON Lines on stdout (the demo's sink); a short human line on stderr when it is a terminal."""

from __future__ import annotations

import sys
from typing import IO

from detector.alert import Alert, iso
from detector.errors import SinkError
from detector.textsafe import clip


def human_line(alert: Alert) -> str:
    who = clip(alert.principal_arn or alert.principal, 120)
    return f"ALERT {alert.severity:<6} {alert.kind:<24} {iso(alert.first_event_time)} {who}  score={alert.score:.2f}\n"


class StdoutSink:
    def __init__(self, out: IO[bytes] | None = None, human: IO[str] | None = None, name: str = "stdout") -> None:
        self.name = name
        self.out = out if out is not None else sys.stdout.buffer
        self.human = human if human is not None else (sys.stderr if sys.stderr.isatty() else None)

    def add(self, alert: Alert) -> None:
        try:
            self.out.write(alert.to_json() + b"\n")
            # A person is watching: show it now rather than at the next checkpoint.
            self.out.flush()
            if self.human is not None and alert.status == "open":
                self.human.write(human_line(alert))
                self.human.flush()
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
