"""The IOC's domain: facts from events, an order-independent projection, the figures, the catalogue."""

from __future__ import annotations

import json
import random
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from functions.ioc.function import catalogue, facts, figures, live, views
from functions.ioc.function.projection import Projection
from lscloud import manifest
from lscloud.patterns import ecma_regex

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import ioc_support as ev  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
R1, R2, R3 = (ev.report_id(NOW) for _ in range(3))



def sample() -> list[dict]:
    out = [
        ev.border("d1", "submitted", ev.ago(100, now=NOW)), ev.border("d1", "cleared", ev.ago(40, now=NOW)),
        ev.border("d2", "submitted", ev.ago(90, now=NOW)), ev.border("d2", "cleared", ev.ago(10, now=NOW)),
        ev.border("d3", "submitted", ev.ago(30, now=NOW)),
        ev.border("d4", "submitted", ev.ago(20, now=NOW), gate="tan-thanh"),
        ev.border("d4", "cancelled", ev.ago(5, now=NOW), gate="tan-thanh"),
        ev.dossier("h1", "received", ev.ago(200, now=NOW), channel="online", deadline=ev.ago(60, now=NOW)),
        ev.dossier("h1", "done", ev.ago(90, now=NOW), deadline=ev.ago(60, now=NOW)),
        ev.dossier("h2", "received", ev.ago(200, now=NOW), channel="counter", deadline=ev.ago(100, now=NOW)),
        ev.dossier("h2", "done", ev.ago(50, now=NOW), deadline=ev.ago(100, now=NOW)),
        ev.dossier("h3", "received", ev.ago(200, now=NOW), channel="online", unit="06016", deadline=ev.ago(30, now=NOW)),
        ev.report(R1, "submitted", "submitted", "open", ev.ago(120, now=NOW), deadline=ev.ago(60, now=NOW)),
        ev.report(R2, "submitted", "submitted", "open", ev.ago(110, now=NOW), deadline=ev.ago(-60, now=NOW)),
        ev.report(R3, "submitted", "submitted", "open", ev.ago(100, now=NOW), commune="06016"),
        ev.report(R3, "closed", "closed", "closed", ev.ago(50, now=NOW), commune="06016"),
        ev.report(R3, "rated", "closed", "closed", ev.ago(40, now=NOW), commune="06016", rating=4),
        # a fact the reports function may add later: counted by its to_state / status, not its name
        ev.report(R2, "escalated", "escalated", "open", ev.ago(30, now=NOW), deadline=ev.ago(-60, now=NOW)),
        ev.transfer("t1", 500_000), ev.transfer("t2", 1_500_000, point="bd-06016", unit="06016"),
        ev.aqi_alert("st-1", True, ev.ago(120, now=NOW), 160), ev.aqi_alert("st-2", True, ev.ago(120, now=NOW), 130),
        ev.aqi_alert("st-2", False, ev.ago(30, now=NOW), 80),
        ev.progress("06001", 1000, 300, ev.ago(60, now=NOW)), ev.progress("06001", 1000, 400, ev.ago(30, now=NOW)),
        ev.progress("06016", 500, 400, ev.ago(30, now=NOW)),
    ]
    for e in out:  # the softatm schema carries no time in its data: the event's own time stands in
        e["time"] = figures.fmt(NOW - timedelta(minutes=15))
    return out


def _contract(event_type: str) -> str:
    """The schema a producer's event data keeps (``schemas/events/<producer>/…``)."""
    producer, fact = event_type.split(".")[2], ".".join(event_type.split(".")[3:-1])
    by_producer = {"border": "transition.json", "dossiers": "transition.json", "reports": "report.v1.json"}
    return f"events/{producer}/{by_producer.get(producer, fact + '.json')}"


