"""The soft ATM through its Flask app against real weed mini + nats-server: both flows end to end,
resends (same body / different body), expiry, the float under racing threads, signatures through the
bank endpoints, settlement and reconciliation, and every endpoint x every role."""
# ruff: noqa: F811 (the directory fixture imported from softatm_support is named as a parameter)

from __future__ import annotations

import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from functions.softatm.function import banks, journal, ledger, models, transfers
from lscloud import errors, events, runtime
from lscloud.auth import delivery_headers, sign_request
from lscloud.config import ConfigError

import role_matrix
from softatm_support import CCCD, K1, K2, K3, POINT, POINT2, directory  # noqa: F401

pytestmark = pytest.mark.integration

B1 = "bidv-key-one-0123456789abcdef012345678"
_n = itertools.count()


@pytest.fixture
def expiry_s() -> str:
    """SOFTATM_EXPIRY_S of the function under test (a test parametrizes it to change it)."""
    return "300"


@pytest.fixture
def fn(start_function, directory, tmp_path, expiry_s):
    """The soft ATM started as Knative starts it, its directory a stand-in, its bank keys under tmp_path."""
    instance = start_function("softatm", peer_url_template=directory.template, state_dir=str(tmp_path),
                              function_env={"SOFTATM_EXPIRY_S": expiry_s})
    runtime.current().bus.ensure_stream()
    return instance


@pytest.fixture
def rt(fn):
    return runtime.current()


@pytest.fixture
def app(fn):
    return fn.app


@pytest.fixture
def client(app):
    return app.test_client()


def tok(tokens, role, unit=None):
    return tokens(role, f"{role}-{next(_n)}", unit=unit)


class Bank:
    def __init__(self, client, code="vcb", key_id="1", key=K1):
        self.client, self.code, self.key_id, self.key = client, code, key_id, key

    def call(self, method, path, body=None, *, key_id=None, key=None, headers=None, timestamp=None):
        raw = b"" if body is None else json.dumps(body).encode()
        h = headers or sign_request(method, path, raw, self.code, key_id or self.key_id, key or self.key,
                                    timestamp=timestamp)
        return self.client.open(path, method=method, data=raw or None, headers=h,
                                content_type="application/json" if raw else None)


@pytest.fixture
def setup(client, tokens):
    op = tok(tokens, "operator")
    r = client.post("/v1/banks", json={"code": "vcb", "name": "Vietcombank", "webhook_url": "http://127.0.0.1:9/hook",
                                      "keys": [K1, K2], "limits": {"per_transaction_vnd": 10_000_000,
                                                                    "per_customer_day_vnd": 15_000_000}}, headers=op)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert K1 not in r.get_data(as_text=True) and K2 not in r.get_data(as_text=True)
    r = client.post("/v1/banks", json={"code": "bidv", "name": "BIDV", "webhook_url": "http://127.0.0.1:9/hook",
                                      "keys": [B1]}, headers=op)
    assert r.status_code == 201
    r = client.post(f"/v1/points/{POINT}/cash-deliveries", json={"id": "fund-0001", "amount_vnd": 50_000_000}, headers=op)
    assert r.status_code == 201, r.get_data(as_text=True)
    return {"op": op, "teller": tok(tokens, "teller", POINT), "teller2": tok(tokens, "teller", POINT2),
            "vcb": Bank(client), "bidv": Bank(client, "bidv", "1", B1)}


class Hooks:
    """A bank's webhook endpoint on loopback: each webhook as (signed with K1, body, traceparent),
    answered with ``status``."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from lscloud.auth import _mac, canonical

        self.got, self.status = [], 200
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                ok = _mac(K1, canonical("POST", self.path, self.headers["X-LSCloud-Timestamp"],
                                        self.headers["X-LSCloud-Nonce"], raw)) == self.headers["X-LSCloud-Signature"]
                hooks.got.append((ok, json.loads(raw), self.headers.get("traceparent")))
                self.send_response(hooks.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?bank=vcb"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hooks(client, setup):
    """vcb's webhooks go to a :class:`Hooks` endpoint: its address changed as an operator does."""
    h = Hooks()
    r = client.patch("/v1/banks/vcb", json={"webhook_url": h.url}, headers=read_at(client, setup["op"]))
    assert r.status_code == 200 and r.get_json()["webhook_url"] == h.url, r.get_data(as_text=True)
    yield h
    h.server.shutdown()


def read_at(client, op, code="vcb"):
    """``op``'s headers with If-Match: the bank's version as read now (a change names the version it read)."""
    return {**op, "If-Match": client.get(f"/v1/banks/{code}", headers=op).headers["ETag"]}


def wbody(amount=2_000_000, account="0011223344", bank="vcb", tid=None):
    return {"id": tid or f"w-{next(_n):06d}-x", "bank": bank, "amount_vnd": amount, "account": account,
            "customer_id_number": CCCD}


def transfer_event(tid, state="RECEIVED", *, id=None, amount=2_000_000):
    """A transfer fact as the soft ATM publishes it (its data keeps schemas/events/softatm/transfer.*.json:
    /events refuses what does not); the webhook is made from the stored transfer, not from this."""
    return events.new_event(f"vn.langson.softatm.transfer.{state.lower()}.v1", "/softatm", {
        "transfer_id": tid, "kind": "withdrawal", "state": state, "bank": "vcb", "point": POINT, "unit_code": None,
        "amount_vnd": amount, "abort_reason": None}, id=id or f"{tid}.{state}")


def float_of(client, s, point=POINT):
    return client.get(f"/v1/points/{point}/float", headers=s["op"]).get_json()


def test_withdrawal_end_to_end_and_the_ledger(client, setup, rt):
    s = setup
    b = wbody()
    r = client.post("/v1/withdrawals", json=b, headers=s["teller"])
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["state"] == "RECEIVED" and r.get_json()["customer_id_number"] == "020******234"
    assert float_of(client, s) == {"point": POINT, "cash_vnd": 48_000_000, "held_vnd": 2_000_000}
    # cash only after the bank reserved
    r = client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"])
    assert r.status_code == 409 and r.get_json()["current_state"] == "RECEIVED"
    r = s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-1"})
    assert r.status_code == 200 and r.get_json()["state"] == "RESERVED"
    again = s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    other = s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-2"})
    assert other.status_code == 409 and other.get_json()["errors"][0]["field"] == "/bank_reference"
    r = client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"])
    assert r.status_code == 200 and r.get_json()["state"] == "COMMITTED"
    assert float_of(client, s) == {"point": POINT, "cash_vnd": 48_000_000, "held_vnd": 0}
    # no reversal
    r = client.post(f"/v1/transfers/{b['id']}/abort", json={"reason": "oops"}, headers=s["op"])
    assert r.status_code == 409
    report = client.get("/v1/ledger/verify", headers=s["op"]).get_json()
    assert report["ok"], report
    assert report["balances"]["bank:vcb"] == 2_000_000 and report["balances"]["vnpost:vault"] == -50_000_000
    # events for the IOC carry no customer data
    evs = [e["event"] for e in __import__("lscloud.delivery", fromlist=["tail"]).tail(rt.settings, 50)]
    mine = [e for e in evs if e.get("subject") == b["id"]]
    assert [e["type"].split(".")[4] for e in mine] == ["received", "reserved", "committed"]
    assert all("account" not in e["data"] and "customer_id_number" not in e["data"] for e in mine)
    assert mine[0]["data"]["unit_code"] == "06040"


def test_resend_same_body_and_different_body(client, setup):
    s = setup
    b = wbody()
    first = client.post("/v1/withdrawals", json=b, headers=s["teller"])
    again = client.post("/v1/withdrawals", json=b, headers=s["teller"])
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    diff = client.post("/v1/withdrawals", json={**b, "amount_vnd": 3_000_000, "account": "0011223345"},
                       headers=s["teller"])
    assert diff.status_code == 409 and diff.get_json()["type"].endswith("idempotency-key-reused")
    assert [e["field"] for e in diff.get_json()["errors"]] == ["/account", "/amount_vnd"]
    # names only: neither the first request's customer data nor the caller's own values come back
    for value in (b["account"], str(b["amount_vnd"]), b["customer_id_number"], "0011223345", "3000000"):
        assert value not in diff.get_data(as_text=True)
    assert float_of(client, s)["held_vnd"] == 2_000_000   # held once
    # a teller at another point sending the same id learns nothing of this customer: the fields
    # that differ would tell a guessed CCCD, account or phone from a wrong one
    for guess in (b, {**b, "customer_id_number": "001099000001"}, {**b, "account": "9999999999"}):
        other = client.post("/v1/withdrawals", json=guess, headers=s["teller2"])
        assert other.status_code == 409 and [e["field"] for e in other.get_json()["errors"]] == ["/id"], \
            other.get_data(as_text=True)


def test_deposit_grows_the_float_only_on_commit(client, setup):
    s = setup
    d = {**wbody(5_000_000), "id": f"d-{next(_n):06d}-x"}
    r = client.post("/v1/deposits", json=d, headers=s["teller"])
    assert r.status_code == 201
    assert float_of(client, s)["cash_vnd"] == 50_000_000
    r = s["vcb"].call("POST", f"/v1/bank/deposits/{d['id']}/confirm", {"bank_reference": "C-1"})
    assert r.status_code == 200 and r.get_json()["state"] == "COMMITTED"
    assert float_of(client, s)["cash_vnd"] == 55_000_000
    # the bank cannot confirm a withdrawal route with a deposit id
    assert s["vcb"].call("POST", f"/v1/bank/withdrawals/{d['id']}/reserve", {}).status_code == 404


