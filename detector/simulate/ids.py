"""Identifiers and formatting: seeded tokens, hex ids, UUIDs, ISO times, Poisson draws."""



from __future__ import annotations

import base64
import hashlib
import math
import random
import time
from functools import lru_cache

# ---------------------------------------------------------------------------------------------
# Identifiers and formatting
# ---------------------------------------------------------------------------------------------

_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # AWS key ids are base32-like
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _digest(*parts: object) -> int:
    raw = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=32).digest(), "big")


def _token(*parts: object, n: int = 16, alphabet: str = _KEY_ALPHABET) -> str:
    """A stable id derived from ``parts``: benign and attack code derive the same key independently."""
    num = _digest(*parts)
    out = []
    for _ in range(n):
        num, r = divmod(num, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


@lru_cache(maxsize=1 << 16)
def _hex(*parts: object, n: int = 16) -> str:
    return f"{_digest(*parts):064x}"[:n]


def _uuid(rng: random.Random) -> str:
    n = rng.getrandbits(128)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[n & 3]}{h[17:20]}-{h[20:]}"


def _s3_request_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016X}"


def _amz_id_2(rng: random.Random) -> str:
    return base64.b64encode(rng.getrandbits(448).to_bytes(56, "little")).decode()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _expiration(t: float) -> str:
    # STS responses print expirations Java-style: "Jan 5, 2026, 3:04:05 PM"
    g = time.gmtime(t)
    hour = g.tm_hour % 12 or 12
    half = "AM" if g.tm_hour < 12 else "PM"
    return f"{time.strftime('%b', g)} {g.tm_mday}, {g.tm_year}, {hour}:{g.tm_min:02d}:{g.tm_sec:02d} {half}"


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k
