"""Official documents: upload, sign in order, register (số đi / số đến), assign, read, verify.

Plain Python over the store (:data:`RECORDS`, the one write path); the signing itself is
:mod:`.signing` with keys from the custody (:mod:`.custody`). A signature is made on the current
file outside the record's write (it takes a while) and then committed only if the file is still
the one that was signed: a second signer who raced ahead gets a 409 and signs the newer file.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime
from typing import Callable

from lscloud import errors, runtime, store
from lscloud.aggregate import Aggregate
from lscloud.statemachine import Actor, iso, now
from lscloud.store import BlobRejected, BlobStore
from lscloud.workdays import TZ

from . import issuers, pdf_worker, registers, signing
from .models import Document, DocumentAudit
from .states import MACHINE

log = logging.getLogger("documents")
PREFIX = "documents-files"


class NotYourTurn(errors.Conflict):
    type = "not-your-turn"
    title, title_vi = "Not your turn to sign", "Chưa đến lượt ký"


class FileChanged(errors.Conflict):
    type = "file-changed"
    title, title_vi = "The document changed meanwhile", "Văn bản đã thay đổi"


class BadPdf(errors.Invalid):
    type = "bad-pdf"
    title, title_vi = "Not a usable PDF", "Tệp PDF không hợp lệ"


# why the store refused a file (BlobRejected.cause), for the Vietnamese reader
def _summary(doc: dict) -> dict:
    reg = doc.get("registration") or {}
    return {"document_id": doc["id"], "agency": doc["agency"], "direction": doc["direction"],
            "status": doc["status"], "doc_type": doc["doc_type"], "dossier_id": doc.get("dossier_id"),
            "sha256": doc["file"]["sha256"], "signatures": len(doc["signatures"]),
            "number": reg.get("number"), "symbol": reg.get("symbol"), "display": reg.get("display")}


RECORDS = Aggregate(Document, machine=MACHINE, source="/documents", audit=DocumentAudit, summary=_summary)


def files() -> BlobStore:
    return store.blobs(PREFIX, max_bytes=runtime.current().settings.blob_max_bytes,
                       allowed_types=("application/pdf",))


def _sign_pdf(pdf: bytes, **how) -> bytes:
    """:func:`.signing.sign_pdf`, a PDF it cannot sign answered as :class:`BadPdf` (422). One that
    :func:`check_pdf` let through can still hold what pyHanko cannot write a field into (an
    /AcroForm that is a number, a field name that is not a string): a TypeError out of it was a 500."""

    try:
        return signing.sign_pdf(pdf, **how)
    except pdf_worker.UNREADABLE as exc:
        log.info("a document's PDF could not be signed: %s", type(exc).__name__)
        raise BadPdf.at("", f"this PDF cannot be signed: {type(exc).__name__}; upload it again from its source",
                        "Không ký được tệp PDF này; hãy xuất lại tệp từ phần mềm gốc rồi tải lên.") from None


SIGN_ELEMENTS_MAX = 250_000
"""Numbers, names, strings, arrays and dictionaries an uploaded PDF may hold (streams' contents
aside). Signing reads the file in the replica itself, not in a worker: a 2.7 KB upload of two
form fields of half a million zeros each passed the check and took 8 s and 600 MB to sign. A
500-page document holds ~20,000; at ~250 bytes each, the limit lets through at most ~60 MB."""


def check_pdf(data: bytes) -> int:
    """The page count of a PDF this service can sign; :class:`BadPdf` naming the body otherwise.
    Read in a worker process (:mod:`.pdf_worker`): an officer's file is anyone's file."""
    if not data.startswith(b"%PDF-"):
        raise BadPdf.at("", "the body is not a PDF (it does not start with %PDF-)", "Tệp gửi lên không phải là tệp PDF.")
    return pdf_worker.run(_pages, data)


def _pages(data: bytes) -> int:
    from pyhanko.pdf_utils.misc import PdfDecodeLimitError
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False, decode_limits=pdf_worker.DECODE_LIMITS)
        if reader.encrypted:
            raise BadPdf.at("", "encrypted PDFs cannot be signed here: upload it without a password",
                            "Không ký được tệp PDF có mật khẩu; hãy tải lên bản không đặt mật khẩu.")
        pages = int(reader.root["/Pages"]["/Count"])
    except BadPdf:
        raise
    except PdfDecodeLimitError:
        raise pdf_worker.too_costly("a stream decodes to more than this service reads") from None
    except pdf_worker.UNREADABLE as exc:
        raise BadPdf.at("", f"the PDF cannot be read: {type(exc).__name__}", "Không đọc được tệp PDF này.") from None
    if pages < 1:
        raise BadPdf.at("", "the PDF has no page", "Tệp PDF không có trang nào.")
    pdf_worker.weigh(reader, SIGN_ELEMENTS_MAX)
    return pages


def _store_pdf(data: bytes, filename: str | None = None) -> dict:
    try:
        ref = files().put(data, "application/pdf", filename)
    except BlobRejected as exc:
        raise BadPdf.at("", f"file refused: {exc.cause}",
                        f"Tệp bị từ chối: {exc.message_vi} (chỉ nhận tệp PDF).") from None
    return {"sha256": ref.sha256, "size": ref.size}


# -- reading ------------------------------------------------------------------------------------------

def can_see(doc: dict, actor: Actor) -> bool:
    if actor.kind == "auditor":
        return True
    if actor.kind in ("officer", "supervisor"):
        return actor.agency == doc["agency"]
    # the citizen or business a dossier's result is for: once it is issued
    return bool(doc.get("recipient")) and doc["recipient"] == actor.sub and doc["status"] == "issued"


def visible(document_id: str, actor: Actor) -> Document:
    return RECORDS.visible(document_id, lambda d: can_see(d, actor))


def view(doc: dict) -> dict:
    out = {k: v for k, v in doc.items() if k not in ("recipient", "registering")}
    out["allowed_actions"] = MACHINE.allowed_actions(doc["status"])
    # where the caller fetches the PDF: this function's public URL, as the platform publishes it
    out["file_url"] = f"{runtime.current().settings.public_url()}/v1/documents/{doc['id']}/file"
    return out


def file_bytes(doc: dict) -> bytes:
    return files().get(doc["file"]["sha256"])


# -- upload -------------------------------------------------------------------------------------------

def upload(document_id: str, data: bytes, actor: Actor, q: dict, dossier: dict | None = None) -> Document:
    pages = check_pdf(data)
    if not actor.agency:
        raise errors.Forbidden("an officer's token names their agency", detail_vi="Token không có cơ quan.")
    f = _store_pdf(data, q.get("filename"))
    direction = q.get("direction") or "outgoing"
    signers = [s for s in (q.get("signers") or "").split(",") if s.strip()]
    doc = {"id": document_id, "title": q["title"], "direction": direction, "doc_type": q.get("type") or "cong-van",
           "urgency": q.get("urgency") or "thuong", "confidentiality": q.get("confidentiality") or "thuong",
           "agency": actor.agency, "unit": actor.unit, "created_by": actor.sub, "status": "new",
           "pages": pages, "original": f, "file": f, "signers_plan": [s.strip() for s in signers],
           "signatures": [], "registration": None, "assignment": None,
           "dossier_id": dossier["id"] if dossier else None, "dossier_code": dossier.get("code") if dossier else None,
           "recipient": dossier.get("owner") if dossier else None}
    t = MACHINE.apply(doc, "draft" if direction == "outgoing" else "receive", actor,
                      details={"sha256": f["sha256"], "pages": pages, "dossier_id": doc["dossier_id"]})
    return RECORDS.create(Document(document_id, data=doc), [t]).item


# -- signing ------------------------------------------------------------------------------------------

def _level_lta(level: str) -> bool:
    return level == "B-LTA"


def _check_turn(doc: dict, actor: Actor) -> None:
    MACHINE.check(doc, "sign", actor)
    if actor.agency != doc["agency"]:
        raise errors.Forbidden("only the document's agency signs it", detail_vi="Chỉ cơ quan soạn thảo ký văn bản.")
    plan, done = doc["signers_plan"], [s["by"] for s in doc["signatures"]]
    if plan:
        if len(done) >= len(plan) or plan[len(done)] != actor.sub:
            nxt = plan[len(done)] if len(done) < len(plan) else None
            raise NotYourTurn(f"signer {len(done) + 1} of {len(plan)} is {nxt!r}, not you",
                              detail_vi="Văn bản được ký theo thứ tự: chưa đến lượt bạn.")
    elif actor.sub in done:
        raise NotYourTurn("you have already signed this document", detail_vi="Bạn đã ký văn bản này.")


def sign(document_id: str, actor: Actor, body: dict, custody, level: str) -> Document:
    doc = visible(document_id, actor).data
    _check_turn(doc, actor)
    base = doc["file"]["sha256"]
    # the certificate names the caller as their token does; a typed name and title are only the
    # box's self-declared lines, never certified (anyone could type the chairman's)
    signer, who = custody.person(actor)
    stated_name, stated_title = body.get("name"), body.get("title")
    slot = len(doc["signatures"])
    signed = _sign_pdf(
        file_bytes(doc), signer=signer, trust=custody.trust(), timestamper=custody.timestamper(),
        field=f"Sig{slot + 1}", reason=body.get("reason") or "Phê duyệt / Approved",
        appearance=signing.Appearance(stated_name, stated_title, doc["agency"], slot, certified=who.name),
        lta=_level_lta(level))
    f = _store_pdf(signed)
    at = now()

    def op(d: dict):
        if d["file"]["sha256"] != base:
            raise FileChanged("another signature was added meanwhile: sign the current file",
                              detail_vi="Văn bản vừa được ký bởi người khác: hãy ký lại bản hiện tại.")
        _check_turn(d, actor)
        d["signatures"].append({"n": slot + 1, "by": actor.sub, "name": who.name, "title": who.title,
                                "stated_name": stated_name, "stated_title": stated_title,
                                "field": f"Sig{slot + 1}", "at": iso(at), "level": level,
                                "certificate": who.certificate, "sha256": f["sha256"]})
        d["file"] = f
        plan = d["signers_plan"]
        target = "signed" if not plan or len(d["signatures"]) == len(plan) else "signing"
        return [MACHINE.apply(d, "sign", actor, at=at, target=target,
                              details={"n": slot + 1, "sha256": f["sha256"], "level": level})]

    return RECORDS.mutate(document_id, op).item


# -- registration ---------------------------------------------------------------------------------------

def _year(at: datetime) -> int:
    return at.astimezone(TZ).year


CLAIM_STALE_S = 120


def _claim_number(document_id: str, book: str, actor: Actor, at: datetime, doc_type: str) -> tuple[str, datetime, int]:
    """Mark the document as being registered (one registrar at a time), then take its number:
    ``(book, when, number)``. A registration that died half-way is resumed with the number it had
    already taken, in the book and the year it was taken in (one that died on 31 December and was
    resumed in January kept last year's number under this year's book)."""
    resumed: list[dict] = []

    def mark(d: dict):
        pending = d.get("registering")
        if pending and (at - datetime.fromisoformat(pending["at"])).total_seconds() < CLAIM_STALE_S:
            raise errors.Conflict("this document is being registered right now",
                                  detail_vi="Văn bản đang được vào sổ.")
        if pending:
            resumed.append(pending)
        d["registering"] = {"book": book, "at": iso(at), "by": actor.sub}
        return [], True

    RECORDS.mutate(document_id, mark)
    held = registers.find(resumed[0]["book"], document_id) if resumed else None
    if held:
        return resumed[0]["book"], datetime.fromisoformat(resumed[0]["at"]), held
    return book, at, registers.take(book, document_id, {"at": iso(at), "by": actor.sub, "doc_type": doc_type})


def register(document_id: str, actor: Actor, body: dict, custody, level: str,
             issuer_of: Callable[[str], issuers.Issuer]) -> Document:
    """Số đi (with the agency's seal signature) for a signed outgoing document, số đến for an
    incoming one; registering again answers the registration it already has. ``issuer_of(code)``:
    the agency's name and abbreviation as the platform records them (:func:`.issuers.of`)."""
    doc = visible(document_id, actor).data
    if doc.get("registration"):
        return visible(document_id, actor)
    outgoing = doc["direction"] == "outgoing"
    MACHINE.check(doc, "issue" if outgoing else "register", actor)
    # asked before a number is taken: an agency that cannot issue takes none
    issuer = issuer_of(doc["agency"]) if outgoing else None
    at = now()
    book = registers.book_of(doc["agency"], _year(at), doc["direction"], doc["confidentiality"] != "thuong")
    book, taken_at, n = _claim_number(document_id, book, actor, at, doc["doc_type"])
    sym = registers.symbol(doc["doc_type"], issuer.abbr, body.get("unit_abbr")) if outgoing else None
    reg = {"book": book, "year": _year(taken_at), "number": n, "number_text": registers.number_text(n), "symbol": sym,
           "display": registers.display(n, sym), "at": iso(at), "by": actor.sub}
    f = None
    if outgoing:
        signer, who = custody.seal(issuer.code, issuer.name)
        slot = len(doc["signatures"])
        sealed = _sign_pdf(
            file_bytes(doc), signer=signer, trust=custody.trust(), timestamper=custody.timestamper(),
            field="AgencySeal", reason=f"Ban hành / Issued: {reg['display']}",
            appearance=signing.Appearance(who.name, reg["display"], issuer.name, slot,
                                          seal=True), lta=_level_lta(level))
        f = _store_pdf(sealed)
        reg["seal"] = {"name": who.name, "certificate": who.certificate, "sha256": f["sha256"]}

    def op(d: dict):
        if d.get("registration"):
            return [], d["registration"]
        d["registration"] = reg
        d.pop("registering", None)
        if f is not None:
            d["file"] = f
        return [MACHINE.apply(d, "issue" if outgoing else "register", actor, at=at,
                              details={"number": n, "symbol": sym, "book": book})]

    return RECORDS.mutate(document_id, op).item


def assign(document_id: str, actor: Actor, body: dict) -> Document:
    at = now()

    def op(d: dict):
        if actor.agency != d["agency"]:
            raise errors.Forbidden("only the document's agency assigns it", detail_vi="Không thuộc cơ quan của bạn.")
        d["assignment"] = {"officer": body["officer"], "deadline": body["deadline"], "note": body.get("note"),
                           "by": actor.sub, "at": iso(at)}
        return [MACHINE.apply(d, "assign", actor, at=at, details={"deadline": body["deadline"]})]

    visible(document_id, actor)
    return RECORDS.mutate(document_id, op).item
