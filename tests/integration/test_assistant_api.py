"""The assistant over HTTP on a real weed mini: answers with citations, multi-turn conversations kept
in an expiring record (without the caller's words), a dossier's status only to its owner (or with the
receipt's secret), the per-caller rate limit (429 + Retry-After), bad input named, and every endpoint
with every role. Its peers (procedures, directory, dossiers) are stand-ins answering like their
contracts (tests/integration/test_assistant_own_dossier.py asks the real dossiers function)."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from werkzeug.wrappers import Request, Response

from functions.procedures.function import catalogue
from lscloud.listing import fold

from peer_stubs import Served, conditional_json
import role_matrix
from waiting import wait_for

pytestmark = pytest.mark.integration

CATALOGUE = catalogue.build()["procedures"]
SECRET = "S3CRET-42"
# as the dossiers function shows a dossier to its applicant (schemas/dossiers/dossier.json): its state
# by code and named in Vietnamese and English, the active step by its index in ``steps``
DOSSIER = {"id": "2025-000123", "code": "LS-251201-7K3QZP", "status": "processing",
           "status_vi": "đang xử lý", "status_en": "being processed",
           "procedure": {"code": "HT-KH", "name": "Đăng ký kết hôn"}, "appointment_date": "2025-12-08",
           "steps": [{"code": "tiep-nhan", "name": "Tiếp nhận hồ sơ", "status": "done"},
                     {"code": "tham-dinh", "name": "Thẩm định hồ sơ", "status": "active"}],
           "current_step": 1, "pauses": [], "overdue": False, "tracking_secret": SECRET}
# the owner's newer dossiers: their list, newest first, reaches DOSSIER on its second page of a hundred
NEWER = [{**DOSSIER, "id": f"2025-{900000 + i}", "code": f"LS-251202-N{i:05d}"} for i in range(120)]


class Peers(Served):
    """procedures (paged list), directory (agencies) and dossiers as the real one answers: a dossier
    read by its id only, and only by its applicant; the applicant's list, and ``?code=`` the one
    dossier with that receipt code when it is the caller's (none otherwise); the public tracking by
    receipt code and secret. ``dossier_requests`` holds each request to dossiers (path?query)."""

    def __init__(self, owner_auth: str):
        self.owner_auth = owner_auth
        self.list_calls = 0
        self.dossier_requests: list[str] = []
        self.agency = "Sở Tư pháp tỉnh Lạng Sơn"   # the directory's name of every agency (it may change)

        @Request.application
        def app(request):
            path = request.path
            if path == "/procedures/v1/procedures":
                self.list_calls += 1
                limit, offset = int(request.args.get("limit", 50)), int(request.args.get("page_token") or 0)
                page = CATALOGUE[offset:offset + limit]
                nxt = str(offset + limit) if offset + limit < len(CATALOGUE) else None
                return conditional_json({"items": page, "total": len(page), "next_page_token": nxt}, request)
            if path.startswith("/directory/v1/agencies/"):
                return conditional_json({"code": path.rsplit("/", 1)[1], "name": self.agency}, request)
            owner = request.headers.get("Authorization") == self.owner_auth
            if path.startswith("/dossiers/"):
                self.dossier_requests.append(request.full_path)
            if path == f"/dossiers/v1/dossiers/{DOSSIER['id']}" and owner:
                return conditional_json(DOSSIER, request)
            if path == "/dossiers/v1/dossiers" and request.headers.get("Authorization"):
                code = request.args.get("code")
                if code is not None:
                    mine = [DOSSIER] if owner and code.strip().upper() == DOSSIER["code"] else []
                    return conditional_json({"items": mine, "total": len(mine), "next_page_token": None}, request)
                limit, offset = int(request.args.get("limit", 20)), int(request.args.get("page_token") or 0)
                mine = (NEWER + [DOSSIER] if owner else [])[offset:offset + limit]
                nxt = str(offset + limit) if owner and offset + limit < len(NEWER) + 1 else None
                return conditional_json({"items": mine, "total": len(mine), "next_page_token": nxt}, request)
            if path == "/dossiers/v1/track" and request.args.get("code", "").upper() == DOSSIER["code"] \
                    and request.args.get("secret") == SECRET:
                return conditional_json({"code": DOSSIER["code"], "status": "processing", "status_vi": "đang xử lý",
                                         "status_en": "being processed", "appointment_date": "2025-12-08",
                                         "procedure": "HT-KH", "procedure_name": "Đăng ký kết hôn", "missing": []},
                                        request)
            return Response('{"status":404,"title":"Not found"}', status=404, mimetype="application/problem+json")

        super().__init__(app)


@pytest.fixture
def owner(tokens):
    return tokens("citizen", "citizen-owner")


@pytest.fixture
def peers(owner):
    p = Peers(owner["Authorization"])
    yield p
    p.stop()


@pytest.fixture
def app(start_function, peers):
    return start_function("assistant", peer_url_template=peers.template).app


@pytest.fixture
def client(app):
    return app.test_client()


def ask(client, text, session=None, **extra):
    headers = extra.pop("headers", {})
    body = {"session": session or uuid.uuid4().hex, "text": text, **extra}
    # one address per session (the conversation is the caller's), many across the module (no rate limit)
    address = f"10.9.{int(hashlib.sha256(body['session'].encode()).hexdigest(), 16) % 250}.1"
    r = client.post("/v1/messages", json=body, headers={"X-Forwarded-For": address, **headers})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_an_answer_cites_the_procedure_it_comes_from(client):
    a = ask(client, "làm giấy khai sinh cho con cần gì")
    assert a["intent"] == "documents" and a["procedure"] == "HT-KS" and a["lang"] == "vi"
    assert a["citations"] == [{"procedure": "HT-KS", "national_code": "1.001193", "name": "Đăng ký khai sinh"}]
    assert "Giấy chứng sinh" in a["text"] and a["suggestions"]
    fee = ask(client, "phi cap lai can cuoc")
    assert fee["procedure"] == "CC-CL" and fee["intent"] == "fees" and "70.000 đồng" in fee["text"]
    assert "chưa được đối chiếu" in fee["text"]       # an unverified fee says so


def test_english_questions_get_english_answers(client):
    a = ask(client, "how long does birth registration take")
    assert a["lang"] == "en" and a["intent"] == "time" and "same working day" in a["text"]


def test_a_follow_up_answers_for_the_same_procedure_and_a_refinement_moves_it(client):
    s = uuid.uuid4().hex
    assert ask(client, "làm giấy khai sinh cho con cần gì", s)["procedure"] == "HT-KS"
    follow = ask(client, "còn lệ phí thì sao?", s)
    assert follow["procedure"] == "HT-KS" and follow["intent"] == "fees"
    s2 = uuid.uuid4().hex
    assert ask(client, "đăng ký kết hôn ở đâu", s2)["procedure"] == "HT-KH"
    refined = ask(client, "ý tôi là cho người nước ngoài", s2)
    assert refined["procedure"] == "HT-KHNN" and refined["intent"] == "where"


def conversations_stored(object_store, bucket) -> list[bytes]:
    """The conversation records as the store holds them."""
    from functions.assistant.function.models import Conversation

    return [object_store.get(bucket, o.key).body for o in object_store.list(bucket, Conversation.Meta.table + "/")]


def test_a_conversation_keeps_no_words_of_the_question(app, client, object_store, settings):
    """The conversation kept the words of the question (an ID number, a phone, a name: whatever was
    typed) for its 30 minutes, where an erasure cannot find them; it keeps catalogue tokens now."""
    name, cccd, phone = "Trần Thị Hương", "001203004567", "0912 345 678"
    first = f"Tôi là {name}, số định danh {cccd}, điện thoại {phone}, làm giấy khai sinh cho con cần gì"
    s = uuid.uuid4().hex
    assert ask(client, first, s)["procedure"] == "HT-KS"
    fee = ask(client, "còn lệ phí thì sao?", s)
    assert (fee["procedure"], fee["intent"]) == ("HT-KS", "fees")
    refined = ask(client, "ý tôi là cho người nước ngoài", s)   # searched with what the first question kept
    assert (refined["procedure"], refined["intent"]) == ("HT-KSNN", "fees")

    (body,) = conversations_stored(object_store, settings.bucket)
    text = body.decode()
    for typed in (name, fold(name), cccd, phone, phone.replace(" ", ""), first, fold(first)):
        assert typed not in text and typed.lower() not in text.lower(), typed
    for question in (first, "ý tôi là cho người nước ngoài"):
        words = fold(question).replace(",", " ").split()
        assert not [pair for pair in zip(words, words[1:]) if " ".join(pair) in text], question   # no phrase
    context = json.loads(body)["context"]
    assert set(context) == {"procedure", "intent", "terms", "lang"} and context["procedure"] == "HT-KSNN"
    index = app.extensions["assistant.catalogue"].index()
    held = set().union(*(index.words[c["procedure"]] for c in refined["candidates"]))
    assert context["terms"] and set(context["terms"]) <= held   # words of the procedures answered with


def test_a_conversation_an_older_replica_kept_words_in_is_read_and_rewritten_without_them(client, object_store,
                                                                                           settings):
    """Replicas of before kept the question's words (``query``) and live on for a while after a
    deploy: a conversation they wrote is still answered from, and loses the words."""
    from functions.assistant.function.models import Conversation

    s = uuid.uuid4().hex
    assert ask(client, "đăng ký kết hôn ở đâu", s)["procedure"] == "HT-KH"
    (stored,) = Conversation.scan()
    stored.context = {"procedure": "HT-KH", "intent": "where", "lang": "vi",
                      "query": "Nguyễn Văn An 0912345678 đăng ký kết hôn ở đâu"}
    stored.save()                                   # …as an older replica wrote it
    refined = ask(client, "ý tôi là cho người nước ngoài", s)
    assert (refined["procedure"], refined["intent"]) == ("HT-KHNN", "where")
    (body,) = conversations_stored(object_store, settings.bucket)
    assert b"query" not in body and b"0912345678" not in body and "Nguyễn".encode() not in body
    assert b"nguyen van an" not in body.lower()


def test_an_agency_renamed_in_the_directory_is_named_anew(start_function, peers):
    """The assistant kept each agency's first name in a dict of its own for as long as it lived."""
    client = start_function("assistant", peer_url_template=peers.template, peer_fresh_s=0).app.test_client()
    where = "thành lập công ty cổ phần nộp hồ sơ ở đâu"
    first = ask(client, where)
    assert first["procedure"] == "DN-CTCP" and first["intent"] == "where" and peers.agency in first["text"]
    peers.agency = "Sở Tài chính tỉnh Lạng Sơn (tên mới)"
    assert peers.agency in ask(client, where)["text"]


