"""Bounded memo caches: a dict emptied when it is full.

The hot path memoises pure functions of strings that repeat endlessly (event times,
principals, Bloom masks, /24 prefixes, thresholds). Emptying a full cache costs one miss
per live key afterwards and nothing per hit, which an LRU's bookkeeping would. No result
ever depends on what a cache holds.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` (emptying ``cache`` first if it holds ``limit`` keys); return it."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value
