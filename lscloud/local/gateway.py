"""The local cloud's front door: one port that routes ``/<function>/...`` to each function.

It plays the part of the cluster's ingress + Knative activator, and nothing more: a plain
streaming reverse proxy (method, path, query, headers and body passed through, hop-by-hop
headers dropped, ``X-Forwarded-*`` added). Two things it adds:

- ``/`` lists the functions and their readiness (JSON, or HTML for a browser) and ``/docs``
  shows every function's ``openapi.json`` in Swagger UI (:mod:`lscloud.local.apidocs`: assets from
  an installed package, never a CDN; a dev-token getter in the local cloud only);
- when ``lscloud.telemetry`` is set up, a SERVER span per request and a ``traceparent`` to
  the function, so a trace starts where the request entered the cloud.

What it refuses, each with an ``application/problem+json`` answer:

- a path not in normal form (400, :mod:`lscloud.local.paths` says why it refuses rather than
  normalises); the path it does accept is forwarded byte for byte (``raw_path``), so the function
  sees exactly what the client sent;
- a function's internal routes, ``/<function>/events`` and ``/<function>/health/...`` (404):
  events reach functions only through the dispatcher, as with Knative Eventing;
- a body over ``max_body_bytes`` (413), from its Content-Length before anything is forwarded, or
  while streaming a chunked one. The cap is the largest body any route takes (uploads,
  ``settings.blob_max_bytes``); each function still applies its own per-route limits.

An upstream that cannot be reached answers 502 (503 while the function is starting or
restarting), one that drops the connection (before or while answering) 502, one that is too slow
504. Every answer the gateway gives itself in place of a function's (400, 404, 413, 5xx) carries the
CORS headers a function would (``LSCLOUD_CORS_ORIGINS``, the functions' own setting): a page on
another origin then reads the real status, not a network error; what a function answers passes
as it is (its own CORS headers, :mod:`lscloud.web.app`). An answer given before the client's body
was read closes the client connection after draining the body (:class:`lscloud.asgi.BodyGuard`),
and an upstream connection is never returned to the pool half-read (a response not read to its end
is closed; functions close theirs after an early answer).

In front of each function it holds the bounds Knative's queue-proxy holds each replica to in the
cluster (:class:`_Gate`, one per function, from its :class:`Route`): at most ``containerConcurrency``
requests sent on at once (func.yaml's ``resources.limits.concurrency``,
:func:`lscloud.manifest.container_concurrency`), a line of up to
:data:`lscloud.manifest.QUEUE_DEPTH_PER_SLOT` times that many waiting behind them, first come first
served, and beyond it an immediate 503 with ``Retry-After``; a request whose answer has not begun
within the function's ``timeoutSeconds`` of its arrival, waiting included, is a 504. Each function
has connections of its own to draw on (a per-function cap, no shared one), so a function that
hangs holds its own slots and connections, never another's. A client that leaves while its
request waits gives up its place in line (it is never sent on), and one that leaves while the
function works has the upstream request abandoned (its connection closed: the function's bridge
then skips the request if no thread has taken it yet, :mod:`lscloud.wsgi_bridge`); either is
logged at DEBUG, never as a gateway error.

Two ways in, one set of rules: the app is plain ASGI (:class:`Gateway`), and its common case, a
request without a body that :meth:`Gateway._resolve` forwards, is also served aiohttp-natively
(:meth:`Gateway.aiohttp_handler`, no ASGI scope, messages or guard: the gateway's cost per
request is what it takes off a function's throughput). Everything else, and so every refusal,
goes through the ASGI app; the shared steps (the routing decision, the header pass, the span, the
upstream call and its error answers, the whole-body read) are one code for both.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import html
import ipaddress
import json
import logging
import os
import re
import threading
from typing import Callable
from urllib.parse import quote, unquote

import aiohttp
import yarl
from aiohttp import web

from opentelemetry import context as _context
from opentelemetry import trace as _trace

from .. import asgi
from ..config import CORS_ANY
from ..manifest import PLATFORM_CONTAINER_CONCURRENCY, PLATFORM_TIMEOUT_S, QUEUE_DEPTH_PER_SLOT
from . import paths
from .raw_problems import problem
from .routes import Route

# hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, never forwarded
_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"proxy-connection"}
# an upstream answer's headers not passed on: hop-by-hop, and date/server (the gateway's server writes its own)
_NOT_PASSED_ON = frozenset((*_HOP, b"date", b"server"))
# what the gateway says of the request itself (lscloud.web.origin): a client's is dropped, not passed on
_SET_HERE = frozenset((b"x-forwarded-proto", b"x-forwarded-prefix", b"x-forwarded-host", b"forwarded"))
_UNSAFE_IN_QUERY = re.compile(rb"[^\x21-\x7e]|#")


log = logging.getLogger("lscloud.gateway")

WHOLE_BODY_BYTES = 256 * 1024
"""An upstream answer up to this size (by its Content-Length) is read whole and forwarded in one
write; a larger one, or one of unknown length, is streamed chunk by chunk."""

# the paths in use are few (a function's routes) and parse is pure: each decided once, not per request
# (a refused path raises, so is never kept)
_parse = functools.lru_cache(maxsize=4096)(paths.parse)

_ROOT = _context.Context()  # a request with no traceparent starts a trace (never the task's context)

CONNECTIONS_PER_FUNCTION = 256
"""The most connections open to one function at once (its concurrency bounds what it uses; this
bounds a function with none, ``containerConcurrency`` 0). Per function, not shared: one pool for
every function let a hung one take all 256 and every other function's callers wait for one."""

