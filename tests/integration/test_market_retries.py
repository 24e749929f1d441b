"""The market's writes when a first run stops part-way (the store fails, or the process dies, after
some writes and before the answer) and the client sends the same request again: the retry finishes
what the first run left, writes nothing twice, and another body under the same id or key is a 409
naming the fields. Real weed mini + nats-server; the failure is one store write made to raise."""

# ruff: noqa: F811 (pytest fixtures imported from market_support are named as parameters)
from __future__ import annotations

import uuid

import pytest

from cuts import cut_once
from digital_support import ok
from market_support import CHI_LANG, client, HOUSEHOLD, market, PRODUCER  # noqa: F401
from lscloud.delivery import tail

from functions.market.function import lots, models

pytestmark = pytest.mark.integration



def lot_body(**changes):
    return {"product": "Na Chi Lăng loại 1", "unit": "thùng 10 kg", "quantity": 120, "harvested_on": "2025-08-20",
            "producer_name": "HTX Na Chi Lăng", "origin": {"commune": CHI_LANG, "plot": "CL-07"}, **changes}


def events_of(market, lot_id: str) -> list[str]:
    return [m["event"]["id"].replace(lot_id, "<id>") for m in tail(market.settings, 200)
            if m["event"].get("subject") == lot_id]


@pytest.mark.parametrize("named_by", ["its id", "an Idempotency-Key"])
@pytest.mark.parametrize("cut", ["the index write fails", "the process dies after the lot's write"])
def test_a_resend_of_a_register_cut_off_finishes_the_lot(client, market, tokens, monkeypatch, named_by, cut):
    """The lot is stored, then its round is cut off (its producer's index, or everything after the
    lot's own write): the producer gets a 503 and sends the same request again, which is answered
    with the lot as registered (the old code answered a 409 "already exists", or, keyed by its
    header, registered a second lot) and finds it on "my lots", its trail and its event, each once."""
    from lscloud import aggregate

    prod = tokens("producer", PRODUCER)
    lot_id = "lot-" + uuid.uuid4().hex[:20] if named_by == "its id" else None
    body = lot_body(id=lot_id) if lot_id else lot_body()
    headers = prod if lot_id else {**prod, "Idempotency-Key": uuid.uuid4().hex}
    if cut == "the index write fails":
        cuts = cut_once(monkeypatch, models.LotByProducer, "save")
    else:
        cuts = cut_once(monkeypatch, aggregate.Aggregate, "commit", lambda agg, *_, **__: agg.model is models.Lot)
    first = client.post("/v1/lots", json=body, headers=headers)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    (stored,) = [lot.id for lot in models.Lot.scan()]

    again = client.post("/v1/lots", json=body, headers=headers)
    assert again.status_code == 201, again.get_data(as_text=True)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["id"] == stored and again.get_json()["status"] == "registered"
    assert [lot.id for lot in models.Lot.scan()] == [stored]          # one lot, not a second one
    assert [i["id"] for i in ok(client.get("/v1/lots", headers=prod))["items"]] == [stored]
    assert [e["action"] for e in lots.records().trail(stored)] == ["register"]
    assert events_of(market, stored) == ["<id>.1.0"]

    third = client.post("/v1/lots", json=body, headers=headers)   # a complete lot: nothing more written
    assert third.status_code == 201 and third.get_json()["id"] == stored
    assert [e["action"] for e in lots.records().trail(stored)] == ["register"]
    assert [i["id"] for i in ok(client.get("/v1/lots", headers=prod))["items"]] == [stored]


@pytest.mark.parametrize("first_run", ["answered", "cut off"])
def test_the_same_lot_id_with_another_body_is_a_409_naming_the_fields(client, tokens, monkeypatch, first_run):
    """Same producer, same id, another body — after a first run that was answered, or one cut off
    after the lot's write: 409 ``idempotency-key-reused`` naming what differs (after a cut-off run
    the old code said only "a lot with this id already exists"); another producer reusing the id
    gets the plain conflict, nothing of the first lot."""
    prod = tokens("producer", PRODUCER)
    lot_id = "lot-" + uuid.uuid4().hex[:20]
    if first_run == "cut off":
        cuts = cut_once(monkeypatch, models.LotByProducer, "save")
        assert client.post("/v1/lots", json=lot_body(id=lot_id), headers=prod).status_code == 503 and cuts
    else:
        ok(client.post("/v1/lots", json=lot_body(id=lot_id), headers=prod), 201)
    r = client.post("/v1/lots", json=lot_body(id=lot_id, quantity=90, unit="kg"), headers=prod)
    assert r.status_code == 409 and r.get_json()["type"].endswith("/idempotency-key-reused"), r.get_json()
    assert sorted(e["field"] for e in r.get_json()["errors"]) == ["/quantity", "/unit"]
    other = client.post("/v1/lots", json=lot_body(id=lot_id), headers=tokens("producer", "0200123457"))
    assert other.status_code == 409 and not other.get_json()["type"].endswith("/idempotency-key-reused")
    # nothing of the stored lot told to another producer (its quantity, 120, named by no field or value)
    told = other.get_data(as_text=True)
    assert "quantity" not in told and ":120" not in told.replace(" ", ""), told
    # the first body again is its resend: answered, and on "my lots"
    assert ok(client.post("/v1/lots", json=lot_body(id=lot_id), headers=prod), 201)["quantity"] == 120
    assert [i["id"] for i in ok(client.get("/v1/lots", headers=prod))["items"]] == [lot_id]


