"""The field app's sync when a first run stops part-way (the store fails, or the process dies, after
an activity's write and before the answer) and the app sends the batch again: the resent activity
finishes what its create left (the officer's queue, its trail, its event), so it is verified and
counted; another member's resend of the id finishes nothing and learns nothing. Real weed mini +
nats-server; the failure is one store write made to raise."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

import community_support
from community_support import DONG_DANG, LEADER, MEMBER
from cuts import cut_once
from digital_support import ok
from lscloud.delivery import tail
from lscloud.store.errors import StoreUnavailable

from functions.community.function import activities, models

pytestmark = pytest.mark.integration


@pytest.fixture
def community(start_function, peers):
    return start_function("community", peer_url_template=peers.template)


@pytest.fixture
def client(community):
    return community.app.test_client()


def logged_events(community, cid: str) -> list[str]:
    return [m["event"]["id"].replace(cid, "<id>") for m in tail(community.settings, 200)
            if m["event"].get("subject") == cid and m["event"]["type"].endswith(".activity.logged.v1")]


@pytest.mark.parametrize("cut", ["the queue entry fails", "the process dies after the activity's write"])
def test_a_resent_activity_cut_off_reaches_the_officer_and_is_counted(client, community, tokens, monkeypatch, cut):
    """The activity is stored, then its round is cut off (its place on the officer's queue, or
    everything after its own write): the sync answers 503 and the app sends the batch again. The
    resend answers ``duplicate`` and finishes the create — the officer's queue holds it, its trail
    and its event are there once — so it is verified and counted (the old code answered
    ``duplicate`` and left it on no queue, never verified). Another member sending the same id in
    between gets ``conflict / taken`` and finishes nothing."""
    from lscloud import aggregate

    officer = tokens("commune-officer", "cb-dongdang", unit=DONG_DANG)
    team = community_support.form_team(client, officer)
    member = tokens("team-member", MEMBER, unit=DONG_DANG)
    cid = f"dev1-{uuid.uuid4().hex[:12]}"
    happened = (datetime.now(timezone.utc) - timedelta(minutes=30)).isoformat()
    batch = [{"client_id": cid, "team": team["id"], "kind": "household-visit", "household": "020095001234",
              "happened_at": happened, "revision": 1}]
    if cut == "the queue entry fails":
        cuts = cut_once(monkeypatch, models.Pending, "save", lambda item, **_: item.activity_id == cid)
    else:
        cuts = cut_once(monkeypatch, aggregate.Aggregate, "commit", lambda agg, outcome, *_, **__: outcome.doc["id"] == cid,
                        error=StoreUnavailable("the process died here"))
    first = client.post("/v1/activities/sync", json={"activities": batch}, headers=member)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    assert int(models.Activity.get(cid).version) == 1
    queue = f"/v1/communes/{DONG_DANG}/pending"

    leader = tokens("team-leader", LEADER, unit=DONG_DANG)
    (r,) = ok(client.post("/v1/activities/sync", json={"activities": batch}, headers=leader))["results"]
    assert r == {"client_id": cid, "result": "conflict", "why": "taken"}
    assert [i["id"] for i in ok(client.get(queue, headers=officer))["items"]] == []

    again = ok(client.post("/v1/activities/sync", json={"activities": batch}, headers=member))
    assert again["results"] == [{"client_id": cid, "result": "duplicate", "status": "submitted", "revision": 1}]
    assert [i["id"] for i in ok(client.get(queue, headers=officer))["items"]] == [cid]
    assert [e["action"] for e in activities.records().trail(cid)] == ["log"]
    assert logged_events(community, cid) == ["<id>.1.0"]
    assert ok(client.post("/v1/activities/sync", json={"activities": batch}, headers=member))["counts"] == {"duplicate": 1}
    assert [e["action"] for e in activities.records().trail(cid)] == ["log"]

    verified = ok(client.post(f"/v1/activities/{cid}/verify", headers=officer))
    assert verified["status"] == "verified" and verified["progress"]["indicators"]["visited"]["reached"] == 1
    assert ok(client.get(queue, headers=officer))["items"] == []
    # a resend after the decision finishes nothing: the decided activity stays off the queue
    assert ok(client.post("/v1/activities/sync", json={"activities": batch}, headers=member))["counts"] == {"duplicate": 1}
    assert list(models.Pending.query(DONG_DANG)) == []
