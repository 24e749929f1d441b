"""The soft ATM publishes each event once per request, through the runtime's outbox, against real
nats-server and weed mini: while NATS does not answer (the server stopped with SIGSTOP: its port
still takes connections, nothing is confirmed) a request tries an event once and keeps it, and the
tick's flush publishes it when NATS is back. And a transfer's answer says why it was aborted in
Vietnamese and English, the bank's reason beside it as sent."""

from __future__ import annotations

import os
import signal
from collections import Counter
from contextlib import contextmanager

import pytest

from functions.softatm.function import models
from lscloud import bus as busmod, outbox
from lscloud.delivery import tail

from test_softatm_api import POINT, wbody
from test_softatm_api import app, client, directory, expiry_s, fn, rt, setup  # noqa: F401 - its fixtures, reused

pytestmark = pytest.mark.integration

RECEIVED = "vn.langson.softatm.transfer.received.v1"


@pytest.fixture
def tries(monkeypatch) -> Counter:
    """Every publish the bus tries, by event id (the real publish still runs: NATS is not mocked)."""
    seen: Counter = Counter()
    real = busmod.SyncBus.publish

    def counted(self, event, **kwargs):
        seen[event["id"]] += 1
        return real(self, event, **kwargs)

    monkeypatch.setattr(busmod.SyncBus, "publish", counted)
    return seen


@contextmanager
def nats_not_answering(server):
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def test_a_create_while_nats_does_not_answer_tries_its_event_once_and_keeps_it(  # noqa: F811
        client, setup, rt, nats_server, tries):  # noqa: F811 - the imported fixtures
    """The admission announced the transfer (NATS: a wait, no answer), then the settle after it
    published the same event again (a second wait) — two 10 s waits for one create; and had both
    failed, the event waited for the sweep. Now it is tried once and kept in the outbox, the
    admission records its consequences done, and the tick's flush publishes it."""
    b = wbody()
    with nats_not_answering(nats_server):
        r = client.post("/v1/withdrawals", json=b, headers=setup["teller"])
    assert r.status_code == 201, r.get_data(as_text=True)
    event_id = f"{b['id']}.RECEIVED"
    assert tries[event_id] <= 1, tries
    assert event_id in {e["id"] for e in outbox.pending()}
    assert models.Transfer.get(b["id"]).data["notified"] == "RECEIVED"

    assert outbox.flush()["failed"] == 0   # NATS is back: the tick's flush
    assert event_id not in {e["id"] for e in outbox.pending()}
    published = [m["event"] for m in tail(rt.settings, 50)]
    assert [e["type"] for e in published if e.get("id") == event_id] == [RECEIVED]


def test_a_cash_delivery_while_nats_does_not_answer_is_answered_its_event_kept(  # noqa: F811
        client, setup, nats_server):  # noqa: F811
    """The soft ATM's own publish bypassed the outbox: a delivery waited 10 s for NATS and then
    failed, its cash moved and its event lost."""
    with nats_not_answering(nats_server):
        r = client.post(f"/v1/points/{POINT}/cash-deliveries", json={"id": "fund-0002", "amount_vnd": 1_000_000},
                        headers=setup["op"])
    assert r.status_code == 201, r.get_data(as_text=True)
    assert "fund-0002.delivery" in {e["id"] for e in outbox.pending()}
    assert outbox.flush()["failed"] == 0
    assert outbox.pending() == []


def test_each_event_of_a_withdrawal_is_published_once(client, setup, tries):  # noqa: F811
    b = wbody()
    assert client.post("/v1/withdrawals", json=b, headers=setup["teller"]).status_code == 201
    r = setup["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-1"})
    assert r.status_code == 200, r.get_data(as_text=True)
    r = client.post(f"/v1/withdrawals/{b['id']}/commit", json={}, headers=setup["teller"])
    assert r.status_code == 200 and r.get_json()["state"] == "COMMITTED", r.get_data(as_text=True)
    assert {k: n for k, n in tries.items() if k.startswith(b["id"])} == {
        f"{b['id']}.RECEIVED": 1, f"{b['id']}.RESERVED": 1, f"{b['id']}.COMMITTED": 1}
    assert outbox.pending() == []


def test_a_banks_reason_reaches_the_teller_in_vietnamese_and_english_beside_the_raw_one(client, setup):  # noqa: F811
    """A bank's abort reason reached the teller as the bank's bare English ("insufficient funds")."""
    known, unknown = wbody(), wbody()
    for b, reason in ((known, "insufficient funds"), (unknown, "core said no (E-417)")):
        assert client.post("/v1/withdrawals", json=b, headers=setup["teller"]).status_code == 201
        r = setup["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reject", {"reason": reason})
        assert r.status_code == 200 and r.get_json()["state"] == "ABORTED", r.get_data(as_text=True)

    seen = client.get(f"/v1/transfers/{known['id']}", headers=setup["teller"]).get_json()
    assert seen["abort_reason"] == "insufficient funds"
    assert seen["abort_reason_code"] == "insufficient-funds"
    assert seen["abort_message"]["vi"] == "Tài khoản của khách hàng không đủ số dư."
    assert "enough funds" in seen["abort_message"]["en"]

    seen = client.get(f"/v1/transfers/{unknown['id']}", headers=setup["teller"]).get_json()
    assert seen["abort_reason"] == "core said no (E-417)"
    assert seen["abort_reason_code"] == "other"
    assert seen["abort_message"]["vi"].startswith("Giao dịch đã bị hủy")
    assert seen["abort_message"]["en"].startswith("The transfer was aborted")

    open_one = wbody()
    created = client.post("/v1/withdrawals", json=open_one, headers=setup["teller"]).get_json()
    assert created["abort_reason"] is None and created["abort_reason_code"] is None
    assert created["abort_message"] is None
