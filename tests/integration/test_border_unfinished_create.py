"""A border declaration whose create was cut off between its record and its round, and whose client
never sent it again, against real weed mini + nats-server.

The survey (restart/p6orphans): a declaration answered 502 stayed ``submitted`` with its audit
entries but without its owner and plate indexes and without its ``declaration.submitted`` event —
missing from the enterprise's list, unknown to the gate's cameras, never counted by the IOC — after
minutes of ticks and a restart: only a resend (same key, same body) finished it. The platform
clock's tick now does, once the create is older than the settle time.
"""

# ruff: noqa: F811 (pytest fixtures imported from border_support are named as parameters)
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from lscloud import aggregate, clock, events
from lscloud.auth import delivery_headers
from lscloud.delivery import tail
from lscloud.store.errors import StoreUnavailable
from lscloud.web import app_state

from border_support import declaration, directory, DirectoryStub, fn, TAX  # noqa: F401
from cuts import cut_once
from functions.border.function import device_events

pytestmark = pytest.mark.integration

SUBMITTED = "vn.langson.border.declaration.submitted.v1"


def tick(client, at: datetime):
    """The platform clock's tick for ``at``'s minute, delivered as the dispatcher delivers it."""
    headers, body = events.to_binary_http(clock.tick_event(at))
    r = client.post("/events", data=body,
                    headers={**headers, **delivery_headers(app_state(client.application).settings)})
    assert r.status_code == 200, r.get_data(as_text=True)


def test_a_declaration_cut_off_after_its_record_is_finished_by_the_tick_without_a_resend(fn, tokens, monkeypatch):
    client = fn.app.test_client()
    ent = tokens("enterprise", TAX)
    did = "d-" + uuid.uuid4().hex[:16]
    plate = f"桂A·{uuid.uuid4().int % 90000 + 10000}"

    def listed() -> list[str]:
        r = client.get("/v1/declarations", headers=ent)
        assert r.status_code == 200, r.get_data(as_text=True)
        return [d["id"] for d in r.get_json()["items"]]

    def at_the_plate() -> list[str]:
        return [d["id"] for d in device_events.candidates(plate, "huu-nghi")]

    def submitted() -> list[str]:
        return [m["event"]["id"] for m in tail(fn.settings, 200)
                if m["event"]["type"] == SUBMITTED and m["event"].get("subject") == did]

    # the process dies between the declaration's create-only write and its round
    cuts = cut_once(monkeypatch, aggregate.Aggregate, "commit",
                    lambda agg, outcome, *_, **__: outcome.doc["id"] == did,
                    error=StoreUnavailable("the process died here"))
    first = client.post("/v1/declarations", json=declaration(did, plate=plate), headers=ent)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    r = client.get(f"/v1/declarations/{did}", headers=ent)
    assert r.status_code == 200 and r.get_json()["status"] == "submitted"
    assert did not in listed() and at_the_plate() == [] and submitted() == []

    # the client gives up. A tick within the settle time leaves a create that may be under way alone
    now = datetime.now(timezone.utc)
    tick(client, now)
    assert did not in listed() and at_the_plate() == [] and submitted() == []

    # a tick past it finishes the round as a resend would: listed, found by its plate, announced once
    tick(client, now + timedelta(minutes=3))
    assert did in listed()
    assert at_the_plate() == [did]
    assert submitted() == [f"{did}.1.1"]
    trail = client.get(f"/v1/declarations/{did}/audit", headers=ent).get_json()["items"]
    assert [e["action"] for e in trail] == ["create", "submit"]

    # the next tick finds nothing left to do: nothing twice
    tick(client, now + timedelta(minutes=4))
    assert listed().count(did) == 1 and at_the_plate() == [did] and submitted() == [f"{did}.1.1"]
