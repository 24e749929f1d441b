"""A signed-in applicant asks the assistant about their own dossier, answered by the real dossiers
function (on real weed mini + nats-server) over HTTP: by the receipt's code, as the receipt prints
it, and by the dossier's id. The code was asked at ``/v1/dossiers/{code}``, which reads dossiers by
their id only: every applicant was told their dossier was "not found among yours"; then it was
looked for by paging through the caller's list. Now dossiers answers ``?code=`` itself: one call.
Nobody else learns anything of it."""

# ruff: noqa: F811 (pytest fixtures imported from dossiers_support are named as parameters)
from __future__ import annotations

import hashlib
import uuid

import pytest
from werkzeug.wrappers import Request, Response

from functions.procedures.function import catalogue
from lscloud import runtime

from dossiers_support import dossier_peers, pdf  # noqa: F401
from peer_stubs import Served, conditional_json
from client_answers import ok

pytestmark = pytest.mark.integration

CATALOGUE = catalogue.build()["procedures"]
OWNER = "020090007777"


class Peers(Served):
    """The assistant's peers: the catalogue and the directory as stand-ins, ``/dossiers/*`` the real
    dossiers function (its app, once :attr:`dossiers` is set), the caller's token passed on; each
    request to it kept in :attr:`dossier_requests`."""

    def __init__(self):
        self.dossiers = None
        self.dossier_requests: list[str] = []

        @Request.application
        def app(request):
            path = request.path
            if path == "/procedures/v1/procedures":
                limit, offset = int(request.args.get("limit", 50)), int(request.args.get("page_token") or 0)
                page = CATALOGUE[offset:offset + limit]
                nxt = str(offset + limit) if offset + limit < len(CATALOGUE) else None
                return conditional_json({"items": page, "total": len(page), "next_page_token": nxt}, request)
            if path.startswith("/directory/v1/agencies/"):
                return conditional_json({"code": path.rsplit("/", 1)[1], "name": "UBND xã"}, request)
            if path.startswith("/dossiers/") and self.dossiers is not None:
                self.dossier_requests.append(request.full_path)
                passed = {k: v for k, v in request.headers if k.lower() in ("authorization", "if-none-match")}
                r = self.dossiers.get(path[len("/dossiers"):], query_string=request.query_string.decode(),
                                      headers=passed)
                return Response(r.get_data(), status=r.status_code, headers=dict(r.headers))
            return Response('{"status":404,"title":"Not found"}', status=404, mimetype="application/problem+json")

        super().__init__(app)


@pytest.fixture
def env(start_function, dossier_peers, tokens):
    peers = Peers()
    assistant = start_function("assistant", peer_url_template=peers.template).app.test_client()
    dossiers = start_function("dossiers", peer_url_template=dossier_peers.template).app.test_client()
    runtime.current().bus.ensure_stream()
    peers.dossiers = dossiers
    yield assistant, dossiers, peers
    peers.stop()


def submitted(dossiers, owner: dict, dossier_id: str) -> dict:
    """A birth registration of ``owner``'s, its first step done (at the second, "… xử lý")."""
    docs = []
    for code in ("to-khai", "giay-chung-sinh"):
        up = dossiers.post("/v1/attachments", data=pdf(code + uuid.uuid4().hex),
                           headers={**owner, "Content-Type": "application/pdf"})
        docs.append({"code": code, "sha256": ok(up, 201)["sha256"]})
    doc = ok(dossiers.post("/v1/dossiers", json={"id": dossier_id, "procedure": "HT-KS", "unit": "05983",
                                                  "documents": docs}, headers=owner), 201)
    step = doc["steps"][0]
    return doc, step


def advanced(dossiers, tokens, doc: dict) -> dict:
    step = doc["steps"][0]
    clerk = tokens.header("officer", "cb-1", agency=step["agency"], unit=step["unit"])
    ok(dossiers.post(f"/v1/dossiers/{doc['id']}/start", headers={**clerk, "Idempotency-Key": uuid.uuid4().hex}))
    return ok(dossiers.post(f"/v1/dossiers/{doc['id']}/steps/complete", json={"step": step["code"]},
                            headers={**clerk, "Idempotency-Key": uuid.uuid4().hex}))


