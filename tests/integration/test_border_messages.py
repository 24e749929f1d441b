"""What truck drivers and the enterprises booking for them read at the border, through the border
app against real weed mini + nats-server: traffic orders in every recipient's language and within
one SMS, times said with their zone, the lookup's refusals in the asker's language, a Vietnamese
text of its own for every booking refusal and every rule a request breaks."""

# ruff: noqa: F811 (pytest fixtures imported from border_support are named as parameters)
from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from lscloud.delivery import tail
from lscloud.store.errors import StoreUnavailable

from border_support import client, declaration, directory, DirectoryStub, fn, idem, in_yard, ok, TAX, tok  # noqa: F401
from functions.border.function import booking, i18n, models, queue

pytestmark = pytest.mark.integration

_n = itertools.count()
OLD_BOOKING_VI = "Không đặt được khung giờ này."
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


def new_id() -> str:
    return "d-" + uuid.uuid4().hex[:16]


# -- traffic orders -------------------------------------------------------------------------------------

def order(**fields) -> dict:
    return {"id": "order-" + uuid.uuid4().hex[:8], "gate": "huu-nghi", "flow": "in", "kind": "hold",
            "message_vi": "Tạm dừng vào cửa khẩu 30 phút", **fields}


def test_a_traffic_order_comes_in_every_language_its_drivers_read(client, tok, fn):
    cn, _ = in_yard(client, tok, nationality="CN", plate="桂A·11111")
    vn, _ = in_yard(client, tok, nationality="VN", plate="12C-111.11")
    th, _ = in_yard(client, tok, nationality="TH", plate="12C-222.22")
    police = tok("officer", agency="traffic-police")
    vi_only = order()
    r = client.post("/v1/traffic-orders", json=vi_only, headers=police)
    assert r.status_code == 422, r.get_data(as_text=True)
    body = r.get_json()
    assert [e["field"] for e in body["errors"]] == ["/message_en", "/message_zh"]
    assert "message_zh" in body["detail"] and "message_zh" in body["detail_vi"] and "tiếng Trung" in body["detail_vi"]
    assert "message_en" in body["detail"] and "tiếng Anh" in body["detail_vi"]
    # the refusal kept nothing: the same id, with the texts added, is issued
    full = {**vi_only, "message_zh": "口岸暂停入境30分钟，请原地等候", "message_en": "Entry to the gate paused for 30 minutes"}
    issued = ok(client.post("/v1/traffic-orders", json=full, headers=police), 201)
    assert {r["declaration_id"]: r["language"] for r in issued["recipients"]} == {cn: "zh", vn: "vi", th: "en"}
    event = [m["event"] for m in tail(fn.settings, 200) if m["event"]["type"].endswith("traffic-order.issued.v2")][-1]
    assert event["data"]["message_zh"] == full["message_zh"] and event["data"]["message_en"] == full["message_en"]
    assert {r["language"] for r in event["data"]["recipients"]} == {"vi", "zh", "en"}
    # an order for the Vietnamese driver alone needs only Vietnamese
    ok(client.post("/v1/traffic-orders", json=order(declaration_ids=[vn]), headers=police), 201)
    # an order for the Thai driver alone needs English, not Chinese
    r = client.post("/v1/traffic-orders", json=order(declaration_ids=[th]), headers=police)
    assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == ["/message_en"]


def test_a_traffic_order_fits_one_sms_of_four_parts_per_language(client, tok):
    vn, _ = in_yard(client, tok, nationality="VN", plate="12C-333.33")
    police = tok("officer", agency="traffic-police")
    longest = "Ừ" * 268   # 4 UCS-2 parts of 67
    ok(client.post("/v1/traffic-orders", json=order(declaration_ids=[vn], message_vi=longest), headers=police), 201)
    r = client.post("/v1/traffic-orders", json=order(declaration_ids=[vn], message_vi=longest + "ừ"), headers=police)
    assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == ["/message_vi"]
    # a character outside the BMP takes two UCS-2 units: 268 characters, 269 units, five parts
    r = client.post("/v1/traffic-orders", json=order(declaration_ids=[vn], message_vi="Ừ" * 267 + "🚚",
                                                     message_en="Hold for 30 minutes"), headers=police)
    assert r.status_code == 422, r.get_data(as_text=True)
    body = r.get_json()
    assert [e["field"] for e in body["errors"]] == ["/message_vi"]
    assert "268" in body["detail"] and "268" in body["detail_vi"] and body["detail_vi"] != body["detail"]


# -- the driver's lookup ------------------------------------------------------------------------------

def test_the_lookup_says_which_clock_its_times_are_on(client, tok):
    _, code = in_yard(client, tok)
    query = {"code": code, "plate": "桂A12345"}
    zh = ok(client.get("/v1/lookup", query_string=query, headers=ZH))
    slot = next(m for m in zh["messages"] if m.startswith("预约时段"))
    assert "越南时间" in slot and "UTC+7" in slot
    assert zh["queue"]["rules"] == i18n.rules("zh") and all("优先" in r for r in zh["queue"]["rules"])
    vi = ok(client.get("/v1/lookup", query_string=query, headers={"Accept-Language": "vi"}))
    assert vi["queue"]["rules"][0] == "Làn ưu tiên đi trước làn thường"
    ok(client.post("/v1/gates/huu-nghi/calls", json={"flow": "in", "count": 1},
                   headers=idem(tok("gate-operator", unit="huu-nghi"))))
    called = {lang: ok(client.get("/v1/lookup", query_string=query, headers={"Accept-Language": lang}))["messages"]
              for lang in ("zh", "vi", "en")}
    assert "越南时间" in called["zh"][-1] and "UTC+7" in called["zh"][-1] and called["zh"][-1].startswith("请于")
    assert "giờ Việt Nam" in called["vi"][-1] and called["vi"][-1].startswith("Hãy có mặt")
    assert called["en"][-1].endswith("Vietnam time (UTC+7)") and called["en"][1].endswith("Vietnam time (UTC+7)")


