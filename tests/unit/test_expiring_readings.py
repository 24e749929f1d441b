"""The runtime's cache behind a function's observable gauge (:class:`lscloud.metrics.ExpiringReadings`):
a reading is reported for ``ttl_s`` after it was last set and then forgotten, on a clock moved by hand.
The border's capacity, the dossiers' overdue counts and the soft ATM's float use it
(tests/unit/test_dossiers_metrics.py and test_softatm_telemetry.py export them)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lscloud.metrics import ExpiringReadings

TTL = 900.0


@pytest.fixture
def now():
    return SimpleNamespace(t=5_000.0)


@pytest.fixture
def readings(now):
    return ExpiringReadings(TTL, clock=lambda: now.t)


def held(readings: ExpiringReadings) -> set:
    """The keys it keeps in memory, reported or not."""
    return set(readings._entries)


def test_a_reading_is_reported_for_its_ttl_then_dropped(readings, now):
    readings.set(("hn", "in"), 120)
    now.t += TTL   # the bound itself still counts
    assert readings.fresh() == [(("hn", "in"), 120)]
    now.t += 0.5
    assert readings.fresh() == []
    assert held(readings) == set()


def test_each_set_refreshes_the_value_and_its_time(readings, now):
    readings.set("bd-06040", (20_000_000, 0, 1_760_000_000.0))
    now.t += TTL - 10
    readings.set("bd-06040", (5_000_000, 15_000_000, 1_760_000_890.0))
    now.t += 20
    assert readings.fresh() == [("bd-06040", (5_000_000, 15_000_000, 1_760_000_890.0))]


def test_memory_holds_only_recent_keys_even_when_nobody_collects(readings, now):
    """A replica with no metric reader never calls fresh(): set() forgets the expired keys itself."""
    for gate in ("hn", "tt", "cl"):
        readings.set(gate, 1)
    now.t += TTL + 1
    readings.set("dd", 2)
    assert held(readings) == {"dd"}


def test_a_full_count_zeroes_what_it_did_not_count_until_that_expires(readings, now):
    """The dossiers' sweep: an agency it counted before but not now reads 0, and goes away
    ``ttl_s`` after the last count that had it, not after this one."""
    readings.replace({"ubnd-05983": 3, "so-tp": 2}, missing=0)
    now.t += 600
    readings.replace({"ubnd-05983": 1}, missing=0)
    assert sorted(readings.fresh()) == [("so-tp", 0), ("ubnd-05983", 1)]
    now.t += TTL - 599   # so-tp's last count is older than the bound now
    assert readings.fresh() == [("ubnd-05983", 1)]
    readings.replace({}, missing=0)   # a sweep that counted nothing zeroes what is left, keeping its time
    assert readings.fresh() == [("ubnd-05983", 0)]
    now.t += 600
    assert readings.fresh() == [] and held(readings) == set()


def test_the_default_clock_is_monotonic():
    """A wall clock set back (NTP, a VM resumed) would revive or expire readings at random."""
    import time

    readings = ExpiringReadings(60)
    readings.set("k", 1)
    assert readings.ttl_s == 60.0 and readings._clock is time.monotonic and readings.fresh() == [("k", 1)]
