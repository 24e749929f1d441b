"""What the applicant reads of a dossier finished with a result signed in the documents function, on
real weed mini + nats-server: the dossier's files route links the signed result (it answered 404:
the signed PDF is the documents function's, not a blob of this one), to the dossier's readers only;
and the public tracking names the state in English too, in the language Accept-Language asks for."""

# ruff: noqa: F811 (pytest fixtures imported from dossiers_support are named as parameters)
from __future__ import annotations

import hashlib
import uuid
from urllib.parse import urlsplit

import pytest

from lscloud import events, runtime
from lscloud.auth import delivery_headers

from dossiers_support import dossier_peers, dossiers, pdf  # noqa: F401
from client_answers import idem, ok

pytestmark = pytest.mark.integration

OWNER = "020090004321"


def officer_claims(step: dict) -> dict:
    """The officer who holds ``step`` (as an event's ``actor`` names them)."""
    return {"kind": "officer", "sub": f"cb-{step['agency']}", "agency": step["agency"], "unit": step.get("unit")}


def officer_of(tokens, step: dict) -> dict:
    c = officer_claims(step)
    return tokens.header("officer", c["sub"], agency=c["agency"], unit=c["unit"])


def at_its_last_step(client, tokens) -> tuple[dict, dict]:
    """A birth registration at its last step: the dossier and its owner's header."""
    owner = tokens.header("citizen", OWNER)
    docs = []
    for code in ("to-khai", "giay-chung-sinh"):
        up = client.post("/v1/attachments", data=pdf(code + uuid.uuid4().hex),
                         headers={**owner, "Content-Type": "application/pdf"}, query_string={"filename": code + ".pdf"})
        docs.append({"code": code, "sha256": ok(up, 201)["sha256"]})
    doc = ok(client.post("/v1/dossiers", json={"id": "ks-" + uuid.uuid4().hex[:12], "procedure": "HT-KS",
                                                "unit": "05983", "documents": docs}, headers=owner), 201)
    doc = ok(client.post(f"/v1/dossiers/{doc['id']}/start", headers=idem(officer_of(tokens, doc["steps"][0]))))
    while doc["current_step"] < len(doc["steps"]) - 1:
        step = doc["steps"][doc["current_step"]]
        doc = ok(client.post(f"/v1/dossiers/{doc['id']}/steps/complete", json={"step": step["code"]},
                             headers=idem(officer_of(tokens, step))))
    return doc, owner


def signed_in_documents(client, settings, doc: dict) -> dict:
    """The documents function's ``document.issued`` for the dossier's result, signed by the officer of
    its last step, delivered as the dispatcher delivers it."""
    actor = officer_claims(doc["steps"][-1])
    document_id = "vb-" + uuid.uuid4().hex[:12]
    data = {"dossier_id": doc["id"], "document_id": document_id,
            "sha256": hashlib.sha256(document_id.encode()).hexdigest(), "agency": actor["agency"],
            "direction": "outgoing", "status": "issued", "doc_type": "ket-qua", "signatures": 1, "number": 12,
            "symbol": "GKS", "display": "12/GKS", "from": "signed", "to": "issued", "action": "issue",
            "at": "2026-12-07T08:00:00Z", "actor": actor, "reason": None, "details": {}}
    ev = events.new_event("vn.langson.documents.document.issued.v1", "/documents", data, id=f"issued-{uuid.uuid4().hex}")
    headers, body = events.to_binary_http(ev)
    ok(client.post("/events", data=body, headers={**headers, **delivery_headers(settings)}))
    return data


def test_the_files_route_links_a_result_signed_in_the_documents_function(dossiers, tokens):
    doc, owner = at_its_last_step(dossiers, tokens)
    signed = signed_in_documents(dossiers, runtime.current().settings, doc)
    done = ok(dossiers.get(f"/v1/dossiers/{doc['id']}", headers=owner))
    result = done["result"]
    assert done["status"] == "done" and result["signed"] and result["sha256"] == signed["sha256"]
    assert result["file_url"].endswith(f"/v1/documents/{signed['document_id']}/file")

    link = ok(dossiers.get(f"/v1/dossiers/{doc['id']}/files/{result['sha256']}", headers=owner))
    assert link["sha256"] == result["sha256"] and link["url"] == result["file_url"]
    assert link["expires_in_s"] is None    # the documents function's address: the token, not a clock, guards it
    # by its digest in capitals too, as the documents are
    assert ok(dossiers.get(f"/v1/dossiers/{doc['id']}/files/{result['sha256'].upper()}", headers=owner))["url"] \
        == result["file_url"]
    # the same rule as the dossier: another citizen is told there is nothing there
    other = dossiers.get(f"/v1/dossiers/{doc['id']}/files/{result['sha256']}", headers=tokens.header("citizen", "someone"))
    assert other.status_code == 404 and result["file_url"] not in other.get_data(as_text=True)
    # …and the documents the applicant sent are still this function's own short-lived links
    sent = ok(dossiers.get(f"/v1/dossiers/{doc['id']}/files/{done['documents'][0]['sha256']}", headers=owner))
    downloaded = dossiers.get(urlsplit(sent["url"]).path)
    assert downloaded.status_code == 200 and downloaded.data.startswith(b"%PDF")


def test_tracking_names_the_state_in_english_when_asked(dossiers, tokens):
    doc, owner = at_its_last_step(dossiers, tokens)
    receipt = ok(dossiers.get(f"/v1/dossiers/{doc['id']}/receipt", headers=owner))
    query = {"code": receipt["code"], "secret": receipt["tracking_secret"]}
    plain = dossiers.get("/v1/track", query_string=query)
    body = ok(plain)
    assert (body["status"], body["status_vi"], body["status_en"]) == ("processing", "đang xử lý", "being processed")
    assert plain.headers["Content-Language"] == "vi" and "status_text" not in body and "lang" not in body
    english = dossiers.get("/v1/track", query_string=query, headers={"Accept-Language": "en-GB,en;q=0.9,vi;q=0.5"})
    body = ok(english)
    assert (body["status_vi"], body["status_en"]) == ("đang xử lý", "being processed")
    assert english.headers["Content-Language"] == "en" and "Accept-Language" in english.headers["Vary"]
    # a language it does not speak: Vietnamese
    french = dossiers.get("/v1/track", query_string=query, headers={"Accept-Language": "fr"})
    assert french.headers["Content-Language"] == "vi"
    signed_in_documents(dossiers, runtime.current().settings, doc)
    done = ok(dossiers.get("/v1/track", query_string=query, headers={"Accept-Language": "en"}))
    assert (done["status_en"], done["result_ready"]) == ("result ready", True)
    # the dossier's own view names its state in both languages too
    view = ok(dossiers.get(f"/v1/dossiers/{doc['id']}", headers=owner))
    assert (view["status"], view["status_vi"], view["status_en"]) == ("done", "đã có kết quả", "result ready")
