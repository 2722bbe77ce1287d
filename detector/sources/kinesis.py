"""Kinesis Data Streams as a live source: every open shard read concurrently, resharding followed.

One reader thread per shard calls GetRecords at most 5 times a second (the per-shard limit)
and at most ``limit`` (<= 10,000) records a call, and hands the records to the runtime through
a bounded queue of its own, so a slow pipeline slows the readers instead of growing memory.
``poll`` merges the shards in ``ApproximateArrivalTimestamp`` order, and while a shard is behind
(``MillisBehindLatest`` > 0, or not read yet) it waits for that shard's next records rather than
run ahead of it: catching up on a backlog, one shard's records would otherwise be scored hours
before the other's, in an order that depends on thread timing (and so differs after a restart),
with the slower shard's events all late. Per shard:

* ``ProvisionedThroughputExceededException`` (and other throttling codes) -> exponential
  back-off with full jitter for that shard only;
* ``ExpiredIteratorException`` -> a new iterator AFTER_SEQUENCE_NUMBER the last record read
  (or the original start when nothing was read yet);
* no ``NextShardIterator`` -> the shard is closed and drained. Its children (``ParentShardId``,
  ``AdjacentParentShardId`` after a merge) start only once every parent is drained, from
  TRIM_HORIZON, so a principal's events stay in order across a split or merge. Shards are
  re-listed every ``shard_refresh_s`` (and at once when one closes) to find new ones.

Positions are shard -> last sequence number returned by ``poll`` (``END`` once a closed shard
has been drained), so a restart resumes AFTER_SEQUENCE_NUMBER. A record's data is passed on
untouched: raw CloudTrail JSON, an EventBridge envelope or a gzipped CloudWatch Logs
subscription payload are all sniffed by ``decode``.

Errors are handled by AWS error code. A stream that does not exist, missing credentials or
access denied are fatal: one ``SourceError`` line that says what to fix.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from detector.errors import SourceError
from detector.metrics import Metrics
from detector.sources.base import Record, put
from detector.sources.s3 import explain_client_error

log = logging.getLogger(__name__)

END = "END"
MIN_CALL_INTERVAL_S = 0.2  # GetRecords: 5 calls per second per shard
# poll waits for a shard that is behind only this long after its last answer: a shard that is
# throttled or failing for longer must not stop the others (its records then come late).
MERGE_WAIT_S = 10.0
THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "KMSThrottlingException",
        "InternalFailure",
        "ServiceUnavailable",
        "InternalServerError",
    }
)
FATAL = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSNotFoundException",
        "KMSInvalidStateException",
    }
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def kinesis_client(region: str | None, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    # Retries are ours (per shard, with jitter): the SDK's would hide throttling from us.
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=20)
    # A session of its own: credentials are resolved now, from the environment as it is now.
    return boto3.session.Session().client("kinesis", region_name=region, endpoint_url=endpoint_url, config=config)


@dataclass
class Shard:
    shard_id: str
    parents: tuple[str, ...]
    closed: bool  # has an EndingSequenceNumber
    state: str = "waiting"  # waiting -> reading -> drained (or skipped)
    start: dict[str, Any] = field(default_factory=dict)  # GetShardIterator arguments to begin with
    # The reader's hand-over (GetRecords results, then the shard id once drained) and, on the
    # poll side, what was taken from it but not returned yet: (arrival timestamp, record).
    queue: queue.Queue[list[tuple[float, Record]] | str] | None = None
    head: deque[tuple[float, Record]] = field(default_factory=deque)
    behind: bool = True  # the last GetRecords said MillisBehindLatest > 0 (or none came yet)
    heard: float = 0.0  # monotonic time of the reader's start or its last GetRecords answer
    finished: bool = False  # poll returned everything up to the drained marker


class Backoff:
    """Exponential back-off with full jitter; ``reset`` after a success."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempts = 0

    def next(self) -> float:
        self.attempts += 1
        ceiling = min(self.cap_s, self.base_s * (2 ** min(self.attempts, 20)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not security)

    def reset(self) -> None:
        self.attempts = 0


class KinesisSource:
    """Reads one stream; see the module docstring."""

    live = True
    name = "kinesis"

    def __init__(
        self,
        stream: str,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        start: str = "LATEST",
        start_timestamp: dt.datetime | None = None,
        poll_interval_s: float = 1.0,
        shard_refresh_s: float = 30.0,
        limit: int = 10_000,
        metrics: Metrics | None = None,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 10.0,
        max_queued_calls: int = 32,
    ) -> None:
        if not stream:
            raise SourceError("source.kind is kinesis but source.stream is empty; name the stream")
        if start == "AT_TIMESTAMP" and start_timestamp is None:
            raise SourceError("source.start is AT_TIMESTAMP but source.start_timestamp is not set")
        self.stream = stream
        self.region = region
        self.endpoint_url = endpoint_url
        self.client = client
        self.start_type = start
        self.start_timestamp = start_timestamp
        self.poll_interval_s = poll_interval_s
        self.shard_refresh_s = shard_refresh_s
        self.limit = max(1, min(limit, 10_000))
        self.metrics = metrics
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_queued_calls = max_queued_calls
        self._ready = threading.Event()  # a reader handed something over
        self._lock = threading.Lock()
        self._shards: dict[str, Shard] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._positions: dict[str, str] = {}
        self._resumed = False
        self._stop = threading.Event()
        self._relist = threading.Event()
        self._fatal: SourceError | None = None
        self._problems: dict[str, str] = {}
        self._coordinator: threading.Thread | None = None

    # -- the Source protocol ----------------------------------------------------------------------
    @property
    def exhausted(self) -> bool:
        return False

    @property
    def status(self) -> str:
        with self._lock:
            if self._fatal is not None:
                return str(self._fatal)
            if self._problems:
                shard, problem = sorted(self._problems.items())[0]
                more = f" (+{len(self._problems) - 1} shards)" if len(self._problems) > 1 else ""
                return f"{shard}: {problem}{more}"
        return ""

    def start(self, positions: dict[str, str]) -> None:
        if self.client is None:
            try:
                self.client = kinesis_client(self.region, self.endpoint_url)
            except BotoCoreError as exc:  # NoRegionError: sources.preflight says it first, this is the backstop
                raise explain_client_error(exc, f"kinesis stream {self.stream}") from exc
        self._positions = dict(positions)
        self._resumed = bool(positions)
        listed = self._list_shards(fatal=True)
        with self._lock:
            self._merge_listing(listed, initial=True)
            self._schedule()
        self._coordinator = threading.Thread(target=self._coordinate, name=f"kinesis-{self.stream}", daemon=True)
        self._coordinator.start()
        log.info(
            "kinesis source started",
            extra={
                "event": "source_start",
                "source": "kinesis",
                "stream": self.stream,
                "shards": len(listed),
                "resumed": self._resumed,
                "start": self.start_type,
            },
        )

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        if self._fatal is not None:
            raise self._fatal
        out: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while True:
            self._ready.clear()
            self._merge(out, max_records)
            left = deadline - time.monotonic()
            if out or left <= 0 or self._stop.is_set() or self._fatal is not None:
                return out
            self._ready.wait(min(left, 0.05))  # a shard we wait for may be throttled: look again soon

    def _merge(self, out: list[Record], max_records: int) -> None:
        """Append records to ``out`` oldest arrival first, as far as no shard behind could precede them."""
        with self._lock:
            shards = [s for s in self._shards.values() if s.queue is not None and not s.finished]
        while len(out) < max_records:
            for shard in shards:
                self._take(shard)
                if not shard.head and shard.state == "drained" and shard.queue is not None and shard.queue.empty():
                    if not shard.finished:  # a drained shard: everything it had is now returned
                        shard.finished = True
                        with self._lock:
                            self._positions[shard.shard_id] = END
            now = time.monotonic()
            if any(not s.head and s.behind and not s.finished and now - s.heard < MERGE_WAIT_S for s in shards):
                return  # that shard's next records may have arrived before any we hold
            ready = [s for s in shards if s.head]
            if not ready:
                return
            shard = min(ready, key=lambda s: (s.head[0][0], s.shard_id))
            while shard.head and len(out) < max_records:
                _, record = shard.head.popleft()
                out.append(record)
                if (
                    len(ready) > 1
                    and shard.head
                    and shard.head[0][0] > min(s.head[0][0] for s in ready if s is not shard)
                ):
                    break  # another shard's next record arrived earlier
            with self._lock:
                self._positions[shard.shard_id] = out[-1].cursor[1]

    def _take(self, shard: Shard) -> None:
        """Refill ``shard``'s empty head with the next batch its reader handed over.

        One batch at a time: while the merge waits for another shard, this one's reader blocks
        on its full queue instead of its whole backlog piling up here. (The drained marker is
        dropped; the reader sets ``state`` after queueing it.)
        """
        assert shard.queue is not None
        while not shard.head:
            try:
                item = shard.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, list):
                shard.head.extend(item)

    def positions(self) -> dict[str, str]:
        with self._lock:
            return dict(self._positions)

    def commit(self, positions: dict[str, str]) -> None:
        return None

    def stop(self) -> None:
        self._stop.set()
        self._relist.set()
        # Readers may be blocked on a full queue: drain theirs so they see the stop flag.
        deadline = time.monotonic() + 5.0
        threads = [*self._threads.values(), *([self._coordinator] if self._coordinator else [])]
        with self._lock:
            queues = [s.queue for s in self._shards.values() if s.queue is not None]
        for t in threads:
            while t.is_alive() and time.monotonic() < deadline:
                for q in queues:
                    while not q.empty():
                        q.get_nowait()
                t.join(timeout=0.05)

    # -- shards -----------------------------------------------------------------------------------
    def _list_shards(self, fatal: bool) -> list[dict[str, Any]]:
        """Every shard of the stream (ListShards, paginated); throttling is retried here."""
        backoff = Backoff(self.backoff_base_s, self.backoff_cap_s)
        while True:
            shards: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"StreamName": self.stream}
            try:
                while True:
                    resp = self.client.list_shards(**kwargs)
                    shards.extend(resp.get("Shards", []))
                    token = resp.get("NextToken")
                    if not token:
                        return shards
                    kwargs = {"NextToken": token}  # StreamName must not accompany NextToken
            except NoCredentialsError as exc:
                raise explain_client_error(exc, f"kinesis stream {self.stream}") from exc
            except ClientError as exc:
                code = error_code(exc)
                if code in THROTTLED and not self._stop.is_set():
                    self._stop.wait(backoff.next())
                    continue
                if fatal or code in FATAL:
                    raise explain_client_error(exc, f"kinesis stream {self.stream}") from exc
                raise
            except BotoCoreError as exc:
                if fatal:
                    raise explain_client_error(
                        exc, f"kinesis stream {self.stream} at {self.endpoint_url or 'AWS'}"
                    ) from exc
                raise

    def _merge_listing(self, listed: list[dict[str, Any]], initial: bool) -> None:
        """Add new shards (caller holds the lock); decide where each begins."""
        ids = {s["ShardId"] for s in listed}
        for s in listed:
            sid = s["ShardId"]
            closed = bool(s.get("SequenceNumberRange", {}).get("EndingSequenceNumber"))
            known = self._shards.get(sid)
            if known is not None:
                known.closed = known.closed or closed
                continue
            parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p and p in ids)
            shard = Shard(sid, parents, closed)
            pos = self._positions.get(sid)
            if pos == END:
                shard.state = "drained"
            elif pos:
                shard.start = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": pos}
            elif not initial or self._resumed:
                shard.start = {"ShardIteratorType": "TRIM_HORIZON"}  # new since we started: read all of it
            elif self.start_type == "LATEST" and closed:
                shard.state = "skipped"  # closed before we started: nothing in it is new
            elif self.start_type == "AT_TIMESTAMP":
                shard.start = {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": self.start_timestamp}
            else:
                shard.start = {"ShardIteratorType": self.start_type}
            self._shards[sid] = shard
        # Shards gone from the listing (past retention) need no position any more.
        for sid in [s for s in self._positions if s not in ids]:
            del self._positions[sid]

    def _schedule(self) -> None:
        """Start a reader for each waiting shard whose parents are drained (caller holds the lock)."""
        for shard in self._shards.values():
            if shard.state != "waiting":
                continue
            if any(self._shards[p].state not in ("drained", "skipped") for p in shard.parents if p in self._shards):
                continue
            shard.state = "reading"
            # the bound on calls held is shared out: the merge needs a batch of every shard at once
            open_shards = sum(s.state in ("waiting", "reading") for s in self._shards.values())
            shard.queue = queue.Queue(maxsize=max(1, self.max_queued_calls // max(1, open_shards)))
            shard.heard = time.monotonic()
            t = threading.Thread(target=self._read_shard, args=(shard,), name=f"kinesis-{shard.shard_id}", daemon=True)
            self._threads[shard.shard_id] = t
            t.start()

    def _coordinate(self) -> None:
        """Re-list shards periodically (or when one closes) and start readers for new ones."""
        backoff = Backoff(self.backoff_base_s, self.backoff_cap_s)
        while not self._stop.is_set():
            self._relist.wait(self.shard_refresh_s)
            self._relist.clear()
            if self._stop.is_set():
                return
            try:
                listed = self._list_shards(fatal=False)
            except SourceError as exc:
                with self._lock:
                    self._fatal = exc
                return
            except (ClientError, BotoCoreError) as exc:
                with self._lock:
                    self._problems["ListShards"] = f"cannot list shards: {exc}"
                self._stop.wait(backoff.next())
                self._relist.set()
                continue
            backoff.reset()
            with self._lock:
                self._problems.pop("ListShards", None)
                self._merge_listing(listed, initial=False)
                self._schedule()

    # -- one shard --------------------------------------------------------------------------------
    def _iterator(self, shard: Shard, last_seq: str | None) -> str | None:
        args = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": last_seq}
            if last_seq
            else shard.start
        )
        resp = self.client.get_shard_iterator(StreamName=self.stream, ShardId=shard.shard_id, **args)
        return resp.get("ShardIterator")

    def _problem(self, shard_id: str, text: str | None) -> None:
        with self._lock:
            if text is None:
                self._problems.pop(shard_id, None)
            else:
                self._problems[shard_id] = text

    def _read_shard(self, shard: Shard) -> None:
        sid = shard.shard_id
        backoff = Backoff(self.backoff_base_s, self.backoff_cap_s)
        last_seq: str | None = None
        iterator: str | None = None
        next_call = 0.0
        gauge = self.metrics.millis_behind_latest.labels(sid) if self.metrics is not None else None
        while not self._stop.is_set():
            wait = next_call - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            next_call = time.monotonic() + MIN_CALL_INTERVAL_S
            try:
                if iterator is None:
                    iterator = self._iterator(shard, last_seq)
                    if iterator is None:
                        break  # a closed shard past its end
                resp = self.client.get_records(ShardIterator=iterator, Limit=self.limit)
            except ClientError as exc:
                code = error_code(exc)
                if code == "ExpiredIteratorException":
                    iterator = None
                    log.info("shard iterator expired; re-acquiring", extra={"event": "iterator_expired", "shard": sid})
                    continue
                if code in THROTTLED:
                    delay = backoff.next()
                    self._problem(sid, f"throttled ({code}); backing off {delay:.1f}s")
                    next_call = time.monotonic() + delay
                    continue
                if code in FATAL:
                    with self._lock:
                        self._fatal = explain_client_error(exc, f"kinesis stream {self.stream} shard {sid}")
                    return
                delay = backoff.next()
                self._problem(sid, f"{code or 'error'}: {exc}")
                log.warning(
                    "GetRecords failed; retrying",
                    extra={"event": "source_error", "shard": sid, "code": code, "retry_in_s": round(delay, 2)},
                )
                next_call = time.monotonic() + delay
                continue
            except NoCredentialsError as exc:
                with self._lock:
                    self._fatal = explain_client_error(exc, f"kinesis stream {self.stream}")
                return
            except BotoCoreError as exc:  # connection refused, timeouts: the endpoint may come back
                delay = backoff.next()
                self._problem(sid, f"unreachable: {exc}")
                next_call = time.monotonic() + delay
                continue
            backoff.reset()
            self._problem(sid, None)
            now, wall = time.monotonic(), time.time()
            records = [
                (
                    _arrived(r, wall),
                    Record(
                        data=r["Data"],
                        position=f"kinesis:{self.stream}/{sid}:{r['SequenceNumber']}",
                        source="kinesis",
                        cursor=(sid, r["SequenceNumber"]),
                        arrival=now,
                    ),
                )
                for r in resp.get("Records", [])
            ]
            behind = resp.get("MillisBehindLatest")
            if gauge is not None and behind is not None:
                gauge.set(behind)
            if records:
                last_seq = records[-1][1].cursor[1]
                if not self._put(shard, records):
                    return
            shard.behind = bool(behind) and resp.get("NextShardIterator") is not None  # after the hand-over
            shard.heard = time.monotonic()
            self._ready.set()
            iterator = resp.get("NextShardIterator")
            if iterator is None:
                break
            if not records and not behind:
                next_call = time.monotonic() + self.poll_interval_s  # caught up: no need to spin
        if self._stop.is_set():
            return
        # Drained: tell poll() (after this shard's last records) and let the children start.
        if not self._put(shard, sid):
            return
        with self._lock:
            shard.state = "drained"
            shard.behind = False
            self._schedule()
        self._ready.set()
        if self.metrics is not None:
            try:
                self.metrics.millis_behind_latest.remove(sid)
            except KeyError:
                pass
        log.info("shard drained", extra={"event": "shard_drained", "shard": sid, "stream": self.stream})
        self._relist.set()

    def _put(self, shard: Shard, item: list[tuple[float, Record]] | str) -> bool:
        assert shard.queue is not None
        return put(shard.queue, item, self._stop)


def _arrived(record: dict[str, Any], default: float) -> float:
    """A record's ``ApproximateArrivalTimestamp`` as Unix seconds (``default`` if it has none)."""
    stamp = record.get("ApproximateArrivalTimestamp")
    return stamp.timestamp() if isinstance(stamp, dt.datetime) else default
