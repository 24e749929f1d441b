"""Border writes sent again, against real weed mini + nats-server: a traffic order's resend after a
cut run is announced, its id reused is a 409 naming the fields; a device's reading id reused with
other data is a 409, not a 202 dropped downstream; an attachment sent again audits nothing; two
operators' capacity overrides meet If-Match, not each other; the driver's lookup tells the traffic
police's hold instead of "go to the gate now"."""

# ruff: noqa: F811 (pytest fixtures imported from border_support are named as parameters)
from __future__ import annotations

import itertools
import uuid

import pytest

from lscloud import events
from lscloud.delivery import tail
from lscloud.store.errors import StoreUnavailable

from border_support import client, declaration, directory, DirectoryStub, fn, idem, in_yard, ok, TAX, tok  # noqa: F401

pytestmark = pytest.mark.integration

_n = itertools.count()
REUSED = "idempotency-key-reused"


def order(**fields) -> dict:
    return {"id": "order-" + uuid.uuid4().hex[:8], "gate": "tan-thanh", "flow": "in", "kind": "hold",
            "message_vi": "Tạm dừng 30 phút", "message_zh": "暂停30分钟", **fields}


def on_stream(fn, kind: str, subject: str) -> list[dict]:
    return [m["event"] for m in tail(fn.settings, 500)
            if m["event"].get("subject") == subject and f".{kind}." in m["event"]["type"]]


# -- traffic orders -----------------------------------------------------------------------------------

def test_a_traffic_order_cut_after_its_write_is_announced_by_its_resend(client, fn, tok, monkeypatch):
    from functions.border.function import traffic

    police = tok("officer", agency="traffic-police")
    o = order()

    def dies(_events):   # the store did not answer once the order was written: the event is not kept
        raise StoreUnavailable("the store did not answer")

    monkeypatch.setattr(traffic.outbox, "publish", dies)
    assert client.post("/v1/traffic-orders", json=o, headers=police).status_code == 503
    monkeypatch.undo()
    assert on_stream(fn, "traffic-order.issued", o["id"]) == []

    again = client.post("/v1/traffic-orders", json=o, headers=police)
    assert again.status_code == 201, again.get_data(as_text=True)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [e["id"] for e in on_stream(fn, "traffic-order.issued", o["id"])] == [f"traffic-order.{o['gate']}.{o['id']}"]
    # and again: the first answer, the same single event
    third = ok(client.post("/v1/traffic-orders", json=o, headers=police), 201)
    assert third == again.get_json()
    assert len(on_stream(fn, "traffic-order.issued", o["id"])) == 1


def test_a_traffic_order_id_reused_is_a_409_naming_the_fields(client, tok):
    police, other = tok("officer", agency="traffic-police"), tok("officer", agency="traffic-police")
    o = order()
    first = ok(client.post("/v1/traffic-orders", json=o, headers=police), 201)

    mine = client.post("/v1/traffic-orders", json={**o, "kind": "proceed", "message_vi": "Tiếp tục"}, headers=police)
    assert mine.status_code == 409 and mine.get_json()["type"].endswith(REUSED), mine.get_json()
    assert [e["field"] for e in mine.get_json()["errors"]] == ["/kind", "/message_vi"]
    assert "Tiếp tục" not in mine.get_data(as_text=True) and "Tạm dừng" not in mine.get_data(as_text=True)

    theirs = client.post("/v1/traffic-orders", json={**o, "message_zh": "继续"}, headers=other)
    assert theirs.status_code == 409 and theirs.get_json()["type"].endswith(REUSED), theirs.get_json()
    assert [e["field"] for e in theirs.get_json()["errors"]] == ["/message_zh"]
    # another officer's very same body: still not his order to be answered with
    same = client.post("/v1/traffic-orders", json=o, headers=other)
    assert same.status_code == 409 and same.get_json()["errors"], same.get_json()
    # the order stands as the first officer issued it
    assert ok(client.post("/v1/traffic-orders", json=o, headers=police), 201) == first


# -- device readings ----------------------------------------------------------------------------------

def test_a_reading_id_reused_with_other_data_is_a_409_naming_the_fields(client, fn, tok):
    dev = tok("device", sub="wb-hn-1", unit="huu-nghi")
    rid = "wb-" + uuid.uuid4().hex[:6]

    def send(kg: int):
        ev = events.new_event("vn.langson.border.weight.measured.v1", "/devices/wb-hn-1",
                              {"reading_id": rid, "gate": "huu-nghi", "plate": "桂C·24680", "gross_kg": kg,
                               "measured_at": "2025-09-01T08:00:00Z"})
        headers, body = events.to_binary_http(ev)   # each sending its own envelope id
        return client.post("/v1/device-events", data=body, headers={**headers, **dev})

    assert ok(send(45000), 202)["id"] == f"wb-hn-1.{rid}"
    assert ok(send(45000), 202)["id"] == f"wb-hn-1.{rid}"   # the same reading again: accepted again
    reused = send(31000)
    assert reused.status_code == 409, reused.get_data(as_text=True)
    assert reused.get_json()["type"].endswith(REUSED)
    assert [e["field"] for e in reused.get_json()["errors"]] == ["/data/gross_kg"]
    assert "45000" not in reused.get_data(as_text=True)
    kept = [m["event"]["data"]["gross_kg"] for m in tail(fn.settings, 500) if m["event"]["id"] == f"wb-hn-1.{rid}"]
    assert kept and set(kept) == {45000}


# -- attachments --------------------------------------------------------------------------------------

