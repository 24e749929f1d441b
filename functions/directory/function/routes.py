"""The directory's routes: a list and a get per kind, public and read-only.

Every answer goes through :func:`lscloud.web.cached_json` (strong ETag, ``Cache-Control: public,
max-age=300``, 304 to a matching ``If-None-Match``); write methods get the runtime's 405 problem.
"""

from __future__ import annotations

from flask import Blueprint, Response, g

from lscloud.auth import allow
from lscloud.listing import listing
from lscloud.web import CACHED, cached_json, query_params, responds

from . import snapshots
from .kinds import KINDS

bp = Blueprint("directory", __name__)


def _list(kind: str) -> Response:
    k = KINDS[kind]
    return cached_json(listing(snapshots.items(kind), g.query, texts=k.texts, filters=k.filters).to_dict())


def _get(kind: str, code: str) -> Response:
    return cached_json(snapshots.item(kind, code))


@bp.get("/v1/units")
@allow("public")
@responds("directory/unit.json", page=True, **CACHED)
@query_params(*KINDS["units"].list_params())
def list_units():
    """List the province and its 65 commune-level units (search with q, filter by type)."""
    return _list("units")


@bp.get('/v1/units/<schema("directory/unit.json#/properties/code", match=False):code>')
@allow("public")
@responds("directory/unit.json", **CACHED)
def get_unit(code: str):
    """Get one administrative unit by code."""
    return _get("units", code)


@bp.get("/v1/agencies")
@allow("public")
@responds("directory/agency.json", page=True, **CACHED)
@query_params(*KINDS["agencies"].list_params())
def list_agencies():
    """List the agencies acting in the system (filter by kind, role, unit, gate)."""
    return _list("agencies")


@bp.get('/v1/agencies/<schema("directory/agency.json#/properties/code", match=False):code>')
@allow("public")
@responds("directory/agency.json", **CACHED)
def get_agency(code: str):
    """Get one agency by code (the `agency` claim of officers' tokens)."""
    return _get("agencies", code)


@bp.get("/v1/border-gates")
@allow("public")
@responds("directory/border-gate.json", page=True, **CACHED)
@query_params(*KINDS["border-gates"].list_params())
def list_border_gates():
    """List Lạng Sơn's border gates with China."""
    return _list("border-gates")


@bp.get('/v1/border-gates/<schema("directory/border-gate.json#/properties/code", match=False):code>')
@allow("public")
@responds("directory/border-gate.json", **CACHED)
def get_border_gate(code: str):
    """Get one border gate: counterpart, hours, capacity, lanes."""
    return _get("border-gates", code)


@bp.get("/v1/post-offices")
@allow("public")
@responds("directory/post-office.json", page=True, **CACHED)
@query_params(*KINDS["post-offices"].list_params())
def list_post_offices():
    """List VNPost service points (filter by unit, soft_atm)."""
    return _list("post-offices")


@bp.get('/v1/post-offices/<schema("directory/post-office.json#/properties/code", match=False):code>')
@allow("public")
@responds("directory/post-office.json", **CACHED)
def get_post_office(code: str):
    """Get one VNPost service point by code."""
    return _get("post-offices", code)
