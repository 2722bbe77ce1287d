"""Alerts appended to a JSON Lines file; ``flush`` fsyncs it (called before every checkpoint).

A crash can leave a half-written last line; it is cut off when the file is opened again, so
the file stays valid JSON Lines (the alert it held is re-emitted by the replay after restart).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from detector.alert import Alert
from detector.errors import SinkError


def _cut_torn_tail(path: Path) -> None:
    try:
        with path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            # walk back to the last newline
            pos = size
            while pos > 0:
                step = min(65536, pos)
                f.seek(pos - step)
                chunk = f.read(step)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    f.truncate(pos - step + nl + 1)
                    return
                pos -= step
            f.truncate(0)
    except FileNotFoundError:
        return


class FileSink:
    def __init__(self, path: Path, name: str = "file") -> None:
        self.name = name
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _cut_torn_tail(self.path)
            self._file: IO[bytes] | None = self.path.open("ab")
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot open {self.path}: {exc.strerror or exc}") from exc

    def add(self, alert: Alert) -> None:
        if self._file is None:
            raise SinkError(f"{self.name}: closed")
        try:
            self._file.write(alert.to_json() + b"\n")
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot write {self.path}: {exc.strerror or exc}") from exc

    def flush(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot sync {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        if self._file is not None:
            try:
                self.flush()
            finally:
                self._file.close()
                self._file = None