def ask(client, text, headers=None, **extra):
    body = {"session": uuid.uuid4().hex, "text": text, **extra}
    address = f"10.8.{int(hashlib.sha256(body['session'].encode()).hexdigest(), 16) % 250}.1"
    r = client.post("/v1/messages", json=body, headers={"X-Forwarded-For": address, **(headers or {})})
    return ok(r)


def test_an_applicant_asks_about_their_dossier_by_its_receipt_code_and_by_its_id(env, tokens):
    assistant, dossiers, peers = env
    owner = tokens.header("citizen", OWNER)
    dossier_id = f"2026-{uuid.uuid4().int % 10**8:08d}"
    doc, _ = submitted(dossiers, owner, dossier_id)
    older, _ = submitted(dossiers, owner, f"2026-{uuid.uuid4().int % 10**8:08d}")   # another of theirs, newer
    doc = advanced(dossiers, tokens, doc)
    code, step = doc["code"], doc["steps"][doc["current_step"]]["name"]

    for asked in (code, code.lower(), dossier_id):
        peers.dossier_requests.clear()
        a = ask(assistant, f"hồ sơ {asked} của tôi đến đâu rồi?", owner)
        assert a["intent"] == "status" and a["dossier"] == code, (asked, a["text"])
        assert len(peers.dossier_requests) == 1, peers.dossier_requests   # one question, one read
        assert "đang xử lý" in a["text"] and step in a["text"] and "Đăng ký khai sinh" in a["text"]
        assert a["citations"] == [{"dossier": code, "procedure": "HT-KS", "national_code": None,
                                   "name": "Đăng ký khai sinh"}]
    english = ask(assistant, f"what is the status of my dossier {code}?", owner, lang="en")
    assert english["dossier"] == code and ": being processed." in english["text"], english["text"]
    newer = ask(assistant, f"hồ sơ {older['code']} của tôi đến đâu rồi?", owner)
    assert newer["dossier"] == older["code"] and "đã tiếp nhận" in newer["text"]


def test_nobody_else_learns_of_it(env, tokens):
    assistant, dossiers, _ = env
    owner = tokens.header("citizen", OWNER)
    doc, _ = submitted(dossiers, owner, f"2026-{uuid.uuid4().int % 10**8:08d}")
    for headers in (tokens.header("citizen", "020090008888"), tokens.header("enterprise", "0101234567"), None):
        for asked in (doc["code"], doc["id"]):
            a = ask(assistant, f"hồ sơ {asked} của tôi đến đâu rồi?", headers)
            assert a["intent"] == "status" and a["dossier"] is None and a["citations"] == []
            assert "Đăng ký khai sinh" not in a["text"] and "đã tiếp nhận" not in a["text"]
    # dossiers itself: the one dossier by its code to its owner, the same empty page to anyone else as
    # for a code nobody was given
    mine = ok(dossiers.get("/v1/dossiers", query_string={"code": doc["code"].lower()}, headers=owner))
    assert [d["id"] for d in mine["items"]] == [doc["id"]] and mine["items"][0]["status_vi"] == "đã tiếp nhận"
    unknown = ok(dossiers.get("/v1/dossiers", query_string={"code": "LS-000101-ZZZZZZ"}, headers=owner))
    stranger = tokens.header("citizen", "020090008888")
    theirs = dossiers.get("/v1/dossiers", query_string={"code": doc["code"]}, headers=stranger)
    assert ok(theirs) == unknown == {"items": [], "total": 0, "next_page_token": None}
    # the receipt's secret opens it to anyone who holds the receipt
    tracked = ask(assistant, f"hồ sơ {doc['code']} đến đâu rồi?", secret=doc["tracking_secret"])
    assert tracked["dossier"] == doc["code"] and "đã tiếp nhận" in tracked["text"]
