"""Counting verified activities on a real store: a verification lists no counted set (it costs the
same in year five as on day one), concurrent verifications both count, a member written twice
counts once, and a count a crash left low is repaired by the clock's tick, never lowered."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from community_support import DONG_DANG, MEMBER, form_team as formed
from digital_support import ok
from lscloud.store import StoreUnavailable

pytestmark = pytest.mark.integration


@pytest.fixture
def community(start_function, peers):
    return start_function("community", peer_url_template=peers.template)


@pytest.fixture
def client(community):
    return community.app.test_client()


@pytest.fixture
def officer(tokens):
    return tokens("commune-officer", "cb-dongdang", unit=DONG_DANG)


def log(client, tokens, team: str, *households: str, kind: str = "household-visit") -> list[str]:
    """Activities synced by the team's member, one per household; their ids."""
    at = (datetime.now(timezone.utc) - timedelta(minutes=30)).isoformat()
    details = {"bank": "Agribank"} if kind == "epayment-account" else {}
    items = [{"client_id": f"dev1-{uuid.uuid4().hex[:12]}", "team": team, "kind": kind, "household": h,
              "details": details, "happened_at": at, "revision": 1} for h in households]
    answer = ok(client.post("/v1/activities/sync", json={"activities": items},
                            headers=tokens("team-member", MEMBER, unit=DONG_DANG)))
    assert answer["counts"] == {"created": len(items)}, answer
    return [i["client_id"] for i in items]


def progress(client, tokens) -> dict:
    return ok(client.get(f"/v1/communes/{DONG_DANG}/progress", headers=tokens("ioc")))


def team_row(client, officer, team: str) -> dict:
    rows = ok(client.get("/v1/rankings", query_string={"of": "teams", "commune": DONG_DANG}, headers=officer))["items"]
    return next(r for r in rows if r["team"] == team)


def test_a_verification_lists_no_counted_set_and_costs_the_same_every_time(client, tokens, officer):
    """The counts were listed again after every verification: 14 sets, the commune's holding every
    activity ever verified. Now a verification adds to the counts its members' creates say are new."""
    from store_calls import counting

    team = formed(client, officer)["id"]
    ids = log(client, tokens, team, "HK-A-0001", "HK-A-0002", "HK-A-0003", "HK-A-0004")
    costs = []
    for n, activity in enumerate(ids, start=1):
        with counting() as calls:
            answer = ok(client.post(f"/v1/activities/{activity}/verify", headers=officer))
        assert calls["list"] == 0, calls
        assert answer["progress"]["activities"]["household-visit"] == n
        assert answer["progress"]["indicators"]["visited"]["reached"] == n
        costs.append(dict(calls.counts))
    # from the second on (the progress documents exist), every verification asks the store the same
    assert costs[1] == costs[2] == costs[3], costs
    assert team_row(client, officer, team)["activities"]["household-visit"] == 4


def test_two_verifications_at_once_both_count(client, community, tokens, officer, monkeypatch):
    """Both read the commune's progress at the same version before either writes it: one write loses
    its If-Match and adds again to what the other stored."""
    from functions.community.function.models import CommuneProgress
    from store_calls import counting

    team = formed(client, officer)["id"]
    ok(client.post(f"/v1/activities/{log(client, tokens, team, 'HK-B-0000')[0]}/verify", headers=officer))
    first, second = log(client, tokens, team, "HK-B-0001", "HK-B-0002")
    before = progress(client, tokens)

    together = threading.Barrier(2, timeout=20)
    waited = set()
    save = CommuneProgress.save

    def save_after_both_read(self, **kw):
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            together.wait()
        return save(self, **kw)

    monkeypatch.setattr(CommuneProgress, "save", save_after_both_read)
    answers = {}

    def verify(activity):
        answers[activity] = community.app.test_client().post(f"/v1/activities/{activity}/verify", headers=officer)

    threads = [threading.Thread(target=verify, args=(a,)) for a in (first, second)]
    with counting() as calls:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert [answers[a].status_code for a in (first, second)] == [200, 200]
    after = progress(client, tokens)
    assert after["activities"]["household-visit"] == before["activities"]["household-visit"] + 2
    assert after["indicators"]["visited"]["reached"] == before["indicators"]["visited"]["reached"] + 2
    assert team_row(client, officer, team)["total"] == 3
    assert len([k for k in calls.keys_of("put") if k.startswith("community-progress/")]) >= 3   # a race was lost


