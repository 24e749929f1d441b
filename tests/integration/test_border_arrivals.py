"""The yard queue under concurrent writers of one declaration, against real weed mini + nats-server.

A move that puts a truck in the yard queue (its arrival, a priority grant, a missed call sent back)
is an ``op`` the aggregate runs again on a lost ``If-Match``. When the ``op`` itself created the
queue entry, the attempt that lost left its entry behind and the retry's create of the same key
was refused: two arrivals at once answered [200, 409 concurrent-update] and left the truck in the
queue twice, an arrival beside an agency's decision was refused, and the board counted 19 trucks
waiting for 10 in the yard (the lost-updates survey). Every test here races the two writers with
``at_once`` over several rounds and checks the queue against the declarations after each.
"""

# ruff: noqa: F811 (pytest fixtures imported from border_support are named as parameters)
from __future__ import annotations

import uuid

import pytest

from border_support import declaration, directory, DirectoryStub, idem, ok, TAX  # noqa: F401
from functions.border.function import ledger, models, tally
from tests.unit.races import at_once

pytestmark = pytest.mark.integration

GATE, QUEUE = "tan-thanh", "tan-thanh_in"   # an import crosses the "in" flow
ROUNDS = 5


@pytest.fixture
def border(start_function, directory):
    def _start(**env):
        return start_function("border", peer_url_template=directory.template, function_env=env)

    return _start


def queued_truck(client, tokens) -> str:
    did = "d-" + uuid.uuid4().hex[:16]
    ok(client.post("/v1/declarations", json=declaration(did, gate=GATE, booking={"mode": "living"}),
                   headers=tokens("enterprise", TAX)), 201)
    return did


def assert_the_queue_is_the_yard(ids: list[str]) -> None:
    """One queue entry per truck in the yard, at the key its declaration holds, none for another
    truck; and the queue's tally counts exactly those entries."""
    entries = list(models.QueueEntry.query(QUEUE))
    docs = {d["id"]: d for d in ledger.docs(ids)}
    in_yard = sorted(i for i, d in docs.items() if d["status"] == "in_yard")
    assert sorted(e.declaration_id for e in entries) == in_yard, \
        ([(e.declaration_id, e.key) for e in entries], {i: d["status"] for i, d in docs.items()})
    assert sorted(e.key for e in entries) == sorted(docs[i]["booking"]["queue_key"] for i in in_yard)
    assert sum((tally.counts(QUEUE) or {}).values()) == len(entries)


def test_two_arrivals_of_one_truck_at_once_leave_one_queue_entry(border, tokens):
    """The yard camera and the yard operator (here two operators) register one truck at once: one
    arrival, the other refused as the machine refuses an arrival of a truck in the yard (409
    naming the state), never a lost race's 409 and a second entry."""
    client = border().app.test_client()
    yard = [tokens("yard-operator", f"yard-{i}", unit=GATE) for i in range(2)]
    ids = []
    for _ in range(ROUNDS):
        did = queued_truck(client, tokens)
        ids.append(did)
        answers = []
        assert at_once(lambda i: answers.append(client.post(f"/v1/declarations/{did}/arrival",
                                                            headers=idem(yard[i]))), 2) == []
        answers.sort(key=lambda r: r.status_code)
        assert answers[0].status_code == 200, answers[0].get_data(as_text=True)
        second = answers[1]
        if second.status_code != 200:
            problem = second.get_json()
            assert second.status_code == 409 and problem["type"].endswith("illegal-transition"), problem
            assert problem["current_state"] == "in_yard", problem
        assert_the_queue_is_the_yard(ids)
    board = ok(client.get(f"/v1/gates/{GATE}/board"))
    assert board["flows"]["in"]["waiting"] == ROUNDS


def test_an_arrival_beside_an_agency_decision_both_succeed(border, tokens):
    """A truck arrives while customs records its decision: both writes succeed (the arrival's
    retry after the lost race computes the same key and writes no entry of its own)."""
    client = border().app.test_client()
    yard = tokens("yard-operator", "yard-1", unit=GATE)
    customs = tokens("officer", "customs-1", agency="customs")
    ids = []
    for _ in range(ROUNDS):
        did = queued_truck(client, tokens)
        ids.append(did)
        answers = {}

        def work(i):
            if i == 0:
                answers["arrival"] = client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard))
            else:
                answers["decision"] = client.post(f"/v1/declarations/{did}/decisions", headers=idem(customs),
                                                  json={"decision": "hold", "notes": "seal to check"})

        assert at_once(work, 2) == []
        assert ok(answers["decision"]) and ok(answers["arrival"])["status"] == "in_yard"
        assert_the_queue_is_the_yard(ids)


