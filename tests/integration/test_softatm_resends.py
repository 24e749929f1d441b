"""Soft ATM resends and the float alert against real weed mini + nats-server: a teller's resend is
answered by the transfer it created whatever changed since (a lowered limit, a replaced bank); a
bank's code registered again is a resend or a 409 naming the fields; a bank is changed only at the
version read (If-Match required); a point below the float threshold raises ``float.low`` once per
episode, also when it never had cash to cross the threshold with."""
# ruff: noqa: F811 (the directory fixture imported from softatm_support is named as a parameter)

from __future__ import annotations

import itertools

import pytest

from functions.softatm.function import journal, ledger, models
from lscloud import runtime

from softatm_support import CCCD, K1, K2, K3, POINT, POINT2, directory  # noqa: F401

pytestmark = pytest.mark.integration

FLOAT_LOW = "vn.langson.softatm.float.low.v1"
BANK = {"code": "vcb", "name": "Vietcombank", "webhook_url": "http://127.0.0.1:9/hook", "keys": [K1, K2],
        "limits": {"per_transaction_vnd": 20_000_000, "per_customer_day_vnd": 100_000_000}}
_n = itertools.count()


@pytest.fixture
def s(start_function, directory, tmp_path, tokens):
    fn = start_function("softatm", peer_url_template=directory.template, state_dir=str(tmp_path))
    runtime.current().bus.ensure_stream()
    c = fn.app.test_client()
    op = tokens("operator", f"op-{next(_n)}")
    assert c.post("/v1/banks", json=BANK, headers=op).status_code == 201
    return {"client": c, "rt": runtime.current(), "op": op, "teller": tokens("teller", "t-1", unit=POINT),
            "teller2": tokens("teller", "t-2", unit=POINT2)}


def read_at(s, code="vcb"):
    return {**s["op"], "If-Match": s["client"].get(f"/v1/banks/{code}", headers=s["op"]).headers["ETag"]}


def deliver(s, point, amount):
    r = s["client"].post(f"/v1/points/{point}/cash-deliveries", json={"id": f"fund-{next(_n):06d}", "amount_vnd": amount},
                         headers=s["op"])
    assert r.status_code == 201, r.get_data(as_text=True)


def body(amount, tid=None):
    return {"id": tid or f"t-{next(_n):06d}-x", "bank": "vcb", "amount_vnd": amount, "account": "0011223344",
            "customer_id_number": CCCD}


def float_of(s, point=POINT):
    return s["client"].get(f"/v1/points/{point}/float", headers=s["op"]).get_json()


def alerts(s, point=None):
    return [e for e in s["rt"].bus.replay([FLOAT_LOW]) if point is None or e["data"]["point"] == point]


# -- 1. a resend is answered by the transfer it created --------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/withdrawals", "/v1/deposits"])
def test_a_resend_after_the_limit_was_lowered_gets_the_transfer_it_created(s, path):
    c = s["client"]
    deliver(s, POINT, 50_000_000)
    b = body(8_000_000)
    first = c.post(path, json=b, headers=s["teller"])
    assert first.status_code == 201, first.get_data(as_text=True)
    r = c.patch("/v1/banks/vcb", json={"limits": {"per_transaction_vnd": 5_000_000}}, headers=read_at(s))
    assert r.status_code == 200, r.get_data(as_text=True)
    again = c.post(path, json=b, headers=s["teller"])
    assert again.status_code == 201, again.get_data(as_text=True)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json()["id"] == b["id"]
    assert float_of(s)["held_vnd"] == (8_000_000 if path == "/v1/withdrawals" else 0)   # held once
    # another body under the same id is a reuse (naming the field), not a judgement of the new amount
    other = c.post(path, json={**b, "amount_vnd": 9_000_000}, headers=s["teller"])
    assert other.status_code == 409 and other.get_json()["type"].endswith("idempotency-key-reused")
    assert [e["field"] for e in other.get_json()["errors"]] == ["/amount_vnd"]
    # a fresh create is judged by the limits of the moment
    fresh = c.post(path, json=body(8_000_000), headers=s["teller"])
    assert fresh.status_code == 422 and fresh.get_json()["type"].endswith("transaction-limit")


