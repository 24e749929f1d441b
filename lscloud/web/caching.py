"""Answers with validators: reference data with a strong ETag, Cache-Control and 304
(:func:`cached_json`); a record at its version (:func:`versioned_json`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Response, jsonify, request

__all__ = ["CACHE_CONTROL", "CACHED", "cached_json", "versioned_json"]


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