def test_limits_and_insufficient_float(client, setup):
    s = setup
    r = client.post("/v1/withdrawals", json=wbody(11_000_000), headers=s["teller"])
    assert r.status_code == 422 and r.get_json()["type"].endswith("transaction-limit")
    ok = client.post("/v1/withdrawals", json=wbody(9_000_000, "0099887766"), headers=s["teller"])
    assert ok.status_code == 201
    over = client.post("/v1/withdrawals", json=wbody(7_000_000, "0099887766"), headers=s["teller"])
    assert over.status_code == 409 and over.get_json()["type"].endswith("daily-limit")
    assert over.get_json()["transfer"]["state"] == "ABORTED"
    # BIDV (default limits) at the second point, which holds no cash
    poor = client.post("/v1/withdrawals", json=wbody(1_000_000, bank="bidv"), headers=s["teller2"])
    assert poor.status_code == 409 and poor.get_json()["type"].endswith("insufficient-float")
    assert client.get("/v1/ledger/verify", headers=s["op"]).get_json()["ok"]


def test_the_daily_limit_is_decided_by_the_counter_as_stored_not_as_remembered(client, setup):
    """The daily counter is written without a read, from what this process last wrote: another
    replica's count since makes that write fail and the limit is checked against the store; room
    freed elsewhere (an abort) is counted on, not refused from the remembered copy."""
    from functions.softatm.function import limits

    s = setup
    first = wbody(5_000_000, "0055667788")
    assert client.post("/v1/withdrawals", json=first, headers=s["teller"]).status_code == 201
    key = limits.daily_key(models.Transfer.get(first["id"]).data)

    def elsewhere(item):   # another replica counts 9,000,000 more of the same customer's day
        item.used = {**item.used, "w-elsewhere-1": 9_000_000}

    models.CustomerDay.update(key, None, elsewhere)
    over = client.post("/v1/withdrawals", json=wbody(2_000_000, "0055667788"), headers=s["teller"])
    assert over.status_code == 409 and over.get_json()["type"].endswith("daily-limit"), over.get_json()

    def freed(item):   # ... then both are taken out again (aborted there)
        item.used = {}

    models.CustomerDay.update(key, None, freed)
    again = client.post("/v1/withdrawals", json=wbody(9_000_000, "0055667788"), headers=s["teller"])
    assert again.status_code == 201, again.get_json()
    assert models.CustomerDay.get(key).used == {again.get_json()["id"]: 9_000_000}
    # this process remembers 9,000,000 counted; another replica's abort takes it out: a count the
    # remembered copy would refuse (9 + 9 > 15 million) is decided by the stored counter
    models.CustomerDay.update(key, None, freed)
    last = client.post("/v1/withdrawals", json=wbody(9_000_000, "0055667788"), headers=s["teller"])
    assert last.status_code == 201, last.get_json()
    assert models.CustomerDay.get(key).used == {last.get_json()["id"]: 9_000_000}


@pytest.mark.parametrize("expiry_s", ["1"])
def test_unreserved_transfers_expire_reserved_ones_not_yet(client, setup):
    """A reservation has its own, later deadline (test_softatm_reserved_expiry.py)."""
    s = setup
    a, b = wbody(1_000_000), wbody(1_000_000)
    for x in (a, b):
        assert client.post("/v1/withdrawals", json=x, headers=s["teller"]).status_code == 201
    assert s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {}).status_code == 200
    time.sleep(1.3)
    r = s["vcb"].call("POST", f"/v1/bank/withdrawals/{a['id']}/reserve", {})
    assert r.status_code == 409
    assert client.get(f"/v1/transfers/{a['id']}", headers=s["op"]).get_json()["abort_reason"] == "expired"
    client.post("/v1/sweep", headers=s["op"])
    assert client.get(f"/v1/transfers/{b['id']}", headers=s["op"]).get_json()["state"] == "RESERVED"
    assert float_of(client, s)["held_vnd"] == 1_000_000
    r = client.post(f"/v1/transfers/{b['id']}/abort", json={"reason": "customer left"}, headers=s["teller"])
    assert r.get_json()["state"] == "ABORTED" and float_of(client, s) == {"point": POINT, "cash_vnd": 50_000_000,
                                                                          "held_vnd": 0}


@pytest.mark.parametrize("expiry_s", ["1"])
def test_withdrawals_reserved_and_never_finished_do_not_keep_the_sweep_from_the_rest(client, setup):
    """The open index is in the bank's deadline order and a reserved withdrawal stays open until its
    own, later deadline: read from the front every time with a limit, enough abandoned ones (here
    two, the limit) kept a later transfer from being expired. The sweep goes on from where it stopped."""
    from functions.softatm.function import sweep

    s = setup
    a, b, c = wbody(1_000_000), wbody(1_000_000), wbody(1_000_000)
    for x in (a, b, c):
        assert client.post("/v1/withdrawals", json=x, headers=s["teller"]).status_code == 201
    for x in (a, b):   # reserved, and the teller never commits nor aborts
        assert s["vcb"].call("POST", f"/v1/bank/withdrawals/{x['id']}/reserve", {}).status_code == 200
    time.sleep(1.3)
    sweep._cursor[0] = None
    for _ in range(3):
        sweep.sweep(limit=2)
    assert models.Transfer.get(c["id"]).data["state"] == "ABORTED"
    assert [models.Transfer.get(x["id"]).data["state"] for x in (a, b)] == ["RESERVED", "RESERVED"]


@pytest.mark.parametrize("variable, value", [("SOFTATM_EXPIRY_S", "soon"), ("SOFTATM_EXPIRY_S", "0"),
                                             ("SOFTATM_FLOAT_LOW_VND", "-1"), ("SOFTATM_SWEEP_S", "often")])
def test_a_bad_setting_stops_the_start_naming_its_variable(start_function, directory, variable, value):
    with pytest.raises(ConfigError, match=variable):
        start_function("softatm", peer_url_template=directory.template, function_env={variable: value})


def test_threads_racing_withdrawals_never_overdraw_the_point(client, app, setup):
    s = setup
    results = []

    def one(i):
        c = app.test_client()
        r = c.post("/v1/withdrawals", json=wbody(4_000_000, f"00112{i:05d}"), headers=s["teller"])
        results.append(r.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201] * 12 + [409] * 4   # 50M holds twelve 4M withdrawals
    f = float_of(client, s)
    assert f == {"point": POINT, "cash_vnd": 2_000_000, "held_vnd": 48_000_000}
    assert client.get("/v1/ledger/verify", headers=s["op"]).get_json()["ok"]


