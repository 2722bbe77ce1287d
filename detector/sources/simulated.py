"""The demo source (``source.kind: simulate``): simulated CloudTrail in compressed real time.

The simulator's history days are fast-forwarded as fast as the pipeline takes them, so the
baselines are warm after a few seconds; from ``lead_s`` simulated seconds before the first
labelled attack starts, events are paced at ``speed`` simulated seconds per wall-clock second,
so the alerts appear one after another as they would in production. Records are JSON Lines,
the same bytes a file or Kinesis record would carry.

Generation runs in a child process (``python -m detector.sources.simulated``) that writes
``<event time>\\t<event JSON>`` lines to a pipe, so generating and scoring use two cores and
the demo reaches its first attack in about half the time. The child exits when the pipe
closes, including when this process is killed.

Alerts whose events are on the simulator's history days are not delivered (``warmup_until``):
those days only warm the baselines up, and a cold baseline's "first use" on day one is not
worth a person's attention. They are counted and logged.

The demo always starts from the beginning of its plan (the runtime does not resume it: a demo
resumed at its end would show nothing). Its position is the number of events returned.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO, Any

import orjson

from detector.errors import SourceError
from detector.sources.base import Record

log = logging.getLogger(__name__)

PARTITION = "simulate"
LINES_PER_CHUNK = 500


class SimulatedSource:
    live = True
    name = "simulate"

    def __init__(
        self,
        days: int,
        seed: int,
        speed: float = 600.0,
        lead_s: float = 600.0,
        events_per_record: int = 500,
        max_events_per_poll: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.days = days
        self.seed = seed
        self.speed = speed
        self.lead_s = lead_s
        self.events_per_record = events_per_record
        self.max_events_per_poll = max_events_per_poll
        self._clock = clock
        self._chunks: queue.Queue[list[tuple[float, bytes]] | None] = queue.Queue(maxsize=64)
        self._ready: deque[tuple[float, bytes]] = deque()
        self._child: subprocess.Popen[bytes] | None = None
        self._eof = False
        self._count = 0
        self.pace_from = float("inf")  # simulated time from which events are paced
        self.warmup_until = float("-inf")  # alerts on events before this are not delivered
        self._wall0: float | None = None  # wall clock when pacing began
        self.attacks: list[Any] = []

    @property
    def status(self) -> str:
        if self._child is not None and self._child.poll() not in (None, 0):
            return f"simulator exited with code {self._child.returncode}"
        return ""

    @property
    def exhausted(self) -> bool:
        return self._eof and not self._ready

    def start(self, positions: dict[str, str]) -> None:
        from detector import simulate

        plan = simulate.plan(days=self.days, seed=self.seed)
        self.attacks = sorted(simulate.labels(plan), key=lambda label: label.start)
        if self.attacks:
            self.pace_from = self.attacks[0].start - self.lead_s
        self.warmup_until = plan.test_start
        argv = [sys.executable, "-m", "detector.sources.simulated", "--days", str(self.days), "--seed", str(self.seed)]
        try:
            # its own session: Ctrl-C in the terminal stops the detector, which then stops the child
            self._child = subprocess.Popen(  # noqa: S603
                argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True
            )
        except OSError as exc:
            raise SourceError(f"cannot start the simulator ({' '.join(argv)}): {exc}") from exc
        assert self._child.stdout is not None
        threading.Thread(target=self._read, args=(self._child.stdout,), name="simulate-reader", daemon=True).start()
        log.info(
            "simulation started",
            extra={
                "event": "simulate_start",
                "days": self.days,
                "seed": self.seed,
                "speed": self.speed,
                "attacks": len(self.attacks),
                "first_attack": self.attacks[0].scenario if self.attacks else None,
            },
        )

    def _read(self, pipe: IO[bytes]) -> None:
        chunk: list[tuple[float, bytes]] = []
        for line in pipe:
            t, _, data = line.partition(b"\t")
            chunk.append((float(t), data))
            if len(chunk) >= LINES_PER_CHUNK:
                self._chunks.put(chunk)
                chunk = []
        if chunk:
            self._chunks.put(chunk)
        self._chunks.put(None)

    def _now_sim(self) -> float:
        """Simulated time the wall clock has reached (inf while fast-forwarding)."""
        if self._wall0 is None:
            return float("inf")
        return self.pace_from + (self._clock() - self._wall0) * self.speed

    def _fill(self, timeout_s: float) -> None:
        """Move generated lines into ``_ready``, waiting up to ``timeout_s`` for the first chunk."""
        while not self._eof and len(self._ready) < self.max_events_per_poll:
            try:
                chunk = self._chunks.get(timeout=timeout_s) if timeout_s > 0 else self._chunks.get_nowait()
            except queue.Empty:
                return
            timeout_s = 0
            if chunk is None:
                self._eof = True
                log.info("simulation finished", extra={"event": "simulate_end", "events": self._count})
                return
            self._ready.extend(chunk)

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        if self._child is None:
            raise SourceError("SimulatedSource.poll() before start()")
        deadline = self._clock() + max(timeout_s, 0.0)
        while True:
            self._fill(max(0.0, deadline - self._clock()) if not self._ready else 0.0)
            due = self._take()
            if due or self.exhausted:
                break
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            if self._ready:  # paced: sleep until the next event is due (bounded by the timeout)
                time.sleep(max(0.001, min((self._ready[0][0] - self._now_sim()) / self.speed, remaining)))
        out = []
        for i in range(0, len(due), self.events_per_record):
            part = due[i : i + self.events_per_record]
            self._count += len(part)
            out.append(
                Record(
                    b"".join(part),
                    f"simulate#event={self._count}",
                    "simulate",
                    (PARTITION, str(self._count)),
                    self._clock(),
                )
            )
        return out

    def _take(self) -> list[bytes]:
        """Lines that are due now (all of them while fast-forwarding), at most a poll's worth."""
        ready = self._ready
        out: list[bytes] = []
        now_sim = self._now_sim()
        while ready and len(out) < self.max_events_per_poll:
            t = ready[0][0]
            if self._wall0 is None and t >= self.pace_from:
                self._wall0 = self._clock()
                now_sim = self._now_sim()
                log.info(
                    "fast-forward done; now in compressed real time",
                    extra={"event": "simulate_paced", "events": self._count + len(out), "speed": self.speed},
                )
            if t > now_sim:
                break
            out.append(ready.popleft()[1])
        return out

    def positions(self) -> dict[str, str]:
        return {PARTITION: str(self._count)}

    def commit(self, positions: dict[str, str]) -> None:
        return None

    def stop(self) -> None:
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()
            try:
                self._child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._child.kill()


def _generate(argv: Sequence[str] | None = None) -> int:
    """The child process: ``<event time>\\t<event JSON>`` lines on stdout, in plan order."""
    from detector import simulate
    from detector.decode import parse_event_time

    p = argparse.ArgumentParser(prog="python -m detector.sources.simulated")
    p.add_argument("--days", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    args = p.parse_args(argv)
    out = sys.stdout.buffer
    buf: list[bytes] = []
    try:
        for ev in simulate.iter_events(simulate.plan(days=args.days, seed=args.seed)):
            buf.append(b"%r\t%b\n" % (parse_event_time(ev["eventTime"]), orjson.dumps(ev)))
            if len(buf) >= LINES_PER_CHUNK:
                out.write(b"".join(buf))
                buf = []
        out.write(b"".join(buf))
        out.flush()
    except BrokenPipeError:  # the detector stopped reading: nothing left to do
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())  # no second error at exit
    return 0


if __name__ == "__main__":
    sys.exit(_generate())
