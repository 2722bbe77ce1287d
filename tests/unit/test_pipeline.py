"""The core end to end on hand-built traffic: each detector fires on its attack and stays
quiet on the benign twin; dedup of events and alerts; explanations; state in the store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import orjson
import pytest

from detector.alert import KINDS
from detector.event import Event
from detector.features import FEATURE_INDEX
from detector.model import fit
from detector.pipeline import Detector, PrincipalState
from detector.settings import Settings, load
from tests.factories import T0, assumed_role, event, get_object, iam_user

HOUR = 3600.0
DAY = 86400.0


def _settings(tmp_path: Path, yaml: str = "") -> Settings:
    f = tmp_path / "c.yaml"
    f.write_text(yaml)
    return load(f, env={})


def _history(days: int = 5) -> list[Event]:
    """A person: office hours, a few APIs, a handful of reads from one bucket, one IP."""
    out = []
    for d in range(days):
        for i in range(40):
            t = T0 + d * DAY + i * 600
            out.append(event(name=("DescribeInstances", "ListBuckets", "GetCallerIdentity")[i % 3], t=t))
            if i % 4 == 0:
                out.append(get_object("team-data", f"reports/{d}-{i}.csv", t + 5))
    return out


def _run(det: Detector, events: list[Event], batch: int = 512) -> list:
    alerts = []
    for i in range(0, len(events), batch):
        alerts.extend(det.process(events[i : i + batch]).alerts)
    return alerts


def test_bulk_getobject_burst_fires_and_its_benign_twin_does_not(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    hist = _history()
    assert _run(det, hist) == []
    start = T0 + 5 * DAY + 2 * HOUR
    benign = [get_object("team-data", f"reports/x{i}.csv", start + i * 30) for i in range(20)]
    assert _run(det, benign) == []
    burst = [get_object("team-data", f"all/{i}", start + HOUR + i * 0.2, nbytes=2_000_000) for i in range(1500)]
    alerts = _run(det, burst)
    opened = [a for a in alerts if a.status == "open"]
    assert [a.kind for a in opened] == ["getobject_burst"]
    a = opened[0]
    assert a.principal == "arn:aws:iam::111122223333:user/alice"
    assert a.score >= a.threshold >= 400  # the per-bucket floor (400) trips before the principal one (500)
    assert a.explanation[0].feature == "reads_10m"
    assert "GetObjects/10 min" in a.explanation[0].value and "peak" in a.explanation[0].baseline
    # one open alert, then updates (not one alert per event)
    assert len({x.alert_id for x in alerts}) == 1
    assert all(x.status == "update" for x in alerts[1:]) and len(alerts) <= 5


def test_burst_from_a_new_network_is_exfiltration(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    _run(det, _history())
    start = T0 + 5 * DAY + 3 * HOUR
    burst = [get_object("payroll", f"p/{i}", start + i * 0.3, ip="198.51.100.9") for i in range(800)]
    kinds = {a.kind for a in _run(det, burst) if a.status == "open"}
    assert "exfiltration" in kinds


def test_slow_drain_of_a_newly_touched_bucket_is_exfiltration(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    _run(det, _history())
    start = T0 + 5 * DAY + 20 * HOUR
    slow = [get_object("hr-archive", f"e/{i}", start + i * 90) for i in range(60)]  # 40/h at 05:00 UTC
    alerts = [a for a in _run(det, slow) if a.status == "open"]
    assert [a.kind for a in alerts] == ["exfiltration"]
    assert any(e.feature == "new_bucket_reads" for e in alerts[0].explanation)


def test_sensitive_api_first_use_fires_once_and_not_for_routine_use(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    hist = _history()
    # this person changes bucket policies routinely
    hist += [event(name="PutBucketPolicy", source="s3.amazonaws.com", t=T0 + 10 + d * DAY) for d in range(5)]
    hist.sort(key=lambda e: e.time)
    alerts = _run(det, hist)
    assert [a.kind for a in alerts if a.status == "open"] == ["sensitive_api_first_use"]  # the very first time only
    later = T0 + 5 * DAY + 4 * HOUR
    assert _run(det, [event(name="PutBucketPolicy", source="s3.amazonaws.com", t=later)]) == []
    new = _run(det, [event(name="StopLogging", source="cloudtrail.amazonaws.com", t=later + 60)])
    assert [a.kind for a in new] == ["sensitive_api_first_use"]
    assert "StopLogging" in new[0].summary


def test_a_first_secret_read_alerts_only_when_something_else_is_off(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    assert _run(det, _history()) == []
    later = T0 + 5 * DAY + 2 * HOUR
    read = {"name": "GetSecretValue", "source": "secretsmanager.amazonaws.com"}
    assert _run(det, [event(**read, t=later)]) == []  # usual network, client and hour: routine
    other = Detector(_settings(tmp_path), None, store={})
    _run(other, _history())
    stolen = _run(other, [event(**read, t=later, ip="198.51.100.77", ua="curl/8.1.2")])
    assert [a.kind for a in stolen] == ["sensitive_api_first_use"]
    assert {"new_network", "new_client"} <= {e.feature for e in stolen[0].explanation}


def test_known_networks_are_never_novel_nor_corroborate(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path, "detection:\n  known_cidrs: [198.51.100.0/22]\n"), None, store={})
    _run(det, _history())
    later = T0 + 5 * DAY + 2 * HOUR
    read = {"name": "GetSecretValue", "source": "secretsmanager.amazonaws.com"}
    assert _run(det, [event(**read, t=later, ip="198.51.101.7")]) == []  # the VPN, not a new network
    result = det.process([event(name="ListBuckets", t=later + 60, ip="198.51.102.9")])
    assert result.scores.size == 1
    assert result.features[0][FEATURE_INDEX["new_network"]] == 0.0


def test_recon_burst_needs_a_baseline(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    _run(det, _history())
    t = T0 + 5 * DAY + 5 * HOUR
    names = [
        f"List{x}"
        for x in (
            "Users",
            "Roles",
            "Policies",
            "Groups",
            "Keys",
            "Secrets",
            "Functions",
            "Clusters",
            "Tables",
            "Queues",
            "Topics",
            "Streams",
            "Trails",
            "Detectors",
        )
    ]
    alerts = _run(det, [event(name=n, t=t + i, error="AccessDenied") for i, n in enumerate(names)])
    assert "recon_burst" in {a.kind for a in alerts}
    fresh = Detector(_settings(tmp_path), None, store={})  # a brand-new principal doing the same
    assert "recon_burst" not in {a.kind for a in _run(fresh, [event(name=n, t=t + i) for i, n in enumerate(names)])}


def test_stolen_workload_credentials_used_from_a_laptop(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    role = assumed_role("web-instance-role", "i-0abc1234def567890")
    work = [
        event(
            name="GetObject",
            source="s3.amazonaws.com",
            t=T0 + i * 60,
            identity=role,
            ip="10.0.1.5",
            ua="Boto3/1.34.0 md/Botocore#1.34.0 Python/3.11 Linux/6.1",
            bucket="app",
            key="k",
        )
        for i in range(200)
    ]
    assert _run(det, work) == []
    stolen = event(
        name="ListBuckets",
        source="s3.amazonaws.com",
        t=T0 + DAY,
        identity=role,
        ip="203.0.113.99",
        ua="aws-cli/2.15.0 Python/3.11.6 Darwin/23.1.0 exe/x86_64",
    )
    alerts = _run(det, [stolen])
    assert [a.kind for a in alerts] == ["credential_misuse"]
    assert alerts[0].principal_arn.endswith("assumed-role/web-instance-role/i-0abc1234def567890")


def test_delete_burst(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    _run(det, _history())
    t = T0 + 5 * DAY + 6 * HOUR
    dels = [
        event(name="DeleteObject", source="s3.amazonaws.com", t=t + i * 0.5, bucket="team-data", key=f"k{i}")
        for i in range(300)
    ]
    assert "delete_burst" in {a.kind for a in _run(det, dels)}


def test_duplicate_event_ids_count_once(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    evs = [event(t=T0 + i * 10) for i in range(200)]  # 33 min: all inside the 1 h dedup window
    res = det.process(evs + evs[-50:])
    assert res.duplicates == 50 and res.scored == len(evs)
    again = det.process(evs[-10:])
    assert again.duplicates == 10 and again.scored == 0
    state = PrincipalState.decode(det.store["arn:aws:iam::111122223333:user/alice"])
    assert state.baseline.total == sum(1 for e in evs if e.principal.key.endswith("alice"))


def test_suppression_silences_matching_alerts_until_expiry(tmp_path: Path) -> None:
    until = dt.datetime.fromtimestamp(T0 + 10 * DAY, tz=dt.UTC).date().isoformat()
    s = _settings(
        tmp_path,
        f"suppressions:\n  - {{kind: sensitive_api_first_use, principal: '*alice', until: {until}, reason: audit}}\n",
    )
    det = Detector(s, None, store={})
    _run(det, _history(1))
    assert _run(det, [event(name="StopLogging", source="cloudtrail.amazonaws.com", t=T0 + 2 * DAY)]) == []
    assert _run(det, [event(name="DeleteTrail", source="cloudtrail.amazonaws.com", t=T0 + 20 * DAY)]) != []


def test_forest_anomalies_persist_are_explained_and_only_for_mature_principals(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path, "detection:\n  defaults: {anomaly_quantile: 0.99}\n"), None, store={})
    hist = _history(6)
    # other people with everyday novelty (travel, a new API, a failed call)
    for d in range(6):
        for i in range(30):
            who = iam_user(f"user{i % 6}")
            t = T0 + d * DAY + i * 900 + 300
            hist.append(
                event(
                    identity=who,
                    t=t,
                    ip=f"192.0.2.{(d * 7 + i) % 200}" if i % 5 == 0 else "192.0.2.1",
                    name="ListUsers" if i % 11 == 0 else "DescribeInstances",
                    error="AccessDenied" if i % 13 == 0 else None,
                    region="eu-west-1" if i % 17 == 0 else "us-east-1",
                )
            )
    hist.sort(key=lambda e: e.time)
    results = [det.process(hist[i : i + 256]) for i in range(0, len(hist), 256)]
    x = np.vstack([r.features for r in results])
    eligible = np.concatenate([r.eligible for r in results])
    assert 0 < eligible.sum() < len(hist)  # the first two days of each principal may not alert
    det.set_model(fit(x[eligible], trees=100, seed=0))
    t = T0 + 6 * DAY + 3 * HOUR + 1800  # 03:30 UTC Sunday: never active then
    odd = {
        "t": t,
        "ip": "198.51.100.200",
        "ua": "python-requests/2.31 Windows/10",
        "region": "ap-southeast-2",
        "error": "AccessDenied",
    }
    first = det.process([event(name="GetSessionToken", source="sts.amazonaws.com", **odd)])
    assert first.scores[0] > 0.99 and first.alerts == []  # one odd event is not yet behaviour
    odd["t"] = t + 120
    second = det.process([event(name="GetFederationToken", source="sts.amazonaws.com", **odd)])
    kinds = {a.kind for a in second.alerts}
    assert "anomalous_activity" in kinds
    a = next(a for a in second.alerts if a.kind == "anomalous_activity")
    assert a.context["family"] == "forest" and a.score >= a.threshold == 0.99
    named = {e.feature for e in a.explanation}
    assert {"new_network", "new_region", "new_client"} & named
    assert all(e.contribution >= 0 for e in a.explanation)

    def odd_pair(at: float, n: int) -> list:
        more = {**odd, "ip": f"198.51.100.{200 + n}", "region": ("ap-south-1", "sa-east-1")[n - 1]}
        return [event(name="GetSessionToken", source="sts.amazonaws.com", **{**more, "t": at + k * 60}) for k in (0, 1)]

    def forest_opens(res: object) -> list:
        return [x for x in res.alerts if x.context["family"] == "forest" and x.status == "open"]  # type: ignore[attr-defined]

    # odd again three hours later: the same forest alert goes on (alerts.forest_hold_s), not a new one
    assert forest_opens(det.process(odd_pair(t + 3 * HOUR, 1))) == []
    # ...and once it has been quiet for longer than the hold, a new one opens
    assert len(forest_opens(det.process(odd_pair(t + 3 * HOUR + 21600 + 600, 2)))) == 1
    # a principal seen for the first time, doing the same, is not judged by the forest
    young = {**odd, "identity": iam_user("newcomer")}
    res = det.process([event(name="GetSessionToken", source="sts.amazonaws.com", **young) for _ in range(3)])
    assert not res.eligible.any() and all(a.context["family"] == "rules" for a in res.alerts)


def test_alert_json_escapes_attacker_strings(tmp_path: Path) -> None:
    det = Detector(_settings(tmp_path), None, store={})
    _run(det, _history(1))
    evil = "\x1b[31mevil\n" + "A" * 5000
    alerts = _run(det, [event(name="StopLogging", source="cloudtrail.amazonaws.com", t=T0 + DAY, ua=evil)])
    doc = orjson.loads(alerts[0].to_json())
    ua = doc["context"]["user_agent"]
    assert "\x1b" not in ua and "\n" not in ua and len(ua) <= 256
    assert set(doc) >= {
        "alert_id",
        "kind",
        "principal",
        "principal_arn",
        "account_id",
        "score",
        "threshold",
        "event_time",
        "detected_at",
        "event_ids",
        "explanation",
        "summary",
    }
    assert doc["kind"] in KINDS


@pytest.mark.parametrize("batch", [1, 7, 4096])
def test_results_do_not_depend_on_batch_size(tmp_path: Path, batch: int) -> None:
    evs = _history(2) + [get_object("team-data", f"b{i}", T0 + 2 * DAY + i, nbytes=10**6) for i in range(400)]
    ref = Detector(_settings(tmp_path), None, store={})
    ref_alerts = {(a.alert_id, a.status, a.event_count) for a in _run(ref, evs, 512)}
    det = Detector(_settings(tmp_path), None, store={})
    assert {(a.alert_id, a.status, a.event_count) for a in _run(det, evs, batch)} == ref_alerts
    assert det.store == ref.store


def test_the_decoded_state_cache_never_changes_answers_and_follows_the_store(tmp_path: Path) -> None:
    events = _history(3)
    stores: list[dict[str, bytes]] = []
    for yaml in ("pipeline: {state_cache_principals: 0}\n", ""):
        store: dict[str, bytes] = {}
        _run(Detector(_settings(tmp_path, yaml), None, store=store), events, batch=50)
        stores.append(store)
    assert stores[0] == stores[1]

    det = Detector(_settings(tmp_path), None, store={})
    _run(det, events[:100])
    key = events[0].principal.key
    det.store[key] = PrincipalState.decode(None).encode()  # replaced behind the detector's back
    _run(det, events[100:101])
    assert PrincipalState.decode(det.store[key]).baseline.total == 1


def test_only_keeps_one_family_and_changes_nothing_else(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "detection:\n  defaults: {anomaly_quantile: 0.99}\n")
    hist = _history(6)
    warm = Detector(settings, None, store={})
    results = [warm.process(hist[i : i + 256]) for i in range(0, len(hist), 256)]
    x = np.vstack([r.features for r in results])
    model = fit(x[np.concatenate([r.eligible for r in results])], trees=50, seed=0)
    t = T0 + 6 * DAY + 3 * HOUR
    odd = {"ip": "198.51.100.200", "ua": "python-requests/2.31 Windows/10", "region": "ap-southeast-2"}
    attack = [event(name="GetSessionToken", source="sts.amazonaws.com", t=t + 60 * k, **odd) for k in range(3)]
    attack += [get_object("payroll", f"x/{k}", t + 300 + k, ip=odd["ip"]) for k in range(400)]
    attack += [event(name="StopLogging", source="cloudtrail.amazonaws.com", t=t + 900)]

    def alerts(only: str | None) -> list[tuple[str, str, str]]:
        det = Detector(settings, model, store={}, only=only)
        found = _run(det, hist + attack)
        return sorted((a.kind, a.context["family"], a.alert_id) for a in found)

    both, forest, rules = alerts(None), alerts("forest"), alerts("rules")
    assert {f for _, f, _ in both} == {"forest", "rules"}  # the attack is seen by both families
    assert forest == [a for a in both if a[1] == "forest"]
    assert rules == [a for a in both if a[1] == "rules"]
    with pytest.raises(ValueError, match="only must be one of"):
        Detector(settings, model, store={}, only="model")


def test_a_new_bucket_counts_once_however_many_reads_made_it_new() -> None:
    from detector.baseline import Observation
    from detector.policy import anomaly_finding
    from detector.settings import Thresholds

    obs = Observation.__new__(Observation)
    ev = get_object("team-bucket", "k", T0, identity=iam_user("alice"))
    th = Thresholds()
    surprise = [0.0] * len(FEATURE_INDEX)
    surprise[FEATURE_INDEX["new_bucket"]] = surprise[FEATURE_INDEX["new_bucket_reads"]] = 3.0
    assert anomaly_finding(ev, obs, 0.9999, 0.999, surprise, th, "") is None  # one fact, measured twice
    surprise[FEATURE_INDEX["hour_rarity"]] = 2.5
    found = anomaly_finding(ev, obs, 0.9999, 0.999, surprise, th, "")
    assert found is not None and found.kind == "unusual_data_access"
    assert set(found.features) == {"new_bucket", "new_bucket_reads", "hour_rarity"}


def test_reads_in_a_rare_hour_are_two_facts_in_one_feature() -> None:
    from detector.baseline import Observation
    from detector.policy import anomaly_finding
    from detector.settings import Thresholds

    obs = Observation.__new__(Observation)
    ev = get_object("team-bucket", "k", T0, identity=iam_user("alice"))
    surprise = [0.0] * len(FEATURE_INDEX)
    surprise[FEATURE_INDEX["reads_1h"]] = 3.0
    assert anomaly_finding(ev, obs, 0.9999, 0.999, surprise, Thresholds(), "") is None  # volume alone
    surprise[FEATURE_INDEX["rare_hour_reads"]] = 3.0  # ...in an hour it rarely works: a second fact
    found = anomaly_finding(ev, obs, 0.9999, 0.999, surprise, Thresholds(), "")
    assert found is not None and found.features[0] in {"reads_1h", "rare_hour_reads"}


def test_a_burst_is_one_fact_however_many_windows_it_fills() -> None:
    from detector.baseline import Observation
    from detector.policy import anomaly_finding
    from detector.settings import Thresholds

    obs = Observation.__new__(Observation)
    ev = get_object("datasets", "k", T0, identity=iam_user("alice"))
    surprise = [0.0] * len(FEATURE_INDEX)
    for name in ("events_1m", "reads_10m", "reads_1h", "bytes_1h"):
        surprise[FEATURE_INDEX[name]] = 3.0
    assert anomaly_finding(ev, obs, 0.9999, 0.999, surprise, Thresholds(), "") is None
    surprise[FEATURE_INDEX["object_size"]] = 2.5  # ...unlike far larger objects than it reads
    assert anomaly_finding(ev, obs, 0.9999, 0.999, surprise, Thresholds(), "") is not None
