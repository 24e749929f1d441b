"""What border's events say of the people and trucks in them, on real weed mini + nats-server: an
enterprise moving its declaration is named by a pseudonym (a household business's tax code is its
owner's personal number) and no plate is in them, since the stream keeps an event 30 days and its
dead letter a year for every function that reads it; the audit trail keeps who acted in clear; gate
staff and officers stay in clear; the tax code the market matches its lots by is still there."""

from __future__ import annotations

import json

import pytest

from lscloud import pseudonyms
from lscloud.delivery import tail

from border_support import TAX, declaration
from test_border_api import app, border, client, directory, fn, idem, new_id, ok, tok  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

PLATE, TRAILER = "桂A·12345", "桂A·6789挂"


def test_an_enterprise_is_a_pseudonym_and_no_plate_is_in_the_events_the_trail_keeps_both(
        client, tok, fn):  # noqa: F811 - the imported fixtures
    ent = tok("enterprise", sub=TAX)
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did, plate=PLATE, trailer=TRAILER, booking={"mode": "living"}),
                   headers=ent), 201)
    yard = tok("yard-operator", sub="yard-hn-1", unit="huu-nghi")
    assert ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard)))["status"] == "in_yard"
    gate = tok("gate-operator", sub="gate-hn-1", unit="huu-nghi")
    ok(client.post("/v1/gates/huu-nghi/calls", json={"flow": "in", "count": 1}, headers=idem(gate)))
    ok(client.post(f"/v1/declarations/{did}/at-gate", headers=idem(gate)))
    guard = tok("officer", sub="bp-17", agency="border-guard")
    ok(client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"}, headers=idem(guard)))
    other = new_id()
    ok(client.post("/v1/declarations", json=declaration(other, plate=PLATE, trailer=TRAILER, submit=False), headers=ent),
       201)
    assert ok(client.post(f"/v1/declarations/{other}/cancel", json={}, headers=idem(ent)))["status"] == "cancelled"

    evts = [m["event"] for m in tail(fn.settings, 200) if m["event"].get("subject") in (did, other)]
    facts = {(e["subject"], e["type"].split(".", 3)[3].removesuffix(".v1")): e["data"] for e in evts}
    assert PLATE not in json.dumps(evts, ensure_ascii=False) and TRAILER not in json.dumps(evts, ensure_ascii=False)
    assert not any({"tractor_plate", "trailer_plate"} & set(e["data"]) for e in evts)
    enterprise = {"kind": "enterprise", "sub": pseudonyms.pseudonym("border-actors", TAX)}
    for fact in ("declaration.drafted", "declaration.submitted", "declaration.queued"):
        assert facts[(did, fact)]["actor"] == enterprise, fact
    assert facts[(other, "declaration.cancelled")]["actor"] == enterprise
    assert facts[(did, "truck.arrived")]["actor"] == {"kind": "yard-operator", "sub": "yard-hn-1", "unit": "huu-nghi"}
    assert facts[(did, "truck.called")]["actor"]["sub"] == "gate-hn-1"
    assert facts[(did, "inspection.started")]["actor"] == {"kind": "officer", "sub": "bp-17", "agency": "border-guard"}
    assert facts[(did, "decision.recorded")]["agency"] == "border-guard"
    # the market links an exited truck to its lots by the exporter's tax code
    assert {d["enterprise_tax_code"] for d in facts.values()} == {TAX}

    # the declaration's own record names who acted, as they acted
    trail = ok(client.get(f"/v1/declarations/{did}/audit", headers=ent))["items"]
    moved = {e["to"]: e["actor"] for e in trail if e["from"] != e["to"]}
    assert moved["draft"] == moved["submitted"] == moved["queued"] == {"kind": "enterprise", "sub": TAX}
    assert moved["under_inspection"]["sub"] == "bp-17"
    trail = ok(client.get(f"/v1/declarations/{other}/audit", headers=ent))["items"]
    assert trail[-1]["to"] == "cancelled" and trail[-1]["actor"] == {"kind": "enterprise", "sub": TAX}
