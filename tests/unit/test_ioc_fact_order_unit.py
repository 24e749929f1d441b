"""The IOC orders an entity's facts as its producer made them, whatever the events' time resolution:
moves of one report, dossier or declaration within one second (an agency system posting a report's
updates together, one request making two moves) were filed by ``(second, digest of the event id)``,
a random order, and a report fixed in the second it was submitted stayed open on the wall."""

from __future__ import annotations

import itertools
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from functions.ioc.function import facts, figures, live, views
from functions.ioc.function.entities import Entity
from functions.ioc.function.projection import Projection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import ioc_support as ev  # noqa: E402

NOW = datetime(2026, 12, 7, 14, 46, 58, tzinfo=timezone.utc)
LATER = NOW + timedelta(minutes=5)



def value(p: Projection, indicator: str) -> float | None:
    t0, t1 = views.window(LATER)
    return figures.value(p, indicator, t0, t1, None)


def report_moves(rid: str, at=NOW) -> list[dict]:
    """A report submitted, acknowledged and started (two moves of one write) and fixed, all in one
    second, as the reports function names its events (``<report>.<version>.<n>``)."""
    return [ev.report(rid, "submitted", "submitted", "open", at, id=f"{rid}.1.0"),
            ev.report(rid, "acknowledged", "acknowledged", "open", at, id=f"{rid}.2.0"),
            ev.report(rid, "started", "in_progress", "open", at, id=f"{rid}.2.1"),
            ev.report(rid, "resolved", "fixed", "closed", at, id=f"{rid}.3.0")]


def a_misordered_report() -> str:
    return next(rid for rid in (ev.report_id(NOW) for _ in range(200))
                if ev.misordered("/reports", [e["id"] for e in report_moves(rid)]))


def test_a_report_fixed_in_the_second_it_was_submitted_is_closed_in_any_delivery_order():
    rid = a_misordered_report()
    moves = report_moves(rid)
    for delivered in itertools.permutations(moves):
        p = ev.fold(delivered)
        assert value(p, "reports.open") == 0 and value(p, "reports.received") == 1
        assert [f["state"] for f in p.entities("report")[0].history] == ["submitted", "acknowledged", "in_progress", "fixed"]


def test_a_declaration_cleared_and_exited_in_one_second_is_not_waiting():
    decl = next(d for d in (f"d-same-{n}" for n in range(200))
                if ev.misordered("/border", [f"{d}.1.0", f"{d}.2.0", f"{d}.3.0"]))
    moves = [ev.border(decl, "submitted", NOW, id=f"{decl}.1.0"), ev.border(decl, "cleared", NOW, id=f"{decl}.2.0"),
             ev.border(decl, "exited", NOW, id=f"{decl}.3.0")]
    for delivered in itertools.permutations(moves):
        p = ev.fold(delivered)
        assert value(p, "border.waiting") == 0 and value(p, "border.cleared") == 1
        assert p.entities("declaration")[0].at(figures.fmt(NOW))["state"] == "exited"


def test_a_dossier_s_later_move_in_the_same_second_gives_its_state_and_attributes():
    dos = next(d for d in (f"h-same-{n}" for n in range(200)) if ev.misordered("/dossiers", [f"{d}.1.0", f"{d}.2.0"]))
    moves = [ev.dossier(dos, "received", NOW, deadline=NOW + timedelta(days=1), unit="06001", id=f"{dos}.1.0"),
             ev.dossier(dos, "done", NOW, deadline=NOW + timedelta(days=2), unit="06016", id=f"{dos}.2.0")]
    for delivered in (moves, moves[::-1]):
        e = ev.fold(delivered).entities("dossier")[0]
        assert e.history[-1]["state"] == "done" and e.attrs["commune"] == "06016"
        assert e.attrs["deadline"] == figures.fmt(NOW + timedelta(days=2))


def test_sub_second_times_order_events_that_carry_no_sequence():
    """A producer whose ids say no order (a device's, a random one): the event's own fraction of a
    second does, while ``at`` stays whole seconds (figures compare it with their windows' bounds)."""
    ms = [NOW.replace(microsecond=u) for u in (900_000, 100_000, 500_000)]
    moves = [ev.border("d-frac", to, t) for to, t in (("exited", ms[0]), ("submitted", ms[1]), ("cleared", ms[2]))]
    for e, t in zip(moves, ms):
        e["data"]["at"] = t.astimezone(timezone(timedelta(hours=7))).isoformat(timespec="milliseconds")
    fs = [live.fact_of(e) for e in moves]
    assert {f["at"] for f in fs} == {"2026-12-07T14:46:58Z"} and all("seq" not in f for f in fs)
    assert [f["at_us"] for f in fs] == [900_000, 100_000, 500_000]
    for delivered in itertools.permutations(moves):
        p = ev.fold(delivered)
        assert [f["state"] for f in p.entities("declaration")[0].history] == ["submitted", "cleared", "exited"]
        assert value(p, "border.waiting") == 0


