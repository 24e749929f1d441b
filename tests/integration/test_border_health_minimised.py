"""A finished declaration's health answers and driver's phone are minimised ``BORDER_HEALTH_KEEP_DAYS``
after it ended (Law 91/2025/QH15 art. 14; Decree 13/2023/NĐ-CP: health data is sensitive), against
real weed mini + nats-server. Time moves with the platform clock's tick: its minute is the "now"
the minimisation judges by, so a tick a month ahead stands for a month passed."""

# ruff: noqa: F811 (pytest fixtures imported from border_support are named as parameters)
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from border_support import client, declaration, directory, DirectoryStub, idem, ok, TAX  # noqa: F401
from functions.border.function import ledger, migrate, models
from lscloud import clock, events, store
from lscloud.auth import delivery_headers
from lscloud.delivery import tail
from lscloud.web import app_state
from bucket_scan import every_object  # tests/integration helper module
from tests.unit.races import at_once

pytestmark = pytest.mark.integration

GATE = "tan-thanh"
NOW = datetime.now(timezone.utc)


@pytest.fixture
def fn(start_function, directory):
    # the live declarations here stay live through the month's ticks: a draft or a submitted
    # declaration untouched for BORDER_STALE_DRAFT_DAYS lapses (test_border_stale.py), then is minimised
    return start_function("border", peer_url_template=directory.template,
                          function_env={"BORDER_STALE_DRAFT_DAYS": "60"})


def tick(client, days: float, minute: int = 0):
    """The clock's tick for the minute ``days`` (and ``minute``) from now, as the trigger delivers it."""
    ev = clock.tick_event(NOW + timedelta(days=days, minutes=minute))
    headers, body = events.to_binary_http(ev)
    return ok(client.post("/events", data=body,
                          headers={**headers, **delivery_headers(app_state(client.application).settings)}))


class Crossing:
    """One declaration with answers and a phone no other declaration of the test has."""

    def __init__(self, client, tokens, *, submit=True):
        self.id = "d-" + uuid.uuid4().hex[:16]
        self.mark = uuid.uuid4().hex[:10]              # the symptom, as only this driver answered it
        self.digits = str(uuid.uuid4().int)[:9]          # the phone's own digits
        body = declaration(self.id, gate=GATE, submit=submit, plate="桂A·" + self.digits[:5], trailer=None)
        body["driver"]["phone"] = "+86 13" + self.digits
        body["health"] = {"fever": True, "symptoms": [f"cough-{self.mark}"], "contact_with_case": True,
                          "temperature_c": 38.4}
        self.ent, self.body = tokens("enterprise", TAX), body
        self.created = ok(client.post("/v1/declarations", json=body, headers=self.ent), 201)
        self.client, self.tokens = client, tokens

    def decide(self, agency: str, decision: str):
        return ok(self.client.post(f"/v1/declarations/{self.id}/decisions", json={"decision": decision, "notes": "checked"},
                                   headers=idem(self.tokens("officer", f"{agency}-1", agency=agency))))

    def cancel(self):
        return ok(self.client.post(f"/v1/declarations/{self.id}/cancel", headers=idem(self.ent)))

    def stored(self) -> models.Declaration:
        return models.Declaration.get(self.id)

    def personal(self) -> tuple[bytes, bytes]:
        return self.digits.encode(), self.mark.encode()


def objects_holding(needles: tuple[bytes, ...]) -> list[str]:
    """Every object of the function's bucket that holds one of ``needles`` (idempotency records left
    out: they keep a request's answer a day, and expire long before the keep period ends)."""
    objects, bucket = store.connection()
    return [key for key, o in every_object(objects, bucket).items()
            if not key.startswith("idempotency/") and any(n in o.body for n in needles)]


def events_holding(fn, needles: tuple[bytes, ...]) -> list[str]:
    import json

    return [m["event"]["type"] for m in tail(fn.settings, 500)
            if any(n in json.dumps(m["event"], ensure_ascii=False).encode() for n in needles)]


