"""A traffic order and the declarations it names, on real weed mini + nats-server: issuing it writes
the order (and its event) only, not one declaration per recipient: the recipients' versions (their
clients' ETags) and replay answers stay as they were, whatever the number named. The driver's lookup
still tells the hold in vi / zh / en, finding it among its gate's orders; a ``traffic_orders`` member
an earlier release wrote onto a declaration is in no answer."""

# ruff: noqa: F811 (pytest fixtures imported from border_support are named as parameters)
from __future__ import annotations

import uuid

import pytest

from border_support import client, directory, fn, in_yard, ok, tok  # noqa: F401
from functions.border.function import models

pytestmark = pytest.mark.integration

DECLARATIONS = models.Declaration.Meta.table + "/"


def issue(client, tok, ids: list[str]) -> tuple[dict, list[tuple[str, str]]]:
    """An order holding ``ids``, and the store's writes its issue made."""
    from store_calls import counting

    police = tok("officer", agency="traffic-police", unit="huu-nghi")
    order = {"id": "to-" + uuid.uuid4().hex[:10], "gate": "huu-nghi", "kind": "hold",
             "message_vi": "Dừng chờ tại bãi", "message_zh": "请在停车场等候", "message_en": "Wait in the yard",
             "declaration_ids": ids}
    with counting() as calls:
        ok(client.post("/v1/traffic-orders", json=order, headers=police), 201)
    return order, [(m, k) for m, k in calls.log if m in ("put", "delete")]


def test_issuing_an_order_writes_no_declaration_whatever_the_number_named(client, tok):
    plates = [f"桂A{30000 + i}" for i in range(5)]
    trucks = [in_yard(client, tok, plate=p) for p in plates]
    ent = tok("enterprise", sub="0100109106")
    before = {did: client.get(f"/v1/declarations/{did}", headers=ent).headers["ETag"] for did, _ in trucks}

    one, wrote_one = issue(client, tok, [trucks[0][0]])
    five, wrote_five = issue(client, tok, [did for did, _ in trucks])
    assert [k for _, k in wrote_one + wrote_five if k.startswith(DECLARATIONS)] == [], wrote_five
    assert len(wrote_five) == len(wrote_one), (wrote_one, wrote_five)   # the order's own writes only

    for did, _ in trucks:
        r = client.get(f"/v1/declarations/{did}", headers=ent)
        assert r.headers["ETag"] == before[did] and "traffic_orders" not in r.get_json()
    # every driver named is told, in his language and the two others
    for (did, code), plate in zip(trucks, plates):
        said = {lang: ok(client.get("/v1/lookup", query_string={"code": code, "plate": plate},
                                    headers={"Accept-Language": lang})) for lang in ("vi", "zh", "en")}
        held = five["id"] if did != trucks[0][0] else None
        for lang, text in (("vi", "Dừng chờ tại bãi"), ("zh", "请在停车场等候"), ("en", "Wait in the yard")):
            assert text in said[lang]["status_text"], said[lang]
            ids = [o["id"] for o in said[lang]["traffic_orders"]]
            assert ids == ([held] if held else [five["id"], one["id"]]), ids


def test_a_declaration_an_earlier_release_wrote_an_order_onto_answers_without_it(client, tok):
    did, _ = in_yard(client, tok, plate="桂A·39999")
    kept = {"id": "to-old-0001", "gate": "huu-nghi", "kind": "hold", "message_vi": "Dừng",
            "issued_at": "2026-01-01T00:00:00.000Z"}

    def written_before(item):
        item.data = {**item.data, "traffic_orders": [kept]}

    models.Declaration.update(did, None, written_before)
    ent = tok("enterprise", sub="0100109106")
    assert "traffic_orders" not in ok(client.get(f"/v1/declarations/{did}", headers=ent))
    assert all("traffic_orders" not in d for d in ok(client.get("/v1/declarations", headers=ent))["items"])
