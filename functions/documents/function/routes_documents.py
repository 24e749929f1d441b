"""Documents' HTTP surface: upload, read, file, audit, sign, register, assign, batch approval."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, current_app, g, jsonify, request

from lscloud import errors, peers, store
from lscloud.auth import allow, principal
from lscloud.idempotency import IMPLICIT_S, idempotent
from lscloud.statemachine import Actor
from lscloud.web import body_limit, page_params, query_params, raw_body, responds, validate_body

from . import documents, issuers, registers

bp = Blueprint("documents", __name__)
DOCUMENT_ID = 'schema("documents/batch-create.json#/properties/documents/items"):document_id'
"""A document's id (32 hex digits, as the upload made it and a batch names it: :mod:`lscloud.web.pathparams`)."""
STAFF = ("officer", "supervisor")
READERS = ("officer", "supervisor", "auditor", "citizen", "enterprise")
_CODE = {"type": "string", "pattern": "^[a-z0-9-]{1,64}$"}


def _custody():
    return current_app.config["DOCUMENTS_CUSTODY"]


def _level() -> str:
    return current_app.config["DOCUMENTS"].pades_level


def _actor() -> Actor:
    return Actor.of(principal())


def _dossier(dossier_id: str) -> dict:
    """The dossier as its function shows it to this officer (asked on their behalf)."""
    client = current_app.config["DOCUMENTS_PEERS"]
    try:
        d = client.get_json("dossiers", peers.path("/v1/dossiers", dossier_id),
                            authorization=request.headers.get("Authorization"))
    except (peers.PeerNotFound, peers.PeerForbidden):
        raise errors.InvalidParameter("no dossier with this id is visible to you",
                                      detail_vi="Không tìm thấy hồ sơ (hoặc bạn không có quyền).",
                                      errors=[errors.field("dossier", "unknown or not yours")]) from None
    except peers.PeerUnavailable:
        raise errors.Unavailable("the dossiers service did not answer", detail_vi="Dịch vụ hồ sơ không phản hồi.") from None
    return {"id": d["id"], "code": d.get("code"), "owner": d.get("owner")}


@bp.post("/v1/documents")
@allow(*STAFF)
@raw_body("application/pdf")
@body_limit("blob_max_bytes")
@query_params(
    ("title", "The document's title (trích yếu).", {"type": "string", "minLength": 1, "maxLength": 500}),
    ("direction", "outgoing (văn bản đi, default) or incoming (văn bản đến).", {"type": "string", "enum": ["outgoing", "incoming"]}),
    ("type", "Document type code (data/decree30.json), default cong-van.", {"type": "string", "enum": registers.codes("types")}),
    ("urgency", "Urgency (mức độ khẩn).", {"type": "string", "enum": registers.codes("urgency")}),
    ("confidentiality", "Confidentiality (độ mật).", {"type": "string", "enum": registers.codes("confidentiality")}),
    ("signers", "Who signs, in order: comma-separated subs (drafter → head of unit → leader).",
     {"type": "string", "maxLength": 500, "pattern": "^[A-Za-z0-9._@-]+(,[A-Za-z0-9._@-]+){0,9}$"}),
    ("dossier", "A dossier whose result this document is.", {"type": "string", "maxLength": 64}),
    ("filename", "The original file name.", {"type": "string", "maxLength": 200}))
@idempotent(required=False, implicit_s=IMPLICIT_S)   # the same PDF and details sent again: one document
@responds("documents/document.json", status=201)
def upload():
    """Upload a PDF (Content-Type: application/pdf) as a draft outgoing or a received incoming document."""
    if not g.query.get("title"):
        raise errors.InvalidParameter("a document needs a title", detail_vi="Văn bản cần có trích yếu.",
                                      errors=[errors.field("title", "required")])
    data = request.get_data()   # read and refused, if it must be, once: by documents.upload, in a PDF worker
    dossier = _dossier(g.query["dossier"]) if g.query.get("dossier") else None
    item = documents.upload(uuid.uuid4().hex, data, _actor(), g.query, dossier)
    return jsonify(documents.view(item.data)), 201


@bp.get(f"/v1/documents/<{DOCUMENT_ID}>")
@allow(*READERS)
@responds("documents/document.json")
def read(document_id: str):
    """A document: its state, signatures, registration, assignment and allowed actions."""
    return jsonify(documents.view(documents.visible(document_id, _actor()).data))


