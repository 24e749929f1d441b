"""What a border caller reaches once the door (``@allow``) let its role in, each scope held by a
second caller of the same role: an enterprise only under its own tax code (a token whose subject
is no tax code declared under any), a gate's operators and posted officers only at their gate (a
traffic police officer posted at one gate ordered the trucks of another).

A record the caller may not know is a 404 (another enterprise's declaration, another gate's truck);
a permission on what the caller may see, or on the caller itself, is a 403 of its own type."""

from __future__ import annotations

import uuid

import pytest
from border_support import TAX, TAX2, declaration
from test_border_api import app, border, client, directory, fn, idem, new_id, ok, tok  # noqa: F401 - fixtures

from lscloud.problems import type_uri

pytestmark = pytest.mark.integration

NOT_A_TAX_CODE = type_uri("subject-not-a-tax-code")
WRONG_GATE = type_uri("wrong-gate")
PDF = b"%PDF-1.4\n%%EOF\n"


def enterprise_calls(http, did: str, headers: dict) -> dict:
    """Every border route an enterprise is let in at, on declaration ``did``, by ``headers``."""
    pdf = {**headers, "Content-Type": "application/pdf"}
    return {
        "create": http.post("/v1/declarations", json=declaration(did, tax=TAX), headers=headers),
        "list": http.get("/v1/declarations", headers=headers),
        "read": http.get(f"/v1/declarations/{did}", headers=headers),
        "submit": http.post(f"/v1/declarations/{did}/submit", headers=idem(headers)),
        "booking": http.post(f"/v1/declarations/{did}/booking", json={"mode": "living"}, headers=idem(headers)),
        "cancel": http.post(f"/v1/declarations/{did}/cancel", headers=idem(headers)),
        "attach": http.post(f"/v1/declarations/{did}/attachments", data=PDF, headers=pdf),
        "decisions": http.get(f"/v1/declarations/{did}/decisions", headers=headers),
        "audit": http.get(f"/v1/declarations/{did}/audit", headers=headers),
        "position": http.get(f"/v1/declarations/{did}/position", headers=headers),
    }


def order(gate: str) -> dict:
    return {"id": "order-" + uuid.uuid4().hex[:8], "gate": gate, "flow": "in", "kind": "hold",
            "message_vi": "Tạm dừng 30 phút", "message_zh": "暂停30分钟"}


@pytest.mark.parametrize("subject", ["acme-logistics", "0100-109-106", "0100109107"])
def test_an_enterprise_token_whose_subject_is_no_tax_code_is_refused_on_every_route(client, tok, subject):  # noqa: F811 - the imported fixtures
    """An enterprise token whose subject was not all digits skipped the owner rule: it declared
    under any tax code (customs read the declaration as that business's), its raw subject kept as
    the owner. Such a token is refused now on every route that takes an enterprise as owner, with
    the same 403 whether the declaration exists or not, and its subject's value never in the answer."""
    ent = tok("enterprise", sub=TAX)
    theirs = new_id()
    ok(client.post("/v1/declarations", json=declaration(theirs), headers=ent), 201)
    opaque = tok("enterprise", sub=subject)
    for did in (theirs, new_id()):
        for route, r in enterprise_calls(client, did, opaque).items():
            p = r.get_json(silent=True) or {}
            assert (r.status_code, p.get("type")) == (403, NOT_A_TAX_CODE), (subject, route, r.status_code, p)
            assert r.mimetype == "application/problem+json" and p["title_vi"] and p["detail_vi"]
            assert "tax code" in p["detail"] and "mã số thuế" in p["detail_vi"]
            assert subject not in r.get_data(as_text=True)
        customs = tok("officer", agency="customs")
        if did != theirs:   # nothing was declared under TAX by it
            assert client.get(f"/v1/declarations/{did}", headers=customs).status_code == 404
    assert [d["id"] for d in ok(client.get("/v1/declarations", headers=ent))["items"]] == [theirs]


def test_a_dependent_unit_s_tax_code_still_declares_under_its_parent_s(client, tok):  # noqa: F811 - the imported fixtures
    """The refusal is of subjects that are no tax code: a branch's (13 digits) is one."""
    branch = tok("enterprise", sub=f"{TAX}-001")
    did = new_id()
    made = ok(client.post("/v1/declarations", json=declaration(did, tax=TAX), headers=branch), 201)
    assert made["enterprise"]["tax_code"] == TAX
    assert ok(client.get(f"/v1/declarations/{did}", headers=branch))["id"] == did
    r = client.post("/v1/declarations", json=declaration(new_id(), tax=TAX2), headers=branch)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/enterprise/tax_code"


