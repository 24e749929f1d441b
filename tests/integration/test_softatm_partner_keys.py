"""Partner banks' keys and signed calls, as a bank's security team and an operator meet them: a key
is retired by emptying its slot; a rotation keeps our webhooks on the key the bank verifies until an
operator switches them, and a 401 right after a switch is retried; a bank's flood is refused (429)
before its nonces fill the bucket every bank shares; a caller without a key learns nothing of which
banks or slots exist; the path is signed decoded once. The soft ATM's own fixtures, on the real weed
mini and nats-server."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from functions.softatm.function import models, transfers
from lscloud import events, telemetry
from lscloud.auth import delivery_headers, sign_request

from test_partner_signing import nonce_keys
from test_softatm_api import B1, K1, K2, K3, Bank, s_teller, transfer_event, wbody
from test_softatm_api import app, client, directory, expiry_s, hooks, rt, setup  # noqa: F401 - its fixtures, reused

pytestmark = pytest.mark.integration


@pytest.fixture
def partner_rate() -> int:
    """LSCLOUD_PARTNER_RATE of the function under test (a test parametrizes it to change it)."""
    return 600


@pytest.fixture
def fn(start_function, directory, tmp_path, expiry_s, partner_rate):  # noqa: F811 - imported fixtures
    from lscloud import runtime

    instance = start_function("softatm", peer_url_template=directory.template, state_dir=str(tmp_path),
                              function_env={"SOFTATM_EXPIRY_S": expiry_s}, partner_rate=partner_rate)
    runtime.current().bus.ensure_stream()
    return instance


def problem_type(r) -> str:
    return (r.get_json(silent=True) or {}).get("type", "").rsplit("/", 1)[-1]


def fields(r) -> list:
    return [e.get("field") for e in (r.get_json(silent=True) or {}).get("errors", [])]


# -- 1. retiring a key -----------------------------------------------------------------------------

def test_an_operator_retires_a_key_and_it_stops_verifying_at_once(client, setup):  # noqa: F811 - imported fixtures
    """The old code had no way to empty a slot (``secret: null`` or "" was a 422, PATCH too): after
    the documented rotation both keys verified for good."""
    op, vcb = setup["op"], setup["vcb"]
    path = "/v1/bank/transfers/none-such-01"
    assert vcb.call("GET", path, key_id="2", key=K2).status_code == 404   # slot 2 verifies
    r = client.delete("/v1/banks/vcb/keys/2", headers=op)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert [k["key_id"] for k in r.get_json()["keys"]] == ["1"] and K2 not in r.get_data(as_text=True)
    r = vcb.call("GET", path, key_id="2", key=K2)
    assert r.status_code == 401 and problem_type(r) == "bad-signature"
    assert vcb.call("GET", path).status_code == 404                       # slot 1 still does
    assert client.delete("/v1/banks/vcb/keys/2", headers=op).status_code == 200   # a resend: still empty
    # the slot that signs our webhooks cannot be emptied: the bank would get webhooks signed with nothing
    r = client.delete("/v1/banks/vcb/keys/1", headers=op)
    assert r.status_code == 409 and problem_type(r) == "key-slot-in-use" and fields(r) == ["key_id"]
    assert r.get_json()["detail_vi"] and "sign_webhooks" in r.get_json()["detail"]
    # the full rotation: new key in the free slot, webhooks switched once the bank verifies it, old key retired
    assert client.post("/v1/banks/vcb/keys", json={"key_id": "2", "secret": K3}, headers=op).status_code == 200
    r = client.post("/v1/banks/vcb/keys", json={"key_id": "2", "sign_webhooks": True}, headers=op)
    assert r.status_code == 200 and r.get_json()["signing_key_id"] == "2", r.get_data(as_text=True)
    r = client.delete("/v1/banks/vcb/keys/1", headers=op)
    assert r.status_code == 200 and [k["key_id"] for k in r.get_json()["keys"]] == ["2"]
    r = vcb.call("GET", path)
    assert r.status_code == 401 and problem_type(r) == "bad-signature"
    assert vcb.call("GET", path, key_id="2", key=K3).status_code == 404
    # an empty slot cannot sign our webhooks
    r = client.post("/v1/banks/vcb/keys", json={"key_id": "1", "sign_webhooks": True}, headers=op)
    assert r.status_code == 409 and problem_type(r) == "key-slot-empty"
    # nor can a bank be left without a key (a record whose webhooks name an empty slot)
    models.Bank.update("bidv", None, lambda item: item.data.update(signing_key_id="2"))
    r = client.delete("/v1/banks/bidv/keys/1", headers=op)
    assert r.status_code == 409 and "only key" in r.get_json()["detail"]
    assert client.delete("/v1/banks/nobank/keys/1", headers=op).status_code == 404
    assert client.delete("/v1/banks/vcb/keys/1", headers=s_teller(setup)).status_code == 403


def test_a_rotation_needs_a_secret_or_a_switch(client, setup):  # noqa: F811 - imported fixtures
    r = client.post("/v1/banks/vcb/keys", json={"key_id": "2"}, headers=setup["op"])
    assert r.status_code == 422 and fields(r) == ["/secret"] and r.get_json()["detail_vi"]


# -- 3. a rotation keeps our webhooks on the key the bank verifies ------------------------------------

def fire(test_client, settings, tid, n):
    h, body = events.to_binary_http(transfer_event(tid, id=f"{tid}.received.{n}"))
    return test_client.post("/events", data=body, headers={**h, **delivery_headers(settings)})


def test_a_new_key_signs_our_webhooks_only_once_the_operator_says_so(client, setup, rt, hooks):  # noqa: F811
    """The old code switched our webhooks to the new key at once (``sign_webhooks`` defaulted to
    true): a bank not yet verifying it answered 401, and the webhook was dead-lettered for good."""
    op = setup["op"]
    b = wbody()
    assert client.post("/v1/withdrawals", json=b, headers=s_teller(setup)).status_code == 201
    r = client.post("/v1/banks/vcb/keys", json={"key_id": "2", "secret": K3}, headers=op)
    assert r.status_code == 200 and r.get_json()["signing_key_id"] == "1"
    assert fire(client, rt.settings, b["id"], 1).status_code == 200
    assert hooks.got[-1][0] is True                      # still signed with K1, which the bank holds
    # replacing the key that signs our webhooks would sign them with a key the bank may not hold
    r = client.post("/v1/banks/vcb/keys", json={"key_id": "1", "secret": K3}, headers=op)
    assert r.status_code == 409 and problem_type(r) == "key-slot-in-use" and fields(r) == ["/key_id"]
    # the operator switches once the bank says it verifies slot 2; a bank that does not yet answers
    # 401: right after the switch that is retried (503), naming the key, not dead-lettered at once
    r = client.post("/v1/banks/vcb/keys", json={"key_id": "2", "sign_webhooks": True}, headers=op)
    assert r.status_code == 200 and r.get_json()["signing_key_id"] == "2"
    hooks.status = 401
    r = fire(client, rt.settings, b["id"], 2)
    assert r.status_code == 503 and "key 2" in r.get_json()["detail"], r.get_data(as_text=True)
    # long after the switch a 401 is the bank's final word: dead-lettered, still naming the key
    long_ago = transfers.iso(transfers.now() - timedelta(days=3))

    def aged(item):
        item.data["signing_since"] = long_ago
        for k in item.data["keys"]:
            k["added_at"] = long_ago if k.get("secret") else None
    models.Bank.update("vcb", None, aged)
    r = fire(client, rt.settings, b["id"], 3)
    assert r.status_code == 422 and "key 2" in r.get_json()["detail"], r.get_data(as_text=True)


# -- 2. a per-bank rate limit before the nonce is written -----------------------------------------

@pytest.mark.parametrize("partner_rate", [3])
def test_a_banks_flood_is_refused_before_its_nonces_are_written(client, setup, rt):  # noqa: F811 - imported fixtures
    """The old code had no per-bank limit: one bank's signed calls filled the nonce bucket every bank
    shares, and then every bank's signed call was a 503."""
    from store_calls import counting

    vcb, bidv = setup["vcb"], setup["bidv"]
    path = "/v1/bank/transfers/none-such-02"
    for _ in range(4):   # a forged bank name with a wrong signature spends nobody's limit
        r = vcb.call("GET", path, key="not-the-key-0123456789abcdef0123456")
        assert r.status_code == 401
    assert [vcb.call("GET", path).status_code for _ in range(3)] == [404] * 3
    with counting() as calls:
        r = vcb.call("GET", path)
    assert r.status_code == 429 and r.mimetype == "application/problem+json", r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) >= 1 and r.get_json()["detail_vi"] and problem_type(r) == "rate-limited"
    assert not calls.log, calls                          # counted in memory: no store request
    kept = asyncio.run(nonce_keys(rt.settings))
    assert len([k for k in kept if k.startswith("softatm.vcb.")]) == 3   # the refused call's nonce was not written
    assert bidv.call("GET", path).status_code == 404     # another bank is not held back


