"""Partner signatures end to end: nonces remembered in real NATS (a JetStream key-value bucket)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from flask import jsonify

from lscloud import nonces, runtime, telemetry
from lscloud.bus import SyncBus
from lscloud.local.servers import free_port
from lscloud.auth import allow, principal, sign_request
from lscloud.problems import TYPE_BASE
from lscloud.web import create_app

pytestmark = pytest.mark.integration

KEY1 = "bidv-key-one-0123456789abcdef"
KEY2 = "bidv-key-two-0123456789abcdef"


@pytest.fixture
def app(install):
    app = create_app("atm", settings=install(partner_keys={"bidv": (KEY1, KEY2)}).settings)

    @app.post("/v1/withdrawals")
    @allow(partner=True)
    def withdraw():
        """Authorise a withdrawal."""
        p = principal()
        return jsonify(role=p.role, partner=p.partner, sub=p.sub), 201

    return app


def post(client, body: dict, key_id="1", key=KEY1, headers=None, path="/v1/withdrawals"):
    raw = json.dumps(body).encode()
    h = headers or sign_request("POST", path, raw, "bidv", key_id, key)
    return client.post(path, data=raw, headers=h, content_type="application/json"), h


def test_both_active_keys_are_accepted(app):
    client = app.test_client()
    for key_id, key in (("1", KEY1), ("2", KEY2)):
        resp, _ = post(client, {"amount": 500_000}, key_id, key)
        assert resp.status_code == 201, resp.get_data(as_text=True)
        assert resp.get_json() == {"role": "bank", "partner": "bidv", "sub": "bidv"}


def test_replayed_nonce_is_refused(app, object_store, settings):
    client = app.test_client()
    spans = telemetry.spans_in_memory()
    resp, headers = post(client, {"amount": 1})
    assert resp.status_code == 201
    again, _ = post(client, {"amount": 1}, headers=headers)
    assert again.status_code == 401
    assert again.get_json()["type"] == TYPE_BASE + "replayed-nonce"
    # each check is a child span of its request, and names neither the key nor the nonce
    kv = [sp for sp in spans.get_finished_spans() if sp.name == "KV.create"]
    assert [sp.attributes["lscloud.kv.created"] for sp in kv] == [True, False]
    assert all(sp.parent is not None and sp.attributes["db.namespace"] == nonces.bucket(settings.stream) for sp in kv)
    assert not [sp for sp in kv if headers["X-LSCloud-Nonce"] in str(dict(sp.attributes))]
    # remembered in NATS under this function's own keys, not in the object store
    assert asyncio.run(nonce_keys(settings)) == [f"atm.bidv.{headers['X-LSCloud-Nonce']}"]
    assert list(object_store.list(settings.bucket, "")) == []


async def nonce_keys(settings) -> list[str]:
    import nats

    nc = await nats.connect(settings.nats_url)
    try:
        return await (await nc.jetstream().key_value(nonces.bucket(settings.stream))).keys()
    finally:
        await nc.close()


def test_concurrent_replays_have_one_winner(app):
    raw = json.dumps({"amount": 7}).encode()
    headers = sign_request("POST", "/v1/withdrawals", raw, "bidv", "1", KEY1)
    statuses = []

    def call():
        resp = app.test_client().post("/v1/withdrawals", data=raw, headers=headers, content_type="application/json")
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] + [401] * 5


def test_failed_signature_does_not_burn_the_nonce(app):
    client = app.test_client()
    raw = json.dumps({"amount": 2}).encode()
    bad = sign_request("POST", "/v1/withdrawals", raw, "bidv", "1", "wrong-key-0123456789abcdef", nonce="n" * 24)
    assert client.post("/v1/withdrawals", data=raw, headers=bad, content_type="application/json").status_code == 401
    good = sign_request("POST", "/v1/withdrawals", raw, "bidv", "1", KEY1, nonce="n" * 24)
    assert client.post("/v1/withdrawals", data=raw, headers=good, content_type="application/json").status_code == 201


def test_an_apps_own_resolver_supplies_the_keys(settings, rt):
    """create_app(partner_keys=fn): keys from the function's registry; an empty slot is no key."""
    registry = {"vcb": ("", "vcb-key-two-0123456789abcdef")}
    app = create_app("atm2", settings=settings, partner_keys=registry.get)

    @app.post("/v1/ping")
    @allow(partner=True)
    def ping():
        """Signed ping."""
        return jsonify(partner=principal().partner), 200

    client = app.test_client()
    raw = b"{}"
    ok = sign_request("POST", "/v1/ping", raw, "vcb", "2", registry["vcb"][1])
    assert client.post("/v1/ping", data=raw, headers=ok, content_type="application/json").get_json() == {"partner": "vcb"}
    empty = sign_request("POST", "/v1/ping", raw, "vcb", "1", "")
    resp = client.post("/v1/ping", data=raw, headers=empty, content_type="application/json")
    assert resp.status_code == 401 and resp.get_json()["type"] == TYPE_BASE + "bad-signature"   # as a wrong key
    # settings' keys are not consulted when the app has its own resolver
    other = sign_request("POST", "/v1/ping", raw, "bidv", "1", KEY1)
    assert client.post("/v1/ping", data=raw, headers=other, content_type="application/json").status_code == 401


def test_a_nonce_is_refused_when_nats_cannot_say_whether_it_was_seen(settings, keys):
    # not knowing is not accepting: 503 with Retry-After, never the request let through
    dead = settings.replace(partner_keys={"bidv": (KEY1, KEY2)}, nats_url=f"nats://127.0.0.1:{free_port()}")
    runtime.uninstall()
    runtime.install(runtime.Runtime(dead, bus=SyncBus(dead, publish_timeout=0.5, connect_timeout=0.3)))
    try:
        app = create_app("atm", settings=dead)

        @app.post("/v1/withdrawals")
        @allow(partner=True)
        def withdraw():
            """Authorise a withdrawal."""
            raise AssertionError("reached without its nonce remembered")

        resp, _ = post(app.test_client(), {"amount": 3})
    finally:
        runtime.uninstall()
    assert resp.status_code == 503, resp.get_data(as_text=True)
    assert resp.headers["Retry-After"] == "5" and resp.mimetype == "application/problem+json"
