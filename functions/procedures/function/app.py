"""The catalogue's HTTP surface: public and read-only.

- ``GET /v1/procedures``                 search (diacritics and case ignored) with filters, paged;
- ``GET /v1/procedures/{code}``          one procedure (the contract ``dossiers`` reads);
- ``GET /v1/fields``                     the fields (lĩnh vực) with their procedure counts;
- ``GET /v1/procedures/{code}/documents/{doc}/template``  303 to a short-lived presigned URL of
  the form's PDF (``?redirect=false``: the URL as JSON).

Lists and items are answered by :func:`lscloud.web.cached_json` (strong ETag, Cache-Control,
304) from the store — the snapshot for lists, the item's document for ``/{code}``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Flask, g, redirect

from lscloud.auth import allow
from lscloud import store
from lscloud.store import DoesNotExist, keys as store_keys
from lscloud.web import CACHED, Problem, app_state, cached_json, create_app as runtime_app, query_params, responds

from . import search
from .catalogue import CODE_RE, SLUG_RE
from .models import SNAPSHOT, TEMPLATE_PREFIX, CatalogueSnapshot, Procedure

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
_CODE_HINT = "upper-case letters, digits and dashes, e.g. HT-KS or XD-GPXD"

def _not_seeded() -> Problem:
    return Problem(503, "not-seeded", "Catalogue not loaded",
                   "The procedure catalogue has not been seeded into the store yet; run `lscloud seed`.",
                   title_vi="Chưa nạp danh mục thủ tục", detail_vi="Danh mục thủ tục hành chính chưa được nạp.",
                   headers={"Retry-After": "30"})


class _SnapshotCache:
    """The parsed snapshot, revalidated on every request by a HEAD of its object (ETag).

    A cache only: each request still asks the store whether the snapshot changed, so a re-seed
    is served at once by every replica; what is saved is moving and parsing ~100 KiB of JSON
    per search (the bulk of a search's time, see ``lscloud bench procedures``).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._etag: str | None = None
        self._value: CatalogueSnapshot | None = None

    def get(self) -> CatalogueSnapshot:
        objects, bucket = store.connection()
        try:
            etag = objects.head(bucket, store_keys.object_key(CatalogueSnapshot.Meta.table, SNAPSHOT)).etag
            with self._lock:
                if self._value is not None and etag == self._etag:
                    return self._value
            snap = CatalogueSnapshot.get(SNAPSHOT)
        except DoesNotExist:
            raise _not_seeded() from None
        with self._lock:
            self._etag, self._value = snap.etag, snap
        return snap


def _procedure(code: str) -> dict:
    if not CODE_RE.match(code or ""):
        raise Problem(400, "invalid-parameter", "Malformed procedure code",
                      f"{code[:40]!r} is not a procedure code: expected {_CODE_HINT}.",
                      title_vi="Mã thủ tục không đúng định dạng", detail_vi="Mã thủ tục không đúng định dạng.",
                      errors=[{"field": "/code", "message": f"expected {_CODE_HINT}"}])
    try:
        return Procedure.get(code).data
    except DoesNotExist:
        raise Problem(404, "not-found", "Procedure not found", f"No procedure has code {code!r}.",
                      title_vi="Không tìm thấy thủ tục", detail_vi=f"Không có thủ tục nào mang mã {code!r}.",
                      errors=[{"field": "/code", "message": "no procedure with this code"}]) from None


def create_app(settings=None) -> Flask:
    """The procedures function's Flask app."""
    app = runtime_app("procedures", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn administrative procedures", "version": "1.0.0",
        "description": "The catalogue of administrative procedures (thủ tục hành chính) of Lạng Sơn province: "
                       "documents, form templates, fees, processing time in working days, steps and agencies, "
                       "legal basis. Public and read-only."})
    snapshots = _SnapshotCache()

    @app.get("/v1/procedures")
    @allow("public")
    @responds("procedures/procedure.json", page=True, **CACHED)
    @query_params(*search.LIST_PARAMS)
    def list_procedures():
        """Search the catalogue (q ignores case and diacritics) with filters; paged."""
        snap = snapshots.get()
        return cached_json(search.listing(snap.items, snap.index, g.query).to_dict())

    @app.get("/v1/procedures/<code>")
    @allow("public")
    @responds("procedures/procedure.json", **CACHED)
    def get_procedure(code: str):
        """One procedure: documents, fees, processing days, steps and agencies, legal basis."""
        return cached_json(_procedure(code))

    @app.get("/v1/fields")
    @allow("public")
    @responds("procedures/field.json", page=True, **CACHED)
    def list_fields():
        """The fields (lĩnh vực) of the catalogue, with how many procedures each has."""
        fields = snapshots.get().fields
        return cached_json({"items": fields, "total": len(fields), "next_page_token": None})

    @app.get("/v1/procedures/<code>/documents/<doc>/template")
    @allow("public")
    @responds("procedures/template-link.json", also={303: "See Other: the presigned URL of the form's PDF"})
    @query_params(("redirect", "false: answer the link as JSON instead of 303",
                   {"type": "boolean", "default": True}))
    def get_template(code: str, doc: str):
        """The form template of one of a procedure's documents: 303 to a short-lived download URL."""
        procedure = _procedure(code)
        if not SLUG_RE.match(doc or ""):
            raise Problem(400, "invalid-parameter", "Malformed document code", f"{doc[:40]!r} is not a document code.",
                          title_vi="Mã giấy tờ không đúng định dạng", detail_vi="Mã giấy tờ không đúng định dạng.",
                          errors=[{"field": "/doc", "message": "lowercase letters, digits and dashes"}])
        document = next((d for d in procedure["documents"] if d["code"] == doc), None)
        if document is None or document.get("template") is None:
            what = "has no such document" if document is None else "has no form template for this document"
            raise Problem(404, "not-found", "Template not found", f"Procedure {code} {what} ({doc!r}).",
                          title_vi="Không có mẫu đơn, tờ khai",
                          detail_vi=f"Thủ tục {code} không có mẫu cho giấy tờ {doc!r}.",
                          errors=[{"field": "/doc", "message": what}])
        ttl = app_state().settings.presign_ttl_s
        template = document["template"]
        try:
            url = store.blobs(TEMPLATE_PREFIX).presigned_url(
                template["sha256"], ttl, filename=template["filename"])
        except DoesNotExist:
            raise _not_seeded() from None
        if not g.query["redirect"]:
            resp = app.json.response({"url": url, "expires_in": ttl, **template})
        else:
            resp = redirect(url, 303)
        resp.headers["Cache-Control"] = "no-store"  # the link expires; never cache it
        return resp

    return app

