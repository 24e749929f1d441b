"""The dossiers' overdue gauges as a replica exports them: its last sweep's time, and per-agency
counts that expire when no sweep refreshes them (DossiersOverdueSweepMissing watches the time's
age, tests/observability/test_alert_semantics.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from functions.dossiers.function import metrics
from lscloud import telemetry
from lscloud.config import Settings
from lscloud.metrics import ExpiringReadings


@pytest.fixture
def clock(monkeypatch):
    """This module's clocks, moved by hand; no sweep yet."""
    telemetry.setup(Settings(service="dossiers"))
    now = SimpleNamespace(mono=5_000.0, wall=1_760_000_000.0)
    monkeypatch.setattr(metrics, "time", SimpleNamespace(monotonic=lambda: now.mono, time=lambda: now.wall),
                        raising=False)
    # the module's own TTL: the test moves the clock by OVERDUE_TTL_S, so a cache built with another fails it
    monkeypatch.setattr(metrics, "_overdue", ExpiringReadings(metrics._overdue.ttl_s, clock=lambda: now.mono))
    monkeypatch.setattr(metrics, "_last_sweep", None, raising=False)
    return now


def later(clock, seconds: float) -> None:
    clock.mono += seconds
    clock.wall += seconds


def exported() -> tuple[dict[str, float], list[float]]:
    """(overdue per agency, sweep times) the next collection exports."""
    data = telemetry.collect_metrics()
    if data is None:
        pytest.skip("another harness owns the process meter provider")
    overdue, swept = {}, []
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "lscloud.dossiers.overdue":
                    overdue.update({p.attributes["lscloud.dossier.agency"]: p.value for p in metric.data.data_points})
                elif metric.name == "lscloud.dossiers.overdue.sweep.time":
                    assert metric.unit == "s"
                    swept += [p.value for p in metric.data.data_points]
    return overdue, swept


def test_the_last_sweeps_time_is_exported_and_stale_counts_expire(clock):
    """The counts of a replica's last sweep were re-reported forever, so the gauge never went
    absent while that replica lived, whether sweeps ran or not."""
    assert exported() == ({}, [])
    first = clock.wall
    metrics.set_overdue({"ubnd-05983": 3, "so-tp": 0})
    assert exported() == ({"ubnd-05983": 3, "so-tp": 0}, [first])

    later(clock, 600)
    metrics.set_overdue({"ubnd-05983": 1})   # so-tp has no open dossier left
    assert exported() == ({"ubnd-05983": 1, "so-tp": 0}, [first + 600])

    later(clock, metrics.OVERDUE_TTL_S - 599)   # so-tp's last count is older than the bound now
    assert exported() == ({"ubnd-05983": 1}, [first + 600])

    later(clock, 600)                            # and so is the last sweep: no counts, its time stays
    assert exported() == ({}, [first + 600])