@bp.get(f"/v1/documents/<{DOCUMENT_ID}>/file")
@allow(*READERS)
@responds(None, description="the current PDF (application/pdf)", media={"application/pdf": None})
def file(document_id: str):
    """The current file: the latest signed revision."""
    doc = documents.visible(document_id, _actor()).data
    name = (doc.get("registration") or {}).get("number_text") or doc["id"]
    return Response(documents.file_bytes(doc), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="document-{name}.pdf"', "ETag": f'"{doc["file"]["sha256"]}"'})


@bp.get(f"/v1/documents/<{DOCUMENT_ID}>/audit")
@allow("officer", "supervisor", "auditor")
@responds("documents/audit-trail.json")
def audit(document_id: str):
    """The complete audit trail, oldest first."""
    documents.visible(document_id, _actor())
    return jsonify({"document_id": document_id, "entries": documents.RECORDS.trail(document_id)})


@bp.post(f"/v1/documents/<{DOCUMENT_ID}>/signatures")
@allow(*STAFF)
@validate_body("documents/signature-create.json")
@idempotent(required=False, implicit_s=IMPLICIT_S, move=True)   # a retry: not "not your turn"
@responds("documents/document.json", status=201)
def sign(document_id: str):
    """Sign as the token's subject: the certificate (a dev one, issued on first use) names their
    agency and a pseudonym of their `sub`; `name` and `title` are shown on the box as self-declared."""
    item = documents.sign(document_id, _actor(), g.body, _custody(), _level())
    return jsonify(documents.view(item.data)), 201


@bp.post(f"/v1/documents/<{DOCUMENT_ID}>/registration")
@allow(*STAFF)
@validate_body("documents/registration-create.json")
@idempotent(required=False)
@responds("documents/document.json")
def register(document_id: str):
    """Register: số đi and the agency's seal for a signed outgoing document, số đến for an incoming one.
    The seal's name is the directory's name of the caller's agency, the symbol's abbreviation the one
    on record for it (function/data/agencies.json)."""
    client = current_app.config["DOCUMENTS_PEERS"]
    item = documents.register(document_id, _actor(), g.body, _custody(), _level(),
                              lambda code: issuers.of(client, code))
    return jsonify(documents.view(item.data))


@bp.post(f"/v1/documents/<{DOCUMENT_ID}>/assignment")
@allow("supervisor")
@validate_body("documents/assignment-create.json")
@idempotent(required=False, implicit_s=IMPLICIT_S, move=True)
@responds("documents/document.json")
def assign(document_id: str):
    """Assign a registered incoming document to an officer with a deadline."""
    return jsonify(documents.view(documents.assign(document_id, _actor(), g.body).data))


@bp.post("/v1/batches")
@allow(*STAFF)
@validate_body("documents/batch-create.json")
@idempotent(required=False, implicit_s=IMPLICIT_S, move=True)
@responds("documents/batch-result.json")
def batch():
    """One approval, many signatures (e-transcripts): sign every listed document in turn."""
    ids, most = g.body["documents"], current_app.config["DOCUMENTS"].batch_max
    if len(ids) > most:
        raise errors.Invalid.at("/documents", f"at most {most} documents a batch", f"Mỗi lần ký tối đa {most} văn bản.")
    actor, out = _actor(), []
    for i, document_id in enumerate(ids):
        try:
            item = documents.sign(document_id, actor, g.body, _custody(), _level())
            out.append({"id": document_id, "status": item.data["status"], "sha256": item.data["file"]["sha256"]})
        except errors.DomainError as exc:
            out.append({"id": document_id, "error": {"status": exc.status, "type": exc.type, "detail": str(exc),
                                                     "field": f"/documents/{i}"}})
    return jsonify({"signed": sum(1 for r in out if "error" not in r), "results": out})


@bp.get('/v1/registers/<int:year>/<schema("documents/document.json#/properties/direction", match=False):direction>')
@allow("officer", "supervisor", "auditor")
@responds("documents/register-book.json")
@query_params(("agency", "Auditors: whose register (staff read their own agency's).", _CODE),
              ("confidential", "The register of confidential documents.", {"type": "boolean", "default": False}),
              *page_params(default_limit=500, max_limit=1000))
def register_book(year: int, direction: str):
    """A register book (sổ đăng ký văn bản đi / đến) of one agency and year, in number order, a page
    at a time: follow next_page_token."""
    actor = _actor()
    if direction not in registers.DIRECTIONS:
        raise errors.NotFound("a register is outgoing or incoming", detail_vi="Sổ đăng ký là văn bản đi hoặc đến.")
    agency = (g.query.get("agency") or actor.agency) if actor.kind == "auditor" else actor.agency
    if not agency:
        raise errors.InvalidParameter("name the agency", detail_vi="Hãy chọn cơ quan.",
                                      errors=[errors.field("agency", "required for auditors")])
    book = registers.book_of(agency, year, direction, bool(g.query["confidential"]))
    try:
        lines, token = registers.entries(book, g.query["limit"], g.query["page_token"] or None)
    except store.InvalidKey:
        raise errors.InvalidParameter("page_token is not one this list issued",
                                      detail_vi="page_token không phải do danh sách này cấp.",
                                      errors=[errors.field("page_token", "not one this list issued")]) from None
    return jsonify({"book": book, "agency": agency, "year": year, "direction": direction,
                    "entries": lines, "next_page_token": token})
