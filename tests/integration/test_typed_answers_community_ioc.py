"""The answers of community and the IOC, on real weed mini + nats-server, match the schemas their
/openapi.json documents for them (read through the document's own components, as a generated client
reads them, by test_typed_answers.documented): each view a reader may get (a member, a leader, the
commune's officer, the IOC; a first sync and its repeats, conflicts and refusals; a commune with and
without its households; the public and the full figures, a commune officer's card, a source that is
not connected), and the wall's page and assets in the media types their operations name."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

import ioc_support as ev
from community_support import DONG_DANG, LEADER, MEMBER
from test_ioc_api import deliver, sample
from test_typed_answers import documented

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHI_LANG, OUTSIDER = "06463", "020091003333"
ANSWERS = {"community": ["team.json", "team-list.json", "photo.json", "sync-results.json", "activity.json",
                         "activity-list.json", "progress.json", "rankings.json"],
           "ioc": ["text.json", "indicator-entry.json", "indicator.json", "indicators.json", "commune-card.json",
                   "series.json", "targets.json", "replay.json"]}


def when(minutes_ago: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).isoformat()


def jpeg() -> bytes:
    raw = io.BytesIO()
    Image.new("RGB", (16, 12), (20, 120, 40)).save(raw, "JPEG")
    return raw.getvalue()


def test_teams_activities_progress_and_rankings_are_the_documented_ones(start_function, peers, tokens):
    community = start_function("community", peer_url_template=peers.template)
    client, check = community.app.test_client(), documented(community.app)
    officer = tokens("commune-officer", "cb-dd", unit=DONG_DANG)
    member, leader = tokens("team-member", MEMBER, unit=DONG_DANG), tokens("team-leader", LEADER, unit=DONG_DANG)

    team = check(client.post("/v1/teams", headers=officer, json={
        "id": "to-" + uuid.uuid4().hex[:10], "name": "Tổ CNS thôn Pò Mỏ", "commune": DONG_DANG, "village": "Thôn Pò Mỏ",
        "leader": {"id": LEADER, "name": "Hoàng Văn Tú"}, "members": [{"id": MEMBER, "name": "Lương Thị Mai"}]}))
    assert check(client.get(f"/v1/teams/{team['id']}", headers=member))["members"] == team["members"]
    grown = check(client.post(f"/v1/teams/{team['id']}/members", json={"id": OUTSIDER, "name": "Nông Văn Ba"}, headers=leader))
    assert len(grown["members"]) == 3
    assert team["id"] in [t["id"] for t in check(client.get("/v1/teams", headers=officer))["items"]]
    assert check(client.get("/v1/teams", query_string={"commune": CHI_LANG}, headers=tokens("ioc")))["items"] == []

    photo = check(client.post("/v1/photos", data=jpeg(), headers={**member, "Content-Type": "image/jpeg"}))
    ids = [f"dev1-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    batch = [{"client_id": ids[0], "team": team["id"], "kind": "epayment-account", "household": "HK-06184-0042",
              "details": {"bank": "Agribank"}, "happened_at": when(90), "revision": 1, "photo": photo["sha256"], "note": "Mở tài khoản"},
             {"client_id": ids[1], "team": team["id"], "kind": "training", "details": {"participants": 12},
              "happened_at": when(80), "revision": 1},
             {"client_id": ids[2], "team": team["id"], "kind": "app-install", "household": "020070004444",
              "details": {"app": "vneid"}, "happened_at": when(70), "revision": 1}]
    assert check(client.post("/v1/activities/sync", json={"activities": batch}, headers=member))["counts"] == {"created": 3}
    # every other result: a repeat, a newer revision, a stale one, a refusal naming its field, another's id
    mixed = batch + [{**batch[1], "revision": 2, "details": {"participants": 13}},
                     {**batch[1], "revision": 1, "details": {"participants": 11}},
                     {**batch[0], "client_id": "dev9-" + uuid.uuid4().hex[:8], "team": "to-nowhere"}]
    results = check(client.post("/v1/activities/sync", json={"activities": mixed}, headers=member))["results"]
    assert [r["result"] for r in results] == ["duplicate"] * 3 + ["updated", "conflict", "rejected"]
    assert results[-1]["errors"][0]["field"] == "/activities/5/team"
    (taken,) = check(client.post("/v1/activities/sync", json={"activities": [{**batch[0], "note": "x"}]}, headers=leader))["results"]
    assert (taken["result"], taken["why"]) == ("conflict", "taken")

    assert sorted(a["id"] for a in check(client.get(f"/v1/communes/{DONG_DANG}/pending", headers=officer))["items"]) == sorted(ids)
    assert check(client.get(f"/v1/activities/{ids[0]}", headers=member))["household_ref"]
    assert check(client.get(f"/v1/activities/{ids[1]}", headers=tokens("auditor")))["household_ref"] is None
    # a commune nothing was counted for, then with its households
    assert check(client.get(f"/v1/communes/{CHI_LANG}/progress", headers=tokens("ioc")))["households"] is None
    check(client.put(f"/v1/communes/{DONG_DANG}/target", json={"households": 4, "source": "Sổ hộ khẩu xã, 01/2026"},
                     headers=officer))
    verified = check(client.post(f"/v1/activities/{ids[0]}/verify", headers=officer))
    assert verified["progress"]["indicators"]["shop-or-payment"]["reached"] == 1
    assert "progress" not in check(client.post(f"/v1/activities/{ids[2]}/reject", json={"reason": "không có ảnh"},
                                               headers=officer))
    assert check(client.get(f"/v1/communes/{DONG_DANG}/progress", headers=officer))["households"] == 4
    communes = check(client.get("/v1/rankings", headers=tokens("ioc")))["items"]
    assert communes[0]["commune"] == DONG_DANG and communes[0]["rank"] == 1
    teams = check(client.get("/v1/rankings", query_string={"of": "teams", "commune": DONG_DANG}, headers=officer))["items"]
    assert teams[0]["team"] == team["id"] and teams[0]["total"] == 1


def test_figures_a_card_a_series_targets_and_a_replay_are_the_documented_ones(start_function, peers, rt, tokens):
    ioc = start_function("ioc", peer_url_template=peers.template)
    client, check = ioc.app.test_client(), documented(ioc.app)
    facts = sample() + [ev.progress("06001", 10, 3, ev.ago(5))]
    for e in facts:
        rt.bus.publish(e)   # the stream a replay reads
        deliver(client, rt, e)
    full, officer = tokens.header("ioc"), tokens.header("commune-officer", unit="06016")

    body = check(client.get("/v1/indicators", headers=full))
    items = {i["id"]: i for i in body["items"]}
    assert items["border.declared"]["by"]["gate"] == {"huu-nghi": 2} and items["dossiers.overdue-rate"]["value"] is None
    assert items["environment.readings"]["status"] == "no-source" and body["commune_names"]["06016"] == "Xã Quốc Khánh"
    check(client.get("/v1/indicators", query_string={"area": "petitions", "commune": "06016"}))
    assert check(client.get("/v1/indicators", headers=officer))["commune"] == "06016"
    card = check(client.get("/v1/communes/06016", headers=officer))
    assert card["name"] == "Xã Quốc Khánh" and card["items"]
    assert check(client.get("/v1/communes/06004", headers=full))["name"] is None
    for query in ({"step": "day"}, {"step": "hour", "commune": "06016"}):
        assert check(client.get("/v1/indicators/reports.received/series", query_string=query, headers=full))["points"]
    assert check(client.get("/v1/indicators/environment.readings/series", headers=full))["status"] == "no-source"
    targets = check(client.get("/v1/targets"))
    assert targets["items"] and targets["not_measured"]
    assert check(client.post("/v1/replay", headers=tokens.header("operator")))["identical"] is True
    assert check(client.post("/v1/replay?apply=true", headers=tokens.header("operator")))["applied"] is True


def test_the_wall_and_its_assets_come_as_their_operations_document_them(start_function, peers):
    ioc = start_function("ioc", peer_url_template=peers.template)
    client = ioc.app.test_client()
    paths = client.get("/openapi.json").get_json()["paths"]
    for path, operation, answers in (("/", "/", ()), ("/assets/wall.js", "/assets/{name}", (304,)),
                                     ("/assets/wall.css", "/assets/{name}", (304,))):
        documented_ok = paths[operation]["get"]["responses"]["200"]
        r = client.get(path)
        assert r.status_code == 200 and r.mimetype in documented_ok["content"], (path, r.mimetype)
        assert set(documented_ok["headers"]) <= set(r.headers.keys()), path
        assert r.headers["Cache-Control"] == documented_ok["headers"]["Cache-Control"]["description"]
        for status in answers:
            again = client.get(path, headers={"If-None-Match": r.headers["ETag"]})
            assert again.status_code == status and str(status) in paths[operation]["get"]["responses"]


@pytest.mark.parametrize("name", [f"{fn}/{file}" for fn, files in ANSWERS.items() for file in files])
def test_these_answer_schemas_leave_room_for_new_members(name):
    def closed(node) -> list:
        if isinstance(node, dict):
            return ([node] if node.get("additionalProperties") is False else []) + [c for v in node.values() for c in closed(v)]
        return [c for v in node for c in closed(v)] if isinstance(node, list) else []

    assert closed(json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))) == [], name
