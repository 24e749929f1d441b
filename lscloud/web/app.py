"""The Flask app factory every function uses, and the start-up access check.

``create_app(name, schemas_dir=..., settings=...)`` returns a Flask app that

- answers every error as ``application/problem+json`` (:mod:`lscloud.problems`): a domain error
  (:class:`lscloud.errors.DomainError`, or an exception registered with
  :func:`lscloud.errors.register`) by its own status, Werkzeug's (404, 405 with ``Allow``, 413),
  a store key the caller's input could not spell (``InvalidKey``: 404), an object store that does
  not answer (503, registered as NATS's is by :mod:`lscloud.bus`: :func:`lscloud.errors.retry_later`) and unexpected
  exceptions (500: logged with the trace id, the caller sees only "internal error" and the trace id);
- reads request bodies through a size limit (``settings.max_body_bytes``), also for chunked
  bodies, and refuses non-JSON bodies with 415 unless a view is marked ``raw_body``; a view's
  ``before_body`` check (a rate limit) runs before its body is read;
- matches ``<schema("file.json#/pointer"):name>`` route arguments by that schema (:mod:`lscloud.web.pathparams`);
- answers browsers on the origins ``settings.cors_origins`` names (``LSCLOUD_CORS_ORIGINS``): a
  preflight before any check of the caller or the body, and CORS headers on every answer, errors
  included (:func:`_preflight`, :func:`_cors`);
- marks every answer that does not say how it may be cached ``Cache-Control: no-store``;
- serves ``GET /openapi.json`` (:mod:`lscloud.web.openapi`, with a strong ETag) and, with ``downloads=True`` (a function
  that hands out links to its files), ``GET /downloads/<token>`` (:mod:`lscloud.web.downloads`);
- refuses to serve if any route lacks an ``@allow`` declaration (:func:`check_access`, run on the
  first request and by :mod:`lscloud.knative` at start).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from .. import auth, errors, outbox, query, runtime
from ..config import CORS_ANY
from ..context import AppState, app_state
from ..problems import Problem, current_trace_id, problem_response
from ..store.errors import ConditionalCheckFailed, DoesNotExist, InvalidKey, StoreUnavailable
from ..store import s3http
from .bodies import MULTIPART, SchemaSet, buffer_unsized_body, files_limit
from .caching import cached_json
from .downloads import add_route as add_download_route
from .instrumentation import instrument, record_exception
from .openapi import OPENAPI_DOCUMENT_SCHEMA, build_openapi, invalid_query, responds
from .origin import forwarded_prefix
from .pathparams import BoundedInt, converter_for

__all__ = ["AccessError", "check_access", "create_app"]

log = logging.getLogger("lscloud.web")

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# CORS: beyond what a browser lets a page send and read anyway, the request headers the runtime and
# the functions read, and the answer headers a client acts on (a new one read or set goes here)
CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match",
                      "Accept-Language", "Prefer", "traceparent", "tracestate")
CORS_EXPOSE_HEADERS = ("Location", "ETag", "Retry-After", "Idempotent-Replayed", "Content-Disposition", "Link",
                       "WWW-Authenticate", "Allow", "Preference-Applied", "Content-Range")
CORS_MAX_AGE_S = 600
"""How long a browser keeps a preflight's answer: a page's repeated calls cost one preflight per path."""


class AccessError(RuntimeError):
    """A route has no ``@allow`` declaration: the app must not serve."""


# The store's errors that reach a view mean the same in every function: a record that is not there
# is not found; a record that kept changing under every retry is a conflict the client may retry.
errors.register(DoesNotExist, lambda exc: Problem(404, detail="Nothing exists at this address.",
                                                  detail_vi="Không có tài nguyên nào tại địa chỉ này."))
errors.register(ConditionalCheckFailed, lambda exc: Problem(
    409, "concurrent-update", "Concurrent update", "The record kept changing while this request ran; retry it.",
    title_vi="Dữ liệu đang được cập nhật", detail_vi="Dữ liệu đang được cập nhật đồng thời; vui lòng thử lại.",
    headers={"Retry-After": "1"}))
errors.register(StoreUnavailable, errors.retry_later)   # NATS's BusUnavailable is lscloud.bus's to register


def check_access(app: Flask) -> None:
    """Raise :class:`AccessError` naming every route without an ``@allow`` declaration."""
    missing = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        if auth.access_of(view) is None:
            missing.append(f"{rule.rule} ({rule.endpoint})")
    if missing:
        raise AccessError("routes without an @allow declaration: " + ", ".join(sorted(missing)))
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        access = auth.access_of(view)
        # a partner's signature or an event sender's covers the body, and a nonce is spent once:
        # such a caller cannot be authenticated before the body is read and again in the view
        if getattr(view, "__lscloud_before_body__", None) is not None and (access.partner or access.eventing):
            raise AccessError(f"{rule.rule} ({rule.endpoint}): before_body on a view that takes signed requests")
    state = app_state(app)
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        response = getattr(view, "__lscloud_response__", None)
        for name in (getattr(view, "__lscloud_body_schema__", None), response and response["schema"]):
            if name:
                if state.schemas_dir is None:
                    raise RuntimeError(f"{rule.rule} ({rule.endpoint}) names schema {name!r} "
                                       f"but app {state.name!r} has no schemas_dir")
                # a missing schema stops the start, not a request; loading the schema set and
                # checking each schema against the metaschema here was most of a start (the set
                # loads with the first body it validates; the unit tests check every file)
                if not (state.schemas_dir / name).is_file():
                    raise KeyError(f"no schema {name!r} under {state.schemas_dir}")
    state.access_checked = True





def _media_type_accepted(view) -> None:
    """415 unless the request's body is JSON, or a type the view takes (:func:`raw_body`)."""
    raw = getattr(view, "__lscloud_raw_body__", None)
    mimetype = request.mimetype or ""
    if raw is None:
        ok = mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json")) \
            or (mimetype == MULTIPART and getattr(view, "__lscloud_files__", False))
    else:
        ok = not raw or mimetype in raw
    if not ok:
        expected = ", ".join(raw) if raw else "application/json"
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      f"This endpoint expects {expected}, got {mimetype or 'no Content-Type'}.",
                      title_vi="Kiểu nội dung không được hỗ trợ",
                      detail_vi=f"Chức năng này yêu cầu {expected}.")


