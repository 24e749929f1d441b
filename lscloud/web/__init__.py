"""The HTTP side of a function: the Flask app factory and what views declare.

- :mod:`lscloud.web.app` — :func:`create_app` (errors as problem+json, body limits, the access
  check) and :func:`check_access`;
- :mod:`lscloud.web.bodies` — :func:`json_body`, :func:`validate_body`, :func:`raw_body`,
  :func:`body_limit`, :func:`before_body` (``validate_body(schema, optional=True)`` for a body that may be absent);
- :mod:`lscloud.web.openapi` — :func:`responds`, :func:`query_params`, :func:`page_params` and the
  OpenAPI 3.1 document built from them;
- :mod:`lscloud.web.caching` — :func:`cached_json` for reference data, :func:`versioned_json` for a
  record (its version as the ETag), :func:`if_match_version` for a change to the version read
  (declared with :func:`takes_if_match`);
- :mod:`lscloud.web.downloads` — :func:`download_link`, a short-lived link to a blob that the
  function serves, and :func:`blob_response`, a blob as an answer;
- :mod:`lscloud.web.pathparams` — the ``schema`` route converter (``<schema("file.json#/pointer"):id>``:
  an id route matches, and is documented with, the pattern its create's body schema gives the id);
- :mod:`lscloud.web.origin` — :func:`public_base` and :func:`public_path`, the URLs a function hands
  out, as the caller reached it.

A function imports what it needs from here (``from lscloud.web import create_app, validate_body``).
"""

from ..context import AppState, app_state
from ..problems import Problem, problem_response
from .app import AccessError, check_access, create_app, preload
from .bodies import SchemaSet, before_body, body_limit, json_body, raw_body, validate_body
from .caching import CACHE_CONTROL, CACHED, cached_json, if_match_version, takes_if_match, versioned_json
from .downloads import blob_response
from .downloads import link as download_link
from .openapi import PAGE_SCHEMA, build_openapi, invalid_query, page_params, query_params, responds
from .origin import public_base, public_path
from .pathparams import query_schema

__all__ = ["create_app", "preload", "Problem", "problem_response", "validate_body", "raw_body", "body_limit", "before_body", "json_body",
           "check_access", "app_state", "AppState", "AccessError", "build_openapi", "responds", "query_params",
           "page_params", "invalid_query", "PAGE_SCHEMA", "cached_json", "versioned_json", "if_match_version", "takes_if_match", "CACHED", "CACHE_CONTROL",
           "SchemaSet", "download_link", "blob_response", "public_base", "public_path", "query_schema"]