def test_the_lookup_refuses_in_the_asker_s_language(client, tok, monkeypatch):
    _, code = in_yard(client, tok)
    r = client.get("/v1/lookup", query_string={"code": code}, headers=ZH)
    assert r.status_code == 400 and r.headers["Content-Language"] == "zh"
    assert "Accept-Language" in r.headers.get("Vary", "")
    body = r.get_json()
    assert body["detail"] == "请输入牵引车或挂车的车牌号（最多20个字符）"
    assert body["detail_vi"].startswith("Hãy nhập biển số") and body["type"].endswith("invalid-parameter")
    assert [e["field"] for e in body["errors"]] == ["plate"]
    r = client.get("/v1/lookup", query_string={"plate": "x" * 21}, headers={"Accept-Language": "en"})
    assert r.status_code == 400 and r.headers["Content-Language"] == "en"
    assert [e["field"] for e in r.get_json()["errors"]] == ["code", "plate"]
    assert r.get_json()["errors"][0]["message"] == "Enter the declaration code (at most 20 characters)"
    # the store does not answer: a 503 the Chinese driver can read, the retry still advised
    def store_away(*args, **kwargs):
        raise StoreUnavailable("the store did not answer")

    monkeypatch.setattr(models.DeclarationCode, "get", store_away)
    r = client.get("/v1/lookup", query_string={"code": code, "plate": "桂A12345"}, headers=ZH)
    assert r.status_code == 503 and r.headers["Content-Language"] == "zh" and r.headers["Retry-After"]
    assert r.get_json()["detail"] == "查询系统暂时无法使用，请稍后再试"


# -- what the enterprise reads ------------------------------------------------------------------------

def test_every_booking_refusal_has_its_own_vietnamese(fn):
    now = datetime.now(timezone.utc)
    gate = {"code": "huu-nghi", "hours": {"open": "08:00", "close": "17:00"},
            "capacity": {"import_per_hour": 0, "export_per_hour": 0}}
    closed_slot = (now.astimezone(queue.TZ) + timedelta(days=1)).strftime("%Y%m%d") + "03"   # before 08:00
    never_open = {**gate, "hours": {"open": "00:00", "close": "00:00"}}
    past = queue.slot_of(now - timedelta(hours=3))
    cases = {
        "bad-slot": lambda: queue.slot_start("2026133112"),
        "slot-required": lambda: booking.take_seat(gate, "in", "d-x", "reservation", None, now),
        "slot-past": lambda: booking.take_seat(gate, "in", "d-x", "reservation", past, now),
        "gate-closed": lambda: booking.take_seat(gate, "in", "d-x", "reservation", closed_slot, now),
        "slot-full": lambda: booking.take_seat({**gate, "hours": {}}, "in", "d-x", "reservation",
                                               queue.slot_of(now + timedelta(hours=2)), now),
        "no-slot": lambda: booking.take_seat(never_open, "in", "d-x", "living", None, now),
    }
    said = {}
    for code, run in cases.items():
        with pytest.raises(queue.QueueError) as exc:
            run()
        assert exc.value.code == code
        said[code] = exc.value.detail_vi
    assert OLD_BOOKING_VI not in said.values() and len(set(said.values())) == len(said), said
    assert past in said["slot-past"] and closed_slot in said["gate-closed"] and "2026133112" in said["bad-slot"]


def test_refusals_of_a_booking_and_of_a_rule_are_said_in_vietnamese(client, tok):
    ent = tok("enterprise", sub=TAX)
    past = queue.slot_of(datetime.now(timezone.utc) - timedelta(hours=3))
    r = client.post("/v1/declarations", json=declaration(new_id(), booking={"mode": "reservation", "slot": past}),
                    headers=ent)
    assert r.status_code == 422 and r.get_json()["detail_vi"] == f"Khung giờ {past} đã qua"
    r = client.post("/v1/declarations", json=declaration(new_id(), submit=False, booking={"mode": "living"}),
                    headers=ent)
    assert r.status_code == 422 and r.get_json()["detail_vi"] == "Chỉ đặt được lượt khi nộp tờ khai (submit: true)"
    r = client.put("/v1/gates/huu-nghi/capacity/sideways", json={"per_hour": 3, "reason": "road works"},
                   headers=tok("operator"))
    assert r.status_code == 422 and r.get_json()["detail_vi"].startswith("Chiều qua cửa khẩu là 'in' (Trung Quốc")
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did), headers=ent), 201)
    r = client.post(f"/v1/declarations/{did}/attachments", data=b"not a pdf",
                    headers={**idem(ent), "Content-Type": "application/pdf"})
    assert r.status_code == 422 and r.get_json()["detail_vi"].startswith("Tệp đính kèm bị từ chối: ")
    customs = tok("officer", agency="customs")
    current = ok(client.get(f"/v1/declarations/{did}", headers=customs))["risk_lane"]
    other = "red" if current != "red" else "green"
    r = client.post(f"/v1/declarations/{did}/risk-lane", json={"lane": other}, headers=idem(customs))
    assert r.status_code == 422 and r.get_json()["detail_vi"] == "Chuyển luồng phải ghi rõ lý do"
