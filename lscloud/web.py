"""The Flask app factory every function uses: problem+json errors, body limits, validation, OpenAPI.

``create_app(name, schemas_dir=..., settings=...)`` returns a Flask app that

- answers every error as ``application/problem+json`` (:mod:`lscloud.problems`), including
  Werkzeug's own (404, 405 with ``Allow``, 413), a store key the caller's input could not spell
  (``InvalidKey``: 404) and unexpected exceptions (500: logged with the trace id, the caller sees
  only "internal error" and the trace id);
- reads request bodies through a size limit (``settings.max_body_bytes``), also for chunked bodies;
- refuses non-JSON bodies with 415 unless a view is marked :func:`raw_body`;
- parses JSON bodies strictly (:mod:`lscloud.strictjson`: bounded nesting, no ``NaN`` /
  ``Infinity``, no duplicate keys) and validates them against JSON Schema files
  (:func:`validate_body`, the dialect of :mod:`lscloud.validation`: ``integer`` is an integer
  literal, patterns are ECMA-262), reporting every error with a JSON pointer;
- parses and validates query parameters from their declaration (:func:`query_params`), naming
  each bad parameter;
- serves ``GET /openapi.json`` (OpenAPI 3.1) built from its routes and their declarations:
  ``@allow`` (security), :func:`validate_body` (request body), :func:`responds` (the success
  answer: schema, headers, extra statuses) and :func:`query_params`;
- refuses to serve if any route lacks an :func:`lscloud.auth.allow` declaration
  (:func:`check_access`, run on the first request and by :mod:`lscloud.knative` at start).
"""

from __future__ import annotations

import functools
import hashlib
import http
import io
import json
import logging
import posixpath
import re
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from . import auth, query, strictjson
from . import roles as _roles
from .problems import MEDIA_TYPE, PROBLEM_SCHEMA, Problem, current_trace_id, problem_response
from .validation import StrictValidator

__all__ = ["create_app", "Problem", "problem_response", "validate_body", "raw_body", "body_limit", "json_body",
           "check_access", "app_state", "AccessError", "build_openapi", "responds", "query_params", "page_params",
           "invalid_query", "PAGE_SCHEMA",
           "cached_json", "CACHED", "CACHE_CONTROL"]

log = logging.getLogger("lscloud.web")

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class AccessError(RuntimeError):
    """A route has no ``@allow`` declaration: the app must not serve."""


class AppState:
    """Per-app runtime state, kept in ``app.extensions["lscloud"]``."""

    def __init__(self, name: str, settings, schemas_dir: Path | None, openapi: dict | None, objects=None,
                 partner_keys: Callable[[str], Any] | None = None):
        self.name = name
        #: ``fn(partner) -> key slots | None`` for signed partner requests (None: settings.partner_keys)
        self.partner_keys = partner_keys
        self.settings = settings
        self.schemas_dir = Path(schemas_dir) if schemas_dir else None
        self.openapi_info = dict(openapi or {})
        self._objects = objects
        self._lock = threading.Lock()
        self._schemas: SchemaSet | None = None
        self.access_checked = False

    def store(self):
        """(ObjectStore, bucket) for runtime records (nonces, idempotency, events seen).

        The installed runtime's client when it serves the same settings, else one of our own.
        """
        if self._objects is None:
            with self._lock:
                if self._objects is None:
                    from . import runtime

                    rt = runtime._current
                    if rt is not None and rt.settings == self.settings:
                        self._objects = rt.objects
                    else:
                        from .store.objects import ObjectStore

                        self._objects = ObjectStore.from_settings(self.settings)
        return self._objects, self.settings.bucket

    @property
    def schemas(self) -> "SchemaSet":
        if self._schemas is None:
            with self._lock:
                if self._schemas is None:
                    if self.schemas_dir is None:
                        raise RuntimeError(f"app {self.name!r} validates bodies but has no schemas_dir")
                    self._schemas = SchemaSet(self.schemas_dir)
        return self._schemas