def _public_read(method: str, endpoint: str | None) -> bool:
    """Whether ``method`` on ``endpoint`` reads a public route: what ``*`` in the origins opens."""
    view = current_app.view_functions.get(endpoint) if endpoint else None
    access = auth.access_of(view) if view is not None else None
    return method in ("GET", "HEAD") and access is not None and access.public


def _origin_allowed(origins: tuple[str, ...], origin: str, method: str, endpoint: str | None) -> bool:
    return origin in origins or (CORS_ANY in origins and _public_read(method, endpoint))


def _preflight(origins: tuple[str, ...]) -> Response | None:
    """The answer to a browser's preflight (``OPTIONS`` with ``Origin`` and
    ``Access-Control-Request-Method``) from a page that may call: 204 with what it may send. None for
    any other request, and for a page that may not call: Flask's own OPTIONS answer then, with no
    CORS header (the browser stops there; an error status would tell it nothing more)."""
    origin = request.headers.get("Origin")
    wanted = request.headers.get("Access-Control-Request-Method", "").strip().upper()
    if request.method != "OPTIONS" or not origin or not wanted:
        return None
    adapter = current_app.create_url_adapter(request)
    methods = adapter.allowed_methods() if adapter is not None else []
    if not methods:
        return None  # no route here: the 404 (with CORS headers) answers it
    try:
        endpoint = adapter.match(method=wanted)[0]
    except HTTPException:  # not a method of this route: the browser sees the ones allowed and stops
        endpoint = None
    if not _origin_allowed(origins, origin, wanted, endpoint):
        return None
    resp = Response(status=204)
    del resp.headers["Content-Type"]  # no body, no type
    resp.headers["Access-Control-Allow-Origin"] = origin
    resp.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(methods))
    resp.headers["Access-Control-Allow-Headers"] = ", ".join(CORS_ALLOW_HEADERS)
    resp.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_S)
    return resp


