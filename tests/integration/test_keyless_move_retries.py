"""A move sent without an Idempotency-Key (the header is optional there) and sent again after its
answer was lost: the retry gets the first answer (``Idempotent-Replayed: true``) and the move runs
once — not a 409 because the record has moved (the old answer: ``illegal-transition``, "not your
turn", "already rated"). Another caller's same move is its own request, refused as the state says;
the same request once the record has moved on (reopen, then acknowledge again) is a move of its own.
Real weed mini + nats-server."""

# ruff: noqa: F811 (pytest fixtures imported from dossiers_support are named as parameters)
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

import community_support
from community_support import DONG_DANG, MEMBER
from documents_support import make_pdf
from dossiers_support import CITIZEN, dossier_peers, dossiers, pdf  # noqa: F401

pytestmark = pytest.mark.integration

REPLAYED = "Idempotent-Replayed"


def answered(r, status=200) -> dict:
    assert r.status_code == status, r.get_data(as_text=True)
    return r.get_json()


def twice(client, path: str, headers: dict, status: int = 200, **kw) -> dict:
    """The move sent, then sent again as after a lost answer: the same answer, the second replayed."""
    first = client.post(path, headers=headers, **kw)
    again = client.post(path, headers=headers, **kw)
    body = answered(first, status)
    assert again.status_code == status, f"the retry was answered {again.status_code}: {again.get_data(as_text=True)}"
    assert again.get_json() == body
    assert first.headers.get(REPLAYED) is None and again.headers.get(REPLAYED) == "true"
    return body


def test_a_report_move_and_its_rating_sent_again_get_the_first_answer(start_function, peers, tokens):
    from functions.reports.function import reports

    client = start_function("reports", peer_url_template=peers.template).app.test_client()
    officer = tokens("commune-officer", "cb-dd", unit=DONG_DANG)
    citizen = tokens("citizen", "020090001234")
    rid = answered(client.post("/v1/reports", headers=citizen, json={
        "service_code": "TTDT-LAN-CHIEM", "lat": 21.8540, "long": 106.7612, "commune": DONG_DANG}), 201)["id"]

    acked = twice(client, f"/v1/reports/{rid}/actions/acknowledge", officer)
    assert acked["state"] == "acknowledged"
    # another officer's acknowledge is not this request's retry: the state refuses it
    other = client.post(f"/v1/reports/{rid}/actions/acknowledge", headers=tokens("commune-officer", "cb-dd2", unit=DONG_DANG))
    assert other.status_code == 409 and other.get_json()["type"].endswith("illegal-transition")

    answered(client.post(f"/v1/reports/{rid}/actions/fix", headers=officer))
    rated = twice(client, f"/v1/reports/{rid}/rating", citizen, json={"rating": 5})
    assert rated["rating"] == 5
    # another body is another request: the answer is rated already
    assert client.post(f"/v1/reports/{rid}/rating", json={"rating": 1}, headers=citizen).status_code == 409

    # the record came back: the same requests are moves of their own, not the first answers again
    answered(client.post(f"/v1/reports/{rid}/actions/reopen", json={"reason": "Vẫn còn lấn chiếm"}, headers=citizen))
    again = client.post(f"/v1/reports/{rid}/actions/acknowledge", headers=officer)
    assert answered(again)["state"] == "acknowledged" and again.headers.get(REPLAYED) is None
    answered(client.post(f"/v1/reports/{rid}/actions/fix", headers=officer))
    rerated = client.post(f"/v1/reports/{rid}/rating", json={"rating": 5}, headers=citizen)
    assert answered(rerated)["rating"] == 5 and rerated.headers.get(REPLAYED) is None
    assert [e["action"] for e in reports.records().trail(rid)] == [
        "submit", "acknowledge", "fix", "rate", "reopen", "acknowledge", "fix", "rate"]


