"""A called driver is told, on real weed mini + nats-server: the ``truck.called`` event carries no
phone, so the SMS/Zalo gateway (role ``notifier``, and only it) reads the driver's phone, language
and the notice in vi / zh / en from ``/v1/calls/{gate}/{id}/recipient`` while the call stands (404
for no call, 410 once it is over or superseded). The board and the lookup name the gate in the
asker's language as the directory has it (the Chinese counterpart's name beside the Vietnamese),
and a declaration's ``allowed_actions`` are the caller's own, as the routes would accept them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from lscloud.delivery import tail

import border_support
from border_support import TAX, declaration
from border_support import border, client, directory, fn, idem, new_id, ok, tok  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

GATE = "huu-nghi"
PROBLEM = "application/problem+json"
HUU_NGHI_NAMES = {"name_en": "Hữu Nghị International Border Gate",
                  "counterpart": {"name_zh": "友谊关", "pinyin": "Yǒuyìguān", "name_en": "Youyiguan",
                                  "city": "Pingxiang", "region": "Guangxi"}}
"""What the real directory (functions/directory/function/data/border_gates.yaml) says of Hữu Nghị
beyond the stand-in's Vietnamese name."""


@pytest.fixture(autouse=True)
def directory_names(monkeypatch):
    for k, v in HUU_NGHI_NAMES.items():
        monkeypatch.setitem(border_support.GATES[GATE], k, v)


def called_truck(http, token, nationality="CN"):
    """A truck called at Hữu Nghị, its driver's own phone: ``(id, code, phone)``."""
    phone = "+8613" + str(uuid.uuid4().int)[:9]
    did, code = border_support.called(http, token, gate=GATE, plate="桂A·" + str(uuid.uuid4().int)[:5],
                                      nationality=nationality, phone=phone)
    return did, code, phone


def called_event(started, did) -> dict:
    events = [m["event"] for m in tail(started.settings, 500)
              if m["event"]["type"] == "vn.langson.border.truck.called.v1" and m["event"]["data"]["declaration_id"] == did]
    assert events, did
    return events[-1]["data"]


def recipient(did, gate=GATE):
    return f"/v1/calls/{gate}/{did}/recipient"


def test_the_notifier_reads_a_called_driver_s_phone_and_notice_while_the_call_stands(client, fn, tok):  # noqa: F811
    did, code, phone = called_truck(client, tok)
    event = called_event(fn, did)
    assert phone not in str(event)   # the event names the call, never the phone
    deadline = event["details"]["deadline"]
    notifier = tok("notifier", sub="sms-gateway")

    r = client.get(recipient(event["declaration_id"], event["gate"]), query_string={"deadline": deadline},
                   headers=notifier)
    body = ok(r)
    assert r.headers["Cache-Control"] == "no-store"
    hhmm = datetime.fromisoformat(deadline.replace("Z", "+00:00")).astimezone(
        timezone(timedelta(hours=7))).strftime("%H:%M")
    assert {k: body[k] for k in ("declaration_id", "code", "gate", "flow", "language", "driver_phone")} == {
        "declaration_id": did, "code": code, "gate": GATE, "flow": "in", "language": "zh", "driver_phone": phone}
    assert body["deadline"] == deadline
    assert set(body["messages"]) == {"vi", "zh", "en"}
    assert all(hhmm in m and code in m for m in body["messages"].values()), body["messages"]
    assert "Cửa khẩu quốc tế Hữu Nghị (友谊关)" in body["messages"]["zh"]
    assert "Hữu Nghị International Border Gate" in body["messages"]["en"]
    assert "Cửa khẩu quốc tế Hữu Nghị" in body["messages"]["vi"]
    # without the event's deadline: the call that stands
    assert ok(client.get(recipient(did), headers=notifier))["driver_phone"] == phone

    # the gateway only: not the platform's operators, the gate, the officers, the enterprise, the driver
    refused = {"operator": tok("operator"), "gate": tok("gate-operator", unit=GATE),
               "officer": tok("officer", agency="traffic-police"), "enterprise": tok("enterprise", sub=TAX),
               "driver": tok("driver", sub="E12345678")}
    for who, headers in refused.items():
        r = client.get(recipient(did), headers=headers)
        assert r.status_code == 403 and phone not in r.get_data(as_text=True), who
    assert client.get(recipient(did)).status_code == 401

    # another call's deadline (a call since): superseded; the truck at the gate: the call is over
    later = (datetime.fromisoformat(deadline.replace("Z", "+00:00")) + timedelta(minutes=5)).isoformat()
    r = client.get(recipient(did), query_string={"deadline": later}, headers=notifier)
    assert r.status_code == 410 and r.content_type.startswith(PROBLEM) and phone not in r.get_data(as_text=True)
    assert r.get_json()["type"].endswith("call-over")
    ok(client.post(f"/v1/declarations/{did}/at-gate", headers=idem(tok("gate-operator", unit=GATE))))
    r = client.get(recipient(did), query_string={"deadline": deadline}, headers=notifier)
    assert r.status_code == 410 and r.get_json()["current_state"] == "at_gate"
    assert r.get_json()["title_vi"] == "Lượt gọi không còn hiệu lực"


