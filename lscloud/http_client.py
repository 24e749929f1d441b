"""A function's outbound HTTP calls: to its peers, to partner banks, to a national registry.

:class:`Client` is thread-safe and meant to be made once per process: it keeps a
:class:`lscloud.connections.Connections` pool per origin (``scheme://host:port``), so a call reuses
a kept-alive connection and its answer is parsed by httptools. httpx, which these calls used
before, cost about as much CPU per call as the rest of a soft-ATM webhook's work.

What a caller can rely on:

- each call is one CLIENT span named after its method (OpenTelemetry's HTTP client conventions:
  ``http.request.method``, ``server.address``, ``server.port``, ``http.response.status_code``,
  ``error.type``), and carries ``traceparent`` so the callee's spans join the caller's trace. The
  span holds ``url.template`` when the caller gives one and ``url.full`` only when asked
  (``record_url=True``): a path may hold a citizen's number, a webhook's query a partner's token;
- each call is one sample of ``http.client.request.duration`` (seconds, the HTTP semconv's
  buckets), with the method, ``server.address``, ``server.port`` and the status or ``error.type``:
  never the URL, its path or its query, so a dashboard's series stay few;
- redirects are not followed and no cookie is kept: an answer is the callee's own;
- a call that gets no answer raises :class:`NoAnswer` (``timed_out`` says whether the time ran
  out, ``maybe_sent`` whether the request may have reached the callee). A call whose method is
  idempotent is tried once more when a kept-alive connection turns out to have been closed by the
  other end; a POST never is (the caller's retry and the callee's idempotency decide);
- an answer longer than ``max_answer_bytes`` (8 MiB unless told) is :class:`NoAnswer`;
- a URL that is not ``http(s)://host[:port]/...``, or holds a space, a control character or a
  character that is not ASCII (a caller percent-encodes), credentials (``user@``) or a fragment,
  neither of which would be sent, raises :class:`BadUrl` (a ``ValueError``) before anything is
  sent, as does a header holding a line break. A caller that keeps a URL to call later (a partner's
  webhook address) checks it when it is given, with :func:`parse_url` (the transport's, from
  :mod:`lscloud.connections`, which the object store's client parses its endpoint with too).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any, Mapping

from opentelemetry.trace import SpanKind, StatusCode

from . import telemetry
from .connections import BadUrl, Connections, NotSent, Target, default_ca_bundle, parse_url
from .metrics import HTTP_CLIENT

__all__ = ["BadUrl", "Client", "MAX_ANSWER_BYTES", "NoAnswer", "Response", "Target", "parse_url"]

MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""The longest answer a call reads (head and body); a longer one is :class:`NoAnswer`: a partner
that answers a webhook with gigabytes must not take the function's memory."""
_IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS"))
# the metric's method is one of these or _OTHER (the HTTP semconv's rule: its series stay bounded)
_METHODS = frozenset(("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"))
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
# looked up once, as the store's is: telemetry.tracer() per call was 14 µs of a call's 175
_tracer = telemetry.tracer()


class NoAnswer(Exception):
    """The callee did not answer. ``timed_out``: the time ran out; ``maybe_sent``: the request
    may have reached it (so a non-idempotent call may have been acted on)."""

    def __init__(self, message: str, *, timed_out: bool = False, maybe_sent: bool = True):
        super().__init__(message)
        self.timed_out, self.maybe_sent = timed_out, maybe_sent