def test_the_producer_s_sequence_outranks_its_clock_within_a_second():
    """Two writes of one record by two replicas whose clocks differ by a few milliseconds: its
    version says which came last."""
    rid = ev.report_id(NOW)
    first = ev.report(rid, "submitted", "submitted", "open", NOW, id=f"{rid}.1.0")
    fixed = ev.report(rid, "resolved", "fixed", "closed", NOW, id=f"{rid}.2.0")
    first["data"]["occurred_at"] = "2026-12-07T21:46:58.120+07:00"
    fixed["data"]["occurred_at"] = "2026-12-07T21:46:58.118+07:00"
    assert value(ev.fold([fixed, first]), "reports.open") == value(ev.fold([first, fixed]), "reports.open") == 0


@pytest.mark.parametrize("event_id, entity, seq", [
    ("20261207-3e287347.3.0", "20261207-3e287347", [3, 0]),
    ("shop:sh-01.12.2", "sh-01", [12, 2]),          # a source's prefix before the record (Aggregate event_ids)
    ("d.1.2.7.1", "d.1.2", [7, 1]),                 # a record id with dots of its own
    ("xsh-01.2.0", "sh-01", None),                  # another record, ending like this one
    ("st-1.aqi.2026120714.raised", "st-1/aqi", None),
    ("5b9c7c1e-0d7f-4a47-8f3b-2a5d0f3c9e11", "d1", None),
    (None, "d1", None),
])
def test_the_sequence_is_read_from_ids_the_aggregate_forms(event_id, entity, seq):
    assert facts.seq_of(event_id, entity) == seq


def test_times_keep_their_fraction_beside_the_whole_second():
    assert facts.utc("2026-12-07T21:46:58.987654+07:00") == "2026-12-07T14:46:58Z"
    assert facts.instant("2026-12-07T21:46:58.987654+07:00") == NOW.replace(microsecond=987_654)
    assert facts.utc("2026-12-07T21:46:58+07:00") == "2026-12-07T14:46:58Z" and facts.utc("nope") is None
    whole = live.fact_of(ev.report("20261207-00000001", "submitted", "submitted", "open", NOW, id="20261207-00000001.1.0"))
    assert "at_us" not in whole and whole["seq"] == [1, 0]


def old(fact: dict) -> dict:
    """``fact`` as the IOC stored it before it kept ``seq`` and ``at_us``, read back from JSON."""
    return json.loads(json.dumps({k: v for k, v in fact.items() if k not in ("seq", "at_us")}))


def test_facts_stored_before_the_sequence_still_sort_as_they_did_and_count_once():
    rid = ev.report_id(NOW)
    # two of them in one second: only their ids order those, as they always did
    evts = [ev.report(rid, "submitted", "submitted", "open", NOW - timedelta(seconds=3), id=f"{rid}.1.0"),
            ev.report(rid, "acknowledged", "acknowledged", "open", NOW - timedelta(seconds=2), id=f"{rid}.2.0"),
            ev.report(rid, "started", "in_progress", "open", NOW - timedelta(seconds=2), id=f"{rid}.2.1"),
            ev.report(rid, "resolved", "fixed", "closed", NOW, id=f"{rid}.3.0")]
    stored = [old(live.fact_of(e)) for e in evts]
    as_they_did = [f["id"] for f in sorted(stored, key=lambda f: (f["at"], f["id"]))]
    for given in (stored, stored[::-1]):    # one of the two is not the (at, id) order already
        assert [f["id"] for f in Entity.of("report", rid, given).history] == as_they_did
    p = Projection()
    assert all(p.apply(f) for f in stored[::-1])
    assert value(p, "reports.open") == 0
    # the same events again, their facts now with the sequence: the same ids, counted once
    assert not any(p.apply(live.fact_of(e)) for e in evts)
    assert len(p) == 4 and value(p, "reports.open") == 0 and value(p, "reports.received") == 1


def test_an_old_fact_and_a_new_one_of_one_second_mix_in_a_fixed_order():
    """Stored before the upgrade, the old one happened first: it sorts first in its second."""
    rid = ev.report_id(NOW)
    before = old(live.fact_of(ev.report(rid, "submitted", "submitted", "open", NOW, id=f"{rid}.1.0")))
    after = live.fact_of(ev.report(rid, "resolved", "fixed", "closed", NOW, id=f"{rid}.2.0"))
    for given in ([before, after], [after, before]):
        assert [f["state"] for f in Entity.of("report", rid, given).history] == ["submitted", "fixed"]
    grown = Entity.of("report", rid, [after]).then(before)
    assert [f["state"] for f in grown.history] == ["submitted", "fixed"] and grown.times == [before["at"]] * 2


def test_a_replay_in_any_order_gives_the_live_digest():
    evts = report_moves(a_misordered_report()) + [ev.border("d-r", "submitted", NOW, id="d-r.1.0"),
                                                  ev.border("d-r", "cleared", NOW, id="d-r.2.0")]
    once = views.snapshot(ev.fold(evts), LATER)["digest"]
    for delivered in (evts[::-1], evts[2:] + evts[:2] + evts[:3]):
        assert views.snapshot(ev.fold(delivered), LATER)["digest"] == once


def test_the_event_ids_the_ioc_reads_its_order_from_are_the_ones_aggregates_form():
    # one format, built and read in lscloud.aggregate: a change to it cannot leave the IOC ordering by digest
    from lscloud.aggregate import event_id, event_seq

    assert event_seq(event_id("shop:", "s-1", 12, 3), "s-1") == (12, 3)
    assert event_seq(event_id("", "ab-1", 2, 0), "b-1") is None   # a record whose id only ends like it
    assert event_seq("device.reading.77", "reading") is None