def test_journal_writers_that_read_the_same_head_are_decided_by_the_create_only_append(rt):
    """The store journal under a forced interleaving: every writer holds at its first append
    until all have read the same head, so only S3's If-None-Match can keep them apart."""
    point, refs = "bd-lockstep", ["s0", "s1", "s2", "s3", "s0"]
    gate, first = threading.Barrier(len(refs), timeout=60), threading.local()

    class Lockstep(journal.StoreJournal):
        def append(self, point, seq, entry):
            if getattr(first, "waits", False):
                first.waits = False
                gate.wait()
            return super().append(point, seq, entry)

    lockstep = Lockstep()
    ledger.apply(lockstep, ledger.movement("delivery", point, 1_000_000, ref="fund"))
    results = {}

    def one(i):
        first.waits = True
        try:
            results[i] = ledger.apply(lockstep, ledger.movement("hold", point, 300_000, ref=refs[i], bank_code="vcb"))
        except ledger.Insufficient as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(refs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not gate.broken
    stored = [e["movement"]["id"] for e in ledger.entries(lockstep, point)][1:]
    told_new = [f"{refs[i]}:hold" for i, r in results.items() if isinstance(r, ledger.Applied) and r.new]
    assert sorted(told_new) == sorted(stored) and len(set(stored)) == len(stored) == 3
    b = ledger.balances(lockstep, point)
    assert b[ledger.held(point)] == 900_000 and b[ledger.cash(point)] == 100_000
    assert ledger.verify(lockstep, [point])["ok"]


# -- signatures through the bank endpoints ------------------------------------------------------------

def test_signatures(client, setup):
    s = setup
    b = wbody()
    client.post("/v1/withdrawals", json=b, headers=s["teller"])
    path = f"/v1/bank/transfers/{b['id']}"
    assert s["vcb"].call("GET", path).status_code == 200
    assert s["vcb"].call("GET", path, key_id="2", key=K2).status_code == 200
    # tampered body
    raw = json.dumps({"bank_reference": "A"}).encode()
    h = sign_request("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", raw, "vcb", "1", K1)
    r = client.post(f"/v1/bank/withdrawals/{b['id']}/reserve", data=json.dumps({"bank_reference": "B"}), headers=h,
                    content_type="application/json")
    assert r.status_code == 401 and r.get_json()["type"].endswith("bad-signature")
    # wrong key, skewed clock, replayed nonce, unknown key id
    r = s["vcb"].call("GET", path, key="not-the-key-0123456789abcdef0123456")
    assert r.status_code == 401 and r.get_json()["type"].endswith("bad-signature")
    r = s["vcb"].call("GET", path, timestamp=int(time.time()) - 3600)
    assert r.status_code == 401 and r.get_json()["type"].endswith("stale-timestamp")
    # a 400-digit timestamp overflowed the window's comparison: a 500 before any secret was needed
    huge = {**sign_request("GET", path, b"", "vcb", "1", K1), "X-LSCloud-Timestamp": "1" + "0" * 400}
    r = client.get(path, headers=huge)
    assert r.status_code == 401 and r.get_json()["type"].endswith("stale-timestamp")
    h = sign_request("GET", path, b"", "vcb", "1", K1)
    assert client.get(path, headers=h).status_code == 200
    r = client.get(path, headers=h)
    assert r.status_code == 401 and r.get_json()["type"].endswith("replayed-nonce")
    # old key after rotation (into the slot that does not sign our webhooks)
    r = client.post("/v1/banks/vcb/keys", json={"key_id": "2", "secret": K3}, headers=s["op"])
    assert r.status_code == 200 and K3 not in r.get_data(as_text=True)
    r = s["vcb"].call("GET", path, key_id="2", key=K2)
    assert r.status_code == 401 and r.get_json()["type"].endswith("bad-signature")
    assert s["vcb"].call("GET", path, key_id="2", key=K3).status_code == 200
    assert s["vcb"].call("GET", path).status_code == 200
    # another bank sees nothing of it
    assert s["bidv"].call("GET", path).status_code == 404
    assert s["bidv"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {}).status_code == 404


def test_a_key_read_overtaken_by_a_rotation_here_is_not_kept(setup, client, rt, monkeypatch):
    """A read of a bank's keys answered before a rotation made on this replica, and held after it,
    put the rotated-out secret back for the reference bound: still accepted by the replica that
    rotated it."""
    from functions.softatm.function import banks, models

    objects = rt.objects
    objects._reference.drop(models.Bank.located("vcb"))   # the next read asks the store
    real_load = objects._get_if_changed
    answered, rotated = threading.Event(), threading.Event()

    def slow_load(*a):
        got = real_load(*a)   # read before the rotation below
        if not answered.is_set():
            answered.set()
            rotated.wait(5)
        return got

    monkeypatch.setattr(objects, "_get_if_changed", slow_load)
    before: list = []
    reader = threading.Thread(target=lambda: before.append(banks.key_slots(rt.settings, "vcb")))
    reader.start()
    answered.wait(5)
    r = client.post("/v1/banks/vcb/keys", json={"key_id": "1", "secret": K3, "sign_webhooks": True},
                    headers=setup["op"])
    assert r.status_code == 200
    rotated.set()
    reader.join(5)
    assert before and before[0][0] in (K1, K3)   # the read answered what it read, or read again
    assert banks.key_slots(rt.settings, "vcb")[0] == K3   # and did not keep it


def test_secrets_are_encrypted_at_rest(setup, rt):
    objects, bucket = rt.objects, rt.settings.bucket
    stored = [objects.get(bucket, i.key).body for i in objects.list(bucket, "softatm-banks/")]
    assert stored and all(K1.encode() not in x and K2.encode() not in x for x in stored)


def test_settlement_and_reconciliation(client, setup):
    s = setup
    ids = []
    for amount in (1_000_000, 2_000_000):
        b = wbody(amount)
        client.post("/v1/withdrawals", json=b, headers=s["teller"])
        s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {})
        client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"])
        ids.append((b["id"], amount))
    d = {**wbody(500_000), "id": f"d-{next(_n):06d}-y"}
    client.post("/v1/deposits", json=d, headers=s["teller"])
    s["vcb"].call("POST", f"/v1/bank/deposits/{d['id']}/confirm", {})
    day = client.get(f"/v1/transfers/{d['id']}", headers=s["op"]).get_json()["committed_at"]
    from datetime import datetime
    from zoneinfo import ZoneInfo
    day = datetime.fromisoformat(day.replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d")
    rep = s["vcb"].call("GET", f"/v1/bank/settlements/{day}").get_json()
    assert rep["net_position_vnd"] == 2_500_000 and rep["count"] == 3
    # a day to come has nothing to settle (each one asked for stored a report); the year 9999's was a 500
    from datetime import date, timedelta
    for later in ((date.fromisoformat(day) + timedelta(days=2)).isoformat(), "9999-12-31"):
        r = s["vcb"].call("GET", f"/v1/bank/settlements/{later}")
        assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "day", (later, r.get_json())
    csv = s["vcb"].call("GET", f"/v1/bank/settlements/{day}?format=csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv" and ids[0][0] in csv.get_data(as_text=True)
    mine = [{"id": t, "kind": "withdrawal", "amount_vnd": a} for t, a in ids]
    mine[1]["amount_vnd"] += 1000
    mine.append({"id": "w-not-ours-1", "kind": "withdrawal", "amount_vnd": 1000})
    r = s["vcb"].call("POST", "/v1/bank/reconciliations", {"id": "rec-000001", "day": day, "transfers": mine})
    assert r.status_code == 201
    probs = {(m["transfer_id"], m["problem"]) for m in r.get_json()["mismatches"]}
    assert probs == {(ids[1][0], "amount_vnd-differs"), ("w-not-ours-1", "only-bank"), (d["id"], "only-ours")}
    again = s["vcb"].call("POST", "/v1/bank/reconciliations", {"id": "rec-000001", "day": day, "transfers": mine[:1]})
    assert again.status_code == 409

    # a bank reconciling again reads only what committed since: a committed transfer is final
    from functions.softatm.function import models, settlement

    read, real = [], models.Transfer.get.__func__
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(models.Transfer, "get", classmethod(lambda cls, *a, **k: read.append(a[0]) or real(cls, *a, **k)))
        later = {**wbody(3_000_000), "id": f"w-{next(_n):06d}-later"}
        client.post("/v1/withdrawals", json=later, headers=s["teller"])
        s["vcb"].call("POST", f"/v1/bank/withdrawals/{later['id']}/reserve", {})
        client.post(f"/v1/withdrawals/{later['id']}/commit", json={}, headers=s["teller"])
        read.clear()
        ours = settlement.committed("vcb", day)
    assert read == [later["id"]]
    assert [o["id"] for o in ours if o["id"] in {t for t, _ in ids} | {later["id"]}] == [ids[0][0], ids[1][0], later["id"]]
    assert {o["id"]: o["amount_vnd"] for o in ours}[later["id"]] == 3_000_000
    r = s["vcb"].call("POST", "/v1/bank/reconciliations", {"id": "rec-000002", "day": day,
                                                            "transfers": mine[:2] + [{"id": later["id"], "kind": "withdrawal",
                                                                                      "amount_vnd": 3_000_000}]})
    assert {(m["transfer_id"], m["problem"]) for m in r.get_json()["mismatches"]} == \
        {(ids[1][0], "amount_vnd-differs"), (d["id"], "only-ours")}
    listing = s["vcb"].call("GET", f"/v1/bank/transfers?from={day}&to={day}").get_json()
    assert {i["id"] for i in listing["items"]} >= {t for t, _ in ids}
    assert all(i["bank"] == "vcb" for i in listing["items"])

    # a replica holds the latest two days' committed transfers (account and phone numbers among
    # their fields), not weeks of them: another day asked for does not push today out, older go
    settlement.committed("vcb", "2020-01-01")
    assert day in settlement._settled_days and len(settlement._settled_days) <= settlement.KEEP_DAYS
    for older in ("2099-01-01", "2099-01-02"):
        settlement.committed("vcb", older)
    assert sorted(settlement._settled_days) == ["2099-01-01", "2099-01-02"]


# -- every endpoint x every role -------------------------------------------------------------------

def test_a_banks_transfer_list_comes_a_page_at_a_time_over_days(client, setup):
    """GET /v1/bank/transfers read every entry of every day of up to 31, then each transfer one after
    another, into one answer (a month of a bank's transfers). It pages now, across days, in order."""
    from datetime import date, timedelta

    from functions.softatm.function.models import BankDay
    from lscloud.workdays import local_day
    from store_calls import counting

    s = setup
    made = []
    for amount in (100_000, 200_000, 300_000):
        b = wbody(amount)
        assert client.post("/v1/withdrawals", json=b, headers=s["teller"]).status_code == 201
        made.append(b["id"])
    # the bank's days are the province's (its [:10] is the UTC date: the day before from 00:00 to 07:00 here)
    today = date.fromisoformat(local_day(client.get(f"/v1/transfers/{made[0]}", headers=s["op"]).get_json()["created_at"]))
    # the same transfers listed on the day before as well: a period of two days, five entries
    earlier = (today - timedelta(days=1)).isoformat()
    for n, tid in enumerate(made[:2]):
        BankDay(f"vcb_{earlier}", f"{n:016d}_{tid}", transfer_id=tid).save()
    pages, token = [], None
    while True:
        q = f"/v1/bank/transfers?from={earlier}&to={today.isoformat()}&limit=2" + (f"&page_token={token}" if token else "")
        with counting() as calls:
            body = s["vcb"].call("GET", q).get_json()
        read = [k for k in calls.keys_of("get") if k.startswith("softatm-transfers/")]
        assert len(read) <= 2 and len(body["items"]) <= 2, calls   # only the page's transfers are read
        pages.append([i["id"] for i in body["items"]])
        token = body["next_page_token"]
        if not token:
            break
    listed = [i for p in pages for i in p]
    assert listed[:2] == made[:2] and [i for i in listed[2:] if i in made] == made and len(listed) == 5
    bad = s["vcb"].call("GET", f"/v1/bank/transfers?from={earlier}&page_token=not-a-position")
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "page_token"
    # a period of at most 31 local days, as documented (32 passed)
    month = date(2026, 1, 1)
    assert s["vcb"].call("GET", f"/v1/bank/transfers?from={month}&to=2026-01-31").status_code == 200
    too_long = s["vcb"].call("GET", f"/v1/bank/transfers?from={month}&to=2026-02-01")
    assert too_long.status_code == 400 and too_long.get_json()["errors"][0]["field"] == "to"


def test_a_resend_of_a_delivery_over_the_float_limit_is_refused_as_the_first(client, setup, monkeypatch):
    """The float limit was checked after the id's claim, and only by the first run: a resend that
    came while the first was recording its refusal skipped the check and moved the cash, while the
    operation's record said refused."""
    from functions.softatm.function import journal
    from functions.softatm.function.models import CashOperation

    op, moved = setup["op"], []
    body = {"id": "fund-over-0001", "amount_vnd": 190_000_000}   # 50 M held already, the limit is 200 M
    real_save, real_move = CashOperation.save, journal.move
    resent = []

    def save_then_resend(self, *args, **kwargs):
        out = real_save(self, *args, **kwargs)
        if self.id == body["id"] and not resent:   # the resend arrives just after the first run's claim
            resent.append(client.post(f"/v1/points/{POINT}/cash-deliveries", json=body, headers=op))
        return out

    monkeypatch.setattr(CashOperation, "save", save_then_resend)
    monkeypatch.setattr(journal, "move", lambda *a, **k: moved.append(k.get("ref")) or real_move(*a, **k))
    first = client.post(f"/v1/points/{POINT}/cash-deliveries", json=body, headers=op)
    assert first.get_json()["type"].endswith("float-limit") and first.status_code in (409, 422)
    assert resent[0].get_json()["type"] == first.get_json()["type"] and body["id"] not in moved
    assert float_of(client, setup)["cash_vnd"] == 50_000_000


def test_a_days_settlement_kept_while_it_was_open_is_made_again_once_it_is_over(client, setup, monkeypatch):
    """A past day's report was whatever was stored, even the provisional one written while the day
    was still open (without its later commits), for good; and a provisional write could land on a
    final one."""
    from datetime import datetime, timedelta

    from functions.softatm.function import settlement
    from functions.softatm.function.models import SettlementReport
    from lscloud.workdays import TZ

    s = setup
    early = wbody(1_000_000)
    client.post("/v1/withdrawals", json=early, headers=s["teller"])
    s["vcb"].call("POST", f"/v1/bank/withdrawals/{early['id']}/reserve", {})
    client.post(f"/v1/withdrawals/{early['id']}/commit", json={}, headers=s["teller"])
    day = datetime.now(TZ).date().isoformat()
    open_day = s["vcb"].call("GET", f"/v1/bank/settlements/{day}").get_json()
    assert open_day["final"] is False and open_day["count"] == 1
    late = wbody(2_000_000)   # committed later the same day, after the provisional report was kept
    client.post("/v1/withdrawals", json=late, headers=s["teller"])
    s["vcb"].call("POST", f"/v1/bank/withdrawals/{late['id']}/reserve", {})
    client.post(f"/v1/withdrawals/{late['id']}/commit", json={}, headers=s["teller"])

    after = datetime.combine(datetime.now(TZ).date() + timedelta(days=1), datetime.min.time(), TZ) + timedelta(minutes=16)
    monkeypatch.setattr(settlement, "now", lambda: after)
    closed = s["vcb"].call("GET", f"/v1/bank/settlements/{day}").get_json()
    assert closed["final"] is True and closed["count"] == 2 and closed["net_position_vnd"] == 3_000_000
    monkeypatch.setattr(settlement, "now", lambda: after - timedelta(days=1))   # a replica a day behind
    assert s["vcb"].call("GET", f"/v1/bank/settlements/{day}").get_json() == closed
    assert SettlementReport.get("vcb", day).data["final"] is True


def test_two_first_sends_of_a_reconciliation_with_other_bodies_are_a_409_not_a_replay(client, setup, monkeypatch):
    """The send whose create lost the race answered the winner's result as its own replay, whatever
    its body: a bank reconciling one day under one id with two different books got a 200 for both."""
    from datetime import datetime

    from functions.softatm.function import settlement
    from functions.softatm.function.models import Reconciliation
    from lscloud.workdays import TZ

    s = setup
    day = datetime.now(TZ).date().isoformat()
    racer = {"id": "rec-race-01", "day": day, "transfers": [{"id": "w-theirs-1", "kind": "withdrawal", "amount_vnd": 1000}]}
    mine = {**racer, "transfers": [{"id": "w-theirs-1", "kind": "withdrawal", "amount_vnd": 2000}]}
    real = Reconciliation.save

    def racing(self, *args, **kwargs):
        if not getattr(racing, "done", False):   # the other send lands first
            racing.done = True
            assert settlement.reconcile("vcb", racer["id"], racer["day"], racer["transfers"])[1] is False
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Reconciliation, "save", racing)
    r = s["vcb"].call("POST", "/v1/bank/reconciliations", mine)
    assert r.status_code == 409 and [e["field"] for e in r.get_json()["errors"]] == ["/transfers/0/amount_vnd"]


def test_a_verification_replays_what_the_journals_grew_since_the_last_one(client, setup):
    """GET /v1/ledger/verify replayed every journal from its first entry, one read after another:
    after a year some millions of reads a request. It goes on from each point's checkpoint now (kept
    by a verification that found nothing wrong); ?full=true replays everything (an audit)."""
    from store_calls import counting

    s = setup

    def withdraw(amount):
        b = wbody(amount)
        client.post("/v1/withdrawals", json=b, headers=s["teller"])
        s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {})
        client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"])

    def verify(**q):
        with counting() as calls:
            report = client.get("/v1/ledger/verify", query_string=q, headers=s["op"]).get_json()
        return report, len([k for k in calls.keys_of("get") if k.startswith("softatm-journal/")])

    for amount in (100_000, 200_000):
        withdraw(amount)
    first, read_first = verify()
    assert first["ok"] and first["movements"] >= 5 and "checkpoints" not in first
    withdraw(300_000)   # a hold and a payout: two entries more
    again, read_again = verify()
    assert again["ok"] and again["movements"] == 2 and read_again < read_first   # the new entries, and one past each end
    whole, _ = verify(full="true")
    assert whole["ok"] and whole["movements"] == first["movements"] + 2 and whole["balances"] == again["balances"]
    assert verify()[0]["movements"] == 0


