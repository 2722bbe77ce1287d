"""The simulator: determinism, labels that match the stream, real CloudTrail shapes, archive layout."""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector import simulate
from detector.errors import ConfigError
from detector.simulate import SCENARIOS, Label, SimulationPlan

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
ARCHIVE_PATH = re.compile(
    r"AWSLogs/(\d{12})/CloudTrail/([a-z]{2}-[a-z]+-\d)/(\d{4})/(\d{2})/(\d{2})/"
    r"\1_CloudTrail_\2_(\d{8})T(\d{4})Z_[A-Za-z0-9]{16}\.json\.gz"
)


def small_plan(seed: int = 11, **kw: Any) -> SimulationPlan:
    return simulate.plan(days=kw.pop("days", 2), seed=seed, test_days=kw.pop("test_days", 1),
                         principals=kw.pop("principals", 20), **kw)


@pytest.fixture(scope="module")
def plan() -> SimulationPlan:
    return small_plan()


@pytest.fixture(scope="module")
def events(plan: SimulationPlan) -> list[dict[str, Any]]:
    return list(simulate.iter_events(plan))


@pytest.fixture(scope="module")
def labels(plan: SimulationPlan) -> list[Label]:
    return simulate.labels(plan)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- plan -------------------------------------------------------------------------------------


def test_plan_puts_history_first_and_starts_on_a_monday() -> None:
    p = simulate.plan(days=10)
    assert p.start == simulate.DEFAULT_START
    assert datetime.fromtimestamp(p.start, UTC).strftime("%A %H:%M") == "Monday 00:00"
    assert p.test_start == p.start + 7 * 86400
    assert p.scenarios == tuple(SCENARIOS)
    assert (p.seed, p.n_principals) == (7, 60)