def test_another_enterprise_knows_nothing_of_a_declaration(client, tok):  # noqa: F811 - the imported fixtures
    """Guard (held before): every route of an enterprise on another's declaration is its 404, and
    declaring under the other's tax code the owner rule's 422."""
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did), headers=tok("enterprise", sub=TAX)), 201)
    other = tok("enterprise", sub=TAX2)
    calls = enterprise_calls(client, did, other)
    r = calls.pop("create")   # under the other's tax code: the owner rule's 422
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/enterprise/tax_code"
    assert ok(calls.pop("list"))["items"] == []
    for route, r in calls.items():
        assert r.status_code == 404 and r.mimetype == "application/problem+json", (route, r.status_code)


def test_a_traffic_police_officer_posted_at_one_gate_orders_only_there(client, tok):  # noqa: F811 - the imported fixtures
    """An officer posted at Tân Thanh (``unit``) ordered the trucks queued at Hữu Nghị, and the
    order's recipients (code and plate: the driver's public lookup) came back to them. A posted
    officer orders at their own gate only; one without a post, at any gate, as at the other gate routes."""
    ent, yard = tok("enterprise", sub=TAX), tok("yard-operator", unit="huu-nghi")
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did, gate="huu-nghi", booking={"mode": "living"}),
                   headers=ent), 201)
    ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard)))

    at_tan_thanh = tok("officer", agency="traffic-police", unit="tan-thanh")
    refused = order("huu-nghi")
    r = client.post("/v1/traffic-orders", json=refused, headers=at_tan_thanh)
    p = r.get_json()
    assert (r.status_code, p["type"]) == (403, WRONG_GATE) and p["title_vi"] and p["detail_vi"], p
    assert "recipients" not in p and did not in r.get_data(as_text=True)
    notifier = tok("notifier")
    assert client.get(f"/v1/traffic-orders/huu-nghi/{refused['id']}/recipients", headers=notifier).status_code == 404

    ok(client.post("/v1/traffic-orders", json=order("tan-thanh"), headers=at_tan_thanh), 201)
    at_huu_nghi = tok("officer", agency="traffic-police", unit="huu-nghi")
    mine = ok(client.post("/v1/traffic-orders", json=order("huu-nghi"), headers=at_huu_nghi), 201)
    assert [x["declaration_id"] for x in mine["recipients"]] == [did]
    unposted = tok("officer", agency="traffic-police")
    ok(client.post("/v1/traffic-orders", json=order("huu-nghi"), headers=unposted), 201)


def test_a_gate_s_operators_and_posted_officers_act_only_at_their_gate(client, tok):  # noqa: F811 - the imported fixtures
    """Guard (held before; no test named it): another gate's yard and gate operators and posted
    officers, each beside one of the same role at the truck's gate. The truck is a 404 to those who
    may not see it (another gate's yard, gate and posted officers); a gate's own routes a 403."""
    ent = tok("enterprise", sub=TAX)
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did, gate="huu-nghi", booking={"mode": "living"}),
                   headers=ent), 201)

    yard_tt, yard_hn = tok("yard-operator", unit="tan-thanh"), tok("yard-operator", unit="huu-nghi")
    assert client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard_tt)).status_code == 404
    assert ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard_hn)))["status"] == "in_yard"

    gate_tt, gate_hn = tok("gate-operator", unit="tan-thanh"), tok("gate-operator", unit="huu-nghi")
    for r in (client.post("/v1/gates/huu-nghi/calls", json={"flow": "in"}, headers=idem(gate_tt)),
              client.post("/v1/gates/huu-nghi/sweep", headers=gate_tt),
              client.put("/v1/gates/huu-nghi/capacity/in", json={"per_hour": 10, "reason": "x"}, headers=gate_tt)):
        assert (r.status_code, r.get_json()["type"]) == (403, WRONG_GATE), r.get_json()
    assert client.post(f"/v1/declarations/{did}/at-gate", headers=idem(gate_tt)).status_code == 404
    called = ok(client.post("/v1/gates/huu-nghi/calls", json={"flow": "in"}, headers=idem(gate_hn)))
    assert [c["declaration_id"] for c in called["called"]] == [did]

    customs_tt, customs_hn = (tok("officer", agency="customs", unit=u) for u in ("tan-thanh", "huu-nghi"))
    r = client.get("/v1/gates/huu-nghi/worklist", headers=customs_tt)
    assert (r.status_code, r.get_json()["type"]) == (403, WRONG_GATE)
    assert did in [w["declaration_id"] for w in ok(client.get("/v1/gates/huu-nghi/worklist", headers=customs_hn))["items"]]
    hq_tt, hq_hn = (tok("officer", agency="health-quarantine", unit=u) for u in ("tan-thanh", "huu-nghi"))
    r = client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"}, headers=idem(hq_tt))
    assert r.status_code == 404
    assert client.get(f"/v1/declarations/{did}/decisions", headers=hq_tt).status_code == 404
    decided = ok(client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"}, headers=idem(hq_hn)))
    assert decided["decisions"]["health-quarantine"]["decision"] == "pass"
