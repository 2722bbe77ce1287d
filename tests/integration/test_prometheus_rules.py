"""Alert rules and dashboard, checked without a running detector.

promtool validates the rules and runs their unit tests (rules_test.yml); the rest checks that
rules and dashboard only name metrics the detector exports, that every rule carries what an
on-call engineer needs, and that every rule is tested both firing and not firing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from detector.metrics import Metrics
from tests.integration.prom import (
    REPO,
    RULES,
    RULES_TEST,
    dashboard_targets,
    fill_every_metric,
    load_dashboard,
    load_rules,
    require_binary,
)

pytestmark = pytest.mark.integration

# Labels that tell apart two rules sharing an alert name (see rules.yml).
RULE_VARIANT_LABELS = ("cause", "signal")


def metric_names(expr: str) -> set[str]:
    """Detector metric names in a PromQL expression (label matchers and strings removed first)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "{}", bare)
    return set(re.findall(r"\bdetector_[a-z0-9_]+\b", bare))


def exported_sample_names() -> tuple[set[str], set[str]]:
    """(sample names, family names) the detector exports once every metric has been touched."""
    registry = CollectorRegistry()
    fill_every_metric(Metrics.create(registry))
    families = list(registry.collect())
    empty = [f.name for f in families if not f.samples]
    assert not empty, f"fill_every_metric (tests/integration/prom.py) does not touch {empty}; add them"
    return {s.name for f in families for s in f.samples}, {f.name for f in families}


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = run(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool")
    result = run(promtool, "test", "rules", RULES_TEST)
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_prometheus_config_is_valid() -> None:
    promtool = require_binary("promtool")
    result = run(promtool, "check", "config", REPO / "config" / "prometheus" / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_in_rules_and_dashboard_is_exported() -> None:
    samples, _ = exported_sample_names()
    referenced: dict[str, set[str]] = {}
    for rule in load_rules():
        for name in metric_names(rule["expr"]):
            referenced.setdefault(name, set()).add(f"rule {rule['alert']}")
    for title, target in dashboard_targets(load_dashboard()):
        for name in metric_names(target["expr"]):
            referenced.setdefault(name, set()).add(f"panel {title!r}")

    assert len(referenced) >= 20, f"metric name extraction looks broken: {sorted(referenced)}"
    unknown = {name: sorted(where) for name, where in referenced.items() if name not in samples}
    assert not unknown, f"not exported by detector/metrics.py: {unknown}"


def test_dashboard_shows_every_metric() -> None:
    _, families = exported_sample_names()
    shown = {name for _, t in dashboard_targets(load_dashboard()) for name in metric_names(t["expr"])}
    # A family is shown when any of its series is (detector_alerts -> detector_alerts_total).
    missing = sorted(f for f in families if not any(s == f or s.startswith(f + "_") for s in shown))
    assert not missing, f"metrics with no dashboard panel: {missing}"


def test_every_rule_carries_severity_summary_description_runbook_and_for() -> None:
    rules = load_rules()
    assert {r["alert"] for r in rules} >= {
        "DetectorDown",
        "DetectorNoEvents",
        "DetectorIngestLagHigh",
        "DetectorRejectRatioHigh",
        "DetectorAlertStorm",
        "DetectorModelStale",
        "DetectorSinkFailing",
        "DetectorCheckpointStale",
    }
    for rule in rules:
        name = rule["alert"]
        assert rule.get("for"), f"{name}: no `for:`"
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        for key in ("summary", "description", "runbook"):
            assert str(rule["annotations"].get(key, "")).strip(), f"{name}: empty annotation {key}"


def test_every_rule_is_unit_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())
    assert tests["rule_files"] == ["rules.yml"]
    fired: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    quiet: set[str] = set()
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            if not case.get("exp_alerts"):
                quiet.add(case["alertname"])
            for alert in case.get("exp_alerts") or []:
                labels = alert["exp_labels"]
                variant = tuple((k, str(labels[k])) for k in RULE_VARIANT_LABELS if k in labels)
                fired.add((case["alertname"], variant))

    for rule in load_rules():
        name = rule["alert"]
        variant = tuple((k, str(rule["labels"][k])) for k in RULE_VARIANT_LABELS if k in rule["labels"])
        assert (name, variant) in fired, f"{name} {dict(variant)}: no promtool case where it fires"
        assert name in quiet, f"{name}: no promtool case where it stays quiet"


def test_dashboard_uses_the_prometheus_datasource_variable() -> None:
    dashboard = load_dashboard()
    assert dashboard["schemaVersion"] >= 38
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")

    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    targets = dashboard_targets(dashboard)
    assert targets
    for title, target in targets:
        assert target["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, title
        assert target["expr"].strip(), f"panel {title!r} has an empty query"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