def test_unknown_scenario_is_a_value_error_listing_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'exfil'") as info:
        simulate.plan(days=5, scenarios=["mass_delete", "exfil"])
    assert isinstance(info.value, ConfigError)
    for name in SCENARIOS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 3, "test_days": 3}, r"--test-days \(default 3\) must be at least 0 and less than --days \(3\)"),
        ({"days": 0}, "--days must be at least 1"),
        ({"days": 5, "test_days": 0}, "--test-days >= 1"),
        ({"days": 5, "principals": 5}, "--principals must be at least"),
        ({"days": 5, "intensity": "loud"}, "--intensity must be random, nominal or NAME=VALUE"),
        ({"days": 5, "intensity": {"nope": 3}}, "unknown scenario 'nope'"),
        ({"days": 5, "intensity": {"mass_delete": -1}}, "must be a positive number"),
        ({"days": 5, "variant": "silent"}, "--variant must be one of random, loud, quiet"),
        ({"days": 5, "start": simulate.DEFAULT_START + 3600}, "midnight"),
    ],
)
def test_inconsistent_plans_are_rejected_with_a_reason(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate.plan(**kwargs)


def test_roster_has_every_kind_across_both_accounts() -> None:
    roster = simulate.roster(simulate.plan(days=10))
    kinds = Counter(entry["kind"] for entry in roster)
    assert len(roster) == 60
    assert set(kinds) >= {"human_sso", "human_iam_user", "lambda", "ecs_task", "ec2_instance", "batch", "deploy",
                          "aws_service"}
    assert {entry["account_id"] for entry in roster} >= set(simulate.ACCOUNTS)
    assert len({entry["arn"] for entry in roster}) == len(roster)
    # several people share one SSO permission set, each under their own session name
    sso_roles = Counter(entry["role_arn"] for entry in roster if entry["kind"] == "human_sso")
    assert max(sso_roles.values()) >= 3
    assert all("/aws-reserved/sso.amazonaws.com/AWSReservedSSO_" in arn for arn in sso_roles)


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_events(plan: SimulationPlan, events: list[dict[str, Any]]) -> None:
    again = list(simulate.iter_events(small_plan()))
    assert orjson.dumps(again) == orjson.dumps(events)
    assert simulate.labels(small_plan()) == simulate.labels(plan)


def test_another_seed_gives_other_events(events: list[dict[str, Any]]) -> None:
    other = list(simulate.iter_events(small_plan(seed=12)))
    assert {e["eventID"] for e in other}.isdisjoint({e["eventID"] for e in events})
    assert [e["eventName"] for e in other[:200]] != [e["eventName"] for e in events[:200]]


def test_event_ids_are_unique_uuids(events: list[dict[str, Any]]) -> None:
    ids = [e["eventID"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 for i in ids[:2000])


# --- labels -----------------------------------------------------------------------------------


def test_one_label_per_scenario(labels: list[Label]) -> None:
    assert sorted(label.scenario for label in labels) == sorted(SCENARIOS)
    assert all(label.event_ids for label in labels)


def test_label_events_appear_exactly_once_with_the_label_principal(
    events: list[dict[str, Any]], labels: list[Label]
) -> None:
    by_id = Counter(e["eventID"] for e in events)
    index = {e["eventID"]: e for e in events}
    for label in labels:
        assert len(set(label.event_ids)) == len(label.event_ids)
        for event_id in label.event_ids:
            assert by_id[event_id] == 1, (label.scenario, event_id)
            event = index[event_id]
            assert event["userIdentity"]["arn"] == label.principal_arn
            assert event["userIdentity"]["accountId"] == label.account_id
            assert label.start <= epoch(event["eventTime"]) <= label.end


def test_attacks_happen_only_in_test_days(plan: SimulationPlan, labels: list[Label]) -> None:
    for label in labels:
        assert plan.test_start <= label.start <= label.end < plan.start + plan.days * 86400


def test_scenario_subset_keeps_the_same_attacks() -> None:
    full = {label.scenario: label for label in simulate.labels(small_plan())}
    [only] = simulate.labels(small_plan(scenarios=["mass_delete"]))
    assert only == full["mass_delete"]
    assert simulate.labels(small_plan(scenarios=[])) == []


def test_scenarios_have_their_signature() -> None:
    p = small_plan(seed=4, days=3, intensity="nominal", variant="loud")
    index = {e["eventID"]: e for e in simulate.iter_events(p)}
    by = {label.scenario: [index[i] for i in label.event_ids] for label in simulate.labels(p)}
    bulk = by["bulk_exfiltration"]
    assert sum(e["eventName"] == "GetObject" for e in bulk) == 3000
    assert len({e["requestParameters"]["bucketName"] for e in bulk}) == 1
    recon = by["recon_burst"]
    assert len(recon) == 100 and len({e["eventName"] for e in recon}) >= 40
    assert any(e.get("errorCode") for e in recon)
    assert sum(e["eventName"] == "DeleteObject" for e in by["mass_delete"]) == 500
    assert {e["eventName"] for e in by["privilege_escalation"]} & {"AttachUserPolicy", "CreateAccessKey"}
    assert {e["eventName"] for e in by["sensitive_config_change"]} & {
        "PutBucketPolicy", "DeleteBucketPublicAccessBlock", "ModifySnapshotAttribute", "StopLogging", "DeleteTrail"}
    stolen = by["stolen_credentials"]
    assert stolen[0]["eventName"] == "GetCallerIdentity"
    assert len({e["sourceIPAddress"] for e in stolen}) == 1
    slow = [epoch(e["eventTime"]) for e in by["slow_exfiltration"]]
    assert max(slow) - min(slow) > 4 * 3600
    steady = [epoch(e["eventTime"]) for e in by["service_new_bucket_steady"]]
    assert 2.5 * 3600 < max(steady) - min(steady) and 100 < len(steady) / ((max(steady) - min(steady)) / 3600) < 220
    assert {e["eventName"] for e in by["compute_hijack"]} >= {"RunInstances", "CreateKeyPair"}
    assert {e["eventName"] for e in by["secrets_harvest"]} >= {"ListSecrets", "GetSecretValue"}
    quiet = [epoch(e["eventTime"]) for e in by["quiet_recon"]]
    assert len(quiet) == 40 and max(quiet) - min(quiet) > 3600  # under a burst: hours, not minutes


def test_every_catalogue_entry_says_what_it_exercises_and_its_range() -> None:
    assert tuple(simulate.CATALOGUE) == SCENARIOS and len(SCENARIOS) >= 15
    for name, s in simulate.CATALOGUE.items():
        assert s.name == name and s.summary and s.detection and s.intensity.unit
        assert 0 < s.intensity.low <= s.intensity.nominal <= s.intensity.high
        assert set(s.variants) <= set(simulate.VARIANTS)


def test_intensity_is_nominal_drawn_in_range_or_as_given() -> None:
    nominal = {lab.scenario: lab.intensity for lab in simulate.labels(small_plan(intensity="nominal"))}
    assert nominal == {n: s.intensity.nominal for n, s in simulate.CATALOGUE.items()}
    drawn = {lab.scenario: lab.intensity for lab in simulate.labels(small_plan(seed=3))}
    for name, value in drawn.items():
        spec = simulate.CATALOGUE[name].intensity
        assert spec.low <= value <= spec.high
    assert len(set(drawn.values())) > 10  # drawn, not fixed
    given = simulate.labels(small_plan(seed=3, intensity={"mass_delete": 77}, scenarios=["mass_delete"]))
    assert [(lab.intensity, len(lab.event_ids) >= 77) for lab in given] == [(77.0, True)]


def test_a_stronger_attack_is_bigger_on_the_same_victim() -> None:
    for name in ("bulk_exfiltration", "service_new_bucket_steady", "night_reads_known_network", "secrets_harvest"):
        spec = simulate.CATALOGUE[name].intensity
        [low] = simulate.labels(small_plan(seed=6, scenarios=[name], intensity={name: spec.low}))
        [high] = simulate.labels(small_plan(seed=6, scenarios=[name], intensity={name: spec.high}))
        assert low.principal_arn == high.principal_arn
        assert len(high.event_ids) > 2 * len(low.event_ids), name


def test_quiet_attacks_come_from_where_the_victim_already_works() -> None:
    p = simulate.plan(days=6, seed=8, test_days=2, principals=30, variant="quiet",
                      scenarios=["bulk_exfiltration", "night_reads_known_network", "mass_delete"])
    labels = {lab.event_ids[0]: lab for lab in simulate.labels(p)}
    attack_ids = {i for lab in labels.values() for i in lab.event_ids}
    seen: dict[str, set[tuple[str, str]]] = {}
    attack: dict[str, set[tuple[str, str]]] = {}
    for e in simulate.iter_events(p):
        where = (e["sourceIPAddress"], e["userAgent"])
        if e["eventID"] in attack_ids:
            attack.setdefault(e["userIdentity"]["arn"], set()).add(where)
        elif epoch(e["eventTime"]) < p.test_start:
            seen.setdefault(e["userIdentity"].get("arn", ""), set()).add(where)
    assert {lab.variant for lab in labels.values()} == {"quiet"} and len(attack) == 3
    for arn, places in attack.items():
        ips = {ip for ip, _ in seen[arn]}
        assert {ip for ip, _ in places} <= ips, arn


def test_worlds_differ_by_seed_rates_over_an_order_of_magnitude() -> None:
    from detector.simulate.world import _build_world

    one, two = (_build_world(small_plan(seed=s, principals=60)) for s in (1, 2))
    for kinds in (("lambda", "ecs_task", "ec2_instance"), ("human_sso", "human_iam_user")):
        rates = sorted(pr.rate for pr in one.principals if pr.kind in kinds)
        assert rates[-1] / rates[0] > 10, kinds
    sizes = [pr.size_scale for pr in one.principals if pr.kind != "aws_service"]
    assert max(sizes) / min(sizes) > 5
    assert {pr.wave for pr in one.principals if pr.kind == "lambda"} != {pr.wave for pr in two.principals
                                                                         if pr.kind == "lambda"}
    assert one.buckets["acme-datalake-raw"].median_bytes != two.buckets["acme-datalake-raw"].median_bytes


def test_benign_change_happens_and_carries_no_label() -> None:
    p = simulate.plan(days=8, seed=12, test_days=3, principals=40)
    from detector.simulate.world import _build_world

    w = _build_world(p)
    new_service = [pr for pr in w.principals if pr.starter and pr.kind in ("lambda", "ecs_task")]
    team = [pr for pr in w.principals if pr.new_bucket.startswith("acme-") and "-team-" in pr.new_bucket]
    assert any(pr.first_day >= p.history_days for pr in new_service) and len(team) >= 2
    label_ids = {i for lab in simulate.labels(p) for i in lab.event_ids}
    team_reads = [e for e in simulate.iter_events(p)
                  if (e.get("requestParameters") or {}).get("bucketName") == team[0].new_bucket]
    assert team_reads and not label_ids & {e["eventID"] for e in team_reads}
    assert len({e["userIdentity"]["arn"] for e in team_reads}) >= 2


# --- shapes -----------------------------------------------------------------------------------


def check_identity(ui: dict[str, Any]) -> None:
    kind = ui["type"]
    if kind == "AWSService":
        assert ui["invokedBy"].endswith(".amazonaws.com")
        return
    if kind == "WebIdentityUser":
        assert ui["identityProvider"].endswith("token.actions.githubusercontent.com")
        return
    assert re.fullmatch(r"\d{12}", ui["accountId"])
    assert ui["arn"].startswith(("arn:aws:iam::", "arn:aws:sts::"))
    if kind == "IAMUser":
        assert ui["arn"].endswith(f":user/{ui['userName']}")
        assert ui["principalId"].startswith("AIDA")
    else:
        assert kind == "AssumedRole"
        assert re.fullmatch(r"ASIA[A-Z2-7]{16}", ui["accessKeyId"])
        ctx = ui["sessionContext"]
        issuer = ctx["sessionIssuer"]
        assert issuer["type"] == "Role"
        assert issuer["arn"].startswith(f"arn:aws:iam::{ui['accountId']}:role/")
        assert issuer["accountId"] == ui["accountId"]
        assert ui["principalId"] == f"{issuer['principalId']}:{ui['arn'].rsplit('/', 1)[1]}"
        assert issuer["arn"].endswith("/" + issuer["userName"])
        assert ISO.fullmatch(ctx["attributes"]["creationDate"])
        assert ctx["attributes"]["mfaAuthenticated"] in ("true", "false")


def test_every_event_has_the_cloudtrail_fields(events: list[dict[str, Any]]) -> None:
    for e in events:
        assert e["eventVersion"] in ("1.08", "1.09")
        assert ISO.fullmatch(e["eventTime"])
        epoch(e["eventTime"])
        for key in ("eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent", "eventID"):
            assert isinstance(e[key], str) and e[key], key
        assert re.fullmatch(r"\d{12}", e["recipientAccountId"])
        assert e["eventType"] in ("AwsApiCall", "AwsConsoleSignIn")
        assert isinstance(e["readOnly"], bool)
        # like the real thing, only sign-ins come without a request id
        assert e["eventType"] == "AwsConsoleSignIn" or isinstance(e["requestID"], str)
        assert (e["eventCategory"], e["managementEvent"]) in (("Management", True), ("Data", False))
        if "errorCode" in e:
            assert isinstance(e["errorMessage"], str)
            assert e["responseElements"] is None
        check_identity(e["userIdentity"])


def test_s3_data_events_have_the_real_shape(events: list[dict[str, Any]]) -> None:
    data = [e for e in events if e["eventCategory"] == "Data"]
    assert len(data) > len(events) / 3
    for e in data:
        assert e["eventSource"] == "s3.amazonaws.com"
        rp = e["requestParameters"]
        bucket = rp["bucketName"]
        assert rp["Host"].startswith(bucket + ".s3.")
        assert e["userAgent"].startswith("[") and e["userAgent"].endswith("]")
        obj, bucket_res = e["resources"]
        assert obj["type"] == "AWS::S3::Object"
        assert bucket_res == {"accountId": e["recipientAccountId"], "type": "AWS::S3::Bucket",
                              "ARN": f"arn:aws:s3:::{bucket}"}
        extra = e["additionalEventData"]
        assert isinstance(extra["bytesTransferredOut"], int) and extra["bytesTransferredOut"] >= 0
        assert isinstance(extra["bytesTransferredIn"], int)
        assert extra["x-amz-id-2"] and extra["CipherSuite"]
        assert re.fullmatch(r"[0-9A-F]{16}", e["requestID"])
        if e["eventName"] == "GetObject":
            assert obj["ARN"] == f"arn:aws:s3:::{bucket}/{rp['key']}"
            assert e["readOnly"] is True
            if "errorCode" not in e:
                assert extra["bytesTransferredOut"] > 0


def test_keys_are_ones_real_cloudtrail_uses(events: list[dict[str, Any]]) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"CloudTrail corpus not found at {CORPUS}")
    real: list[dict[str, Any]] = []
    for path in CORPUS.glob("stratus-red-team/*.json"):
        real += json.loads(path.read_text())
    for path in CORPUS.glob("flaws2-cloud/**/*.json.gz"):
        real += json.loads(gzip.decompress(path.read_bytes()))["Records"]
    for line in (CORPUS / "panther-tests.jsonl").read_text().splitlines():
        if isinstance(row := json.loads(line).get("event"), dict):
            real.append(row)

    def keys(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {"top": set(), "userIdentity": set(), "sessionContext": set(), "extra": set()}
        for e in rows:
            out["top"] |= set(e)
            ui = e.get("userIdentity")
            if isinstance(ui, dict):
                out["userIdentity"] |= set(ui)
                if isinstance(ui.get("sessionContext"), dict):
                    out["sessionContext"] |= set(ui["sessionContext"])
            if isinstance(e.get("additionalEventData"), dict):
                out["extra"] |= set(e["additionalEventData"])
        return out

    ours, theirs = keys(events), keys(real)
    # documented CloudTrail fields of GitHub OIDC sign-ins that the corpus happens not to contain
    theirs["userIdentity"].add("identityProvider")
    theirs["extra"].add("identityProviderConnectionVerificationMethod")
    for part in ours:
        assert ours[part] <= theirs[part], (part, ours[part] - theirs[part])


def test_stream_is_roughly_in_event_time_order(events: list[dict[str, Any]], plan: SimulationPlan) -> None:
    times = [epoch(e["eventTime"]) for e in events]
    high = times[0]
    for t in times:
        assert t >= high - 30  # delivery shuffles a little, never by more than a few seconds
        high = max(high, t)
    assert plan.start <= min(times) and max(times) < plan.start + plan.days * 86400


def test_traffic_has_people_services_and_nightly_bursts(events: list[dict[str, Any]]) -> None:
    types = Counter(e["userIdentity"]["type"] for e in events)
    assert set(types) >= {"AssumedRole", "IAMUser", "AWSService"}
    agents = " ".join({e["userAgent"] for e in events})
    for marker in ("Mozilla/5.0", "aws-cli/2.", "Boto3/", "amazon-ssm-agent", "exec-env/AWS_Lambda"):
        assert marker in agents
    assert any(e["eventName"] == "ConsoleLogin" for e in events)
    batch_reads = Counter((e["userIdentity"]["arn"], e["eventTime"][:13]) for e in events
                          if e["eventName"] == "GetObject" and "-role" in e["userIdentity"]["arn"]
                          and any(j in e["userIdentity"]["arn"] for j in ("etl", "compaction", "feature", "backup")))
    assert max(batch_reads.values()) > 150  # a nightly batch job reads hundreds of objects in its window
    errors = sum("errorCode" in e for e in events if e["eventCategory"] == "Management")
    assert errors > 0


# --- archive ----------------------------------------------------------------------------------


def read_archive(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_archive_writes_a_real_cloudtrail_layout(tmp_path: Path) -> None:
    p = small_plan(seed=5, scenarios=["recon_burst", "privilege_escalation"])
    calls: list[tuple[int, int]] = []
    summary = simulate.write_archive(p, tmp_path / "a", progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, p.days) and calls[-1] == (p.days, p.days)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    files = read_archive(tmp_path / "a")
    logs = {k: v for k, v in files.items() if k.startswith("AWSLogs/")}
    assert summary["files"] == len(logs)
    total, ids = 0, set()
    for name, blob in logs.items():
        match = ARCHIVE_PATH.fullmatch(name)
        assert match, name
        assert match[6] == match[3] + match[4] + match[5]
        records = json.loads(gzip.decompress(blob))["Records"]
        assert records and {r["recipientAccountId"] for r in records} == {match[1]}
        assert {r["awsRegion"] for r in records} == {match[2]}
        total += len(records)
        ids |= {r["eventID"] for r in records}
    assert total == summary["events"] == len(ids)
    assert summary["principals"] == p.n_principals

    written = [json.loads(line) for line in files["labels.jsonl"].splitlines()]
    assert written == [json.loads(json.dumps(dataclasses.asdict(lab))) for lab in simulate.labels(p)]
    assert summary["labels"] == 2 and {"intensity", "variant"} <= set(written[0])
    meta = json.loads(files["simulation.json"])
    assert [c["name"] for c in meta["catalogue"]] == ["recon_burst", "privilege_escalation"]
    assert all(set(lab["event_ids"]) <= ids for lab in written)

    meta = json.loads(files["simulation.json"])
    assert (meta["start"], meta["days"], meta["test_start"], meta["seed"]) == (p.start, p.days, p.test_start, p.seed)
    assert meta["scenarios"] == list(p.scenarios)
    assert len(meta["principals"]) == p.n_principals
    assert {"arn", "kind"} <= set(meta["principals"][0])
    assert meta["counts"]["events"] == summary["events"]
    # the summary says where training must stop: no labelled attack event before it
    assert summary["test_start"] == meta["test_start_iso"]
    first_attack = min(json.loads(line)["start"] for line in files["labels.jsonl"].splitlines())
    assert first_attack >= p.test_start

    # same plan, same bytes: file names, gzip headers and record order are all seeded
    simulate.write_archive(p, tmp_path / "b")
    assert read_archive(tmp_path / "b") == files


def test_archive_files_overlap_in_time_and_are_unsorted(tmp_path: Path) -> None:
    simulate.write_archive(small_plan(seed=6, scenarios=[]), tmp_path)
    spans, unsorted = [], 0
    for path in sorted(tmp_path.glob("AWSLogs/111122223333/CloudTrail/us-east-1/**/*.json.gz")):
        times = [epoch(r["eventTime"]) for r in json.loads(gzip.decompress(path.read_bytes()))["Records"]]
        spans.append((min(times), max(times)))
        unsorted += times != sorted(times)
    assert unsorted > len(spans) / 2
    assert sum(a[1] > b[0] for a, b in itertools.pairwise(spans)) > len(spans) / 4


# --- bulk -------------------------------------------------------------------------------------


def test_iter_bulk_yields_the_count_asked_for() -> None:
    assert sum(1 for _ in simulate.iter_bulk(0, principals=100)) == 0
    bulk = list(simulate.iter_bulk(20_000, seed=3, principals=100))  # crosses a chunk boundary
    assert len(bulk) == 20_000
    assert len({e["eventID"] for e in bulk}) == 20_000
    sample = bulk[::97]
    for e in sample:
        assert ISO.fullmatch(e["eventTime"])
        check_identity(e["userIdentity"])
    # deterministic, and a shorter run is a prefix of a longer one
    assert orjson.dumps(list(simulate.iter_bulk(500, seed=3, principals=100))) == orjson.dumps(bulk[:500])
    kinds = Counter(e["eventCategory"] for e in bulk)
    assert kinds["Data"] > 0 and kinds["Management"] > 0
    assert len({e["userIdentity"].get("arn") for e in bulk}) > 50
