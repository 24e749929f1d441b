"""The IOC keeps a station's readings as one tally per station and hour (tallies.TALLIED), not one
fact per message: what it holds grows with station-hours, every message still counts once, and the
figures do not depend on the order or the number of deliveries."""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from functions.ioc.function import figures, live, views
from functions.ioc.function.projection import Projection
from functions.ioc.function.tallies import TALLY_IDS_KEPT_H

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import ioc_support as ev  # noqa: E402

NOW = datetime(2026, 12, 3, 10, 30, tzinfo=timezone.utc)



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
    p = ev.fold(messages)
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
    once = views.snapshot(ev.fold(messages), NOW)
    for seed in range(3):
        again = messages + messages[::7]
        random.Random(seed).shuffle(again)
        assert views.snapshot(ev.fold(again), NOW) == once


def test_old_tallies_keep_their_sums_and_forget_their_ids_in_any_order():
    # one station, a message an hour for four days
    messages = [ev.observations("lsn-1", NOW - timedelta(hours=h), 1) for h in range(96)]
    p = ev.fold(messages)
    newest = max(f["at"] for f in p.facts())
    for f in p.facts():
        if "hours" in f:   # a day whose hours all forgot their ids: rolled up (below)
            continue
        age = (figures.parse(newest) - figures.parse(f["at"])).total_seconds() / 3600
        assert f["values"] == {"readings": 1.0}
        assert (len(f["tally"]) == 1) == (age <= TALLY_IDS_KEPT_H), (f["at"], age)
    shuffled = list(messages)
    random.Random(1).shuffle(shuffled)
    assert sorted(map(str, ev.fold(shuffled).facts())) == sorted(map(str, p.facts()))
    assert readings(p, hours=96) == 96


def test_a_stored_tally_and_the_messages_it_counts_meet_once():
    """A restart loads the stored tally; a message it already counts is not counted again, a new one is."""
    first, second = ev.observations("lsn-1", NOW - timedelta(minutes=5)), ev.observations("lsn-1", NOW - timedelta(minutes=4))
    before = ev.fold([first])
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
    live_one = ev.fold(messages[: len(messages) // 2])
    for tally in ev.fold(messages[len(messages) // 2:]).facts():
        live_one.apply(tally)
    assert views.snapshot(live_one, NOW)["digest"] == views.snapshot(ev.fold(messages), NOW)["digest"]


def test_a_day_whose_hours_forgot_their_ids_is_one_tally_and_every_hour_counts_as_before():
    """Two stations, a message every ten minutes for five days: the days all of whose hours are
    past TALLY_IDS_KEPT_H are one tally per station with each hour's sums; every hour, and every
    window (one that starts inside a rolled day too), counts what the messages hold."""
    start = NOW.replace(minute=0) - timedelta(days=5)
    messages = [ev.observations(f"lsn-{s}", start + timedelta(minutes=m), 1 + s) for m in range(0, 5 * 24 * 60, 10)
                for s in range(2)]
    p = ev.fold(messages)
    days = [f for f in p.facts() if "hours" in f]
    hours = [f for f in p.facts() if "hours" not in f]
    newest = max(f["at"] for f in hours)
    cutoff = figures.fmt(figures.parse(newest) - timedelta(hours=TALLY_IDS_KEPT_H))
    assert days and all(f"{d['at'][:10]}T23:00:00Z" < cutoff for d in days)
    assert all(not f"{h['at'][:10]}T23:00:00Z" < cutoff for h in hours)   # no hour of a rolled day left
    assert len(p) == len(days) + len(hours) < 2 * (24 * 3 + 3)
    assert {len(d["hours"]) for d in days} <= {24, 24 - start.hour} and all(not d["tally"] for d in days)

    def expected(t0, t1) -> int:   # an hour counts when it starts in the window
        return sum(len(m["data"]["readings"]) for m in messages
                   if t0 <= m["data"]["received_at"][:13] + ":00:00Z" < t1)

    series = figures.series(p, "environment.readings", start, NOW, "hour")
    assert [pt["value"] for pt in series] == [expected(pt["from"], pt["to"]) for pt in series]
    for t0 in (start + timedelta(hours=7, minutes=30), start + timedelta(days=1, hours=13)):
        a, b = figures.fmt(t0), figures.fmt(t0 + timedelta(hours=30))
        assert figures.value(p, "environment.readings", a, b) == expected(a, b)
        assert figures.breakdown(p, "environment.readings", "station", a, b) == {
            s: expected(a, b) // 3 * (1 + i) for i, s in enumerate(("lsn-0", "lsn-1"))}

    # in any order within a day (each message then comes within TALLY_IDS_KEPT_H of the newest), with
    # redeliveries: the same tallies (days included) and the same figures
    again = messages + messages[-40:]
    order = random.Random(3)
    again.sort(key=lambda m: (m["data"]["received_at"][:10], order.random()))
    def held(proj):
        return sorted(json.dumps(f, sort_keys=True) for f in proj.facts())

    assert held(ev.fold(again)) == held(p)
    # a message for an hour of a rolled day that counts messages already: a repeat cannot be told from
    # a new one there, and one redelivered days later (a dead letter retried) is far likelier: not counted
    five = figures.fmt(start + timedelta(hours=5))
    assert not p.apply(live.fact_of(messages[5 * 12]))   # lsn-0 at hour five, again
    late = ev.observations("lsn-0", start + timedelta(hours=5, minutes=1), 4)
    assert not p.apply(live.fact_of(late))
    assert figures.value(p, "environment.readings", five, figures.fmt(start + timedelta(hours=6))) == 6 * 3
    # one for an hour that counts nothing yet is no repeat: counted into its hour
    quiet = ev.observations("lsn-2", start + timedelta(hours=5, minutes=1), 4)
    assert p.apply(live.fact_of(ev.observations("lsn-2", NOW - timedelta(hours=1), 1)))
    assert p.apply(live.fact_of(quiet))
    assert figures.value(p, "environment.readings", five, figures.fmt(start + timedelta(hours=6))) == 4 + 6 * 3


def test_a_day_and_the_hour_tallies_it_took_in_meet_once():
    """A start finds a rolled day beside hour tallies it took in (stored before the roll, not deleted):
    each hour counts once, whichever comes first."""
    start = NOW.replace(minute=0) - timedelta(days=4)
    messages = [ev.observations("lsn-1", start + timedelta(minutes=m), 2) for m in range(0, 4 * 24 * 60, 15)]
    whole = ev.fold(messages)
    rolled = whole.take_rolled()
    assert rolled and all(len(hours) >= 1 for _, hours in rolled)
    stale = [h for _, hours in rolled for h in hours]
    every_hour = figures.series(whole, "environment.readings", start, NOW, "hour")
    assert sum(pt["value"] for pt in every_hour) == 2 * len(messages)
    for order in (list(whole.facts()) + stale, stale + list(whole.facts())):
        restarted = figures.new_projection()
        for f in order:
            restarted.apply(f)
        assert views.snapshot(restarted, NOW)["digest"] == views.snapshot(whole, NOW)["digest"]
        assert figures.series(restarted, "environment.readings", start, NOW, "hour") == every_hour
