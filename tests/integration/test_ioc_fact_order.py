"""The IOC orders each entity's moves as their producer made them, against real weed mini +
nats-server: moves of one report or declaration within one second (an agency system posting a
report's updates together, one request making two moves) count in their order however they are
delivered, after a restart, in a replay, and redelivered; facts stored before the IOC kept that
order still load, count once, and get it from a replay put live; and the reports function's events
say when each move happened to the millisecond, with the version the IOC orders them by."""

# ruff: noqa: F811 (the no_peers fixture imported from ioc_support is named as a parameter)
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

import ioc_support as ev
from ioc_support import deliver, no_peers  # noqa: F401
from lscloud import store
from lscloud.delivery import tail
from lscloud.web import SchemaSet

pytestmark = pytest.mark.integration

# through the runtime's own loader: the contract names the API's report-id.json and service-code.json by $ref
REPORT_EVENTS = SchemaSet(Path(__file__).resolve().parents[2] / "schemas").validator("events/reports/report.v1.json")


def values(client, tokens) -> dict:
    return {i["id"]: i["value"] or 0 for i in client.get("/v1/indicators", headers=tokens.header("ioc")).get_json()["items"]}


def same_second_moves(now) -> list[dict]:
    """A report submitted, acknowledged and started (one write) and fixed, and a declaration
    submitted, cleared and exited, each within one second, named as their producers name them
    (``<record>.<version>.<n>``): ids whose digests put a middle move last."""
    at = now.replace(microsecond=0) - timedelta(minutes=2)
    rid = next(r for r in (ev.report_id(at) for _ in range(200))
               if ev.misordered("/reports", [f"{r}.1.0", f"{r}.2.0", f"{r}.2.1", f"{r}.3.0"]))
    decl = next(d for d in (f"d-order-{n}" for n in range(200))
                if ev.misordered("/border", [f"{d}.1.0", f"{d}.2.0", f"{d}.3.0"]))
    return [ev.report(rid, "submitted", "submitted", "open", at, id=f"{rid}.1.0"),
            ev.report(rid, "acknowledged", "acknowledged", "open", at, id=f"{rid}.2.0"),
            ev.report(rid, "started", "in_progress", "open", at, id=f"{rid}.2.1"),
            ev.report(rid, "resolved", "fixed", "closed", at, id=f"{rid}.3.0"),
            ev.border(decl, "submitted", at, id=f"{decl}.1.0"), ev.border(decl, "cleared", at, id=f"{decl}.2.0"),
            ev.border(decl, "exited", at, id=f"{decl}.3.0")]


def test_moves_within_one_second_count_in_their_producers_order(start_function, rt, tokens, no_peers):
    one = start_function("ioc", peer_url_template=no_peers)
    client = one.app.test_client()
    before = values(client, tokens)
    moves = same_second_moves(ev.ago(0))
    for e in moves[::-1]:   # delivered last first: a consumer's order is no producer's
        rt.bus.publish(e)
        deliver(client, rt, e)
    after = values(client, tokens)
    assert after["reports.open"] == before["reports.open"]
    assert after["reports.received"] == before["reports.received"] + 1
    assert after["border.waiting"] == before["border.waiting"]
    assert after["border.cleared"] == before["border.cleared"] + 1

    # a restarted instance reads the same order back from the store
    restarted = start_function("ioc", peer_url_template=no_peers).app.test_client()
    assert values(restarted, tokens) == after
    # the stream read again gives the same figures and the same facts
    r = client.post("/v1/replay", headers=tokens.header("operator"))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["identical"] is True and r.get_json()["differences"] == []
    # redelivered: counted once
    held = len(one.app.config["IOC_LIVE"].projection)
    for e in moves:
        deliver(client, rt, e)
    assert values(client, tokens) == after and len(one.app.config["IOC_LIVE"].projection) == held


def _as_stored_before(fact: dict) -> dict:
    """``fact`` as the IOC wrote it before it kept the producer's order."""
    return {k: v for k, v in fact.items() if k not in ("seq", "at_us")}


