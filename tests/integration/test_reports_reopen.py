"""A reopened report starts a new handling round, on real weed mini + nats-server: the deadline its
service gives, counted from the reopen; its due and queue entries under it; an overdue flag of its
own. The first round stays as it was. (It kept the first deadline: fixed on time and reopened after
that deadline, it was flagged overdue by the next minute's tick.) Time moves through the clock the
domain and the state machine read (``reports.now``, ``statemachine.now``) and the tick's minute."""

from __future__ import annotations

from datetime import timedelta

import pytest

from digital_support import ok
from lscloud import statemachine
from lscloud.delivery import tail
from lscloud.statemachine import parse_iso

pytestmark = pytest.mark.integration

DONG_DANG, CCCD = "06184", "020088001111"
AGENCY = "so-xay-dung"


@pytest.fixture
def client(start_function, peers):
    return start_function("reports", peer_url_template=peers.template).app.test_client()


def at(monkeypatch, when):
    from functions.reports.function import reports as domain

    monkeypatch.setattr(statemachine, "now", lambda: when)
    monkeypatch.setattr(domain, "now", lambda: when)


def filed(client, tokens) -> tuple[str, dict, dict]:
    citizen = tokens("citizen", CCCD)
    r = ok(client.post("/v1/reports", headers=citizen, json={
        "service_code": "GT-HU-HONG", "lat": 21.8537, "long": 106.7610, "commune": DONG_DANG,
        "attributes": {"severity": ["high"]}, "description": "Ổ gà lớn"}), 201)
    return r["id"], citizen, tokens("officer", "cb-sxd", agency=AGENCY)


def test_a_reopen_after_the_first_deadline_gets_a_deadline_of_its_own(client, tokens, rt, monkeypatch):
    from functions.reports.function import catalog, reports as domain, schedule
    from functions.reports.function.models import AgencyQueue, DueReport

    rid, citizen, officer = filed(client, tokens)
    first = domain.records().get(rid).data
    for action in ("acknowledge", "start", "fix"):              # fixed the same day, well before the deadline
        ok(client.post(f"/v1/reports/{rid}/actions/{action}", json={}, headers=officer))
    assert [e for e in DueReport.query_keys("due") if e.endswith(rid)] == []

    reopened_at = parse_iso(first["deadline"]) + timedelta(days=30)
    at(monkeypatch, reopened_at)
    view = ok(client.post(f"/v1/reports/{rid}/actions/reopen", json={"reason": "Vẫn còn ổ gà"}, headers=citizen))
    doc = domain.records().get(rid).data
    deadline = domain.deadline_of(catalog.get("GT-HU-HONG"), reopened_at)
    assert parse_iso(doc["deadline"]) == deadline > reopened_at and doc["overdue"] is False
    assert parse_iso(view["deadline"]) == deadline
    assert doc["rounds"] == [{"started_at": first["requested_at"], "deadline": first["deadline"], "overdue": False}]
    assert doc["round_started_at"] == statemachine.iso(reopened_at)
    # its due and queue entries are under the new deadline
    assert [e for e in DueReport.query_keys("due") if e.endswith(rid)] == [f"{doc['deadline']}_{rid}"]
    assert [e for e in AgencyQueue.query_keys(AGENCY) if e.endswith(rid)] == [f"{doc['deadline']}_{rid}"]
    assert [d["id"] for d in ok(client.get("/v1/queue", headers=officer))["items"]].count(rid) == 1
    # Open311 and the reopen's event say when it is now expected
    (request,) = ok(client.get(f"/open311/v2/requests/{rid}.json"))
    assert parse_iso(request["expected_datetime"]) == deadline
    (event,) = [m["event"] for m in tail(rt.settings, 200)
                if m["event"]["type"].endswith(".report.reopened.v1") and m["event"]["data"]["report_id"] == rid]
    assert parse_iso(event["data"]["deadline"]) == deadline

    # the next minute's tick: not overdue; once the new deadline has passed: overdue, once
    assert schedule.sweep(reopened_at + timedelta(minutes=1))["flagged"] == 0
    assert domain.records().get(rid).data["overdue"] is False
    assert schedule.sweep(deadline + timedelta(minutes=1))["flagged"] == 1
    assert domain.records().get(rid).data["overdue"] is True
    assert schedule.sweep(deadline + timedelta(minutes=2))["flagged"] == 0


def test_a_round_flagged_overdue_stays_so_and_the_next_starts_unflagged(client, tokens, rt, monkeypatch):
    from functions.reports.function import reports as domain, schedule

    rid, citizen, officer = filed(client, tokens)
    first = domain.records().get(rid).data
    late = parse_iso(first["deadline"]) + timedelta(hours=1)
    assert schedule.sweep(late)["flagged"] >= 1
    ok(client.post(f"/v1/reports/{rid}/actions/acknowledge", json={}, headers=officer))
    ok(client.post(f"/v1/reports/{rid}/actions/fix", json={}, headers=officer))
    again = late + timedelta(days=2)
    at(monkeypatch, again)
    ok(client.post(f"/v1/reports/{rid}/actions/reopen", json={"reason": "Chưa sửa xong"}, headers=officer))
    doc = domain.records().get(rid).data
    assert doc["overdue"] is False and parse_iso(doc["deadline"]) > again
    assert doc["rounds"] == [{"started_at": first["requested_at"], "deadline": first["deadline"], "overdue": True}]
    # the first round's lateness is in its history as it was
    history = ok(client.get(f"/v1/reports/{rid}", headers=citizen))["history"]
    assert [h["state"] for h in history if h["overdue"]] == ["submitted"], history
    # a second reopen keeps both rounds, the second from its own start
    ok(client.post(f"/v1/reports/{rid}/actions/fix", json={}, headers=officer))
    third = again + timedelta(days=1)
    at(monkeypatch, third)
    ok(client.post(f"/v1/reports/{rid}/actions/reopen", json={"reason": "Lại hỏng"}, headers=citizen))
    rounds = domain.records().get(rid).data["rounds"]
    assert [r["started_at"] for r in rounds] == [first["requested_at"], statemachine.iso(again)]
    assert [r["overdue"] for r in rounds] == [True, False]
