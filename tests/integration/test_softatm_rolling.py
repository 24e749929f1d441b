"""Replicas of three revisions share the soft ATM's bucket during a rolling deploy or a rollback:
the code before reservations expired, the code that moved a reservation's ``expires_at`` to the
teller's deadline (the bank's kept as ``answer_by``), and this one. Each sweep deletes an open
entry whose key is not the one it computes for the transfer (a resend's orphan), so the key must
come out the same whichever revision computes it, or a reserved withdrawal loses its entry and is
never expired (the customer's money reserved at the bank, the point's cash held, for good).

The other revisions' key computations are reproduced here, as ``git show`` gives them; time moves
through the function's clock seam, never by sleeping; against the real weed mini and nats-server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.softatm.function import actions, documents, limits, models, sweep
from lscloud.statemachine import parse_iso

from test_softatm_api import POINT, float_of
from test_softatm_api import app, client, directory, expiry_s, rt, setup  # noqa: F401 - its fixtures, reused
from test_softatm_reserved_expiry import at, open_entries, reserved
from test_softatm_reserved_expiry import atm, fn, reserved_expiry_s  # noqa: F401 - its fixtures, reused

pytestmark = pytest.mark.integration


def _micros(text: str) -> int:
    return int(parse_iso(text).timestamp() * 1_000_000)


def key_before_expiry(doc: dict) -> str:
    """``open_key`` of the code before reservations expired (``git show bf0f07e^:…/documents.py``)."""
    return f"{_micros(doc['expires_at']):016d}_{doc['id']}"


def key_of_moved_expiry(doc: dict) -> str:
    """``open_key`` of the code that moved ``expires_at`` at a reservation (bf0f07e)."""
    return f"{_micros(doc.get('answer_by') or doc['expires_at']):016d}_{doc['id']}"


def test_a_reservation_keeps_its_open_entry_when_a_replica_of_the_code_before_sweeps(atm, monkeypatch):  # noqa: F811
    web, s = atm.client, atm.s
    t = reserved(atm)
    tid = t["id"]
    doc = models.Transfer.get(tid).data
    entry = open_entries(tid)
    assert entry == [key_before_expiry(doc)] == [key_of_moved_expiry(doc)] == [documents.open_key(doc)]
    bank_deadline = parse_iso(doc["created_at"]) + timedelta(seconds=300)
    teller_deadline = parse_iso(t["reserved_at"]) + timedelta(seconds=900)
    # the stored expires_at keeps its first meaning; callers are shown the teller's deadline, and the
    # code that moved expires_at, reading this layout as a reservation made before, counts the same one
    assert parse_iso(doc["expires_at"]) == bank_deadline
    assert parse_iso(t["expires_at"]) == teller_deadline
    assert parse_iso(web.get(f"/v1/transfers/{tid}", headers=s["teller"]).get_json()["expires_at"]) == teller_deadline

    # a replica of the code before sweeps, well past the bank's deadline (and the orphans' grace)
    sweep._cursor[0] = None
    monkeypatch.setattr(sweep, "open_key", key_before_expiry)
    at(monkeypatch, bank_deadline + timedelta(minutes=2), actions, sweep)
    counts = sweep.sweep()
    assert counts["orphans"] == 0 and counts["expired"] == 0, counts
    assert open_entries(tid) == entry

    # this code's sweep, past the teller's deadline, still finds it and expires it
    monkeypatch.setattr(sweep, "open_key", documents.open_key)
    at(monkeypatch, teller_deadline + timedelta(seconds=1), actions, sweep)
    counts = sweep.sweep()
    assert counts["expired"] == 1 and counts["errors"] == 0, counts
    d = models.Transfer.get(tid).data
    assert (d["state"], d["abort_reason"], d["notified"]) == ("ABORTED", "expired", "ABORTED")
    assert open_entries(tid) == []
    assert float_of(web, s) == {"point": POINT, "cash_vnd": 50_000_000, "held_vnd": 0}


def as_moved_expiry(tid: str) -> dict:
    """Store transfer ``tid`` as the code that moved ``expires_at`` reserved it: ``answer_by`` the
    bank's deadline (its open entry's key), ``expires_at`` the teller's, no ``reserved_until``."""
    item = models.Transfer.get(tid)
    d = item.data
    bank, teller = d.get("answer_by") or d["expires_at"], d.get("reserved_until") or d["expires_at"]
    item.data = {**{k: v for k, v in d.items() if k != "reserved_until"}, "answer_by": bank, "expires_at": teller}
    item.save()
    return item.data


def test_a_reservation_stored_by_the_code_that_moved_expires_at_is_expired_not_orphaned(atm, monkeypatch):  # noqa: F811
    web, s = atm.client, atm.s
    t, other = reserved(atm), reserved(atm, 1_000_000)
    doc, _ = as_moved_expiry(t["id"]), as_moved_expiry(other["id"])
    entry = open_entries(t["id"])
    assert entry == [key_of_moved_expiry(doc)]
    bank_deadline, teller_deadline = parse_iso(doc["answer_by"]), parse_iso(doc["expires_at"])
    got = web.get(f"/v1/transfers/{t['id']}", headers=s["teller"]).get_json()
    assert got["state"] == "RESERVED" and parse_iso(got["expires_at"]) == teller_deadline

    sweep._cursor[0] = None
    at(monkeypatch, bank_deadline + timedelta(minutes=2), actions, sweep)
    counts = sweep.sweep()
    assert counts["orphans"] == 0 and counts["expired"] == 0, counts
    assert open_entries(t["id"]) == entry and models.Transfer.get(t["id"]).data["state"] == "RESERVED"
    # the other one a teller finishes: its final settle finds its entry by the same key
    assert web.post(f"/v1/withdrawals/{other['id']}/commit", json={}, headers=s["teller"]).status_code == 200
    assert open_entries(other["id"]) == []

    at(monkeypatch, teller_deadline + timedelta(seconds=1), actions, sweep)
    counts = sweep.sweep()
    assert counts["expired"] == 1 and counts["orphans"] == 0 and counts["errors"] == 0, counts
    d = models.Transfer.get(t["id"]).data
    assert (d["state"], d["abort_reason"], d["notified"]) == ("ABORTED", "expired", "ABORTED")
    assert open_entries(t["id"]) == []
    assert t["id"] not in models.CustomerDay.get(limits.daily_key(d)).used
    assert float_of(web, s) == {"point": POINT, "cash_vnd": 49_000_000, "held_vnd": 0}


def test_a_webhook_shows_the_deadline_a_get_shows(atm):  # noqa: F811
    # the stored expires_at stays the bank's deadline; a bank told of a reserved withdrawal's end by
    # webhook sees the teller's deadline, as its GET of the transfer does
    from functions.softatm.function import webhooks

    t = reserved(atm)
    doc = models.Transfer.get(t["id"]).data
    body = webhooks.body_for({"id": "e1", "type": "vn.langson.softatm.transfer.aborted.v1"}, doc)
    assert body["transfer"]["expires_at"] == t["expires_at"] != doc["expires_at"]
