"""Creates named by a client-chosen id, retried after a first attempt cut off past the record's own
write: the same caller's same body is answered as the first time (and finishes the create's round),
another body under that id, or another caller, is a 409 naming what differs (no value)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from community_support import DONG_DANG, LEADER, MEMBER
from cuts import cut_once
from digital_support import ok
from lscloud import aggregate
from lscloud.delivery import tail

pytestmark = pytest.mark.integration

CHI_LANG = "06463"


def _cut_after_write(monkeypatch):
    # the store failed (or the process died) after the record's create-only write, before its round
    cut_once(monkeypatch, aggregate.Aggregate, "commit")


def _replayed(first_ok, again):
    assert again.status_code == 201, again.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    return again.get_json()


def _reused(r, *fields):
    assert r.status_code == 409, r.get_json()
    problem = r.get_json()
    assert problem["type"].endswith("idempotency-key-reused")
    assert [e["field"] for e in problem["errors"]] == list(fields)
    return problem


def test_team_form_resent_after_cut(start_function, peers, tokens, monkeypatch, settings):
    client = start_function("community", peer_url_template=peers.template).app.test_client()
    officer = tokens("commune-officer", "cb-1", unit=DONG_DANG)
    body = {"id": "to-" + uuid.uuid4().hex[:10], "name": "Tổ CNS thôn Pò Mỏ", "commune": DONG_DANG,
            "village": "Thôn Pò Mỏ", "leader": {"id": LEADER, "name": "Hoàng Văn Tú"},
            "members": [{"id": MEMBER, "name": "Lương Thị Mai"}]}
    _cut_after_write(monkeypatch)
    assert client.post("/v1/teams", json=body, headers=officer).status_code == 503
    monkeypatch.undo()
    again = _replayed(None, client.post("/v1/teams", json=body, headers=officer))
    assert again["id"] == body["id"]
    # finished: the commune's index lists it, its audit trail has the forming
    listed = ok(client.get("/v1/teams", query_string={"commune": DONG_DANG}, headers=officer))
    assert body["id"] in [t["id"] for t in listed["items"]]
    assert [m for m in tail(settings, 50) if m["event"].get("subject") == body["id"]
            and m["event"]["type"].endswith(".team.formed.v1")]
    assert _replayed(None, client.post("/v1/teams", json=body, headers=officer)) == again
    _reused(client.post("/v1/teams", json={**body, "village": "Thôn Nà Pàn"}, headers=officer), "/village")
    other = client.post("/v1/teams", json=body, headers=tokens("commune-officer", "cb-2", unit=DONG_DANG))
    assert other.status_code == 409 and "Idempotent-Replayed" not in other.headers


def _shop_body(**changes):
    return {"id": "shop-" + uuid.uuid4().hex[:12], "name": "Na Chi Lăng nhà bà Hoa", "kind": "household",
            "commune": CHI_LANG, "village": "Thôn Đồng Bành",
            "payment": {"bank_bin": "970415", "account_number": "113366668888", "account_name": "HOANG THI HOA"},
            **changes}


def test_product_add_resent_after_cut(start_function, peers, tokens, monkeypatch):
    client = start_function("market", peer_url_template=peers.template).app.test_client()
    cit = tokens("citizen", "020095001234")
    shop = ok(client.post("/v1/shops", json=_shop_body(), headers=cit), 201)
    product = {"id": "na-loai-1", "name": "Na Chi Lăng loại 1", "category": "thuc-pham", "ocop_stars": 4,
               "price_vnd": 60000, "unit": "kg"}
    url = f"/v1/shops/{shop['id']}/products"
    _cut_after_write(monkeypatch)
    assert client.post(url, json=product, headers=cit).status_code == 503
    monkeypatch.undo()
    again = _replayed(None, client.post(url, json=product, headers=cit))
    assert again["id"] == "na-loai-1"
    view = ok(client.get(f"/v1/shops/{shop['id']}"))
    assert [p["id"] for p in view["product_list"]] == ["na-loai-1"] and view["products"] == 1
    assert _replayed(None, client.post(url, json=product, headers=cit)) == again
    assert ok(client.get(f"/v1/shops/{shop['id']}"))["products"] == 1
    _reused(client.post(url, json={**product, "price_vnd": 65000}, headers=cit), "/price_vnd")
    # cut before its count in the shop: the resend counts it, once
    cut_once(monkeypatch, aggregate.Aggregate, "mutate")
    second = {**product, "id": "na-loai-2"}
    assert client.post(url, json=second, headers=cit).status_code == 503
    monkeypatch.undo()
    _replayed(None, client.post(url, json=second, headers=cit))
    _replayed(None, client.post(url, json=second, headers=cit))
    assert ok(client.get(f"/v1/shops/{shop['id']}"))["products"] == 2


def test_mqtt_credentials_second_issue_keeps_the_first_password(start_function, rt, tokens, settings, object_store):
    import bcrypt

    from bucket_scan import bucket_bytes
    from lscloud import devices
    from test_environment_api import Directory
    d = Directory()
    try:
        app = start_function("environment", peer_url_template=d.template).app
        client = app.test_client()
        op = tokens("operator", "op-1")
        sid = "lsn-air-" + uuid.uuid4().hex[:6]
        body = {"id": sid, "kind": "air", "name": "Trạm 9", "unit": "05986", "lat": 21.85, "lon": 106.76}
        assert client.post("/v1/stations", json=body, headers=op).status_code == 201
        url = f"/v1/stations/{sid}/mqtt-credentials"
        # a double submit: two issues at once, whichever saves first answers the password, the other a 409
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda who: app.test_client().post(url, headers=who),
                                 (op, tokens("operator", "op-2"))))
        assert sorted(r.status_code for r in both) == [201, 409], [r.get_json() for r in both]
        first = next(r for r in both if r.status_code == 201).get_json()
        lost = next(r for r in both if r.status_code == 409)
        assert lost.get_json()["type"].endswith("credentials-just-issued") and "password" not in lost.get_json()

        def works(password: str) -> bool:
            item = devices.DeviceCredential.get(first["username"])
            return bcrypt.checkpw(password.encode(), item.password_hash.encode())

        # the console's retry after a lost answer, or another operator's click: refused, the first password lives
        for who in (op, tokens("operator", "op-2")):
            again = client.post(url, headers=who)
            assert again.status_code == 409 and again.get_json()["type"].endswith("credentials-just-issued")
            assert again.get_json()["errors"][0]["field"] == "force" and 1 <= int(again.headers["Retry-After"]) <= 300
            assert "password" not in again.get_json()
        assert works(first["password"])
        # the password is kept nowhere in clear (no replayed answer stored)
        assert not [k for k, v in bucket_bytes(object_store, settings.bucket).items() if first["password"].encode() in v]
        forced = ok(client.post(url, headers=op, query_string={"force": "true"}), 201)
        assert works(forced["password"]) and not works(first["password"])
        # revoked, then issued again at once: not held back
        assert ok(client.delete(url, headers=op))["revoked"] is True
        assert works(ok(client.post(url, headers=op), 201)["password"])
    finally:
        d.stop()


def test_station_register_resent_after_cut(start_function, rt, tokens, monkeypatch):
    from test_environment_api import Directory
    d = Directory()
    try:
        client = start_function("environment", peer_url_template=d.template).app.test_client()
        op = tokens("operator", "op-1")
        body = {"id": "lsn-air-" + uuid.uuid4().hex[:6], "kind": "air", "name": "Trạm 7", "unit": "05986",
                "lat": 21.85, "lon": 106.76}
        _cut_after_write(monkeypatch)
        assert client.post("/v1/stations", json=body, headers=op).status_code == 503
        monkeypatch.undo()
        again = _replayed(None, client.post("/v1/stations", json=body, headers=op))
        assert again["id"] == body["id"] and again["status"] == "active"
        # the round the cut stopped was finished: the registration's event went out
        assert [m for m in tail(rt.settings, 50) if m["event"].get("subject") == body["id"]
                and m["event"]["type"].endswith(".station.registered.v1")]
        assert _replayed(None, client.post("/v1/stations", json=body, headers=op)) == again
        _reused(client.post("/v1/stations", json={**body, "name": "Trạm khác", "lat": 21.9}, headers=op),
                "/lat", "/name")
        other = client.post("/v1/stations", json=body, headers=tokens("operator", "op-2"))
        assert other.status_code == 409 and "Idempotent-Replayed" not in other.headers
    finally:
        d.stop()


def test_shop_open_resent_after_cut(start_function, peers, tokens, monkeypatch):
    client = start_function("market", peer_url_template=peers.template).app.test_client()
    cit = tokens("citizen", "020095001234")
    body = _shop_body()
    _cut_after_write(monkeypatch)
    assert client.post("/v1/shops", json=body, headers=cit).status_code == 503
    monkeypatch.undo()
    again = _replayed(None, client.post("/v1/shops", json=body, headers=cit))
    assert again["id"] == body["id"] and again["payment"]["account_number"].endswith("8888")
    listed = ok(client.get("/v1/shops", query_string={"commune": CHI_LANG}))
    assert body["id"] in [s["id"] for s in listed["items"]]
    changed = {**body, "payment": {**body["payment"], "account_number": "999900001111"}}
    problem = _reused(client.post("/v1/shops", json=changed, headers=cit), "/payment/account_number")
    assert "999900001111" not in str(problem) and "113366668888" not in str(problem)
    other = client.post("/v1/shops", json=body, headers=tokens("citizen", "020095009999"))
    assert other.status_code == 409 and "Idempotent-Replayed" not in other.headers
    assert "113366668888" not in other.get_data(as_text=True)
