"""Closing a digital shop, on real weed mini + nats-server: its owner or the market's operators (with a
reason) close it; it leaves the listings, its payment code is withdrawn (410) and its page shows no
account, it takes no products, its lots and stamps stay; closing it again is the state machine's 409.
Then an erasure request takes the payment data out of the person's closed shops (once, audited
without the values) and tells them an open shop can be closed to have its own erased."""

# ruff: noqa: F811 (pytest fixtures imported from market_support are named as parameters)
from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from cuts import cut_once
from digital_support import ok
from market_support import CHI_LANG, client, HOUSEHOLD, idem, market, PRODUCER  # noqa: F401
from lscloud import erasure, runtime
from lscloud.delivery import tail

from functions.market.function import erase as market_erase, models, shops

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NEIGHBOUR = "020095009999"
ACCOUNT, PAYEE = "113366668888", "HOANG THI HOA"


def shop_body(**changes) -> dict:
    return {"id": "shop-" + uuid.uuid4().hex[:12], "name": "Na Chi Lăng nhà bà Hoa", "kind": "household",
            "commune": CHI_LANG, "payment": {"bank_bin": "970415", "account_number": ACCOUNT, "account_name": PAYEE},
            **changes}


def product(pid: str = "na-loai-1") -> dict:
    return {"id": pid, "name": "Na Chi Lăng loại 1", "category": "thuc-pham", "price_vnd": 60000, "unit": "kg"}


def listed(client, **query) -> list[str]:
    return [s["id"] for s in ok(client.get("/v1/shops", query_string=query))["items"]]


def shop_events(market, shop_id: str) -> list[dict]:
    return [m["event"] for m in tail(market.settings, 200) if m["event"].get("subject") == shop_id]


def bilingual(r) -> dict:
    body = r.get_json()
    assert r.mimetype == "application/problem+json" and body["detail"] and body["detail_vi"], body
    return body


def test_an_owner_closes_their_shop_and_buyers_can_no_longer_pay_into_it(client, market, tokens):
    owner = tokens("citizen", HOUSEHOLD)
    shop = ok(client.post("/v1/shops", json=shop_body(), headers=owner), 201)
    other = ok(client.post("/v1/shops", json=shop_body(), headers=owner), 201)
    ok(client.post(f"/v1/shops/{shop['id']}/products", json=product(), headers=owner), 201)
    assert sorted(listed(client, commune=CHI_LANG)) == sorted(listed(client)) == sorted([shop["id"], other["id"]])

    # not theirs: the same 404 as no shop, for a neighbour and for a firm
    for stranger in (tokens("citizen", NEIGHBOUR), tokens("enterprise", PRODUCER)):
        assert client.post(f"/v1/shops/{shop['id']}/close", headers=idem(stranger)).status_code == 404
    assert client.post(f"/v1/shops/{shop['id']}/close", headers=owner).status_code == 400   # no Idempotency-Key

    key = idem(owner)
    closed = ok(client.post(f"/v1/shops/{shop['id']}/close", headers=key))
    assert closed["status"] == "closed" and closed["closed_by"] == "owner" and closed["closed_at"]
    assert closed["vietqr"] is None and closed["payment"] is None and ACCOUNT[-4:] not in json.dumps(closed)
    replay = client.post(f"/v1/shops/{shop['id']}/close", headers=key)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"

    again = client.post(f"/v1/shops/{shop['id']}/close", json={"reason": "again"}, headers=idem(owner))
    body = bilingual(again)
    assert again.status_code == 409 and body["type"].endswith("/illegal-transition") and body["current_state"] == "closed"

    # out of both listings (its commune's index entry deleted), its page without any payment data
    assert listed(client, commune=CHI_LANG) == listed(client) == [other["id"]]
    assert not models.ShopByCommune.exists(CHI_LANG, shop["id"])
    page = ok(client.get(f"/v1/shops/{shop['id']}"))
    assert page["status"] == "closed" and page["vietqr"] is None and page["payment"] is None
    assert [p["id"] for p in page["product_list"]] == ["na-loai-1"]
    qr = client.get(f"/v1/shops/{shop['id']}/qr")
    assert qr.status_code == 410 and bilingual(qr)["type"].endswith("/shop-closed")
    assert client.get(f"/v1/shops/{other['id']}/qr").status_code == 200
    refused = client.post(f"/v1/shops/{shop['id']}/products", json=product("na-loai-2"), headers=owner)
    assert refused.status_code == 409 and bilingual(refused)["type"].endswith("/shop-closed")
    assert ok(client.get(f"/v1/shops/{shop['id']}"))["products"] == 1

    trail = shops.records().trail(shop["id"])
    assert [(e["action"], e["to"]) for e in trail] == [("open", "open"), ("close", "closed")]
    assert HOUSEHOLD not in json.dumps(trail)       # the owner by pseudonym, as in every market record
    (event,) = [e for e in shop_events(market, shop["id"]) if e["type"] == "vn.langson.market.shop.closed.v1"]
    schema = json.loads((ROOT / "schemas" / "events" / "market" / "shop.closed.json").read_text())
    assert list(Draft202012Validator(schema).iter_errors(event["data"])) == []
    assert event["data"]["actor"]["kind"] == "citizen" and HOUSEHOLD not in json.dumps(event)
    assert ACCOUNT not in json.dumps(event)