RETRY_AFTER_S = 1
"""``Retry-After`` of a 503 for a function whose line is full: a place frees as soon as one of its
requests ends."""


class Gateway:
    """The ASGI app. ``routes`` returns the current routing table (name -> Route)."""

    def __init__(self, routes: Callable[[], dict[str, Route]], *, upstream_host: str = "127.0.0.1",
                 read_timeout_s: float = 60.0, max_body_bytes: int | None = None, dev_tokens=None,
                 fast_path: bool = True, cors_origins: tuple[str, ...] | None = None):
        """``max_body_bytes``: the largest request body forwarded (default: the largest any route
        takes by default settings, ``max(max_body_bytes, blob_max_bytes)``). ``dev_tokens``: an
        :class:`lscloud.local.apidocs.DevTokens` for ``/docs/token`` (local cloud only; ``None``: no route).
        ``fast_path``: serve bodyless forwards without ASGI (:meth:`aiohttp_handler`; off: every
        request goes through the ASGI app, as tests compare). ``cors_origins``: the pages on other
        origins that may call (default: ``LSCLOUD_CORS_ORIGINS``, as the functions behind it read it)."""
        self.routes = routes
        self.dev_tokens = dev_tokens
        self.upstream_host = upstream_host
        self.read_timeout_s = read_timeout_s
        if max_body_bytes is None:
            from ..config import Settings

            defaults = Settings()
            max_body_bytes = max(defaults.max_body_bytes, defaults.blob_max_bytes)
        self.max_body_bytes = max_body_bytes
        self.fast_path = fast_path
        if cors_origins is None:
            from .. import config

            name = "LSCLOUD_CORS_ORIGINS"
            cors_origins = config.parse_origins(name, config.environ().get(name, ""))
        self.cors_origins = frozenset(cors_origins)
        self._gates: dict[str, _Gate] = {}
        self.client: aiohttp.ClientSession | None = None
        self._telemetry = None
        self._tracer = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def _startup(self) -> None:
        # one pooled client for every upstream: keep-alive connections to each function. aiohttp
        # (its C response parser) costs about a tenth of httpx's CPU per proxied request, and the
        # proxy's CPU is what the gateway takes off a function's throughput. Each function (its own
        # port: aiohttp's "host") has its own cap and none is shared, so none can take another's.
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=CONNECTIONS_PER_FUNCTION, keepalive_timeout=30,
                                           enable_cleanup_closed=False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=2.0, sock_read=self.read_timeout_s),
            # a proxy keeps no cookies (one caller's would reach the next) and adds no headers of its own
            cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, trust_env=False,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"))
        from lscloud import telemetry

        self._telemetry = telemetry
        # one tracer (a proxy until telemetry is set up): get_tracer on every request was a twentieth of the gateway
        self._tracer = telemetry.tracer()

    async def _shutdown(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self._startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self._shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if self.client is None:  # served without lifespan (tests with a bare ASGI driver)
            await self._startup()
        guard = asgi.BodyGuard(scope, receive, send)
        receive, send = guard.receive, guard.send
        try:
            await self._route(scope, receive, send)
        except asyncio.CancelledError:   # the server cancels the handler of a client that left
            _client_left(scope.get("method"), _raw_path(scope))
            raise
        except Exception as exc:  # noqa: BLE001 - never a bare 500: the answer is a problem, the cause is logged
            if isinstance(exc, ConnectionResetError):   # writing to a client that has gone: nobody to answer
                _client_left(scope.get("method"), _raw_path(scope))
                return
            error = _failed(scope.get("method"), _raw_path(scope))
            if not guard.started:
                await _send(send, *self._own(scope, error))

    async def _route(self, scope, receive, send) -> None:
        kind, what = self._resolve(scope["path"], _raw_path(scope))
        if kind == "index":
            return await self._index(scope, send)
        if kind == "docs":
            return await self._docs(scope, send)
        if kind == "refuse":
            return await _send(send, *self._own(scope, what))
        if kind == "this-machine" and not _from_this_machine(scope):
            from . import apidocs

            return await _send(send, *self._own(scope, apidocs.not_found()))
        length = asgi.content_length(scope)
        if length is not None and length > self.max_body_bytes:
            return await _send(send, *self._own(scope, self._too_large()))
        route, where = what
        await self._proxy(scope, receive, send, route, where)

    def _resolve(self, path: str, raw_path: bytes):
        """What the gateway does with a request for ``path`` (decoded) sent as ``raw_path``: one
        decision for both ways in (ASGI and :meth:`aiohttp_handler`). ``("index" | "docs", None)``,
        ``("refuse", (status, headers, body))``, ``("forward", (route, where))``, or
        ``("this-machine", (route, where))``: forwarded only to a request from this machine."""
        if path in ("/", ""):
            return "index", None
        if path == "/docs" or path.startswith("/docs/"):
            return "docs", None
        try:
            where = _parse(raw_path)
        except paths.MalformedPath as exc:
            shown = paths.shown(raw_path)
            return "refuse", problem(
                400, "malformed-path", "Malformed path", f"The path {shown!r} is not accepted: {exc}.",
                "Đường dẫn không hợp lệ", f"Đường dẫn {shown!r} không được chấp nhận.",
                errors=[{"field": "path", "message": str(exc)}])
        name = where.function
        route = self.routes().get(name)
        if route is None:
            return "refuse", problem(
                404, "function-not-found", "No such function", f"No function named {name!r} runs in this cloud; "
                "see / for the list.", "Không có hàm này", f"Không có hàm nào tên {name!r}; xem danh sách tại /.")
        if where.internal:
            return "refuse", problem(
                404, "not-found", "Not found", "Events are delivered to functions by the event dispatcher and "
                "health is probed by the platform, not through the gateway.", "Không tìm thấy",
                "Sự kiện được chuyển tới hàm qua bộ điều phối sự kiện và tình trạng của hàm do nền tảng kiểm tra, "
                "không qua cổng.")
        if _dev_token_route(where):
            # what mints a token (any role) is this machine's alone, as /docs/token: the ASGI path
            # (the fast path hands it over) sees the client's address and Host
            return "this-machine", (route, where)
        return "forward", (route, where)

    def _cors(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """The CORS headers of an answer the gateway gives itself to a request from ``origin``: what
        :mod:`lscloud.web.app` adds to a function's. Its answers are problems, nobody's data: a page
        that may read any public answer (``*``) may read them too."""
        if not self.cors_origins:
            return []
        headers = [(b"vary", b"Origin")]
        if origin and (origin.decode("latin-1") in self.cors_origins or CORS_ANY in self.cors_origins):
            headers += [(b"access-control-allow-origin", origin), (b"access-control-expose-headers", b"Retry-After")]
        return headers

    def _own(self, scope, answer: tuple[int, list, bytes]) -> tuple[int, list, bytes]:
        """``answer`` (the gateway's own) with the CORS headers for the ASGI request ``scope``."""
        if not self.cors_origins:
            return answer
        origin = next((v for k, v in scope.get("headers", ()) if k.lower() == b"origin"), None)
        status, headers, body = answer
        return status, [*headers, *self._cors(origin)], body

    def _own_native(self, request, answer: tuple[int, list, bytes]):
        """``answer`` (the gateway's own) as an aiohttp response to ``request``, with its CORS headers."""
        if self.cors_origins:
            origin = request.headers.get("Origin")
            status, headers, body = answer
            answer = status, [*headers, *self._cors(origin.encode("latin-1") if origin else None)], body
        return _aiohttp_answer(*answer)

    def _too_large(self) -> tuple[int, list, bytes]:
        return problem(413, "payload-too-large", "Request body too large",
                       f"The request body exceeds {self.max_body_bytes} bytes.", "Nội dung yêu cầu quá lớn",
                       f"Nội dung yêu cầu vượt quá {self.max_body_bytes} byte.",
                       errors=[{"field": "body", "message": f"at most {self.max_body_bytes} bytes"}])

    # -- admission ---------------------------------------------------------------------------------

    def _gate(self, route: Route) -> "_Gate":
        gate = self._gates.get(route.name)
        if gate is None or gate.concurrency != route.concurrency:
            # a new bound (its func.yaml changed across a restart): requests let in under the old
            # gate leave through it, new ones line up at the new one
            gate = self._gates[route.name] = _Gate(route.concurrency)
        return gate

    def load(self, name: str) -> tuple[int, int]:
        """``(sent on, waiting)``: the requests to function ``name`` the gateway holds now."""
        gate = self._gates.get(name)
        return (gate.running, gate.pending - gate.running) if gate is not None else (0, 0)

    def _deadline(self, route: Route) -> float | None:
        """When a request let in at once must have its answer begun (loop time), or None when the
        pool's read timeout comes first anyway (then no timer of its own: the common case costs none)."""
        if route.timeout_s >= self.read_timeout_s:
            return None
        return asyncio.get_running_loop().time() + route.timeout_s

    async def _queued(self, gate: "_Gate", admitted: bool | None, route: Route, span):
        """For a request not let in at once: ``(deadline, None)`` once its turn has come, ``(None,
        problem)`` when the line was full (503) or its time ran out while it waited (504)."""
        if admitted is False:
            waiting = gate.room - gate.concurrency
            return None, self._said(span, problem(
                503, "function-busy", "Function busy",
                f"{route.name} is handling {gate.concurrency} requests and {waiting} more are waiting; "
                "try again shortly.", "Hàm đang bận",
                f"Hàm {route.name} đang xử lý {gate.concurrency} yêu cầu và {waiting} yêu cầu khác đang chờ; "
                "vui lòng thử lại sau.", [(b"retry-after", str(RETRY_AFTER_S).encode())]))
        deadline = asyncio.get_running_loop().time() + route.timeout_s
        if await gate.turn(deadline):
            return deadline, None
        return None, self._said(span, _timed_out(route))

    @staticmethod
    def _said(span, answer: tuple[int, list, bytes]) -> tuple[int, list, bytes]:
        _status_on(span, answer[0])
        return answer

    # -- proxy -------------------------------------------------------------------------------------

    def _request_headers(self, raw_headers, client_addr: str, route: Route):
        """One pass over a request's headers: what is forwarded (str pairs, as aiohttp takes them,
        hop-by-hop dropped, ``X-Forwarded-*`` added) and what the gateway reads itself: the
        caller's ``traceparent``/``tracestate`` (bytes or None, not in the list) and whether a body
        follows (a Content-Length or Transfer-Encoding)."""
        headers: list[tuple[str, str]] = []
        forwarded_for = host = traceparent = tracestate = None
        has_body = False
        for k, v in raw_headers:
            k = k.lower()
            if k in _HOP:
                if k == b"transfer-encoding":
                    has_body = True
                continue
            if k == b"x-forwarded-for":
                forwarded_for = v
                continue
            if k in _SET_HERE:
                continue   # a client's own would come first, and a function reads the first
            if k == b"traceparent":
                traceparent = v
                continue
            if k == b"tracestate":
                tracestate = v
                continue
            if k == b"host":
                host = v
            elif k == b"content-length":
                has_body = True
            headers.append((k.decode("latin-1"), v.decode("latin-1")))
        xff = (forwarded_for.decode("latin-1") + ", " if forwarded_for else "") + client_addr
        headers += [("x-forwarded-for", xff), ("x-forwarded-proto", "http"), ("x-forwarded-prefix", "/" + route.name)]
        if host:
            headers.append(("x-forwarded-host", host.decode("latin-1")))
        return headers, traceparent, tracestate, has_body

    def _traced(self, headers: list, method: str, path: str, server_port: int, route: Route,
                traceparent: bytes | None, tracestate: bytes | None):
        """The gateway's SERVER span for a request (None when telemetry is off or fails), and the
        trace context it hands the function added to ``headers``: the span's, or without a span
        the caller's as it came."""
        span = self._server_span(method, path, server_port, route, traceparent, tracestate)
        if span is None:
            if traceparent is not None:
                headers.append(("traceparent", traceparent.decode("latin-1")))
            if tracestate is not None:
                headers.append(("tracestate", tracestate.decode("latin-1")))
            return None
        # the function's parent is the gateway's span (never made the task's current span: nothing
        # else in the gateway records spans, and attaching and detaching a context costs per request)
        carrier: dict[str, str] = {}
        try:
            self._telemetry.inject(carrier, context=_trace.set_span_in_context(span))
        except Exception:  # noqa: BLE001 - tracing must never break routing
            carrier = {}
        headers += [(k.lower(), v) for k, v in carrier.items()]
        return span

    def _server_span(self, method: str, path: str, server_port: int, route: Route, traceparent: bytes | None,
                     tracestate: bytes | None):
        telemetry = self._telemetry
        if telemetry is None:
            return None
        try:
            if traceparent is None:
                parent = _ROOT
            else:
                carrier = {"traceparent": traceparent.decode("latin-1")}
                if tracestate is not None:
                    carrier["tracestate"] = tracestate.decode("latin-1")
                parent = telemetry.extract(carrier)
            return self._tracer.start_span(
                f"{method} /{route.name}/*", context=parent, kind=_trace.SpanKind.SERVER,
                attributes={"http.request.method": method, "url.path": path, "http.route": f"/{route.name}/*",
                            "lscloud.function": route.name, "server.port": server_port or 0})
        except Exception:  # noqa: BLE001 - tracing must never break routing
            return None

    @staticmethod
    def _end_span(span, exc: BaseException | None) -> None:
        if exc is not None and span.is_recording():
            span.record_exception(exc)
            span.set_status(_trace.Status(_trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()

    def _url(self, route: Route, where: paths.RequestPath, query: bytes) -> yarl.URL:
        # byte for byte what the client sent (paths.parse accepted it as it is)
        target = where.raw_rest + (b"?" + _query(query) if query else b"")
        return yarl.URL(f"http://{self.upstream_host}:{route.port}{target.decode('ascii')}", encoded=True)

    async def _upstream(self, method: str, url: yarl.URL, headers: list, data, route: Route, span,
                        deadline: float | None = None):
        """Send the request on; ``(response, None)``, or ``(None, problem)`` with the gateway's own
        answer (``problem`` None: the client left mid-body, nobody to answer). ``deadline`` (loop
        time): the answer must have begun by then (504), besides the pool's read timeout."""

        def answer(status: int, *args, **kwargs):
            _status_on(span, status)
            return None, problem(status, *args, **kwargs)

        try:
            if deadline is None:
                return await self.client.request(method, url, headers=headers, data=data, allow_redirects=False,
                                                 compress=None), None
            async with asyncio.timeout_at(deadline):   # on expiry the request is cancelled: its connection closed
                return await self.client.request(method, url, headers=headers, data=data, allow_redirects=False,
                                                 compress=None), None
        except aiohttp.ClientConnectionError as exc:
            cause = exc.__cause__
            if isinstance(cause, _ClientGone):
                return None, None     # nobody to answer; the function saw the request abandoned, not ended
            if isinstance(cause, _BodyTooLarge):
                _status_on(span, 413)
                return None, self._too_large()
            if isinstance(exc, asyncio.TimeoutError):   # ServerTimeoutError: nothing read in time
                return None, self._said(span, _timed_out(route))
            if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)):
                # nothing listens, or it closed the connection without a word: a restart, or a crash
                if route.state in ("starting", "restarting", "crashed"):
                    return answer(503, "function-unavailable", "Function unavailable",
                                  f"{route.name} is {route.state}; try again shortly.", "Hàm tạm thời không sẵn sàng",
                                  f"Hàm {route.name} đang khởi động lại; vui lòng thử lại sau.", [(b"retry-after", b"2")])
                return answer(502, "bad-gateway", "Function not reachable",
                              f"{route.name} did not answer ({type(exc).__name__}).",
                              "Không kết nối được tới hàm", f"Hàm {route.name} không phản hồi.")
            return answer(502, "bad-gateway", "Function dropped the connection",
                          f"{route.name} closed the connection before answering ({type(exc).__name__}).",
                          "Hàm ngắt kết nối", f"Hàm {route.name} ngắt kết nối trước khi trả lời.")
        except asyncio.TimeoutError:
            return None, self._said(span, _timed_out(route))
        except aiohttp.ClientError as exc:  # an answer that is not HTTP, a payload cut short
            return answer(502, "bad-gateway", "Function dropped the connection",
                          f"{route.name} closed the connection before answering ({type(exc).__name__}).",
                          "Hàm ngắt kết nối", f"Hàm {route.name} ngắt kết nối trước khi trả lời.")

    async def _whole_body(self, response, route: Route, span):
        """The upstream answer's body if it is small (by its Content-Length), read whole: ``(body,
        None)``; ``(None, None)`` for one to stream; ``(None, problem)`` for one cut short."""
        length = response.content_length
        if length is None or length > WHOLE_BODY_BYTES:
            return None, None
        try:
            return await response.read(), None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # cut short: nothing was sent yet
            _status_on(span, 502)
            return None, problem(502, "bad-gateway", "Function dropped the connection",
                                 f"{route.name} closed the connection while answering ({type(exc).__name__}).",
                                 "Hàm ngắt kết nối", f"Hàm {route.name} ngắt kết nối khi đang trả lời.")

    @staticmethod
    def _answered(response, span) -> None:
        _status_on(span, response.status)

    async def _proxy(self, scope, receive, send, route: Route, where: paths.RequestPath) -> None:
        headers, traceparent, tracestate, has_body = self._request_headers(
            scope["headers"], (scope.get("client") or ("", 0))[0], route)
        span = self._traced(headers, scope["method"], scope["path"], (scope.get("server") or ("", 0))[1], route,
                            traceparent, tracestate)
        if span is None:
            return await self._forward(scope, receive, send, route, where, headers, has_body, None)
        try:
            await self._forward(scope, receive, send, route, where, headers, has_body, span)
        except BaseException as exc:
            self._end_span(span, exc)
            raise
        self._end_span(span, None)

    async def _forward(self, scope, receive, send, route, where, headers: list[tuple[str, str]], has_body: bool,
                       span) -> None:
        url = self._url(route, where, scope.get("query_string", b""))
        limit = self.max_body_bytes

        async def body():
            more, seen = True, 0
            while more:
                try:
                    message = await receive()
                except asgi.BodyIncomplete:
                    # the client left mid-body: abandon the upstream request rather than end its body
                    # normally, which would hand the function a truncated body as a whole one
                    raise _ClientGone() from None
                if message["type"] == "http.disconnect":     # (a receive without the guard)
                    raise _ClientGone()
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > limit:  # a chunked body past the cap: the upstream request is abandoned (and closed)
                    raise _BodyTooLarge()
                if chunk:
                    yield chunk
                more = message.get("more_body", False)

        gate = self._gate(route)
        admitted = gate.enter()
        if admitted is True:
            deadline = self._deadline(route)
        else:
            deadline, refusal = await self._queued(gate, admitted, route, span)
            if refusal is not None:
                return await _send(send, *self._own(scope, refusal))
        try:
            response, refusal = await self._upstream(scope["method"], url, headers, body() if has_body else None,
                                                     route, span, deadline)
            if response is None:
                if refusal is not None:
                    await _send(send, *self._own(scope, refusal))
                return
            done = False
            try:
                out_headers = [(k.lower(), v) for k, v in _passed_on(response)]
                self._answered(response, span)
                content, refusal = await self._whole_body(response, route, span)
                if refusal is not None:
                    return await _send(send, *self._own(scope, refusal))
                await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
                if content is not None:  # a small answer, read whole: one message (one write to the client)
                    await send({"type": "http.response.body", "body": content, "more_body": False})
                    done = True
                    return
                # raw bytes: a compressed body stays compressed, Content-Length stays true
                async for chunk in response.content.iter_any():
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                done = True
            finally:
                # a response not read to its end never goes back to the pool half-read
                response.release() if done else response.close()
        finally:
            gate.leave()   # once its answer is through, or abandoned: the next in line goes on

    # -- the same, without ASGI --------------------------------------------------------------------

    def aiohttp_handler(self, fallback):
        """An aiohttp low-level handler for the gateway's common case: a request without a body
        (no Content-Length, no Transfer-Encoding) that :meth:`_resolve` forwards. It goes to the
        function without an ASGI scope, messages or :class:`lscloud.asgi.BodyGuard` (none of
        which a bodyless request needs); every other request, and so every refusal the gateway
        decides on (400, 404, 413, the index and ``/docs``), is served by ``fallback``, the ASGI
        app's handler (:func:`lscloud.local.asgi_host.handler_for`). The rules are the same by
        construction: one :meth:`_resolve`, one header pass, one span, one upstream call and
        error mapping."""
        if not self.fast_path:
            return fallback

        async def handle(request):
            if self.client is None:
                # as __call__ does (asgi_host sends no lifespan): handed to the ASGI app instead, every
                # request would take the slow path until one the ASGI app serves had made the client
                await self._startup()
            message_headers = request.headers
            if "Content-Length" in message_headers or "Transfer-Encoding" in message_headers:
                return await fallback(request)
            raw_path, _, query = request.raw_path.partition("?")
            raw, path = raw_path.encode("latin-1"), unquote(raw_path)
            kind, what = self._resolve(path, raw)
            if kind != "forward":
                return await fallback(request)
            sent: list = []
            try:
                return await self._forward_native(request, path, query, *what, sent)
            except asyncio.CancelledError:
                _client_left(request.method, raw)
                raise
            except Exception as exc:  # noqa: BLE001 - as the ASGI app: a problem, unless the answer has begun
                if isinstance(exc, ConnectionResetError):
                    _client_left(request.method, raw)
                    from .asgi_host import nobody_to_answer

                    return nobody_to_answer(request)
                error = _failed(request.method, raw)
                if sent:
                    raise
                return self._own_native(request, error)

        return handle

    async def _forward_native(self, request, path: str, query: str, route: Route, where: paths.RequestPath,
                              sent: list):
        protocol = request.protocol
        peer, sock = protocol.peername, protocol.sockname
        headers, traceparent, tracestate, _ = self._request_headers(request.raw_headers, peer[0] if peer else "",
                                                                    route)
        method = request.method
        span = self._traced(headers, method, path, sock[1] if sock else 0, route, traceparent, tracestate)
        failure = None
        gate = self._gate(route)
        admitted = gate.enter()   # the common case: a counter step, nothing awaited
        try:
            if admitted is True:
                deadline = self._deadline(route)
            else:
                deadline, refusal = await self._queued(gate, admitted, route, span)
                if refusal is not None:
                    return self._own_native(request, refusal)
            try:
                url = self._url(route, where, query.encode("latin-1"))
                response, refusal = await self._upstream(method, url, headers, None, route, span, deadline)
                if response is None:  # (never None for a request without a body: nobody left mid-body)
                    return self._own_native(request, refusal)
                done = False
                try:
                    out_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in _passed_on(response)]
                    self._answered(response, span)
                    content, refusal = await self._whole_body(response, route, span)
                    if refusal is not None:
                        return self._own_native(request, refusal)
                    if content is not None:  # status line, headers and body in one write
                        answer = web.Response(status=response.status, headers=out_headers, body=content)
                        sent.append(answer)
                        await answer.prepare(request)
                        await answer.write_eof()
                        done = True
                        return answer
                    answer = web.StreamResponse(status=response.status, headers=out_headers)
                    sent.append(answer)
                    await answer.prepare(request)
                    async for chunk in response.content.iter_any():
                        if chunk:
                            await answer.write(chunk)
                    await answer.write_eof()
                    done = True
                    return answer
                finally:
                    response.release() if done else response.close()
            finally:
                gate.leave()
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if span is not None:
                self._end_span(span, failure)

    # -- index and docs ----------------------------------------------------------------------------

    async def _health(self) -> list[dict]:
        routes = sorted(self.routes().values(), key=lambda r: r.name)

        async def one(r: Route) -> dict:
            try:
                async with self.client.get(f"http://{self.upstream_host}:{r.port}/health/readiness",
                                           timeout=aiohttp.ClientTimeout(total=2.0)) as resp:
                    healthy, detail = resp.status == 200, (await resp.text(errors="replace"))[:200]
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                healthy, detail = False, type(exc).__name__
            return {"name": r.name, "url": f"/{r.name}/", "openapi": f"/{r.name}/openapi.json", "state": r.state,
                    "healthy": healthy, "readiness": detail}

        return list(await asyncio.gather(*(one(r) for r in routes)))

    async def _index(self, scope, send) -> None:
        functions = await self._health()
        accept = b""
        for k, v in scope["headers"]:
            if k.lower() == b"accept":
                accept = v
        if b"text/html" in accept:
            # Vietnamese first, the English beside it marked as English (screen readers switch voice);
            # the supervisor's states (starting, ready …) are its own English words
            rows = "".join(
                f"<tr><td><a href='/{html.escape(f['name'])}/'>{html.escape(f['name'])}</a></td>"
                f"<td lang='en'>{html.escape(f['state'])}</td><td class={'ok' if f['healthy'] else 'bad'}>"
                f"{_HEALTHY if f['healthy'] else _NOT_READY}</td>"
                f"<td><a href='{html.escape(f['openapi'])}'>openapi.json</a></td></tr>" for f in functions)
            page = _page("Lạng Sơn Cloud — cục bộ", "<p><a href='/docs'>Tài liệu API <span lang='en'>(API docs)</span>"
                                                    "</a></p><table><tr><th>Hàm <span lang='en'>(function)</span></th>"
                                                    "<th>Trạng thái <span lang='en'>(state)</span></th>"
                                                    "<th>Sức khỏe <span lang='en'>(health)</span></th><th>API</th></tr>"
                                                    f"{rows}</table>")
            return await _send(send, 200, [(b"content-type", b"text/html; charset=utf-8")], page)
        body = json.dumps({"functions": functions, "healthy": all(f["healthy"] for f in functions)},
                          ensure_ascii=False).encode()
        await _send(send, 200, [(b"content-type", b"application/json")], body)

    async def _docs(self, scope, send) -> None:
        from . import apidocs

        # a dev token (any role) only to this machine, asked by its own name: not to the LAN when the
        # cloud listens on 0.0.0.0, nor to a web page whose name was rebound to 127.0.0.1
        tokens = self.dev_tokens if _from_this_machine(scope) else None
        found = apidocs.answer(scope["path"], scope.get("query_string", b""), sorted(self.routes()), tokens)
        if found is None:
            found = apidocs.not_found()
        await _send(send, *found)


_LOOPBACK_NAMES = frozenset(("localhost", "127.0.0.1", "::1"))

DEV_TOKEN_ROUTES = {"identity": ("v1", "tokens")}
"""The local cloud's dev sign-in (every path under ``/identity/v1/tokens/``): served only to a
request from this machine that names it (:func:`_from_this_machine`), else 404, as ``/docs/token``."""


def _dev_token_route(where: paths.RequestPath) -> bool:
    prefix = DEV_TOKEN_ROUTES.get(where.function)
    if prefix is None:
        return False
    # as RequestPath.internal: case and ";params" are ignored, which some servers ignore too
    segments = [seg.split(";", 1)[0].lower() for seg in where.rest.strip("/").split("/")]
    return tuple(segments[:len(prefix)]) == prefix


def _from_this_machine(scope) -> bool:
    """Whether the request came from a loopback address and names a loopback host."""
    client = (scope.get("client") or ("",))[0]
    try:
        if not ipaddress.ip_address(client).is_loopback:
            return False
    except ValueError:
        return False
    host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"host"), "")
    name = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
    return name.lower().rstrip(".") in _LOOPBACK_NAMES


