"""CloudTrail's S3 archive as a live source: backfill a time range, then follow new files.

CloudTrail writes ``<prefix><account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_
<YYYYMMDDTHHMMZ>_<random>.json.gz`` (organization trails add ``o-xxxx/`` before the account).
Each account/region folder is one partition; keys sort by delivery time, so a partition is
read with ``ListObjectsV2(StartAfter=<last key>)``:

* **backfill**: from ``start_timestamp`` (or the beginning with TRIM_HORIZON, or the last
  15 minutes with LATEST) up to ``end_timestamp`` (by delivery time, +15 min for delivery lag);
* **follow**: the same listing every ``poll_interval_s``; new account/region prefixes are
  looked for every ``rediscover_s`` (0: at every listing, so a new partition's first file is
  read at the listing cadence, not minutes late). Files of one delivery minute can
  land out of key order, so each listing starts ``RELIST_MARGIN_S`` of delivery time before
  the last key and skips the keys already read. The keys returned inside that margin are part of
  the positions (``<partition>#read``), so a restart skips them too: eventID dedup spans only the
  last hour of event time, and a quiet partition's last files can be hours older than that;
* **GetObject errors** on one object (SlowDown, InternalError, a read timeout) are retried
  ``get_attempts`` times with back-off; then the object becomes an ``Unreadable`` record, which
  ``Ingest`` counts and dead-letters with its key and the reason, and the source goes on.
  ``get_failures`` counts them by error code. Errors that concern every object (no
  credentials, no bucket) still stop the source with one ``SourceError``. Objects over
  ``decode.MAX_BLOB_BYTES`` are refused from ``ContentLength`` or while streaming ``Body``;
* **SQS** (``queue_url``): S3 event notifications (direct, through SNS, EventBridge, or
  CloudTrail's own SNS ``s3ObjectKey`` message) name the new files; a message is deleted only
  after a checkpoint covers every file it named (``commit``).

Accounts and regions are listed from the bucket unless configured. Listing and GetObject run
in a background thread (GetObject in a small pool) and hand records over a bounded queue;
partitions are merged in delivery-time order.
"""

from __future__ import annotations

import calendar
import concurrent.futures
import datetime as dt
import logging
import queue
import re
import threading
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from detector.errors import SourceError
from detector.sources.base import Record, drain, put
from detector.sources.file import TooLarge, Unreadable, read_capped
from detector.sources.s3 import explain_client_error, s3_client

log = logging.getLogger(__name__)