def test_a_resend_after_the_bank_was_replaced_gets_the_transfer_it_created(s):
    c = s["client"]
    deliver(s, POINT, 50_000_000)
    b = body(3_000_000)
    assert c.post("/v1/withdrawals", json=b, headers=s["teller"]).status_code == 201
    item = models.Bank("vcb")
    item.refresh()
    item.delete()   # what replacing a registration outright does first (banks.upsert)
    again = c.post("/v1/withdrawals", json=b, headers=s["teller"])
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true", again.get_data(as_text=True)
    fresh = c.post("/v1/withdrawals", json=body(3_000_000), headers=s["teller"])
    assert fresh.status_code == 404 and fresh.get_json()["type"].endswith("unknown-bank")


def test_a_refusal_for_want_of_cash_is_not_judged_again_by_a_resend(s):
    """Admission's answers (float, daily limit) are stored with the transfer: cash delivered since
    does not turn a refused transfer's resend into a withdrawal nobody holds cash for."""
    c = s["client"]
    b = body(3_000_000)
    first = c.post("/v1/withdrawals", json=b, headers=s["teller2"])
    assert first.status_code == 409 and first.get_json()["type"].endswith("insufficient-float")
    deliver(s, POINT2, 50_000_000)
    again = c.post("/v1/withdrawals", json=b, headers=s["teller2"])
    assert again.status_code == 409 and again.get_json()["type"].endswith("insufficient-float")
    assert again.headers["Idempotent-Replayed"] == "true" and float_of(s, POINT2)["held_vnd"] == 0


# -- 2. a bank's code registered again --------------------------------------------------------------------

def test_a_code_registered_again_is_a_resend_or_a_reuse_naming_the_fields(s):
    c, op = s["client"], s["op"]
    again = c.post("/v1/banks", json=BANK, headers=op)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["code"] == "vcb" and again.get_json()["name"] == "Vietcombank"
    for change, fields in (({"name": "Vietcombank 2"}, ["/name"]),
                           ({"keys": [K1, K3]}, ["/keys/1"]),
                           ({"keys": [K1]}, ["/keys/1"]),
                           ({"limits": {"per_transaction_vnd": 1_000_000}},
                            ["/limits/per_customer_day_vnd", "/limits/per_transaction_vnd"]),
                           ({"webhook_url": "http://127.0.0.1:9/other", "name": "VCB"}, ["/name", "/webhook_url"])):
        r = c.post("/v1/banks", json={**BANK, **change}, headers=op)
        assert r.status_code == 409 and r.mimetype == "application/problem+json", r.get_data(as_text=True)
        problem = r.get_json()
        assert problem["type"].endswith("idempotency-key-reused") and problem["detail_vi"], problem
        assert [e["field"] for e in problem["errors"]] == fields, (change, problem)
        for secret in (K1, K2, K3, "Vietcombank 2", "/other"):
            assert secret not in r.get_data(as_text=True)
    # nothing was changed by them
    assert c.get("/v1/banks/vcb", headers=op).get_json()["name"] == "Vietcombank"
    # the defaults, sent or left out, are the same registration
    bidv = {"code": "bidv", "name": "BIDV", "webhook_url": "http://127.0.0.1:9/hook", "keys": [K3]}
    assert c.post("/v1/banks", json=bidv, headers=op).status_code == 201
    r = c.post("/v1/banks", json={**bidv, "limits": {"per_transaction_vnd": 20_000_000}}, headers=op)
    assert r.status_code == 201 and r.headers["Idempotent-Replayed"] == "true"


# -- 3. a bank changes only at the version read ------------------------------------------------------------

