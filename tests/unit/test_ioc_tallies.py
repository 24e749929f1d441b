"""The IOC keeps a station's readings as one tally per station and hour (projection.TALLIED), not one
fact per message: what it holds grows with station-hours, every message still counts once, and the
figures do not depend on the order or the number of deliveries."""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from functions.ioc.function import figures, live, views
from functions.ioc.function.projection import TALLY_IDS_KEPT_H, Projection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import ioc_support as ev  # noqa: E402

NOW = datetime(2026, 12, 3, 10, 30, tzinfo=timezone.utc)


def fold(evts) -> Projection:
    p = Projection()
    for e in evts:
        p.apply(live.fact_of(e))
    return p


def readings(p: Projection, hours: float = 24) -> int:
    t1 = figures.fmt(NOW)
    return figures.value(p, "environment.readings", figures.fmt(NOW - timedelta(hours=hours)), t1)


def a_day(stations: int = 20) -> list[dict]:
    """Every station, a message of two readings every minute, for the 24 hours before NOW."""
    start = NOW.replace(minute=0) - timedelta(hours=23)
    return [ev.observations(f"lsn-{s}", start + timedelta(minutes=m), 2) for m in range(24 * 60)
            for s in range(stations) if start + timedelta(minutes=m) < NOW]


def test_a_days_messages_are_kept_as_station_hours_and_each_counts_once():
    messages = a_day()
    p = fold(messages)
    assert len(messages) == 20 * (23 * 60 + 30)
    assert len(p) == 20 * 24                                   # one tally per station and hour
    assert len(p.entities("observations")) == 20              # one entity per station
    assert readings(p) == 2 * len(messages)
    tally = next(f for f in p.facts() if f["entity"] == "lsn-3" and f["at"] == "2026-12-03T09:00:00Z")
    assert tally["values"] == {"readings": 120.0} and len(tally["tally"]) == 60
    assert tally["attrs"] == {"station": "lsn-3", "commune": "06001", "station_kind": "air"}

    # every message delivered again: nothing changes
    version = p.version
    assert not any(p.apply(live.fact_of(m)) for m in messages[:500])
    assert p.version == version and readings(p) == 2 * len(messages)


def test_the_figures_are_the_same_in_any_order_and_with_redeliveries():
    messages = [m for m in a_day(3)]
    once = views.snapshot(fold(messages), NOW)
    for seed in range(3):
        again = messages + messages[::7]
        random.Random(seed).shuffle(again)
        assert views.snapshot(fold(again), NOW) == once


def test_old_tallies_keep_their_sums_and_forget_their_ids_in_any_order():
    # one station, a message an hour for four days
    messages = [ev.observations("lsn-1", NOW - timedelta(hours=h), 1) for h in range(96)]
    p = fold(messages)
    newest = max(f["at"] for f in p.facts())
    for f in p.facts():
        age = (figures.parse(newest) - figures.parse(f["at"])).total_seconds() / 3600
        assert f["values"] == {"readings": 1.0}
        assert (len(f["tally"]) == 1) == (age <= TALLY_IDS_KEPT_H), (f["at"], age)
    shuffled = list(messages)
    random.Random(1).shuffle(shuffled)
    assert sorted(map(str, fold(shuffled).facts())) == sorted(map(str, p.facts()))
    assert readings(p, hours=96) == 96


def test_a_stored_tally_and_the_messages_it_counts_meet_once():
    """A restart loads the stored tally; a message it already counts is not counted again, a new one is."""
    first, second = ev.observations("lsn-1", NOW - timedelta(minutes=5)), ev.observations("lsn-1", NOW - timedelta(minutes=4))
    before = fold([first])
    (stored,) = before.facts()
    restarted = Projection()
    assert restarted.apply(stored)
    assert not restarted.apply(live.fact_of(first))             # a redelivery after the restart
    assert restarted.apply(live.fact_of(second))
    assert not restarted.apply(stored)                          # loaded twice (an adopt, a slow load)
    assert readings(restarted) == 2


def test_a_tally_counted_and_the_messages_folded_one_by_one_give_the_same_figures():
    """A rebuilt projection (a replay) and the live one agree, tallies included."""
    messages = a_day(2)
    live_one = fold(messages[: len(messages) // 2])
    for tally in fold(messages[len(messages) // 2:]).facts():
        live_one.apply(tally)
    assert views.snapshot(live_one, NOW)["digest"] == views.snapshot(fold(messages), NOW)["digest"]
