"""One ``detector run`` per ``state_dir``: an exclusive ``flock`` on ``state_dir/run.lock``.

Two runtimes on one directory would both write the same checkpoint and dead-letter file, each
overwriting the other's positions and baselines. The lock is held for the life of the process
(the kernel drops it when the process dies, even on SIGKILL, so a stale file never blocks a
restart); the file holds the holder's PID so the refusal can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from detector.errors import InUseError

LOCK_NAME = "run.lock"


class StateDirLock:
    """``with StateDirLock(dir):`` holds the lock, or raises ``InUseError`` naming the holder."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise InUseError(
                f"state_dir {self.path.parent} is in use by another detector run (pid {holder}); "
                "stop it, or give this one its own state_dir (DETECTOR_STATE_DIR)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            # The file stays: removing it would let a third process lock a new inode while a
            # second still waits on the old one.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateDirLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