_HEALTHY = "hoạt động tốt <span lang='en'>(healthy)</span>"
_NOT_READY = "chưa sẵn sàng <span lang='en'>(not ready)</span>"
# an icon in the page itself: the browser asks no /favicon.ico (a 404 in every console)
_FAVICON = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
            "%3Crect width='16' height='16' rx='3' fill='%231b4332'/%3E%3C/svg%3E")


def _page(title: str, content: str) -> bytes:
    return (f"<!doctype html><html lang='vi'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<link rel='icon' href=\"{_FAVICON}\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;text-align:left}"
            "table{display:block;overflow-x:auto}.ok{color:#080}.bad{color:#b00}"
            "@media (max-width:600px){body{margin:1em}td,th{padding:.3em .4em}}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{content}</body></html>").encode()


class _Gate:
    """One function's admission, as Knative's queue-proxy breaker holds a replica: at most
    ``concurrency`` requests sent on at once, up to :data:`QUEUE_DEPTH_PER_SLOT` times as many
    waiting in line behind them (first come, first served), any other refused at once.

    Counters on the gateway's one event loop (no lock): a request let in at once, and one leaving,
    costs a few integer steps; only one that must wait makes a future (and a timer for its
    deadline). ``concurrency`` 0 lets every request in (Knative builds no breaker then)."""

    __slots__ = ("concurrency", "room", "running", "pending", "_line")

    def __init__(self, concurrency: int):
        self.concurrency = concurrency
        self.room = concurrency * (1 + QUEUE_DEPTH_PER_SLOT)   # sent on + waiting, at most
        self.running = 0   # sent on and not yet through
        self.pending = 0   # sent on + waiting
        self._line: collections.deque[asyncio.Future] = collections.deque()

    def enter(self) -> bool | None:
        """True: go on now (then :meth:`leave` once through); None: wait in line (:meth:`turn`);
        False: refused, the line is full."""
        if (self.running < self.concurrency and self.pending == self.running) or not self.concurrency:
            self.running += 1
            self.pending += 1
            return True
        if self.pending >= self.room:
            return False
        self.pending += 1
        return None

    async def turn(self, deadline: float) -> bool:
        """Wait in line: True once a request ahead has left its slot to this one (then
        :meth:`leave` once through), False when ``deadline`` (loop time) came first. A waiter
        cancelled (its client left) gives up its place, or passes on a turn it was just given."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        line = self._line
        if len(line) >= 2 * self.room:
            # those that left without a turn stay until a leave() reaches them: while the function
            # hangs none does, so they are dropped here now and then (amortised O(1) a request)
            self._line = line = collections.deque(w for w in line if not w.done())
        line.append(waiter)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            admitted = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.leave()
            else:
                self.pending -= 1
            raise
        finally:
            timer.cancel()
        if not admitted:
            self.pending -= 1
        return admitted

    def leave(self) -> None:
        """A request let in is through: its slot goes to the first still waiting, if any."""
        self.pending -= 1
        line = self._line
        while line:
            waiter = line.popleft()
            if not waiter.done():   # (skipped: one whose time ran out or whose client left)
                waiter.set_result(True)
                return
        self.running -= 1


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(False)


def _status_on(span, status: int) -> None:
    """Record the answer's ``status`` on the gateway's SERVER span: a 5xx, the function's or the
    gateway's own (502, 503, 504), makes it an ERROR span with ``error.type`` the status code, as
    the HTTP semantic conventions ask of a server span; a 4xx is the caller's and leaves it unset."""
    if span is None:
        return
    if status >= 500:
        span.set_attributes({"http.response.status_code": status, "error.type": str(status)})
        span.set_status(_trace.Status(_trace.StatusCode.ERROR))
    else:
        span.set_attribute("http.response.status_code", status)


