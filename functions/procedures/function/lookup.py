"""One procedure by its code, and the form template of one of its documents.

Codes come from the caller's URL: checked before the store is asked (400), unknown ones are 404s
naming the parameter (:mod:`lscloud.reference`). A template's PDF is a blob the function hands
out by a short-lived link (:func:`lscloud.web.download_link`).
"""

from __future__ import annotations

from lscloud import errors, store
from lscloud.reference import Code

from .catalogue import CODE_RE, SLUG_RE
from .models import TEMPLATE_PREFIX, Procedure

PROCEDURE = Code("procedure", "thủ tục", lambda code: bool(CODE_RE.match(code or "")),
                 "upper-case letters, digits and dashes, e.g. HT-KS or XD-GPXD")
DOCUMENT = Code("document", "giấy tờ", lambda code: bool(SLUG_RE.match(code or "")),
                "lowercase letters, digits and dashes")


class TemplateNotFound(errors.NotFound):
    title, title_vi = "Template not found", "Không có mẫu đơn, tờ khai"


def procedure(code: str) -> dict:
    """The procedure with ``code``: documents, fees, steps … (the contract ``dossiers`` reads)."""
    return PROCEDURE.get(Procedure, code).data


def form_template(code: str, doc: str) -> dict:
    """The template reference (``sha256``, ``media_type``, ``filename``) of document ``doc`` of procedure ``code``."""
    found = procedure(code)
    DOCUMENT.check(doc, field="/doc")
    document = next((d for d in found["documents"] if d["code"] == doc), None)
    if document is None or document.get("template") is None:
        what = "has no such document" if document is None else "has no form template for this document"
        raise TemplateNotFound(f"Procedure {code} {what} ({doc!r}).",
                               detail_vi=f"Thủ tục {code} không có mẫu cho giấy tờ {doc!r}.",
                               errors=[errors.field("/doc", what)])
    return document["template"]


def templates() -> store.BlobStore:
    """Where the form templates' PDFs are kept (by their sha256)."""
    return store.blobs(TEMPLATE_PREFIX)
