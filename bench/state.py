"""Bytes of state per principal at 100k principals.

Builds 100k distinct principals (ARN-length keys), each with a realistic handful of events
(several APIs, IPs, a bucket), stores them the way the local runtime does (dict of key ->
encoded ``PrincipalState``), and reports:

* encoded bytes per principal (what a checkpoint or a Faust changelog carries), key included;
* resident bytes per principal: tracemalloc's count of Python memory for the store, i.e. the
  bytes objects, the key strings and the dict itself;
* seconds to save and load that store as a local checkpoint (``runtime/checkpoint.py``).

Usage: python bench/state.py [--principals 100000]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from pathlib import Path

from detector.baseline import ENCODED_SIZE
from detector.event import Event
from detector.ordering import SeenIds
from detector.pipeline import PrincipalState
from detector.principal import Principal
from detector.runtime.checkpoint import Checkpoint, LocalCheckpointStore

GOAL = 512


def _event(p: Principal, i: int, t: float) -> Event:
    return Event(
        event_id=f"e{i}",
        time=t,
        name=("GetObject", "ListBuckets", "DescribeInstances", "AssumeRole")[i % 4],
        service=("s3", "s3", "ec2", "sts")[i % 4],
        region="us-east-1",
        account_id="111122223333",
        principal=p,
        source_ip=f"10.{i % 7}.{i % 3}.{i % 11}",
        user_agent="aws-cli/2.13.5 Python/3.11.4 Linux/6.1",
        error_code="",
        is_data=i % 4 == 0,
        bucket="data-bucket" if i % 4 == 0 else "",
        object_key=f"k{i}",
        bytes_out=1000.0 * i,
        is_get_object=i % 4 == 0,
        is_delete=False,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--principals", type=int, default=100_000)
    ap.add_argument("--events-each", type=int, default=12)
    args = ap.parse_args()

    built: list[tuple[str, bytes]] = []
    started = time.perf_counter()
    t0 = 1_767_600_000.0
    for n in range(args.principals):
        key = f"arn:aws:iam::{111122223333 + n % 50}:role/service-role/app-{n:06d}-task-role"
        p = Principal(key, "automation", "AssumedRole", key, "111122223333", "", key)
        state = PrincipalState.decode(None)
        for i in range(args.events_each):
            state.baseline.observe(_event(p, i, t0 + 60 * i))
        built.append((key, state.encode()))
    build_s = time.perf_counter() - started

    # Measure the store as the local runtime holds it: fresh key strings and values in a dict.
    # (Built outside tracemalloc, which slows every allocation ~10x; copied inside it.)
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    store = {(k + ".")[:-1]: bytes(bytearray(v)) for k, v in built}
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    encoded = sum(len(k.encode()) + len(v) for k, v in store.items()) / len(store)
    resident = (used - base) / len(store)
    print(f"principals                {len(store):>10,}")
    print(f"baseline record (bytes)   {ENCODED_SIZE:>10}")
    print(f"encoded/principal (bytes) {encoded:>10.0f}   (key + record: checkpoint / changelog)")
    print(f"resident/principal (bytes){resident:>10.0f}   (tracemalloc: bytes objects + keys + dict)")
    print(
        f"goal                      {GOAL:>10}   encoded {encoded / GOAL:.0%} of goal, resident {resident / GOAL:.0%}"
    )
    print(f"build time                {build_s:>10.1f} s ({len(store) * args.events_each / build_s:,.0f} events/s)")

    with tempfile.TemporaryDirectory() as tmp:
        local = LocalCheckpointStore(Path(tmp))
        started = time.perf_counter()
        size = local.save(Checkpoint("bench", {}, store, SeenIds(3600).encode()))
        saved = time.perf_counter() - started
        started = time.perf_counter()
        back = local.load()
        loaded = time.perf_counter() - started
    assert back is not None and back.store == store
    print(f"checkpoint save / load    {saved:>10.2f} s / {loaded:.2f} s ({size / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
