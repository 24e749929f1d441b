"""The soft ATM's float gauges as a replica exports them: the balances it last wrote to a point and
when, for a bounded time only (SoftatmFloatLow and the dashboard pick the newest write across
replicas, tests/observability/test_alert_semantics.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from functions.softatm.function import telemetry as tm
from lscloud import telemetry
from lscloud.config import Settings
from lscloud.metrics import ExpiringReadings

POINT = "bd-06040"


@pytest.fixture
def clock(monkeypatch):
    """This module's clocks, moved by hand; an empty cache."""
    telemetry.setup(Settings(service="softatm"))
    now = SimpleNamespace(mono=5_000.0, wall=1_760_000_000.0)
    monkeypatch.setattr(tm, "time", SimpleNamespace(monotonic=lambda: now.mono, time=lambda: now.wall), raising=False)
    # the module's own TTL: the tests move the clock by FLOAT_TTL_S, so a cache built with another fails them
    monkeypatch.setattr(tm, "_floats", ExpiringReadings(tm._floats.ttl_s, clock=lambda: now.mono))
    return now


def exported(point: str) -> dict[str, float]:
    """What the next collection exports for ``point``: ``cash``, ``held`` and ``written``."""
    data = telemetry.collect_metrics()
    if data is None:
        pytest.skip("another harness owns the process meter provider")
    out = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    if p.attributes.get("softatm.point") != point:
                        continue
                    if metric.name == "lscloud.softatm.float":
                        out[p.attributes["softatm.balance"]] = p.value
                    elif metric.name == "lscloud.softatm.float.write.time":
                        assert metric.unit == "s"
                        out["written"] = p.value
    return out


def test_a_replica_stops_reporting_a_float_it_has_not_written_for_a_while(clock):
    """It re-reported the last balances it wrote for a point forever, long after other replicas
    had moved the point's cash."""
    tm.float_seen(POINT, 5_000_000, 15_000_000)
    assert exported(POINT) == {"cash": 5_000_000, "held": 15_000_000, "written": clock.wall}
    clock.mono += tm.FLOAT_TTL_S - 1
    assert exported(POINT)["cash"] == 5_000_000
    clock.mono += 2
    assert exported(POINT) == {}


def test_each_write_refreshes_the_figure_and_its_write_time(clock):
    tm.float_seen(POINT, 20_000_000, 0)
    written = clock.wall
    clock.mono += tm.FLOAT_TTL_S - 10
    clock.wall += tm.FLOAT_TTL_S - 10
    tm.float_seen(POINT, 5_000_000, 15_000_000)
    clock.mono += 20
    clock.wall += 20
    assert exported(POINT) == {"cash": 5_000_000, "held": 15_000_000, "written": written + tm.FLOAT_TTL_S - 10}