def test_an_attachment_sent_again_without_a_key_is_audited_once(client, tok):
    ent = tok("enterprise", sub=TAX)
    did = "d-" + uuid.uuid4().hex[:16]
    ok(client.post("/v1/declarations", json=declaration(did), headers=ent), 201)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    for _ in range(2):
        listed = ok(client.post(f"/v1/declarations/{did}/attachments?kind=other&filename=a.pdf", data=pdf,
                                content_type="application/pdf", headers=ent), 201)
        assert len(listed["attachments"]) == 1
    trail = ok(client.get(f"/v1/declarations/{did}/audit", headers=ent))["items"]
    assert [e["action"] for e in trail].count("attach") == 1


# -- capacity overrides -------------------------------------------------------------------------------

def test_capacity_overrides_change_only_the_version_read(client, fn, tok):
    a, b = tok("operator"), tok("operator")
    path = "/v1/gates/tan-thanh/capacity/in"
    first = client.put(path, json={"per_hour": 40, "reason": "lane closed"}, headers=a)
    assert first.status_code == 200, first.get_data(as_text=True)
    # the other operator, blind: told to read first, not allowed to replace it
    blind = client.put(path, json={"per_hour": 90, "reason": "extra lane"}, headers=b)
    assert blind.status_code == 428, blind.get_data(as_text=True)
    assert first.headers["ETag"] == '"1"'
    stale = client.put(path, json={"per_hour": 90, "reason": "extra lane"}, headers={**b, "If-Match": '"0"'})
    assert stale.status_code == 412, stale.get_data(as_text=True)
    read = client.get(path, headers=b)
    assert read.status_code == 200, read.get_data(as_text=True)
    assert read.headers["ETag"] == '"1"' and read.get_json()["per_hour"] == 40
    second = client.put(path, json={"per_hour": 90, "reason": "extra lane"}, headers={**b, "If-Match": read.headers["ETag"]})
    assert second.status_code == 200 and second.headers["ETag"] == '"2"'

    # b's retry (its answer lost): the override stands as asked, nothing written again
    retry = client.put(path, json={"per_hour": 90, "reason": "extra lane"}, headers={**b, "If-Match": '"1"'})
    assert retry.status_code == 200 and retry.headers["ETag"] == '"2"'
    assert retry.get_json()["updated_at"] == second.get_json()["updated_at"]
    # a's retry of its first, now stale: refused, b's override kept
    assert client.put(path, json={"per_hour": 40, "reason": "lane closed"},
                      headers={**a, "If-Match": '"1"'}).status_code == 412
    assert ok(client.get(path, headers=a))["per_hour"] == 90
    none = client.get("/v1/gates/tan-thanh/capacity/out", headers=a)   # never overridden: version 0
    assert none.headers["ETag"] == '"0"' and none.get_json()["overridden"] is False
    assert none.get_json()["per_hour"] == none.get_json()["directory_per_hour"] == 40
    assert len([m for m in tail(fn.settings, 500) if ".capacity.overridden." in m["event"]["type"]]) == 2


# -- the driver's lookup ------------------------------------------------------------------------------

def test_the_lookup_tells_a_traffic_police_hold_instead_of_go_now(client, tok):
    did, code = in_yard(client, tok, plate="桂A·11111")
    other, other_code = in_yard(client, tok, plate="桂A·22222")
    ok(client.post("/v1/gates/huu-nghi/calls", json={"flow": "in", "count": 2},
                   headers=idem(tok("gate-operator", unit="huu-nghi"))))
    query = {"code": code, "plate": "桂A11111"}
    before = ok(client.get("/v1/lookup", query_string=query, headers={"Accept-Language": "zh"}))
    assert before["declaration"]["status"] == "called" and before["status_text"].startswith("已叫号")

    police = tok("officer", agency="traffic-police", unit="huu-nghi")
    hold = {"id": "to-" + uuid.uuid4().hex[:10], "gate": "huu-nghi", "kind": "hold", "message_vi": "Dừng chờ tại bãi",
            "message_zh": "请在停车场等候", "declaration_ids": [did]}
    ok(client.post("/v1/traffic-orders", json=hold, headers=police), 201)

    told = {lang: ok(client.get("/v1/lookup", query_string=query, headers={"Accept-Language": lang}))
            for lang in ("zh", "vi", "en")}
    assert "请在停车场等候" in told["zh"]["status_text"] and "交警" in told["zh"]["status_text"], told["zh"]
    assert "Dừng chờ tại bãi" in told["vi"]["status_text"]
    # no English text was written: the driver's own (Chinese) one, said to be so
    assert told["en"]["traffic_orders"][0]["language"] == "zh" and "Traffic police" in told["en"]["status_text"]
    for lang, said in told.items():
        assert said["declaration"]["status"] == "called"
        assert not any(m.startswith(("已叫号", "Được gọi", "Called to the gate")) for m in said["messages"]), said
        assert [(o["id"], o["kind"]) for o in said["traffic_orders"]] == [(hold["id"], "hold")]
    # nothing of the order's other recipients or of the officer
    text = str(told["zh"]["traffic_orders"])
    assert "recipients" not in text and "桂A·" not in text and "by" not in told["zh"]["traffic_orders"][0]

    # another driver at the gate, not named by the order: told nothing of it
    theirs = ok(client.get("/v1/lookup", query_string={"code": other_code, "plate": "桂A22222"},
                           headers={"Accept-Language": "zh"}))
    assert theirs["traffic_orders"] == [] and theirs["status_text"].startswith("已叫号")

    # the police let it go on: the hold no longer holds
    ok(client.post("/v1/traffic-orders", json={**hold, "id": "to-" + uuid.uuid4().hex[:10], "kind": "proceed",
                                               "message_vi": "Đi tiếp", "message_zh": "继续前进"}, headers=police), 201)
    after = ok(client.get("/v1/lookup", query_string=query, headers={"Accept-Language": "zh"}))
    assert after["status_text"].startswith("已叫号") and "继续前进" in after["messages"][1]
