"""A slot's seats: given back only by the declaration that holds them, however often its cleanup runs."""

# ruff: noqa: F811 (pytest fixtures imported from border_support are named as parameters)
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from border_support import declaration, directory, DirectoryStub, TAX  # noqa: F401
from waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def client(start_function, directory):
    return start_function("border", peer_url_template=directory.template).app.test_client()


def test_a_cancelled_crossings_seat_given_back_again_is_not_another_trucks(client, tokens):
    """Seat numbers are reused. D1 cancels (its seat 0 is free), D2 books seat 0, then a refused move
    on D1 within the redo window runs D1's cleanup again (lscloud.aggregate's _finish_moved): a
    blind delete took D2's seat, and D3 got seat 0 too in a slot of capacity 1 (the lost-updates
    survey demonstrated it)."""
    from functions.border.function import models

    op, ent = tokens("operator", "op-1"), tokens("enterprise", TAX)
    assert client.put("/v1/gates/tan-thanh/capacity/in", json={"per_hour": 1, "reason": "one lane"},
                      headers=op).status_code == 200
    slot = (datetime.now(timezone.utc) + timedelta(hours=30)).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y%m%d%H")

    def book():
        did = "d-" + uuid.uuid4().hex[:16]
        r = client.post("/v1/declarations", headers=ent,
                        json=declaration(did, gate="tan-thanh", booking={"mode": "reservation", "slot": slot}))
        return did, r

    def seats():
        return sorted(s.declaration_id for s in models.SlotSeat.scan())

    d1, r = book()
    assert r.status_code == 201
    assert client.post(f"/v1/declarations/{d1}/cancel", headers={**ent, "Idempotency-Key": uuid.uuid4().hex}
                       ).status_code == 200
    wait_for(lambda: seats() == [], "D1's seat given back")
    d2, r = book()
    assert r.status_code == 201 and seats() == [d2]
    again = client.post(f"/v1/declarations/{d1}/cancel", headers={**op, "Idempotency-Key": uuid.uuid4().hex})
    assert again.status_code == 409   # cancelled already: refused, and D1's cleanup runs again
    d3, r = book()
    assert r.status_code == 409 or r.get_json()["booking"]["seat"] != 0, r.get_json()
    assert d2 in seats()