# -- 5. no enumeration of banks and key slots ---------------------------------------------------------

def test_unknown_bank_empty_slot_and_wrong_key_get_one_answer(client, setup, rt, caplog):  # noqa: F811
    """The old code answered ``unknown-key`` before the timestamp and signature checks: anyone could
    list the registered banks and their filled slots."""
    spans = telemetry.spans_in_memory()
    path = "/v1/bank/transfers/none-such-03"

    def probe(code, kid):
        h = {"X-LSCloud-Partner": code, "X-LSCloud-Key-Id": kid, "X-LSCloud-Timestamp": str(int(time.time())),
             "X-LSCloud-Nonce": f"probe-{code}-{kid}-0123456789", "X-LSCloud-Signature": "AAAA"}
        r = client.get(path, headers=h)
        assert r.status_code == 401, r.get_data(as_text=True)
        return {k: v for k, v in r.get_json().items() if k not in ("trace_id", "instance")}

    caplog.set_level("INFO", logger="lscloud.auth")
    answers = [probe(c, k) for c, k in (("vcb", "1"), ("vcb", "2"), ("bidv", "1"), ("bidv", "2"), ("agribank", "1"),
                                        ("vcb", "3"))]
    assert all(a == answers[0] for a in answers) and answers[0]["type"].endswith("bad-signature"), answers
    stale = int(time.time()) - 3600
    for code in ("vcb", "agribank"):
        r = Bank(client, code).call("GET", path, timestamp=stale)
        assert problem_type(r) == "stale-timestamp"
    # the operators' side knows why: the log and the span say it, never the key
    assert "unknown partner" in caplog.text and "empty key slot" in caplog.text and K1 not in caplog.text
    refused = [sp for sp in spans.get_finished_spans() if sp.name == "partner signature"]
    # a partner's bad signature is its 4xx, not our error: the span says why, its status unset
    assert refused and all(sp.status.status_code.name == "UNSET" for sp in refused)
    reasons = [" ".join(str(v) for v in sp.attributes.values()) for sp in refused]
    assert any(sp.attributes["lscloud.partner.refused"] == "empty key slot" and sp.attributes["lscloud.partner"] == "bidv"
               for sp in refused), reasons
    assert any(sp.attributes["lscloud.partner.refused"] == "unknown partner"
               and sp.attributes["lscloud.partner"] == "agribank" for sp in refused), reasons
    assert not [d for d in reasons if B1 in d or K2 in d]


# -- 6. the path decoded once -----------------------------------------------------------------------

def test_a_path_is_signed_decoded_once(client, setup):  # noqa: F811 - imported fixtures
    """The old code decoded the path the server had decoded already: a request sent with ``%25``
    verified as the path two decodings made of it, and one signed as sent did not."""
    day = "/v1/bank/settlements/2026-01-01"
    wire = "/v1/bank/settlements/%2532026-01-01"   # once: '%32026-01-01'; twice: '2026-01-01'
    r = client.get(wire, headers=sign_request("GET", day, b"", "vcb", "1", K1))
    assert r.status_code == 401 and problem_type(r) == "bad-signature", r.get_data(as_text=True)
    r = client.get(wire, headers=sign_request("GET", wire, b"", "vcb", "1", K1))
    assert r.status_code == 400 and problem_type(r) == "bad-day", r.get_data(as_text=True)   # verified, then judged
    # an escape the path does not need still verifies as what it decodes to (once)
    r = client.get("/v1/bank/transfers/none%2Dsuch", headers=sign_request("GET", "/v1/bank/transfers/none%2Dsuch",
                                                                            b"", "vcb", "1", K1))
    assert r.status_code == 404
