"""The simulated bank checks our webhooks as the partner-bank kit demands: a correct signature is
accepted once, the same signed request again (its nonce) is a replay and refused, a fresh signature
of the same webhook (our retry) is accepted, and the deliberate fault of the kit's tests accepts anything."""

from __future__ import annotations

import time

import pytest
from peer_modules import peer_module

from lscloud.auth import sign_request

pytestmark = pytest.mark.integration


@pytest.fixture
def signing(install):
    install()
    return peer_module("softatm-bank-sim", "signing")


def test_a_replayed_webhook_is_refused_and_a_retry_accepted(signing, settings):
    key = signing.keys(settings.state_dir)[0]
    raw = b'{"event_id":"t-1.1.0"}'
    headers = sign_request("POST", "/softatm-bank-sim/webhooks", raw, signing.CODE, "1", key)
    assert signing.verify(settings, headers, "/softatm-bank-sim/webhooks", raw) is True
    assert signing.verify(settings, headers, "/softatm-bank-sim/webhooks", raw) is False   # replay
    retry = sign_request("POST", "/softatm-bank-sim/webhooks", raw, signing.CODE, "1", key)
    assert signing.verify(settings, retry, "/softatm-bank-sim/webhooks", raw) is True
    tampered = sign_request("POST", "/softatm-bank-sim/webhooks", raw, signing.CODE, "1", key)
    assert signing.verify(settings, tampered, "/softatm-bank-sim/webhooks", raw + b" ") is False
    stale = sign_request("POST", "/softatm-bank-sim/webhooks", raw, signing.CODE, "1", key,
                         timestamp=int(time.time()) - settings.signature_window_s - 5)
    assert signing.verify(settings, stale, "/softatm-bank-sim/webhooks", raw) is False


def test_the_deliberate_fault_accepts_any_signature(signing, settings):
    faulty = settings.replace(service="softatm-bank-sim",
                              function_env={"SOFTATM_BANK_SIM_FAULT": "accept-any-signature"})
    assert signing.verify(faulty, {}, "/softatm-bank-sim/webhooks", b"{}") is True
    assert signing.verify(settings.replace(service="softatm-bank-sim"), {}, "/softatm-bank-sim/webhooks", b"{}") is False


def test_a_webhook_is_one_write_and_a_redelivery_none(install):
    """Issue 11: the bank records a webhook's work in one write — the transfer's record, which keeps
    the event ids it was written for — where it wrote a separate "seen" record first (two PUTs, and
    a seen record whose work could be lost between them). A redelivery changes nothing. A later
    webhook's change starts from the record as the process last wrote it: no read (round 5 read it)."""
    import queue

    from store_calls import counting

    install()
    webhooks = peer_module("softatm-bank-sim", "webhooks")

    class Worker:   # what the webhook hands on, without the worker threads
        def __init__(self):
            self.q, self.submitted = queue.Queue(), []

        def submit(self, tid, item):
            self.submitted.append((tid, item.data["todo"]))

    w = Worker()
    transfer = {"id": "w-sim-000001", "kind": "withdrawal", "state": "RECEIVED", "amount_vnd": 100_000,
                "account": "9900000001"}
    received = {"event_id": "w-sim-000001.RECEIVED", "type": "vn.langson.softatm.transfer.received.v1",
                "transfer": transfer}
    with counting() as first:
        webhooks.on_webhook(w, received)
    assert (first["put"], first["get"]) == (1, 0), first
    models = peer_module("softatm-bank-sim", "models")
    version = models.Record.get("w-sim-000001").version
    with counting() as again:
        webhooks.on_webhook(w, received)
    assert (again["put"], again["get"], len(w.submitted)) == (1, 0, 1), again   # its create-only try, refused
    assert models.Record.get("w-sim-000001").version == version
    committed = {"event_id": "w-sim-000001.COMMITTED", "type": "vn.langson.softatm.transfer.committed.v1",
                 "transfer": {**transfer, "state": "COMMITTED"}}
    with counting() as commit:
        webhooks.on_webhook(w, committed)
    assert (commit["put"], commit["get"]) == (1, 0), commit
    assert w.submitted == [("w-sim-000001", "decide-withdrawal"), ("w-sim-000001", "finish-withdrawal")]
