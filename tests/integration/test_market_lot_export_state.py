"""A lot linked to a border declaration says where it is: ``export_pending`` ("đang chờ xuất khẩu")
until border's ``truck.exited``, ``exported`` only then, and back to ``registered`` (its link kept
in ``export_history``) when the declaration is cancelled, refused or expires — each border event
applied once, and one for a lot no longer linked to that declaration changing nothing. On real
weed mini + nats-server, border's events delivered to ``/events`` as the platform delivers them."""

# ruff: noqa: F811 (pytest fixtures imported from market_support are named as parameters)
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from digital_support import ok
from market_support import CHI_LANG, client, idem, market, OTHER_FIRM, PRODUCER  # noqa: F401

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENDED = {"cancelled": "vn.langson.border.declaration.cancelled.v1",
         "refused": "vn.langson.border.declaration.refused.v1",
         "expired": "vn.langson.border.declaration.expired.v1"}
EXITED = "vn.langson.border.truck.exited.v1"


def new_lot(client, tokens, stamps=0):
    prod = tokens("producer", PRODUCER)
    lot = ok(client.post("/v1/lots", json={
        "product": "Na Chi Lăng loại 1", "unit": "thùng 10 kg", "quantity": 120, "harvested_on": "2025-08-20",
        "producer_name": "HTX Na Chi Lăng", "origin": {"commune": CHI_LANG, "plot": "CL-07"}}, headers=idem(prod)), 201)
    batch = ok(client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": stamps}, headers=idem(prod)), 201) \
        if stamps else None
    return lot, batch


def declare(peers, status="queued", **changes):
    did = "decl-" + uuid.uuid4().hex[:10]
    stamps = {"submitted": "2025-09-01T02:00:00Z", **({"exited": "2025-09-02T03:15:00Z"} if status == "exited" else {})}
    peers.declarations[did] = {"id": did, "owner": PRODUCER, "direction": "export", "gate": "huu-nghi",
                               "status": status, "timestamps": stamps, **changes}
    return did


def deliver(market, client, event_type, declaration, *, tax_code=PRODUCER, event_id=None, status=None,
            at="2025-09-02T03:15:00.000Z"):
    """One of border's transition events (schemas/events/border/transition.json), as the platform
    delivers it; the answer's JSON (``status``: done or duplicate)."""
    from lscloud import events
    from lscloud.auth import delivery_headers

    to = status or event_type.split(".")[-2]
    ev = events.new_event(event_type, "/border", {
        "declaration_id": declaration, "code": "TK-1", "direction": "export", "gate": "huu-nghi", "status": to,
        "flow": "out", "enterprise_tax_code": tax_code, "from": "queued", "to": to, "action": "x", "at": at,
        "actor": {"kind": "system"}, "reason": "hàng hỏng", "details": {}}, id=event_id or uuid.uuid4().hex)
    headers, body = events.to_binary_http(ev)
    r = client.post("/events", data=body, headers={**headers, **delivery_headers(market.app.extensions["lscloud"].settings)})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def lot_now(client, tokens, lot_id):
    return ok(client.get(f"/v1/lots/{lot_id}", headers=tokens("enterprise", PRODUCER)))


def link(client, tokens, lot_id, did):
    return client.post(f"/v1/lots/{lot_id}/export", json={"declaration": did}, headers=tokens("enterprise", PRODUCER))


def test_a_lot_linked_before_the_truck_left_is_pending_and_exported_only_when_it_exits(market, client, tokens, peers):
    lot, batch = new_lot(client, tokens, stamps=1)
    did = declare(peers)
    linked = ok(link(client, tokens, lot["id"], did))
    assert (linked["status"], linked["export"]["status"], linked["export"]["crossed_on"]) == \
        ("export_pending", "queued", None)
    assert lot_now(client, tokens, lot["id"])["status"] == "export_pending"

    # (a scan may show a lot up to 15 s late, stamps._LOT_TTL_S: each lot here is scanned once)
    assert deliver(market, client, EXITED, did, event_id="exit-1")["status"] == "done"
    crossed = lot_now(client, tokens, lot["id"])
    assert (crossed["status"], crossed["export"]["status"], crossed["export"]["crossed_on"]) == \
        ("exported", "exited", "2025-09-02")
    step = ok(client.get(f"/v1/stamps/{batch['codes'][0]}"))["journey"][-1]
    assert step == {"step": "crossed-border", "on": "2025-09-02", "where": "Cửa khẩu quốc tế Hữu Nghị",
                    "gate": "huu-nghi"}
    # a cancellation border could not send after an exit (or one out of order) leaves the crossing
    assert deliver(market, client, ENDED["cancelled"], did)["status"] == "done"
    assert lot_now(client, tokens, lot["id"])["status"] == "exported"
    # a lot that crossed is not declared again for a crossing still to come
    again = link(client, tokens, lot["id"], declare(peers))
    assert again.status_code == 409 and again.get_json()["current_state"] == "exported"


def test_a_link_to_a_declaration_that_already_exited_is_exported_at_once(client, tokens, peers):
    lot, _ = new_lot(client, tokens)
    linked = ok(link(client, tokens, lot["id"], declare(peers, status="exited")))
    assert (linked["status"], linked["export"]["crossed_on"]) == ("exported", "2025-09-02")


def test_a_shopper_scanning_a_pending_lot_reads_it_declared_not_crossed(client, tokens, peers):
    lot, batch = new_lot(client, tokens, stamps=1)
    ok(link(client, tokens, lot["id"], declare(peers, status="cleared")))
    assert lot_now(client, tokens, lot["id"])["status"] == "export_pending"
    step = ok(client.get(f"/v1/stamps/{batch['codes'][0]}"))["journey"][-1]
    assert (step["step"], step["border_status"]) == ("declared-for-export", "cleared")


@pytest.mark.parametrize("ended", sorted(ENDED))
def test_a_declaration_that_ends_without_crossing_takes_its_lots_back(market, client, tokens, peers, ended):
    lot, batch = new_lot(client, tokens, stamps=1)
    did = declare(peers)
    ok(link(client, tokens, lot["id"], did))
    # another firm's event of the same id, or an import's, unlinks nothing
    assert deliver(market, client, ENDED[ended], did, tax_code=OTHER_FIRM)["status"] == "done"
    assert lot_now(client, tokens, lot["id"])["status"] == "export_pending"

    assert deliver(market, client, ENDED[ended], did, event_id=f"end-{ended}")["status"] == "done"
    back = lot_now(client, tokens, lot["id"])
    assert (back["status"], back["export"]) == ("registered", None)
    assert [(h["declaration"], h["status"], h["ended"]) for h in back["export_history"]] == [(did, ended, ended)]
    assert "hàng hỏng" not in str(back)     # border's free text is the exporter's word to border
    assert ok(client.get(f"/v1/stamps/{batch['codes'][0]}"))["journey"][-1]["step"] == "stamped"

    # the same event again is run once; another delivery of that end, or a late exit, finds no link
    assert deliver(market, client, ENDED[ended], did, event_id=f"end-{ended}")["status"] == "duplicate"
    assert deliver(market, client, ENDED[ended], did)["status"] == "done"
    assert deliver(market, client, EXITED, did)["status"] == "done"
    assert lot_now(client, tokens, lot["id"]) == back
    trail = [(e["action"], e["from"], e["to"]) for e in _trail(lot["id"]) if e["action"] != "issue_stamps"]
    assert trail == [("register", "new", "registered"), ("declare_export", "registered", "export_pending"),
                     ("withdraw_export", "export_pending", "registered")]

    # the lot can be declared again, on another declaration, and exported by that one's exit
    other = declare(peers)
    assert ok(link(client, tokens, lot["id"], other))["status"] == "export_pending"
    deliver(market, client, EXITED, other)
    assert lot_now(client, tokens, lot["id"])["status"] == "exported"


def test_an_event_for_a_declaration_the_lot_left_changes_nothing(market, client, tokens, peers):
    lot, _ = new_lot(client, tokens)
    first, second = declare(peers), declare(peers)
    ok(link(client, tokens, lot["id"], first))
    relinked = ok(link(client, tokens, lot["id"], second))
    assert [h["declaration"] for h in relinked["export_history"]] == [first]
    deliver(market, client, ENDED["cancelled"], first)
    deliver(market, client, EXITED, first)
    now = lot_now(client, tokens, lot["id"])
    assert (now["status"], now["export"]["declaration"]) == ("export_pending", second)


def test_a_lot_stored_exported_before_its_truck_left_reads_pending_and_goes_back_on_cancel(
        market, client, tokens, peers):
    from functions.market.function.models import Lot

    lot, _ = new_lot(client, tokens)
    did = declare(peers)
    # as the older version stored a link to a queued declaration
    stored = Lot.get(lot["id"])
    stored.data = {**stored.data, "status": "exported", "timestamps": {**stored.data["timestamps"],
                                                                       "exported": "2025-09-01T02:05:00Z"},
                   "export": {"declaration": did, "gate": "huu-nghi", "gate_name": "Cửa khẩu quốc tế Hữu Nghị",
                              "status": "queued", "declared_on": "2025-09-01", "crossed_on": None,
                              "checked_at": "2025-09-01T02:05:00Z"}}
    stored.status = "exported"
    stored.save()
    from functions.market.function.models import ExportLink
    ExportLink(did, lot["id"]).save()

    read = lot_now(client, tokens, lot["id"])
    assert read["status"] == "export_pending" and "exported" not in read["timestamps"]
    listed = ok(client.get("/v1/lots", headers=tokens("producer", PRODUCER)))["items"]
    assert [i["status"] for i in listed if i["id"] == lot["id"]] == ["export_pending"]
    deliver(market, client, ENDED["cancelled"], did)
    assert lot_now(client, tokens, lot["id"])["status"] == "registered"


def test_the_market_subscribes_to_every_border_event_it_handles():
    from functions.market.function import exports

    manifest = yaml.safe_load((ROOT / "functions" / "market" / "func.yaml").read_text(encoding="utf-8"))
    subscribed = {s["filters"]["type"] for s in manifest["deploy"]["subscriptions"]}
    assert {EXITED, *ENDED.values()} <= subscribed
    assert set(exports.ENDED) == set(ENDED.values())


def _trail(lot_id):
    from functions.market.function import lots

    return lots.records().trail(lot_id)
