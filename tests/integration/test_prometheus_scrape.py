"""A real Prometheus scrapes a real StatusServer; every dashboard query and rule runs on the data.

This is what promtool cannot check: that the names, label sets and ``on (...)`` joins in
rules.yml and the dashboard match what the detector actually exports over HTTP.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from detector.http import Health, StatusServer
from detector.metrics import Metrics
from tests.integration.prom import (
    JOB,
    RULES,
    api_get,
    dashboard_targets,
    fill_every_metric,
    load_dashboard,
    load_rules,
    query,
    start_prometheus,
    wait_until,
)

pytestmark = pytest.mark.integration

# What Grafana would substitute. $__rate_interval is at least 4 scrape intervals in Grafana;
# 1m holds ~60 samples at the 1 s scrape interval used here.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": JOB, "$instance": ".*"}

_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(\s*bool\b)?")


def with_bool(expr: str) -> str:
    """``expr`` with every comparison turned into its ``bool`` form (``> 300`` -> ``> bool 300``).

    An alert expression filters: on healthy data it returns nothing, which proves nothing. With
    ``bool``, each comparison returns 0 or 1 for every series instead of dropping it, while
    everything else runs unchanged: selectors, rate windows, aggregations and, crucially, the
    ``and on (job, instance)`` joins. So a non-empty result shows the whole expression lines up
    with the exported series, and no threshold has to be tuned for the test to see data. Label
    matchers (``{...}``) are left alone so ``!=`` inside them is not touched.
    """
    parts = re.split(r"(\{[^}]*\})", expr)
    return "".join(p if p.startswith("{") else _COMPARISON.sub(_add_bool, p) for p in parts)


def _add_bool(match: re.Match[str]) -> str:
    return match.group(0) if match.group(2) else f"{match.group(1)} bool"


def selectors(expr: str) -> list[str]:
    """Every instant-vector selector (``name{matchers}``) in ``expr``."""
    return [m.group(0) for m in re.finditer(r"\b(?:detector_[a-z0-9_]+|up)\b(?:\{[^}]*\})?", expr)]


def grafana_substitute(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
    return expr


def has_finite_value(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(r["value"][1])) for r in result)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus (1 s scrapes, rules.yml loaded) scraping a detector whose metrics keep moving."""
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    fill_every_metric(metrics)
    health = Health()
    health.set_ready("model", True)
    server = StatusServer(registry, health, port=0)
    server.start()

    # Keep counters growing and histograms observing, as a live detector does, so rate() and
    # histogram_quantile() return numbers rather than 0 and NaN.
    stop_feeding = threading.Event()

    def feed() -> None:
        while not stop_feeding.wait(0.2):
            fill_every_metric(metrics)
            health.tick()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()

    base_url, stop = start_prometheus(
        tmp_path_factory.mktemp("prom"), [f"127.0.0.1:{server.port}"], [RULES], scrape_interval="1s"
    )
    try:
        # Three scrapes give rate() two intervals to work with; ~20 s allows a slow machine.
        wait_until(
            lambda: (
                bool(query(base_url, f'count_over_time(up{{job="{JOB}"}}[1m]) >= 3'))
                and bool(query(base_url, f'up{{job="{JOB}"}} == 1'))
            ),
            timeout=20,
            what="three successful scrapes of the status server",
        )
        yield base_url
    finally:
        stop()
        stop_feeding.set()
        feeder.join(timeout=5)
        server.stop()


def test_every_dashboard_query_returns_data(prometheus: str) -> None:
    dashboard = load_dashboard()
    failures = []
    for title, target in dashboard_targets(dashboard):
        expr = grafana_substitute(target["expr"])
        result = query(prometheus, expr)  # raises on a PromQL error
        if not has_finite_value(result):
            failures.append(f"panel {title!r}: {expr} -> {result}")
    assert not failures, "dashboard queries without data:\n" + "\n".join(failures)


def test_dashboard_variable_queries_find_the_job_and_instance(prometheus: str) -> None:
    dashboard = load_dashboard()
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        # label_values(<selector>, <label>) is Grafana's; count by (<label>) is the PromQL twin.
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
        assert match, variable["query"]
        selector, label = grafana_substitute(match.group(1)), match.group(2)
        result = query(prometheus, f"count by ({label}) ({selector})")
        assert result and all(label in r["metric"] for r in result), (variable["name"], result)


def test_every_rule_expression_runs_on_the_scraped_series(prometheus: str) -> None:
    failures = []
    for rule in load_rules():
        name, expr = rule["alert"], rule["expr"]
        query(prometheus, expr)  # as written: must parse and evaluate (status success)
        for selector in selectors(expr):
            if not query(prometheus, selector):
                failures.append(f"{name}: selector {selector} matches no scraped series")
        if "absent(" in expr:
            # absent() is empty exactly when its selector has data, checked just above.
            assert query(prometheus, expr) == [], f"{name}: absent() fired with the target up"
            continue
        relaxed = with_bool(expr)
        assert relaxed != expr, f"{name}: no comparison found in {expr!r}"
        if not query(prometheus, relaxed):
            failures.append(f"{name}: {relaxed.strip()} returned no series")
    assert not failures, "\n".join(failures)


def test_prometheus_evaluates_every_rule_without_error(prometheus: str) -> None:
    expected = len(load_rules())

    def evaluated() -> list[dict[str, Any]]:
        groups = api_get(prometheus, "/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        done = len(rules) == expected and all(not r["lastEvaluation"].startswith("0001") for r in rules)
        return rules if done else []

    wait_until(lambda: bool(evaluated()), timeout=10, what="every rule to be evaluated once")
    broken = [(r["name"], r.get("lastError")) for r in evaluated() if r["health"] != "ok"]
    assert not broken, broken


def test_with_bool_leaves_matchers_alone() -> None:
    assert with_bool('x{a!="b"} > 3 and on (i) y == 1') == 'x{a!="b"} > bool 3 and on (i) y == bool 1'
    assert with_bool("a >= bool 2") == "a >= bool 2"
