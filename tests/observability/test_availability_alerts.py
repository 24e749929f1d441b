"""Every function's availability pages someone, once, at the objective SLO.md states for it.

The HTTP error ratios were recorded for every ``service_name`` but only the directory and the border
gate had burn-rate alerts: the soft ATM could answer the partner banks' reserve and commit with 500s
and page nobody. One generic pair now burns every function's own objective. Here:

* ``availability_rules_test.yaml`` (``promtool test rules``): a soft ATM / identity / directory /
  border burn pages once, a function inside its budget does not, one objective differs from another;
* every function under ``functions/`` has exactly one objective (a new function cannot be
  forgotten), the one SLO.md's table gives it;
* ``event_lag_rules_test.yaml``: event freshness reads the 60 s bucket whether Prometheus stored its
  ``le`` as 2.x does (``"60"``) or as 3.x normalises it (``"60.0"``), and every ``le`` matcher in the
  rules and dashboards accepts both spellings of its bound.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OBS = ROOT / "observability"
RULES = OBS / "alerts.yaml"
GENERIC = ("AvailabilityBudgetBurnFast", "AvailabilityBudgetBurnSlow")
OBJECTIVE = "lscloud:http_availability:objective"

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool is not installed (Debian: apt-get install prometheus)")


def rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"]]


def functions() -> set[str]:
    """The functions' names (``func.yaml``'s ``name``: Knative's K_SERVICE, hence ``service_name``)."""
    names = {yaml.safe_load(p.read_text(encoding="utf-8"))["name"] for p in (ROOT / "functions").glob("*/func.yaml")}
    assert len(names) >= 10, names
    return names


def objectives() -> dict[str, float]:
    """service_name -> objective of the generic alerts' mapping."""
    out: dict[str, float] = {}
    for r in rules():
        if r.get("record") == OBJECTIVE:
            service = r["labels"]["service_name"]
            assert service not in out, f"{service}: two objectives"
            out[service] = float(re.fullmatch(r"vector\(([0-9.]+)\)", r["expr"].strip()).group(1))
    return out


def slo_table() -> dict[str, float]:
    """SLO.md's availability table: function -> objective in %."""
    text = (OBS / "SLO.md").read_text(encoding="utf-8")
    assert "\n## Function availability\n" in text, "SLO.md has no table of the functions' objectives"
    section = text.split("\n## Function availability\n", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^\|\s*`([a-z-]+)`\s*\|\s*([0-9.]+)\s*%", section, re.M)}


@needs_promtool
def test_a_burning_function_pages_once_and_a_healthy_one_not():
    result = subprocess.run(["promtool", "test", "rules", str(HERE / "availability_rules_test.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_function_has_an_availability_objective():
    mapped = objectives()
    missing = functions() - set(mapped)
    assert not missing, f"no availability alert for {sorted(missing)}: add a {OBJECTIVE} record in alerts.yaml"
    for service, objective in mapped.items():
        assert 0.9 <= objective < 1, (service, objective)
    # the generic pair selects no service itself: the mapping decides who it covers
    for r in rules():
        if r.get("alert") in GENERIC:
            assert "service_name=" not in r["expr"] and "lscloud:http_availability:error_budget" in r["expr"], r["alert"]


def test_slo_md_states_the_objective_every_alert_uses():
    table = slo_table()
    assert set(table) == functions(), sorted(set(table) ^ functions())
    for service, objective in objectives().items():
        assert table[service] == pytest.approx(objective * 100), service
    assert table["softatm"] > 99.9, "money moves through the soft ATM: its objective is the tightest"


# --- histogram bounds: Prometheus 2.x stores the exposition's `le`, 3.x a normalised float ---------

def _le_spellings(bound: float) -> set[str]:
    """How the collector's exposition spells a bucket bound ("60") and how Prometheus 3 stores it ("60.0")."""
    if bound == int(bound):
        return {str(int(bound)), f"{int(bound)}.0"}
    return {repr(bound)}


def _promql_unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def le_matchers() -> list[tuple[str, str, str]]:
    """(where, operator, value) of every ``le`` matcher in the rules and the dashboards."""
    exprs = [(r.get("record") or r["alert"], r["expr"]) for r in rules()]
    for board in sorted((OBS / "dashboards").glob("*.json")):
        def walk(panels, name=board.name):
            for p in panels:
                exprs.extend((f"{name}: {p.get('title')}", t["expr"]) for t in p.get("targets", []) if t.get("expr"))
                walk(p.get("panels", []))
        walk(json.loads(board.read_text(encoding="utf-8")).get("panels", []))
    return [(where, m.group(1), _promql_unquote(m.group(2))) for where, expr in exprs
            for m in re.finditer(r'\ble\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', expr)]


def test_every_le_matcher_takes_both_spellings_of_its_bound():
    found = le_matchers()
    assert any(v.startswith("60") for _, _, v in found), "the event freshness bound is gone"
    for where, op, value in found:
        assert op in ("=", "=~"), (where, op, value)
        bound = float(re.match(r"[0-9.]+", value).group(0))
        for spelling in _le_spellings(bound):
            matches = spelling == value if op == "=" else re.fullmatch(value, spelling) is not None
            assert matches, f'{where}: le{op}"{value}" misses le="{spelling}" (Prometheus 2.x and 3.x spell it differently)'
        if op == "=~":
            assert re.fullmatch(value, f"{bound:g}0") is None, (where, value)  # "600" is not "60"


@needs_promtool
def test_event_freshness_reads_the_60s_bucket_as_2x_and_3x_store_it():
    result = subprocess.run(["promtool", "test", "rules", str(HERE / "event_lag_rules_test.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