def due_entries() -> list[str]:
    return sorted(e.declaration_id for e in models.HealthDue.scan())


def minimise_actions(did: str) -> list[dict]:
    return [e for e in ledger.trail(did) if e["action"] == "minimise_health"]


def test_a_declaration_ended_longer_than_the_keep_period_is_minimised_and_no_other(client, fn, tokens):
    refused = Crossing(client, tokens)      # quarantine cleared the driver, the border guard refused the truck
    refused.decide("health-quarantine", "pass")
    assert refused.decide("border-guard", "refuse")["status"] == "refused"
    cancelled = Crossing(client, tokens)
    cancelled.cancel()
    draft = Crossing(client, tokens, submit=False)
    open_ = Crossing(client, tokens)
    open_.decide("health-quarantine", "hold")
    live = {c.id: c.stored() for c in (draft, open_)}
    assert due_entries() == sorted([refused.id, cancelled.id])
    # the answers and the phone are in the declaration, nowhere else, and in no event
    for c in (refused, cancelled):
        assert objects_holding(c.personal()) == [models.Declaration.located(c.id)[1]]
        assert events_holding(fn, c.personal()) == []
    before = {c.id: c.stored() for c in (refused, cancelled)}

    tick(client, 29)   # ended less than 30 days ago: kept
    for c in (refused, cancelled):
        assert c.stored().version == before[c.id].version and c.stored().data["health"]["fever"] is True
    assert due_entries() == sorted([refused.id, cancelled.id])

    tick(client, 31)
    for c, verdict in ((refused, "cleared"), (cancelled, "not-judged")):
        doc = c.stored().data
        assert set(doc["health"]) == {"minimised", "verdict", "answered", "minimised_at"}
        assert doc["health"]["minimised"] is True and doc["health"]["verdict"] == verdict
        assert doc["health"]["minimised_at"].startswith((NOW + timedelta(days=31)).date().isoformat())
        assert "phone" not in doc["driver"] and doc["driver"]["id_number"] == "E12345678"
        # two writes: the create's request digests (they would tell a yes/no answer to whoever holds
        # the key), then the document, audited
        assert before[c.id].request is not None and c.stored().request is None
        assert c.stored().version == before[c.id].version + 2
        (entry,) = minimise_actions(c.id)
        assert entry["actor"]["kind"] == "system" and "minimised" in entry["reason"]
        assert objects_holding(c.personal()) == []
        assert events_holding(fn, c.personal()) == []
    assert due_entries() == []
    # a draft and an open declaration are never touched
    for did, item in live.items():
        now = models.Declaration.get(did)
        assert now.version == item.version and now.data == item.data
        assert now.data["health"]["fever"] is True and now.data["driver"]["phone"].startswith("+8613")
    # the next tick finds nothing to do: no second write, no second audit entry
    tick(client, 32)
    assert refused.stored().version == before[refused.id].version + 2
    assert len(minimise_actions(refused.id)) == 1


def test_two_ticks_at_once_minimise_a_declaration_once(client, tokens):
    crossings = [Crossing(client, tokens) for _ in range(3)]
    for c in crossings:
        c.cancel()
    versions = {c.id: c.stored().version for c in crossings}
    answers = []
    assert at_once(lambda i: answers.append(tick(client, 31, minute=i)), 2) == []
    assert [a["status"] for a in answers] == ["done", "done"]
    for c in crossings:
        assert c.stored().version == versions[c.id] + 2   # the stamp dropped once, the document written once
        assert c.stored().data["health"]["minimised"] is True
        assert len(minimise_actions(c.id)) == 1
    assert due_entries() == []


