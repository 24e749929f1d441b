"""Open311 partner API keys on real weed mini: an issue sent again never leaves a second live key
nor keeps the secret anywhere in the bucket; operators list the keys (never a secret); the notice an
Open311 POST answers with says only what is true of the report's deadline."""

from __future__ import annotations

import pytest

from bucket_scan import bucket_bytes  # tests/integration helper module
from digital_support import ok
from test_typed_answers import documented

pytestmark = pytest.mark.integration

DONG_DANG = "06184"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def reports(start_function, peers):
    return start_function("reports", peer_url_template=peers.template)


@pytest.fixture
def client(reports):
    return reports.app.test_client()


def holding(objects: dict, secret: str) -> list[str]:
    return [k for k, body in objects.items() if secret.encode() in body]


def test_an_issue_sent_again_names_the_live_key_and_no_secret_is_kept(client, tokens, object_store, settings):
    op = tokens("operator", "op-1")
    body = {"name": "Ứng dụng đối tác"}
    first = ok(client.post("/v1/api-keys", json=body, headers=op), 201)
    # the operator console's retry after a timeout, with or without an Idempotency-Key, and spelled otherwise
    for again, headers in ((body, op), (body, op | {"Idempotency-Key": "issue-1"}),
                           ({"name": "  ứng dụng   Đối tác "}, op)):
        r = client.post("/v1/api-keys", json=again, headers=headers)
        problem = r.get_json()
        assert r.status_code == 409 and problem["type"].endswith("api-key-already-issued"), problem
        assert problem["key_id"] == first["id"] and "rotate" in problem["detail"]
        assert problem["errors"][0]["field"] == "/name" and "api_key" not in problem
    listed = ok(client.get("/v1/api-keys", headers=op))
    assert [k["id"] for k in listed["items"]] == [first["id"]] and listed["total"] == 1

    # the secret lost: rotating recovers it; a rotate sent again makes another, and the last answer works
    rotated = ok(client.post(f"/v1/api-keys/{first['id']}/rotate", headers=op | {"Idempotency-Key": "rot-1"}))
    last = ok(client.post(f"/v1/api-keys/{first['id']}/rotate", headers=op))
    post = f"service_code=ANTT&lat=21.85&long=106.76&attribute[commune]={DONG_DANG}"
    assert client.post("/open311/v2/requests.json", data=f"api_key={last['api_key']}&{post}", headers=FORM).status_code == 201

    stored = bucket_bytes(object_store, settings.bucket)
    for shown in (first, rotated, last):
        assert holding(stored, shown["api_key"].split(".", 1)[1]) == [], "a secret kept in clear"

    # revoked, the name takes a new key
    ok(client.delete(f"/v1/api-keys/{first['id']}", headers=op))
    second = ok(client.post("/v1/api-keys", json=body, headers=op), 201)
    assert second["id"] != first["id"]
    assert client.post("/v1/api-keys", json=body, headers=op).get_json()["key_id"] == second["id"]


def test_the_same_name_for_another_agency_is_another_key(client, tokens):
    op = tokens("operator", "op-1")
    partner = ok(client.post("/v1/api-keys", json={"name": "Hệ thống"}, headers=op), 201)
    police = ok(client.post("/v1/api-keys", json={"name": "Hệ thống", "agency": "cong-an-tinh"}, headers=op), 201)
    assert partner["id"] != police["id"]
    r = client.post("/v1/api-keys", json={"name": "Hệ thống", "agency": "cong-an-tinh"}, headers=op)
    assert r.status_code == 409 and r.get_json()["key_id"] == police["id"]


def test_operators_list_the_keys_a_page_at_a_time_never_a_secret(reports, client, tokens):
    op, check = tokens("operator", "op-1"), documented(reports.app)
    issued = [ok(client.post("/v1/api-keys", json={"name": f"Đối tác {n}"}, headers=op), 201) for n in range(3)]
    ok(client.delete(f"/v1/api-keys/{issued[0]['id']}", headers=op))
    page = check(client.get("/v1/api-keys?limit=2", headers=op))
    assert len(page["items"]) == 2 and page["total"] == 3 and page["next_page_token"]
    rest = check(client.get(f"/v1/api-keys?limit=2&page_token={page['next_page_token']}", headers=op))
    assert len(rest["items"]) == 1 and rest["next_page_token"] is None
    seen = {k["id"]: k for k in page["items"] + rest["items"]}
    assert set(seen) == {k["id"] for k in issued}
    assert seen[issued[0]["id"]]["revoked_at"] and seen[issued[1]["id"]]["revoked_at"] is None
    assert seen[issued[1]["id"]]["name"] == "Đối tác 1" and seen[issued[1]["id"]]["created_by"] == "op-1"
    text = client.get("/v1/api-keys?limit=200", headers=op).get_data(as_text=True)
    assert not [k for k in issued if k["api_key"].split(".", 1)[1] in text] and "secret_hash" not in text
    r = client.get("/v1/api-keys?page_token=not-one-it-issued", headers=op)
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "page_token"
    for role in ("officer", "citizen", "auditor"):
        assert client.get("/v1/api-keys", headers=tokens(role, "x")).status_code == 403
    assert client.get("/v1/api-keys").status_code == 401


def test_the_open311_notice_says_only_what_is_true_of_the_deadline(client, tokens):
    key = ok(client.post("/v1/api-keys", json={"name": "Đối tác"}, headers=tokens("operator")), 201)["api_key"]
    r = client.post("/open311/v2/requests.json", headers=FORM,
                    data=f"api_key={key}&service_code=ANTT&lat=21.85&long=106.76&attribute[commune]={DONG_DANG}")
    answer = ok(r, 201)[0]
    report = ok(client.get(f"/v1/reports/{answer['service_request_id']}"))
    notice = answer["service_notice"]
    assert "tạm tính" not in notice and "placeholder" not in notice, notice
    assert ("provisional" in notice) == report["deadline_provisional"], (notice, report["deadline_provisional"])
    assert ("working days is not checked against a published service level" in notice) == (not report["deadline_verified"])
