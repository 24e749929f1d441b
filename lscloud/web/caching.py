"""Answers with validators: reference data with a strong ETag, Cache-Control and 304
(:func:`cached_json`, or :func:`cached` for an answer in another format); a record at its version
(:func:`versioned_json`), and a change made only to the version the caller read
(:func:`if_match_version`, declared with :func:`takes_if_match`).

An answer that says nothing of caching is ``Cache-Control: no-store`` (:func:`lscloud.web.create_app`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, jsonify, request

from ..errors import PreconditionFailed, field, if_match_required

__all__ = ["CACHE_CONTROL", "CACHED", "RECORD_CACHE_CONTROL", "cached", "cached_json", "caching", "versioned_json",
           "if_match_version", "takes_if_match", "IF_MATCH_PARAMETER", "IF_MATCH_REQUIRED_PARAMETER",
           "IF_MATCH_ONCE_SET_PARAMETER"]


CACHE_CONTROL = "public, max-age=300"

RECORD_CACHE_CONTROL = "private, no-cache"
"""What :func:`versioned_json` answers carry: kept by the caller's own browser only, and asked again
(with its ETag) before every use, never by a shared cache."""


def caching(cache_control: str = CACHE_CONTROL) -> dict[str, Any]:
    """What :func:`cached` answers with ``cache_control``, for ``@responds(schema, **caching(...))``."""
    return {"headers": {"ETag": "Strong validator of the body: send it back in If-None-Match.",
                        "Cache-Control": cache_control},
            "also": {304: "Not modified (If-None-Match matched)"}}


CACHED: dict[str, Any] = caching()
"""What :func:`cached_json` answers, for ``@responds(schema, **CACHED)``."""


def cached(resp: Response, *, cache_control: str = CACHE_CONTROL) -> Response:
    """A public read-only answer (any format: Open311's XML too) given a strong ``ETag`` (sha256 of
    its bytes), ``Cache-Control``, and ``304`` to a matching ``If-None-Match``."""
    resp.set_etag(hashlib.sha256(resp.get_data()).hexdigest()[:32])  # strong: same bytes, same tag
    resp.headers["Cache-Control"] = cache_control
    return resp.make_conditional(request)


def cached_json(payload: Any, *, cache_control: str = CACHE_CONTROL) -> Response:
    """Public read-only JSON with a strong ``ETag`` (sha256 of the bytes), ``Cache-Control``, and
    ``304`` to a matching ``If-None-Match``: the one way reference data is answered."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode()
    return cached(Response(body, mimetype="application/json"), cache_control=cache_control)


def versioned_json(payload: Any, version: int, status: int = 200, *, conditional: bool = False) -> Response:
    """A record's JSON with its version as the ``ETag`` (``"<version>"``): every write changes the
    version, so a client tells two states of the record apart by it (declare it with
    ``@responds(..., headers={"ETag": "The record's version"})``). ``Cache-Control:`` private,
    no-cache (:data:`RECORD_CACHE_CONTROL`).

    ``conditional``: the answer is the record's alone, the same at every version for every caller
    who may read it, so a ``GET`` whose ``If-None-Match`` names the version is answered ``304``. Not
    for an answer that also changes with the clock (a deadline's days left, an overdue flag) or with
    who asks: a 304 would keep the caller's copy of an older one, and the tag cannot say so (it is
    the version, which ``If-Match`` reads)."""
    resp = jsonify(payload)
    resp.status_code = status
    resp.headers["ETag"] = f'"{int(version)}"'
    resp.headers["Cache-Control"] = RECORD_CACHE_CONTROL
    if conditional and status == 200:
        return resp.make_conditional(request)
    return resp


# the ETag versioned_json sends: a quoted decimal of at most 20 ASCII digits (any 64-bit version);
# [0-9], not str.isdigit(), which takes "²" (that int() then refuses); written in the syntax Python
# and ECMA-262 share, so IF_MATCH_PARAMETER's pattern is this very rule
_VERSION_TAG = re.compile(r'"[0-9]{1,20}"')

IF_MATCH_PARAMETER: dict[str, Any] = {
    "name": "If-Match", "in": "header", "required": False,
    "description": "The ETag the record was read with: the change is made to that version only, else 412 "
                   "(read it again). Without it the change applies to whatever is stored. / ETag của lần đọc "
                   "bản ghi: chỉ thay đổi đúng phiên bản đó, nếu không trả về 412 (hãy đọc lại). Không gửi thì "
                   "thay đổi áp dụng cho bản đang lưu.",
    "schema": {"type": "string", "pattern": f"^{_VERSION_TAG.pattern}$"},
}
"""The OpenAPI parameter object of the ``If-Match`` header of a :func:`takes_if_match` view."""