def test_a_follow_up_on_this_replica_is_two_puts_and_no_read(client):
    from store_calls import counting

    s = uuid.uuid4().hex
    ask(client, "làm giấy khai sinh cho con cần gì", s)
    with counting() as calls:
        follow = ask(client, "còn lệ phí thì sao?", s)
    assert follow["procedure"] == "HT-KS"
    # the caller's rate-limit counter and the conversation, each from the copy this replica wrote
    assert (calls["get"], calls["put"]) == (0, 2), calls


def test_a_session_moved_on_elsewhere_is_answered_from_the_stored_context(client):
    from functions.assistant.function import chat

    s = uuid.uuid4().hex
    assert ask(client, "làm giấy khai sinh cho con cần gì", s)["procedure"] == "HT-KS"
    stale = {k: chat.RECENT.lookup(k) for k in list(chat.RECENT._items)}   # this replica's copies now
    # another replica answers the next turn ("đăng ký kết hôn ở đâu"): the stored context moves on
    assert ask(client, "đăng ký kết hôn ở đâu", s)["procedure"] == "HT-KH"
    for item in stale.values():
        if item is not None:
            chat.RECENT.keep(item)                     # …and this replica still holds the older copy
    follow = ask(client, "còn lệ phí thì sao?", s)
    assert follow["procedure"] == "HT-KH" and follow["intent"] == "fees"   # not HT-KS from the stale copy


