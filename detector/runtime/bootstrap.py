"""Cold start from the archive: learn baselines from the last ``source.bootstrap_days`` of S3.

A new deployment (an S3 source, ``start: LATEST``, no saved state) would otherwise compare every
principal with an empty baseline for days. Instead ``detector run`` first reads the archive's
last days through the same ingest and baseline code, in learning mode (``Detector.learning``:
baselines only, no findings, nothing scored, nothing delivered), then follows the bucket live
from exactly the keys the bootstrap read up to, so no file is skipped or read twice.

The bootstrap ends where ``LATEST`` would have started (``LATEST_LOOKBACK_S`` before now): those
last minutes are processed live, with alerts, as they would have been without it. ``/readyz``
reports the ``bootstrap`` component not ready, with its progress, until it is done; a progress
line is logged every few seconds (a container's log is not a terminal).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from detector.http import Health
from detector.ingest import Ingest
from detector.metrics import Metrics
from detector.pipeline import Detector
from detector.settings import Settings
from detector.sources.s3follow import DELIVERY_LAG_S, LATEST_LOOKBACK_S, S3Source

log = logging.getLogger(__name__)

COMPONENT = "bootstrap"  # the /readyz component while it runs
PROGRESS_EVERY_S = 5.0


def wanted(settings: Settings, resumed: bool) -> bool:
    """Bootstrap only a fresh start of an S3 source that would otherwise begin at LATEST."""
    s = settings.source
    return s.kind == "s3" and not resumed and s.bootstrap_days > 0 and s.start == "LATEST" and bool(s.bucket)


def window(settings: Settings, now: float) -> tuple[float, float]:
    """``(begin, end)`` in delivery time: the last ``bootstrap_days`` up to where LATEST starts."""
    end = now - LATEST_LOOKBACK_S
    return end - settings.source.bootstrap_days * 86400.0, end


def bootstrap_source(settings: Settings, now: float) -> S3Source:
    s = settings.source
    begin, end = window(settings, now)
    return S3Source(
        s.bucket,
        prefix=s.prefix,
        accounts=s.accounts,
        regions=s.regions,
        start="AT_TIMESTAMP",
        start_timestamp=dt.datetime.fromtimestamp(begin, dt.UTC),
        # S3Source reads keys delivered before end_timestamp + DELIVERY_LAG_S
        end_timestamp=dt.datetime.fromtimestamp(end - DELIVERY_LAG_S, dt.UTC),
        follow=False,
        region=s.region,
        endpoint_url=s.endpoint_url,
    )


def run_bootstrap(
    settings: Settings,
    detector: Detector,
    ingest: Ingest,
    source: S3Source,
    stop: threading.Event,
    health: Health | None = None,
    metrics: Metrics | None = None,
    now: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, str] | None:
    """Learn ``source`` (a finite backfill) into ``detector``; the positions to follow from, or
    None when stopped first (nothing is checkpointed: the next start bootstraps again)."""
    from detector.runtime.local import Runtime  # the same loop as the live path, without sinks

    begin, end = window(settings, time.time() if now is None else now)
    span = max(end - begin, 1.0)
    runtime = Runtime(settings, source, [], detector, ingest, None, metrics)
    detector.learning = True
    started = last = clock()
    if health is not None:
        health.set_ready(COMPONENT, False, "learning baselines from the archive: 0%")
    log.info(
        "bootstrap: learning baselines from the archive before following it",
        extra={
            "event": "bootstrap_start",
            "days": settings.source.bootstrap_days,
            "from": dt.datetime.fromtimestamp(begin, dt.UTC).isoformat(),
            "to": dt.datetime.fromtimestamp(end, dt.UTC).isoformat(),
        },
    )
    try:
        source.start({})
        while not runtime.drained:
            if stop.is_set():
                log.warning("bootstrap stopped before it was done", extra={"event": "bootstrap_stopped"})
                return None
            runtime.step()
            t = clock()
            if t - last >= PROGRESS_EVERY_S or runtime.drained:
                last = t
                done = 1.0 if runtime.drained else min(1.0, max(0.0, (detector.watermark - begin) / span))
                eta = (t - started) * (1.0 - done) / done if done > 0 else None
                if health is not None and not runtime.drained:
                    health.set_ready(COMPONENT, False, f"learning baselines from the archive: {done:.0%}")
                log.info(
                    "bootstrap progress",
                    extra={
                        "event": "bootstrap_progress",
                        "done": round(done, 3),
                        "events": ingest.events,
                        "principals": len(detector.store),
                        "eta_s": round(eta, 1) if eta is not None else None,
                    },
                )
        positions = source.positions()
    finally:
        detector.learning = False
        source.stop()
    if health is not None:
        health.set_ready(COMPONENT, True)
    log.info(
        "bootstrap done; following the archive live",
        extra={
            "event": "bootstrap_done",
            "events": ingest.events,
            "principals": len(detector.store),
            "seconds": round(clock() - started, 1),
        },
    )
    return positions