def test_every_endpoint_every_role(app, setup, keys):
    """Held to functions/softatm/access.yaml, not to @allow (tests/integration/role_matrix.py); the
    partner column with a validly signed request of a registered bank."""
    vcb = setup["vcb"]
    # {code}: a point is a post office code (banks take any code: the view answers unknown-bank)
    assert role_matrix.check(app, "softatm", keys[0], samples={"code": "bd-06040", "key_id": "2"},
                             partner=lambda method, path: vcb.call(method, path)) > 300


def test_webhook_handler_signs_and_classifies(rt, client, setup, hooks):
    """The /events handler POSTs a signed webhook; 5xx -> 503 (retry), 4xx -> 422 (dead letter)."""
    b = wbody()
    client.post("/v1/withdrawals", json=b, headers=s_teller(setup))
    ev = transfer_event(b["id"], id=b["id"] + ".x")
    for status, expected in ((200, 200), (503, 503), (404, 422)):
        hooks.status = status
        e = dict(ev, id=f"{b['id']}.{status}")
        h, body = events.to_binary_http(e)
        delivery = f"00-{status:032x}-{status:016x}-01"   # the delivery's trace: the webhook continues it
        assert client.post("/events", data=body, headers={**h, **delivery_headers(rt.settings),
                                                          "traceparent": delivery}).status_code == expected
    got = hooks.got
    assert got[0][0] is True and got[0][1]["transfer"]["customer_id_number"] == CCCD   # signed over path and query
    assert got[0][1]["event_id"] == f"{b['id']}.200"
    assert [g[2][:35] for g in got] == [f"00-{s:032x}" for s in (200, 503, 404)]


# -- an operator changes a bank ------------------------------------------------------------------------

UNUSABLE_WEBHOOKS = {
    "a space": "https://bank.example/hooks/soft atm",
    "not ASCII": "https://ngân-hàng.example/hooks",
    "a line break": "https://bank.example/hooks\r\nX-Injected: 1",
    "credentials": "https://user:secret@bank.example/hooks",
    "a fragment": "https://bank.example/hooks#atm",
    "a port out of range": "https://bank.example:70000/hooks",
    "no host": "https:///hooks",
}


@pytest.mark.parametrize("why", sorted(UNUSABLE_WEBHOOKS))
def test_a_webhook_address_no_webhook_can_reach_is_refused_when_given(client, setup, why):
    """Registered, every webhook to it failed and was retried (a space, a line break) or lost what
    it held (credentials, a fragment); now it is a 422 naming the field, and nothing is written."""
    url = UNUSABLE_WEBHOOKS[why]
    r = client.post("/v1/banks", json={"code": "agribank", "name": "Agribank", "webhook_url": url, "keys": [K3]},
                    headers=setup["op"])
    assert r.status_code == 422 and r.mimetype == "application/problem+json", r.get_data(as_text=True)
    assert [e["field"] for e in r.get_json()["errors"]] == ["/webhook_url"]
    assert r.get_json()["detail_vi"] and "secret" not in r.get_data(as_text=True)
    assert client.get("/v1/banks/agribank", headers=setup["op"]).status_code == 404
    before = client.get("/v1/banks/vcb", headers=setup["op"])
    r = client.patch("/v1/banks/vcb", json={"webhook_url": url}, headers=read_at(client, setup["op"]))
    assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == ["/webhook_url"]
    after = client.get("/v1/banks/vcb", headers=setup["op"])
    assert (after.get_json(), after.headers["ETag"]) == (before.get_json(), before.headers["ETag"])


def test_partner_names_made_up_by_a_caller_do_not_grow_a_replicas_memory(client, setup, rt):
    """The bank's keys are looked up by the partner header before the signature is checked: a name
    nobody registered is answered as a wrong signature is (bad-signature, telling no caller which
    banks exist), from memory, and what the replica remembers stays bounded."""
    from functions.softatm.function import models
    from store_calls import counting

    sent = 356
    with counting() as calls:
        for i in range(sent):
            r = client.post(f"/v1/bank/withdrawals/w{i:08d}/reserve", data=b"{}", content_type="application/json",
                            headers={"X-LSCloud-Partner": f"made-up-{i}", "X-LSCloud-Key-Id": "1",
                                     "X-LSCloud-Timestamp": str(int(time.time())), "X-LSCloud-Nonce": f"nonce-{i:012d}",
                                     "X-LSCloud-Signature": "AAAA"})
            assert r.status_code == 401 and r.get_json()["type"].endswith("bad-signature"), r.get_json()
    # nothing held per made-up name (a missing bank is not kept by the reference cache), and no
    # read per name: the registered banks' codes, listed (and read) once in CODES_FRESH_S
    made_up = {models.Bank.located(f"made-up-{i}") for i in range(sent)}
    assert not made_up & set(rt.objects._reference._entries)
    assert calls["get"] + calls["list"] < 20, calls
    # a registered bank is still known (held again after the flood pushed it out)
    assert Bank(client).call("GET", "/v1/bank/transfers/none-such").status_code == 404


