"""A withdrawal the bank reserved and no teller finished (the customer walked away, the tablet
crashed) expires ``SOFTATM_RESERVED_EXPIRY_S`` after the reservation: the system aborts it
(``expired``) with what a teller's abort brings — the bank's ``transfer.aborted`` webhook, the
point's held cash released, the daily limit given back, the open entry gone. It used to stay
RESERVED for good. Time moves through the function's clock seam (``actions.now``, ``sweep.now``),
never by sleeping; against the real weed mini and nats-server of the soft ATM's own tests."""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest

from functions.softatm.function import actions, limits, models, sweep, telemetry, transfers
from lscloud import events, runtime
from lscloud.auth import delivery_headers
from lscloud.config import ConfigError
from lscloud.statemachine import parse_iso
from tests.unit.races import at_once

from test_softatm_api import POINT, float_of, wbody
from test_softatm_api import app, client, directory, expiry_s, hooks, rt, setup  # noqa: F401 - its fixtures, reused

pytestmark = pytest.mark.integration

ABORTED_TYPE = "vn.langson.softatm.transfer.aborted.v1"
COMMITTED_TYPE = "vn.langson.softatm.transfer.committed.v1"


@pytest.fixture
def reserved_expiry_s() -> str:
    """SOFTATM_RESERVED_EXPIRY_S of the function under test (empty: its default)."""
    return ""


@pytest.fixture
def fn(start_function, directory, tmp_path, expiry_s, reserved_expiry_s):  # noqa: F811 - imported fixtures
    env = {"SOFTATM_EXPIRY_S": expiry_s}
    if reserved_expiry_s:
        env["SOFTATM_RESERVED_EXPIRY_S"] = reserved_expiry_s
    instance = start_function("softatm", peer_url_template=directory.template, state_dir=str(tmp_path),
                              function_env=env)
    runtime.current().bus.ensure_stream()
    return instance


@pytest.fixture
def atm(rt, app, client, setup):  # noqa: F811 - imported fixtures
    """The soft ATM of test_softatm_api's fixtures: its runtime, app, test client and ``setup``
    (two banks, a funded point, tokens)."""
    return SimpleNamespace(rt=rt, app=app, client=client, s=setup)


def reserved(atm, amount=2_000_000) -> dict:
    """A withdrawal created by the teller and reserved by the bank: the transfer as the bank's answer shows it."""
    web, s = atm.client, atm.s
    b = wbody(amount)
    assert web.post("/v1/withdrawals", json=b, headers=s["teller"]).status_code == 201
    r = s["vcb"].call("POST", f"/v1/bank/withdrawals/{b['id']}/reserve", {"bank_reference": "VCB-R"})
    assert r.status_code == 200 and r.get_json()["state"] == "RESERVED", r.get_data(as_text=True)
    return r.get_json()


def at(monkeypatch, when, *modules) -> None:
    for m in modules or (actions,):
        monkeypatch.setattr(m, "now", lambda: when)


def open_entries(tid: str) -> list[str]:
    return [e.entry for e in models.OpenTransfer.query_all("open") if e.transfer_id == tid]


def delivered(atm, event: dict) -> None:
    """The platform's delivery of one of our facts to /events (what the dispatcher does)."""
    h, body = events.to_binary_http(event)
    assert atm.client.post("/events", data=body,
                           headers={**h, **delivery_headers(atm.rt.settings)}).status_code == 200


@pytest.mark.parametrize("reserved_expiry_s", ["", "600"])
def test_a_reservation_tells_its_own_deadline(atm, reserved_expiry_s):
    """``expires_at`` is the teller's deadline once the bank reserved, not the bank's passed one."""
    web, s = atm.client, atm.s
    t = reserved(atm)
    seconds = int(reserved_expiry_s or 900)
    assert parse_iso(t["expires_at"]) == parse_iso(t["reserved_at"]) + timedelta(seconds=seconds)
    got = web.get(f"/v1/transfers/{t['id']}", headers=s["teller"]).get_json()
    assert got["state"] == "RESERVED" and got["expires_at"] == t["expires_at"]


