"""The driver's lookup with the traffic police's orders, from the domain alone: a hold that holds
takes the status's place in every language, a later ``proceed`` lifts it, an expired order is not
told, an order the declaration is not among the recipients of is not told, and nothing of the
order's other recipients reaches the driver. The orders are the gate's, as the lookup holds them
(:func:`.traffic.as_shown`): the declaration keeps none."""

from __future__ import annotations

import re

from functions.border.function import lookup, traffic

CJK = re.compile(r"[\u4e00-\u9fff]")
WHERE = {"slot": None, "queue": None}


def called(*orders: dict) -> dict:
    """A called declaration, with the gate's ``orders`` the lookup would hold for it (``_orders``)."""
    return {"id": "d-0001", "code": "LSABC1234", "status": "called", "gate": "huu-nghi", "direction": "import",
            "flow": "in", "vehicle": {"tractor_plate": "桂A·12345"}, "driver": {"nationality": "CN"},
            "call": {"deadline": "2030-01-01T03:00:00Z"}, "_orders": [traffic.as_shown(o) for o in orders]}


def kept(kind: str, at: str, to=("d-0001", "d-other"), **fields) -> dict:
    """An order as stored: issued at ``at`` to the declarations ``to``."""
    return {"id": f"to-{kind}-{at[-7:-5]}", "gate": "huu-nghi", "kind": kind, "message_vi": f"{kind} vi",
            "message_zh": f"{kind} 中文", "issued_at": at, "by": "officer-1",
            "recipients": [{"declaration_id": d, "code": "LSX", "plate": "桂A·99999", "language": "zh"} for d in to],
            **fields}


def told(doc: dict, lang: str) -> dict:
    return lookup.answer(doc, WHERE, lang, traffic.open_for(doc, lang, doc["_orders"]))


def test_a_hold_takes_the_place_of_go_now_in_every_language():
    doc = called(kept("hold", "2030-01-01T01:00:00.000Z"))
    zh, vi, en = told(doc, "zh"), told(doc, "vi"), told(doc, "en")
    assert zh["status_text"].startswith("交警") and "hold 中文" in zh["status_text"]
    assert vi["status_text"].startswith("Cảnh sát giao thông") and "hold vi" in vi["status_text"]
    # no English text: the driver's own language's (Chinese: his nationality), named as such
    assert en["status_text"].startswith("Traffic police") and en["traffic_orders"][0]["language"] == "zh"
    for said in (zh, vi, en):
        assert not any(m.startswith(("已叫号", "Được gọi", "Called to the gate")) for m in said["messages"])
        assert set(said["traffic_orders"][0]) == {"id", "kind", "language", "message", "issued_at", "valid_until"}


def test_a_later_proceed_lifts_the_hold_and_an_expired_order_is_not_told():
    hold, go = kept("hold", "2030-01-01T01:00:00.000Z"), kept("proceed", "2030-01-01T02:00:00.000Z")
    lifted = told(called(hold, go), "zh")
    assert lifted["status_text"].startswith("已叫号") and lifted["messages"][1].startswith("交警")
    assert [o["kind"] for o in lifted["traffic_orders"]] == ["proceed", "hold"]
    gone = told(called(kept("hold", "2020-01-01T01:00:00.000Z", valid_until="2020-01-01T02:00:00Z")), "zh")
    assert gone["traffic_orders"] == [] and gone["status_text"].startswith("已叫号")
    # no end named: it holds a day from its issue
    assert told(called(kept("hold", "2020-01-01T01:00:00.000Z")), "zh")["traffic_orders"] == []


def test_an_order_to_other_declarations_is_not_told():
    theirs = told(called(kept("hold", "2030-01-01T01:00:00.000Z", to=("d-other",))), "zh")
    assert theirs["traffic_orders"] == [] and theirs["status_text"].startswith("已叫号")
    mine = told(called(kept("hold", "2030-01-01T01:00:00.000Z")), "zh")["traffic_orders"]
    assert "d-other" not in str(mine) and "桂A" not in str(mine) and "officer-1" not in str(mine)


def test_a_finished_declaration_tells_no_order():
    doc = {**called(kept("hold", "2030-01-01T01:00:00.000Z")), "status": "exited"}
    assert traffic.open_for(doc, "vi", doc["_orders"]) == []
    assert traffic.told_to(doc, "vi", 3600) == []   # nor are its gate's orders read for it


def test_every_kind_of_order_reads_in_the_three_languages():
    for kind in ("hold", "proceed", "reroute", "slow-down"):
        doc = called(kept(kind, "2030-01-01T01:00:00.000Z"))
        lines = {lang: told(doc, lang)["messages"] for lang in ("vi", "zh", "en")}
        assert any(CJK.search(m) and m.startswith("交警") for m in lines["zh"]), kind
        assert any(m.startswith("Traffic police") for m in lines["en"]), kind
        assert any(m.startswith("Cảnh sát giao thông") for m in lines["vi"]), kind