def test_an_operator_changes_a_banks_address_and_limits(client, setup, rt, hooks):
    """The webhooks go to the new address (the ``hooks`` fixture moved them there with PATCH); a
    limit not named keeps its value; a transfer is checked against the limits of the moment."""
    op = setup["op"]
    r = client.get("/v1/banks/vcb", headers=op)
    assert r.get_json()["webhook_url"] == hooks.url and r.get_json()["changed_at"]
    assert r.get_json()["changed_by"].startswith("operator-")   # who moved where its customers' numbers go
    b = wbody(amount=3_000_000)
    assert client.post("/v1/withdrawals", json=b, headers=setup["teller"]).status_code == 201
    e = transfer_event(b["id"])
    h, body = events.to_binary_http(e)
    assert client.post("/events", data=body, headers={**h, **delivery_headers(rt.settings)}).status_code == 200
    assert [(ok, got["transfer"]["id"]) for ok, got, _ in hooks.got] == [(True, b["id"])]

    r = client.patch("/v1/banks/vcb", json={"limits": {"per_transaction_vnd": 2_000_000}}, headers=read_at(client, op),
                     content_type="application/merge-patch+json")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["limits"] == {"per_transaction_vnd": 2_000_000, "per_customer_day_vnd": 15_000_000}
    r = client.post("/v1/withdrawals", json=wbody(amount=3_000_000), headers=setup["teller"])
    assert r.status_code == 422, r.get_data(as_text=True)
    from store_calls import counting

    at = read_at(client, op)
    with counting() as calls:   # one read and one write: the change reads the bank once
        r = client.patch("/v1/banks/vcb", json={"name": "Ngân hàng TMCP Ngoại thương Việt Nam"}, headers=at)
    assert (calls["get"], calls["put"], len(calls.log)) == (1, 1, 2), calls
    assert r.get_json()["name"] == "Ngân hàng TMCP Ngoại thương Việt Nam"
    assert r.get_json()["limits"]["per_transaction_vnd"] == 2_000_000 and r.get_json()["webhook_url"] == hooks.url
    assert K1 not in r.get_data(as_text=True) and K2 not in r.get_data(as_text=True)
    assert [k["key_id"] for k in r.get_json()["keys"]] == ["1", "2"]   # keys change by rotation only


def test_in_the_cluster_a_banks_webhook_address_is_https(rt):
    """A webhook carries the customer's account and ID numbers out of the cluster."""
    cluster = rt.settings.replace(env="cluster")
    with pytest.raises(errors.Invalid) as refused:
        banks.check_webhook_url(cluster, "http://bank.example/hooks")
    assert [e["field"] for e in refused.value.errors] == ["/webhook_url"]
    assert banks.check_webhook_url(cluster, "https://bank.example/hooks") == "https://bank.example/hooks"
    assert banks.check_webhook_url(rt.settings, "http://127.0.0.1:9/hooks")   # the local bank simulator


def test_a_change_with_if_match_applies_to_the_version_read_only(client, setup):
    op = setup["op"]
    read = client.get("/v1/banks/vcb", headers=op)
    tag = read.headers["ETag"]
    r = client.patch("/v1/banks/vcb", json={"name": "VCB"}, headers={**op, "If-Match": tag})
    assert r.status_code == 200 and r.headers["ETag"] != tag
    # another operator read the same version: their change would undo one they never saw
    r = client.patch("/v1/banks/vcb", json={"name": "Vietcombank (old)"}, headers={**op, "If-Match": tag})
    assert r.status_code == 412 and r.mimetype == "application/problem+json"
    assert r.get_json()["type"].endswith("precondition-failed") and r.get_json()["errors"][0]["field"] == "If-Match"
    for bad in ("*", "W/\"3\"", "3", "\"three\""):
        r = client.patch("/v1/banks/vcb", json={"name": "x"}, headers={**op, "If-Match": bad})
        assert r.status_code == 412 and r.get_json()["errors"][0]["field"] == "If-Match", bad
    now = client.get("/v1/banks/vcb", headers=op)
    assert now.get_json()["name"] == "VCB"
    # the same change again writes nothing: the version stays
    r = client.patch("/v1/banks/vcb", json={"name": "VCB"}, headers={**op, "If-Match": now.headers["ETag"]})
    assert r.status_code == 200 and r.headers["ETag"] == now.headers["ETag"]


@pytest.mark.parametrize("patch, field", [
    ({}, ""),
    ({"code": "vcb2"}, "/code"),
    ({"keys": [K3]}, "/keys"),
    ({"webhook_url": None}, "/webhook_url"),
    ({"webhook_url": "ftp://bank.example/hooks"}, "/webhook_url"),
    ({"name": ""}, "/name"),
    ({"limits": {}}, "/limits"),
    ({"limits": {"per_transaction_vnd": 10}}, "/limits/per_transaction_vnd"),
    ({"limits": {"per_day": 10}}, "/limits/per_day"),
])
def test_a_bad_change_is_refused_naming_the_field_and_changes_nothing(client, setup, patch, field):
    op = setup["op"]
    before = client.get("/v1/banks/vcb", headers=op)
    r = client.patch("/v1/banks/vcb", json=patch, headers=read_at(client, op))
    assert 400 <= r.status_code < 500 and r.mimetype == "application/problem+json", r.get_data(as_text=True)
    assert [e["field"] for e in r.get_json()["errors"]] == [field], r.get_json()
    after = client.get("/v1/banks/vcb", headers=op)
    assert (after.get_json(), after.headers["ETag"]) == (before.get_json(), before.headers["ETag"])
    for unknown in ("nobank", "x" * 300):   # none registered; a code that cannot even be a key
        r = client.patch(f"/v1/banks/{unknown}", json={"name": "x"}, headers={**op, "If-Match": '"1"'})
        assert r.status_code == 404 and r.get_json()["type"].endswith("unknown-bank"), r.get_data(as_text=True)


def test_operators_changing_different_things_at_once_keep_both(rt, setup):
    """In process (the API requires If-Match) a change without a version applies to the bank as stored
    (If-Match on the write): none is lost."""
    from concurrent.futures import ThreadPoolExecutor

    changes = [{"name": "Vietcombank Lạng Sơn"}, {"limits": {"per_transaction_vnd": 9_000_000}},
               {"limits": {"per_customer_day_vnd": 30_000_000}}, {"webhook_url": "https://vcb.example/softatm"}]
    start = threading.Barrier(len(changes))

    def change(patch):
        start.wait()
        return banks.change(rt.settings, "vcb", patch, transfers.iso(transfers.now()), "operator-1")

    with ThreadPoolExecutor(len(changes)) as pool:
        list(pool.map(change, changes))
    stored = banks.get("vcb")
    assert (stored["name"], stored["webhook_url"], stored["limits"]) == (
        "Vietcombank Lạng Sơn", "https://vcb.example/softatm",
        {"per_transaction_vnd": 9_000_000, "per_customer_day_vnd": 30_000_000})


def test_a_webhook_to_an_address_stored_before_the_check_is_dead_lettered_not_retried(rt, client, setup):
    models.Bank.update("vcb", None, lambda it: it.data.update(webhook_url="http://bank.example/hooks/soft atm"))
    b = wbody()
    assert client.post("/v1/withdrawals", json=b, headers=setup["teller"]).status_code == 201
    e = transfer_event(b["id"])
    h, body = events.to_binary_http(e)
    r = client.post("/events", data=body, headers={**h, **delivery_headers(rt.settings)})
    assert r.status_code == 422, r.get_data(as_text=True)   # dead-lettered: retrying cannot fix it


def s_teller(setup):
    return setup["teller"]


# -- malformed numbers never claim an id (issue 9) ------------------------------------------------------

@pytest.mark.parametrize("literal", ["5000000.0", "5e6"])
def test_integer_valued_floats_are_refused_before_any_id_is_claimed(client, setup, literal):
    before = float_of(client, setup)["cash_vnd"]
    raw = ('{"id": "fund-float-%s", "amount_vnd": %s}' % (literal.replace(".", "-"), literal)).encode()
    r = client.post(f"/v1/points/{POINT}/cash-deliveries", data=raw, content_type="application/json",
                    headers=setup["op"])
    assert r.status_code == 422, r.get_data(as_text=True)
    assert [e["field"] for e in r.get_json()["errors"]] == ["/amount_vnd"]
    # the id is still free: the same operation written properly moves the cash now
    r = client.post(f"/v1/points/{POINT}/cash-deliveries", json={"id": f"fund-float-{literal.replace('.', '-')}",
                                                                  "amount_vnd": 5_000_000}, headers=setup["op"])
    assert r.status_code == 201, r.get_data(as_text=True)
    assert "Idempotent-Replayed" not in r.headers
    assert float_of(client, setup)["cash_vnd"] == before + 5_000_000
    w = wbody(amount=1_000_000)
    raw = json.dumps(w).replace('"amount_vnd": 1000000', f'"amount_vnd": {literal}').encode()
    r = client.post("/v1/withdrawals", data=raw, content_type="application/json", headers=setup["teller"])
    assert r.status_code == 422
    assert client.get(f"/v1/transfers/{w['id']}", headers=setup["op"]).status_code == 404


def test_duplicate_keys_never_pick_one_amount(client, setup):
    raw = b'{"id": "fund-dup-0001", "amount_vnd": 1000000, "amount_vnd": 2000000}'
    r = client.post(f"/v1/points/{POINT}/cash-deliveries", data=raw, content_type="application/json",
                    headers=setup["op"])
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "/amount_vnd"
    r = client.post(f"/v1/points/{POINT}/cash-deliveries", json={"id": "fund-dup-0001", "amount_vnd": 1_000_000},
                    headers=setup["op"])
    assert r.status_code == 201 and r.get_json()["amount_vnd"] == 1_000_000


@pytest.mark.parametrize("query", ["limit=abc", "limit=null", "limit=0", "limit=-5", "limit=10%5E20",
                                   "limit=100000000000000000000", "limit=1001"])
def test_dead_letter_limit_is_checked_by_its_declaration(client, setup, query):
    r = client.get(f"/v1/webhooks/dead-letters?{query}", headers=setup["op"])
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    assert [e["field"] for e in r.get_json()["errors"]] == ["limit"]


