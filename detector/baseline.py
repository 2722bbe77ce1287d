"""Per-principal baseline: compact, decayed, event-time state of what a principal normally does.

One ``Baseline`` is ~350 bytes when encoded (``Baseline.encode``), so 100k principals fit in
a few tens of MB and a Faust table row is one small value. It holds:

* exponentially decayed counters over 1 min, 10 min and 1 h of event time (events,
  GetObjects, bytes out, errors, first-time APIs, deletes, off-hours reads); the day-long
  view is in the peaks and profiles below;
* decayed *peaks* of the short-window counters (half-life 14 days): "how bursty is this
  principal at its busiest", so a nightly batch job's 3,000-object read is normal for it
  and not for a person. The current hour's maxima are held as candidates and folded into
  the peaks only once the hour is over, so a burst in progress is compared with the past,
  not with itself;
* Bloom filters of APIs, buckets, source IPs and /24 prefixes, user-agent families,
  regions and hours of the week seen (novelty; no false "new" answers, a small rate of
  missed novelty once a filter fills). The network filters (IPs, prefixes) age in
  generations, so that months of roaming do not fill them until every new network reads
  as known (see ``NETWORK_GENERATION_S``);
* an hour-of-day profile, first-seen time and total event count;
* two "recent bucket" slots with their own 10 min / 1 h counters, for per-bucket bursts
  and for "a bucket first read within the hour is being drained".

Time only moves in event time: ``observe`` takes the event's own timestamp. An event older
than the last one seen (out-of-order delivery) is counted without decaying the counters
backwards.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from array import array
from dataclasses import dataclass
from typing import Any

from detector.event import Event, is_aws_source
from detector.memo import remember

WINDOWS = (60.0, 600.0, 3600.0)  # seconds: 1 min, 10 min, 1 h
PEAK_HALF_LIFE = 14 * 86400.0
PEAK_COMMIT_S = 3600.0  # candidates older than this become part of the peaks
_LN2 = math.log(2.0)

# (name, bits) of each Bloom filter; 3 hash positions each. Sized for a typical principal:
# APIs ~50 distinct for a busy human (FP ~1.5% at 512 bits), IPs/buckets ~10-20.
BLOOMS = (("api", 512), ("bucket", 128), ("ip", 128), ("prefix", 128), ("ua", 128), ("region", 64))
BLOOM_HASHES = 3
HOURS_OF_WEEK = 168
N_RECENT = 2

# Window counters, one float32 array; index names below. Only what a feature or rule reads
# is kept: every 4 bytes here is 400 kB at 100k principals.
EVT1, EVT10, GET10, BYT10, BYT60, ERR10, NOV10, DEL10, OFF60 = range(9)
N_WIN = 9
# Peak slots: which short-window value each tracks (``Observation.peaks`` is in this order).
PEAKS = ("evt1m", "evt10m", "get10m", "bytes10m", "bytes1h", "del10m", "nov10m", "err10m")
P_EVT1, P_EVT10, P_GET10, P_BYT10, P_BYT60, P_DEL10, P_NOV10, P_ERR10 = range(len(PEAKS))
# Network filters (source IPs and prefixes) in generations. A filter that never forgets fills:
# at 60 distinct IPs a 128-bit filter is 75% set and misses 43% of new IPs, and a person's
# laptop sees that many networks in a few months. When the current generation is half full
# (~30 networks, a 12.5% miss rate) and at least this old, it becomes the previous generation
# and a new one starts; an address is known if either holds it. A network used within the
# last generation stays known; one unused for a whole generation can read as new again. A
# principal that fills the filter within days (a Lambda role on ever-changing AWS addresses)
# keeps a full filter (no generation ends while no bit can be added) or a full previous
# generation, so its churn stays as unremarkable as it was.
NETWORK_GENERATION_S = 30 * 86400.0
# An hour of the day holding less than this share of a principal's activity is off-hours for
# it; GetObjects in such hours are counted (OFF60) so a night-time drain stands out even while
# it slowly makes that hour "usual".
OFF_HOURS_SHARE = 0.02

# Every float lives in an array('f'): assigning rounds to float32 at once, so the object in
# memory is exactly what ``encode`` writes and a checkpoint/restore mid-stream changes
# nothing (results do not depend on batch boundaries).
# Bumped whenever the encoded layout changes: checkpoints refuse another format and the Faust
# table's name carries it, so a new version starts a fresh changelog instead of misreading one.
STATE_FORMAT = 3
_HEAD = struct.Struct("<dIIIII")  # last_time, first_seen, total, cand_since, novel_origin_at, net_since
_BLOOM_BYTES = tuple(bits // 8 for _, bits in BLOOMS)
_HOW_BYTES = 21  # 168 bits
_IP, _PREFIX = 2, 3  # the network filters' places in BLOOMS
_OLD_IP_BYTES = _BLOOM_BYTES[_IP]
_OLD_PREFIX_BYTES = _BLOOM_BYTES[_PREFIX]
ENCODED_SIZE = (
    _HEAD.size
    + 4 * (N_WIN + 2 * len(PEAKS) + 3 * N_RECENT)  # windows, peaks, candidates, recent-bucket counters
    + 4 * 2 * N_RECENT  # recent-bucket hash and first-read time
    + 24  # hour-of-day profile
    + sum(_BLOOM_BYTES)
    + _HOW_BYTES
    + _OLD_IP_BYTES
    + _OLD_PREFIX_BYTES
)


# APIs, IPs, regions, buckets and user agents repeat endlessly: memoise their Bloom masks
# and families. Bounded: cleared when full (a cache, not state; results never depend on it).
_CACHE_MAX = 200_000
_families: dict[str, str] = {}
# One mask cache per filter (keyed by text alone: no tuple to build per lookup).
_masks: tuple[dict[str, int], ...] = tuple({} for _ in BLOOMS)
_prefixes: dict[str, str] = {}
_bucket_hashes: dict[str, int] = {}


def _mask(idx: int, text: str) -> int:
    """The 3-position Bloom mask of ``text`` in filter ``idx`` (never 0)."""
    cache = _masks[idx]
    m = cache.get(text)
    if m is None:
        bits = BLOOMS[idx][1]
        # Two independent 32-bit hashes (double hashing). Not two CRCs: CRC is linear, so two
        # CRCs of one string differ by a constant and similar strings share whole masks.
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        h1 = int.from_bytes(digest[:4], "little")
        h2 = int.from_bytes(digest[4:], "little") | 1
        m = (1 << (h1 % bits)) | (1 << ((h1 + h2) % bits)) | (1 << ((h1 + 2 * h2) % bits))
        remember(cache, text, m, _CACHE_MAX)
    return m


def bloom_count(idx: int, bloom: int) -> int:
    """Estimated distinct items in Bloom filter ``idx`` (Swamidass & Baldi, from the bits set).

    Used for explanations ("12 APIs seen before"), so no per-item counter is stored.
    """
    bits = BLOOMS[idx][1]
    ones = bloom.bit_count()
    if ones >= bits:
        return bits // BLOOM_HASHES
    return round(-bits / BLOOM_HASHES * math.log1p(-ones / bits))


def stable_hash(text: str) -> int:
    """A 32-bit hash that is the same in every process (``hash()`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def ua_family(user_agent: str) -> str:
    """``aws-cli/2.13.5 Python/3.11 Darwin/22`` -> ``aws-cli/2 darwin``: product, major, OS."""
    family = _families.get(user_agent)
    if family is None:
        family = _ua_family(user_agent)
        remember(_families, user_agent, family, _CACHE_MAX)
    return family


def _ua_family(user_agent: str) -> str:
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
    prefix = _prefixes.get(ip)
    if prefix is None:
        prefix = _ip_prefix(ip)
        remember(_prefixes, ip, prefix, _CACHE_MAX)
    return prefix


def _ip_prefix(ip: str) -> str:
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
    blooms: tuple[int, ...]  # the Bloom filters before the event (``distinct`` reads them)
    origin_age_s: float  # since this principal last showed a new network or client (inf: never)
    off_reads1h: float  # GetObjects in ~1 h made in this principal's off-hours

    def distinct(self, name: str) -> int:
        """Estimated distinct APIs / buckets / IPs / ... this principal had used before the event."""
        idx = _BLOOM_INDEX[name]
        return bloom_count(idx, self.blooms[idx])


_BLOOM_INDEX = {name: i for i, (name, _) in enumerate(BLOOMS)}
_ZERO_PEAKS = bytes(4 * len(PEAKS))


class Baseline:
    """Mutable per-principal state; ``observe`` adds one event and returns its ``Observation``."""

    __slots__ = (
        "blooms",
        "cand",
        "cand_since",
        "first_seen",
        "hours",
        "how",
        "last_time",
        "net_since",
        "novel_origin_at",
        "old_ip",
        "old_prefix",
        "peaks",
        "rkey",
        "rval",
        "total",
        "win",
    )

    def __init__(self) -> None:
        self.last_time = 0.0
        self.first_seen = 0
        self.total = 0
        self.cand_since = 0
        self.novel_origin_at = 0  # last time a new network or client family appeared
        self.net_since = 0  # when the current generation of the network filters began
        self.old_ip = 0  # the previous generation of the IP and prefix filters
        self.old_prefix = 0
        self.win = array("f", bytes(4 * N_WIN))
        self.peaks = array("f", _ZERO_PEAKS)
        self.cand = array("f", _ZERO_PEAKS)
        # recent buckets: per slot (get10m, bytes10m, get1h) and (hash, first read); hash 0 = empty
        self.rval = array("f", bytes(4 * 3 * N_RECENT))
        self.rkey = array("I", bytes(4 * 2 * N_RECENT))
        self.hours = bytearray(24)
        self.blooms = [0] * len(BLOOMS)
        self.how = 0

    # -- serialisation -------------------------------------------------------------------
    def encode(self) -> bytes:
        parts = [
            _HEAD.pack(
                self.last_time,
                self.first_seen,
                min(self.total, 0xFFFFFFFF),
                self.cand_since,
                self.novel_origin_at,
                self.net_since,
            ),
            self.win.tobytes(),
            self.peaks.tobytes(),
            self.cand.tobytes(),
            self.rval.tobytes(),
            self.rkey.tobytes(),
            bytes(self.hours),
        ]
        parts += [b.to_bytes(n, "little") for b, n in zip(self.blooms, _BLOOM_BYTES, strict=True)]
        parts.append(self.how.to_bytes(_HOW_BYTES, "little"))
        parts.append(self.old_ip.to_bytes(_OLD_IP_BYTES, "little"))
        parts.append(self.old_prefix.to_bytes(_OLD_PREFIX_BYTES, "little"))
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Baseline:
        if len(data) != ENCODED_SIZE:
            raise ValueError(f"baseline record is {len(data)} bytes, expected {ENCODED_SIZE}")
        b = cls.__new__(cls)
        b.last_time, b.first_seen, b.total, b.cand_since, b.novel_origin_at, b.net_since = _HEAD.unpack_from(data, 0)
        off = _HEAD.size
        arrays: list[Any] = []
        for code, n in _ARRAYS:
            a = array(code)
            a.frombytes(data[off : off + 4 * n])
            arrays.append(a)
            off += 4 * n
        b.win, b.peaks, b.cand, b.rval, b.rkey = arrays
        b.hours = bytearray(data[off : off + 24])
        off += 24
        blooms = []
        for n in _BLOOM_BYTES:
            blooms.append(int.from_bytes(data[off : off + n], "little"))
            off += n
        b.blooms = blooms
        b.how = int.from_bytes(data[off : off + _HOW_BYTES], "little")
        off += _HOW_BYTES
        b.old_ip = int.from_bytes(data[off : off + _OLD_IP_BYTES], "little")
        off += _OLD_IP_BYTES
        b.old_prefix = int.from_bytes(data[off : off + _OLD_PREFIX_BYTES], "little")
        return b

    # -- the update ----------------------------------------------------------------------
    def observe(self, ev: Event, known_network: bool = False) -> Observation:
        """Add ``ev``; ``known_network``: its source is a configured known network (corporate
        VPN egress), never novel and never a new origin."""
        t = ev.time
        first = self.total == 0
        dt = t - self.last_time if not first else 0.0
        if dt < 0.0:
            dt = 0.0  # out of order: count it, but never decay backwards
        else:
            self.last_time = t
        if first:
            self.first_seen = self.net_since = int(t)
        if dt > 0.0:
            exp = math.exp
            d1, d10, d60 = exp(-dt / 60.0), exp(-dt / 600.0), exp(-dt / 3600.0)
        else:
            d1 = d10 = d60 = 1.0

        peaks = self.peaks
        since = t - self.cand_since
        if since >= PEAK_COMMIT_S:
            # Peaks decay (half-life 14 days) and absorb the finished hour's candidates once an
            # hour: per event the decay would be < 0.3% anyway.
            decay = math.exp(-since * _LN2 / PEAK_HALF_LIFE) if self.cand_since else 1.0
            cand = self.cand
            for i in range(len(peaks)):
                p = peaks[i] * decay
                peaks[i] = cand[i] if cand[i] > p else p
            self.cand = array("f", _ZERO_PEAKS)
            self.cand_since = int(t)
        blooms = self.blooms
        blooms_before = tuple(blooms)
        if self.old_ip or self.old_prefix:  # what is known is what either generation holds
            b = blooms_before
            blooms_before = (b[0], b[1], b[_IP] | self.old_ip, b[_PREFIX] | self.old_prefix, *b[4:])
        peaks_before = tuple(peaks)
        hours = self.hours
        hour = int(t // 3600) % 24
        hours_total = sum(hours)
        hour_share = hours[hour] / hours_total if hours_total else 0.0
        how_bit = 1 << ((int(t // 86400) + 3) % 7 * 24 + hour)  # epoch day 0 was a Thursday

        # Bloom filters, inlined: this is the hottest loop of the detector.
        m = _mask(0, f"{ev.service}:{ev.name}")
        api_known = blooms[0] & m == m
        blooms[0] |= m
        region_known = ua_known = ip_known = prefix_known = bucket_known = True
        if ev.region:
            m = _mask(5, ev.region)
            region_known = blooms[5] & m == m
            blooms[5] |= m
        if ev.user_agent:
            m = _mask(4, ua_family(ev.user_agent))
            ua_known = blooms[4] & m == m
            blooms[4] |= m
        prefix = "" if known_network else ip_prefix(ev.source_ip)
        if prefix:
            m = _mask(_IP, ev.source_ip)
            ip_current = blooms[_IP] & m == m
            ip_known = ip_current or self.old_ip & m == m
            blooms[_IP] |= m
            m = _mask(_PREFIX, prefix)
            prefix_current = blooms[_PREFIX] & m == m
            prefix_known = prefix_current or self.old_prefix & m == m
            blooms[_PREFIX] |= m
            # the filters only fill when bits are added: only then can a generation end
            if not (ip_current and prefix_current) and t - self.net_since >= NETWORK_GENERATION_S:
                self._age_networks(t)
        if ev.bucket:
            m = _mask(1, ev.bucket)
            bucket_known = blooms[1] & m == m
            blooms[1] |= m
        hour_known = bool(self.how & how_bit)
        self.how |= how_bit
        if not first:
            # A brand-new principal has seen nothing; flagging all of it novel says nothing.
            api_novel, ip_novel, prefix_novel = not api_known, not ip_known, not prefix_known
            ua_novel, region_novel, bucket_novel = not ua_known, not region_known, not bucket_known
            hour_novel = not hour_known
        else:
            api_novel = ip_novel = prefix_novel = ua_novel = region_novel = bucket_novel = hour_novel = False
        if prefix_novel or ua_novel:
            self.novel_origin_at = int(t)

        w = self.win
        get = ev.is_get_object
        bytes_out = ev.bytes_out
        w[EVT1] = w[EVT1] * d1 + 1.0
        w[EVT10] = w[EVT10] * d10 + 1.0
        w[GET10] = w[GET10] * d10 + (1.0 if get else 0.0)
        w[BYT10] = w[BYT10] * d10 + bytes_out
        w[BYT60] = w[BYT60] * d60 + bytes_out
        w[ERR10] = w[ERR10] * d10 + (1.0 if ev.error_code else 0.0)
        w[NOV10] = w[NOV10] * d10 + (1.0 if api_novel else 0.0)
        w[DEL10] = w[DEL10] * d10 + (1.0 if ev.is_delete else 0.0)
        off = 1.0 if get and hours_total and hour_share < OFF_HOURS_SHARE else 0.0
        w[OFF60] = w[OFF60] * d60 + off

        now = e1, e10, g10, b10, b60, dl10, n10, er10 = (
            w[EVT1],
            w[EVT10],
            w[GET10],
            w[BYT10],
            w[BYT60],
            w[DEL10],
            w[NOV10],
            w[ERR10],
        )
        cand = self.cand  # unrolled, in PEAKS order: a loop costs ~1 µs per event here
        if e1 > cand[P_EVT1]:
            cand[P_EVT1] = e1
        if e10 > cand[P_EVT10]:
            cand[P_EVT10] = e10
        if g10 > cand[P_GET10]:
            cand[P_GET10] = g10
        if b10 > cand[P_BYT10]:
            cand[P_BYT10] = b10
        if b60 > cand[P_BYT60]:
            cand[P_BYT60] = b60
        if dl10 > cand[P_DEL10]:
            cand[P_DEL10] = dl10
        if n10 > cand[P_NOV10]:
            cand[P_NOV10] = n10
        if er10 > cand[P_ERR10]:
            cand[P_ERR10] = er10

        if hours[hour] >= 255:
            hours = self.hours = bytearray(h >> 1 for h in hours)
        hours[hour] += 1
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
            *now,
            peaks_before,
            t - self.first_seen,
            self.total - 1,
            b_get10,
            b_bytes10,
            b_get1h,
            b_age,
            blooms_before,
            t - self.novel_origin_at if self.novel_origin_at else math.inf,
            w[OFF60],
        )

    def _age_networks(self, t: float) -> None:
        """Start a new generation of the network filters once the current one is half full."""
        blooms = self.blooms
        if blooms[_IP].bit_count() * 2 < BLOOMS[_IP][1] and blooms[_PREFIX].bit_count() * 2 < BLOOMS[_PREFIX][1]:
            return
        self.old_ip, self.old_prefix = blooms[_IP], blooms[_PREFIX]
        blooms[_IP] = blooms[_PREFIX] = 0
        self.net_since = int(t)

    def _recent_bucket(
        self, ev: Event, t: float, d10: float, d60: float, known: bool
    ) -> tuple[float, float, float, float]:
        h = _bucket_hashes.get(ev.bucket)
        if h is None:
            h = stable_hash(ev.bucket) or 1
            remember(_bucket_hashes, ev.bucket, h, _CACHE_MAX)
        val, key = self.rval, self.rkey
        # Decay both slots to now so they compare fairly (unrolled for the two slots).
        val[0] *= d10
        val[1] *= d10
        val[2] *= d60
        val[3] *= d10
        val[4] *= d10
        val[5] *= d60
        if key[0] == h:
            slot = 0
        elif key[2] == h:
            slot = 1
        else:
            slot = 0 if val[2] <= val[5] else 1  # evict the slot with fewer reads this hour
            key[2 * slot] = h
            # A bucket the filter already knew was first read before the slot existed.
            key[2 * slot + 1] = 0 if known else int(t)
            val[3 * slot] = val[3 * slot + 1] = val[3 * slot + 2] = 0.0
        g = 1.0 if ev.is_get_object else 0.0
        val[3 * slot] += g
        val[3 * slot + 1] += ev.bytes_out
        val[3 * slot + 2] += g
        first = key[2 * slot + 1]
        return val[3 * slot], val[3 * slot + 1], val[3 * slot + 2], (t - first if first else math.inf)


_ARRAYS = (("f", N_WIN), ("f", len(PEAKS)), ("f", len(PEAKS)), ("f", 3 * N_RECENT), ("I", 2 * N_RECENT))
assert N_RECENT == 2  # _recent_bucket's slot lookup is unrolled for two slots
