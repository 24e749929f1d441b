"""A team member's erasure request (Law 91/2025/QH15, Art. 14(1)) in the community teams, on real weed
mini + nats-server: the member's teams are found by the member index (keyed by the roster's own
pseudonym of their sign-in id), the name each roster gives them is replaced by a neutral placeholder
(their place and role stay), the answers kept for a client's retry that hold it go, a second run
changes nothing, a re-application from the record erases a restored roster again, and the rosters
written before the index are found once the function's migration has indexed them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

import community_support
from community_support import DONG_DANG, LEADER, MEMBER
from digital_support import ok
from bucket_scan import bucket_bytes  # tests/integration helper module
from lscloud import erasure, pseudonyms, runtime

pytestmark = pytest.mark.integration

NEWCOMER, NEWCOMER_NAME = "020093005555", "Nông Văn Thắng"
LEADER_NAME, MEMBER_NAME = "Hoàng Văn Tú", "Lương Thị Mai"   # as community_support forms a team
PLACEHOLDER = "(đã xóa theo yêu cầu) / (erased on request)"
NAME_ERASED = "the member's name in team rosters (replaced by “(erased on request)”)"


@pytest.fixture
def client(start_function, peers):
    return start_function("community", peer_url_template=peers.template).app.test_client()


@pytest.fixture
def officer(tokens):
    return tokens("commune-officer", "cb-dongdang", unit=DONG_DANG)


def holding(objects: dict[str, bytes], *values: str) -> list[str]:
    forms = {f.encode() for v in values for f in (v, json.dumps(v)[1:-1])}
    return sorted(k for k, body in objects.items() if any(f in body for f in forms))


def add_newcomer(client, officer, team_id: str) -> dict:
    """The officer adds the newcomer, with a key: the answer (the roster, names and all) is kept for a retry."""
    return ok(client.post(f"/v1/teams/{team_id}/members", json={"id": NEWCOMER, "name": NEWCOMER_NAME},
                          headers={**officer, "Idempotency-Key": uuid.uuid4().hex}))


def run(subject: erasure.Subject, **kw) -> dict:
    from functions.community.function.erase import erase

    return erasure.run(runtime.current(), subject, {"community": erase}, operator="op-dpo", **kw)


def count(record: dict, english: str) -> int:
    return sum(e["count"] for e in record["erased"] if e["what"].endswith(english))


def roster(team_id: str) -> list[dict]:
    from functions.community.function.models import Team

    return Team.get(team_id).data["members"]


def erase_entries(team_id: str) -> list[dict]:
    from functions.community.function.models import TeamAudit

    return [a.data for a in TeamAudit.query(team_id) if a.data["action"] == "erase_member_name"]


def test_a_member_of_two_teams_is_erased_from_both_rosters_once(client, officer, tokens, settings, object_store):
    teams = [community_support.form_team(client, officer)["id"] for _ in range(2)]
    for team_id in teams:
        assert NEWCOMER_NAME in [m["name"] for m in add_newcomer(client, officer, team_id)["members"]]
    before = bucket_bytes(object_store, settings.bucket)
    assert holding(before, NEWCOMER_NAME)   # the rosters and the answers kept for a retry
    from functions.community.function.models import Team

    team_key = Team.located(teams[0])[1]

    record = run(erasure.Subject("cccd", NEWCOMER))
    assert record["failed"] == {} and record["found"] == 2, record
    assert count(record, NAME_ERASED) == 2
    assert count(record, "answers stored for a client's retry that hold the member's name") >= 2
    assert any(k["what"].endswith("the member's place on 2 team roster(s): a pseudonym of their sign-in ID, their role")
               for k in record["kept"])
    assert any(k["what"].startswith("hoạt động thành viên này đã ghi") and k["why"] for k in record["kept"])

    # no object holds the name any more; the other members' names are as they were
    after = bucket_bytes(object_store, settings.bucket)
    assert holding(after, NEWCOMER_NAME) == []
    assert team_key in holding(after, LEADER_NAME) and team_key in holding(after, MEMBER_NAME)
    ref = pseudonyms.pseudonym("community-members", NEWCOMER)
    for team_id in teams:
        members = roster(team_id)
        assert [(m["name"], m["role"]) for m in members] == [(LEADER_NAME, "leader"), (MEMBER_NAME, "member"),
                                                             (PLACEHOLDER, "member")]
        assert members[2]["ref"] == ref   # the place stays: the member still signs in for the team
        shown = ok(client.get(f"/v1/teams/{team_id}", headers=officer))
        assert [m["name"] for m in shown["members"]] == [LEADER_NAME, MEMBER_NAME, PLACEHOLDER]
        (entry,) = erase_entries(team_id)
        assert entry["details"] == {"fields": ["members.name"], "request": record["request"]}
        assert NEWCOMER_NAME not in json.dumps(entry, ensure_ascii=False)
    # the member still logs the team's work: the roster still lists them
    newcomer = tokens("team-member", NEWCOMER, unit=DONG_DANG)
    synced = ok(client.post("/v1/activities/sync", headers=newcomer, json={"activities": [{
        "client_id": "dev9-" + uuid.uuid4().hex[:12], "team": teams[0], "kind": "training",
        "details": {"participants": 12}, "happened_at": (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(),
        "revision": 1}]}))
    assert synced["counts"] == {"created": 1}

    # again: nothing more to erase, no second audit entry
    again = run(erasure.Subject("cccd", NEWCOMER))
    assert again["failed"] == {} and again["found"] == 0
    assert count(again, NAME_ERASED) == 0
    assert count(again, "team rosters whose name for the member was already erased before") == 2
    assert [len(erase_entries(t)) for t in teams] == [1, 1]

    # a backup from before the request restored: re-applied from the record alone, the name goes again
    object_store.put(settings.bucket, team_key, before[team_key])
    assert NEWCOMER_NAME in [m["name"] for m in roster(teams[0])]
    reapplied = run(erasure.Subject.from_record(record), reapplies=record["request"])
    assert reapplied["failed"] == {} and reapplied["found"] == 1
    assert [m["name"] for m in roster(teams[0])] == [LEADER_NAME, MEMBER_NAME, PLACEHOLDER]
    assert holding(bucket_bytes(object_store, settings.bucket), NEWCOMER_NAME) == []


def test_a_leader_erased_keeps_leading_and_another_persons_request_changes_nothing(client, officer, settings,
                                                                                    object_store):
    team_id = community_support.form_team(client, officer)["id"]
    other = run(erasure.Subject("cccd", NEWCOMER))   # on no roster
    assert other["found"] == 0 and count(other, NAME_ERASED) == 0
    assert [m["name"] for m in roster(team_id)] == [LEADER_NAME, MEMBER_NAME]

    record = run(erasure.Subject("cccd", LEADER))
    assert record["found"] == 1 and count(record, NAME_ERASED) == 1
    assert [(m["name"], m["role"]) for m in roster(team_id)] == [(PLACEHOLDER, "leader"), (MEMBER_NAME, "member")]
    assert holding(bucket_bytes(object_store, settings.bucket), LEADER_NAME) == []
    assert count(run(erasure.Subject("cccd", MEMBER)), NAME_ERASED) == 1
    assert [m["name"] for m in roster(team_id)] == [PLACEHOLDER, PLACEHOLDER]


def test_rosters_written_before_the_member_index_are_found_once_migrated(client, officer, settings, object_store):
    from functions.community.function.migrate import migrate

    teams = [community_support.form_team(client, officer)["id"] for _ in range(2)]
    add_newcomer(client, officer, teams[1])
    for o in object_store.list(settings.bucket, "community-teams-by-member/"):   # as the version before left them
        object_store.delete(settings.bucket, o.key)
    assert run(erasure.Subject("cccd", NEWCOMER))["found"] == 0   # nothing leads to the roster yet
    assert NEWCOMER_NAME in [m["name"] for m in roster(teams[1])]

    assert migrate(runtime.current()) == {"teams": 2, "member_entries": 5}
    assert migrate(runtime.current()) == {"teams": 2, "member_entries": 0}   # repeat-safe: nothing added twice

    record = run(erasure.Subject("cccd", NEWCOMER))
    assert record["found"] == 1 and count(record, NAME_ERASED) == 1
    assert [m["name"] for m in roster(teams[1])] == [LEADER_NAME, MEMBER_NAME, PLACEHOLDER]
    assert [m["name"] for m in roster(teams[0])] == [LEADER_NAME, MEMBER_NAME]