def test_a_reservation_nobody_finishes_is_aborted_on_read_as_a_tellers_abort_is(atm, request, monkeypatch):
    web, s, bank_hooks = atm.client, atm.s, request.getfixturevalue("hooks")
    t = reserved(atm)
    tid = t["id"]
    assert float_of(web, s)["held_vnd"] == 2_000_000
    doc = models.Transfer.get(tid).data
    assert tid in models.CustomerDay.get(limits.daily_key(doc)).used
    counted = []
    monkeypatch.setattr(telemetry, "transfer", lambda kind, outcome: counted.append((kind, outcome)))

    at(monkeypatch, parse_iso(t["expires_at"]) - timedelta(seconds=1))
    assert web.get(f"/v1/transfers/{tid}", headers=s["teller"]).get_json()["state"] == "RESERVED"
    at(monkeypatch, parse_iso(t["expires_at"]) + timedelta(seconds=1))
    got = web.get(f"/v1/transfers/{tid}", headers=s["teller"]).get_json()
    assert (got["state"], got["abort_reason"]) == ("ABORTED", "expired")
    assert counted == [("withdrawal", "expired")]
    assert float_of(web, s) == {"point": POINT, "cash_vnd": 50_000_000, "held_vnd": 0}
    assert tid not in models.CustomerDay.get(limits.daily_key(doc)).used   # the customer's limit given back
    assert open_entries(tid) == []
    # the bank is told as of a teller's abort: our transfer.aborted, delivered to its webhook
    fact = [e for e in atm.rt.bus.replay([ABORTED_TYPE]) if e["id"] == f"{tid}.ABORTED"]
    assert len(fact) == 1 and fact[0]["data"]["abort_reason"] == "expired"
    delivered(atm, fact[0])
    signed, body, _ = bank_hooks.got[-1]
    assert signed and body["type"] == ABORTED_TYPE and body["event_id"] == f"{tid}.ABORTED"
    assert (body["transfer"]["id"], body["transfer"]["state"], body["transfer"]["abort_reason"]) == \
        (tid, "ABORTED", "expired")
    assert web.get("/v1/ledger/verify", headers=s["op"]).get_json()["ok"]


def test_the_sweep_expires_a_reservation_nobody_finishes(atm, monkeypatch):
    web, s = atm.client, atm.s
    t, other = reserved(atm), reserved(atm, 1_000_000)
    end = parse_iso(t["expires_at"])
    sweep._cursor[0] = None
    at(monkeypatch, end - timedelta(seconds=1), actions, sweep)
    assert sweep.sweep()["expired"] == 0
    assert models.Transfer.get(t["id"]).data["state"] == "RESERVED"
    assert web.post(f"/v1/withdrawals/{other['id']}/commit", json={}, headers=s["teller"]).status_code == 200
    at(monkeypatch, end + timedelta(seconds=1), actions, sweep)
    counts = sweep.sweep()
    assert counts["expired"] == 1 and counts["errors"] == 0, counts
    d = models.Transfer.get(t["id"]).data
    assert (d["state"], d["abort_reason"], d["notified"]) == ("ABORTED", "expired", "ABORTED")
    assert models.Transfer.get(other["id"]).data["state"] == "COMMITTED"
    assert float_of(web, s) == {"point": POINT, "cash_vnd": 49_000_000, "held_vnd": 0}
    assert open_entries(t["id"]) == open_entries(other["id"]) == []
    assert sweep.sweep()["expired"] == 0   # nothing read again, nothing left to expire


def test_a_commit_after_the_expiry_is_refused_and_pays_nothing_out(atm, monkeypatch):
    web, s = atm.client, atm.s
    t = reserved(atm)
    at(monkeypatch, parse_iso(t["expires_at"]) + timedelta(seconds=1))
    r = web.post(f"/v1/withdrawals/{t['id']}/commit", json={}, headers=s["teller"])
    assert r.status_code == 409 and r.get_json()["type"].endswith("expired"), r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert models.Transfer.get(t["id"]).data["abort_reason"] == "expired"
    assert float_of(web, s) == {"point": POINT, "cash_vnd": 50_000_000, "held_vnd": 0}


def test_a_commit_decided_before_the_deadline_loses_to_the_expiry_written_first(atm, monkeypatch):
    """The teller's replica judged the reservation live (its clock a second before the deadline),
    but the expiry's write came first: the commit's If-Match write meets the abort and is refused
    as expired, so the teller does not hand the cash over."""
    web, s = atm.client, atm.s
    t = reserved(atm)
    end = parse_iso(t["expires_at"])
    at(monkeypatch, end + timedelta(seconds=1))
    assert web.get(f"/v1/transfers/{t['id']}", headers=s["op"]).get_json()["state"] == "ABORTED"
    at(monkeypatch, end - timedelta(seconds=1))
    r = web.post(f"/v1/withdrawals/{t['id']}/commit", json={}, headers=s["teller"])
    assert r.status_code == 409 and r.get_json()["type"].endswith("expired"), r.get_data(as_text=True)
    assert float_of(web, s) == {"point": POINT, "cash_vnd": 50_000_000, "held_vnd": 0}


def test_the_banks_late_calls_do_not_bring_an_expired_reservation_back(atm, monkeypatch):
    web, s = atm.client, atm.s
    t = reserved(atm)
    at(monkeypatch, parse_iso(t["expires_at"]) + timedelta(seconds=1))
    again = s["vcb"].call("POST", f"/v1/bank/withdrawals/{t['id']}/reserve", {"bank_reference": "VCB-R"})
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert (again.get_json()["state"], again.get_json()["abort_reason"]) == ("ABORTED", "expired")
    late = s["vcb"].call("POST", f"/v1/bank/transfers/{t['id']}/abort", {"reason": "customer cancelled"})
    assert late.status_code == 409 and late.get_json()["type"].endswith("expired")
    d = models.Transfer.get(t["id"]).data
    assert (d["state"], d["abort_reason"]) == ("ABORTED", "expired")
    assert float_of(web, s) == {"point": POINT, "cash_vnd": 50_000_000, "held_vnd": 0}


