"""The float alert of a point that has been low for long, against real weed mini + nats-server: a
withdrawal refused for want of cash looked for the start of the point's low episode through its
whole journal, inside the teller's request. It reads a bounded stretch now, and the episode is
still alerted once, on every replica and after a restart."""

from __future__ import annotations

import itertools

import pytest

from functions.softatm.function import journal, ledger
from lscloud import runtime

from softatm_support import CCCD, DirectoryStub
from store_calls import counting

pytestmark = pytest.mark.integration

POINT = "bd-06043"
FLOAT_LOW = "vn.langson.softatm.float.low.v1"
BANK = {"code": "vcb", "name": "Vietcombank", "webhook_url": "http://127.0.0.1:9/hook",
        "keys": ["vcb-key-one-0123456789abcdef0123456789"],
        "limits": {"per_transaction_vnd": 20_000_000, "per_customer_day_vnd": 100_000_000}}
LONG = 3 * ledger.READ_AHEAD + 5   # entries, all below the threshold: more than one look-back
_n = itertools.count()


@pytest.fixture
def s(start_function, tmp_path, tokens):
    directory = DirectoryStub()
    try:
        fn = start_function("softatm", peer_url_template=directory.template, state_dir=str(tmp_path))
        runtime.current().bus.ensure_stream()
        c = fn.app.test_client()
        op = tokens("operator", f"op-{next(_n)}")
        assert c.post("/v1/banks", json=BANK, headers=op).status_code == 201
        yield {"client": c, "rt": runtime.current(), "op": op, "teller": tokens("teller", "t-1", unit=POINT)}
    finally:
        directory.stop()


def deliver(s, amount):
    r = s["client"].post(f"/v1/points/{POINT}/cash-deliveries",
                         json={"id": f"fund-{next(_n):06d}", "amount_vnd": amount}, headers=s["op"])
    assert r.status_code == 201, r.get_data(as_text=True)


def withdraw(s, amount):
    return s["client"].post("/v1/withdrawals", headers=s["teller"], json={
        "id": f"t-{next(_n):06d}-x", "bank": "vcb", "amount_vnd": amount, "account": "0011223344",
        "customer_id_number": CCCD})


def alerts(s):
    return [e for e in s["rt"].bus.replay([FLOAT_LOW]) if e["data"]["point"] == POINT]


def another_replica():
    """What a replica that has not seen the point (or this one after a restart) knows: nothing."""
    journal._raised.clear()
    journal.JOURNAL.tails = ledger.Tails()
    vars(journal).get("_good", {}).clear()   # the per-process episode memory an earlier version kept


def refused_reading(s, amount=5_000_000):
    """A withdrawal refused for want of cash, and the journal reads (entries and head) it made."""
    with counting() as calls:
        r = withdraw(s, amount)
    assert r.status_code == 409 and r.get_json()["type"].endswith("insufficient-float"), r.get_data(as_text=True)
    return [k for k in calls.keys_of("get") if k.startswith("softatm-journal")]


def test_a_refusal_at_a_point_low_for_long_reads_a_bounded_stretch_and_alerts_once(s):
    for _ in range(LONG):   # a point that never had the threshold's cash: one episode, from entry 1
        deliver(s, 10_000)
    first = alerts(s)
    assert [(e["id"], e["data"]["cash_vnd"]) for e in first] == [(f"{POINT}.1.float-low", 10_000)], first
    bound = 2 * ledger.READ_AHEAD   # one look-back batch, the head and the roll-forward past it (measured: 35 to 44)
    for _ in range(3):
        another_replica()
        read = refused_reading(s)
        assert len(read) <= bound, f"{len(read)} journal reads for one refusal (journal of {LONG}):\n" + "\n".join(read)
        read = refused_reading(s)   # the same replica again: what it read is known
        assert len(read) <= bound, f"{len(read)} journal reads for one refusal (journal of {LONG}):\n" + "\n".join(read)
    deliver(s, 10_000)   # still below: the same episode, on a replica that knows nothing of it
    another_replica()
    deliver(s, 10_000)
    assert [e["id"] for e in alerts(s)] == [first[0]["id"]]


def test_an_episode_that_began_long_ago_is_not_alerted_again_after_a_restart(s):
    deliver(s, 12_000_000)                                # at or above the threshold: no episode
    assert withdraw(s, 5_000_000).status_code == 201      # 7M: the episode starts at this hold (entry 2)
    got = alerts(s)
    assert [e["id"] for e in got] == [f"{POINT}.2.float-low"], got
    for _ in range(LONG):
        deliver(s, 10_000)
    another_replica()
    assert len(refused_reading(s, 15_000_000)) <= 2 * ledger.READ_AHEAD
    assert [e["id"] for e in alerts(s)] == [got[0]["id"]]
    # back above the threshold and below again: a new episode, alerted once
    deliver(s, 10_000_000)
    assert withdraw(s, 9_000_000).status_code == 201
    another_replica()
    assert refused_reading(s, 15_000_000)
    ids = [e["id"] for e in alerts(s)]
    assert len(ids) == 2 and ids[0] == got[0]["id"] and ids[1] == f"{POINT}.{LONG + 4}.float-low", ids
