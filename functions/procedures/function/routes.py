"""The catalogue's routes: public and read-only.

- ``GET /v1/procedures``                 search (diacritics and case ignored) with filters, paged;
- ``GET /v1/procedures/{code}``          one procedure (the contract ``dossiers`` reads);
- ``GET /v1/fields``                     the fields (lĩnh vực) with their procedure counts;
- ``GET /v1/procedures/{code}/documents/{doc}/template``  303 to a short-lived link to the form's
  PDF, served by this function (``?redirect=false``: the link as JSON).

Lists and items are answered by :func:`lscloud.web.cached_json` (strong ETag, Cache-Control, 304)
from the store — the snapshot for lists (:mod:`.snapshots`), the item's document for ``/{code}``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, redirect

from lscloud.auth import allow
from lscloud.store import DoesNotExist
from lscloud.web import CACHED, app_state, cached_json, download_link, query_params, responds

from . import lookup, search
from .snapshots import NotSeeded, SnapshotCache

bp = Blueprint("procedures", __name__)


def snapshots() -> SnapshotCache:
    return current_app.extensions["procedures.snapshots"]


CODE = 'schema("procedures/procedure.json#/properties/code", match=False):code'
"""A procedure's code (``HT-KS``), documented by the procedure's schema; any segment routes, so an
unknown or malformed code is the catalogue's own 404."""
DOC = 'schema("procedures/procedure.json#/properties/documents/items/properties/code", match=False):doc'
"""A document's code in its procedure (``to-khai``), as the procedure names it; any segment routes, so a
malformed one is the catalogue's 400 naming ``/doc`` and an unknown one its 404."""

@bp.get("/v1/procedures")
@allow("public")
@responds("procedures/procedure.json", page=True, **CACHED)
@query_params(*search.LIST_PARAMS)
def list_procedures():
    """Search the catalogue (q ignores case and diacritics) with filters; paged."""
    snap = snapshots().get()
    return cached_json(search.listing(snap.items, snap.index, g.query).to_dict())


@bp.get(f"/v1/procedures/<{CODE}>")
@allow("public")
@responds("procedures/procedure.json", **CACHED)
def get_procedure(code: str):
    """One procedure: documents, fees, processing days, steps and agencies, legal basis."""
    return cached_json(lookup.procedure(code))


@bp.get("/v1/fields")
@allow("public")
@responds("procedures/field.json", page=True, **CACHED)
def list_fields():
    """The fields (lĩnh vực) of the catalogue, with how many procedures each has."""
    fields = snapshots().get().fields
    return cached_json({"items": fields, "total": len(fields), "next_page_token": None})


@bp.get(f"/v1/procedures/<{CODE}>/documents/<{DOC}>/template")
@allow("public")
@responds("procedures/template-link.json", also={303: "See Other: a short-lived link to the form's PDF"})
@query_params(("redirect", "false: answer the link as JSON instead of 303",
               {"type": "boolean", "default": True}))
def get_template(code: str, doc: str):
    """The form template of one of a procedure's documents: 303 to a short-lived download URL."""
    template = lookup.form_template(code, doc)
    ttl = app_state().settings.download_link_ttl_s
    try:
        url = download_link(lookup.templates(), template["sha256"], ttl, filename=template["filename"])
    except DoesNotExist:
        raise NotSeeded() from None
    resp = redirect(url, 303) if g.query["redirect"] else jsonify({"url": url, "expires_in": ttl, **template})
    resp.headers["Cache-Control"] = "no-store"  # the link expires; never cache it
    return resp