def _timed_out(route: Route) -> tuple[int, list, bytes]:
    return problem(504, "gateway-timeout", "Function timed out", f"{route.name} did not answer in time.",
                   "Hàm phản hồi quá thời gian", f"Hàm {route.name} không phản hồi kịp thời.")


class _ClientGone(Exception):
    """The client disconnected before its request body ended."""


class _BodyTooLarge(Exception):
    """A chunked request body grew past the gateway's cap while being forwarded."""


def _raw_path(scope) -> bytes:
    raw = scope.get("raw_path")
    if raw:
        return raw.split(b"?", 1)[0]
    return quote(scope.get("path", ""), safe="/:@!$&'()*+,;=-._~").encode("ascii")


def _query(query: bytes) -> bytes:
    """The query string as sent, with the bytes a URL cannot carry raw (controls, space, '#',
    non-ASCII) percent-encoded: the same query to any server that decodes it."""
    return _UNSAFE_IN_QUERY.sub(lambda m: b"%%%02X" % m.group(0)[0], query)


def _passed_on(response) -> list[tuple[bytes, bytes]]:
    """The upstream answer's headers the client gets (both ways in)."""
    return [(k, v) for k, v in response.raw_headers if k.lower() not in _NOT_PASSED_ON]


def _failed(method, raw_path: bytes) -> tuple[int, list, bytes]:
    """Log the error being handled; the problem that answers it (when nothing was sent yet)."""
    # the function's name only: the rest of a path may hold a personal identifier
    log.exception("gateway error on %s /%s/...", method, paths.shown(raw_path).lstrip("/").split("/", 1)[0][:64])
    return problem(500, "gateway-error", "Gateway error", "The gateway failed to handle this request; see its log.",
                   "Lỗi cổng", "Cổng gặp lỗi khi xử lý yêu cầu này.")


