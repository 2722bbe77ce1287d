"""Baselines: event-time updates, novelty and context ages, bursts, the hour profile, sticky
caller classes, bounded size and lossless round trips."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from detector import baseline as baseline_module
from detector.baseline import (
    ENCODED_SIZE,
    EVT1,
    P_BYT60,
    P_GET10,
    Baseline,
    ip_prefix,
    ua_family,
    youth,
)
from detector.event import Event
from detector.features import hour_rarity
from tests.factories import T0, assumed_role, event, get_object, iam_user

DAY = 86400.0
HOUR = 3600.0


def test_encoded_size_is_fixed_and_compact() -> None:
    assert ENCODED_SIZE <= 468
    b = Baseline()
    assert len(b.encode()) == ENCODED_SIZE
    for i in range(500):
        b.observe(event(name=f"Api{i}", t=T0 + i, ip=f"10.{i % 200}.{i % 7}.{i % 250}"))
    assert len(b.encode()) == ENCODED_SIZE


def test_first_event_is_not_novel_and_later_new_things_are() -> None:
    b = Baseline()
    first = b.observe(event(t=T0))
    assert not (first.api_novel or first.ip_novel) and first.net_age_s == first.client_age_s == math.inf
    same = b.observe(event(t=T0 + 10))
    assert not (same.api_novel or same.ip_novel) and same.net_age_s == same.region_age_s == math.inf
    new = b.observe(
        event(
            name="ListBuckets",
            source="s3.amazonaws.com",
            t=T0 + 20,
            ip="198.51.100.7",
            ua="Mozilla/5.0 (Windows NT 10.0)",
            region="eu-west-1",
        )
    )
    assert new.api_novel and new.ip_novel
    assert new.net_age_s == new.client_age_s == new.region_age_s == 0.0
    assert new.distinct("api") == 1  # one API known before this one (estimated from the filter)


def test_a_context_stays_young_for_as_long_as_it_is_used_then_fades_over_a_day() -> None:
    b = Baseline()
    for i in range(200):
        b.observe(event(t=T0 + i * 600))
    ages = [b.observe(event(t=T0 + 2 * DAY + i * 600, ip="198.51.100.7")).net_age_s for i in range(150)]
    assert ages[0] == 0.0 and ages[5] == 3000.0  # not novel once and then ordinary: 50 min old
    assert youth(ages[5]) == 1.0 and 0.0 < youth(ages[20]) < 1.0 and youth(ages[149]) == 0.0


def test_aws_internal_sources_are_never_novel_ips() -> None:
    b = Baseline()
    b.observe(event(t=T0))
    obs = b.observe(event(t=T0 + 1, ip="s3.amazonaws.com"))
    assert not obs.ip_novel and obs.net_age_s == math.inf


def test_windows_decay_in_event_time_and_peaks_remember_bursts() -> None:
    b = Baseline()
    for i in range(300):
        obs = b.observe(get_object("data", f"k{i}", T0 + i * 0.5))
    assert obs.get10m > 250
    later = b.observe(get_object("data", "k-late", T0 + 3 * DAY))
    assert later.get10m < 2  # three days later the 10 min window is empty again
    assert later.peaks[P_GET10] > 100  # ...but the principal's peak still remembers its bursts


def _steady(b: Baseline, start: float, hours: int, per_hour: int, nbytes: int = 50_000) -> None:
    for h in range(hours):
        for i in range(per_hour):
            b.observe(get_object("data", f"k{h}-{i}", start + h * HOUR + i * HOUR / per_hour, nbytes=nbytes))


def test_an_ongoing_anomaly_is_not_absorbed_into_the_peaks_within_the_hour() -> None:
    b = Baseline()
    _steady(b, T0, 72, 30)  # three days of 30 reads an hour
    usual = b.observe(get_object("data", "x", T0 + 72 * HOUR)).peaks[P_BYT60]
    _steady(b, T0 + 73 * HOUR, 6, 90, nbytes=1_250_000)  # 3x the rate, 25x the objects, for 6 hours
    after = b.observe(get_object("data", "y", T0 + 79 * HOUR)).peaks[P_BYT60]
    assert after <= usual * 4.0**6 and after < 75 * usual  # grown at most 4x an hour, not all at once
    young = Baseline()
    _steady(young, T0, 3, 30)
    _steady(young, T0 + 3 * HOUR, 2, 90, nbytes=1_250_000)  # a young principal learns its load at once
    assert young.observe(get_object("data", "z", T0 + 6 * HOUR)).peaks[P_BYT60] > 50 * usual


def test_typical_object_size_moves_slowly_once_mature() -> None:
    b = Baseline()
    _steady(b, T0, 48, 20, nbytes=100_000)
    obs = b.observe(get_object("data", "x", T0 + 48 * HOUR, nbytes=100_000))
    assert abs(obs.size_mu - math.log(100_000)) < 0.01
    _steady(b, T0 + 49 * HOUR, 3, 20, nbytes=2_500_000)  # 25x larger objects for 3 hours
    obs = b.observe(get_object("data", "y", T0 + 52 * HOUR, nbytes=2_500_000))
    assert obs.size1h - obs.size_mu > math.log(25) - 3 * 0.5 - 0.01  # each hour moves it at most 0.5


def test_one_busy_hour_cannot_make_an_odd_hour_usual() -> None:
    b = Baseline()
    for d in range(9):  # a nightly job: 01:00-01:40 UTC for nine days
        for i in range(400):
            b.observe(get_object("etl", f"{d}/{i}", T0 - 8 * HOUR + d * DAY + i * 6))
    night = b.observe(get_object("etl", "n", T0 - 8 * HOUR + 9 * DAY))
    assert night.days_seen == 9 and hour_rarity(night) == 0.0
    afternoon = T0 + 6 * HOUR + 9 * DAY  # 15:00 UTC
    for i in range(2000):  # two busy hours at an hour it is never active in
        obs = b.observe(get_object("other", f"a{i}", afternoon + i * 3.6))
    assert hour_rarity(obs) == 1.0  # still rare: today is not part of its profile


def test_reads_in_a_rare_hour_are_their_own_feature_however_much_it_reads_by_day() -> None:
    from detector.features import FEATURE_INDEX, row

    j = FEATURE_INDEX["rare_hour_reads"]
    b = Baseline()
    person = iam_user("dana")
    for d in range(9):  # a person syncing 400 objects every working day, 09:00-10:00 UTC
        for i in range(400):
            b.observe(get_object("team", f"{d}/{i}", T0 + d * DAY + i * 9, identity=person))
    day = T0 + 9 * DAY
    for i in range(150):  # the same 150 objects by day: its usual hour, under its own peak
        obs = b.observe(get_object("team", f"d{i}", day + i * 12, identity=person))
    assert row(get_object("team", "d", day, identity=person), obs, obs.peaks)[j] == 0.0
    night = day + 17 * HOUR  # 02:00 UTC the next night
    for i in range(20):  # a few objects at night: under the floor
        obs = b.observe(get_object("team", f"n{i}", night + i * 30, identity=person))
    assert hour_rarity(obs) == 1.0
    assert row(get_object("team", "n", night, identity=person), obs, obs.peaks)[j] == 0.0
    for i in range(130):  # 150 at night: well under its daytime peak, far over the night's floor
        obs = b.observe(get_object("team", f"m{i}", night + 600 + i * 12, identity=person))
    x = row(get_object("team", "m", night, identity=person), obs, obs.peaks)
    assert x[FEATURE_INDEX["reads_1h"]] == 0.0 and x[j] > 0.5


def test_out_of_order_events_never_decay_backwards() -> None:
    b = Baseline()
    b.observe(event(t=T0 + 1000))
    before = list(b.fl)
    obs = b.observe(event(t=T0))  # 1000 s late
    assert obs.evt1m == before[EVT1] + 1
    assert b.last_time == T0 + 1000


def test_the_caller_class_is_sticky_and_settled_by_the_principals_own_first_events() -> None:
    person = Baseline()
    for i in range(60):
        person.observe(event(t=T0 + i * 60))  # aws-cli
    assert person.caller_class == "human"
    for i in range(200):  # a stolen key used with an SDK later does not make it automation
        obs = person.observe(event(t=T0 + DAY + i, ua="Boto3/1.35.36 md/Botocore#1.35.36 os/linux#6.1"))
    assert obs.caller_class == "human"
    service = Baseline()
    for i in range(60):
        service.observe(event(identity=iam_user("svc"), t=T0 + i, ua="aws-sdk-java/2.29.29 Linux/5.10"))
    assert service.caller_class == "automation"
    sso = Baseline()
    sso.observe(event(identity=assumed_role("AWSReservedSSO_Dev_0123", "ana@example.com"), t=T0, ua="aws-sdk-go/1"))
    assert sso.caller_class == "human"  # settled by the identity itself, at once


def test_a_person_like_session_name_on_an_automation_role_is_a_new_client() -> None:
    b = Baseline()
    ua = "aws-sdk-go-v2/1.32.6 os/linux lang/go#1.23.4"
    for i in range(200):
        b.observe(event(identity=assumed_role("orders-task-role", f"{i:032x}"), t=T0 + i * 60, ua=ua))
    obs = b.observe(event(identity=assumed_role("orders-task-role", "john.smith"), t=T0 + DAY, ua=ua))
    assert obs.client_age_s == 0.0


def test_recent_bucket_tracks_a_bucket_first_read_recently() -> None:
    b = Baseline()
    for i in range(50):
        b.observe(get_object("usual", f"a{i}", T0 + i))
    obs = None
    for i in range(30):
        obs = b.observe(get_object("secrets", f"s{i}", T0 + 3600 + i * 60))
    assert obs is not None
    assert obs.bucket_age_s < 3600 and obs.bucket_get1h > 20


def test_a_new_bucket_read_slowly_between_reads_of_two_usual_ones_stays_new_for_hours() -> None:
    b = Baseline()
    for i in range(200):  # two buckets read for days
        b.observe(get_object(("reports", "exports")[i % 2], f"a{i}", T0 + i * 1800))
    t = T0 + 200 * 1800 + 600
    ages = []
    for i in range(120):  # then a bucket never read before, one object every few minutes for 6 h...
        t += 180
        if i % 2:  # ...between the usual reads of both usual buckets
            b.observe(get_object("reports", f"r{i}", t))
            b.observe(get_object("exports", f"e{i}", t + 1))
        obs = b.observe(get_object("payroll", f"p{i}", t + 2))
        ages.append(obs.bucket_age_s)
    assert ages[0] < 60 and all(a < 6.5 * HOUR for a in ages)  # never "long known" on the way
    assert obs.bucket_get1h > 15
    # and the usual buckets are still usual
    assert b.observe(get_object("reports", "last", t + 5)).bucket_age_s == math.inf


def test_parsers_for_user_agents_and_prefixes() -> None:
    assert ua_family("aws-cli/1.16.19 Python/2.7.10 Darwin/17.7.0 botocore/1.12.9") == "aws-cli/1 darwin"
    assert ua_family("[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0]") == "aws-cli/1 darwin"
    assert ua_family("") == ""
    assert ip_prefix("203.0.113.77") == "203.0.113"
    assert ip_prefix("2001:db8:1:2::1") == "2001:db8:1"
    assert ip_prefix("AWS Internal") == ""


_events = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=7 * 86400, allow_nan=False),
        st.sampled_from(["GetObject", "ListBuckets", "DeleteObject", "PutBucketPolicy", "DescribeInstances"]),
        st.sampled_from(["1.2.3.4", "5.6.7.8", "s3.amazonaws.com", "2001:db8::1", "AWS Internal", ""]),
        st.text(max_size=60),
        st.sampled_from(["", "AccessDenied"]),
        st.integers(min_value=0, max_value=10**12),
    ),
    max_size=60,
)


def _mk(spec: tuple[float, str, str, str, str, int]) -> Event:
    t, name, ip, ua, err, nbytes = spec
    src = "s3.amazonaws.com" if name in ("GetObject", "DeleteObject") else "ec2.amazonaws.com"
    bucket = "b" if src.startswith("s3") else None
    return event(
        name=name, source=src, t=T0 + t, ip=ip, ua=ua, error=err or None, bucket=bucket, key="k", bytes_out=nbytes
    )


@settings(max_examples=150, deadline=None)
@given(_events)
def test_any_event_sequence_round_trips_and_stays_finite(specs: list[tuple[float, str, str, str, str, int]]) -> None:
    b = Baseline()
    for spec in specs:
        obs = b.observe(_mk(spec))
        assert all(math.isfinite(v) for v in (obs.evt1m, obs.get10m, obs.bytes1h, obs.size1h, obs.size_mu))
        assert 0 <= obs.hour_days <= 16 and 0 <= obs.days_seen <= 16
    data = b.encode()
    assert len(data) == ENCODED_SIZE
    again = Baseline.decode(data)
    assert again.encode() == data
    assert again.blooms == b.blooms and again.total == b.total


def test_distinct_counts_are_estimated_from_the_filters_within_a_few() -> None:
    b = Baseline()
    for i in range(40):
        b.observe(event(name=f"Api{i}", t=T0 + i, ip=f"10.0.{i % 12}.1"))
    obs = b.observe(event(name="Api0", t=T0 + 40, ip="10.0.0.1"))  # nothing new: counts as they were
    assert abs(obs.distinct("api") - 40) <= 4
    assert abs(obs.distinct("ip") - 12) <= 2
    assert obs.distinct("bucket") == 0



def _roam(b: Baseline, days: int) -> tuple[list[bool], list[bool]]:
    """A person for ``days``: the home IP every day, a new network every other day.

    Returns whether each new network's IP and prefix read as novel; asserts home never does
    after the first day.
    """
    home = "198.51.100.20"
    ips, prefixes = [], []
    for day in range(days):
        t = T0 + day * 86400
        assert not b.observe(event(t=t, ip=home)).ip_novel or day == 0
        if day % 2:
            obs = b.observe(event(t=t + 3600, ip=f"10.{day // 200}.{day % 200}.9"))
            ips.append(obs.ip_novel)
            prefixes.append(obs.net_age_s == 0.0)
    return ips, prefixes


def test_network_filters_age_so_months_of_roaming_keep_new_networks_new(monkeypatch) -> None:
    # The last 30 new networks of 8 months (120 in all). Measured: 24 and 25 of 30 with aging,
    # 9 and 6 of 30 with a filter that never forgets.
    for novel in _roam(Baseline(), 240):
        assert sum(novel[-30:]) >= 22, novel[-30:]
    monkeypatch.setattr(baseline_module, "NETWORK_GENERATION_S", math.inf)
    for novel in _roam(Baseline(), 240):
        assert sum(novel[-30:]) <= 12, novel[-30:]


def test_a_network_generation_survives_the_round_trip_and_a_churning_principal_stays_quiet() -> None:
    b = Baseline()
    _roam(b, 120)
    assert b.old_ip and b.old_prefix and b.net_since > b.first_seen  # at least one generation has passed
    again = Baseline.decode(b.encode())
    assert (again.old_ip, again.old_prefix, again.net_since) == (b.old_ip, b.old_prefix, b.net_since)
    # A role on ever-changing addresses fills its filter within days; after a generation ends its
    # churn must stay about as unremarkable as before it ended.
    churn = Baseline()
    novel = []
    for i in range(40 * 300):  # 300 calls a day from 10 new addresses a day
        obs = churn.observe(event(t=T0 + i * 288, ip=f"10.{i // 30 % 250}.{i // 7500}.5"))
        novel.append(obs.ip_novel)
    # (its filter is full by day 30: no new bit can be set, so no generation ends, and none need)
    before, after = sum(novel[27 * 300 : 30 * 300]), sum(novel[31 * 300 : 34 * 300])
    assert after <= before + 3, (before, after)


def test_a_forged_byte_count_cannot_poison_the_peaks_for_good() -> None:
    from detector.baseline import PEAK_FLOOR, PEAK_GROWTH, PEAKS, Baseline
    from detector.event import MAX_BYTES_OUT

    b = Baseline()
    j = PEAKS.index("bytes1h")
    for d in range(6):  # a worker reading ~40 x 50 kB an hour, 10 hours a day
        for i in range(400):
            b.observe(get_object("team-data", f"k/{d}/{i}", T0 + d * DAY + i * 90))
    before = b.observe(get_object("team-data", "k/x", T0 + 6 * DAY)).peaks[j]
    b.observe(get_object("team-data", "forged", T0 + 6 * DAY + 10, nbytes=MAX_BYTES_OUT))  # 5 TiB in one event
    after = b.observe(get_object("team-data", "k/y", T0 + 6 * DAY + 2 * HOUR)).peaks[j]
    # one committed hour raises a peak at most PEAK_GROWTH times (a small one, from its floor)
    assert after <= max(before, PEAK_FLOOR[j]) * PEAK_GROWTH < 1e-4 * MAX_BYTES_OUT
    # and it decays: two months later a 10 GB read stands out against the peak again
    later = b.observe(get_object("team-data", "k/z", T0 + 66 * DAY, nbytes=10 * 2**30))
    assert later.bytes1h > 5 * later.peaks[j]


def test_a_harvest_of_credentials_stands_out_against_its_own_rate_of_them_not_its_overall_rate() -> None:
    from detector.features import FEATURE_INDEX, row

    j = FEATURE_INDEX["secret_reads_10m"]
    b = Baseline()
    role = assumed_role("orders-api", "orders-api")
    sm = "secretsmanager.amazonaws.com"
    t = T0
    for _ in range(3 * 24 * 6):  # three days of 10-minute slices: 40 calls, 3 of them a secret read
        for i in range(40):
            name, source = ("GetSecretValue", sm) if i % 13 == 0 else ("PutItem", "dynamodb.amazonaws.com")
            obs = b.observe(event(name=name, source=source, t=t + i * 15, identity=role))
        t += 600
    assert obs.mature and obs.peaks[baseline_module.P_SEC10] >= 3.0
    usual = row(event(name="GetSecretValue", source=sm, t=t, identity=role), obs, obs.peaks)
    assert usual[j] == 0.0
    for i in range(30):  # 30 secrets in under 4 minutes, among its usual calls
        obs = b.observe(event(name="GetSecretValue", source=sm, t=t + i * 7, identity=role))
        obs = b.observe(event(name="PutItem", source="dynamodb.amazonaws.com", t=t + i * 7 + 3, identity=role))
    x = row(event(name="GetSecretValue", source=sm, t=t + 210, identity=role), obs, obs.peaks)
    assert x[j] > 1.0
    assert x[FEATURE_INDEX["events_10m"]] == 0.0  # its overall rate hides it
