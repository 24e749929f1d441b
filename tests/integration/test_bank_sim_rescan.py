"""The simulated bank's rescan (a crash's safety net) reads its records a page a round: every
record with work pending is queued once the rescan has gone through, no round reads more than
a page, and a record held as it is stored is not read again (a rescan of a long day all at once was the p99 of the soft-ATM soak's tenth minute). Its
day is not reconciled while a rescan is still going through its pages: a later page may hold work."""

from __future__ import annotations

import pytest
from peer_modules import peer_module

pytestmark = pytest.mark.integration


def _modules():
    return peer_module("softatm-bank-sim", "worker"), peer_module("softatm-bank-sim", "models")


def test_a_rescan_queues_every_pending_record_a_page_at_a_time(install, monkeypatch):
    from store_calls import counting

    install()
    worker, models = _modules()
    monkeypatch.setattr(worker, "RESCAN_PAGE", 7)
    pending = set()
    for i in range(20):
        todo = "decide-withdrawal" if i % 3 else None
        models.Record(f"w-scan-{i:04d}", data={"id": f"w-scan-{i:04d}", "todo": todo}).save()
        if todo:
            pending.add(f"w-scan-{i:04d}")

    w = worker.Worker(None, start=False)   # the rescan alone, without the worker threads
    place, rounds = None, 0
    while True:
        with counting() as calls:
            place = w.rescan_page(place)
        rounds += 1
        assert calls["get"] <= worker.RESCAN_PAGE, calls
        if place is None:
            break
    queued = []
    while not w.q.empty():
        queued.append(w.q.get())
    assert rounds == 3 and sorted(queued) == sorted(pending)

    # the next rescan reads only what changed since: here one record another process wrote (work
    # for it came in elsewhere); the records held as they are stored cost no GET
    models.Record.update("w-scan-0000", None, lambda r: r.data.update(todo="finish-withdrawal"))
    with counting() as calls:
        place = None
        while True:
            place = w.rescan_page(place)
            if place is None:
                break
    queued = []
    while not w.q.empty():
        queued.append(w.q.get())
    assert calls["get"] == 1 and sorted(queued) == sorted(pending | {"w-scan-0000"})


def test_no_reconciliation_before_a_rescan_has_read_its_last_page(install, monkeypatch):
    install()
    worker, models = _modules()
    monkeypatch.setattr(worker, "RESCAN_PAGE", 7)
    monkeypatch.setattr(worker, "RECONCILE_S", 0.0)   # settled and quiet: only the rescan holds it back
    for i in range(20):   # nothing pending on them: the queue stays empty between pages
        models.Record(f"w-quiet-{i:04d}", data={"id": f"w-quiet-{i:04d}", "todo": None}).save()
    w = worker.Worker(None, start=False)
    reconciled = []
    w._reconcile_today = lambda: reconciled.append(rounds)
    w.settled.set()
    state = worker.RescanState()
    rounds = 0
    while True:
        rounds += 1
        w.rescan_round(state)
        if not state.scanning:
            break
    assert rounds == 3 and reconciled == [3]