def test_a_declaration_ended_before_this_release_is_found_through_the_migration(client, tokens):
    old = Crossing(client, tokens)
    old.cancel()
    # what the release before wrote: no health entry
    for entry in models.HealthDue.scan():
        entry.delete()
    tick(client, 31)
    assert old.stored().data["health"]["fever"] is True   # the tick lists entries, not declarations
    report = migrate.migrate(None)
    assert report["health_entries"] == {"added": 1}
    assert migrate.migrate(None)["health_entries"] == {"added": 0}   # run again: nothing twice
    tick(client, 31, minute=1)
    assert old.stored().data["health"]["minimised"] is True
    assert objects_holding(old.personal()) == []


def test_a_minimised_declaration_is_still_answered_everywhere(client, tokens):
    c = Crossing(client, tokens)
    c.decide("health-quarantine", "refuse")
    tick(client, 31)
    officer = tokens("officer", "customs-1", agency="customs")
    for who in (c.ent, officer):
        doc = ok(client.get(f"/v1/declarations/{c.id}", headers=who))
        assert doc["status"] == "refused" and doc["health"]["verdict"] == "refused"
        assert "deleted" in doc["health"]["message"] and "đã được xóa" in doc["health"]["message_vi"]
        assert "phone" not in doc["driver"]
    assert c.id in [d["id"] for d in ok(client.get("/v1/declarations", headers=c.ent))["items"]]
    assert any(e["action"] == "minimise_health" for e in ok(client.get(f"/v1/declarations/{c.id}/audit",
                                                                       headers=c.ent))["items"])
    ok(client.get(f"/v1/declarations/{c.id}/decisions", headers=c.ent))
    ok(client.get(f"/v1/declarations/{c.id}/position", headers=c.ent))
    lookup = ok(client.get("/v1/lookup", query_string={"code": c.created["code"], "plate": "桂A" + c.digits[:5]}))
    assert lookup["declaration"]["status"] == "refused"
    ok(client.get(f"/v1/gates/{GATE}/board"))
    # the create sent again a month on: the id is taken (nothing kept to tell it is the same request)
    again = client.post("/v1/declarations", json=c.body, headers=c.ent)
    assert again.status_code == 409 and again.content_type.startswith("application/problem+json")
    order = {"id": "order-" + uuid.uuid4().hex[:8], "gate": GATE, "flow": "in", "kind": "hold",
             "message_vi": "Tạm dừng", "declaration_ids": [c.id]}
    assert ok(client.post("/v1/traffic-orders", json=order, headers=tokens("officer", "tp-1", agency="traffic-police")),
              201)["recipients"] == []


def test_a_traffic_order_keeps_no_phone_and_the_migration_strips_old_ones(client, fn, tokens):
    c = Crossing(client, tokens)
    police = tokens("officer", "tp-1", agency="traffic-police")
    order = {"id": "order-" + uuid.uuid4().hex[:8], "gate": GATE, "flow": "in", "kind": "hold",
             "message_vi": "Tạm dừng", "message_zh": "暂停", "declaration_ids": [c.id]}
    ok(client.post("/v1/traffic-orders", json=order, headers=police), 201)
    stored = models.TrafficOrder.get(GATE, order["id"])
    assert [r["declaration_id"] for r in stored.data["recipients"]] == [c.id]
    assert objects_holding((c.digits.encode(),)) == [models.Declaration.located(c.id)[1]]
    # nor does its event: the notification gateway fetches the phone when it sends (test_border_traffic_notifier.py)
    assert events_holding(fn, (c.digits.encode(),)) == []
    # an order an older release stored with its phones loses them
    old = models.TrafficOrder(GATE, "order-old", data={**order, "id": "order-old", "recipients": [
        {**stored.data["recipients"][0], "driver_phone": "+8613" + c.digits}]})
    old.save()
    assert migrate.migrate(None)["order_phones"] == {"stripped": 1}
    assert "driver_phone" not in models.TrafficOrder.get(GATE, "order-old").data["recipients"][0]
    assert objects_holding((c.digits.encode(),)) == [models.Declaration.located(c.id)[1]]