def test_the_sample_events_keep_their_producers_contracts():
    """The IOC is tested on events as their producers publish them: every event the tests build
    validates against its producer's schema (a report's id and service code as the reports
    function issues them, a dossier's deadline on each of its facts, a cleared alert's level)."""
    from lscloud.web import SchemaSet

    from lscloud.local.bench_ioc import _report as bench_report

    schemas = SchemaSet(ROOT / "schemas")
    built = sample() + [ev.report(ev.report_id(NOW), "submitted", "submitted", "open", NOW),
                        ev.dossier("h9", "received", NOW, deadline=NOW + timedelta(days=3)),
                        bench_report("ffffffff", 1, NOW),   # `lscloud bench ioc`'s too (its ids wrap round)
                        ev.observations("lsn-air-1", NOW, 3)]
    assert {e["type"].split(".")[2] for e in built} >= {"border", "dossiers", "reports", "softatm", "environment",
                                                           "community"}
    for e in built:
        assert (ROOT / "schemas" / _contract(e["type"])).is_file(), e["type"]
        assert schemas.errors(_contract(e["type"]), e["data"]) == [], e["type"]


def values(p: Projection, where=None) -> dict:
    t0, t1 = views.window(NOW)
    return {i: figures.value(p, i, t0, t1, where) for i in figures.COMPUTE}


def test_figures_of_a_known_history():
    v = values(ev.fold(sample()))
    assert v["border.declared"] == 4 and v["border.cleared"] == 2 and v["border.waiting"] == 1
    assert v["border.clearance-median"] == 70.0  # 60 and 80 minutes
    assert v["dossiers.received"] == 3 and v["dossiers.online-share"] == pytest.approx(66.67)
    assert v["dossiers.on-time-rate"] == 50.0  # h1 on time, h2 late
    assert v["dossiers.overdue-rate"] == 100.0  # h3 open and past its deadline
    assert v["reports.received"] == 3 and v["reports.open"] == 2 and v["reports.overdue"] == 1
    assert v["reports.satisfaction"] == 4.0
    assert v["softatm.transfers"] == 2 and v["softatm.volume"] == 2_000_000
    assert v["environment.alerts-active"] == 1 and v["environment.aqi-peak"] == 160
    assert v["community.shop-or-payment-share"] == pytest.approx(100 * 800 / 1500, abs=0.01)
    one = values(ev.fold(sample()), {"commune": "06016"})
    assert one["reports.open"] == 0 and one["softatm.volume"] == 1_500_000 and one["dossiers.received"] == 1


def test_redelivery_and_any_order_give_identical_figures():
    evts = sample()
    once = views.snapshot(ev.fold(evts), NOW)
    for seed in range(5):
        shuffled = evts + evts[: 7]  # redelivered events, in another order
        random.Random(seed).shuffle(shuffled)
        again = views.snapshot(ev.fold(shuffled), NOW)
        assert again["digest"] == once["digest"] and again["facts"] == once["facts"] == len(evts)


def test_gauges_are_as_of_the_end_of_each_bucket():
    p = ev.fold(sample())
    pts = figures.series(p, "reports.open", NOW - timedelta(hours=3), NOW, "hour")
    assert [x["value"] for x in pts][-1] == 2
    assert sum(x["value"] for x in figures.series(p, "border.declared", NOW - timedelta(hours=3), NOW, "hour")) == 4
    days = figures.buckets(NOW - timedelta(days=2), NOW, "day")
    assert all(a.endswith("T17:00:00Z") for a, _ in days)  # midnight in Vietnam


def test_facts_carry_no_personal_data():
    for e in sample():
        text = repr(live.fact_of(e))
        assert "20C-123.45" not in text and "001099012345" not in text and "0101234567" not in text
        assert e["id"] not in text  # the event id is kept as a digest


def test_an_event_without_its_id_or_data_counts_for_nothing():
    e = ev.report(R1, "submitted", "submitted", "open", NOW)
    e["data"].pop("report_id")
    assert facts.of(e) is None
    assert facts.of({**ev.transfer("t", 1), "data": "x"}) is None


