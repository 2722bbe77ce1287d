"""Local files, directories or stdin as a live-runtime source (``source.kind: file | stdin``).

Files are finite and replayable: they are read in the order ``sources/file.py`` lists them
(delivery time in the name, then path),
JSON Lines files in chunks of ``lines_per_record`` lines (so a position can point inside a
big file), everything else one file per record. The position of each path spec is
``<file>#<lines read>`` (``#*`` once a whole file is done), so a restart resumes after the
last record the checkpoint covers.

stdin is read in a thread (a pipe like ``tail -F trail.jsonl | detector run`` blocks) and is
live and not resumable: a pipe cannot be rewound.
"""

from __future__ import annotations

import bisect
import gzip
import itertools
import logging
import os
import queue
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from detector.errors import SourceError
from detector.sources.base import Record
from detector.sources.file import (
    SIMULATOR_METADATA,
    SetAside,
    Unreadable,
    delivery_order,
    is_simulator_metadata,
    list_files,
    read_file,
)

LINE_SUFFIXES = (".jsonl", ".ndjson")
WHOLE = "*"
log = logging.getLogger(__name__)


def _iter_file(path: Path, skip_lines: int, lines_per_record: int) -> Iterator[tuple[bytes, str]]:
    """(blob, offset) for one file; JSON Lines are chunked, anything else is one blob."""
    if is_simulator_metadata(path):
        yield SetAside.of(SIMULATOR_METADATA), WHOLE
        return
    try:
        if path.name.endswith(LINE_SUFFIXES) or path.name.endswith(tuple(s + ".gz" for s in LINE_SUFFIXES)):
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rb") as f:
                lines = itertools.islice(f, skip_lines, None)
                n = skip_lines
                while True:
                    chunk = list(itertools.islice(lines, lines_per_record))
                    if not chunk:
                        break
                    n += len(chunk)
                    yield b"".join(chunk), str(n)
            return
        if skip_lines == 0:
            yield read_file(path), WHOLE
    except (OSError, EOFError, zlib.error) as exc:  # unreadable, or a .jsonl.gz cut short mid-stream
        yield Unreadable.because(exc), WHOLE  # the file is done: a resume moves on to the next


class FileSource:
    """Every file under ``paths``, once, in name order."""

    live = False
    name = "file"

    def __init__(self, paths: tuple[str, ...] | list[str], lines_per_record: int = 1000) -> None:
        if not paths:
            raise SourceError("source.kind is file but source.paths is empty; list files or directories")
        self.paths = [str(p) for p in paths]
        self.lines_per_record = lines_per_record
        self._positions: dict[str, str] = {}
        self._iter: Iterator[Record] | None = None
        self._done = False

    @property
    def status(self) -> str:
        return ""

    @property
    def exhausted(self) -> bool:
        return self._done

    def start(self, positions: dict[str, str]) -> None:
        for spec in self.paths:
            if not Path(spec).exists():
                raise SourceError(f"{spec}: no such file or directory (source.paths)")
        self._positions = {k: v for k, v in positions.items() if k in self.paths}
        self._iter = self._records()

    def _records(self) -> Iterator[Record]:
        for spec in self.paths:
            files = list_files(Path(spec))
            first, skip = 0, 0
            resume = self._positions.get(spec)
            if resume:
                name, _, lines = resume.rpartition("#")
                after = Path(name)
                if after in files:
                    first = files.index(after)
                else:  # the file is gone: start where it would sort in list_files' order
                    first = bisect.bisect_right([delivery_order(f) for f in files], delivery_order(after))
                    lines = WHOLE
                if lines == WHOLE:
                    first += 1
                else:
                    skip = int(lines)
            for i, path in enumerate(files[first:]):
                for data, offset in _iter_file(path, skip if i == 0 else 0, self.lines_per_record):
                    pos = f"{path}#{offset}"
                    yield Record(data, f"{path}" if offset == WHOLE else pos, "file", (spec, pos), time.monotonic())

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        if self._iter is None:
            raise SourceError("FileSource.poll() before start()")
        out = list(itertools.islice(self._iter, max(1, max_records)))
        for r in out:
            self._positions[r.cursor[0]] = r.cursor[1]
        if not out:
            self._done = True
        return out

    def positions(self) -> dict[str, str]:
        return dict(self._positions)

    def commit(self, positions: dict[str, str]) -> None:
        return None

    def stop(self) -> None:
        self._iter = None


class StdinSource:
    """JSON Lines on stdin, read by a daemon thread; exhausted at end of input."""

    live = True
    name = "stdin"

    def __init__(self, lines_per_record: int = 1000) -> None:
        self.lines_per_record = lines_per_record
        self._lines: queue.Queue[bytes | None] = queue.Queue(maxsize=100_000)
        self._eof = False
        self._read_lines = 0

    @property
    def status(self) -> str:
        return ""

    @property
    def exhausted(self) -> bool:
        return self._eof

    def start(self, positions: dict[str, str]) -> None:
        threading.Thread(target=self._read, name="stdin-reader", daemon=True).start()

    def _read(self) -> None:
        # os.read on the descriptor, not sys.stdin.buffer: a daemon thread blocked inside the
        # buffered reader holds its lock, and interpreter shutdown (SIGTERM) then aborts.
        rest = b""
        try:
            while chunk := os.read(sys.stdin.fileno(), 1 << 16):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    self._lines.put(line + b"\n")
        except OSError as exc:  # a closed or unreadable stdin ends the input like EOF does
            log.warning("cannot read stdin; treating it as ended", extra={"event": "source_error", "detail": str(exc)})
        if rest:
            self._lines.put(rest)
        self._lines.put(None)

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Whatever lines are there, as records of up to ``lines_per_record`` lines each."""
        try:
            line = self._lines.get(timeout=timeout_s) if timeout_s > 0 else self._lines.get_nowait()
        except queue.Empty:
            return []
        out: list[Record] = []
        buf: list[bytes] = []
        while line is not None:
            buf.append(line)
            if len(buf) >= self.lines_per_record:
                out.append(self._record(buf))
                buf = []
                if len(out) >= max_records:
                    break
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
        else:
            self._eof = True
        if buf:
            out.append(self._record(buf))
        return out

    def _record(self, lines: list[bytes]) -> Record:
        first = self._read_lines + 1
        self._read_lines += len(lines)
        return Record(b"".join(lines), f"stdin#lines={first}-{self._read_lines}", "stdin", arrival=time.monotonic())

    def positions(self) -> dict[str, str]:
        return {}

    def commit(self, positions: dict[str, str]) -> None:
        return None

    def stop(self) -> None:
        return None
