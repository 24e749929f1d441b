"""Answers with validators: reference data with a strong ETag, Cache-Control and 304
(:func:`cached_json`); a record at its version (:func:`versioned_json`), and a change made only to
the version the caller read (:func:`if_match_version`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Response, jsonify, request

from ..errors import PreconditionFailed, field

__all__ = ["CACHE_CONTROL", "CACHED", "cached_json", "versioned_json", "if_match_version"]


CACHE_CONTROL = "public, max-age=300"

CACHED: dict[str, Any] = {"headers": {"ETag": "Strong validator of the body: send it back in If-None-Match.",
                                      "Cache-Control": CACHE_CONTROL},
                          "also": {304: "Not modified (If-None-Match matched)"}}
"""What :func:`cached_json` answers, for ``@responds(schema, **CACHED)``."""


def cached_json(payload: Any, *, cache_control: str = CACHE_CONTROL) -> Response:
    """Public read-only JSON with a strong ``ETag`` (sha256 of the bytes), ``Cache-Control``, and
    ``304`` to a matching ``If-None-Match``: the one way reference data is answered."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode()
    resp = Response(body, mimetype="application/json")
    resp.set_etag(hashlib.sha256(body).hexdigest()[:32])  # strong: same bytes, same tag
    resp.headers["Cache-Control"] = cache_control
    return resp.make_conditional(request)




def versioned_json(payload: Any, version: int, status: int = 200) -> Response:
    """A record's JSON with its version as the ``ETag`` (``"<version>"``): every write changes the
    version, so a client tells two states of the record apart by it (declare it with
    ``@responds(..., headers={"ETag": "The record's version"})``)."""
    resp = jsonify(payload)
    resp.status_code = status
    resp.headers["ETag"] = f'"{int(version)}"'
    return resp


def if_match_version() -> int | None:
    """The record version a change is made to, from ``If-Match: "<version>"`` (RFC 9110 §13.1.1) as
    :func:`versioned_json` gave it; None without the header (the change applies to whatever is
    stored). A header that names no version of ours is a 412 naming it: no version it could name
    is stored (``*`` is not accepted: the record exists whenever a change can be made to it)."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    tag = raw.strip()
    if len(tag) >= 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit() and len(tag) <= 22:
        return int(tag[1:-1])
    raise PreconditionFailed("If-Match names no version of this record (send the ETag it was read with).",
                             detail_vi="If-Match không chỉ một phiên bản của bản ghi này (gửi lại ETag đã đọc).",
                             errors=[field("If-Match", 'a version as the ETag gave it, e.g. "3"')])