def test_a_missed_call_is_over_and_no_call_is_a_404(border, tok):  # noqa: F811
    http = border(BORDER_CALL_MINUTES="0").app.test_client()   # every call is missed at once
    notifier = tok("notifier", sub="sms-gateway")
    did, _, phone = called_truck(http, tok, nationality="VN")
    r = http.get(recipient(did), headers=notifier)
    assert r.status_code == 410 and phone not in r.get_data(as_text=True)
    ok(http.post(f"/v1/gates/{GATE}/sweep", headers=tok("gate-operator", sub="gate-op-7", unit=GATE)))
    assert http.get(recipient(did), headers=notifier).status_code == 410   # back in the yard
    # the platform's move, made as its clock makes it; who asked for it named beside
    trail = ok(http.get(f"/v1/declarations/{did}/audit", headers=tok("auditor")))
    missed = [e for e in trail["items"] if e["action"] == "miss_call"]
    assert [(e["actor"]["kind"], e["details"]["asked_by"]) for e in missed] == [
        ("system", {"kind": "gate-operator", "sub": "gate-op-7", "unit": GATE})], missed

    never = new_id()
    ok(http.post("/v1/declarations", json=declaration(never, gate=GATE), headers=tok("enterprise", sub=TAX)), 201)
    for path in (recipient(never), recipient(did, gate="tan-thanh"), recipient("d-nowhere-000")):
        r = http.get(path, headers=notifier)
        assert r.status_code == 404 and r.get_json()["type"].endswith("call-not-found"), path
    r = http.get(recipient(did), query_string={"deadline": "soon"}, headers=notifier)
    assert r.status_code == 400 and "deadline" in r.get_data(as_text=True)


def test_the_board_and_the_lookup_name_the_gate_in_the_asker_s_language(client, tok):  # noqa: F811
    said = {}
    for lang in ("zh", "en", "vi"):
        r = client.get(f"/v1/gates/{GATE}/board", headers={"Accept-Language": lang})
        said[lang] = ok(r)["name"]
        assert r.headers["Content-Language"] == lang and "Accept-Language" in r.headers["Vary"]
    assert said == {"zh": "Cửa khẩu quốc tế Hữu Nghị (友谊关)", "en": "Hữu Nghị International Border Gate",
                    "vi": "Cửa khẩu quốc tế Hữu Nghị"}
    assert ok(client.get(f"/v1/gates/{GATE}/board"))["name"] == said["vi"]
    # a gate the directory gives no counterpart nor English name: its Vietnamese name, nothing made up
    assert ok(client.get("/v1/gates/tan-thanh/board", headers={"Accept-Language": "zh"}))["name"] == "Cửa khẩu Tân Thanh"

    did = new_id()
    created = ok(client.post("/v1/declarations", json=declaration(did, gate=GATE, plate="桂A·55501", trailer=None),
                             headers=tok("enterprise", sub=TAX)), 201)
    r = client.get("/v1/lookup", query_string={"code": created["code"], "plate": "桂A·55501"},
                   headers={"Accept-Language": "zh"})
    assert ok(r)["gate_name"] == said["zh"]


def test_allowed_actions_are_what_the_caller_may_do(client, tok):  # noqa: F811
    ent = tok("enterprise", sub=TAX)
    did = new_id()
    draft = ok(client.post("/v1/declarations", json=declaration(did, submit=False), headers=ent), 201)
    assert draft["allowed_actions"] == ["cancel", "submit"]   # never the platform's lapse
    ok(client.post(f"/v1/declarations/{did}/submit", headers=idem(ent)))
    queued = ok(client.post(f"/v1/declarations/{did}/booking", json={"mode": "living"}, headers=idem(ent)))

    def offered(headers):
        return ok(client.get(f"/v1/declarations/{did}", headers=headers))["allowed_actions"]

    assert queued["allowed_actions"] == offered(ent) == ["cancel"]
    assert offered(tok("operator")) == ["cancel"]
    assert offered(tok("yard-operator", unit=GATE)) == ["arrive"]
    assert offered(tok("gate-operator", unit=GATE)) == []
    assert offered(tok("officer", agency="customs")) == ["refuse"]

    ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(tok("yard-operator", unit=GATE))))
    gate = tok("gate-operator", unit=GATE)
    for _ in range(20):
        called = ok(client.post(f"/v1/gates/{GATE}/calls", json={"flow": "in", "count": 10}, headers=idem(gate)))
        if did in [c["declaration_id"] for c in called["called"]]:
            break
    assert offered(gate) == ["reach_gate"]   # the missed-call moves are the sweep's, once the deadline passed
    assert offered(ent) == []
    # what is offered is accepted
    assert ok(client.post(f"/v1/declarations/{did}/at-gate", headers=idem(gate)))["allowed_actions"] == []