def _client_left(method, raw_path: bytes) -> None:
    """Note a client that left before its answer was written: no one to answer, and no fault of the
    gateway's (a caller that gave up under load would otherwise log a traceback per request)."""
    log.debug("client left before its answer on %s /%s/...", method,
              paths.shown(raw_path).lstrip("/").split("/", 1)[0][:64])


def _aiohttp_answer(status: int, headers: list, body: bytes):
    """A problem triple (:func:`problem`) as an aiohttp response."""
    return web.Response(status=status, body=body,
                        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers])


async def _send(send, status: int, headers: list, body: bytes) -> None:
    if not any(k == b"content-length" for k, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RoutesFile:
    """The routing table the supervisor keeps in a file (``<state dir>/routes.json``), as a
    ``routes`` callable for :class:`Gateway`.

    The gateway runs in its own process (:mod:`lscloud.local.gateway_process`): the supervisor
    rewrites the file atomically (``os.replace``) whenever a function's port or state changes, and
    each call here re-reads it only if it changed (one ``stat`` per request), so a restart is
    answered 503 and a new port is routed from the next request on. An unreadable or missing file
    keeps the table last read (a file being replaced is never half-read: the rename is atomic).
    """

    def __init__(self, path):
        self.path = str(path)
        self._seen: tuple | None = None
        self._routes: dict[str, Route] = {}

    def __call__(self) -> dict[str, Route]:
        try:
            st = os.stat(self.path)
        except OSError:
            return self._routes
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            try:
                with open(self.path, "rb") as f:
                    data = json.loads(f.read())
                self._routes = {name: Route(name, int(r["port"]), str(r["state"]),
                                            int(r.get("concurrency", PLATFORM_CONTAINER_CONCURRENCY)),
                                            float(r.get("timeout_s", PLATFORM_TIMEOUT_S)))
                                for name, r in data["functions"].items()}
                self._seen = seen
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("routing table %s not read: %s", self.path, type(exc).__name__)
        return self._routes


class GatewayServer:
    """:class:`Gateway` served (:mod:`lscloud.local.asgi_host`) on its own event loop in a thread (tests and tools).

    The local cloud runs the gateway in a process of its own instead
    (:mod:`lscloud.local.gateway_process`): it proxies every request, so it must not share a GIL
    with the supervisor's dispatcher, relay and clock.
    """

    def __init__(self, app: Gateway, host: str, port: int):
        self.app, self.host, self.port = app, host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 15.0) -> "GatewayServer":
        self._thread = threading.Thread(target=self._run, name="lscloud-gateway", daemon=True)
        self._thread.start()
        self._started.wait(timeout)
        if self._error is not None:
            raise RuntimeError(f"gateway could not start on {self.host}:{self.port}: {self._error}")
        return self

    def _run(self) -> None:
        from . import asgi_host

        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()

        async def main():
            server = asyncio.ensure_future(asgi_host.serve(self.app, self.host, self.port, self._stop))
            while not server.done():
                from .servers import port_open

                if await asyncio.to_thread(port_open, self.host, self.port):
                    self._started.set()
                    break
                await asyncio.sleep(0.05)
            await server

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
        finally:
            self._started.set()
            self._loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
