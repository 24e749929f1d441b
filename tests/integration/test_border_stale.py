"""Declarations that can no longer happen end, against real weed mini + nats-server: a draft or a
submitted declaration untouched for ``BORDER_STALE_DRAFT_DAYS`` (30), a booking whose slot ended
``BORDER_STALE_SLOT_HOURS`` (24) ago with no truck in the yard. The platform clock's tick moves them
to ``expired`` (``lapse``, actor system, with a reason), their event goes out as any transition's,
and the health keep period then minimises them: before, they kept the driver's health answers and
phone for good. Time moves with the tick: its minute is the "now" the sweep judges by."""

# ruff: noqa: F811 (pytest fixtures imported from border_support are named as parameters)
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from border_support import client, declaration, directory, DirectoryStub, fn, idem, ok, TAX  # noqa: F401
from functions.border.function import ledger, models, queue
from lscloud import clock, events
from lscloud.auth import delivery_headers
from lscloud.delivery import tail
from lscloud.web import app_state
from lscloud.workdays import TZ
from tests.unit.races import at_once

pytestmark = pytest.mark.integration

GATE = "tan-thanh"
NOW = datetime.now(timezone.utc)


def tick(client, at: datetime) -> dict:
    """The clock's tick for ``at``'s minute, as the trigger delivers it."""
    headers, body = events.to_binary_http(clock.tick_event(at))
    return ok(client.post("/events", data=body,
                          headers={**headers, **delivery_headers(app_state(client.application).settings)}))


def make(client, tokens, *, submit=True, booking=None) -> tuple[str, dict]:
    did = "d-" + uuid.uuid4().hex[:16]
    body = declaration(did, gate=GATE, submit=submit, booking=booking, trailer=None,
                       plate="桂A·" + str(uuid.uuid4().int)[:5])
    body["driver"]["phone"] = "+86 13812345678"
    body["health"] = {"fever": True, "symptoms": ["cough"], "contact_with_case": True, "temperature_c": 38.4}
    ent = tokens("enterprise", TAX)
    ok(client.post("/v1/declarations", json=body, headers=ent), 201)
    return did, ent


def status(did: str) -> str:
    return models.Declaration.get(did).data["status"]


def lapses(did: str) -> list[dict]:
    return [e for e in ledger.trail(did) if e["action"] == "lapse"]


def expired_events(fn, did: str) -> list[dict]:
    return [m["event"] for m in tail(fn.settings, 500) if m["event"].get("data", {}).get("declaration_id") == did
            and m["event"]["type"] == "vn.langson.border.declaration.expired.v1"]


def health_due() -> list[str]:
    return sorted(e.declaration_id for e in models.HealthDue.scan())


def slot_end(did: str) -> datetime:
    return queue.slot_start(models.Declaration.get(did).data["booking"]["slot"]) + timedelta(hours=1)


def test_a_draft_untouched_for_30_days_lapses_and_is_then_minimised(client, fn, tokens):
    did, ent = make(client, tokens, submit=False)
    tick(client, NOW + timedelta(days=29))
    assert status(did) == "draft" and lapses(did) == []
    tick(client, NOW + timedelta(days=31))
    doc = models.Declaration.get(did).data
    assert doc["status"] == "expired" and doc["timestamps"]["expired"].startswith((NOW + timedelta(days=31)).date().isoformat())
    (entry,) = lapses(did)
    assert entry["from"] == "draft" and entry["actor"]["kind"] == "system"
    assert "30 days" in entry["reason"] and "30 ngày" in entry["reason"]
    (event,) = expired_events(fn, did)
    assert event["data"]["status"] == "expired" and event["data"]["action"] == "lapse"
    assert "+86" not in json.dumps(event) and "fever" not in json.dumps(event)
    # it has ended: its health entry is written, and the keep period counts from its lapse
    assert did in health_due()
    assert doc["health"]["fever"] is True and doc["driver"]["phone"]
    tick(client, NOW + timedelta(days=60))
    assert models.Declaration.get(did).data["health"]["fever"] is True
    tick(client, NOW + timedelta(days=62))
    doc = ok(client.get(f"/v1/declarations/{did}", headers=ent))
    assert doc["status"] == "expired" and doc["health"]["minimised"] is True and "phone" not in doc["driver"]
    assert did not in health_due()


