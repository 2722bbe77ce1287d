"""A fast template stream for throughput benchmarks (:func:`iter_bulk`)."""

# ruff: noqa: S311 - seeded pseudo-randomness is the point here: reproducible traffic, not secrets

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from detector.errors import ConfigError
from detector.simulate.ids import _iso, _token
from detector.simulate.plan import _DAY, _HOUR, plan
from detector.simulate.populations import _DAY_GENERATORS, _role_key
from detector.simulate.records import _caller
from detector.simulate.scenarios.base import is_human as _is_human
from detector.simulate.world import _build_world

if TYPE_CHECKING:
    from detector.simulate.plan import SimulationPlan
    from detector.simulate.records import _Out
    from detector.simulate.world import _Principal

# ---------------------------------------------------------------------------------------------
# Bulk stream for throughput benchmarks
# ---------------------------------------------------------------------------------------------


def _hex_rows(gen: np.random.Generator, m: int, n_bytes: int, upper: bool = False) -> np.ndarray:
    """``m`` rows of ``2 * n_bytes`` random hex digits as ASCII codes."""
    raw = np.frombuffer(gen.bytes(n_bytes * m), dtype=np.uint8).reshape(m, n_bytes)
    nib = np.empty((m, 2 * n_bytes), dtype=np.uint8)
    nib[:, 0::2] = raw >> 4
    nib[:, 1::2] = raw & 15
    return nib + 48 + (nib > 9) * np.uint8(7 if upper else 39)


def _lines(rows: np.ndarray) -> list[str]:
    # one decode and split is far cheaper than formatting each id in Python
    out = np.full((rows.shape[0], rows.shape[1] + 1), 10, dtype=np.uint8)
    out[:, :-1] = rows
    return out.tobytes().decode("ascii").split("\n")[:-1]


def _uuid_batch(gen: np.random.Generator, m: int) -> list[str]:
    """``m`` random version-4 UUID strings."""
    chars = _hex_rows(gen, m, 16)
    chars[:, 12] = ord("4")
    chars[:, 16] = np.frombuffer(b"89ab", dtype=np.uint8)[chars[:, 16] & 3]
    out = np.full((m, 36), ord("-"), dtype=np.uint8)
    for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        out[:, dst:dst + width] = chars[:, src:src + width]
    return _lines(out)


def _hex_batch(gen: np.random.Generator, m: int) -> list[str]:
    """``m`` S3-style request ids: 16 upper-case hex digits."""
    return _lines(_hex_rows(gen, m, 8, upper=True))


def _bulk_identity(p: SimulationPlan, pr: _Principal) -> dict[str, Any]:
    """``pr``'s userIdentity during the bulk stream's day (one session, its credentials)."""
    t = p.start + _DAY + 8 * _HOUR
    if _is_human(pr):
        key = pr.access_key or "ASIA" + _token(p.seed, pr.key, "bulk")
        return _caller(pr, ip="", ua="", key=key, created=None if pr.access_key else t).identity()
    key, created = _role_key(p, pr, t, 21600)
    return _caller(pr, ip="", ua="", key=key, created=created).identity()


def iter_bulk(n_events: int, seed: int = 1, principals: int = 1000) -> Iterator[dict[str, Any]]:
    """``n_events`` realistic events as fast as possible, for benchmarks.

    A few principals of each kind and account run one business day through the same generators
    as :func:`iter_events` (nightly jobs scaled down so the mix is not all batch reads); those
    events become templates. Each output event is a template replayed for a random principal of
    the same kind and account (its identity and, for people, its address), with a fresh
    ``eventID``, ``requestID`` and ``eventTime`` (12 events per simulated second) and, for S3
    reads, a fresh key and size. Top-level dicts are new; nested dicts are shared between events,
    so treat events as read-only.
    """
    if n_events < 0:
        raise ConfigError(f"n_events must be >= 0, got {n_events}")
    p = plan(days=2, seed=seed, scenarios=(), test_days=0, principals=principals)
    w = _build_world(p)
    groups: dict[tuple[str, str], list[_Principal]] = defaultdict(list)
    for pr in w.principals:
        groups[(pr.kind, pr.account_id)].append(pr)
    templates: list[dict[str, Any]] = []
    members: list[list[tuple[dict[str, Any], str]]] = []  # per template: identities it may take
    for (kind, _acct), prs in groups.items():
        identities = [(_bulk_identity(p, pr), pr.ips[0] if pr.ips else "") for pr in prs]
        for pr in prs[:3]:
            sample = dataclasses.replace(pr, batch_size=max(1, pr.batch_size // 8))
            out: _Out = []
            _DAY_GENERATORS[kind](random.Random(f"{seed}|bulk|{pr.key}"), w, sample, 1, out)
            for _, ev in out:
                templates.append(ev)
                # only events made as this principal (not credential vending) may change hands, and
                # only for kinds whose identity is stable
                own = ev["userIdentity"].get("arn") == pr.arn
                members.append(identities if own and (_is_human(pr) or kind in ("lambda", "ec2_instance")) else [])
    if not templates:
        return
    short_rid = [len(t.get("requestID", "")) == 16 for t in templates]
    gen = np.random.default_rng(seed)
    # random draws come in fixed-size chunks so iter_bulk(n) is a prefix of iter_bulk(n + k)
    chunk = 16384
    base = int(p.start + _DAY)
    last_sec, last_iso = -1, ""
    i = 0
    while i < n_events:
        picks = gen.integers(0, len(templates), size=chunk).tolist()
        who = gen.integers(0, 1 << 30, size=chunk).tolist()
        event_ids = _uuid_batch(gen, chunk)
        request_ids = _uuid_batch(gen, chunk)
        s3_ids = _hex_batch(gen, chunk)
        sizes = gen.lognormal(14.0, 1.2, size=chunk).astype(np.int64).tolist()
        m = min(chunk, n_events - i)
        for j in range(m):
            k = picks[j]
            tpl = templates[k]
            ev = tpl.copy()
            sec = base + (i + j) // 12
            if sec != last_sec:
                last_sec, last_iso = sec, _iso(sec)
            ev["eventID"] = event_ids[j]
            ev["eventTime"] = last_iso
            if "requestID" in ev:
                ev["requestID"] = s3_ids[j] if short_rid[k] else request_ids[j]
            group = members[k]
            if group:
                ident, ip = group[who[j] % len(group)]
                ev["userIdentity"] = ident
                if ip:
                    ev["sourceIPAddress"] = ip
            if ev["eventName"] == "GetObject" and "additionalEventData" in ev:
                rp = tpl["requestParameters"]
                ev["requestParameters"] = {"bucketName": rp["bucketName"], "Host": rp["Host"],
                                           "key": f"{rp['key'].rsplit('/', 1)[0]}/part-{(i + j) % 100000:05d}.bin"}
                ad = tpl["additionalEventData"].copy()
                ad["bytesTransferredOut"] = sizes[j]
                ev["additionalEventData"] = ad
            yield ev
        i += m