def test_catalogue_figures_and_subscriptions_agree():
    ids = [i["id"] for i in catalogue.indicators()]
    assert sorted(ids) == sorted(figures.COMPUTE)
    assert sum(a["nine"] for a in catalogue.areas()) == 9
    no_source = [a["id"] for a in catalogue.areas() if not a["sources"]]
    assert set(no_source) == {"e-documents", "traffic-safety", "online-press", "information-security", "education", "tourism"}
    for t in catalogue.targets()["measured"]:
        assert t["indicator"] in ids and "source" in t and isinstance(t["verified"], bool)
    m = manifest.load(ROOT / "functions" / "ioc")
    # and the tick, on which the runtime sweeps its dead letters (repeat-safe: no events-seen records)
    assert {s.type for s in m.subscriptions} == set(facts.HANDLED) | {"vn.langson.platform.clock.ticked.v1"}
    assert m.scale.min == 1 and m.scale.max == 1


def _path_schema(name: str) -> str:
    return json.loads((ROOT / "schemas" / "ioc" / name).read_text(encoding="utf-8"))["pattern"]


def test_the_indicator_id_schema_admits_every_indicator_of_the_catalogue():
    """``schemas/ioc/indicator-id.json`` (the series route's ``indicator_id``) states the ids' shape;
    the catalogue holds the list."""
    pattern = ecma_regex(_path_schema("indicator-id.json"))
    assert [i["id"] for i in catalogue.indicators() if not pattern.search(i["id"])] == []


def test_the_asset_name_schema_admits_every_asset_the_wall_serves():
    """``schemas/ioc/asset-name.json`` (the ``/assets/{name}`` route) admits the files of ``static/`` and
    the chart library, and names the suffixes the wall has a media type for."""
    from functions.ioc.function import routes_wall

    raw = _path_schema("asset-name.json")
    pattern = ecma_regex(raw)
    served = sorted(f.name for f in routes_wall.STATIC.iterdir() if f.is_file()) + ["plotly.min.js"]
    assert [n for n in served if not pattern.search(n) or Path(n).suffix not in routes_wall.TYPES] == []
    suffixes = re.search(r"\\\.\(\?:([a-z0-9|]+)\)\$$", raw).group(1).split("|")
    assert sorted("." + s for s in suffixes) == sorted(routes_wall.TYPES)
    assert not pattern.search("func.py") and not pattern.search("..") and not pattern.search("wall.js.map")


def test_scopes():
    p = ev.fold(sample())
    everything = {s for s in facts.HANDLED and catalogue.sources()}
    public = views.indicators(p, views.Scope(public_only=True), everything, as_of=NOW)
    assert all(i["public"] for i in public["items"]) and "reports.overdue" not in [i["id"] for i in public["items"]]
    mine = views.indicators(p, views.Scope(commune="06016"), everything, as_of=NOW)
    assert mine["commune"] == "06016" and all("commune" in i["dimensions"] for i in mine["items"])
    with pytest.raises(views.NotYourCommune):
        views.commune_card(p, views.Scope(commune="06016"), everything, "06001", NOW)
    none = views.indicators(p, views.Scope(), set(), as_of=NOW)
    assert all(i["status"] == "no-source" and i["value"] is None for i in none["items"])
    assert all(a["status"] == "no-source" for a in none["areas"])


@pytest.mark.parametrize("data", [
    {"commune": "06184", "households": 10, "indicators": "all", "updated_at": "2026-12-07T08:00:00+07:00"},
    {"commune": "06184", "households": 10, "indicators": {"shop-or-payment": 5}, "updated_at": "2026-12-07T08:00:00+07:00"},
    {"commune": "06184", "households": 10, "indicators": {}, "updated_at": "0001-01-01T00:00:00+07:00"},
], ids=["indicators-not-an-object", "indicator-not-an-object", "year-1"])
def test_an_event_of_another_shape_is_no_fact_and_no_error(data):
    """Such an event raised out of facts.of: a 500, dead-lettered after five deliveries, and the
    replay, which reads every event the stream keeps, answered 500 while the stream kept it."""
    event = {"id": "e-odd", "source": "/community", "type": sorted(facts.COMMUNITY)[0], "data": data,
             "time": "2026-12-07T01:00:00Z"}
    fact = live.fact_of(event)
    assert fact is None or fact["kind"] == "commune-progress"
