"""The simulated bank decides a withdrawal, the soft ATM refuses its reserve (409: the transfer
expired or was aborted meanwhile), and the bank asks the transfer's state to know whether to spend or
release the hold. When that question meets an outage (a 503 problem, as the soft ATM answers while its
store or NATS does not), the work must stay owed: marked done, the customer's hold would stay on the
account with nothing left to release it (unless the abort webhook that follows happens to arrive)."""

from __future__ import annotations

import pytest
from peer_modules import peer_module

pytestmark = pytest.mark.integration


class Answer:
    def __init__(self, status: int, body: dict):
        self.status_code, self._body = status, body

    def json(self) -> dict:
        return self._body

    def header(self, name: str):
        return "5" if (name == "Retry-After" and self.status_code == 503) else None


def test_a_state_question_unanswered_keeps_the_work_and_the_hold_for_the_next_try(install):
    install()
    worker, models = peer_module("softatm-bank-sim", "worker"), peer_module("softatm-bank-sim", "models")
    w = worker.Worker(None, start=False)
    outage = [True]

    def call(method, path, body=None):
        if path.endswith("/reserve"):
            return Answer(409, {"status": 409, "current_state": "ABORTED"})
        if outage[0]:
            return Answer(503, {"type": "https://errors.lscloud.langson.gov.vn/unavailable", "status": 503})
        return Answer(200, {"state": "ABORTED"})

    w.call = call
    account, tid = "9912349999", "w-refused-1"
    models.Record(tid, data={"id": tid, "kind": "withdrawal", "amount_vnd": 3_000_000, "account": account,
                             "state": "RECEIVED", "todo": "decide-withdrawal", "events": ["e1"]}).save()
    with pytest.raises(RuntimeError):
        w.process(tid)
    assert models.Record.get(tid).data["todo"] == "decide-withdrawal"   # still owed: the rescan tries again

    outage[0] = False
    w.process(tid)
    assert models.Record.get(tid).data["todo"] is None
    assert tid not in models.Account.get(account).holds   # aborted: the hold released


def test_a_transfer_the_soft_atm_does_not_know_releases_its_hold_and_the_work_is_done(install):
    # a webhook that was not the soft ATM's (a bank that accepts any signature): nothing to wait for
    install()
    worker, models = peer_module("softatm-bank-sim", "worker"), peer_module("softatm-bank-sim", "models")
    w = worker.Worker(None, start=False)

    def call(method, path, body=None):
        if path.endswith("/reserve"):
            return Answer(404, {"status": 404})
        return Answer(404, {"status": 404})

    w.call = call
    account, tid = "9912349998", "w-unknown-1"
    models.Record(tid, data={"id": tid, "kind": "withdrawal", "amount_vnd": 1_000_000, "account": account,
                             "state": "RECEIVED", "todo": "decide-withdrawal", "events": ["e1"]}).save()
    w.process(tid)
    assert models.Record.get(tid).data["todo"] is None
    assert tid not in models.Account.get(account).holds


def test_any_other_refusal_of_the_state_question_keeps_the_hold_owed(install):
    # only a 404 says the soft ATM holds nothing: a 403 (a key not taken, a policy) is no such answer
    install()
    worker, models = peer_module("softatm-bank-sim", "worker"), peer_module("softatm-bank-sim", "models")
    w = worker.Worker(None, start=False)
    w.call = lambda method, path, body=None: Answer(409 if path.endswith("/reserve") else 403, {"status": 403})
    account, tid = "9912349997", "w-forbidden-1"
    models.Record(tid, data={"id": tid, "kind": "withdrawal", "amount_vnd": 1_000_000, "account": account,
                             "state": "RECEIVED", "todo": "decide-withdrawal", "events": ["e1"]}).save()
    with pytest.raises(RuntimeError):
        w.process(tid)
    assert models.Record.get(tid).data["todo"] == "decide-withdrawal"
    assert tid in models.Account.get(account).holds