class Response:
    """One answer: ``status_code``, ``headers`` (lower-case names), ``content`` (bytes)."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes):
        self.status_code, self.headers, self.content = status_code, headers, content

    def header(self, name: str, default: str | None = None) -> str | None:
        """The header ``name``, whatever its case."""
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.content)


class Client:
    """Outbound calls over kept-alive connections, one pool per origin (see the module docstring).
    ``headers`` are sent with every call; ``timeout_s`` bounds the connection and each wait for
    the answer's bytes; ``deadline_s``, if given, the whole call (an answer still coming then is
    given up: a slow or hostile server sending a byte every few seconds would otherwise hold the
    caller up to ``max_answer_bytes``)."""

    def __init__(self, *, timeout_s: float = 5.0, headers: Mapping[str, str] | None = None,
                 max_idle: int = 16, ca_file: str | None = None, max_answer_bytes: int = MAX_ANSWER_BYTES,
                 deadline_s: float | None = None):
        self.timeout_s, self.max_idle, self.max_answer_bytes = timeout_s, max_idle, max_answer_bytes
        self.deadline_s = deadline_s
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.ca_file = ca_file
        self._pools: dict[tuple[str, str, int], Connections] = {}
        self._lock = threading.Lock()

    def get(self, url: str, **kwargs) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, body: bytes | None = None, **kwargs) -> Response:
        return self.request("POST", url, body=body, **kwargs)

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, body: bytes | None = None,
                url_template: str | None = None, record_url: bool = False) -> Response:
        """Send ``method url`` and read its whole answer, whatever its status (see the module
        docstring for the span, the retry and what is raised)."""
        where = parse_url(url)
        sent = dict(self.headers)
        sent["host"] = where.host
        for name, value in (headers or {}).items():
            sent[name.lower()] = value
        attributes = {"http.request.method": method, "server.address": where.hostname, "server.port": where.port}
        if url_template:
            attributes["url.template"] = url_template
        if record_url:
            attributes["url.full"] = url
        pool = self._pool(where.scheme, where.hostname, where.port)
        labels = {"http.request.method": method if method in _METHODS else "_OTHER",
                  "server.address": where.hostname, "server.port": where.port}
        started = time.perf_counter()
        with _tracer.start_as_current_span(method, kind=SpanKind.CLIENT, attributes=attributes,
                                           record_exception=False, set_status_on_exception=False) as span:
            telemetry.inject(sent)
            try:
                status, answer_headers, content = self._send(pool, method, where.target, sent, body)
            except NoAnswer as exc:
                cause = exc.__cause__ or exc
                if isinstance(cause, NotSent) and cause.__cause__ is not None:
                    cause = cause.__cause__   # what refused it, as the store's client names it
                span.set_attribute("error.type", cause.__class__.__name__)
                span.set_status(StatusCode.ERROR, str(exc))
                labels["error.type"] = cause.__class__.__name__
                HTTP_CLIENT("duration").record(time.perf_counter() - started, labels)
                raise
            span.set_attribute("http.response.status_code", status)
            labels["http.response.status_code"] = status
            if status >= 400:   # the client's view: any 4xx or 5xx answer is an error of the call
                span.set_attribute("error.type", str(status))
                span.set_status(StatusCode.ERROR)
                labels["error.type"] = str(status)
            # while the span is current: its exemplar leads to the call's trace
            HTTP_CLIENT("duration").record(time.perf_counter() - started, labels)
        return Response(status, answer_headers, content)

    def _send(self, pool: Connections, method: str, target: str, headers: dict, body: bytes | None):
        attempts = 2 if method in _IDEMPOTENT else 1
        deadline = None if self.deadline_s is None else time.monotonic() + self.deadline_s
        for attempt in range(1, attempts + 1):
            try:
                return pool.request(method, target, headers, body, self.max_answer_bytes, deadline)
            except NotSent as exc:
                timed_out = isinstance(exc.__cause__, TimeoutError)
                raise NoAnswer(f"no connection: {exc}", timed_out=timed_out, maybe_sent=False) from exc
            except _STALE as exc:
                if attempt < attempts:
                    continue   # a kept-alive connection the other end had closed: once more, on a new one
                raise NoAnswer(f"the connection broke: {exc.__class__.__name__}") from exc
            except TimeoutError as exc:
                raise NoAnswer("no answer in time", timed_out=True) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise NoAnswer(f"no usable answer: {exc.__class__.__name__}") from exc
        raise AssertionError("unreachable")   # pragma: no cover

    def _pool(self, scheme: str, hostname: str, port: int) -> Connections:
        key = (scheme, hostname, port)
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    ca_file = (self.ca_file or default_ca_bundle()) if scheme == "https" else None
                    pool = self._pools[key] = Connections(scheme, hostname, port, max_idle=self.max_idle,
                                                          timeout_s=self.timeout_s, ca_file=ca_file)
        return pool
