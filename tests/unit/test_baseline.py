"""Baselines: event-time updates, novelty, bursts, bounded size and lossless round trips."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from detector import baseline as baseline_module
from detector.baseline import ENCODED_SIZE, Baseline, ip_prefix, ua_family
from detector.event import Event
from tests.factories import T0, event, get_object


def test_encoded_size_is_fixed_and_compact() -> None:
    assert ENCODED_SIZE <= 400
    b = Baseline()
    assert len(b.encode()) == ENCODED_SIZE
    for i in range(500):
        b.observe(event(name=f"Api{i}", t=T0 + i, ip=f"10.{i % 200}.{i % 7}.{i % 250}"))
    assert len(b.encode()) == ENCODED_SIZE


def test_first_event_is_not_novel_and_later_new_things_are() -> None:
    b = Baseline()
    first = b.observe(event(t=T0))
    assert not (first.api_novel or first.ip_novel or first.ua_novel)
    same = b.observe(event(t=T0 + 10))
    assert not (same.api_novel or same.ip_novel or same.prefix_novel or same.ua_novel or same.region_novel)
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
    assert new.api_novel and new.ip_novel and new.prefix_novel and new.ua_novel and new.region_novel
    assert new.distinct("api") == 1  # one API known before this one (estimated from the filter)


def test_aws_internal_sources_are_never_novel_ips() -> None:
    b = Baseline()
    b.observe(event(t=T0))
    obs = b.observe(event(t=T0 + 1, ip="s3.amazonaws.com"))
    assert not obs.ip_novel and not obs.prefix_novel


def test_windows_decay_in_event_time_and_peaks_remember_bursts() -> None:
    b = Baseline()
    for i in range(300):
        obs = b.observe(get_object("data", f"k{i}", T0 + i * 0.5))
    assert obs.get10m > 250
    later = b.observe(get_object("data", "k-late", T0 + 3 * 86400))
    assert later.get10m < 2  # three days later the 10 min window is empty again
    assert later.peaks[2] > 100  # ...but the principal's peak still remembers its bursts


def test_out_of_order_events_never_decay_backwards() -> None:
    b = Baseline()
    b.observe(event(t=T0 + 1000))
    before = list(b.win)
    obs = b.observe(event(t=T0))  # 1000 s late
    assert obs.evt1m == before[0] + 1
    assert b.last_time == T0 + 1000


def test_recent_bucket_tracks_a_bucket_first_read_recently() -> None:
    b = Baseline()
    for i in range(50):
        b.observe(get_object("usual", f"a{i}", T0 + i))
    obs = None
    for i in range(30):
        obs = b.observe(get_object("secrets", f"s{i}", T0 + 3600 + i * 60))
    assert obs is not None
    assert obs.bucket_age_s < 3600 and obs.bucket_get1h > 20


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
        assert all(math.isfinite(v) for v in (obs.evt1m, obs.get10m, obs.bytes1h, obs.hour_share))
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
            prefixes.append(obs.prefix_novel)
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