def test_a_priority_grant_beside_an_agency_decision_moves_the_truck_once(border, tokens):
    """An in-yard truck is granted the priority lane while customs decides: both succeed, and the
    truck waits once, in the priority lane."""
    client = border().app.test_client()
    yard = tokens("yard-operator", "yard-1", unit=GATE)
    operator, customs = tokens("operator", "op-1"), tokens("officer", "customs-1", agency="customs")
    ids = []
    for _ in range(ROUNDS):
        did = queued_truck(client, tokens)
        ids.append(did)
        ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard)))
        answers = {}

        def work(i):
            if i == 0:
                answers["grant"] = client.post(f"/v1/declarations/{did}/priority", headers=idem(operator),
                                               json={"category": "perishable", "reason": "durian"})
            else:
                answers["decision"] = client.post(f"/v1/declarations/{did}/decisions", headers=idem(customs),
                                                  json={"decision": "hold", "notes": "seal to check"})

        assert at_once(work, 2) == []
        assert ok(answers["decision"]) and ok(answers["grant"])["booking"]["queue_key"].startswith("0_")
        assert_the_queue_is_the_yard(ids)


def test_a_missed_call_swept_beside_an_agency_decision_requeues_the_truck_once(border, tokens):
    """The sweep sends a truck that missed its call back to the yard while customs decides: both
    succeed and the truck waits once. (Calls here have no time to reach the gate: every call is
    missed at the next sweep.) Each round ends with its truck at the gate, so the next round's
    call is its own truck's."""
    client = border(BORDER_CALL_MINUTES="0").app.test_client()
    yard = tokens("yard-operator", "yard-1", unit=GATE)
    gate = tokens("gate-operator", "gate-1", unit=GATE)
    customs = tokens("officer", "customs-1", agency="customs")
    ids = []
    for _ in range(ROUNDS):
        did = queued_truck(client, tokens)
        ids.append(did)
        ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard)))
        called = ok(client.post(f"/v1/gates/{GATE}/calls", json={"flow": "in", "count": 1}, headers=idem(gate)))
        assert [c["declaration_id"] for c in called["called"]] == [did]
        answers = {}

        def work(i):
            if i == 0:
                answers["sweep"] = client.post(f"/v1/gates/{GATE}/sweep", headers=idem(gate))
            else:
                answers["decision"] = client.post(f"/v1/declarations/{did}/decisions", headers=idem(customs),
                                                  json={"decision": "hold", "notes": "seal to check"})

        assert at_once(work, 2) == []
        assert ok(answers["decision"]) and ok(answers["sweep"])["missed"] == [{"declaration_id": did,
                                                                                "status": "in_yard"}]
        assert_the_queue_is_the_yard(ids)
        again = ok(client.post(f"/v1/gates/{GATE}/calls", json={"flow": "in", "count": 1}, headers=idem(gate)))
        assert [c["declaration_id"] for c in again["called"]] == [did]
        assert ok(client.post(f"/v1/declarations/{did}/at-gate", headers=idem(gate)))["status"] == "at_gate"
        assert_the_queue_is_the_yard(ids)


def test_an_arrival_cut_off_after_its_write_gets_its_entry_from_the_retry(border, tokens, monkeypatch):
    """The entry is written after the arrival's commit: a process that died between the two left
    a truck in the yard that no queue held (never called, never counted). Every write of the
    declaration creates its entry (the aggregate's side objects), so the retry the machine refuses
    (in_yard already) finishes the arrival's round, entry included."""
    from lscloud import aggregate
    from lscloud.store.errors import StoreUnavailable

    from cuts import cut_once

    client = border().app.test_client()
    yard = tokens("yard-operator", "yard-1", unit=GATE)
    did = queued_truck(client, tokens)
    cut = cut_once(monkeypatch, aggregate.Aggregate, "commit", lambda agg, out, *_, **__: out.doc["id"] == did,
                   error=StoreUnavailable("the process died here"))
    first = client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard))
    assert first.status_code == 503 and cut
    assert list(models.QueueEntry.query(QUEUE)) == []   # in the yard, in no queue
    again = client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard))
    assert again.status_code == 409, again.get_data(as_text=True)
    tally.recount_quietly(QUEUE, tally.part_of(ledger.docs([did])[0]["booking"]["queue_key"]))
    assert_the_queue_is_the_yard([did])
