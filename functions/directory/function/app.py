"""The directory's HTTP surface: public, read-only reference data of Lạng Sơn.

Every route reads the store (a per-kind snapshot for lists, the item's document for
``/{code}``), never the package or the YAML files, answers with a strong ``ETag`` and
``Cache-Control: public, max-age=300``, and ``304`` to a matching ``If-None-Match``.
Write methods get the runtime's ``405`` problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from flask import Flask, Response, g

from lscloud.auth import allow
from lscloud.store import DoesNotExist
from lscloud.web import CACHED, Problem, cached_json, create_app as runtime_app, query_params, responds

from lscloud.listing import Filter, list_params as listing_params, listing

from . import agencies, gates, post_offices, units
from .models import Agency, BorderGate, DirectorySnapshot, PostOffice, Unit

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


@dataclass(frozen=True)
class Kind:
    """One kind of reference data and how its routes talk about it (in both languages)."""

    name: str                       # snapshot key and path segment
    model: type
    valid_code: Callable[[str], bool]
    code_hint: str
    texts: Callable
    filters: tuple[Filter, ...]
    noun: str
    noun_vi: str


KINDS = {k.name: k for k in (
    Kind("units", Unit, units.valid_code, '"20" (the province) or a 5-digit ward code such as "06040"',
         units.search_texts, units.filters(), "unit", "đơn vị hành chính"),
    Kind("agencies", Agency, agencies.valid_code, "lowercase letters, digits and dashes, e.g. \"customs\"",
         agencies.search_texts, agencies.filters(), "agency", "cơ quan"),
    Kind("border-gates", BorderGate, gates.valid_code, "lowercase letters, digits and dashes, e.g. \"huu-nghi\"",
         gates.search_texts, gates.filters(), "border gate", "cửa khẩu"),
    Kind("post-offices", PostOffice, post_offices.valid_code, '"bd-" and a unit code, e.g. "bd-06040"',
         post_offices.search_texts, post_offices.filters(), "post office", "điểm bưu điện"),
)}

# -- the answers -----------------------------------------------------------------------------------

def _not_seeded(kind: Kind) -> Problem:
    return Problem(503, "not-seeded", "Directory data not loaded",
                   f"The {kind.noun} list has not been seeded into the store yet; run `lscloud seed`.",
                   title_vi="Chưa nạp dữ liệu danh mục",
                   detail_vi=f"Danh sách {kind.noun_vi} chưa được nạp vào kho dữ liệu.",
                   headers={"Retry-After": "30"})


def _list(name: str) -> Response:
    kind = KINDS[name]
    try:
        snapshot = DirectorySnapshot.get(name)
    except DoesNotExist:
        raise _not_seeded(kind) from None
    page = listing(snapshot.items, g.query, texts=kind.texts, filters=kind.filters)
    return cached_json(page.to_dict())


def _get(name: str, code: str) -> Response:
    kind = KINDS[name]
    if not kind.valid_code(code):
        raise Problem(400, "invalid-parameter", f"Malformed {kind.noun} code",
                      f"{code[:40]!r} is not a {kind.noun} code: expected {kind.code_hint}.",
                      title_vi=f"Mã {kind.noun_vi} không đúng định dạng",
                      detail_vi=f"Mã {kind.noun_vi} không đúng định dạng.",
                      errors=[{"field": "/code", "message": f"expected {kind.code_hint}"}])
    try:
        item = kind.model.get(code)
    except DoesNotExist:
        raise Problem(404, "not-found", f"{kind.noun.capitalize()} not found",
                      f"No {kind.noun} has code {code!r}.",
                      title_vi=f"Không tìm thấy {kind.noun_vi}",
                      detail_vi=f"Không có {kind.noun_vi} nào mang mã {code!r}.",
                      errors=[{"field": "/code", "message": f"no {kind.noun} with this code"}]) from None
    return cached_json(item.data)


# -- OpenAPI: what these routes answer (the runtime builds /openapi.json from it) ----------------

# every answer goes through lscloud.web.cached_json: ``@responds(..., **CACHED)``


def list_params(name: str) -> tuple:
    """The query parameters of one kind's list route: search and paging, then the kind's filters."""
    return listing_params(KINDS[name].filters)


# -- routes ------------------------------------------------------------------------------------------

def create_app(settings=None) -> Flask:
    """The directory's Flask app."""
    app = runtime_app("directory", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn directory", "version": "1.0.0",
        "description": "Reference data of Lạng Sơn province: administrative units (since 1 July 2025), "
                       "agencies, border gates with China, VNPost service points. Public and read-only."})

    @app.get("/v1/units")
    @allow("public")
    @responds("directory/unit.json", page=True, **CACHED)
    @query_params(*list_params("units"))
    def list_units():
        """List the province and its 65 commune-level units (search with q, filter by type)."""
        return _list("units")

    @app.get("/v1/units/<code>")
    @allow("public")
    @responds("directory/unit.json", **CACHED)
    def get_unit(code: str):
        """Get one administrative unit by code."""
        return _get("units", code)

    @app.get("/v1/agencies")
    @allow("public")
    @responds("directory/agency.json", page=True, **CACHED)
    @query_params(*list_params("agencies"))
    def list_agencies():
        """List the agencies acting in the system (filter by kind, role, unit, gate)."""
        return _list("agencies")

    @app.get("/v1/agencies/<code>")
    @allow("public")
    @responds("directory/agency.json", **CACHED)
    def get_agency(code: str):
        """Get one agency by code (the `agency` claim of officers' tokens)."""
        return _get("agencies", code)

    @app.get("/v1/border-gates")
    @allow("public")
    @responds("directory/border-gate.json", page=True, **CACHED)
    @query_params(*list_params("border-gates"))
    def list_border_gates():
        """List Lạng Sơn's border gates with China."""
        return _list("border-gates")

    @app.get("/v1/border-gates/<code>")
    @allow("public")
    @responds("directory/border-gate.json", **CACHED)
    def get_border_gate(code: str):
        """Get one border gate: counterpart, hours, capacity, lanes."""
        return _get("border-gates", code)

    @app.get("/v1/post-offices")
    @allow("public")
    @responds("directory/post-office.json", page=True, **CACHED)
    @query_params(*list_params("post-offices"))
    def list_post_offices():
        """List VNPost service points (filter by unit, soft_atm)."""
        return _list("post-offices")

    @app.get("/v1/post-offices/<code>")
    @allow("public")
    @responds("directory/post-office.json", **CACHED)
    def get_post_office(code: str):
        """Get one VNPost service point by code."""
        return _get("post-offices", code)

    return app