@pytest.mark.parametrize("cut", ["the lot's write fails", "a write after the lot's fails"])
def test_a_retried_issue_cut_off_issues_one_batch_counted_once(client, market, tokens, monkeypatch, cut):
    """The batch is stored, then the run stops (before the lot's change, or after it, at its audit
    entry): the producer gets a 503 and retries with the same key. The retry answers the batch the
    first run stored, the lot holds it once and counts its 100 stamps once (the old code issued a
    second batch, and counted 200 when the lot's change had been stored)."""
    prod = tokens("producer", PRODUCER)
    lot = ok(client.post("/v1/lots", json=lot_body(), headers={**prod, "Idempotency-Key": uuid.uuid4().hex}), 201)
    if cut == "the lot's write fails":
        cuts = cut_once(monkeypatch, models.Lot, "save", lambda item, **_: item.id == lot["id"])
    else:
        cuts = cut_once(monkeypatch, models.LotAudit, "save",
                        lambda item, **_: item.lot_id == lot["id"] and item.data["action"] == "issue_stamps")
    key = {**prod, "Idempotency-Key": uuid.uuid4().hex}
    first = client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": 100}, headers=key)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    (batch,) = [b.batch for b in models.StampBatch.scan()]

    again = client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": 100}, headers=key)
    assert again.status_code == 201, again.get_data(as_text=True)
    assert again.get_json()["batch"] == batch and again.get_json()["count"] == 100
    assert [b.batch for b in models.StampBatch.scan()] == [batch]
    doc = ok(client.get(f"/v1/lots/{lot['id']}", headers=prod))
    assert doc["stamps_issued"] == 100 and [(b["batch"], b["count"]) for b in doc["batches"]] == [(batch, 100)]

    replay = client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": 100}, headers=key)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["codes"] == again.get_json()["codes"]
    assert ok(client.get(f"/v1/lots/{lot['id']}", headers=prod))["stamps_issued"] == 100
    # another key is another batch, as before
    other = ok(client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": 5},
                           headers={**prod, "Idempotency-Key": uuid.uuid4().hex}), 201)
    assert other["batch"] != batch and ok(client.get(f"/v1/lots/{lot['id']}", headers=prod))["stamps_issued"] == 105


def test_a_retry_with_another_count_after_a_cut_off_issue_is_a_409_naming_it(client, tokens, monkeypatch):
    """The first run stored its batch of 100 and stopped; the same key comes back asking for 50:
    409 naming ``/count`` (the old code, its key's record released by the 503, issued a batch of 50
    beside the 100), and the lot is left as the first run left it."""
    prod = tokens("producer", PRODUCER)
    lot = ok(client.post("/v1/lots", json=lot_body(), headers={**prod, "Idempotency-Key": uuid.uuid4().hex}), 201)
    cuts = cut_once(monkeypatch, models.Lot, "save", lambda item, **_: item.id == lot["id"])
    key = {**prod, "Idempotency-Key": uuid.uuid4().hex}
    assert client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": 100}, headers=key).status_code == 503 and cuts
    r = client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": 50}, headers=key)
    assert r.status_code == 409 and r.get_json()["type"].endswith("/idempotency-key-reused"), r.get_json()
    assert [e["field"] for e in r.get_json()["errors"]] == ["/count"]
    assert r.get_json()["idempotency_key"] == key["Idempotency-Key"]
    assert len(list(models.StampBatch.scan())) == 1
    assert ok(client.get(f"/v1/lots/{lot['id']}", headers=prod))["stamps_issued"] == 0


def test_a_product_cut_off_before_its_count_is_counted_by_the_shops_next_add(client, tokens, monkeypatch):
    """A product is stored, then its count in the shop is cut off, and the owner never sends it
    again: the shop's next add counts both (the old code counted one add at a time, so the shop
    said 1 of its 2 products for good). The first one's resend after that is answered as the first
    time and counts nothing twice; the shop keeps its count, not a list of the ids it counted."""
    from lscloud import aggregate

    cit = tokens("citizen", HOUSEHOLD)
    shop = ok(client.post("/v1/shops", json={
        "id": "shop-" + uuid.uuid4().hex[:12], "name": "Na Chi Lăng nhà bà Hoa", "kind": "household",
        "commune": CHI_LANG, "payment": {"bank_bin": "970415", "account_number": "113366668888",
                                         "account_name": "HOANG THI HOA"}}, headers=cit), 201)
    url = f"/v1/shops/{shop['id']}/products"
    first = {"id": "na-loai-1", "name": "Na Chi Lăng loại 1", "category": "thuc-pham", "price_vnd": 60000, "unit": "kg"}
    cuts = cut_once(monkeypatch, aggregate.Aggregate, "mutate", lambda agg, *_, **__: agg.model is models.Shop)
    assert client.post(url, json=first, headers=cit).status_code == 503 and cuts
    ok(client.post(url, json={**first, "id": "na-loai-2"}, headers=cit), 201)
    view = ok(client.get(f"/v1/shops/{shop['id']}"))
    assert view["products"] == 2 and [p["id"] for p in view["product_list"]] == ["na-loai-1", "na-loai-2"]

    again = client.post(url, json=first, headers=cit)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true", again.get_json()
    assert again.get_json()["id"] == "na-loai-1" and again.get_json()["price_vnd"] == 60000
    assert ok(client.get(f"/v1/shops/{shop['id']}"))["products"] == 2
    assert "product_ids" not in models.Shop.get(shop["id"]).data