@pytest.mark.parametrize("path", ["/v1/settlements/vcb/2026-02-30", "/v1/settlements/vcb/0000-00-00"])
def test_impossible_days_are_refused_not_settled(client, setup, path):
    r = client.get(path, headers=setup["op"])
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "day"


def test_odd_path_ids_get_a_problem_never_a_5xx(app, setup, tokens):
    from path_ids import assert_no_route_fails_on_odd_ids

    units = {"teller": POINT}
    assert assert_no_route_fails_on_odd_ids(app, lambda role: tok(tokens, role, units.get(role))) > 100


def test_each_step_of_a_withdrawal_reads_its_transfer_at_most_once(client, setup):
    """A decision hands the transfer it wrote to what follows (the consequences, the ``notified``
    mark) instead of reading it again, and the next step starts from the copy this replica wrote:
    no GET of the transfer in any step here, counted, not timed (round 5 read it once per step, the
    code before three or four times)."""
    from store_calls import counting

    s = setup
    b = wbody()
    with counting() as create:
        assert client.post("/v1/withdrawals", json=b, headers=s["teller"]).status_code == 201
    with counting() as reserve:
        r = s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-7"})
        assert r.status_code == 200, r.get_data(as_text=True)
    with counting() as commit:
        assert client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"]).status_code == 200
    for step in (create, reserve, commit):
        assert not [k for k in step.keys_of("get") if k.startswith("softatm-transfers/")], step
    assert client.get(f"/v1/transfers/{b['id']}", headers=s["teller"]).get_json()["state"] == "COMMITTED"
    report = client.get("/v1/ledger/verify", headers=s["op"]).get_json()
    assert report["ok"], report


def test_a_withdrawal_end_to_end_stays_within_its_store_budget(rt, client, setup, hooks):
    """Issue 11: create → the bank's webhook → reserve → commit → the commit's webhook, every S3
    request counted (not timed). The journal's end is known in memory (no journal reads), a step's
    consequences are folded into its writes, the day index is written once, the daily counter is
    written from what the process last wrote (or create-only) without a read; the create is
    create-only without a read before it, each later step starts from the transfer as this replica
    last wrote it (its If-Match write says whether that was current), and a webhook is sent without
    the events-seen lease (banks dedupe by the event id): 15 requests and no GET, where round 5
    made 24 (6 GETs, 4 lease PUTs) and the path before it 62."""
    from store_calls import counting

    s = setup

    def webhook(tid, state):
        e = transfer_event(tid, state)
        h, body = events.to_binary_http(e)
        assert client.post("/events", data=body, headers={**h, **delivery_headers(rt.settings)}).status_code == 200

    for warm in (True, False):   # the first warms what a process remembers (its bank registrations)
        b = wbody(amount=1_000_000)
        with counting() as create:
            assert client.post("/v1/withdrawals", json=b, headers=s["teller"]).status_code == 201
        with counting() as received:
            webhook(b["id"], "RECEIVED")
        with counting() as reserve:
            r = s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-9"})
            assert r.status_code == 200, r.get_data(as_text=True)
        with counting() as commit:
            assert client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"]).status_code == 200
        with counting() as committed:
            webhook(b["id"], "COMMITTED")
        steps = {"create": create, "received": received, "reserve": reserve, "commit": commit,
                 "committed": committed}
        log = "\n".join(f"-- {k}\n{v!r}" for k, v in steps.items())
        every = [(m, k) for c in steps.values() for m, k in c.log]
        assert not [k for m, k in every if k.startswith("softatm-journal")
                    and m != "put"], log                               # the journal is appended, never read
        assert not [k for m, k in every if m == "list"], log
        if warm:
            continue
        assert len([k for m, k in every if k.startswith("softatm-bank-days/")]) == 1, log
        assert not [k for m, k in every if m in ("get", "head")], log   # every step starts from what it wrote
        assert create["put"] == 6, log                                  # open entry, transfer, counter, hold, day, admitted
        assert reserve["put"] == 2, log                                 # decision, notified (the nonce is NATS's)
        assert (commit["put"], commit["delete"]) == (4, 1), log
        assert not received.log and not committed.log, log              # no events-seen lease, no read
        assert len(every) <= 14, log
    assert client.get("/v1/ledger/verify", headers=s["op"]).get_json()["ok"]


def test_a_withdrawal_makes_its_store_requests_in_eleven_rounds(client, setup):
    """Issue 11: the round trips of create → reserve → commit, each held until its round is let go
    (counted, not timed). The create is create-only without a read before it; the reserve and the
    commit start from the transfer as this replica wrote it, and what a commit implies (the payout,
    the bank's settled entry; then ``notified`` and leaving the open index) goes out together:
    6 + 2 + 3 rounds, 14 requests, no GET (round 5's code read the transfer first in every step:
    15 rounds, 18 requests; the bank's nonce was a PUT until it moved to NATS)."""
    from concurrent.futures import ThreadPoolExecutor as Pool

    from store_calls import Rounds, counting

    s = setup
    b = wbody(amount=1_000_000)
    warm = wbody(amount=1_000)   # what a process remembers (the bank's keys, the counter, the journal's end)
    assert client.post("/v1/withdrawals", json=warm, headers=s["teller"]).status_code == 201
    assert s["vcb"].call("POST", f"/v1/bank/withdrawals/{warm['id']}/reserve", {}).status_code == 200
    assert client.post(f"/v1/withdrawals/{warm['id']}/commit", json={}, headers=s["teller"]).status_code == 200

    def rounds_of(call, *sizes):
        rounds = Rounds()
        with Pool(1) as pool, counting(rounds) as calls:
            answer = pool.submit(call)
            seen = [sorted((m, k.split("/")[0]) for m, k in rounds.next_round(n)) for n in sizes]
            rounds.let_go()   # a request beyond them is not held: counted below
            resp = answer.result()
        assert resp.status_code in (200, 201), resp.get_data(as_text=True)
        assert len(calls.log) == sum(sizes), (seen, calls)   # nothing after the rounds expected
        return seen

    create = rounds_of(lambda: client.post("/v1/withdrawals", json=b, headers=s["teller"]), 1, 1, 1, 1, 1, 1)
    assert create == [[("put", "softatm-open")], [("put", "softatm-transfers")], [("put", "softatm-customer-days")],
                      [("put", "softatm-journal")], [("put", "softatm-bank-days")], [("put", "softatm-transfers")]]
    reserve = rounds_of(lambda: s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve",
                                              {"bank_reference": "VCB-12"}), 1, 1)
    assert reserve == [[("put", "softatm-transfers")], [("put", "softatm-transfers")]]
    commit = rounds_of(lambda: client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"]),
                       1, 2, 2)
    assert commit == [[("put", "softatm-transfers")], [("put", "softatm-bank-settled"), ("put", "softatm-journal")],
                      [("delete", "softatm-open"), ("put", "softatm-transfers")]]
    assert client.get(f"/v1/transfers/{b['id']}", headers=s["teller"]).get_json()["state"] == "COMMITTED"
    assert client.get("/v1/ledger/verify", headers=s["op"]).get_json()["ok"]


def test_every_transfer_answer_documents_the_etag_it_sends(client, setup):
    """Every route that answers with a transfer sends its ETag, and its OpenAPI answer says so
    (the bank's routes, the teller's commit and abort did not)."""
    from lscloud.web.openapi import build_openapi

    s = setup
    b, d = wbody(), wbody()
    assert client.post("/v1/withdrawals", json=b, headers=s["teller"]).status_code == 201
    assert client.post("/v1/withdrawals", json=d, headers=s["teller"]).status_code == 201
    sent = {
        ("post", "/v1/bank/withdrawals/{tid}/reserve"):
            s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-E"}),
        ("get", "/v1/bank/transfers/{tid}"): s["vcb"].call("GET", f"/v1/bank/transfers/{b['id']}"),
        ("post", "/v1/withdrawals/{tid}/commit"):
            client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"]),
        ("post", "/v1/transfers/{tid}/abort"):
            client.post(f"/v1/transfers/{d['id']}/abort", json={"reason": "customer left"}, headers=s["teller"]),
        ("get", "/v1/transfers/{tid}"): client.get(f"/v1/transfers/{b['id']}", headers=s["teller"]),
    }
    paths = build_openapi(client.application)["paths"]
    for (method, path), resp in sent.items():
        assert resp.status_code == 200 and resp.headers.get("ETag"), (path, resp.get_data(as_text=True))
        documented = paths[path][method]["responses"]["200"].get("headers", {})
        assert "ETag" in documented, (method, path, documented)
    for path, ops in paths.items():   # and every other route answering with a transfer
        for method, op in ops.items():
            for status, answer in op.get("responses", {}).items():
                schema = json.dumps(answer.get("content", {}))
                if status.startswith("2") and "transfer.json" in schema:
                    assert "ETag" in answer.get("headers", {}), (method, path, status)


def test_the_open_entry_a_resend_writes_is_swept_and_the_transfers_own_kept(client, setup):
    """A create goes create-only without reading first, so a resend writes an open entry (its own
    time, another key) before it finds the id taken: the sweep deletes that one and keeps the
    transfer's own, which the transfer's final settle removes."""
    from functions.softatm.function import documents, sweep

    s = setup
    b = wbody()
    first = client.post("/v1/withdrawals", json=b, headers=s["teller"])
    again = client.post("/v1/withdrawals", json=b, headers=s["teller"])
    assert (first.status_code, again.status_code) == (201, 201) and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()

    def entries():
        return sorted(e.entry for e in models.OpenTransfer.query_all("open") if e.transfer_id == b["id"])

    own = documents.open_key(models.Transfer.get(b["id"]).data)
    assert len(entries()) == 2 and own in entries()
    assert sweep.sweep()["orphans"] >= 1
    assert entries() == [own]
    assert s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {}).status_code == 200
    assert client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"]).status_code == 200
    assert entries() == []