def test_a_booked_truck_that_never_arrives_lapses_a_day_after_its_slot(client, fn, tokens):
    did, _ = make(client, tokens, booking={"mode": "living"})
    assert status(did) == "queued"
    end = slot_end(did)
    tick(client, end + timedelta(hours=23))
    assert status(did) == "queued"
    tick(client, end + timedelta(hours=25))
    assert status(did) == "expired"
    (entry,) = lapses(did)
    assert entry["from"] == "queued" and "24 h" in entry["reason"] and "24 giờ" in entry["reason"]
    (event,) = expired_events(fn, did)
    assert event["data"]["from"] == "queued" and event["data"]["to"] == "expired"
    assert did in health_due()


def test_a_declaration_booked_after_its_day_was_read_lapses_after_its_slot_not_a_month_on(client, tokens):
    did, ent = make(client, tokens)                      # submitted, not booked
    tick(client, NOW + timedelta(days=2))                # its day is read: looked at again a day on at most
    assert status(did) == "submitted"
    ok(client.post(f"/v1/declarations/{did}/booking", json={"mode": "living"}, headers=idem(ent)))
    assert status(did) == "queued" and slot_end(did) < NOW + timedelta(days=2)
    tick(client, NOW + timedelta(days=3, minutes=1))
    assert status(did) == "expired" and lapses(did)[0]["from"] == "queued"


def test_only_what_can_no_longer_happen_lapses(client, tokens):
    in_yard, _ = make(client, tokens, booking={"mode": "living"})
    ok(client.post(f"/v1/declarations/{in_yard}/arrival", headers=idem(tokens("yard-operator", unit=GATE))))
    cancelled, ent = make(client, tokens)
    ok(client.post(f"/v1/declarations/{cancelled}/cancel", headers=idem(ent)))
    fresh, _ = make(client, tokens)
    version = models.Declaration.get(in_yard).version
    tick(client, NOW + timedelta(days=20))
    assert status(fresh) == "submitted"
    tick(client, NOW + timedelta(days=40))
    assert status(fresh) == "expired"
    # a truck in the yard, a cancelled crossing: not the sweep's (the cancelled one is minimised, as before)
    assert models.Declaration.get(in_yard).version == version and status(in_yard) == "in_yard"
    assert status(cancelled) == "cancelled" and lapses(in_yard) == lapses(cancelled) == []


def test_two_ticks_at_once_lapse_each_once_and_a_day_read_is_not_read_again(client, tokens):
    from store_calls import counting

    drafts = [make(client, tokens, submit=False)[0] for _ in range(2)]
    queued = [make(client, tokens, booking={"mode": "living"})[0] for _ in range(2)]
    versions = {d: models.Declaration.get(d).version for d in drafts + queued}
    answers = []
    assert at_once(lambda i: answers.append(tick(client, NOW + timedelta(days=31, minutes=i))), 2) == []
    assert [a["status"] for a in answers] == ["done", "done"]
    for d in drafts + queued:
        assert status(d) == "expired" and len(lapses(d)) == 1
        assert models.Declaration.get(d).version == versions[d] + 1
    # the day index was read once: a later tick reads no declaration again
    with counting() as calls:
        tick(client, NOW + timedelta(days=31, minutes=5))
    table = models.Declaration.Meta.table + "/"
    assert [k for k in calls.keys_of("get") if k.startswith(table)] == [], calls


def test_the_minimised_note_names_the_day_in_the_province(client, tokens):
    did, ent = make(client, tokens)
    ok(client.post(f"/v1/declarations/{did}/cancel", headers=idem(ent)))
    # 31+ days on, at 00:30 in Lạng Sơn: 17:30 UTC the day before
    at = (NOW + timedelta(days=32)).replace(hour=17, minute=30, second=0, microsecond=0)
    tick(client, at)
    health = ok(client.get(f"/v1/declarations/{did}", headers=ent))["health"]
    here, utc = at.astimezone(TZ).date().isoformat(), at.date().isoformat()
    assert health["minimised"] is True and here != utc
    assert here in health["message"] and here in health["message_vi"]
    assert utc not in health["message"] and utc not in health["message_vi"]


def test_a_draft_made_before_this_release_gets_its_entry_from_the_migration_helper(client, tokens):
    from functions.border.function import lapse

    did, _ = make(client, tokens, submit=False)
    for entry in models.StaleDue.scan():   # what the release before wrote: no entry for a draft
        entry.delete()
    assert lapse.add_draft_entries() == {"added": 1}
    assert lapse.add_draft_entries() == {"added": 0}   # run again: nothing twice
    tick(client, NOW + timedelta(days=31))
    assert status(did) == "expired"