def test_a_community_verify_sent_again_gets_the_first_answer(start_function, peers, tokens):
    from functions.community.function import activities

    client = start_function("community", peer_url_template=peers.template).app.test_client()
    officer = tokens("commune-officer", "cb-dongdang", unit=DONG_DANG)
    team = community_support.form_team(client, officer)
    cid = f"dev1-{uuid.uuid4().hex[:12]}"
    happened = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    answered(client.post("/v1/activities/sync", headers=tokens("team-member", MEMBER, unit=DONG_DANG), json={
        "activities": [{"client_id": cid, "team": team["id"], "kind": "household-visit",
                        "household": "020095001234", "happened_at": happened, "revision": 1}]}))
    # the domain answers a repeated decision itself (no write): the activity as the first answer had
    # it, with the commune's progress as it is now (a live figure: test_community_api reads it so)
    first = answered(client.post(f"/v1/activities/{cid}/verify", headers=officer))
    again = answered(client.post(f"/v1/activities/{cid}/verify", headers=officer))
    assert first["status"] == "verified" and first.pop("progress")["activities"] == again.pop("progress")["activities"]
    assert again == first
    assert [e["action"] for e in activities.records().trail(cid)] == ["log", "verify"]


@pytest.fixture
def documents(start_function, peers):
    return start_function("documents", peer_url_template=peers.template,
                          function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents"})


def test_a_signature_sent_again_gets_the_first_answer_until_the_next_signer_signs(documents, tokens):
    client = documents.app.test_client()
    drafter = tokens("officer", "cv-an", agency="ubnd-tinh", unit="vp")
    leader = tokens("supervisor", "ct-binh", agency="ubnd-tinh", unit="vp")
    doc = answered(client.post("/v1/documents", query_string={"title": "Quyết định", "signers": "cv-an,ct-binh"},
                               data=make_pdf(), headers={**drafter, "Content-Type": "application/pdf"}), 201)
    path, body = f"/v1/documents/{doc['id']}/signatures", {"name": "Nguyễn Văn An"}
    signed = twice(client, path, drafter, 201, json=body)
    assert signed["status"] == "signing" and len(signed["signatures"]) == 1
    assert answered(client.post(path, json={}, headers=leader), 201)["status"] == "signed"
    # the document moved on since: the drafter's same request is no retry of a last move any more
    late = client.post(path, json=body, headers=drafter)
    assert late.status_code == 409 and late.headers.get(REPLAYED) is None
    assert len(answered(client.get(f"/v1/documents/{doc['id']}", headers=drafter))["signatures"]) == 2


def test_a_dossier_rating_sent_again_gets_the_first_answer(dossiers, tokens):
    client = dossiers
    citizen = tokens("citizen", CITIZEN)
    clerk = tokens("officer", "cb-tiep-nhan", agency="ubnd-05983", unit="05983")

    def attach(code: str) -> str:
        return answered(client.post("/v1/attachments", data=pdf(f"{code}-{uuid.uuid4().hex}"),
                                    headers={**citizen, "Content-Type": "application/pdf"},
                                    query_string={"filename": f"{code}.pdf"}), 201)["sha256"]

    did = answered(client.post("/v1/dossiers", headers=citizen, json={
        "id": "ks-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": "05983",
        "documents": [{"code": c, "sha256": attach(c)} for c in ("to-khai", "giay-chung-sinh")]}), 201)["id"]
    for move, body in (("start", None), ("deny", {"reason": "Giấy chứng sinh không hợp lệ"})):
        answered(client.post(f"/v1/dossiers/{did}/{move}", json=body,
                             headers={**clerk, "Idempotency-Key": uuid.uuid4().hex}))
    rated = twice(client, f"/v1/dossiers/{did}/rating", citizen, 201, json={"score": 4, "comment": "Nhanh"})
    assert rated["score"] == 4
    assert client.post(f"/v1/dossiers/{did}/rating", json={"score": 1}, headers=citizen).status_code == 409
    assert answered(client.get(f"/v1/dossiers/{did}", headers=citizen))["rating"]["score"] == 4