def _cors(response: Response, origins: tuple[str, ...]) -> None:
    """CORS headers on an answer to a page that may call (errors and redirects too: a page that
    cannot read a 4xx cannot tell the citizen what to fix). ``Vary: Origin`` on every answer, so a
    cache never gives one page's answer to another."""
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if not origin or "Access-Control-Allow-Origin" in response.headers:
        return
    if _origin_allowed(origins, origin, request.method, request.endpoint):
        # the page's own origin, never "*": one answer, one reader (and no credentials: bearer tokens only)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = ", ".join(CORS_EXPOSE_HEADERS)


def _bound_each_request(app: Flask, settings) -> None:
    """Every request's store calls end within ``s3_request_deadline_s`` and its publishes wait
    ``nats_request_publish_timeout_s`` at most (the platform cuts a caller off at 60 s, so a hung
    store or NATS is answered 503 before that). Set around the WSGI call, not in request hooks: a
    request whose exception a test client keeps its context for never ran its teardown, and the
    bound outlived it in that thread; and a streamed answer (an SSE stream) runs after the call
    returns, unbounded, as it must."""
    inner = app.wsgi_app

    def bounded(environ, start_response):
        deadline = s3http.start_deadline(settings.s3_request_deadline_s)
        request = outbox.start_request(settings.nats_request_publish_timeout_s)
        try:
            return inner(environ, start_response)
        finally:
            outbox.end_request(request)
            s3http.end_deadline(deadline)

    app.wsgi_app = bounded


