"""What a person at a terminal sees: alert lines, a status line, progress bars (``rich``).

Everything here is for a terminal only; when the stream is not one (a pipe, a file, a log
shipper), nothing here draws anything and the JSON outputs are untouched:

* ``AlertLines``: one line per alert and per update on stdout, instead of its JSON line
  (``detector run --json`` keeps the JSON on a terminal too);
* ``StatusLine``: a transient line on stderr while ``detector run`` warms up and waits for its
  first alert; the JSON log lines print above it, unchanged (not wrapped, not restyled);
* ``Bar``: a progress bar with total and ETA on stderr for simulate, train, replay, evaluate.

Attacker-controlled strings reach the terminal only through ``Alert.to_dict`` (control
characters escaped, lengths capped) and as ``rich.text.Text``, which never parses markup.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from detector.alert import Alert

SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}
ADVICE = ". Confirm with the owner; if unexpected, revoke its credentials."


def is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def what_happened(doc: dict[str, Any]) -> str:
    """The summary without the principal it starts with and the advice it ends with."""
    text = str(doc.get("summary", ""))
    for who in (doc.get("principal_arn"), doc.get("principal")):
        if who and text.startswith(f"{who} "):
            text = text[len(who) + 1 :]
            break
    return text.removesuffix(ADVICE).rstrip(".")


def alert_text(alert: Alert | dict[str, Any]) -> Any:
    """``HIGH  exfiltration  open  <principal>  <what happened, bucket, address>  [account region, time]``.

    ``alert``: an ``Alert``, or its ``to_dict()`` (escaped and capped: safe to print), as the
    JSON lines of ``replay --workers`` carry it."""
    from rich.text import Text

    doc = alert if isinstance(alert, dict) else alert.to_dict()
    sev = str(doc["severity"])
    ctx = doc.get("context") or {}
    status = "open" if doc["status"] == "open" else f"update ({doc['event_count']} events)"
    line = Text()
    line.append(f"{sev.upper():<6}", style=SEVERITY_STYLE.get(sev, ""))
    line.append(f" {doc['kind']:<23}", style="bold")
    line.append(f" {status:<7} ", style="dim" if doc["status"] != "open" else "")
    line.append(str(doc["principal_arn"] or doc["principal"]), style="magenta")
    line.append(f"  {what_happened(doc)}")
    where = " ".join(str(v) for v in (doc.get("account_id"), ctx.get("region"), doc.get("last_event_time")) if v)
    line.append(f"  [{where}]", style="dim")
    return line


class AlertLines:
    """Alert lines on a terminal stream, one per alert and per update.

    ``stream=None`` is ``sys.stdout`` as it is at each line, so while a progress bar is drawn
    (it takes over ``sys.stdout``) the lines print above the bar instead of through it.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=stream, highlight=False, soft_wrap=True)

    def write(self, alert: Alert | dict[str, Any]) -> None:
        self.console.print(alert_text(alert))
        self.console.file.flush()


class _LogsAbove(io.TextIOBase):
    """A stream for the JSON log handler while a status line is drawn: each line is printed
    above it as it is (soft wrap: the terminal folds long lines, rich inserts no newlines)."""

    def __init__(self, console: Any) -> None:
        self._console = console
        self._partial = ""

    def write(self, text: str) -> int:
        from rich.text import Text

        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._console.print(Text(line), soft_wrap=True, highlight=False)
        return len(text)

    def flush(self) -> None:
        self._console.file.flush()


@contextmanager
def _logs_through(console: Any) -> Iterator[None]:
    """Point the stderr log handlers at ``console`` (so they print above the live line), then back."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is console.file
    ]
    previous = [h.setStream(_LogsAbove(console)) for h in handlers]
    try:
        yield
    finally:
        for h, stream in zip(handlers, previous, strict=True):
            h.setStream(stream)


class StatusLine:
    """A transient status line on ``stream`` (stderr) when it is a terminal; a no-op otherwise.

    ``update(text)`` starts it and changes it (at most ``interval_s`` apart, so a hot loop may
    call it every turn); ``stop()`` removes it, before the first alert line is printed.
    """

    def __init__(self, stream: IO[str] | None = None, enabled: bool | None = None, interval_s: float = 0.25) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self.interval_s = interval_s
        self._live: Any = None
        self._logs: Any = None
        self._next = 0.0
        self.stopped = False

    def update(self, text: str) -> None:
        if not self.enabled or self.stopped:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_s
        from rich.spinner import Spinner

        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, highlight=False)
            self._live = Live(
                Spinner("dots", text), console=console, transient=True, redirect_stdout=False, redirect_stderr=False
            )
            self._live.start()
            self._logs = _logs_through(console)
            self._logs.__enter__()
        else:
            self._live.update(Spinner("dots", text))

    def stop(self) -> None:
        self.stopped = True
        if self._live is not None:
            self._live.stop()
            self._logs.__exit__(None, None, None)
            self._live = None


class Bar:
    """A progress bar with total and ETA on stderr when it is a terminal; a no-op otherwise.

    ``update(completed, total=None)`` moves it (``total`` may be set late, or stay None for
    an input of unknown size); ``close()`` leaves the finished bar on screen.
    ``unit="bytes"`` shows sizes (``12.3/45.6 MB``), anything else counts (``3/10 days``).
    """

    def __init__(
        self,
        description: str,
        total: float | None,
        unit: str,
        enabled: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self.description = description
        self.total = total
        self.unit = unit
        self._progress: Any = None
        self._task: Any = None

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        amount = DownloadColumn() if self.unit == "bytes" else MofNCompleteColumn()
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            amount,
            *([] if self.unit == "bytes" else [TextColumn(self.unit)]),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
        ]
        # While drawn, a terminal stdout (replay's alert lines) prints above the bar; a piped one is left alone.
        self._progress = Progress(
            *columns,
            console=Console(file=self.stream),
            redirect_stdout=is_terminal(sys.stdout),
            redirect_stderr=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self.total)

    def update(self, completed: float, total: float | None = None, description: str | None = None) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            self._start()
        if total is not None:
            self.total = total
        fields: dict[str, Any] = {"completed": completed, "total": self.total}
        if description is not None:
            fields["description"] = description
        self._progress.update(self._task, **fields)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