def test_the_same_member_written_twice_counts_once(client, community, tokens, officer):
    """A household two teams visit, a verification repeated, a retried or concurrent count of one activity."""
    from functions.community.function import activities, tallies

    team, other = formed(client, officer)["id"], formed(client, officer)["id"]
    (mine,) = log(client, tokens, team, "HK-C-0001", kind="epayment-account")
    (theirs,) = log(client, tokens, other, "HK-C-0001", kind="epayment-account")
    before = progress(client, tokens)
    for activity in (mine, theirs, mine):
        ok(client.post(f"/v1/activities/{activity}/verify", headers=officer))
    doc = activities.records().get(mine).data
    tallies.count_in(doc)                                  # a request retried after its answer was lost
    threads = [threading.Thread(target=tallies.count_in, args=(doc,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    after = progress(client, tokens)
    main = "shop-or-payment"
    assert after["indicators"][main]["reached"] == before["indicators"][main]["reached"] + 1   # one household
    assert after["activities"]["epayment-account"] == before["activities"]["epayment-account"] + 2
    assert team_row(client, officer, team)["total"] == team_row(client, officer, other)["total"] == 1


def test_a_crash_after_the_members_leaves_a_count_low_until_the_tick_raises_it(client, tokens, officer, monkeypatch):
    """The member is written, the commune's count is not (the store fails): the officer's retry finds
    the member there and adds nothing; the tick's recount, once the verification is past its grace,
    raises the count to the members listed, and lowers none."""
    from functions.community.function import recount, tallies
    from functions.community.function.models import Counting, TeamProgress

    team = formed(client, officer)["id"]
    ok(client.post(f"/v1/activities/{log(client, tokens, team, 'HK-D-0000', kind='epayment-account')[0]}/verify",
                   headers=officer))
    (activity,) = log(client, tokens, team, "HK-D-0001", kind="epayment-account")
    change, failed = tallies._change, []

    def fails_once_for_the_commune(recent, key, fn):
        if recent is tallies._COMMUNES and not failed:
            failed.append(key)
            raise StoreUnavailable("the store went away after the members were written")
        return change(recent, key, fn)

    monkeypatch.setattr(tallies, "_change", fails_once_for_the_commune)
    assert client.post(f"/v1/activities/{activity}/verify", headers=officer).status_code == 503
    low = progress(client, tokens)
    assert (low["activities"]["epayment-account"], low["indicators"]["shop-or-payment"]["reached"]) == (1, 1)
    ok(client.post(f"/v1/activities/{activity}/verify", headers=officer))   # the retry: the members are there
    assert progress(client, tokens)["activities"] == low["activities"]
    (left,) = Counting.query_keys(tallies.OPEN)            # the failed run's entry; the retry's is settled

    # young, it may still be counting itself: the tick leaves it
    assert recount.reconcile(datetime.now(timezone.utc))["raised"] == 0
    assert Counting.query_keys(tallies.OPEN) == [left]
    # a count above its listing (a writer counted more since): never lowered
    TeamProgress.update(DONG_DANG, team, lambda item: item.data["activities"].update({"epayment-account": 7}))

    # past its grace, with another verification of the same sets in flight: it waits for that one
    old = datetime.now(timezone.utc) - tallies.GRACE - timedelta(minutes=1)
    aged = Counting(tallies.OPEN, f"{tallies.stamp(old)} {left.split(' ', 1)[1]}", data=Counting.get(tallies.OPEN, left).data)
    aged.save()
    Counting.get(tallies.OPEN, left).delete()
    in_flight = Counting(tallies.OPEN, f"{tallies.stamp(datetime.now(timezone.utc))} {activity} 0000beef",
                         data=aged.data)
    in_flight.save()
    assert recount.on_tick({"id": "tick-1"})["recount"] == {"raised": 0, "repaired": 0, "waiting": 1}
    in_flight.delete()

    assert recount.on_tick({"id": "tick-2"})["recount"] == {"raised": 3, "repaired": 1, "waiting": 0}
    fixed = progress(client, tokens)
    assert (fixed["activities"]["epayment-account"], fixed["indicators"]["shop-or-payment"]["reached"]) == (2, 2)
    assert fixed["indicators"]["visited"]["reached"] == 2
    assert team_row(client, officer, team)["activities"]["epayment-account"] == 7
    assert Counting.query_keys(tallies.OPEN) == []
    assert recount.on_tick({"id": "tick-3"})["recount"] == {"raised": 0, "repaired": 0, "waiting": 0}