def app_state(app: Flask | None = None) -> AppState:
    return (app or current_app).extensions["lscloud"]


# --- JSON Schema --------------------------------------------------------------------------------


def _pointer(parts) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class SchemaSet:
    """Every ``*.json`` schema under a folder, loaded once, with ``$ref`` between files resolved.

    Validation uses ``jsonschema``'s draft 2020-12 validator rather than fastjsonschema because a
    caller fixing a form needs *all* errors at once, each with its JSON pointer
    (``iter_errors``); fastjsonschema stops at the first.

    The dialect is :class:`lscloud.validation.StrictValidator`: ``integer`` means an integer
    literal and ``pattern`` is ECMA-262 (``$`` is the end of the text, ``\\d`` is ASCII).
    """

    def __init__(self, root: Path):
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        self.root = root.resolve()
        self.documents: dict[str, dict] = {}
        resources = []
        for path in sorted(self.root.rglob("*.json")):
            rel = path.relative_to(self.root).as_posix()
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and "$id" not in doc:
                # relative $refs between files resolve against the file's own location
                doc = {"$id": path.as_uri(), **doc}
            self.documents[rel] = doc
            resource = Resource.from_contents(doc, default_specification=DRAFT202012)
            resources.append((doc.get("$id") if isinstance(doc, dict) else path.as_uri(), resource))
            if isinstance(doc, dict) and doc.get("$id") != path.as_uri():
                resources.append((path.as_uri(), resource))
        self.registry = Registry().with_resources(resources)
        self._validators: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._validator_cls = StrictValidator

    def validator(self, name: str):
        v = self._validators.get(name)
        if v is None:
            with self._lock:
                if name not in self.documents:
                    raise KeyError(f"no schema {name!r} under {self.root}")
                self._validator_cls.check_schema(self.documents[name])
                v = self._validators[name] = self._validator_cls(
                    self.documents[name], registry=self.registry,
                    format_checker=self._validator_cls.FORMAT_CHECKER)
        return v

    def errors(self, name: str, instance: Any) -> list[dict]:
        """Every validation error as ``{"field": pointer, "message": ...}``, sorted by field."""
        out: list[dict] = []
        for err in self.validator(name).iter_errors(instance):
            base = list(err.absolute_path)
            if err.validator == "required" and isinstance(err.instance, dict):
                missing = re.match(r"^'(.+)' is a required property$", err.message)
                name_ = missing.group(1) if missing else None
                out.append({"field": _pointer(base + ([name_] if name_ else [])), "message": err.message})
            elif err.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(err.instance, dict):
                known = set((err.schema or {}).get("properties", {}))
                patterns = list((err.schema or {}).get("patternProperties", {}))
                extras = [k for k in err.instance if k not in known and not any(re.search(p, k) for p in patterns)]
                for k in extras or [None]:
                    out.append({"field": _pointer(base + ([k] if k else [])),
                                "message": "property is not allowed" if k else err.message})
            else:
                out.append({"field": _pointer(base), "message": _short(err.message)})
        seen, unique = set(), []
        for e in sorted(out, key=lambda e: (e["field"], e["message"])):
            if (e["field"], e["message"]) not in seen:
                seen.add((e["field"], e["message"]))
                unique.append(e)
        return unique


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


# --- view decorators ----------------------------------------------------------------------------