def test_facts_stored_before_the_order_was_kept_load_count_once_and_a_replay_upgrades_them(
        start_function, rt, tokens, no_peers):
    from functions.ioc.function import live

    now = ev.ago(0).replace(microsecond=0)
    rid, decl = ev.report_id(now), "d-stored-old"
    evts = [ev.report(rid, "submitted", "submitted", "open", now - timedelta(minutes=9), id=f"{rid}.1.0"),
            ev.report(rid, "resolved", "fixed", "closed", now - timedelta(minutes=3), id=f"{rid}.2.0"),
            ev.border(decl, "submitted", now - timedelta(minutes=8), id=f"{decl}.1.0"),
            ev.border(decl, "cleared", now - timedelta(minutes=4), id=f"{decl}.2.0")]
    for e in evts:
        rt.bus.publish(e)
    stored = [_as_stored_before(live.fact_of(e)) for e in evts]
    assert all("seq" not in f for f in stored)
    objects, bucket = store.connection()
    live._put_pack(objects, bucket, stored[:2])   # the report's facts packed, the declaration's loose
    for f in stored[2:]:
        objects.put(bucket, live.stored_key(f), json.dumps(f, sort_keys=True).encode())

    one = start_function("ioc", peer_url_template=no_peers)
    client = one.app.test_client()
    loaded = values(client, tokens)
    assert loaded["reports.received"] == 1 and loaded["reports.open"] == 0
    assert loaded["border.declared"] == 1 and loaded["border.waiting"] == 0 and loaded["border.cleared"] == 1
    for e in evts:   # redelivered, their facts now with the producer's order: the same ids, counted once
        deliver(client, rt, e)
    assert values(client, tokens) == loaded and len(one.app.config["IOC_LIVE"].projection) == 4

    r = client.post("/v1/replay?apply=true", headers=tokens.header("operator"))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["applied"] is True and body["differences"] == []
    assert body["facts"]["only_live"] == 0 and body["facts"]["only_replayed"] == 0
    restarted = start_function("ioc", peer_url_template=no_peers)
    assert values(restarted.app.test_client(), tokens) == loaded
    held = restarted.app.config["IOC_LIVE"].ensure_loaded()
    assert [held.fact(f["id"])["seq"] for f in stored] == [[1, 0], [2, 0], [1, 0], [2, 0]]


def test_report_events_say_their_moves_to_the_millisecond_with_their_version(start_function, rt, tokens, peers,
                                                                              no_peers):
    from functions.ioc.function import live

    reports = start_function("reports", peer_url_template=peers.template).app.test_client()
    citizen = tokens("citizen", "020088004444")
    r = reports.post("/v1/reports", headers=citizen, json={
        "service_code": "GT-HU-HONG", "lat": 21.8537, "long": 106.7610, "commune": "06184",
        "attributes": {"severity": ["high"]}, "description": "Ổ gà lớn trước cổng chợ"})
    assert r.status_code == 201, r.get_json()
    rid = r.get_json()["id"]
    officer = tokens("officer", "cb-sxd", agency="so-xay-dung")
    for action in ("acknowledge", "start", "fix"):
        r = reports.post(f"/v1/reports/{rid}/actions/{action}", json={}, headers=officer)
        assert r.status_code == 200, r.get_json()
    mine = [e["event"] for e in tail(rt.settings, 100) if e["event"].get("subject") == rid]
    assert [e["data"]["to_state"] for e in mine] == ["submitted", "acknowledged", "in_progress", "fixed"]
    for e in mine:
        assert not list(REPORT_EVENTS.iter_errors(e["data"])), e["data"]
        assert e["data"]["occurred_at"][19] == "." and e["data"]["occurred_at"].endswith("+07:00"), e["data"]
    seqs = [live.fact_of(e)["seq"] for e in mine]
    assert seqs == sorted(seqs) and len(set(map(tuple, seqs))) == 4

    ioc = start_function("ioc", peer_url_template=no_peers).app.test_client()
    before = values(ioc, tokens)
    for e in mine[::-1]:
        deliver(ioc, rt, e)
    after = values(ioc, tokens)
    assert after["reports.open"] == before["reports.open"] and after["reports.received"] == before["reports.received"] + 1
