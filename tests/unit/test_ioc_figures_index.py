"""The figures read only the entities that can count in a window (the open ones, and those with a fact
since its start: :data:`figures.LINGERS`, ``Projection.entities(since=)``), and a breakdown still names
every value its dimension ever took (``Projection.attr_values``). Held here to the full scan: every
figure, breakdown and series of a random history, at instants before, inside and after it, is the
same as an unindexed projection's."""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from functions.ioc.function import figures, live, views
from functions.ioc.function.projection import Projection
from lscloud import events

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import ioc_support as ev  # noqa: E402

START = datetime(2026, 11, 20, tzinfo=timezone.utc)
DAYS = 10
COMMUNES = ("06001", "06016", "06040")


def _at(rng: random.Random, after: datetime | None = None) -> datetime:
    base = after or START
    return base + timedelta(minutes=rng.randrange(1, (DAYS * 24 * 60) if after is None else 3 * 24 * 60))


def _timed(event: dict, at: datetime) -> dict:
    event["time"] = at.isoformat()
    return event


def history(seed: int, n: int = 160) -> list[dict]:
    """Events of every kind the IOC counts, over ten days: things finished, things still open, things
    reopened, alerts raised and cleared."""
    rng = random.Random(seed)
    out: list[dict] = []
    for i in range(n):
        commune, kind = rng.choice(COMMUNES), rng.randrange(8)
        t = _at(rng)
        if kind == 0:
            gate = rng.choice(("huu-nghi", "tan-thanh"))
            out.append(ev.border(f"d{i}", "submitted", t, gate=gate))
            for to in rng.choice(((), ("cleared",), ("cleared", "exited"), ("refused",), ("expired",))):
                t = _at(rng, t)
                out.append(ev.border(f"d{i}", to, t, gate=gate))
        elif kind == 1:
            deadline = t + timedelta(days=rng.choice((1, 3, 5)))
            agency = rng.choice(("so-tu-phap", "so-xay-dung"))
            out.append(ev.dossier(f"h{i}", "received", t, deadline=deadline, unit=commune, agency=agency,
                                  channel=rng.choice(("online", "counter"))))
            for to in rng.choice(((), ("done",), ("denied",), ("cancelled",))):
                out.append(ev.dossier(f"h{i}", to, _at(rng, t), deadline=deadline, unit=commune, agency=agency))
        elif kind == 2:
            deadline = t + timedelta(days=2)
            out.append(ev.report(f"r{i}", "submitted", "submitted", "open", t, commune=commune, deadline=deadline))
            steps = rng.choice(((), (("closed", "closed"),), (("closed", "closed"), ("reopened", "open")),
                                (("closed", "closed"), ("rated", "closed"))))
            for fact, status in steps:
                t = _at(rng, t)
                out.append(ev.report(f"r{i}", fact, fact, status, t, commune=commune, deadline=deadline,
                                     rating=rng.randrange(1, 6) if fact == "rated" else None))
        elif kind == 3:
            out.append(_timed(ev.transfer(f"t{i}", rng.randrange(1, 50) * 100_000, point=f"bd-{commune}",
                                          unit=commune), t))
        elif kind == 4:
            hour = START + timedelta(hours=i)   # an alert's event id is its station's and hour's: one each
            station = f"lsn-{rng.randrange(3)}"
            out.append(ev.aqi_alert(station, True, hour, 150.0 + i, commune=commune))
            if rng.random() < 0.6:
                later = hour + timedelta(hours=rng.randrange(1, 30))
                out.append(ev.aqi_alert(station, False, later, 80.0, commune=commune, raised_hour=hour))
        elif kind == 5:
            out.append(ev.progress(commune, 1000, rng.randrange(1000), t))
        elif kind == 6:
            station = rng.randrange(3)   # a station stands in one commune
            out.append(ev.observations(f"lsn-{station}", t, rng.randrange(1, 4), commune=COMMUNES[station]))
        else:
            out.append(events.new_event("vn.langson.market.shop.opened.v1", "/market", {
                "shop_id": f"s{i}", "commune": commune, "kind": "farm", "to": "open", "at": ev.iso(t)}))
    return out


