"""Cold start from the S3 archive against moto: ``detector run`` with an S3 source, ``start:
LATEST`` and no saved state first learns baselines from the last ``bootstrap_days`` (no alerts,
``/readyz`` not ready), then follows the bucket from exactly where the bootstrap stopped."""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from detector.http import Health
from detector.ingest import Ingest
from detector.pipeline import Detector
from detector.principal import principal_of
from detector.runtime import bootstrap
from detector.runtime.checkpoint import LocalCheckpointStore
from detector.runtime.local import Runtime, run
from detector.settings import Settings
from detector.sources.s3follow import READ_SUFFIX, S3Source
from tests.factories import ListSink, cloudtrail, iam_user
from tests.integration.test_s3_source import ACCOUNTS, put_trail_file, trail_key

_HOUR = 3600.0


def archive(s3: Any, now: float) -> tuple[str, str]:
    """Three days of carol's routine (with one StopLogging, which would alert live), then dave's
    StopLogging five minutes ago, inside the window LATEST reads live. Returns (bucket, old key)."""
    bucket = f"trail-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    carol, dave = iam_user("carol"), iam_user("dave")
    old_key = ""
    for h in range(0, 72, 4):
        t = now - 3 * 86400 + h * _HOUR
        events = [
            cloudtrail(name="ListBuckets", source="s3.amazonaws.com", t=t - 300 + j, identity=carol) for j in range(5)
        ]
        if h == 24:
            events.append(cloudtrail(name="StopLogging", source="cloudtrail.amazonaws.com", t=t - 200, identity=carol))
        old_key = trail_key(ACCOUNTS[0], "us-east-1", t)
        put_trail_file(s3, bucket, old_key, events)
    recent = now - 300
    put_trail_file(
        s3,
        bucket,
        trail_key(ACCOUNTS[0], "us-east-1", recent),
        [cloudtrail(name="StopLogging", source="cloudtrail.amazonaws.com", t=recent - 60, identity=dave)],
    )
    return bucket, old_key


def settings_for(bucket: str, endpoint: str, **extra: Any) -> Settings:
    source = {"kind": "s3", "bucket": bucket, "region": "us-east-1", "endpoint_url": endpoint, "poll_interval_s": 0.2}
    return Settings.model_validate({"source": source | extra.pop("source", {}), **extra})


def test_the_bootstrap_learns_without_alerting_then_follows_from_where_it_stopped(
    moto_server: Any, boto_client_factory: Any
) -> None:
    now = time.time()
    bucket, old_key = archive(boto_client_factory("s3", moto_server), now)
    settings = settings_for(bucket, moto_server.endpoint)
    assert bootstrap.wanted(settings, resumed=False) and not bootstrap.wanted(settings, resumed=True)
    assert not bootstrap.wanted(settings_for(bucket, moto_server.endpoint, source={"start": "TRIM_HORIZON"}), False)
    assert not bootstrap.wanted(settings_for(bucket, moto_server.endpoint, source={"bootstrap_days": 0}), False)

    health = Health()
    health.set_ready("model", True)
    src = bootstrap.bootstrap_source(settings, now)
    readiness: list[bool] = []
    poll = src.poll

    def watched_poll(max_records: int, timeout_s: float) -> Any:
        readiness.append(health.ready()[0])
        return poll(max_records, timeout_s)

    src.poll = watched_poll  # type: ignore[method-assign]
    detector, ingest = Detector(settings, None, {}), Ingest()
    positions = bootstrap.run_bootstrap(settings, detector, ingest, src, threading.Event(), health, now=now)
    assert positions is not None and readiness and not any(readiness)  # never ready while learning
    assert health.ready() == (True, {})
    assert ingest.events == 18 * 5 + 1 and not detector.learning
    carol = principal_of({"userIdentity": iam_user("carol")})
    assert carol.key in detector.store  # her baseline was learned
    # it read up to the last file before the live window (the "#read" entries list the keys
    # returned inside the relist margin, for a restart to skip)
    assert max(v for k, v in positions.items() if not k.endswith(READ_SUFFIX)) == old_key

    # the live source continues from those positions: only dave's recent file, and it alerts
    live = S3Source(bucket, region="us-east-1", endpoint_url=moto_server.endpoint, poll_interval_s=0.2)
    sink = ListSink()
    runtime = Runtime(settings, live, [sink], detector, ingest, None)
    live.start(positions)
    deadline = time.monotonic() + 15
    while not sink.alerts and time.monotonic() < deadline:
        runtime.step()
    live.stop()
    assert [(a.kind, a.context["event_name"]) for a in sink.alerts] == [("sensitive_api_first_use", "StopLogging")]
    # the live listing lists RELIST_MARGIN_S behind the last key, but skips the keys the bootstrap
    # returned there (carol's last file is not read again): only dave's event is new
    assert "dave" in sink.alerts[0].principal and ingest.events == 18 * 5 + 1 + 1


def test_detector_run_bootstraps_a_fresh_start_once(moto_server: Any, boto_client_factory: Any, tmp_path: Path) -> None:
    now = time.time()
    bucket, _ = archive(boto_client_factory("s3", moto_server), now)
    out = tmp_path / "alerts.jsonl"
    settings = settings_for(
        bucket,
        moto_server.endpoint,
        source={"follow": False},
        sinks=[{"kind": "file", "path": str(out)}],
        state_dir=str(tmp_path / "state"),
        metrics={"port": 0},
        model=str(tmp_path / "no-model"),
    )
    assert run(settings, argparse.Namespace(once=True)) == 0
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(a["kind"], a["context"]["event_name"]) for a in alerts] == [("sensitive_api_first_use", "StopLogging")]
    cp = LocalCheckpointStore(tmp_path / "state").load()
    assert cp is not None and len(cp.store) == 2  # carol learned in the bootstrap, dave live
