"""SERVER spans and the HTTP server metrics of a function's Flask app, recorded at the WSGI layer.

One span and one histogram sample per request, under the stable HTTP semantic conventions:

- a SERVER span named ``{method} {http.route}`` (``GET /v1/units/<code>``), or the method alone
  when no route matched (a raw path never names a span). Its parent is the context the request
  carries (``traceparent``/``tracestate``, baggage: whatever the global propagator reads), and it
  is the current span while the view runs, so the view's S3 calls and publishes nest under it.
  Attributes: ``http.request.method``, ``http.route``, ``http.response.status_code``,
  ``url.path`` (a route that takes a person's number has its template there instead, see
  :func:`names_a_person`), ``url.query``, ``url.scheme``, ``server.address``, ``server.port``,
  ``client.address``, ``user_agent.original``, ``network.protocol.version``; on a 5xx the status
  is ERROR with ``error.type`` (the status code, or the class of an exception that left the app),
  and an exception the app reports (:func:`record_exception`, Flask's ``got_request_exception``)
  is recorded as the span's event. Request and response headers named in
  ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST`` / ``..._RESPONSE`` are captured as
  ``http.request.header.<name>``, except the ones that carry credentials, which never are.
- ``http.server.request.duration`` (seconds, the semconv's advisory buckets) with
  ``http.request.method``, ``url.scheme``, ``network.protocol.version``,
  ``http.response.status_code``, ``http.route`` and ``error.type``: never the raw path;
- ``http.server.active_requests`` by method and scheme, observed when metrics are collected.

Exported spans pass through :class:`lscloud.telemetry.RedactingSpanExporter` like every other span.

This replaces ``opentelemetry-instrumentation-flask``, whose generic environ parsing, hooks and
per-request metric calls were about 40% of a request's CPU in a function that answers from memory.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any
from urllib.parse import unquote_plus

import flask
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode
from werkzeug.exceptions import MethodNotAllowed

from .. import config, redaction, rulesyntax, telemetry
from ..metrics import DURATION_BUCKETS
from ..patterns import ecma_regex
from .pathparams import route_template

__all__ = ["instrument", "names_a_person", "record_exception"]

_KEY = "lscloud.server_request"
_METHODS = frozenset(("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"))
_REQUEST_HEADERS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"
_RESPONSE_HEADERS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE"


class _EnvironGetter:
    """Reads propagation headers (``traceparent``, ...) out of a WSGI environ."""

    def get(self, environ: dict, key: str):
        value = environ.get("HTTP_" + key.upper().replace("-", "_"))
        return None if value is None else [value]

    def keys(self, environ: dict):
        return [k[5:].lower().replace("_", "-") for k in environ if k.startswith("HTTP_")]


_getter = _EnvironGetter()


def _parent(environ: dict):
    """The context a request's span starts in, and its kind: the one its headers carry (SERVER),
    unless the app was called inside a span of this process (a test client in a test's span):
    then that span's child (INTERNAL), as the OpenTelemetry WSGI instrumentations do."""
    if trace.get_current_span() is trace.INVALID_SPAN:
        return propagate.extract(environ, getter=_getter), SpanKind.SERVER
    return otel_context.get_current(), SpanKind.INTERNAL


class _Request:
    """What one request's span and sample need, kept in its environ under ``_KEY``."""

    __slots__ = ("method", "start_ns", "route", "path", "status", "span", "token", "exception", "response_headers")

    def __init__(self, method: str, start_ns: int):
        self.method = method
        self.start_ns = start_ns
        self.route: str | None = None
        self.path: str | None = None   # url.path when not the path as sent
        self.status: int | None = None
        self.span: trace.Span | None = None
        self.token: object | None = None
        self.exception: BaseException | None = None
        self.response_headers: list | None = None


def _header_names(variable: str) -> dict[str, str]:
    """``{header name: attribute suffix}`` for each header ``variable`` asks to capture, credentials left out."""
    names = [n.strip().lower() for n in config.environ().get(variable, "").split(",") if n.strip()]
    return {n: n.replace("-", "_") for n in names if n not in telemetry.SENSITIVE_HEADERS}


def _environ_key(header: str) -> str:
    """Where a WSGI environ holds request header ``header`` (lower case)."""
    if header in ("content-type", "content-length"):
        return header.upper().replace("-", "_")
    return "HTTP_" + header.upper().replace("-", "_")


# a person's numbers, and each with a letter in it: a parameter whose rule takes one of the first and
# not its second is a number of that shape (^\d{12}$), not an id that a number happens to fit
_PERSONAL_SAMPLES = (("001095001234", "00109500123x"), ("012345678", "01234567x"), ("0912345678", "091234567x"),
                     ("+84912345678", "+8491234567x"))


def names_a_person(schema: dict | None) -> bool:
    """Whether a path parameter documented with ``schema`` (the ``schema`` converter's) takes a
    personal identifier: an example of it is one (:func:`lscloud.redaction.redact` replaces it,
    ``"examples": ["020095001234"]``), or its pattern takes a CCCD, CMND or phone number but not the
    same with a letter in it. Such a route's SERVER span records its template as ``url.path``
    (``/v1/cccd/<number>``): whatever was sent, a valid number or a mistyped one, stays out."""
    if not isinstance(schema, dict):
        return False
    examples = schema.get("examples")
    for example in examples if isinstance(examples, list) else ():
        if isinstance(example, str) and redaction.redact(example) != example:
            return True
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            taken = ecma_regex(pattern).search
        except (ValueError, re.error):
            return True   # a rule this cannot read: the path is kept out rather than a number let through
        return any(taken(number) and not taken(lettered) for number, lettered in _PERSONAL_SAMPLES)
    return False


def _text(value: str) -> str:
    # WSGI hands paths over as latin-1 strings of the UTF-8 bytes
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class ServerTelemetry:
    """Wraps ``app.wsgi_app``; the span itself starts in a ``before_request`` hook (first of all),
    where the route is known, so the span has its final name from its first moment."""

    def __init__(self, app: flask.Flask):
        self.app = app
        self.wsgi_app = app.wsgi_app
        self.tracer = telemetry.tracer()
        meter = telemetry.meter()
        self.duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self._active: dict[tuple[str, str], int] = {}
        self._active_lock = threading.Lock()
        meter.create_observable_up_down_counter(
            "http.server.active_requests", callbacks=[self._observe_active], unit="{request}",
            description="Number of active HTTP server requests.")
        # (environ key, attribute) of each request header to capture, decided once
        self.request_headers = tuple((_environ_key(h), "http.request.header." + suffix)
                                     for h, suffix in _header_names(_REQUEST_HEADERS).items())
        self.response_headers = {h: "http.response.header." + suffix
                                 for h, suffix in _header_names(_RESPONSE_HEADERS).items()}
        # rule -> whether a parameter of it takes a personal identifier (decided once per rule)
        self._personal: dict[str, bool] = {}

    def _takes_a_person(self, rule: str) -> bool:
        personal = self._personal.get(rule)
        if personal is None:
            personal = False
            for parameter in rulesyntax.parameters(rule):
                try:
                    converter = rulesyntax.converter(self.app.url_map, parameter)
                except Exception:  # noqa: BLE001 - the router built it; unreadable here: kept out, not let through
                    personal = True
                    break
                if names_a_person(getattr(converter, "schema", None)):
                    personal = True
                    break
            self._personal[rule] = personal
        return personal

    def _shown_path(self, environ: dict, rule) -> str | None:
        """``url.path`` for a request to ``rule`` (a Werkzeug rule, or None when none matched):
        the route's template when it takes a person's number, else None (the path as sent)."""
        if rule is None:
            # a 405 matched a route by its path all the same: a POST to /v1/cccd/<number> names one too
            refused = flask.request.routing_exception
            if not isinstance(refused, MethodNotAllowed) or not refused.valid_methods:
                return None
            try:
                rule, _ = self.app.create_url_adapter(flask.request).match(
                    method=refused.valid_methods[0], return_rule=True)
            except Exception:  # noqa: BLE001 - no rule after all: the path as sent (the redaction's net stays)
                return None
        if not self._takes_a_person(rule.rule):
            return None
        return _text(environ.get("SCRIPT_NAME", "")) + route_template(rule.rule)

    # -- the WSGI side -----------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response):
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        state = _Request(method if method in _METHODS else "_OTHER", time.time_ns())
        environ[_KEY] = state
        active = (state.method, environ.get("wsgi.url_scheme", "http"))
        with self._active_lock:
            self._active[active] = self._active.get(active, 0) + 1

        def _start_response(status: str, headers, exc_info=None):
            state.status = int(status[:3])
            if self.response_headers:
                state.response_headers = headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        escaped: BaseException | None = None
        try:
            return self.wsgi_app(environ, _start_response)
        except BaseException as exc:
            escaped = exc
            raise
        finally:
            with self._active_lock:
                self._active[active] -= 1
            self._finish(environ, state, started, escaped)

    def begin(self) -> None:
        """``before_request``: start the request's SERVER span, named by its route, as the current span."""
        environ = flask.request.environ
        state = environ.get(_KEY)
        if state is None or state.span is not None:
            return  # a request context pushed by hand (test_request_context), not a served request
        rule = flask.request.url_rule
        state.route = route_template(rule.rule) if rule is not None else None
        state.path = self._shown_path(environ, rule)
        parent, kind = _parent(environ)
        span = self._start(environ, state, parent, kind)
        state.span = span
        state.token = otel_context.attach(trace.set_span_in_context(span, parent))

    def _start(self, environ: dict, state: _Request, parent, kind: SpanKind) -> trace.Span:
        method = state.method
        path = state.path
        if path is None:
            path = _text(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        attrs: dict[str, Any] = {"http.request.method": method, "url.scheme": environ.get("wsgi.url_scheme", "http"),
                                 "url.path": path}
        if method == "_OTHER":
            attrs["http.request.method_original"] = environ.get("REQUEST_METHOD", "")
        if state.route is not None:
            attrs["http.route"] = state.route
        query = environ.get("QUERY_STRING")
        if query:
            # decoded, so the redaction's patterns see what was sent: "CCCD+020088002468" or
            # "%2B84912345678" in a file name went out readable, the pattern never matching the encoding
            attrs["url.query"] = _text(unquote_plus(query))
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME")
        if host:
            name, colon, port = host.rpartition(":") if not host.endswith("]") else ("", "", "")
            if colon and port.isdigit():
                attrs["server.address"], attrs["server.port"] = name, int(port)
            else:
                attrs["server.address"] = host
                if environ.get("SERVER_PORT", "").isdigit():
                    attrs["server.port"] = int(environ["SERVER_PORT"])
        if environ.get("REMOTE_ADDR"):
            attrs["client.address"] = environ["REMOTE_ADDR"]
        if environ.get("HTTP_USER_AGENT"):
            attrs["user_agent.original"] = environ["HTTP_USER_AGENT"]
        protocol = environ.get("SERVER_PROTOCOL", "")
        if protocol.startswith("HTTP/"):
            attrs["network.protocol.version"] = protocol[5:]
        for key, attribute in self.request_headers:
            value = environ.get(key)
            if value is not None:
                attrs[attribute] = (value,)
        name = method if method != "_OTHER" else "HTTP"
        if state.route is not None:
            name = f"{name} {state.route}"
        return self.tracer.start_span(name, context=parent, kind=kind, attributes=attrs,
                                      start_time=state.start_ns)

    def _finish(self, environ: dict, state: _Request, started: float, escaped: BaseException | None) -> None:
        duration = time.perf_counter() - started
        span = state.span
        if span is None:  # the hook never ran (the app failed before it): a span all the same
            span = self._start(environ, state, *_parent(environ))
        status = state.status
        error_type = None
        exception = state.exception
        if escaped is not None:
            exception = escaped
            if status is None or status < 500:
                status, error_type = 500, type(escaped).__qualname__
            if exception is not state.exception:
                span.record_exception(escaped)
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                error_type = error_type or str(status)
                span.set_attribute("error.type", error_type)
                span.set_status(Status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}"
                                       if exception is not None else None))
        if state.response_headers is not None:
            for header, value in state.response_headers:
                attribute = self.response_headers.get(header.lower())
                if attribute is not None:
                    span.set_attribute(attribute, (value,))
        span.end()
        labels: dict[str, Any] = {"http.request.method": state.method,
                                  "url.scheme": environ.get("wsgi.url_scheme", "http")}
        protocol = environ.get("SERVER_PROTOCOL", "")
        if protocol.startswith("HTTP/"):
            labels["network.protocol.version"] = protocol[5:]
        if status is not None:
            labels["http.response.status_code"] = status
        if state.route is not None:
            labels["http.route"] = state.route
        if error_type is not None:
            labels["error.type"] = error_type
        self.duration.record(duration, labels)  # while the span is current: its exemplar links the trace
        if state.token is not None:
            otel_context.detach(state.token)

    def _observe_active(self, options: CallbackOptions):
        with self._active_lock:
            counts = list(self._active.items())
        return [Observation(n, {"http.request.method": m, "url.scheme": s}) for (m, s), n in counts]


def record_exception(exc: BaseException) -> None:
    """Record ``exc`` on the current request's SERVER span (an app's own handler of unexpected
    errors calls this: the answer it renders hides the exception from the instrumentation)."""
    if not flask.has_request_context():
        return
    state = flask.request.environ.get(_KEY)
    if state is None or state.span is None or state.exception is exc:
        return
    state.exception = exc
    state.span.record_exception(exc)


def _on_exception(sender: flask.Flask, exception: BaseException, **_: Any) -> None:
    record_exception(exception)


def instrument(app: flask.Flask) -> None:
    """Record SERVER spans and the HTTP server metrics for ``app`` (idempotent)."""
    if app.extensions.get(_KEY) is not None:
        return
    server = ServerTelemetry(app)
    app.extensions[_KEY] = server
    app.wsgi_app = server
    app.before_request_funcs.setdefault(None, []).insert(0, server.begin)
    flask.got_request_exception.connect(_on_exception, app)
