"""The community function on real weed mini + nats-server: a team formed by its commune, activities
synced offline (twice, in pieces, edited) and counted once, verified by the commune officer, progress
against Resolution 49, rankings and the events for the IOC — and the role matrix."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from jsonschema import Draft202012Validator
from PIL import Image

import community_support
import role_matrix
from community_support import DONG_DANG, LEADER, MEMBER
from digital_support import ok
from lscloud import images, store
from lscloud.delivery import tail

pytestmark = pytest.mark.integration

ROOT = role_matrix.ROOT
CHI_LANG, OUTSIDER = "06463", "020091003333"
HOUSEHOLD_A, HOUSEHOLD_B = "HK-06184-0042", "020070004444"


@pytest.fixture
def community(start_function, peers):
    return start_function("community", peer_url_template=peers.template)


@pytest.fixture
def client(community):
    return community.app.test_client()


def when(minutes_ago=30):
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).isoformat()


def test_every_endpoint_answers_only_the_roles_of_its_table(community, keys):
    assert role_matrix.check(community.app, "community", keys[0], samples={"code": DONG_DANG}) > 200


def form_team(client, tokens, team_id=None):
    officer = tokens("commune-officer", "cb-dongdang", unit=DONG_DANG)
    return community_support.form_team(client, officer, team_id), officer


def test_a_batch_synced_twice_and_in_pieces_counts_once_and_the_commune_verifies(client, tokens, rt):
    team, officer = form_team(client, tokens)
    assert team["commune_name"] == "Xã Đồng Đăng" and [m["role"] for m in team["members"]] == ["leader", "member"]
    assert LEADER not in json.dumps(team)
    member = tokens("team-member", MEMBER, unit=DONG_DANG)

    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (21.0, 56.0, 0.0), 3: "E", 4: (106.0, 42.0, 0.0)}
    raw = io.BytesIO()
    Image.new("RGB", (32, 32), (20, 120, 40)).save(raw, "JPEG", exif=exif.tobytes())
    photo = ok(client.post("/v1/photos", data=raw.getvalue(), headers={**member, "Content-Type": "image/jpeg"}), 201)
    assert not images.has_location(store.blobs("community-photos").get(photo["sha256"]))

    ids = [f"dev1-{uuid.uuid4().hex[:12]}" for _ in range(5)]
    batch = [
        {"client_id": ids[0], "team": team["id"], "kind": "household-visit", "household": HOUSEHOLD_A,
         "happened_at": when(90), "revision": 1, "photo": photo["sha256"]},
        {"client_id": ids[1], "team": team["id"], "kind": "epayment-account", "household": HOUSEHOLD_A,
         "details": {"bank": "Agribank"}, "happened_at": when(80), "revision": 1},
        {"client_id": ids[2], "team": team["id"], "kind": "digital-shop", "household": HOUSEHOLD_A,
         "details": {"platform": "postmart.vn"}, "happened_at": when(70), "revision": 1},
        {"client_id": ids[3], "team": team["id"], "kind": "app-install", "household": HOUSEHOLD_B,
         "details": {"app": "vneid"}, "happened_at": when(60), "revision": 1},
        {"client_id": ids[4], "team": team["id"], "kind": "training", "details": {"participants": 25},
         "happened_at": when(50), "revision": 1},
    ]
    first = ok(client.post("/v1/activities/sync", json={"activities": batch}, headers=member))
    assert first["counts"] == {"created": 5}
    again = ok(client.post("/v1/activities/sync", json={"activities": batch}, headers=member))
    assert again["counts"] == {"duplicate": 5}
    piece = ok(client.post("/v1/activities/sync", json={"activities": batch[3:]}, headers=member))
    assert piece["counts"] == {"duplicate": 2}
    # the batch's address is not an activity's: a GET there names the method that is, and reads nothing
    wrong = client.get("/v1/activities/sync", headers=member)
    assert (wrong.status_code, wrong.headers["Allow"], wrong.mimetype) == (405, "OPTIONS, POST", "application/problem+json")

    # edits: a newer revision wins, an older one with other content is refused as stale
    edited = {**batch[4], "details": {"participants": 27}, "revision": 2}
    assert ok(client.post("/v1/activities/sync", json={"activities": [edited]}, headers=member))["results"][0]["result"] == "updated"
    stale = {**batch[4], "details": {"participants": 26}, "revision": 1}
    (r,) = ok(client.post("/v1/activities/sync", json={"activities": [stale]}, headers=member))["results"]
    assert (r["result"], r["why"], r["revision"]) == ("conflict", "stale", 2)
    # another member's client id, a non-member, and a bad item next to a good one
    leader = tokens("team-leader", LEADER, unit=DONG_DANG)
    (r,) = ok(client.post("/v1/activities/sync", json={"activities": [{**batch[0], "note": "x"}]}, headers=leader))["results"]
    assert (r["result"], r["why"]) == ("conflict", "taken")
    assert "status" not in r and "revision" not in r   # nothing of another member's activity is told
    (r,) = ok(client.post("/v1/activities/sync", json={"activities": [{**batch[0], "client_id": "dev9-abcdefgh"}]},
                          headers=tokens("team-member", OUTSIDER, unit=DONG_DANG)))["results"]
    assert r["result"] == "rejected" and r["errors"][0]["field"] == "/activities/0/team"
    mixed = [{**batch[3], "client_id": f"dev1-{uuid.uuid4().hex[:12]}", "details": {"app": "vneid"}, "household": None},
             {**batch[3], "client_id": f"dev1-{uuid.uuid4().hex[:12]}", "happened_at": when(-600)}]
    mixed[0].pop("household")
    results = ok(client.post("/v1/activities/sync", json={"activities": mixed}, headers=member))["results"]
    assert [r["result"] for r in results] == ["rejected", "rejected"]
    assert [r["errors"][0]["field"] for r in results] == ["/activities/0/household", "/activities/1/happened_at"]
    bad = client.post("/v1/activities/sync", json={"activities": [{**batch[0], "kind": "party"}]}, headers=member)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "/activities/0/kind"

    # the commune officer's queue and decisions
    queue = ok(client.get(f"/v1/communes/{DONG_DANG}/pending", headers=officer))
    assert sorted(i["id"] for i in queue["items"]) == sorted(ids)
    assert HOUSEHOLD_A not in json.dumps(queue) and HOUSEHOLD_B not in json.dumps(queue)
    other_officer = tokens("commune-officer", "cb-chilang", unit=CHI_LANG)
    assert client.post(f"/v1/activities/{ids[1]}/verify", headers=other_officer).status_code == 404
    ok(client.put(f"/v1/communes/{DONG_DANG}/target", json={"households": 4, "source": "Sổ hộ khẩu xã, 01/2026"},
                  headers=officer))
    for i in (0, 1, 2, 3):
        verified = ok(client.post(f"/v1/activities/{ids[i]}/verify", headers=officer))
        assert verified["status"] == "verified"
    repeat = ok(client.post(f"/v1/activities/{ids[1]}/verify", headers=officer))
    rejected = ok(client.post(f"/v1/activities/{ids[4]}/reject", json={"reason": "không có ảnh"}, headers=officer))
    assert rejected["status"] == "rejected" and "progress" not in rejected
    progress = repeat["progress"]
    main = progress["indicators"]["shop-or-payment"]
    # household A opened an account and a shop: one household, counted once (and not twice by the repeat)
    assert (main["reached"], main["share"], main["target_share"], main["target_households"], main["met"]) == (1, 0.25, 0.5, 2, False)
    assert main["source"]["document"].startswith("Nghị quyết số 49-NQ/TU")
    assert progress["indicators"]["visited"]["reached"] == 2
    assert progress["activities"] == {"household-visit": 1, "app-install": 1, "epayment-account": 1, "digital-shop": 1,
                                      "online-dossier": 0, "training": 0}
    assert ok(client.get(f"/v1/communes/{DONG_DANG}/progress", headers=tokens("ioc")))["indicators"] == progress["indicators"]
    # a decided activity is frozen: the device's later edit is refused
    (r,) = ok(client.post("/v1/activities/sync", json={"activities": [{**batch[1], "revision": 5, "note": "sửa"}]},
                          headers=member))["results"]
    assert (r["result"], r["why"], r["status"]) == ("conflict", "decided", "verified")
    assert ok(client.get(f"/v1/communes/{DONG_DANG}/pending", headers=officer))["items"] == []

    ranks = ok(client.get("/v1/rankings", headers=tokens("ioc")))["items"]
    assert ranks[0]["commune"] == DONG_DANG and ranks[0]["rank"] == 1
    teams = ok(client.get("/v1/rankings", query_string={"of": "teams", "commune": DONG_DANG}, headers=officer))["items"]
    assert teams[0]["team"] == team["id"] and teams[0]["total"] == 4

    stream = [e["event"] for e in tail(rt.settings, 200)]
    kinds = [e["type"] for e in stream]
    assert kinds.count("vn.langson.community.progress.updated.v1") == 4
    assert "vn.langson.community.activity.verified.v1" in kinds and "vn.langson.community.team.formed.v1" in kinds
    text = json.dumps(stream, ensure_ascii=False)
    for secret in (HOUSEHOLD_A, HOUSEHOLD_B, MEMBER, LEADER):
        assert secret not in text
    schema_of = {"activity": "transition.json", "team": "team.json", "member": "team.json",
                 "progress": "progress.updated.json"}
    for e in stream:
        schema = json.loads((ROOT / "schemas" / "events" / "community" /
                             schema_of[e["type"].split(".")[3]]).read_text())
        assert list(Draft202012Validator(schema).iter_errors(e["data"])) == [], e["type"]


def test_members_are_added_by_their_leader_and_teams_belong_to_their_commune(client, tokens):
    team, officer = form_team(client, tokens)
    leader = tokens("team-leader", LEADER, unit=DONG_DANG)
    grown = ok(client.post(f"/v1/teams/{team['id']}/members", json={"id": OUTSIDER, "name": "Nông Văn Ba"}, headers=leader))
    assert [m["name"] for m in grown["members"]][-1] == "Nông Văn Ba"
    r = client.post(f"/v1/teams/{team['id']}/members", json={"id": "020000000001", "name": "X Y"},
                    headers=tokens("team-leader", MEMBER, unit=DONG_DANG))
    assert r.status_code == 403
    elsewhere = client.post("/v1/teams", json={"id": "to-elsewhere", "name": "Tổ", "commune": CHI_LANG, "village": "Thôn A",
                                               "leader": {"id": LEADER, "name": "A B"}}, headers=officer)
    assert elsewhere.status_code == 403 and elsewhere.get_json()["errors"][0]["field"] == "/commune"
    listed = ok(client.get("/v1/teams", headers=officer))
    assert team["id"] in [t["id"] for t in listed["items"]]