def fold(proj: Projection, evts: list[dict]) -> Projection:
    # a station's messages in the order it sent them: one more than TALLY_IDS_KEPT_H late into an hour
    # that counts already is taken for a repeat (not counted), so only their order matters there
    sent = iter(sorted((e for e in evts if e["type"].endswith("observations.recorded.v1")),
                       key=lambda e: e["data"]["received_at"]))
    evts = [next(sent) if e["type"].endswith("observations.recorded.v1") else e for e in evts]
    for e in evts:
        fact = live.fact_of(e)
        if fact is not None:
            proj.apply(fact)
    return proj


def _differences(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a["figures"] if a["figures"][k] != b["figures"][k])


def test_every_figure_is_the_full_scans():
    instants = [START - timedelta(hours=5), START + timedelta(days=2, hours=7, minutes=13),
                START + timedelta(days=6), START + timedelta(days=DAYS), START + timedelta(days=DAYS + 4)]
    for seed in range(4):
        evts = history(seed)
        full = fold(Projection(), evts)
        indexed = fold(figures.new_projection(), random.Random(seed).sample(evts, len(evts)))
        for as_of in instants:
            a, b = views.snapshot(full, as_of), views.snapshot(indexed, as_of)
            assert a["digest"] == b["digest"], (seed, as_of, _differences(a, b))
            for commune in COMMUNES:
                assert views.commune_card(full, views.Scope(), set(figures.KIND_OF_SOURCE) | {"softatm", "environment"},
                                          commune, as_of) == \
                    views.commune_card(indexed, views.Scope(), set(figures.KIND_OF_SOURCE) | {"softatm", "environment"},
                                       commune, as_of), (seed, as_of, commune)
        for ind in figures.COMPUTE:
            for where in (None, {"commune": "06016"}):
                args = (ind, START - timedelta(days=1), START + timedelta(days=DAYS + 1), "day", where)
                assert figures.series(full, *args) == figures.series(indexed, *args), (seed, ind, where)


def test_a_window_reads_what_is_open_and_what_is_recent_only():
    p = figures.new_projection()
    old, recent = START, START + timedelta(days=DAYS)
    for i in range(300):   # finished long ago
        fold(p, [_timed(ev.transfer(f"t{i}", 100_000), old + timedelta(minutes=i)),
                 ev.border(f"d{i}", "submitted", old), ev.border(f"d{i}", "exited", old + timedelta(hours=2))])
    fold(p, [ev.border("waiting", "submitted", old),                              # still waiting
             ev.border("today", "submitted", recent - timedelta(hours=1)),
             _timed(ev.transfer("t-today", 200_000), recent - timedelta(hours=1))])
    since = figures.fmt(recent - figures.WINDOW)
    assert {e.id for e in p.entities("declaration", since=since)} == {"waiting", "today"}
    assert [e.id for e in p.entities("transfer", since=since)] == ["t-today"]
    assert len(p.entities("transfer")) == 301
    t0, t1 = views.window(recent)
    assert figures.value(p, "border.waiting", t0, t1) == 2
    assert figures.value(p, "softatm.transfers", t0, t1) == 1
    # the gates and points of what was passed over are still named, with what counts for them
    assert figures.breakdown(p, "softatm.transfers", "point", t0, t1) == {"bd-06001": 1}
    assert figures.breakdown(p, "border.declared", "gate", t0, t1) == {"huu-nghi": 1}


def test_an_entity_moves_between_open_and_ended_as_its_facts_arrive():
    p = figures.new_projection()
    t = START + timedelta(days=1)
    fold(p, [ev.report("r1", "submitted", "submitted", "open", t)])
    later = figures.fmt(t + timedelta(days=3))
    assert [e.id for e in p.entities("report", since=later)] == ["r1"]          # open: counts at any later t1
    fold(p, [ev.report("r1", "closed", "closed", "closed", t + timedelta(hours=1))])
    assert p.entities("report", since=later) == []
    fold(p, [ev.report("r1", "reopened", "reopened", "open", t + timedelta(hours=2))])
    assert [e.id for e in p.entities("report", since=later)] == ["r1"]
    # a fact arriving late (before the latest) leaves the entity where its latest fact puts it
    fold(p, [ev.report("r1", "acknowledged", "acknowledged", "open", t + timedelta(minutes=30))])
    assert [e.id for e in p.entities("report", since=later)] == ["r1"]
    assert [e.id for e in p.entities("report", since=figures.fmt(t))] == ["r1"]