def test_an_operator_closes_a_shop_only_with_a_reason_and_lots_keep_scanning(client, market, tokens):
    firm = tokens("producer", PRODUCER)
    shop = ok(client.post("/v1/shops", json=shop_body(kind="cooperative"), headers=firm), 201)
    lot = ok(client.post("/v1/lots", headers=idem(firm), json={
        "product": "Na Chi Lăng loại 1", "unit": "thùng 10 kg", "quantity": 40, "harvested_on": "2025-08-20",
        "producer_name": "HTX Na Chi Lăng", "origin": {"commune": CHI_LANG, "plot": "CL-07"}}), 201)
    batch = ok(client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": 2}, headers=idem(firm)), 201)

    op = tokens("operator", "op-market-1")
    for body in (None, {}, {"reason": "   "}):
        r = client.post(f"/v1/shops/{shop['id']}/close", json=body, headers=idem(op))
        assert r.status_code == 422 and [e["field"] for e in bilingual(r)["errors"]] == ["/reason"], r.get_json()
    r = client.post(f"/v1/shops/{shop['id']}/close", json={"reason": "x", "note": 1}, headers=idem(op))
    assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == ["/note"]
    assert listed(client) == [shop["id"]]

    why = "hàng giả nhãn hiệu / counterfeit goods"
    closed = ok(client.post(f"/v1/shops/{shop['id']}/close", json={"reason": why}, headers=idem(op)))
    assert closed["status"] == "closed" and closed["closed_by"] == "operator" and why not in json.dumps(closed)
    assert listed(client) == []
    # its owner now meets the same 409 as anyone closing a closed shop
    assert client.post(f"/v1/shops/{shop['id']}/close", headers=idem(firm)).status_code == 409
    (entry,) = [e for e in shops.records().trail(shop["id"]) if e["action"] == "close"]
    assert entry["reason"] == why and entry["actor"]["kind"] == "operator"
    (event,) = [e for e in shop_events(market, shop["id"]) if e["type"].endswith(".shop.closed.v1")]
    assert event["data"]["reason"] == why

    # the lots and their stamps are the traceability of what was sold: untouched
    scanned = ok(client.get(f"/v1/stamps/{batch['codes'][1]}"))
    assert scanned["authentic"] is True and scanned["product"] == "Na Chi Lăng loại 1"
    assert ok(client.get(f"/v1/lots/{lot['id']}", headers=firm))["status"] == "registered"


def test_a_close_cut_off_before_its_index_entry_went_is_finished_by_the_retry(client, tokens, monkeypatch):
    """The shop is closed, then the store fails deleting its commune's index entry (a 503): the
    listing already leaves it out, and the client's retry (409: it is closed) deletes the entry."""
    owner = tokens("citizen", HOUSEHOLD)
    shop = ok(client.post("/v1/shops", json=shop_body(), headers=owner), 201)
    cuts = cut_once(monkeypatch, models.ShopByCommune, "delete")
    key = idem(owner)
    first = client.post(f"/v1/shops/{shop['id']}/close", headers=key)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    assert models.ShopByCommune.exists(CHI_LANG, shop["id"]) and listed(client, commune=CHI_LANG) == []
    assert client.post(f"/v1/shops/{shop['id']}/close", headers=key).status_code == 409
    assert not models.ShopByCommune.exists(CHI_LANG, shop["id"])


def stored_answers_holding(object_store, settings, needle: str) -> int:
    """How many answers kept for a client's retry hold ``needle``."""
    from lscloud.runonce import IDEMPOTENCY

    n = 0
    for info in object_store.list(settings.bucket, IDEMPOTENCY.prefix):
        try:
            body = base64.b64decode(json.loads(object_store.get(settings.bucket, info.key).body)["response"]["body_b64"])
        except (KeyError, ValueError, TypeError):
            continue
        n += needle.encode() in body
    return n


def test_an_erasure_request_erases_the_payment_data_of_the_persons_closed_shops(client, tokens, settings,
                                                                                object_store):
    owner = tokens("citizen", HOUSEHOLD)
    closing = ok(client.post("/v1/shops", json=shop_body(), headers=idem(owner)), 201)
    kept_open = ok(client.post("/v1/shops", json=shop_body(payment={
        "bank_bin": "970415", "account_number": "998877665544", "account_name": PAYEE}), headers=owner), 201)
    ok(client.post(f"/v1/shops/{closing['id']}/close", headers=idem(owner)))
    neighbours = ok(client.post("/v1/shops", json=shop_body(payment={
        "bank_bin": "970415", "account_number": "555566667777", "account_name": "NONG VAN BA"}),
        headers=tokens("citizen", NEIGHBOUR)), 201)
    ok(client.post(f"/v1/shops/{neighbours['id']}/close", headers=idem(tokens("citizen", NEIGHBOUR))))
    # the shop is its own idempotency record: no answer of its open is kept apart (the close's holds no account)
    assert stored_answers_holding(object_store, settings, ACCOUNT) == 0
    audit_before = len(shops.records().trail(closing["id"]))

    hooks = {"market": market_erase.erase}
    record = erasure.run(runtime.current(), erasure.Subject("cccd", HOUSEHOLD), hooks, operator="op-dpo")
    assert record["failed"] == {} and record["found_by_function"] == {"market": 2}
    erased = {e["what"].split(" / ")[1]: e["count"] for e in record["erased"]}
    assert erased["closed shops: the payee's name and account number, the VietQR code"] == 1
    kept = [k for k in record["kept"] if k.get("function") == "market"]
    assert [k["what"].split(" ")[0] for k in kept] == ["1", "1"]
    assert "POST /v1/shops/{id}/close" in kept[0]["why"] and "open digital shop" in kept[0]["what"]
    assert "closed shop" in kept[1]["what"]

    doc = models.Shop.get(closing["id"]).data
    assert doc["status"] == "closed" and doc["vietqr"] is None
    assert doc["payment"] == {"bank_bin": "970415", "bank": closing["payment"]["bank"]}
    assert ACCOUNT not in json.dumps(doc) and PAYEE not in json.dumps(doc)
    assert sorted(doc["erased"]["fields"]) == ["payment.account_name", "payment.account_number", "vietqr"]
    trail = shops.records().trail(closing["id"])
    (entry,) = [e for e in trail if e["action"] == "erase_personal_data"]
    assert entry["details"]["fields"] == doc["erased"]["fields"] and len(trail) == audit_before + 1
    assert ACCOUNT not in json.dumps(trail) and PAYEE not in json.dumps(trail)
    # the stored answers that held the closed shop's account are gone (its page never showed it)
    assert stored_answers_holding(object_store, settings, ACCOUNT) == 0
    # the open shop and the neighbour's closed shop are as they were
    assert models.Shop.get(kept_open["id"]).data["payment"]["account_number"] == "998877665544"
    assert client.get(f"/v1/shops/{kept_open['id']}/qr").status_code == 200
    assert models.Shop.get(neighbours["id"]).data["payment"]["account_number"] == "555566667777"
    page = ok(client.get(f"/v1/shops/{closing['id']}"))
    assert page["status"] == "closed" and page["payment"] is None and page["vietqr"] is None

    # made again, and re-applied from the record: nothing more written, no second audit entry
    version = models.Shop.get(closing["id"]).version
    for subject in (erasure.Subject("cccd", HOUSEHOLD), erasure.Subject.from_record(record)):
        again = erasure.run(runtime.current(), subject, hooks, operator="op-dpo")
        assert again["failed"] == {} and again["found_by_function"] == {"market": 2}
        counts = {e["what"].split(" / ")[1]: e["count"] for e in again["erased"]}
        assert counts["closed shops: the payee's name and account number, the VietQR code"] == 0
        assert counts["closed shops already erased before"] == 1
        assert models.Shop.get(closing["id"]).version == version
        assert len(shops.records().trail(closing["id"])) == audit_before + 1