def test_the_sweep_lists_the_open_entries_and_reads_only_the_transfers(client, setup):
    """Every replica sweeps every few seconds: the open index is listed (its keys name the
    transfers), so a sweep with nothing to do costs a listing and one GET per open transfer."""
    from functions.softatm.function import sweep
    from store_calls import counting

    s = setup
    for _ in range(3):
        assert client.post("/v1/withdrawals", json=wbody(), headers=s["teller"]).status_code == 201
    open_now = len(models.OpenTransfer.query_keys("open"))
    assert open_now >= 3
    with counting() as calls:
        assert sweep.sweep() == {"expired": 0, "settled": 0, "unadmitted": 0, "orphans": 0, "errors": 0}
    assert calls["get"] == open_now and calls["list"] >= 1 and calls["put"] == calls["delete"] == 0


def test_a_read_leaves_a_fresh_decision_to_the_run_that_made_it(client, setup, monkeypatch):
    """A teller polling a transfer the bank has just reserved does not race the reserving run for its
    consequences (the old read settled at once: the same event, a second mark, a 412); a decision
    left unsettled past the grace (NATS down at the time) is settled by the next read."""
    from datetime import timedelta

    from functions.softatm.function import actions, consequences
    from store_calls import counting

    s = setup
    b = wbody()
    assert client.post("/v1/withdrawals", json=b, headers=s["teller"]).status_code == 201

    def nats_down(events):
        raise ConnectionError("NATS is down")

    monkeypatch.setattr(consequences, "publish", nats_down)
    r = s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-3"})
    assert r.status_code == 200 and r.get_json()["state"] == "RESERVED"
    monkeypatch.undo()
    assert models.Transfer.get(b["id"]).data["notified"] == "RECEIVED"   # the reserve's consequences wait
    with counting() as fresh:
        assert client.get(f"/v1/transfers/{b['id']}", headers=s["teller"]).get_json()["state"] == "RESERVED"
    assert (fresh["get"], fresh["put"]) == (1, 0), fresh
    later = transfers.now() + timedelta(seconds=consequences.SETTLE_GRACE_S + 1)
    monkeypatch.setattr(actions, "now", lambda: later)
    client.get(f"/v1/transfers/{b['id']}", headers=s["teller"])
    assert models.Transfer.get(b["id"]).data["notified"] == "RESERVED"


@pytest.fixture
def no_recheck(monkeypatch):
    """Waiters never re-read the store on their own (one replica: every change is seen in-process),
    so what a long-poll reads is counted without depending on how long it waited."""
    from functions.softatm.function import watch

    monkeypatch.setattr(watch, "RECHECK_S", 3600.0)
    return watch


def _long_poll(client, tid, headers, tag, wait="wait=20"):
    """A GET waiting for ``tid`` to change, in a thread: (thread, answers)."""
    answers = []
    h = {**headers, "If-None-Match": tag, "Prefer": wait}
    t = threading.Thread(target=lambda: answers.append(client.get(f"/v1/transfers/{tid}", headers=h)))
    t.start()
    return t, answers


def _waiting_on(watch, tid):
    from waiting import wait_for

    wait_for(lambda: watch._waiting.get(tid), f"a long-poll waiting on {tid}")


def test_a_teller_waits_for_the_banks_answer_in_one_request(client, setup, no_recheck):
    """Issue 11: the teller's 20 ms polls (one request and one S3 GET each, dozens per withdrawal)
    become one long-poll: ``If-None-Match`` + ``Prefer: wait=N`` answered when the bank's reservation
    (and its consequences) are written, woken in-process — one read of the transfer however long it
    waited. The old code had no ETag to wait on and answered RECEIVED at once."""
    from store_calls import counting

    watch, s = no_recheck, setup
    b = wbody()
    r = client.post("/v1/withdrawals", json=b, headers=s["teller"])
    assert r.status_code == 201 and r.headers.get("ETag"), r.headers
    tag = r.headers["ETag"]
    with counting() as calls:
        t, answers = _long_poll(client, b["id"], s["teller"], tag)
        _waiting_on(watch, b["id"])
        with counting() as reserve:
            assert s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve",
                                 {"bank_reference": "VCB-5"}).status_code == 200
        t.join(60)
    r = answers[0]
    assert r.status_code == 200 and r.get_json()["state"] == "RESERVED", r.get_data(as_text=True)
    assert r.headers["Preference-Applied"] == "wait=20" and r.headers["ETag"] != tag
    assert models.Transfer.get(b["id"]).data["notified"] == "RESERVED"   # woken once the reserve had settled
    polled = [k for k in calls.keys_of("get") if k.startswith("softatm-transfers/")]
    assert len(polled) - len([k for k in reserve.keys_of("get") if k.startswith("softatm-transfers/")]) == 1, calls
    assert calls["put"] == reserve["put"], calls      # waiting writes nothing
    # unchanged: 304 at once without a wait, 304 at the bound with one
    now_tag = r.headers["ETag"]
    assert client.get(f"/v1/transfers/{b['id']}", headers={**s["teller"], "If-None-Match": now_tag}).status_code == 304
    r = client.get(f"/v1/transfers/{b['id']}", headers={**s["teller"], "If-None-Match": now_tag, "Prefer": "wait=1"})
    assert r.status_code == 304 and r.headers["ETag"] == now_tag and r.headers["Preference-Applied"] == "wait=1"
    # another point's teller waits for nothing: the same 404 as without a wait
    r = client.get(f"/v1/transfers/{b['id']}", headers={**s["teller2"], "If-None-Match": now_tag, "Prefer": "wait=5"})
    assert r.status_code == 404
    assert client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"]).status_code == 200


def test_a_teller_creates_and_has_the_banks_answer_in_the_same_request(client, setup, no_recheck):
    """Issue 11: ``Prefer: wait=N`` on the create saves the teller the long-poll that follows it (one
    request through the gateway and the function per withdrawal): the 201 comes once the bank's
    reservation is written and settled, or as created at the bound."""
    from waiting import wait_for

    watch, s = no_recheck, setup
    b = wbody()
    answers = []
    t = threading.Thread(target=lambda: answers.append(
        client.post("/v1/withdrawals", json=b, headers={**s["teller"], "Prefer": "wait=20"})))
    t.start()
    _waiting_on(watch, b["id"])

    def announced():
        try:
            doc = models.Transfer.get(b["id"]).data
        except models.Transfer.DoesNotExist:
            return False
        return doc["admitted"] and doc["notified"] == "RECEIVED"

    wait_for(announced, "the withdrawal admitted and announced")
    assert not answers   # still waiting for the bank
    assert s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve",
                         {"bank_reference": "VCB-7"}).status_code == 200
    t.join(60)
    r = answers[0]
    assert r.status_code == 201 and r.get_json()["state"] == "RESERVED", r.get_data(as_text=True)
    assert r.headers["Preference-Applied"] == "wait=20"
    assert models.Transfer.get(b["id"]).data["notified"] == "RESERVED"   # the commit races nothing
    # the same create again (a resend) is answered as the transfer is now, without waiting
    again = client.post("/v1/withdrawals", json=b, headers={**s["teller"], "Prefer": "wait=20"})
    assert again.get_json()["state"] == "RESERVED" and again.headers["ETag"] == r.headers["ETag"]
    assert client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=s["teller"]).status_code == 200
    # no answer from the bank: as created, at the bound
    other = wbody()
    r = client.post("/v1/withdrawals", json=other, headers={**s["teller"], "Prefer": "wait=1"})
    assert r.status_code == 201 and r.get_json()["state"] == "RECEIVED" and r.headers["Preference-Applied"] == "wait=1"
    assert r.headers["ETag"] == watch.etag(r.get_json())


def test_a_long_poll_sees_a_change_made_by_another_replica(client, setup, monkeypatch):
    """A change this replica never hears of (made by another) still ends the wait: the waiter reads
    the store again every RECHECK_S."""
    from functions.softatm.function import watch

    s = setup
    b = wbody()
    tag = client.post("/v1/withdrawals", json=b, headers=s["teller"]).headers["ETag"]
    monkeypatch.setattr(watch, "RECHECK_S", 0.05)
    t, answers = _long_poll(client, b["id"], s["teller"], tag)
    _waiting_on(watch, b["id"])
    monkeypatch.setattr(watch, "changed", lambda doc: None)   # the reserve lands on "another replica"
    assert s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-6"}).status_code == 200
    t.join(60)
    assert answers[0].status_code == 200 and answers[0].get_json()["state"] == "RESERVED"


def test_a_replica_with_every_waiting_slot_taken_answers_at_once(client, setup, monkeypatch):
    """A long-poll holds a WSGI thread: beyond watch.WAITERS the preference is not applied and the
    answer comes at once (a reservation must always find a thread to be served on)."""
    from functions.softatm.function import watch

    s = setup
    b = wbody()
    tag = client.post("/v1/withdrawals", json=b, headers=s["teller"]).headers["ETag"]
    monkeypatch.setattr(watch, "_slots", threading.BoundedSemaphore(1))
    assert watch._slots.acquire(blocking=False)   # the one slot is someone else's
    r = client.get(f"/v1/transfers/{b['id']}", headers={**s["teller"], "If-None-Match": tag, "Prefer": "wait=20"})
    assert r.status_code == 304 and "Preference-Applied" not in r.headers


def test_an_abort_takes_a_transfer_out_of_the_counter_this_process_last_wrote(client, setup):
    """The counter this process last wrote is where an abort starts too: one PUT, no read (the old
    code read it twice), and the customer's next count starts from it with no lost condition."""
    from store_calls import counting

    from functions.softatm.function import limits

    s = setup
    b = wbody(3_000_000, "0066778899")
    assert client.post("/v1/withdrawals", json=b, headers=s["teller"]).status_code == 201
    doc = models.Transfer.get(b["id"]).data
    key = limits.daily_key(doc)
    assert b["id"] in models.CustomerDay.get(key).used
    with counting() as calls:
        limits.uncount(doc)
    assert [(m, k.split("/")[0]) for m, k in calls.log] == [("put", models.CustomerDay.Meta.table)], calls
    assert models.CustomerDay.get(key).used == {}
    with counting() as calls:
        assert limits.count({**doc, "id": "w-next-1"})
    assert [(m, k.split("/")[0]) for m, k in calls.log] == [("put", models.CustomerDay.Meta.table)], calls
    limits.uncount(doc)   # not counted: decided on the store, nothing written
    assert models.CustomerDay.get(key).used == {"w-next-1": 3_000_000}