IF_MATCH_REQUIRED_PARAMETER: dict[str, Any] = {
    **IF_MATCH_PARAMETER, "required": True,
    "description": "The ETag the record was read with (required: 428 without it): the change is made to that "
                   "version only, else 412 (read it again). / ETag của lần đọc bản ghi (bắt buộc: thiếu thì trả "
                   "về 428): chỉ thay đổi đúng phiên bản đó, nếu không trả về 412 (hãy đọc lại).",
}
"""The ``If-Match`` parameter of a ``takes_if_match(required=True)`` view."""

IF_MATCH_ONCE_SET_PARAMETER: dict[str, Any] = {
    **IF_MATCH_PARAMETER,
    "description": "The ETag the record was read with, required once the record exists (428 without it; its "
                   "first write needs none): the change is made to that version only, else 412 (read it again). "
                   "/ ETag của lần đọc bản ghi, bắt buộc khi bản ghi đã có (thiếu thì trả về 428; lần ghi đầu "
                   "không cần): chỉ thay đổi đúng phiên bản đó, nếu không trả về 412 (hãy đọc lại).",
}
"""The ``If-Match`` parameter of a ``takes_if_match(required="once-set")`` view."""

_MODES = {False: True, True: "required", "once-set": "once-set"}


def takes_if_match(view: Callable | None = None, *, required: bool | str = False) -> Callable:
    """Declare that the view calls :func:`if_match_version`: ``/openapi.json`` then documents the
    ``If-Match`` header (:data:`IF_MATCH_PARAMETER`) and the 412 answer. A call inside the view
    cannot be seen from outside, so a view that reads ``If-Match`` without this declaration has a
    document whose clients never send it. Goes anywhere under the route decorator::

        @bp.patch("/v1/banks/<code>")
        @allow("operator")
        @takes_if_match(required=True)
        @validate_body("softatm/bank-change.json")
        def change_bank(code):
            version = if_match_version()

    ``required=True``: a change without the header is refused (428, :class:`PreconditionRequired`
    naming ``If-Match``) rather than made to whatever is stored. Use it wherever two writers may
    change one record (operators, officers) and a lost update would go unnoticed: a stale writer
    then learns it, where without the header the later change silently undoes the earlier.

    ``required="once-set"``: the same once the record exists, while its first write (created only if
    none is there) needs no header; the view decides with :func:`lscloud.errors.hold_to_version`,
    which knows whether the record exists, and the document says so (its 428 included)."""
    if required not in _MODES:
        raise ValueError(f"takes_if_match(required=...) is False, True or 'once-set', not {required!r}")

    def declare(v: Callable) -> Callable:
        v.__lscloud_if_match__ = _MODES[required]
        return v
    return declare if view is None else declare(view)


def if_match_version() -> int | None:
    """The record version a change is made to, from ``If-Match: "<version>"`` (RFC 9110 §13.1.1) as
    :func:`versioned_json` gave it; None without the header (the change applies to whatever is
    stored). A header that names no version of ours is a 412 naming it: no version it could name
    is stored (``*`` is not accepted: the record exists whenever a change can be made to it).

    The view must be declared with :func:`takes_if_match` (else ``/openapi.json`` never tells
    clients to send the header): an undeclared one fails on its first call, as a route without
    ``@allow`` does."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if view is not None and not getattr(view, "__lscloud_if_match__", False):
        raise TypeError(f"{request.endpoint} reads If-Match: declare it with @takes_if_match")
    raw = request.headers.get("If-Match")
    if raw is None:
        if view is not None and view.__lscloud_if_match__ == "required":
            raise if_match_required()
        return None
    tag = raw.strip()
    if _VERSION_TAG.fullmatch(tag):
        return int(tag[1:-1])
    raise not_a_version()


def not_a_version() -> PreconditionFailed:
    """The 412 :func:`if_match_version` answers to an ``If-Match`` that names no version."""
    return PreconditionFailed("If-Match names no version of this record (send the ETag it was read with).",
                              detail_vi="If-Match không chỉ một phiên bản của bản ghi này (gửi lại ETag đã đọc).",
                              errors=[field("If-Match", 'a version as the ETag gave it, e.g. "3"')])