def test_a_change_without_if_match_is_refused_and_changes_nothing(s):
    c, op = s["client"], s["op"]
    seen = c.get("/v1/banks/vcb", headers=op)
    r = c.patch("/v1/banks/vcb", json={"webhook_url": "http://127.0.0.1:9/b-hook"}, headers=read_at(s))
    assert r.status_code == 200
    stale = c.patch("/v1/banks/vcb", json={"webhook_url": "http://127.0.0.1:9/a-hook"}, headers=op)
    assert stale.status_code == 428 and stale.mimetype == "application/problem+json", stale.get_data(as_text=True)
    assert [e["field"] for e in stale.get_json()["errors"]] == ["If-Match"] and stale.get_json()["detail_vi"]
    r = c.patch("/v1/banks/vcb", json={"webhook_url": "http://127.0.0.1:9/a-hook"},
                headers={**op, "If-Match": seen.headers["ETag"]})
    assert r.status_code == 412 and r.get_json()["errors"][0]["field"] == "If-Match"
    assert c.get("/v1/banks/vcb", headers=op).get_json()["webhook_url"] == "http://127.0.0.1:9/b-hook"
    doc = c.get("/openapi.json").get_json()["paths"]["/v1/banks/{code}"]["patch"]
    assert "428" in doc["responses"] and "412" in doc["responses"]


# -- 4. float.low once per episode -------------------------------------------------------------------------

def test_a_point_that_never_had_cash_raises_float_low_once_when_it_refuses(s):
    c = s["client"]
    assert alerts(s) == []
    for _ in range(3):
        r = c.post("/v1/withdrawals", json=body(1_000_000), headers=s["teller2"])
        assert r.status_code == 409 and r.get_json()["type"].endswith("insufficient-float")
    got = alerts(s)
    assert [(e["data"]["point"], e["data"]["cash_vnd"], e["data"]["threshold_vnd"]) for e in got] == \
        [(POINT2, 0, 10_000_000)], got
    # a delivery that leaves it below is the same episode; another replica names it the same
    deliver(s, POINT2, 4_000_000)
    journal._raised.clear()
    journal.JOURNAL.tails = ledger.Tails()   # nor what it read of the journal
    assert c.post("/v1/withdrawals", json=body(5_000_000), headers=s["teller2"]).status_code == 409
    assert [e["id"] for e in alerts(s)] == [got[0]["id"]]


def test_a_delivery_leaving_a_point_below_the_threshold_raises_float_low(s):
    deliver(s, POINT2, 4_000_000)
    got = alerts(s)
    assert [(e["data"]["point"], e["data"]["cash_vnd"]) for e in got] == [(POINT2, 4_000_000)], got


def test_each_episode_below_the_threshold_raises_float_low_once(s):
    c = s["client"]
    deliver(s, POINT, 30_000_000)
    assert alerts(s) == []
    w = body(19_000_000)
    assert c.post("/v1/withdrawals", json=w, headers=s["teller"]).status_code == 201   # crosses: 11M -> no
    assert alerts(s) == []
    assert c.post("/v1/withdrawals", json=body(5_000_000), headers=s["teller"]).status_code == 201   # 6M: crosses
    assert [e["data"]["cash_vnd"] for e in alerts(s)] == [6_000_000]
    assert c.post("/v1/withdrawals", json=body(7_000_000), headers=s["teller"]).status_code == 409   # refused: same
    deliver(s, POINT, 1_000_000)                                                                     # 7M: same
    assert len(alerts(s)) == 1
    r = c.post(f"/v1/transfers/{w['id']}/abort", json={"reason": "customer left"}, headers=s["teller"])
    assert r.status_code == 200, r.get_data(as_text=True)                                            # 26M: over
    assert c.post("/v1/withdrawals", json=body(18_000_000), headers=s["teller"]).status_code == 201  # 8M: again
    got = alerts(s)
    assert [e["data"]["cash_vnd"] for e in got] == [6_000_000, 8_000_000] and got[0]["id"] != got[1]["id"]
    assert c.get("/v1/ledger/verify", headers=s["op"]).get_json()["ok"]