def json_body() -> Any:
    """The request body parsed as strict JSON (:mod:`lscloud.strictjson`); cached on ``g``.

    Malformed JSON answers 400 ``malformed-json``; JSON we refuse (nesting past
    :data:`~lscloud.strictjson.MAX_DEPTH`, ``NaN``/``Infinity``, duplicate keys) answers 400
    ``json-rejected`` naming the place as a JSON pointer in ``errors[]``.
    """
    if "lscloud_json" in g:
        return g.lscloud_json
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise Problem(400, "missing-body", "Missing request body", "This endpoint needs a JSON body.",
                      title_vi="Thiếu nội dung yêu cầu", detail_vi="Chức năng này yêu cầu nội dung JSON.")
    try:
        value = strictjson.loads(raw)
    except strictjson.JSONRejected as exc:
        raise Problem(400, "json-rejected", "JSON not accepted", f"The request body is refused: {exc}.",
                      title_vi="JSON không được chấp nhận",
                      detail_vi="Nội dung yêu cầu bị từ chối: lồng quá sâu, số không hữu hạn (NaN, Infinity) "
                                "hoặc khóa bị lặp lại.",
                      errors=[{"field": exc.pointer, "message": exc.message}]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise Problem(400, "malformed-json", "Malformed JSON", f"The request body is not valid UTF-8 JSON{where}.",
                      title_vi="JSON không hợp lệ", detail_vi=f"Nội dung yêu cầu không phải JSON UTF-8 hợp lệ{where}.") from None
    g.lscloud_json = value
    return value


def validate_body(schema: str) -> Callable:
    """Validate the JSON body against ``<schemas_dir>/<schema>`` before the view runs.

    The parsed body lands in ``flask.g.body``; a mismatch answers 422 listing every error.
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            state = app_state()
            body = json_body()
            errors = state.schemas.errors(schema, body)
            if errors:
                raise Problem(422, "validation-failed", "Validation failed",
                              f"The request body does not match {schema} ({len(errors)} error{'s' if len(errors) != 1 else ''}).",
                              title_vi="Dữ liệu không hợp lệ",
                              detail_vi=f"Nội dung yêu cầu không đúng lược đồ {schema} ({len(errors)} lỗi).",
                              errors=errors)
            g.body = body
            return view(*args, **kwargs)

        wrapper.__lscloud_body_schema__ = schema
        return wrapper

    return decorate


def raw_body(*media_types: str) -> Callable:
    """Let a view take a non-JSON body (uploads, CloudEvents in binary mode).

    With ``media_types`` given, other types still answer 415.
    """

    def decorate(view):
        view.__lscloud_raw_body__ = tuple(media_types)
        return view

    return decorate


def body_limit(max_bytes: int) -> Callable:
    """Raise (or lower) the body size limit for one view (e.g. blob uploads)."""

    def decorate(view):
        view.__lscloud_max_body__ = int(max_bytes)
        return view

    return decorate


# --- OpenAPI declarations -----------------------------------------------------------------------

PAGE_SCHEMA: dict[str, Any] = {
    "title": "Page",
    "description": "One page of a list. Pass next_page_token back as page_token (with the same filters) "
                   "for the next page; null on the last page.",
    "type": "object",
    "additionalProperties": False,
    "required": ["items", "total", "next_page_token"],
    "properties": {
        "items": {"type": "array"},
        "total": {"type": "integer", "minimum": 0, "description": "Items matching the filters, over all pages."},
        "next_page_token": {"type": ["string", "null"]},
    },
}
"""The runtime's list envelope ``{"items": [...], "total": n, "next_page_token": str | null}``;
``components/schemas/Page`` in every OpenAPI document that has a ``@responds(..., page=True)``."""


def _declare_once(view, attr: str, value, decorator: str):
    if getattr(view, attr, None) is not None:
        raise TypeError(f"{getattr(view, '__name__', view)!r} already has a @{decorator} declaration; use exactly one")
    setattr(view, attr, value)
    return view


def responds(schema: str | None, *, status: int = 200, page: bool = False, description: str | None = None,
             headers: Mapping[str, str] | None = None,
             also: Mapping[int, str] | Iterable[int] = ()) -> Callable:
    """Document a view's success answer in ``/openapi.json`` (documentation: answers are not validated).

    - ``schema``: a file under ``schemas_dir`` (``"directory/unit.json"``), published under
      ``components/schemas`` with the same name as request schemas (``directory.unit``);
      ``None`` for an answer without a body (``204``).
    - ``status``: the success status (``200``, ``201``, ``202`` …).
    - ``page``: the body is the runtime's page envelope (:data:`PAGE_SCHEMA`) whose ``items``
      are ``schema``.
    - ``headers``: response headers sent with the answer, ``{"ETag": "what it is", ...}``.
    - ``also``: other bodiless statuses the view answers, ``{304: "Not modified"}`` (or just
      ``(304,)`` for the standard phrase). Errors need nothing here: every operation already
      documents ``default`` as ``application/problem+json``.

    One ``@responds`` per view; the schema's existence is checked at start (:func:`check_access`).
    Example::

        @app.get("/v1/units")
        @allow("public")
        @responds("directory/unit.json", page=True, headers={"ETag": "Strong validator"}, also={304: "Not modified"})
        @query_params(("q", "Search names"), ("limit", "Page size", {"type": "integer"}))
        def list_units(): ...
    """
    if page and schema is None:
        raise TypeError("responds(page=True) needs the item schema")
    if not 100 <= int(status) <= 599:
        raise ValueError(f"bad status {status!r}")
    extra = dict(also) if isinstance(also, Mapping) else {int(code): "" for code in also}
    if status in extra:
        raise ValueError(f"status {status} is both the answer and in also=")
    declared = {
        "schema": schema, "status": int(status), "page": bool(page),
        "description": description or http.HTTPStatus(int(status)).phrase,
        "headers": dict(headers or {}),
        "also": {int(code): (text or http.HTTPStatus(int(code)).phrase) for code, text in extra.items()},
    }

    def decorate(view):
        return _declare_once(view, "__lscloud_response__", declared, "responds")

    return decorate


def query_params(*params: "query.Param | tuple") -> Callable:
    """Declare a view's query parameters: documented in ``/openapi.json`` *and* parsed and
    validated from the same declaration before the view runs (:mod:`lscloud.query`).

    Each parameter is a :class:`lscloud.query.Param` or ``(name, description[, json_schema])``;
    the schema defaults to a string of at most :data:`lscloud.query.MAX_CHARS` characters.
    ``type`` (``string``, ``integer``, ``number``, ``boolean``), ``enum``, ``minimum`` /
    ``maximum``, ``pattern``, ``maxLength``, ``format: date`` / ``date-time`` and ``default`` are
    honoured. The typed values land in ``flask.g.query`` (``None`` for an absent parameter
    without a default); any bad one answers 400 ``invalid-parameter`` with ``errors[].field`` =
    the parameter's name. Put it under ``@allow`` (so callers are authenticated first) and above
    ``@idempotent`` (so a bad query never claims a key). One ``@query_params`` per view::

        @query_params(("q", "Search names"),
                      ("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}))
    """
    declared = tuple(query.as_param(p) for p in params)
    names = [p.name for p in declared]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"query parameter {name!r} declared twice")

    def decorate(view):
        if getattr(view, "__lscloud_query_params__", None) is not None:
            raise TypeError(f"{getattr(view, '__name__', view)!r} already has a @query_params declaration; use exactly one")

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            g.query = query.parse(declared, request.args)
            return view(*args, **kwargs)

        wrapper.__lscloud_query_params__ = tuple(p.openapi() for p in declared)
        return wrapper

    return decorate


def page_params(*, default_limit: int = 50, max_limit: int = 100, offset: bool = False) -> tuple["query.Param", ...]:
    """The paging parameters of a list route: ``limit`` (1 to ``max_limit``, default
    ``default_limit``), ``page_token`` and, for lists served from a snapshot, ``offset``."""
    out = [query.Param("limit", f"Page size, 1 to {max_limit} (default {default_limit}).",
                       {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit}),
           query.Param("page_token", "The next_page_token of the previous page (same filters).",
                       {"type": "string", "maxLength": query.MAX_CHARS})]
    if offset:
        out.append(query.Param("offset", "Start at this position instead of a page_token.",
                               {"type": "integer", "minimum": 0, "maximum": 1_000_000}))
    return tuple(out)


def invalid_query(errors: list[dict]) -> Problem:
    """The 400 problem for bad query parameters (``errors[].field`` = each parameter's name)."""
    names = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return Problem(400, "invalid-parameter", "Invalid query parameter",
                   "; ".join(e["message"] for e in errors) + ".",
                   title_vi="Tham số truy vấn không hợp lệ", detail_vi=f"Tham số truy vấn không hợp lệ: {names}.",
                   errors=errors)


# --- cacheable read-only answers ---------------------------------------------------------------

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


# --- access check -------------------------------------------------------------------------------


def check_access(app: Flask) -> None:
    """Raise :class:`AccessError` naming every route without an ``@allow`` declaration."""
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions.get(rule.endpoint)
        if auth.access_of(view) is None:
            missing.append(f"{rule.rule} ({rule.endpoint})")
    if missing:
        raise AccessError("routes without an @allow declaration: " + ", ".join(sorted(missing)))
    state = app_state(app)
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        response = getattr(view, "__lscloud_response__", None)
        for name in (getattr(view, "__lscloud_body_schema__", None), response and response["schema"]):
            if name:
                if state.schemas_dir is None:
                    raise RuntimeError(f"{rule.rule} ({rule.endpoint}) names schema {name!r} "
                                       f"but app {state.name!r} has no schemas_dir")
                state.schemas.validator(name)  # a missing or broken schema stops the start, not a request
    state.access_checked = True


def _buffer_unsized_body(limit: int) -> None:
    """Read a body sent without Content-Length (chunked) up to ``limit`` + 1 bytes.

    Werkzeug would silently cut such a body at the limit; reading one byte more tells a
    too-large body (413) from one that just fits. The buffered body then stands in for the
    stream, with its length, before anything has read the request.
    """
    env = request.environ
    if env.get("CONTENT_LENGTH") or not env.get("wsgi.input_terminated"):
        return
    raw = env["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    env["wsgi.input"] = io.BytesIO(raw)
    env["CONTENT_LENGTH"] = str(len(raw))


# --- the factory --------------------------------------------------------------------------------


def create_app(name: str, *, schemas_dir: Path | None = None, settings=None, openapi: dict | None = None,
               objects=None, partner_keys: Callable[[str], Any] | None = None) -> Flask:
    """A Flask app with the runtime's conventions (see the module docstring).

    ``settings`` defaults to the installed runtime's; ``openapi`` is the document's ``info``
    (``title``, ``version``, ``description``); ``objects`` overrides the object store client;
    ``partner_keys`` resolves a partner's signing keys (``fn(partner) -> ("key 1", "key 2") | None``,
    an empty slot being no key) for a function that keeps its own partner registry; by default
    they come from ``settings.partner_keys``.
    """
    if settings is None:
        from . import runtime

        settings = runtime.current().settings
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["lscloud"] = AppState(name, settings, schemas_dir, openapi, objects, partner_keys)

    @app.before_request
    def _guard():
        state = app_state()
        if not state.access_checked:
            check_access(app)  # deterministic: an undeclared route fails every request, loudly
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        limit = getattr(view, "__lscloud_max_body__", None)
        if limit is not None:
            request.max_content_length = limit
        if request.method not in _BODY_METHODS:
            return None
        _buffer_unsized_body(limit if limit is not None else settings.max_body_bytes)
        data = request.get_data(cache=True)  # reading enforces the limit (Content-Length bodies)
        if not data:
            return None
        raw = getattr(view, "__lscloud_raw_body__", None)
        mimetype = request.mimetype or ""
        if raw is None:
            ok = mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))
        else:
            ok = not raw or mimetype in raw
        if not ok:
            expected = ", ".join(raw) if raw else "application/json"
            raise Problem(415, "unsupported-media-type", "Unsupported media type",
                          f"This endpoint expects {expected}, got {mimetype or 'no Content-Type'}.",
                          title_vi="Kiểu nội dung không được hỗ trợ",
                          detail_vi=f"Chức năng này yêu cầu {expected}.")
        return None

    @app.after_request
    def _no_date(response):
        # the HTTP server writes Date; Werkzeug's make_conditional adds one too, and two is wrong
        response.headers.pop("Date", None)
        return response

    @app.errorhandler(Problem)
    def _problem(p: Problem):
        return problem_response(p)

    @app.errorhandler(query.InvalidQuery)
    def _invalid_query(exc: query.InvalidQuery):
        return problem_response(invalid_query(exc.errors))

    @app.errorhandler(query.QueryError)
    def _query_error(exc: query.QueryError):
        return problem_response(invalid_query([{"field": exc.field, "message": exc.message}]))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        headers = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        detail = None
        if status == 413:
            limit = request.max_content_length
            detail = f"The request body exceeds {limit} bytes." if limit else None
        elif status == 405:
            detail = f"{request.method} is not allowed here; use {headers.get('Allow', 'another method')}."
        return problem_response(Problem(status, detail=detail, headers=headers))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        from .store.errors import InvalidKey, StoreUnavailable

        trace_id = current_trace_id()
        if isinstance(exc, InvalidKey):
            # keys are built from what the caller sent (an id in the path, a code in the body); one
            # the store cannot even spell (too long, not Unicode) names nothing that exists
            log.info("invalid store key from %s %s (trace_id=%s): %s", request.method, request.path[:200], trace_id, exc)
            return problem_response(Problem(404, detail="Nothing exists at this address (the identifier is not "
                                                        "one this service could have issued)."), trace_id=trace_id)
        if isinstance(exc, StoreUnavailable):
            log.warning("object store unavailable (trace_id=%s): %s", trace_id, exc.__class__.__name__)
            return problem_response(Problem(503, headers={"Retry-After": "5"}), trace_id=trace_id)
        log.error("unhandled error on %s %s (trace_id=%s)", request.method, request.path, trace_id, exc_info=exc)
        return problem_response(Problem(500, detail="internal error"), trace_id=trace_id)

    @app.get("/openapi.json")
    @auth.allow("public")
    def openapi_document():
        """The OpenAPI 3.1 description of this function."""
        return jsonify(build_openapi(app))

    from . import telemetry

    telemetry.instrument_flask(app)
    return app


# --- OpenAPI ------------------------------------------------------------------------------------

_CONVERTERS = {"int": {"type": "integer"}, "float": {"type": "number"}, "uuid": {"type": "string", "format": "uuid"},
               "path": {"type": "string"}, "string": {"type": "string"}, "default": {"type": "string"}}
_RULE_ARG = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")


def _component_name(file: str) -> str:
    stem = file[:-5] if file.endswith(".json") else file
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem.replace("/", "."))


def _rewrite_refs(node: Any, here: str, state: AppState, wanted: set[str]) -> Any:
    """Turn file ``$ref``s into ``#/components/schemas/...`` refs (and note which files are needed)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("$id", "$schema"):
                continue
            if k == "$ref" and isinstance(v, str) and not v.startswith("#"):
                target, _, fragment = v.partition("#")
                name = posixpath.normpath(posixpath.join(posixpath.dirname(here), target)) if target else here
                if name in state.schemas.documents:
                    wanted.add(name)
                    out[k] = "#/components/schemas/" + _component_name(name) + fragment
                    continue
            if k == "$ref" and isinstance(v, str) and v.startswith("#"):
                out[k] = "#/components/schemas/" + _component_name(here) + v[1:]
                continue
            out[k] = _rewrite_refs(v, here, state, wanted)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, here, state, wanted) for v in node]
    return node


def _ref(file: str) -> dict:
    return {"$ref": "#/components/schemas/" + _component_name(file)}


def _responses(declared: dict | None, wanted: set[str]) -> dict:
    """The operation's ``responses``: the ``@responds`` declaration (else a bare ``2XX``) and the
    runtime's problem+json ``default``."""
    problem = {"description": "Problem details (RFC 9457)",
               "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if declared is None:
        return {"2XX": {"description": "Success"}, "default": problem}
    answer: dict[str, Any] = {"description": declared["description"]}
    if declared["headers"]:
        answer["headers"] = {name: ({"description": text} if text else {}) | {"schema": {"type": "string"}}
                             for name, text in declared["headers"].items()}
    if declared["schema"]:
        wanted.add(declared["schema"])
        schema = _ref(declared["schema"])
        if declared["page"]:
            schema = {"allOf": [{"$ref": "#/components/schemas/Page"},
                                {"properties": {"items": {"type": "array", "items": schema}}}]}
        answer["content"] = {"application/json": {"schema": schema}}
    out = {str(declared["status"]): answer}
    for code, text in sorted(declared["also"].items()):
        out[str(code)] = {"description": text}
    out["default"] = problem
    return out


def build_openapi(app: Flask) -> dict:
    """An OpenAPI 3.1 document from the app's routes and their declarations: ``@allow``,
    :func:`validate_body`, :func:`responds`, :func:`query_params` and the path's own parameters."""
    state = app_state(app)
    info = {"title": state.openapi_info.get("title", f"lscloud {state.name}"),
            "version": state.openapi_info.get("version", "1.0.0")}
    if state.openapi_info.get("description"):
        info["description"] = state.openapi_info["description"]
    paths: dict[str, dict] = {}
    wanted: set[str] = set()
    page_used = False
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        access = auth.access_of(view)
        path = _RULE_ARG.sub(lambda m: "{" + m.group("name") + "}", rule.rule)
        params = [{"name": m.group("name"), "in": "path", "required": True,
                   "schema": dict(_CONVERTERS.get(m.group("conv") or "default", {"type": "string"}))}
                  for m in _RULE_ARG.finditer(rule.rule)]
        doc = (view.__doc__ or "").strip()
        summary = doc.splitlines()[0].strip() if doc else rule.endpoint
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {"operationId": f"{rule.endpoint}_{method.lower()}".replace(".", "_"),
                                  "summary": summary}
            parameters = params + [dict(q) for q in getattr(view, "__lscloud_query_params__", ())]
            if parameters:
                op["parameters"] = parameters
            if access is not None:
                op["x-lscloud-access"] = access.as_dict()
                if access.public:
                    op["security"] = []
                elif access.eventing:
                    op["security"] = [{"eventDelivery": []}]
                else:
                    op["security"] = ([{"bearer": []}] if access.roles else []) + \
                                     ([{"partnerSignature": []}] if access.partner else [])
            schema = getattr(view, "__lscloud_body_schema__", None)
            if schema and method in _BODY_METHODS:
                wanted.add(schema)
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}
            declared = getattr(view, "__lscloud_response__", None)
            op["responses"] = _responses(declared, wanted)
            page_used = page_used or bool(declared and declared["page"])
            paths.setdefault(path, {})[method.lower()] = op
    components: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    if page_used:
        components["Page"] = PAGE_SCHEMA
    done: set[str] = set()
    while wanted - done:
        name = sorted(wanted - done)[0]
        done.add(name)
        components[_component_name(name)] = _rewrite_refs(state.schemas.documents[name], name, state, wanted)
    return {
        "openapi": "3.1.0",
        "info": info,
        "x-lscloud-roles": {name: role.as_dict() for name, role in _roles.REGISTRY.items()},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "A JWT whose `role` claim is one of the platform's roles "
                                          "(lscloud/roles.py); each operation's `x-lscloud-access` "
                                          "names the roles it admits.\n\n" + "\n".join(
                                              f"- `{r.name}`: {r.en} / {r.vi}" for r in _roles.REGISTRY.values()
                                              if r.credential == "token")},
                "eventDelivery": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                  "description": "Event deliveries only: the OIDC token Knative Eventing presents "
                                                 "(authentication-oidc), or the local dispatcher's token; audience = "
                                                 "this function (see lscloud.auth.verify_event_sender)"},
                "partnerSignature": {"type": "apiKey", "in": "header", "name": auth.SIGNATURE_HEADER,
                                     "description": "HMAC-SHA256 partner signature over method, path, timestamp, "
                                                    "nonce and body hash (see lscloud.auth.canonical)"},
            },
        },
    }
