"""Per-principal baseline: compact, decayed, event-time state of what a principal normally does.

One ``Baseline`` is ~320 bytes when encoded (``Baseline.encode``), so 100k principals fit in
a few tens of MB and a Faust table row is one small value. It holds:

* exponentially decayed counters over 1 min, 10 min, 1 h and 1 day of event time
  (events, GetObjects, bytes out, errors, first-time APIs, deletes);
* decayed *peaks* of the short-window counters (half-life 14 days): "how bursty is this
  principal at its busiest", so a nightly batch job's 3,000-object read is normal for it
  and not for a person;
* Bloom filters of APIs, buckets, source IPs and /24 prefixes, user-agent families,
  regions and hours of the week seen (novelty; no false "new" answers, a small rate of
  missed novelty once a filter fills);
* an hour-of-day profile, first-seen time and total event count;
* two "recent bucket" slots with their own 10 min / 1 h counters, for per-bucket bursts
  and for "a bucket first read within the hour is being drained".

Time only moves in event time: ``observe`` takes the event's own timestamp. An event older
than the last one seen (out-of-order delivery) is counted without decaying the counters
backwards.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

from detector.event import Event, is_aws_source

WINDOWS = (60.0, 600.0, 3600.0, 86400.0)  # seconds: 1 min, 10 min, 1 h, 1 day
PEAK_HALF_LIFE = 14 * 86400.0
_LN2 = math.log(2.0)

# (name, bits) of each Bloom filter; 3 hash positions each. Sized for a typical principal:
# APIs ~50 distinct for a busy human (FP ~1.5% at 512 bits), IPs/buckets ~10-20.
BLOOMS = (("api", 512), ("bucket", 128), ("ip", 128), ("prefix", 128), ("ua", 128), ("region", 64))
HOURS_OF_WEEK = 168
N_RECENT = 2

# Peak slots: which short-window value each tracks.
PEAKS = ("evt1m", "evt10m", "get10m", "get1h", "bytes10m", "bytes1h", "del10m", "nov10m", "err10m")

_FMT = (
    "<dII"  # last_time, first_seen, total
    "4f3f2f2f2f1f"  # evt, get, byt, err, nov, dele
    f"{len(PEAKS)}e"  # peaks, stored as log1p in half precision
    "24B"  # hour-of-day profile
    + "".join(f"{bits // 8}s" for _, bits in BLOOMS)
    + "21s"  # hours of week seen (168 bits)
    + f"{len(BLOOMS)}B"  # distinct counts (saturating)
    + "IIfff" * N_RECENT  # recent buckets: hash, first read, get10m, bytes10m, get1h
)
_STRUCT = struct.Struct(_FMT)
ENCODED_SIZE = _STRUCT.size


def _positions(text: str, bits: int) -> tuple[int, int, int]:
    raw = text.encode("utf-8", "surrogatepass")
    h1 = zlib.crc32(raw)
    h2 = zlib.crc32(raw, 0x5BD1E995) | 1
    return h1 % bits, (h1 + h2) % bits, (h1 + 2 * h2) % bits


def stable_hash(text: str) -> int:
    """A 32-bit hash that is the same in every process (``hash()`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def ua_family(user_agent: str) -> str:
    """``aws-cli/2.13.5 Python/3.11 Darwin/22`` -> ``aws-cli/2 darwin``: product, major, OS."""
    if not user_agent:
        return ""
    head = user_agent.lstrip("[").split(" ", 1)[0]
    product, _, version = head.partition("/")
    family = f"{product[:40]}/{version.split('.', 1)[0][:8]}" if version else product[:40]
    low = user_agent.lower()
    for os_name in ("darwin", "windows", "linux", "mac os", "android", "iphone"):
        if os_name in low:
            return f"{family} {os_name}"
    return family


def ip_prefix(ip: str) -> str:
    """The /24 of an IPv4 address or the /48 of an IPv6 one; "" for AWS-internal sources."""
    if is_aws_source(ip):
        return ""
    if ":" in ip:
        return ":".join(ip.split(":", 3)[:3])
    return ip.rsplit(".", 1)[0]


@dataclass(slots=True)
class Observation:
    """What one event looked like against its principal's baseline *before* it was added.

    Window counts (``*_now``) include the event itself; peaks and profile values are from
    before it. Features and explanations are built from this, never from the updated state.
    """

    api_novel: bool
    ip_novel: bool
    prefix_novel: bool
    ua_novel: bool
    region_novel: bool
    bucket_novel: bool
    hour_novel: bool
    hour_share: float
    evt1m: float
    evt10m: float
    get10m: float
    get1h: float
    bytes10m: float
    bytes1h: float
    del10m: float
    nov10m: float
    err10m: float
    peaks: tuple[float, ...]  # before the event, in PEAKS order
    age_s: float
    total: int
    bucket_get10m: float
    bucket_bytes10m: float
    bucket_get1h: float
    bucket_age_s: float  # since this principal first read the bucket (inf when long known)
    distinct: tuple[int, ...]  # distinct counts per BLOOMS entry, before the event


class Baseline:
    """Mutable per-principal state; ``observe`` adds one event and returns its ``Observation``."""

    __slots__ = (
        "blooms",
        "byt",
        "dele",
        "distinct",
        "err",
        "evt",
        "first_seen",
        "get",
        "hours",
        "how",
        "last_time",
        "nov",
        "peaks",
        "recent",
        "total",
    )

    def __init__(self) -> None:
        self.last_time = 0.0
        self.first_seen = 0
        self.total = 0
        self.evt = [0.0, 0.0, 0.0, 0.0]
        self.get = [0.0, 0.0, 0.0]
        self.byt = [0.0, 0.0]
        self.err = [0.0, 0.0]
        self.nov = [0.0, 0.0]
        self.dele = 0.0
        self.peaks = [0.0] * len(PEAKS)
        self.hours = [0] * 24
        self.blooms = [0] * len(BLOOMS)
        self.how = 0
        self.distinct = [0] * len(BLOOMS)
        # each slot: [bucket hash, first read (s), get10m, bytes10m, get1h]; hash 0 = empty
        self.recent = [[0, 0, 0.0, 0.0, 0.0] for _ in range(N_RECENT)]

    # -- serialisation -------------------------------------------------------------------
    def encode(self) -> bytes:
        values: list[float | int | bytes] = [self.last_time, self.first_seen, min(self.total, 0xFFFFFFFF)]
        values += self.evt + self.get + self.byt + self.err + self.nov + [self.dele]
        values += [min(math.log1p(p), 65000.0) for p in self.peaks]
        values += self.hours
        values += [b.to_bytes(bits // 8, "little") for b, (_, bits) in zip(self.blooms, BLOOMS, strict=True)]
        values.append(self.how.to_bytes(21, "little"))
        values += [min(d, 255) for d in self.distinct]
        for slot in self.recent:
            values += slot
        return _STRUCT.pack(*values)

    @classmethod
    def decode(cls, data: bytes) -> Baseline:
        if len(data) != ENCODED_SIZE:
            raise ValueError(f"baseline record is {len(data)} bytes, expected {ENCODED_SIZE}")
        v = _STRUCT.unpack(data)
        b = cls.__new__(cls)
        b.last_time, b.first_seen, b.total = v[0], v[1], v[2]
        b.evt = list(v[3:7])
        b.get = list(v[7:10])
        b.byt = list(v[10:12])
        b.err = list(v[12:14])
        b.nov = list(v[14:16])
        b.dele = v[16]
        i = 17
        b.peaks = [math.expm1(p) for p in v[i : i + len(PEAKS)]]
        i += len(PEAKS)
        b.hours = list(v[i : i + 24])
        i += 24
        b.blooms = [int.from_bytes(raw, "little") for raw in v[i : i + len(BLOOMS)]]
        i += len(BLOOMS)
        b.how = int.from_bytes(v[i], "little")
        i += 1
        b.distinct = list(v[i : i + len(BLOOMS)])
        i += len(BLOOMS)
        b.recent = [list(v[i + 5 * s : i + 5 * s + 5]) for s in range(N_RECENT)]
        return b

    # -- the update ----------------------------------------------------------------------
    def _seen_add(self, idx: int, text: str) -> bool:
        """Add ``text`` to Bloom filter ``idx``; True if it was (probably) there already."""
        bits = BLOOMS[idx][1]
        p1, p2, p3 = _positions(text, bits)
        f = self.blooms[idx]
        mask = (1 << p1) | (1 << p2) | (1 << p3)
        if f & mask == mask:
            return True
        self.blooms[idx] = f | mask
        if self.distinct[idx] < 255:
            self.distinct[idx] += 1
        return False

    def observe(self, ev: Event) -> Observation:
        t = ev.time
        first = self.total == 0
        dt = t - self.last_time if not first else 0.0
        if dt < 0.0:
            dt = 0.0  # out of order: count it, but never decay backwards
        else:
            self.last_time = t
        if first:
            self.first_seen = int(t)
        d1, d10, d60, d1440 = (math.exp(-dt / w) for w in WINDOWS)
        peak_decay = math.exp(-dt * _LN2 / PEAK_HALF_LIFE)

        distinct_before = tuple(self.distinct)
        peaks_before = tuple(self.peaks)
        hour = int(t // 3600) % 24
        hours_total = sum(self.hours)
        hour_share = self.hours[hour] / hours_total if hours_total else 0.0
        how_bit = 1 << ((int(t // 86400) + 3) % 7 * 24 + hour)  # epoch day 0 was a Thursday

        api_known = self._seen_add(0, f"{ev.service}:{ev.name}")
        region_known = self._seen_add(5, ev.region) if ev.region else True
        ua_known = self._seen_add(4, ua_family(ev.user_agent)) if ev.user_agent else True
        prefix = ip_prefix(ev.source_ip)
        if prefix:
            ip_known = self._seen_add(2, ev.source_ip)
            prefix_known = self._seen_add(3, prefix)
        else:
            ip_known = prefix_known = True
        bucket_known = self._seen_add(1, ev.bucket) if ev.bucket else True
        hour_known = bool(self.how & how_bit)
        self.how |= how_bit
        if not first:
            # A brand-new principal has seen nothing; flagging all of it novel says nothing.
            api_novel, ip_novel, prefix_novel = not api_known, not ip_known, not prefix_known
            ua_novel, region_novel, bucket_novel = not ua_known, not region_known, not bucket_known
            hour_novel = not hour_known
        else:
            api_novel = ip_novel = prefix_novel = ua_novel = region_novel = bucket_novel = hour_novel = False

        evt = self.evt
        evt[0] = evt[0] * d1 + 1.0
        evt[1] = evt[1] * d10 + 1.0
        evt[2] = evt[2] * d60 + 1.0
        evt[3] = evt[3] * d1440 + 1.0
        is_get = ev.is_get_object
        g = self.get
        inc = 1.0 if is_get else 0.0
        g[0] = g[0] * d1 + inc
        g[1] = g[1] * d10 + inc
        g[2] = g[2] * d60 + inc
        byt = self.byt
        byt[0] = byt[0] * d10 + ev.bytes_out
        byt[1] = byt[1] * d60 + ev.bytes_out
        e = 1.0 if ev.error_code else 0.0
        self.err[0] = self.err[0] * d10 + e
        self.err[1] = self.err[1] * d1440 + e
        n = 1.0 if api_novel else 0.0
        self.nov[0] = self.nov[0] * d10 + n
        self.nov[1] = self.nov[1] * d60 + n
        self.dele = self.dele * d10 + (1.0 if ev.is_delete else 0.0)

        now = (evt[0], evt[1], g[1], g[2], byt[0], byt[1], self.dele, self.nov[0], self.err[0])
        peaks = self.peaks
        for i, value in enumerate(now):
            p = peaks[i] * peak_decay
            peaks[i] = value if value > p else p

        if self.hours[hour] >= 255:
            self.hours = [h >> 1 for h in self.hours]
        self.hours[hour] += 1
        self.total += 1

        b_get10 = b_bytes10 = b_get1h = 0.0
        b_age = math.inf
        if ev.bucket:
            b_get10, b_bytes10, b_get1h, b_age = self._recent_bucket(ev, t, d10, d60, bucket_known)

        return Observation(
            api_novel,
            ip_novel,
            prefix_novel,
            ua_novel,
            region_novel,
            bucket_novel,
            hour_novel,
            hour_share,
            evt[0],
            evt[1],
            g[1],
            g[2],
            byt[0],
            byt[1],
            self.dele,
            self.nov[0],
            self.err[0],
            peaks_before,
            t - self.first_seen,
            self.total - 1,
            b_get10,
            b_bytes10,
            b_get1h,
            b_age,
            distinct_before,
        )

    def _recent_bucket(
        self, ev: Event, t: float, d10: float, d60: float, known: bool
    ) -> tuple[float, float, float, float]:
        h = stable_hash(ev.bucket) or 1
        slots = self.recent
        for slot in slots:  # decay every slot to now so they compare fairly
            slot[2] *= d10
            slot[3] *= d10
            slot[4] *= d60
        found = [s for s in slots if s[0] == h]
        if found:
            slot = found[0]
        else:
            slot = min(slots, key=lambda s: s[4])
            # A bucket the filter already knew was first read before the slot existed.
            slot[:] = [h, 0 if known else int(t), 0.0, 0.0, 0.0]
        inc = 1.0 if ev.is_get_object else 0.0
        slot[2] += inc
        slot[3] += ev.bytes_out
        slot[4] += inc
        age = t - slot[1] if slot[1] else math.inf
        return slot[2], slot[3], slot[4], age