def test_the_index_is_built_at_start_and_refreshed_behind_the_questions(app, peers):
    from functions.assistant.function.sources import CatalogueSource

    from lscloud.knative import READINESS_CHECKS

    wait_for(lambda: peers.list_calls >= 2, "the app pages the catalogue as it starts, before any question")
    source = app.extensions["assistant.catalogue"]
    wait_for(lambda: all(check()[0] for check in app.extensions[READINESS_CHECKS]), "ready once the index is built")
    assert source.warmed and source._index is not None
    # …and the first message's schema and the token verifier were loaded beside it
    assert "assistant/message.json" in app.extensions["lscloud"].schemas._validators
    now = [0.0]
    mine = CatalogueSource(source.client, refresh_s=60, clock=lambda: now[0])
    assert not mine.warmed
    mine.warm()
    before = peers.list_calls
    first = mine.index()
    assert peers.list_calls == before                      # answered from memory
    now[0] += 61
    assert mine.index() is first                           # a stale index answers at once…
    wait_for(lambda: peers.list_calls >= before + 2 and not mine._refreshing, "…while it is revalidated behind it")
    assert mine.index() is first                           # an unchanged catalogue keeps its index


def test_unknown_questions_are_not_answered_with_a_guess(client):
    a = ask(client, "con mèo nhà tôi bị lạc thì sao")
    assert a["intent"] == "unknown" and a["procedure"] is None and a["citations"] == []
    assert "1800 1096" in a["text"] and "không thể trả lời" in a["text"]


