"""A changed pseudonym key and the market, against real weed mini + nats-server (stop 50's note: the
market had no migration, so a key change orphaned its owner indexes and no household owner was
recognised on their own shop; nothing could re-key it). Its migration re-keys both indexes and
restates each shop's owner reference from the index's clear subject; switching back re-keys back."""
# ruff: noqa: F811 (the with_key fixture imported from serve_support is named as a parameter)

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from client_answers import idem, ok
from market_support import CHI_LANG, HOUSEHOLD, PRODUCER
from serve_support import with_key  # noqa: F401
from lscloud import pseudonyms, serve

pytestmark = pytest.mark.integration

MARKET = Path(__file__).resolve().parents[2] / "functions" / "market"
KEY_A = "pseudonym-key-a-of-the-state-dir-0123456789"
KEY_B = "pseudonym-key-b-from-the-shell-0123456789ab"
ID_A = pseudonyms.key_id_of(KEY_A)



def shop_body() -> dict:
    return {"id": "shop-" + uuid.uuid4().hex[:12], "name": "Na Chi Lăng nhà bà Hoa", "kind": "household",
            "commune": CHI_LANG, "payment": {"bank_bin": "970415", "account_number": "113366668888",
                                             "account_name": "HOANG THI HOA"}}


LOT = {"product": "Na Chi Lăng loại 1", "unit": "thùng 10 kg", "quantity": 120, "harvested_on": "2025-08-20",
       "producer_name": "HTX Na Chi Lăng", "origin": {"commune": CHI_LANG, "plot": "CL-07"}}
PRODUCT = {"id": "na-loai-1", "name": "Na Chi Lăng loại 1", "category": "thuc-pham", "price_vnd": 60000, "unit": "kg"}


def test_a_key_change_re_keys_the_owners_and_their_shops_both_ways(start_function, peers, tokens, with_key,
                                                                 monkeypatch):
    owner, producer = tokens("citizen", HOUSEHOLD), tokens("producer", PRODUCER)
    a = start_function("market", peer_url_template=peers.template, pseudonym_key=KEY_A).app.test_client()
    shop = ok(a.post("/v1/shops", json=shop_body(), headers=owner), 201)
    lot = ok(a.post("/v1/lots", json=LOT, headers=idem(producer)), 201)
    with_key(KEY_A, "market")
    assert serve.migrate(MARKET)["migrated"] is True          # records the key the data is keyed under

    # each shop is read once per run, by the update that restates it (or finds nothing to write)
    from functions.market.function.models import Shop

    shops_touched = []
    load, save = Shop._load.__func__, Shop.save
    monkeypatch.setattr(Shop, "_load", classmethod(
        lambda cls, key, **kw: shops_touched.append("read") or load(cls, key, **kw)))
    monkeypatch.setattr(Shop, "save", lambda self, *a, **kw: shops_touched.append("write") or save(self, *a, **kw))
    with_key(KEY_B, "market")
    to_b = serve.migrate(MARKET)
    assert shops_touched == ["read", "write"], shops_touched
    assert to_b["rekeyed_from"] == ID_A, to_b
    assert to_b["result"]["shop_owners_restated"] == 1 and to_b["result"]["shops_missing"] == 0, to_b
    assert to_b["result"]["shops_by_owner"]["moved"] == 1 and to_b["result"]["lots_by_producer"]["moved"] == 1
    b = start_function("market", peer_url_template=peers.template, pseudonym_key=KEY_B).app.test_client()
    # the owner is recognised on their own shop, a stranger is not; the producer's lots are theirs
    ok(b.post(f"/v1/shops/{shop['id']}/products", json=PRODUCT, headers=owner), 201)
    stranger = b.post(f"/v1/shops/{shop['id']}/products", json={**PRODUCT, "id": "na-loai-9"},
                      headers=tokens("citizen", "020095009999"))
    assert stranger.status_code == 404
    assert [x["id"] for x in ok(b.get("/v1/lots", headers=producer))["items"]] == [lot["id"]]

    # and back: the record says B now, so the migration runs again under A
    with_key(KEY_A, "market")
    shops_touched.clear()
    back = serve.migrate(MARKET)
    assert shops_touched == ["read", "write"], shops_touched
    assert back["rekeyed_from"] == pseudonyms.key_id_of(KEY_B) and back["result"]["shop_owners_restated"] == 1
    again = start_function("market", peer_url_template=peers.template, pseudonym_key=KEY_A).app.test_client()
    ok(again.post(f"/v1/shops/{shop['id']}/products", json={**PRODUCT, "id": "na-loai-2"}, headers=owner), 201)
    # run again under the same key: nothing left to do
    with_key(KEY_A, "market")
    shops_touched.clear()
    assert serve.migrate(MARKET, force=True)["result"]["shop_owners_restated"] == 0
    assert shops_touched == ["read"], shops_touched