RELIST_MARGIN_S = 900  # delivery-time margin re-listed behind the last key
DELIVERY_LAG_S = 900  # files are delivered up to ~15 min after their events
LATEST_LOOKBACK_S = 900
KEYS_PER_ROUND = 200
FETCH_WORKERS = 8
QUEUE = "sqs"
READ_SUFFIX = "#read"  # positions key: the keys of a partition returned inside the relist margin
# GetObject errors that concern the whole source, not one object: retrying or dead-lettering
# object after object would only lose them all.
SOURCE_WIDE_CODES = frozenset(
    {"NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "AccountProblem"}
)
# Errors of one object that no retry fixes: dead-letter it at once.
PERMANENT_CODES = frozenset({"AccessDenied", "InvalidObjectState", "403", "InvalidRange"})
_NAME_TIME = re.compile(r"_CloudTrail_[^_/]+_(\d{8}T\d{4})Z_")
_DONE = "done"


def delivery_time(key: str) -> float | None:
    """The delivery time encoded in a CloudTrail file name, or None."""
    m = _NAME_TIME.search(key.rsplit("/", 1)[-1])
    if not m:
        return None
    return float(calendar.timegm(time.strptime(m.group(1), "%Y%m%dT%H%M")))


def key_marker(base: str, t: float) -> str:
    """A StartAfter key just before every file of ``base`` delivered at or after ``t``."""
    parts = base.rstrip("/").split("/")  # [..., account, "CloudTrail", region]
    account, region = parts[-3], parts[-1]
    when = time.gmtime(max(t, 0))
    return f"{base}{time.strftime('%Y/%m/%d', when)}/{account}_CloudTrail_{region}_{time.strftime('%Y%m%dT%H%M', when)}"


def is_trail_key(key: str) -> bool:
    return key.endswith((".json.gz", ".json")) and "/CloudTrail-Digest/" not in key


def objects_in_message(body: str) -> list[tuple[str, str]]:
    """(bucket, key) pairs an SQS message names; [] for test events and anything else."""
    try:
        msg = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(msg, dict):
        return []
    if msg.get("Type") == "Notification" and isinstance(msg.get("Message"), str):
        return objects_in_message(msg["Message"])  # SNS envelope
    out: list[tuple[str, str]] = []
    if isinstance(msg.get("s3ObjectKey"), list) and isinstance(msg.get("s3Bucket"), str):
        out = [(msg["s3Bucket"], k) for k in msg["s3ObjectKey"] if isinstance(k, str)]  # CloudTrail's SNS
    elif isinstance(msg.get("detail"), dict) and msg.get("source") == "aws.s3":  # EventBridge
        d = msg["detail"]
        bucket, obj = d.get("bucket"), d.get("object")
        if isinstance(bucket, dict) and isinstance(obj, dict):
            out = [(str(bucket.get("name")), urllib.parse.unquote_plus(str(obj.get("key"))))]
    elif isinstance(msg.get("Records"), list):  # S3 event notification
        for r in msg["Records"]:
            s3 = r.get("s3") if isinstance(r, dict) else None
            if isinstance(s3, dict) and str(r.get("eventName", "")).startswith("ObjectCreated"):
                out.append((str(s3["bucket"]["name"]), urllib.parse.unquote_plus(str(s3["object"]["key"]))))
    return [(b, k) for b, k in out if is_trail_key(k)]


def _read_keys(value: str) -> list[str]:
    """The keys of a ``<partition>#read`` position (a JSON array); [] if it is not one."""
    try:
        keys = orjson.loads(value)
    except orjson.JSONDecodeError:
        return []
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


class S3Source:
    """See the module docstring. ``live`` is False for a pure backfill (finite, batched by count)."""

    name = "s3"

    def __init__(
        self,
        bucket: str | None,
        prefix: str = "AWSLogs/",
        accounts: tuple[str, ...] = (),
        regions: tuple[str, ...] = (),
        start: str = "LATEST",
        start_timestamp: dt.datetime | None = None,
        end_timestamp: dt.datetime | None = None,
        follow: bool = True,
        queue_url: str | None = None,
        poll_interval_s: float = 10.0,
        client: Any = None,
        sqs_client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        visibility_timeout_s: int = 300,
        rediscover_s: float = 0.0,
        get_attempts: int = 4,
        get_backoff_s: float = 0.5,
    ) -> None:
        if not bucket and not queue_url:
            raise SourceError("source.kind is s3 but neither source.bucket nor source.queue_url is set")
        self.bucket = bucket or ""
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.accounts = accounts
        self.regions = regions
        self.start_type = start
        self.start_ts = start_timestamp.timestamp() if start_timestamp else None
        self.end_ts = end_timestamp.timestamp() if end_timestamp else None
        self.follow = follow
        self.queue_url = queue_url
        self.poll_interval_s = poll_interval_s
        self.client = client
        self.sqs = sqs_client
        self.region = region
        self.endpoint_url = endpoint_url
        self.visibility_timeout_s = visibility_timeout_s
        self.rediscover_s = rediscover_s
        self.get_attempts = max(1, get_attempts)
        self.get_backoff_s = get_backoff_s
        self.get_failures: Counter[str] = Counter()  # objects dead-lettered, by error code
        self.live = bool(follow)
        self._queue: queue.Queue[list[Record] | tuple[str, Any]] = queue.Queue(maxsize=64)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._positions: dict[str, str] = {}
        self._cursors: dict[str, str] = {}  # reader's own listing cursor per partition
        self._recent: dict[str, dict[str, float]] = {}  # partition -> keys read inside the margin
        self._returned: dict[str, dict[str, float]] = {}  # partition -> keys poll returned inside the margin
        self._fatal: SourceError | None = None
        self._problem = ""
        self._done = False
        # SQS bookkeeping: message id -> [receipt handle, records not yet returned, returned at poll #]
        self._messages: dict[str, list[Any]] = {}
        self._polls = 0

    # -- the Source protocol ----------------------------------------------------------------------
    @property
    def exhausted(self) -> bool:
        return self._done

    @property
    def status(self) -> str:
        return str(self._fatal) if self._fatal else self._problem

    def start(self, positions: dict[str, str]) -> None:
        try:
            if self.client is None:
                self.client = s3_client(self.endpoint_url, self.region)
            if self.queue_url and self.sqs is None:
                import boto3

                self.sqs = boto3.session.Session().client(
                    "sqs", region_name=self.region, endpoint_url=self.endpoint_url
                )
        except BotoCoreError as exc:  # NoRegionError: sources.preflight says it first, this is the backstop
            raise explain_client_error(exc, f"s3 source (bucket {self.bucket or '-'})") from exc
        self._positions = {k: v for k, v in positions.items() if k != QUEUE and not k.endswith(READ_SUFFIX)}
        self._cursors = dict(self._positions)
        for name, value in positions.items():
            if name.endswith(READ_SUFFIX) and name[: -len(READ_SUFFIX)] in self._positions:
                read = {k: delivery_time(k) or 0.0 for k in _read_keys(value)}
                base = name[: -len(READ_SUFFIX)]
                self._returned[base] = read
                self._recent[base] = dict(read)  # the reader skips them, as if it had listed them itself
        bases = self._discover() if self._listing_wanted() else []
        self._thread = threading.Thread(target=self._run, args=(bases,), name="s3-reader", daemon=True)
        self._thread.start()
        log.info(
            "s3 source started",
            extra={
                "event": "source_start",
                "source": "s3",
                "bucket": self.bucket,
                "partitions": len(bases),
                "queue": bool(self.queue_url),
                "follow": self.follow,
            },
        )

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        if self._fatal is not None:
            raise self._fatal
        self._polls += 1
        out: list[Record] = []
        for item in drain(self._queue, timeout_s, lambda: len(out) >= max_records):
            if isinstance(item, tuple):
                kind, value = item
                if kind == _DONE:
                    self._done = True
                elif kind == "message":  # a message whose objects are all returned (or had none)
                    with self._lock:
                        if value in self._messages:
                            self._messages[value][2] = self._polls
            else:
                out.extend(item)
                with self._lock:
                    for r in item:
                        part, off = r.cursor
                        if part == QUEUE:
                            continue
                        if off > self._positions.get(part, ""):
                            self._positions[part] = off
                        self._note_returned(part, off)
        return out

    def _note_returned(self, part: str, key: str) -> None:
        """Remember ``key`` as returned; forget keys of ``part`` past the margin of its newest (lock held)."""
        returned = self._returned.setdefault(part, {})
        returned[key] = delivery_time(key) or 0.0
        newest = delivery_time(self._positions[part])
        if newest is not None and len(returned) > 1:
            for k in [k for k, t in returned.items() if t < newest - RELIST_MARGIN_S]:
                del returned[k]

    def positions(self) -> dict[str, str]:
        with self._lock:
            out = dict(self._positions)
            for part, returned in self._returned.items():
                if returned:
                    out[part + READ_SUFFIX] = orjson.dumps(sorted(returned)).decode()
        if self.queue_url:
            out[QUEUE] = str(self._polls)
        return out

    def commit(self, positions: dict[str, str]) -> None:
        """Delete the SQS messages whose files were all returned before ``positions`` was taken."""
        if not self.queue_url or QUEUE not in positions:
            return
        upto = int(positions[QUEUE])
        with self._lock:
            done = [(mid, m[0]) for mid, m in self._messages.items() if m[2] and m[2] <= upto]
        for i in range(0, len(done), 10):
            chunk = done[i : i + 10]
            try:
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(n), "ReceiptHandle": rh} for n, (_, rh) in enumerate(chunk)],
                )
            except (ClientError, BotoCoreError) as exc:
                # Not deleted: SQS redelivers after the visibility timeout; eventID dedup absorbs it.
                log.warning("cannot delete SQS messages", extra={"event": "source_error", "detail": str(exc)})
                continue
            with self._lock:
                for mid, _ in chunk:
                    self._messages.pop(mid, None)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            deadline = time.monotonic() + 5.0
            while self._thread.is_alive() and time.monotonic() < deadline:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(timeout=0.05)

    # -- listing ----------------------------------------------------------------------------------
    def _listing_wanted(self) -> bool:
        return bool(self.bucket) and (not self.queue_url or self.start_ts is not None)

    def _common_prefixes(self, prefix: str) -> list[str]:
        out: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            ):
                out.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        except (ClientError, BotoCoreError) as exc:
            raise explain_client_error(exc, f"s3://{self.bucket}/{prefix}") from exc
        return out

    def _discover(self) -> list[str]:
        """Partition prefixes: ``<prefix>[o-org/]<account>/CloudTrail/<region>/``."""
        if self.accounts:
            account_dirs = [f"{self.prefix}{a}/" for a in self.accounts]
        else:
            account_dirs = []
            for p in self._common_prefixes(self.prefix):
                name = p[len(self.prefix) :].strip("/")
                if name.startswith("o-"):  # organization trail: one more level
                    account_dirs.extend(self._common_prefixes(p))
                else:
                    account_dirs.append(p)
        bases: list[str] = []
        for a in account_dirs:
            if self.regions:
                bases.extend(f"{a}CloudTrail/{r}/" for r in self.regions)
            else:
                bases.extend(self._common_prefixes(f"{a}CloudTrail/"))
        return sorted(bases)

    def _first_marker(self, base: str) -> str:
        if base in self._cursors:
            t = delivery_time(self._cursors[base])
            return key_marker(base, t - RELIST_MARGIN_S) if t is not None else self._cursors[base]
        if self.start_ts is not None:
            return key_marker(base, self.start_ts)
        if self.start_type == "TRIM_HORIZON":
            return ""
        return key_marker(base, time.time() - LATEST_LOOKBACK_S)

    def _list_round(self, base: str, markers: dict[str, str]) -> list[str]:
        """New keys of one partition, oldest first (at most KEYS_PER_ROUND)."""
        marker = markers.get(base)
        if marker is None:
            marker = markers[base] = self._first_marker(base)
        recent = self._recent.setdefault(base, {})
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base, "MaxKeys": 1000}
        if marker:
            kwargs["StartAfter"] = marker
        keys: list[str] = []
        past_end = False
        while len(keys) < KEYS_PER_ROUND and not past_end:
            resp = self.client.list_objects_v2(**kwargs)
            for obj in resp.get("Contents", []):
                key = obj["Key"]
                if not is_trail_key(key) or key in recent:
                    continue
                t = delivery_time(key)
                if self.end_ts is not None and t is not None and t >= self.end_ts + DELIVERY_LAG_S:
                    past_end = True
                    break
                if self.start_ts is not None and t is not None and t < self.start_ts:
                    continue
                keys.append(key)
                if len(keys) >= KEYS_PER_ROUND:
                    break
            if not resp.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = resp["NextContinuationToken"]
        if keys:
            newest = delivery_time(keys[-1])
            for k in keys:
                recent[k] = delivery_time(k) or 0.0
            if newest is not None:
                # keep only keys inside the margin; the next listing starts there
                for k in [k for k, t in recent.items() if t < newest - RELIST_MARGIN_S]:
                    del recent[k]
                markers[base] = key_marker(base, newest - RELIST_MARGIN_S)
            else:
                markers[base] = keys[-1]
        return keys

    def _fetch(
        self, pool: concurrent.futures.ThreadPoolExecutor, refs: list[tuple[str, str]]
    ) -> Iterator[tuple[str, str, bytes | None]]:
        def get(ref: tuple[str, str]) -> tuple[str, str, bytes | None]:
            bucket, key = ref
            return bucket, key, self._get(bucket, key)

        yield from pool.map(get, refs)

    def _get(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes; None if it vanished; an ``Unreadable`` once retries are spent."""
        reason, detail = "", ""
        for attempt in range(1, self.get_attempts + 1):
            try:
                resp = self.client.get_object(Bucket=bucket, Key=key)
                try:
                    return read_capped(resp["Body"], size=resp.get("ContentLength"))
                finally:
                    resp["Body"].close()
            except TooLarge as exc:
                reason, detail = "oversized", str(exc)
                break
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", "")) or "ClientError"
                if code in ("NoSuchKey", "404"):
                    log.warning("object vanished before it was read", extra={"event": "source_skip", "key": key})
                    return None
                if code in SOURCE_WIDE_CODES:
                    raise
                reason, detail = code, str(exc.response.get("Error", {}).get("Message", ""))
                if code in PERMANENT_CODES:
                    break
            except BotoCoreError as exc:  # read and connect timeouts, a connection reset mid-Body
                reason, detail = type(exc).__name__, str(exc)
            if attempt < self.get_attempts and self._stop.wait(self.get_backoff_s * 2 ** (attempt - 1)):
                return None  # stopping: the key is read again after the restart
        self.get_failures[reason] += 1
        log.warning(
            "object unreadable; dead-lettered, the source goes on",
            extra={"event": "source_object_failed", "key": key, "reason": reason, "attempts": attempt},
        )
        if reason == "oversized":
            return Unreadable.because(TooLarge(f"object is {detail}"))
        return Unreadable.because(OSError(f"GetObject failed after {attempt} attempt(s): {reason}: {detail}"))

    def _put(self, item: list[Record] | tuple[str, Any]) -> bool:
        return put(self._queue, item, self._stop)

    def _run(self, bases: list[str]) -> None:
        try:
            with concurrent.futures.ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="s3-get") as pool:
                if bases or self._listing_wanted():
                    self._run_listing(pool, bases)
                if self.queue_url and self.follow and not self._stop.is_set():
                    self._run_queue(pool)
        except SourceError as exc:
            self._fatal = exc
        except (ClientError, BotoCoreError) as exc:
            self._fatal = explain_client_error(exc, f"s3://{self.bucket}/{self.prefix}")
        if not self._stop.is_set() and self._fatal is None:
            self._put((_DONE, None))

    def _run_listing(self, pool: concurrent.futures.ThreadPoolExecutor, bases: list[str]) -> None:
        """All partitions merged in delivery-time order, so no account or region runs hours ahead
        of another and pushes it behind the reorder watermark (the order ``list_files`` uses)."""
        markers: dict[str, str] = {}
        listed: dict[str, deque[str]] = {}
        rediscovered = time.monotonic()
        while not self._stop.is_set():
            caught_up = True
            for base in bases:
                buf = listed.setdefault(base, deque())
                if buf:
                    continue
                try:
                    buf.extend(self._list_round(base, markers))
                except (ClientError, BotoCoreError) as exc:
                    self._problem = f"cannot list s3://{self.bucket}/{base}: {exc}"
                    log.warning("listing failed; retrying", extra={"event": "source_error", "detail": self._problem})
                    continue
                self._problem = ""
            waiting = [b for b in bases if listed.get(b)]
            if waiting:
                caught_up = False
                # Take keys up to the least advanced partition's listed frontier, oldest first.
                horizon = min(delivery_time(listed[b][-1]) or 0.0 for b in waiting)
                batch = sorted(
                    ((delivery_time(k) or 0.0, k, b) for b in waiting for k in listed[b]), key=lambda x: x[:2]
                )
                take = [(k, b) for t, k, b in batch if t <= horizon] or [(batch[0][1], batch[0][2])]
                for k, b in take:
                    listed[b].remove(k)
                parts = {k: b for k, b in take}
                for bucket, key, data in self._fetch(pool, [(self.bucket, k) for k, _ in take]):
                    if data is None:
                        continue
                    rec = Record(data, f"s3://{bucket}/{key}", "s3", (parts[key], key), time.monotonic())
                    if not self._put([rec]):
                        return
            if not caught_up:
                continue
            if not self.follow or self.queue_url:
                return
            if time.monotonic() - rediscovered > self.rediscover_s:
                rediscovered = time.monotonic()
                try:
                    bases = sorted(set(bases) | set(self._discover()))
                except SourceError as exc:
                    self._problem = str(exc)
            self._stop.wait(self.poll_interval_s)

    def _run_queue(self, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        while not self._stop.is_set():
            try:
                resp = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=int(min(20, max(1, self.poll_interval_s))),
                    VisibilityTimeout=self.visibility_timeout_s,
                )
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "AccessDenied"):
                    raise explain_client_error(exc, f"sqs queue {self.queue_url}") from exc
                self._problem = f"cannot receive from {self.queue_url}: {code}"
                self._stop.wait(self.poll_interval_s)
                continue
            except BotoCoreError as exc:
                self._problem = f"cannot receive from {self.queue_url}: {exc}"
                self._stop.wait(self.poll_interval_s)
                continue
            self._problem = ""
            for msg in resp.get("Messages", []):
                mid = msg["MessageId"]
                refs = objects_in_message(msg.get("Body", ""))
                with self._lock:
                    self._messages[mid] = [msg["ReceiptHandle"], len(refs), 0]
                records = [
                    Record(data, f"s3://{b}/{k}", "s3", (QUEUE, mid), time.monotonic())
                    for b, k, data in self._fetch(pool, refs)
                    if data is not None
                ]
                if records and not self._put(records):
                    return
                if not self._put(("message", mid)):
                    return
