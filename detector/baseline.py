"""Per-principal baseline: a fixed-size, event-time record of what a principal normally does.

One ``Baseline`` encodes to ``ENCODED_SIZE`` bytes (``Baseline.encode``), so a million
principals fit in a few hundred MB and a Faust table row is one small value. It holds:

* exponentially decayed counters over 1 min, 10 min and 1 h of event time (events,
  GetObjects, bytes out, the log sizes of objects read, errors, first-time APIs, deletes, credential reads);
* decayed *peaks* of those windows (half-life 14 days): "how busy is this principal at its
  busiest", so a nightly job's 3,000-object read is normal for it and not for a person. The
  current hour's maxima are candidates, folded into the peaks only when the hour is over,
  so a burst is compared with the past and not with itself. Once the principal is mature a
  commit may raise a peak at most ``PEAK_GROWTH`` times per hour, so an anomaly that goes on
  for hours is not absorbed into "normal" within the hour (a real change of load is, within
  a few hours);
* the typical size of the objects it reads (log bytes, updated hourly with the same cap);
* Bloom filters of APIs, buckets, source IPs and /24 prefixes, clients (user-agent family and
  session-name shape) and regions: novelty with no false "new" answers. The network filters
  age in generations (``NETWORK_GENERATION_S``);
* context *ages*: when the most recently new bucket (two slots, with their own read
  counters), network, client (two slots) and region were first seen, so a slow read of a new
  bucket stays "a bucket first seen 40 minutes ago" for as long as it goes on, instead of
  being novel on its first event only;
* an hour-of-day profile in *days*: per UTC hour, a bit for each of the last 16 days on which
  the principal was active in that hour. One busy hour adds one day, so a burst at an odd hour
  cannot make that hour look usual (a count per hour would be overwritten within minutes);
* first-seen time, event count and the principal's sticky caller class.

Time only moves in event time: ``observe`` takes the event's own timestamp. An event older
than the last one seen (out-of-order delivery) is counted without decaying anything backwards.
``observe`` returns an ``Observation``: the event against the baseline *before* it was added.
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
from detector.principal import session_kind

PEAK_HALF_LIFE = 14 * 86400.0
PEAK_COMMIT_S = 3600.0  # candidates older than this become part of the peaks
PEAK_GROWTH = 4.0  # a mature principal's peak grows at most this much per hourly commit...
# ...from at least these (a principal's first reads or deletes are not an anomaly already absorbed)
SIZE_STEP = 0.5  # ...and its typical object size (natural log) moves at most this much per hour
_LN2 = math.log(2.0)
_DAY = 86400.0

# Maturity: below these a principal's own history says little; features and rules compare it
# with its peer group instead (see features.py and policy.py).
MATURE_S = _DAY  # rates and contexts: a day of its own history...
MATURE_EVENTS = 50
MATURE_DAYS = 2  # ...with activity on at least two earlier days (a nightly job's first run sets no norm)
HOUR_DAYS = 16  # days the hour-of-day profile remembers
MATURE_HOUR_DAYS = 3  # active days before "an hour it is never active in" means anything

# (name, bits) of each Bloom filter; 3 hash positions each. APIs ~50 distinct for a busy
# person (false "known" ~1.5% at 512 bits); IPs, buckets, clients ~10-20.
BLOOMS = (("api", 512), ("bucket", 128), ("ip", 128), ("prefix", 128), ("client", 128), ("region", 64))
BLOOM_HASHES = 3
_API, _BUCKET, _IP, _PREFIX, _CLIENT, _REGION = range(len(BLOOMS))

# Window counters (float32), in this order.
EVT1, EVT10, GET10, BYT10, GET60, BYT60, LSZ60, ERR10, NOV10, DEL10, SEC10 = range(11)
N_WIN = 11
# Peaks: which window each tracks (``Observation.peaks`` is in this order).
PEAKS = ("evt1m", "evt10m", "get10m", "bytes10m", "get1h", "bytes1h", "del10m", "err10m", "secrets10m")
P_EVT1, P_EVT10, P_GET10, P_BYT10, P_GET60, P_BYT60, P_DEL10, P_ERR10, P_SEC10 = range(len(PEAKS))
_PEAK_WIN = (EVT1, EVT10, GET10, BYT10, GET60, BYT60, DEL10, ERR10, SEC10)
PEAK_FLOOR = (5.0, 20.0, 10.0, 1e7, 20.0, 2e7, 5.0, 5.0, 5.0)  # per PEAKS: events, objects, bytes
# Reads of stored credentials (a secret's value, a parameter, an instance's password): a
# principal's own rate of these is as much a habit as its rate of GetObjects, and an event mix
# dominated by other calls hides a harvest of them in its overall rate.
CREDENTIAL_READS = frozenset(
    ("GetSecretValue", "BatchGetSecretValue", "GetParameter", "GetParameters", "GetParametersByPath", "GetPasswordData")
)
N_PEAKS = len(PEAKS)

# Context slots: (hash, first seen) pairs. Buckets also keep their own read counters.
N_BUCKETS = 2
_NET_SLOT, _CLIENT_SLOT, _REGION_SLOT = 0, 1, 3  # ctx slot indices (client has 2: 1 and 2)
N_CTX = 4
# Network filters (source IPs and prefixes) in generations. A filter that never forgets fills:
# at 60 distinct IPs a 128-bit filter is 75% set and misses 43% of new IPs. When the current
# generation is half full and at least this old, it becomes the previous one and a new one
# starts; an address is known if either holds it. A principal that fills the filter within
# days (a Lambda role on ever-changing AWS addresses) keeps a full filter (no generation ends
# while no bit can be added), so its churn stays as unremarkable as it was.
NETWORK_GENERATION_S = 30 * 86400.0

# Sticky caller class, decided once from what the caller cannot choose (see principal.py) and
# from the principal's own first day (``CLASS_VOTES``); stored as a small integer.
CLASS_CODES = ("", "human", "automation", "aws-service", "anonymous")
CLASS_VOTES = 50  # events voted on before an undecided class settles

# Every float lives in an array('f'): assigning rounds to float32 at once, so the object in
# memory is exactly what ``encode`` writes and a checkpoint/restore mid-stream changes nothing.
# Bumped whenever the encoded layout changes: checkpoints refuse another format and the Faust
# table's name carries it, so a new version starts a fresh changelog instead of misreading one.
STATE_FORMAT = 5
# last_time, first_seen, total, cand_since, net_since, last_day, over_at, class, votes (human, sdk), over_n
_HEAD = struct.Struct("<dIIIIIIBxHHH")
_BLOOM_BYTES = tuple(bits // 8 for _, bits in BLOOMS)
_OLD_NET_BYTES = _BLOOM_BYTES[_IP] + _BLOOM_BYTES[_PREFIX]
_FLOATS = N_WIN + 2 * N_PEAKS + 5 + 3 * N_BUCKETS  # windows, peaks, candidates, size stats, bucket counters
_UINTS = 2 * N_BUCKETS + 2 * N_CTX  # slot hashes and first-seen times
ENCODED_SIZE = _HEAD.size + 4 * _FLOATS + 4 * _UINTS + 2 * 24 + sum(_BLOOM_BYTES) + _OLD_NET_BYTES
# float offsets past the windows, peaks and candidates
_SZ_MU, _SZ_N, _C_LSZ, _C_GET, _SZ_VAR = range(5)
_SIZE_STATS = 5


# APIs, IPs, regions, buckets and user agents repeat endlessly: memoise their Bloom masks,
# families and hashes. Bounded caches (results never depend on what they hold).
_CACHE_MAX = 200_000
_families: dict[str, str] = {}
_masks: tuple[dict[str, int], ...] = tuple({} for _ in BLOOMS)
_prefixes: dict[str, str] = {}
_hashes: dict[str, int] = {}


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


def _slot_hash(text: str) -> int:
    h = _hashes.get(text)
    if h is None:
        h = stable_hash(text) or 1  # 0 marks an empty slot
        remember(_hashes, text, h, _CACHE_MAX)
    return h


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


def youth(age_s: float) -> float:
    """How new a context is: 1 when first seen within the hour, 0 after a day (log scale between)."""
    if age_s < 3600.0:
        return 1.0
    if age_s >= _DAY:
        return 0.0
    return 1.0 - math.log(age_s / 3600.0) / _LN24


_LN24 = math.log(24.0)


@dataclass(slots=True)
class Observation:
    """One event against its principal's baseline *before* the event was added.

    Window counts include the event itself; peaks, profiles, filters and ages are from before
    it. Features, rules and explanations are built from this, never from the updated state.
    """

    api_novel: bool
    ip_novel: bool
    bucket_novel: bool
    net_age_s: float  # since this principal first used the event's /24 (0: new now; inf: long known)
    client_age_s: float  # ... its client (user-agent family or session-name shape)
    region_age_s: float
    bucket_age_s: float  # ... since it first read the event's bucket
    hour_days: int  # days (of the last 16, before today) it was active in this UTC hour, or a neighbour
    days_seen: int  # days (of the last 16, before today) it was active at all
    evt1m: float
    evt10m: float
    get10m: float
    bytes10m: float
    get1h: float
    bytes1h: float
    size1h: float  # mean natural-log size of the objects read within ~1 h (0: none)
    err10m: float
    nov10m: float
    del10m: float
    secrets10m: float  # credential reads (CREDENTIAL_READS) in ~10 min
    peaks: tuple[float, ...]  # before the event, in PEAKS order
    size_mu: float  # typical natural-log size of the objects it reads (0: unknown)
    size_sd: float  # hour-to-hour spread of the mean log size (0: too few hours yet)
    age_s: float
    total: int
    bucket_get10m: float
    bucket_bytes10m: float
    bucket_get1h: float
    blooms: tuple[int, ...]  # before the event (``distinct`` reads them)
    caller_class: str  # the sticky class ("" while undecided)
    # Enough of its own history for rates and contexts to be compared with it (age, events and
    # active days past MATURE_*); set once here, as features, rules and explanations all ask.
    mature: bool
    hours_active: int = 0  # hours of the UTC day it was active in on earlier days (of the last 16)

    @property
    def hours_mature(self) -> bool:
        return self.days_seen >= MATURE_HOUR_DAYS

    def distinct(self, name: str) -> int:
        """Estimated distinct APIs / buckets / IPs / ... this principal had used before the event."""
        idx = _BLOOM_INDEX[name]
        return bloom_count(idx, self.blooms[idx])


_BLOOM_INDEX = {name: i for i, (name, _) in enumerate(BLOOMS)}
_INF = math.inf
_ZERO_CAND = bytes(4 * N_PEAKS)


def session_client(session: str) -> str:
    """The client a role session's name counts as: ``session:`` and the kind of name it is
    (``principal.session_kind``: ``person``, ``instance``, ``hex``, ``digits`` or ``name``), so a
    person-like name on a role that automation uses is a new client. Memoised per session: the
    Bloom mask and slot hash caches then get the same string, not a new one built and hashed per event."""
    client = _session_clients.get(session)
    if client is None:
        client = "session:" + session_kind(session)
        remember(_session_clients, session, client, _CACHE_MAX)
    return client


_session_clients: dict[str, str] = {}


class Baseline:
    """Mutable per-principal state; ``observe`` adds one event and returns its ``Observation``."""

    __slots__ = (
        "_earlier",
        "blooms",
        "cand_since",
        "cls",
        "first_seen",
        "fl",
        "hours",
        "last_day",
        "last_time",
        "net_since",
        "old_ip",
        "old_prefix",
        "over_at",
        "over_n",
        "slots",
        "total",
        "votes_human",
        "votes_sdk",
    )

    def __init__(self) -> None:
        self.last_time = 0.0
        self.first_seen = 0
        self.total = 0
        self.cand_since = 0
        self.net_since = 0  # when the current generation of the network filters began
        self.last_day = 0
        self.over_at = 0  # alert policy: the last event the forest scored over threshold, and how many in a row
        self.over_n = 0
        self.cls = 0
        self.votes_human = 0
        self.votes_sdk = 0
        # windows, peaks, candidates, size stats (mu, n, cand sum, cand gets), bucket counters
        self.fl = array("f", bytes(4 * _FLOATS))
        # bucket slots (hash, first) x2, then ctx slots (hash, first) x4: network, client x2, region
        self.slots = array("I", bytes(4 * _UINTS))
        self.hours = array("H", bytes(48))
        self._earlier: tuple[int, int] | None = None  # see _earlier_days
        self.blooms = [0] * len(BLOOMS)
        self.old_ip = 0  # the previous generation of the IP and prefix filters
        self.old_prefix = 0

    # -- serialisation -------------------------------------------------------------------
    def encode(self) -> bytes:
        parts = [
            _HEAD.pack(
                self.last_time,
                self.first_seen,
                min(self.total, 0xFFFFFFFF),
                self.cand_since,
                self.net_since,
                self.last_day,
                self.over_at,
                self.cls,
                self.votes_human,
                self.votes_sdk,
                self.over_n,
            ),
            self.fl.tobytes(),
            self.slots.tobytes(),
            self.hours.tobytes(),
        ]
        parts += [b.to_bytes(n, "little") for b, n in zip(self.blooms, _BLOOM_BYTES, strict=True)]
        parts.append(self.old_ip.to_bytes(_BLOOM_BYTES[_IP], "little"))
        parts.append(self.old_prefix.to_bytes(_BLOOM_BYTES[_PREFIX], "little"))
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Baseline:
        if len(data) != ENCODED_SIZE:
            raise ValueError(f"baseline record is {len(data)} bytes, expected {ENCODED_SIZE}")
        b = cls.__new__(cls)
        (
            b.last_time,
            b.first_seen,
            b.total,
            b.cand_since,
            b.net_since,
            b.last_day,
            b.over_at,
            b.cls,
            b.votes_human,
            b.votes_sdk,
            b.over_n,
        ) = _HEAD.unpack_from(data, 0)
        off = _HEAD.size
        arrays: list[Any] = []
        for code, n in (("f", 4 * _FLOATS), ("I", 4 * _UINTS), ("H", 48)):
            a = array(code)
            a.frombytes(data[off : off + n])
            arrays.append(a)
            off += n
        b.fl, b.slots, b.hours = arrays
        b._earlier = None
        blooms = []
        for n in _BLOOM_BYTES:
            blooms.append(int.from_bytes(data[off : off + n], "little"))
            off += n
        b.blooms = blooms
        n = _BLOOM_BYTES[_IP]
        b.old_ip = int.from_bytes(data[off : off + n], "little")
        off += n
        b.old_prefix = int.from_bytes(data[off : off + _BLOOM_BYTES[_PREFIX]], "little")
        return b

    @property
    def caller_class(self) -> str:
        return CLASS_CODES[self.cls] if self.cls < len(CLASS_CODES) else ""

    # -- the update ----------------------------------------------------------------------
    def observe(self, ev: Event, known_network: bool = False) -> Observation:
        """Add ``ev``; ``known_network``: its source is a configured known network (corporate
        VPN egress), never novel."""
        t = ev.time
        first = self.total == 0
        if first:
            self.first_seen = self.net_since = self.cand_since = int(t)
            self.last_time = t
            self.last_day = int(t // _DAY)
            dt = 0.0
        else:
            dt = t - self.last_time
            if dt < 0.0:
                dt = 0.0  # out of order: count it, but never decay backwards
            else:
                self.last_time = t
        if dt > 0.0:
            exp = math.exp
            d1, d10, d60 = exp(-dt / 60.0), exp(-dt / 600.0), exp(-dt / 3600.0)
        else:
            d1 = d10 = d60 = 1.0
        fl = self.fl
        if t - self.cand_since >= PEAK_COMMIT_S:
            # the hour's candidates are capped only if that hour began with a mature baseline: a
            # job's first run, seen while it was young, is what its peaks are made of
            self._commit(t, self.cand_since - self.first_seen >= MATURE_S and self.total >= MATURE_EVENTS)
        peaks_before = tuple(fl[N_WIN : N_WIN + N_PEAKS])
        sz = N_WIN + 2 * N_PEAKS
        size_mu = fl[sz + _SZ_MU] if fl[sz + _SZ_N] > 0.0 else 0.0
        size_sd = math.sqrt(fl[sz + _SZ_VAR]) if fl[sz + _SZ_N] >= 3.0 else 0.0

        # -- hour-of-day profile, in active days ---------------------------------------
        hours = self.hours
        day = int(t // _DAY)
        if day > self.last_day:
            shift = min(day - self.last_day, HOUR_DAYS)
            mask = (1 << HOUR_DAYS) - 1
            for h in range(24):
                hours[h] = (hours[h] << shift) & mask
            self.last_day = day
            self._earlier = None
        hour = int(t // 3600.0) % 24
        earlier = self._earlier
        if earlier is None:
            earlier = self._earlier = self._earlier_days()
        days_seen, spread = earlier
        if day < self.last_day:  # today's bit is an earlier day for this event
            days_seen += any(v & 1 for v in hours)
        here = (hours[hour] >> 1).bit_count()
        near = max((hours[hour - 1] >> 1).bit_count(), (hours[(hour + 1) % 24] >> 1).bit_count())
        hour_days = max(here, near // 2)
        if day >= self.last_day:
            hours[hour] |= 1
        # (an event from a day already shifted past is counted in the profile's totals only)

        # -- novelty and context ages ---------------------------------------------------
        blooms = self.blooms
        blooms_before = tuple(blooms)
        if self.old_ip or self.old_prefix:  # what is known is what either generation holds
            bb = blooms_before
            blooms_before = (bb[0], bb[1], bb[_IP] | self.old_ip, bb[_PREFIX] | self.old_prefix, *bb[4:])
        m = _mask(_API, f"{ev.service}:{ev.name}")
        api_known = blooms[_API] & m == m
        blooms[_API] |= m
        ti = int(t)
        region_age = client_age = net_age = _INF
        ip_known = True
        if ev.region:
            region_age = self._context(_REGION, ev.region, _REGION_SLOT, 1, ti, t)
        client = ua_family(ev.user_agent) if ev.user_agent else ""
        if client:
            client_age = self._context(_CLIENT, client, _CLIENT_SLOT, 2, ti, t)
        if ev.principal.session and ev.principal.identity_type == "AssumedRole":
            age = self._context(_CLIENT, session_client(ev.principal.session), _CLIENT_SLOT, 2, ti, t)
            client_age = min(client_age, age)
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
            net_age = self._slot_age(_NET_SLOT, _slot_hash(prefix), prefix_known, 1, ti, t)
            # the filters only fill when bits are added: only then can a generation end
            if not (ip_current and prefix_current) and t - self.net_since >= NETWORK_GENERATION_S:
                self._age_networks(t)
        bucket_known = True
        bucket_age = _INF
        b_get10 = b_bytes10 = b_get1h = 0.0
        # Data in a bucket is what is read: a console look at a bucket's policy or listing does
        # not make reading its objects familiar.
        if ev.bucket and (ev.is_data or ev.is_get_object or ev.is_delete):
            m = _mask(_BUCKET, ev.bucket)
            bucket_known = blooms[_BUCKET] & m == m
            blooms[_BUCKET] |= m
            b_get10, b_bytes10, b_get1h, bucket_age = self._bucket(ev, t, d10, d60, bucket_known)
        if first:  # a brand-new principal has seen nothing: flagging all of it new says nothing
            api_known = ip_known = bucket_known = True

        # -- windows and peak candidates -------------------------------------------------
        get = ev.is_get_object
        bytes_out = ev.bytes_out
        fl[EVT1] = fl[EVT1] * d1 + 1.0
        fl[EVT10] = fl[EVT10] * d10 + 1.0
        fl[GET10] = fl[GET10] * d10 + (1.0 if get else 0.0)
        fl[BYT10] = fl[BYT10] * d10 + bytes_out
        fl[GET60] = fl[GET60] * d60 + (1.0 if get else 0.0)
        fl[BYT60] = fl[BYT60] * d60 + bytes_out
        lsz = math.log(bytes_out) if get and bytes_out >= 1.0 else 0.0
        fl[LSZ60] = fl[LSZ60] * d60 + lsz
        fl[ERR10] = fl[ERR10] * d10 + (1.0 if ev.error_code else 0.0)
        fl[NOV10] = fl[NOV10] * d10 + (0.0 if api_known else 1.0)
        fl[DEL10] = fl[DEL10] * d10 + (1.0 if ev.is_delete else 0.0)
        fl[SEC10] = fl[SEC10] * d10 + (1.0 if ev.name in CREDENTIAL_READS else 0.0)
        c = N_WIN + N_PEAKS  # candidates, unrolled in PEAKS order
        if fl[EVT1] > fl[c]:
            fl[c] = fl[EVT1]
        if fl[EVT10] > fl[c + 1]:
            fl[c + 1] = fl[EVT10]
        if fl[GET10] > fl[c + 2]:
            fl[c + 2] = fl[GET10]
        if fl[BYT10] > fl[c + 3]:
            fl[c + 3] = fl[BYT10]
        if fl[GET60] > fl[c + 4]:
            fl[c + 4] = fl[GET60]
        if fl[BYT60] > fl[c + 5]:
            fl[c + 5] = fl[BYT60]
        if fl[DEL10] > fl[c + 6]:
            fl[c + 6] = fl[DEL10]
        if fl[ERR10] > fl[c + 7]:
            fl[c + 7] = fl[ERR10]
        if fl[SEC10] > fl[c + 8]:
            fl[c + 8] = fl[SEC10]
        if get and bytes_out >= 1.0:
            s = N_WIN + 2 * N_PEAKS
            fl[s + _C_LSZ] += lsz
            fl[s + _C_GET] += 1.0
        self.total += 1
        if not self.cls:
            self._vote(ev)

        gets = fl[GET60]
        age_s = t - self.first_seen
        total = self.total - 1
        return Observation(
            not api_known,
            not ip_known,
            not bucket_known,
            net_age,
            client_age,
            region_age,
            bucket_age,
            hour_days,
            days_seen,
            fl[EVT1],
            fl[EVT10],
            fl[GET10],
            fl[BYT10],
            gets,
            fl[BYT60],
            fl[LSZ60] / gets if gets >= 1.0 else 0.0,
            fl[ERR10],
            fl[NOV10],
            fl[DEL10],
            fl[SEC10],
            peaks_before,
            size_mu,
            size_sd,
            age_s,
            total,
            b_get10,
            b_bytes10,
            b_get1h,
            blooms_before,
            self.caller_class,
            age_s >= MATURE_S and total >= MATURE_EVENTS and days_seen >= MATURE_DAYS,
            spread,
        )

    def _earlier_days(self) -> tuple[int, int]:
        """(days active, hours of the day active in), over the days before the current one.

        They change only when the profile shifts to a new day (an event sets today's bit alone),
        so they are kept in ``_earlier`` until then instead of read from all 24 hours per event.
        """
        past = 0
        spread = 0
        for v in self.hours:
            past |= v
            if v > 1:
                spread += 1
        return (past >> 1).bit_count(), spread

    def _commit(self, t: float, mature: bool) -> None:
        """Fold the finished hour into the peaks and the typical object size (once an hour)."""
        fl = self.fl
        since = t - self.cand_since
        decay = math.exp(-since * _LN2 / PEAK_HALF_LIFE)
        c = N_WIN + N_PEAKS
        for i in range(N_PEAKS):
            p = fl[N_WIN + i] * decay
            cand = fl[c + i]
            if mature:
                cap = p * PEAK_GROWTH if p > PEAK_FLOOR[i] else PEAK_FLOOR[i] * PEAK_GROWTH
                if cand > cap:
                    cand = cap  # an ongoing anomaly is not absorbed within the hour
            fl[N_WIN + i] = cand if cand > p else p
            fl[c + i] = 0.0
        s = N_WIN + 2 * N_PEAKS
        gets = fl[s + _C_GET]
        if gets > 0.0:
            hour_mu = fl[s + _C_LSZ] / gets
            n = fl[s + _SZ_N]
            mu = fl[s + _SZ_MU]
            if n <= 0.0:
                fl[s + _SZ_MU] = hour_mu
            else:
                # mean and spread of its hourly mean sizes: a job reading one kind of object varies
                # little from hour to hour, a function reading two buckets' objects a lot
                w = 1.0 / min(n + 1.0, 48.0)
                d = hour_mu - mu
                step = d * w
                dvar = (d * d - fl[s + _SZ_VAR]) * w
                if mature:
                    step = max(-SIZE_STEP, min(SIZE_STEP, step))
                    dvar = min(dvar, fl[s + _SZ_VAR] + SIZE_STEP * SIZE_STEP)  # at most doubles, plus a little
                fl[s + _SZ_MU] = mu + step
                fl[s + _SZ_VAR] = fl[s + _SZ_VAR] + dvar
            fl[s + _SZ_N] = min(n + 1.0, 1e6)
            fl[s + _C_LSZ] = fl[s + _C_GET] = 0.0
        self.cand_since = int(t)

    def _context(self, idx: int, text: str, slot: int, n_slots: int, ti: int, t: float) -> float:
        """Add ``text`` to filter ``idx``; its age for this principal (0: new now, inf: long known)."""
        blooms = self.blooms
        m = _mask(idx, text)
        known = blooms[idx] & m == m
        blooms[idx] |= m
        return self._slot_age(slot, _slot_hash(text), known, n_slots, ti, t)

    def _slot_age(self, slot: int, h: int, known: bool, n_slots: int, ti: int, t: float) -> float:
        """The age of context hash ``h`` in its ``n_slots`` (1 or 2) slots from ``slot``, taking one if new."""
        slots = self.slots
        at = 2 * N_BUCKETS + 2 * slot  # (hash, first seen) of the first slot
        if slots[at] != h:
            if n_slots > 1 and slots[at + 2] == h:
                at += 2
            elif known or self.total == 0:
                return _INF
            else:  # new: take the slot whose context is oldest
                if n_slots > 1 and slots[at + 1] > slots[at + 3]:
                    at += 2
                slots[at] = h
                slots[at + 1] = ti
                return 0.0
        first = slots[at + 1]
        return t - first if first <= ti else 0.0

    def _bucket(self, ev: Event, t: float, d10: float, d60: float, known: bool) -> tuple[float, float, float, float]:
        """Per-bucket counters for the two most recent buckets, and the bucket's age.

        A bucket first read under a day ago keeps its slot against buckets long known: its age
        lives only there, and a slow read of a new bucket between a person's usual reads of
        two others must stay "a new bucket" for hours, not turn ordinary once evicted. A long
        known bucket that finds both slots young gets no slot (its own counters read 0; the
        principal's counters still see every read). ``d10`` and ``d60`` decay its counters
        since the principal's previous event (``observe``'s window decays).
        """
        h = _slot_hash(ev.bucket)
        slots, fl = self.slots, self.fl
        base = N_WIN + 2 * N_PEAKS + _SIZE_STATS
        for j in range(N_BUCKETS):  # (by 1.0 when no time has passed)
            fl[base + 3 * j] *= d10
            fl[base + 3 * j + 1] *= d10
            fl[base + 3 * j + 2] *= d60
        if slots[0] == h:
            j = 0
        elif slots[2] == h:
            j = 1
        else:
            young0 = slots[1] != 0 and t - slots[1] < _DAY
            young1 = slots[3] != 0 and t - slots[3] < _DAY
            if young0 != young1:
                j = 1 if young0 else 0  # keep the young bucket's age
            else:
                if young0 and (known or self.total == 0):
                    return 0.0, 0.0, 0.0, _INF
                j = 0 if fl[base + 2] <= fl[base + 5] else 1  # evict the slot with fewer reads this hour
            slots[2 * j] = h
            # A bucket the filter already knew was first read before the slot existed.
            slots[2 * j + 1] = 0 if known or self.total == 0 else int(t)
            fl[base + 3 * j] = fl[base + 3 * j + 1] = fl[base + 3 * j + 2] = 0.0
        g = 1.0 if ev.is_get_object else 0.0
        fl[base + 3 * j] += g
        fl[base + 3 * j + 1] += ev.bytes_out
        fl[base + 3 * j + 2] += g
        first = slots[2 * j + 1]
        age = (t - first if first <= t else 0.0) if first else _INF
        return fl[base + 3 * j], fl[base + 3 * j + 1], fl[base + 3 * j + 2], age

    def _age_networks(self, t: float) -> None:
        """Start a new generation of the network filters once the current one is half full."""
        blooms = self.blooms
        if blooms[_IP].bit_count() * 2 < BLOOMS[_IP][1] and blooms[_PREFIX].bit_count() * 2 < BLOOMS[_PREFIX][1]:
            return
        self.old_ip, self.old_prefix = blooms[_IP], blooms[_PREFIX]
        blooms[_IP] = blooms[_PREFIX] = 0
        self.net_since = int(t)

    def _vote(self, ev: Event) -> None:
        """Settle the sticky caller class of a principal whose identity leaves it open (see principal.py)."""
        hint = ev.principal.caller_class
        if not ev.principal.class_open:
            self.cls = CLASS_CODES.index(hint) if hint in CLASS_CODES else 1
            return
        kind = client_kind(ev.user_agent)
        if kind == "person":
            self.votes_human += 1
        elif kind == "sdk":
            self.votes_sdk += 1
        if self.votes_human + self.votes_sdk >= CLASS_VOTES:
            # settled by the principal's own first activity: mostly people's clients -> human
            self.cls = 1 if self.votes_human * 2 >= self.votes_human + self.votes_sdk else 2


def client_kind(user_agent: str) -> str:
    """``person`` (console, browser, CLI), ``sdk`` (an SDK or tool on a server) or ``""`` (unknown)."""
    if not user_agent:
        return ""
    if user_agent.startswith(_PERSON_CLIENTS):
        return "person"
    if user_agent.startswith(_SDK_CLIENTS) or "exec-env/" in user_agent:
        return "sdk"
    return ""


_PERSON_CLIENTS = ("Mozilla/", "console.amazonaws.com", "signin.amazonaws.com", "aws-cli/", "AWS Internal", "[aws-cli/")
_SDK_CLIENTS = (
    "aws-sdk-",
    "Boto3/",
    "boto3/",
    "Botocore/",
    "botocore/",
    "aws-go-sdk",
    "terraform",
    "[aws-sdk-",
    "[Boto3/",
)

assert N_BUCKETS == 2  # _bucket's slot lookup is unrolled for two slots
