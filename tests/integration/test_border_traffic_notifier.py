"""The province's SMS/Zalo gateway (role ``notifier``) fetches a traffic order's drivers' phones when
it sends, on real weed mini + nats-server: read from the declarations at the call, so a phone
minimised since is null; the officer who issued the order, and everyone but the gateway and the
platform's operators, is refused; an order that is not there is a 404 problem. (The order's event
holds no phone and no plate: test_border_events_privacy.py.)"""

from __future__ import annotations

import uuid

import pytest

from border_support import TAX, declaration
from test_border_api import app, border, client, directory, fn, idem, new_id, ok, tok  # noqa: F401 - fixtures
from test_border_health_minimised import tick

pytestmark = pytest.mark.integration

GATE = "huu-nghi"
PROBLEM = "application/problem+json"
DOOR = "forbidden"


def crossing(http, ent, nationality: str) -> tuple[str, str, str]:
    """A declaration at the gate whose driver has a phone of their own: ``(id, code, phone)``."""
    did, phone = new_id(), "+849" + str(uuid.uuid4().int)[:8]   # as the declaration keeps it (no spaces)
    body = declaration(did, gate=GATE, trailer=None, plate="12C-" + str(uuid.uuid4().int)[:5])
    body["driver"] = {**body["driver"], "nationality": nationality, "phone": phone}
    return did, ok(http.post("/v1/declarations", json=body, headers=ent), 201)["code"], phone


def issue(http, token, ids: list[str], sub: str = "tp-1") -> str:
    order_id = "order-" + uuid.uuid4().hex[:8]
    ok(http.post("/v1/traffic-orders", json={
        "id": order_id, "gate": GATE, "flow": "in", "kind": "hold", "declaration_ids": ids,
        "message_vi": "Tạm dừng 30 phút", "message_zh": "暂停30分钟"},
        headers=token("officer", sub=sub, agency="traffic-police")), 201)
    return order_id


def recipients_path(order_id: str, gate: str = GATE) -> str:
    return f"/v1/traffic-orders/{gate}/{order_id}/recipients"


def test_the_notifier_gets_the_phones_read_from_the_declarations_now(client, tok):  # noqa: F811 - the imported fixtures
    ent = tok("enterprise", sub=TAX)
    cn, cn_code, cn_phone = crossing(client, ent, "CN")
    vn, vn_code, vn_phone = crossing(client, ent, "VN")
    order_id = issue(client, tok, [cn, vn])

    r = client.get(recipients_path(order_id), headers=tok("notifier", sub="sms-gateway"))
    body = ok(r)
    assert r.headers["Cache-Control"] == "no-store"
    assert body == {"id": order_id, "gate": GATE, "recipients": [
        {"declaration_id": cn, "code": cn_code, "language": "zh", "driver_phone": cn_phone},
        {"declaration_id": vn, "code": vn_code, "language": "vi", "driver_phone": vn_phone}]}
    assert ok(client.get(recipients_path(order_id), headers=tok("operator")))["recipients"] == body["recipients"]

    # a crossing that ended is minimised BORDER_HEALTH_KEEP_DAYS on: its phone is gone, the order says so
    ok(client.post(f"/v1/declarations/{cn}/cancel", json={}, headers=idem(ent)))
    tick(client, 31)
    later = ok(client.get(recipients_path(order_id), headers=tok("notifier", sub="sms-gateway")))["recipients"]
    assert [(x["declaration_id"], x["driver_phone"]) for x in later] == [(cn, None), (vn, vn_phone)]


def test_only_the_gateway_and_the_operators_may_read_the_phones(client, tok):  # noqa: F811 - the imported fixtures
    ent = tok("enterprise", sub=TAX)
    did, _, phone = crossing(client, ent, "CN")
    order_id = issue(client, tok, [did], sub="tp-issuer")
    refused = {"the officer who issued it": tok("officer", sub="tp-issuer", agency="traffic-police"),
               "a citizen": tok("citizen", sub="001099012345"), "the driver": tok("driver", sub="E12345678"),
               "the enterprise": ent, "the gate's staff": tok("gate-operator", unit=GATE)}
    for who, headers in refused.items():
        r = client.get(recipients_path(order_id), headers=headers)
        assert r.status_code == 403 and r.get_json()["type"].endswith(DOOR), who
        assert phone not in r.get_data(as_text=True), who
    assert client.get(recipients_path(order_id)).status_code == 401


def test_an_order_that_is_not_there_is_a_404_problem(client, tok):  # noqa: F811 - the imported fixtures
    ent = tok("enterprise", sub=TAX)
    did, _, _ = crossing(client, ent, "VN")
    order_id = issue(client, tok, [did])
    notifier = tok("notifier", sub="sms-gateway")
    for path in (recipients_path("order-nowhere-0"), recipients_path(order_id, gate="tan-thanh")):
        r = client.get(path, headers=notifier)
        assert r.status_code == 404 and r.content_type.startswith(PROBLEM), path
        problem = r.get_json()
        assert problem["type"].endswith("traffic-order-not-found") and problem["detail"] and problem["detail_vi"]
        assert problem["title_vi"] == "Không tìm thấy lệnh điều tiết"