def test_a_commit_and_the_expiry_at_the_same_moment_have_one_winner(atm, monkeypatch):
    """The teller's commit (its replica's clock just before the deadline) and a read that expires
    the transfer (its replica's just after) race for the same If-Match write, round after round:
    either the commit is answered 200 and the transfer is COMMITTED, or it is refused as expired
    and the transfer is ABORTED; a read past the deadline never shows it RESERVED; the bank hears
    exactly one outcome; the cash adds up."""
    web, s = atm.client, atm.s
    clock = threading.local()
    real = transfers.now
    monkeypatch.setattr(actions, "now", lambda: getattr(clock, "at", None) or real())
    rounds = [reserved(atm, 1_000_000) for _ in range(6)]
    committed = 0
    for t in rounds:
        end = parse_iso(t["expires_at"])
        answers: dict[int, object] = {}

        def work(i, t=t, end=end, answers=answers):
            c = atm.app.test_client()
            if i == 0:
                clock.at = end - timedelta(milliseconds=1)
                answers[0] = c.post(f"/v1/withdrawals/{t['id']}/commit", json={}, headers=s["teller"])
            else:
                clock.at = end + timedelta(milliseconds=1)
                answers[1] = c.get(f"/v1/transfers/{t['id']}", headers=s["op"])

        assert at_once(work, 2) == []
        commit, read = answers[0], answers[1]
        d = models.Transfer.get(t["id"]).data
        assert read.status_code == 200 and read.get_json()["state"] in ("COMMITTED", "ABORTED"), read.get_json()
        if commit.status_code == 200:
            assert d["state"] == "COMMITTED" and commit.get_json()["state"] == "COMMITTED"
            committed += 1
        else:
            assert commit.status_code == 409 and commit.get_json()["type"].endswith("expired"), commit.get_json()
            assert (d["state"], d["abort_reason"]) == ("ABORTED", "expired")
    monkeypatch.setattr(actions, "now", lambda: real() + timedelta(seconds=3600))
    for t in rounds:   # whatever the race left unsettled, a read settles
        web.get(f"/v1/transfers/{t['id']}", headers=s["op"])
    outcomes = [e["id"] for e in atm.rt.bus.replay([ABORTED_TYPE, COMMITTED_TYPE])]
    for t in rounds:
        assert len([o for o in outcomes if o in (f"{t['id']}.ABORTED", f"{t['id']}.COMMITTED")]) == 1, outcomes
    assert float_of(web, s) == {"point": POINT, "cash_vnd": 50_000_000 - committed * 1_000_000, "held_vnd": 0}
    assert web.get("/v1/ledger/verify", headers=s["op"]).get_json()["ok"]


def test_a_withdrawal_reserved_before_reservations_expired_gets_its_deadline_from_its_reservation(atm, monkeypatch):
    """Stored by the code before this one: RESERVED, no ``answer_by``, ``expires_at`` still the
    bank's deadline, long past. It is not aborted at the first read after the upgrade (a teller may
    be paying it out), but ``SOFTATM_RESERVED_EXPIRY_S`` after its ``reserved_at``."""
    web, s = atm.client, atm.s
    t = reserved(atm)
    item = models.Transfer.get(t["id"])
    bank = item.data.get("answer_by") or item.data["expires_at"]   # wherever this code keeps the bank's deadline
    item.data = {**{k: v for k, v in item.data.items() if k not in ("answer_by", "reserved_until")}, "expires_at": bank}
    item.save()
    end = parse_iso(t["reserved_at"]) + timedelta(seconds=900)
    at(monkeypatch, end - timedelta(seconds=1))
    got = web.get(f"/v1/transfers/{t['id']}", headers=s["teller"]).get_json()
    assert got["state"] == "RESERVED" and parse_iso(got["expires_at"]) == end
    at(monkeypatch, end + timedelta(seconds=1))
    assert web.get(f"/v1/transfers/{t['id']}", headers=s["teller"]).get_json()["abort_reason"] == "expired"
    assert open_entries(t["id"]) == []
    assert float_of(web, s) == {"point": POINT, "cash_vnd": 50_000_000, "held_vnd": 0}


@pytest.mark.parametrize("value", ["0", "later"])
def test_a_bad_reserved_expiry_stops_the_start_naming_its_variable(start_function, directory, value):  # noqa: F811
    with pytest.raises(ConfigError, match="SOFTATM_RESERVED_EXPIRY_S"):
        start_function("softatm", peer_url_template=directory.template,
                       function_env={"SOFTATM_RESERVED_EXPIRY_S": value})