def create_app(name: str, *, schemas_dir: Path | None = None, settings=None, openapi: dict | None = None,
               partner_keys: Callable[[str], Any] | None = None, downloads: bool = False) -> Flask:
    """A Flask app with the runtime's conventions (see the module docstring).

    ``settings`` defaults to the installed runtime's; ``openapi`` is the document's ``info``
    (``title``, ``version``, ``description``); ``partner_keys`` resolves a partner's signing keys (``fn(partner) -> ("key 1", "key 2") | None``,
    an empty slot being no key) for a function that keeps its own partner registry; by default
    they come from ``settings.partner_keys``. ``downloads``: the app hands out links to its files
    (:func:`lscloud.web.download_link`) and so serves ``GET /downloads/<token>``.
    """
    if settings is None:
        settings = runtime.current().settings
    app = Flask(name, static_folder=None)   # nothing served that no access table names
    app.url_map.converters["schema"] = converter_for(schemas_dir)
    app.url_map.converters["int"] = BoundedInt
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["lscloud"] = AppState(name, settings, schemas_dir, openapi, partner_keys, schema_loader=SchemaSet)
    origins = settings.cors_origins

    _bound_each_request(app, settings)

    @app.before_request
    def _guard():
        state = app_state()
        if not state.access_checked:
            check_access(app)  # deterministic: an undeclared route fails every request, loudly
        if origins and request.method == "OPTIONS":
            # a browser asks before its request and sends no token with the question: answered
            # before the caller is checked and before any body is read
            answer = _preflight(origins)
            if answer is not None:
                return answer
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        limit = getattr(view, "__lscloud_max_body__", None)
        if isinstance(limit, str):  # a setting's name (body_limit("blob_max_bytes"))
            limit = getattr(settings, limit)
        limit = files_limit(view, settings) or limit  # a JSON body with its files (validate_body(files=True))
        if limit is not None:
            request.max_content_length = limit
        if request.method not in _BODY_METHODS:
            return None
        check = getattr(view, "__lscloud_before_body__", None)
        if check is not None:  # before_body: refused with the body unread, as the headers allow
            length = request.content_length
            if length is not None and request.max_content_length is not None and length > request.max_content_length:
                raise RequestEntityTooLarge()
            if length:
                _media_type_accepted(view)
            g.lscloud_principal = auth.authenticate(auth.access_of(view))
            check()
        buffer_unsized_body(limit if limit is not None else settings.max_body_bytes)
        data = request.get_data(cache=True)  # reading enforces the limit (Content-Length bodies)
        if not data:
            return None
        _media_type_accepted(view)
        return None

    @app.after_request
    def _no_date(response):
        # the HTTP server writes Date; Werkzeug's make_conditional adds one too, and two is wrong
        response.headers.pop("Date", None)
        return response

    @app.after_request
    def _caching_and_cors(response):
        # an answer that does not say how it may be cached is not stored: most answer one caller
        # (a dossier, a token), and a browser on a shared computer keeps what it may on its disk
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        if origins:
            _cors(response, origins)
        return response

    @app.errorhandler(Problem)
    def _problem(p: Problem):
        return problem_response(p)

    @app.errorhandler(errors.DomainError)
    def _domain(exc: errors.DomainError):
        return problem_response(exc.to_problem())

    @app.errorhandler(query.InvalidQuery)
    def _invalid_query(exc: query.InvalidQuery):
        return problem_response(invalid_query(exc.errors))

    @app.errorhandler(query.QueryError)
    def _query_error(exc: query.QueryError):
        return problem_response(invalid_query(exc.errors))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        headers = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        detail = detail_vi = None
        if status == 413:
            limit = request.max_content_length
            if limit:
                detail = f"The request body exceeds {limit} bytes."
                detail_vi = f"Nội dung yêu cầu vượt quá {limit:,} byte.".replace(",", ".")
        elif status == 405:
            detail = f"{request.method} is not allowed here; use {headers.get('Allow', 'another method')}."
            detail_vi = f"Không dùng được phương thức {request.method} ở đây; hãy dùng {headers.get('Allow', 'phương thức khác')}."
        return problem_response(Problem(status, detail=detail, detail_vi=detail_vi, headers=headers))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        trace_id = current_trace_id()
        registered = errors.to_problem(exc)  # a foreign exception a function registered once
        if registered is not None:
            if registered.status >= 500:
                record_exception(exc)
                log.warning("answered %d to %s (trace_id=%s)", registered.status, exc.__class__.__name__, trace_id)
            return problem_response(registered, trace_id=trace_id)
        if isinstance(exc, InvalidKey):
            # keys are built from what the caller sent (an id in the path, a code in the body); one
            # the store cannot even spell (too long, not Unicode) names nothing that exists
            log.info("invalid store key from %s %s (trace_id=%s): %s", request.method, request.path[:200], trace_id, exc)
            return problem_response(Problem(404, detail="Nothing exists at this address (the identifier is not "
                                                        "one this service could have issued)."), trace_id=trace_id)
        record_exception(exc)  # the answer below hides it from the SERVER span: put it there
        log.error("unhandled error on %s %s (trace_id=%s)", request.method, request.path, trace_id, exc_info=exc)
        return problem_response(Problem(500, detail="internal error"), trace_id=trace_id)

    @app.get("/openapi.json")
    @auth.allow("public")
    @responds(None, media={"application/json": OPENAPI_DOCUMENT_SCHEMA}, also={304: "Not modified"},
              headers={"ETag": "Strong validator (If-None-Match answers 304)"})
    def openapi_document():
        """The OpenAPI 3.1 description of this function."""
        doc = build_openapi(app)
        # behind the local gateway (or an ingress that says so) the API lives under a prefix:
        # "try it" in an API explorer must call /<function>/..., not /...
        prefix = forwarded_prefix()
        if prefix:
            doc = {**doc, "servers": [{"url": prefix, "description": "through the gateway / qua cổng"}]}
        # the same until the function is deployed again: kept a minute, then revalidated (a 304, not 160 kB)
        return cached_json(doc, cache_control="public, max-age=60")

    if downloads:
        add_download_route(app)
    instrument(app)
    return app




def preload(app: Flask) -> None:
    """Load now what the first request would otherwise pay for: the schema set and a validator for
    every body schema and every query parameter the app's routes name, and the token verifier
    (PyJWT and the platform's keys).

    Start-up leaves them to first use so that readiness comes fast; a function whose readiness
    already waits on work of its own (an index built at start, ``lscloud.readiness``) calls this in
    that same background work, so neither its readiness nor its first caller waits for them."""
    from .. import auth

    state = app.extensions["lscloud"]
    names = {getattr(view, "__lscloud_body_schema__", None) for view in list(app.view_functions.values())}
    for name in sorted(n for n in names if n):
        state.schemas.validator(name)
    for view in list(app.view_functions.values()):
        for param in getattr(view, "__lscloud_query__", ()):
            param.check()
    auth.preload(state.settings)