def test_a_dossier_status_only_to_its_owner_or_with_the_receipt_secret(client, peers, owner, tokens):
    for asked in (DOSSIER["id"], DOSSIER["code"]):    # by its id, and by the code its receipt prints
        peers.dossier_requests.clear()
        mine = ask(client, f"hồ sơ {asked} của tôi đến đâu rồi", headers=owner)
        assert mine["intent"] == "status" and mine["dossier"] == DOSSIER["code"] and "đang xử lý" in mine["text"]
        assert mine["citations"][0]["dossier"] == DOSSIER["code"] and "Thẩm định hồ sơ" in mine["text"]
        # one question, one call to dossiers (not the caller's list paged through in search of the code)
        assert len(peers.dossier_requests) == 1, peers.dossier_requests
    other = ask(client, "hồ sơ 2025-000123 đến đâu rồi", headers=tokens("citizen", "someone-else"))
    anonymous = ask(client, "hồ sơ 2025-000123 đến đâu rồi")
    by_code = ask(client, f"hồ sơ {DOSSIER['code']} đến đâu rồi", headers=tokens("citizen", "someone-else"))
    for a in (other, anonymous, by_code):
        assert a["intent"] == "status" and a["dossier"] is None and a["citations"] == []
        assert "đang xử lý" not in a["text"] and "Đăng ký kết hôn" not in a["text"]
    tracked = ask(client, f"hồ sơ {DOSSIER['code']} của tôi đến đâu rồi", secret=SECRET)
    assert tracked["dossier"] == DOSSIER["code"] and "đang xử lý" in tracked["text"]
    wrong = ask(client, f"hồ sơ {DOSSIER['code']} của tôi đến đâu rồi", secret="nope")
    assert wrong["dossier"] is None


def test_sixty_messages_a_minute_then_429_with_retry_after(client):
    body = {"session": uuid.uuid4().hex, "text": "dang ky khai sinh"}
    headers = {"X-Forwarded-For": "203.0.113.9"}
    statuses = [client.post("/v1/messages", json=body, headers=headers).status_code for _ in range(60)]
    assert statuses == [200] * 60
    refused = client.post("/v1/messages", json=body, headers=headers)
    if refused.status_code == 200:   # the minute turned during the burst: the next window refuses at 61 again
        refused = None
        for _ in range(61):
            r = client.post("/v1/messages", json=body, headers=headers)
            if r.status_code == 429:
                refused = r
                break
    assert refused is not None and refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1 and refused.mimetype == "application/problem+json"
    other = client.post("/v1/messages", json=body, headers={"X-Forwarded-For": "203.0.113.10"})
    assert other.status_code == 200               # another caller is not limited


@pytest.mark.parametrize("body,field", [({"text": "khai sinh"}, "session"),
                                        ({"session": "short", "text": "x"}, "session"),
                                        ({"session": "a" * 16, "text": ""}, "text"),
                                        ({"session": "a" * 16, "text": "x" * 501}, "text"),
                                        ({"session": "a" * 16, "text": "x", "lang": "fr"}, "lang")])
def test_bad_input_names_the_field(client, body, field):
    r = client.post("/v1/messages", json=body)
    assert r.status_code in (400, 422) and r.mimetype == "application/problem+json"
    assert any(field in json.dumps(e) for e in r.get_json()["errors"])


def test_no_identifier_is_logged(client, caplog):
    caplog.set_level("INFO", logger="assistant.answers")
    ask(client, "số căn cước 020305000789 điện thoại 0912345678 làm khai sinh")
    logged = " ".join(str(r.__dict__) for r in caplog.records)
    assert "020305000789" not in logged and "0912345678" not in logged and "assistant.question" in logged


def test_the_widget_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html" and "Trợ lý ảo" in r.get_data(as_text=True)


def test_every_endpoint_with_every_role(app, keys):
    role_matrix.check(app, "assistant", keys[0])