# -- dead-lettered webhooks: kept where operators look, sent again once the cause is fixed ----------------

def tell_dead_letter(client, rt, event, status=404, error="HTTP 404: no such hook"):
    """Deliver ``event`` to /events/dead-letters as Knative does to a Trigger's dead-letter sink."""
    failure = events.DeliveryFailure(status, error, "http://softatm.lscloud.svc.cluster.local/events")
    h, body = events.to_binary_http({**event, **failure.extensions()})
    return client.post("/events/dead-letters", data=body, headers={**h, **delivery_headers(rt.settings)})


def received_event(tid):
    return transfer_event(tid)


def open_letters(client, setup, **query):
    r = client.get("/v1/webhooks/dead-letters", query_string=query, headers=setup["op"])
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_a_dead_letter_is_kept_once_and_listed_for_operators(rt, client, setup):
    b = wbody()
    assert client.post("/v1/withdrawals", json=b, headers=setup["teller"]).status_code == 201
    ev = received_event(b["id"])
    r = tell_dead_letter(client, rt, ev)
    assert r.status_code == 200 and r.get_json()["status"] == "kept", r.get_data(as_text=True)
    again = tell_dead_letter(client, rt, ev)          # Knative retries its sink too
    assert again.get_json() == {"status": "duplicate", "id": r.get_json()["id"]}
    tick = events.new_event("vn.langson.platform.clock.ticked.v1", "/platform/clock", {"minute": "x"})
    assert tell_dead_letter(client, rt, tick, 503, "HTTP 503").status_code == 200   # another subscription's
    page = open_letters(client, setup)
    (item,) = page["items"]                             # webhooks only, once
    assert item == {"id": r.get_json()["id"], "state": "open",
                    "event": {k: ev.get(k) for k in ("id", "type", "source", "subject", "time")},
                    "transfer_id": b["id"], "status": 404, "error": "HTTP 404: no such hook",
                    "dead_lettered_at": item["dead_lettered_at"], "settled": None}
    assert CCCD not in json.dumps(page) and b["account"] not in json.dumps(page)
    assert open_letters(client, setup, state="settled")["items"] == []
    for query, name in (({"state": "gone"}, "state"), ({"page_token": "not-a-token"}, "page_token"),
                        ({"limit": 1001}, "limit")):
        r = client.get("/v1/webhooks/dead-letters", query_string=query, headers=setup["op"])
        assert r.status_code == 400 and [e["field"] for e in r.get_json()["errors"]] == [name], r.get_data(as_text=True)
    # no delivery token: refused at the door, nothing kept
    h, body = events.to_binary_http(received_event("w-nobody"))
    assert client.post("/events/dead-letters", data=body, headers={**h, **setup["op"]}).status_code in (401, 403)
    assert len(open_letters(client, setup)["items"]) == 1


def test_an_operator_fixes_the_address_and_sends_a_dead_letter_again_once(rt, client, setup):
    """The bank's address was wrong: its webhook was dead-lettered. The operator moves the address
    (PATCH), then redelivers: the bank gets it signed, with the same event id; the letter is settled
    with who and when; a second operator at once is told it is in progress (409, Retry-After), a repeat
    answers that settlement; neither sends anything."""
    b = wbody()
    assert client.post("/v1/withdrawals", json=b, headers=setup["teller"]).status_code == 201
    ev = received_event(b["id"])
    letter = tell_dead_letter(client, rt, ev).get_json()["id"]
    hooks = Hooks()
    try:
        hooks.status = 404           # still wrong: the bank refuses, the letter stays open
        assert client.patch("/v1/banks/vcb", json={"webhook_url": hooks.url},
                            headers=read_at(client, setup["op"])).status_code == 200
        r = client.post(f"/v1/webhooks/dead-letters/{letter}/redeliver", headers=setup["op"])
        assert r.status_code == 422 and r.get_json()["type"].endswith("bank-refused"), r.get_data(as_text=True)
        assert open_letters(client, setup, state="open")["items"][0]["id"] == letter
        hooks.status = 200
        before = len(hooks.got)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.post(f"/v1/webhooks/dead-letters/{letter}/redeliver",
                                                          headers=setup["op"]), range(4)))
        assert {a.status_code for a in answers} <= {200, 409}, [a.get_data(as_text=True) for a in answers]
        assert all(a.headers["Retry-After"] == "2" for a in answers if a.status_code == 409)
        done = [a for a in answers if a.status_code == 200]
        assert sum(1 for a in done if "Idempotent-Replayed" not in a.headers) == 1   # one settled it
        assert len(hooks.got) == before + 1                                    # and only its action sent it
        settled = {a.get_json()["settled"]["at"] for a in done}
        assert len(settled) == 1
        view = done[0].get_json()
        assert view["state"] == "settled" and view["settled"]["action"] == "redelivered"
        assert view["settled"]["by"].startswith("operator-")
        ok = [got for signed, got, _ in hooks.got if signed and got["event_id"] == ev["id"]]
        assert ok and all(g["transfer"]["id"] == b["id"] for g in ok)   # the bank dedupes repeats by event id
        sent = len(hooks.got)
        r = client.post(f"/v1/webhooks/dead-letters/{letter}/redeliver", headers=setup["op"])
        assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
        assert len(hooks.got) == sent                                    # a settled letter sends nothing
        assert open_letters(client, setup, state="open")["items"] == []
        assert [i["id"] for i in open_letters(client, setup, state="settled")["items"]] == [letter]
    finally:
        hooks.server.shutdown()


@pytest.mark.parametrize("route", ["/v1/webhooks/dead-letters/{}/redeliver", "/platform/dead-letters/{}/retry"])
def test_a_dead_letter_the_transfer_moved_past_is_settled_without_sending(rt, client, setup, hooks, route):
    # the platform's retry of a webhook's dead letter is the soft ATM's own re-drive (knative.redrive_with)
    b = wbody()
    assert client.post("/v1/withdrawals", json=b, headers=setup["teller"]).status_code == 201
    r = client.post(f"/v1/transfers/{b['id']}/abort", json={"reason": "customer left"}, headers=setup["teller"])
    assert r.status_code == 200, r.get_data(as_text=True)
    letter = tell_dead_letter(client, rt, received_event(b["id"])).get_json()["id"]
    before = len(hooks.got)
    r = client.post(route.format(letter), headers=setup["op"])
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["settled"]["action"] == "skipped" and "ABORTED" in r.get_json()["settled"]["reason"]
    assert len(hooks.got) == before


def test_redelivering_what_is_not_a_dead_lettered_webhook_is_a_404(rt, client, setup):
    tick = events.new_event("vn.langson.platform.clock.ticked.v1", "/platform/clock", {"minute": "x"})
    other = tell_dead_letter(client, rt, tick, 503, "HTTP 503").get_json()["id"]
    for letter in (other, "0000000000000000_0123456789abcdef0123", "x" * 300, "..%2F..%2Fbanks"):
        r = client.post(f"/v1/webhooks/dead-letters/{letter}/redeliver", headers=setup["op"])
        assert r.status_code == 404 and r.mimetype == "application/problem+json", (letter, r.get_data(as_text=True))


def test_a_dead_letter_is_kept_a_year_then_swept(rt, client, setup):
    from lscloud import deadletters, runonce, store

    letter = tell_dead_letter(client, rt, received_event("w-kept-a-year")).get_json()["id"]
    objects, bucket = store.connection()
    (kind,) = [k for k in runonce.kinds() if k.prefix == "lscloud-dead-letters/"]
    in_a_month = time.time() + 31 * 86_400
    assert runonce.sweep(objects, bucket, rt.settings, kinds_=[kind], now=in_a_month).total("deleted") == 0
    assert deadletters.find(letter).state == deadletters.OPEN
    in_a_year_and_a_day = time.time() + deadletters.RETENTION_S + 86_400
    assert runonce.sweep(objects, bucket, rt.settings, kinds_=[kind], now=in_a_year_and_a_day).total("deleted") == 1
    assert open_letters(client, setup)["items"] == []


def test_the_platforms_operators_list_every_dead_letter_without_its_data(rt, client, setup, tokens):
    """GET /platform/dead-letters, which every function with events serves: the soft ATM's webhook
    and a tick alike, with the event's attributes and why it failed, never its data."""
    b = wbody()
    assert client.post("/v1/withdrawals", json=b, headers=setup["teller"]).status_code == 201
    ev = received_event(b["id"])
    hook = tell_dead_letter(client, rt, ev).get_json()["id"]
    tick = tell_dead_letter(client, rt, events.new_event("vn.langson.platform.clock.ticked.v1", "/platform/clock",
                                                         {"minute": "x"}), 503, "HTTP 503").get_json()["id"]
    for who in (setup["op"], tok(tokens, "auditor")):
        r = client.get("/platform/dead-letters", headers=who)
        assert r.status_code == 200, r.get_data(as_text=True)
        items = {i["id"]: i for i in r.get_json()["items"]}
        assert set(items) == {hook, tick}
        assert items[hook]["event"] == {k: ev.get(k) for k in ("id", "type", "source", "subject", "time")}
        assert items[tick]["status"] == 503 and items[tick]["state"] == "open"
        assert b["id"] not in json.dumps(items[tick]) and "data" not in json.dumps(r.get_json())
    assert client.get("/platform/dead-letters", headers=setup["teller"]).status_code == 403
    r = client.get("/platform/dead-letters?state=settled", headers=setup["op"])
    assert r.get_json()["items"] == []
