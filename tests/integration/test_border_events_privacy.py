"""What border's events say of the people and trucks in them, on real weed mini + nats-server: an
enterprise moving its declaration is named by a pseudonym (a household business's tax code is its
owner's personal number) and no plate is in them, since the stream keeps an event 30 days and its
dead letter a year for every function that reads it; the audit trail keeps who acted in clear; gate
staff and officers stay in clear; the tax code the market matches its lots by is still there. A
traffic order's event names its drivers by declaration, code and language: no phone, no plate (the
SMS gateway fetches the phones when it sends: test_border_traffic_notifier.py)."""

from __future__ import annotations

import json
import uuid

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


def test_a_traffic_order_s_event_holds_no_phone_and_no_plate(client, tok, fn):  # noqa: F811 - the imported fixtures
    ent = tok("enterprise", sub=TAX)
    digits = str(uuid.uuid4().int)[:9]   # this test's own phone and plate: found nowhere else on the stream
    phone, plate = "+86 13" + digits, "桂A·" + digits[:5]
    did = new_id()
    body = declaration(did, plate=plate, trailer=None, booking={"mode": "living"})
    body["driver"]["phone"] = phone
    created = ok(client.post("/v1/declarations", json=body, headers=ent), 201)
    police = tok("officer", sub="tp-7", agency="traffic-police")
    order_id = "order-" + uuid.uuid4().hex[:8]
    answered = ok(client.post("/v1/traffic-orders", json={
        "id": order_id, "gate": "huu-nghi", "flow": "in", "kind": "hold", "declaration_ids": [did],
        "message_vi": "Tạm dừng 30 phút", "message_zh": "暂停30分钟"}, headers=police), 201)
    assert [r["declaration_id"] for r in answered["recipients"]] == [did]

    evts = [m["event"] for m in tail(fn.settings, 500) if m["event"]["type"].endswith(".traffic-order.issued.v2")
            and m["event"].get("subject") == order_id]
    assert len(evts) == 1
    text = json.dumps(evts, ensure_ascii=False)
    assert digits not in text and plate not in text and "桂A" not in text
    assert "driver_phone" not in text and "plate" not in text
    data = evts[0]["data"]
    assert data["recipients"] == [{"declaration_id": did, "code": created["code"], "language": "zh"}]
    assert {k: data[k] for k in ("id", "gate", "flow", "kind", "message_vi", "message_zh")} == {
        "id": order_id, "gate": "huu-nghi", "flow": "in", "kind": "hold", "message_vi": "Tạm dừng 30 phút",
        "message_zh": "暂停30分钟"}
    assert data["issued_at"] and data["by"] == "tp-7"   # an officer, in clear as in border's other events
