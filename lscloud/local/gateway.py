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
restarting), one that drops the connection 502, one that is too slow 504. An answer given before
the client's body was read closes the client connection after draining the body
(:class:`lscloud.asgi.BodyGuard`), and an upstream connection is never returned to the pool
half-read (httpcore closes one whose request did not complete; functions close theirs after an
early answer).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

import aiohttp
import yarl

from opentelemetry import context as _context
from opentelemetry import trace as _trace

from .. import asgi
from . import paths

# hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, never forwarded
_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"proxy-connection"}


from .raw_problems import problem

log = logging.getLogger("lscloud.gateway")

WHOLE_BODY_BYTES = 256 * 1024
"""An upstream answer up to this size (by its Content-Length) is read whole and forwarded in one
write; a larger one, or one of unknown length, is streamed chunk by chunk."""

_ROOT = _context.Context()  # a request with no traceparent starts a trace (never the task's context)


@dataclass
class Route:
    """What the gateway knows of one function (kept current by the supervisor)."""

    name: str
    port: int
    state: str = "starting"  # starting | ready | crashed | restarting | stopped


class Gateway:
    """The ASGI app. ``routes`` returns the current routing table (name -> Route)."""

    def __init__(self, routes: Callable[[], dict[str, Route]], *, upstream_host: str = "127.0.0.1",
                 read_timeout_s: float = 60.0, max_body_bytes: int | None = None, dev_tokens=None):
        """``max_body_bytes``: the largest request body forwarded (default: the largest any route
        takes by default settings, ``max(max_body_bytes, blob_max_bytes)``). ``dev_tokens``: an
        :class:`lscloud.local.apidocs.DevTokens` for ``/docs/token`` (local cloud only; ``None``: no route)."""
        self.routes = routes
        self.dev_tokens = dev_tokens
        self.upstream_host = upstream_host
        self.read_timeout_s = read_timeout_s
        if max_body_bytes is None:
            from ..config import Settings

            defaults = Settings()
            max_body_bytes = max(defaults.max_body_bytes, defaults.blob_max_bytes)
        self.max_body_bytes = max_body_bytes
        self.client: aiohttp.ClientSession | None = None
        self._telemetry = None
        self._tracer = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def _startup(self) -> None:
        # one pooled client for every upstream: keep-alive connections to each function. aiohttp
        # (its C response parser) costs about a tenth of httpx's CPU per proxied request, and the
        # proxy's CPU is what the gateway takes off a function's throughput.
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, limit_per_host=0, keepalive_timeout=30,
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
        except Exception:  # noqa: BLE001 - never a bare 500: the answer is a problem, the cause is logged
            # the function's name only: the rest of a path may hold a personal identifier
            log.exception("gateway error on %s /%s/...", scope.get("method"),
                          paths.shown(_raw_path(scope)).lstrip("/").split("/", 1)[0][:64])
            if not guard.started:
                await _send(send, *problem(500, "gateway-error", "Gateway error", "The gateway failed to handle "
                                           "this request; see its log.", "Lỗi cổng",
                                           "Cổng gặp lỗi khi xử lý yêu cầu này."))

    async def _route(self, scope, receive, send) -> None:
        path = scope["path"]
        if path in ("/", ""):
            return await self._index(scope, send)
        if path == "/docs" or path.startswith("/docs/"):
            return await self._docs(scope, send)
        raw_path = _raw_path(scope)
        try:
            where = paths.parse(raw_path)
        except paths.MalformedPath as exc:
            shown = paths.shown(raw_path)
            return await _send(send, *problem(
                400, "malformed-path", "Malformed path", f"The path {shown!r} is not accepted: {exc}.",
                "Đường dẫn không hợp lệ", f"Đường dẫn {shown!r} không được chấp nhận.",
                errors=[{"field": "path", "message": str(exc)}]))
        name = where.function
        route = self.routes().get(name)
        if route is None:
            return await _send(send, *problem(
                404, "function-not-found", "No such function", f"No function named {name!r} runs in this cloud; "
                "see / for the list.", "Không có hàm này", f"Không có hàm nào tên {name!r}; xem danh sách tại /."))
        if where.internal:
            return await _send(send, *problem(
                404, "not-found", "Not found", "Events are delivered to functions by the event dispatcher and "
                "health is probed by the platform, not through the gateway.", "Không tìm thấy",
                "Sự kiện được chuyển tới hàm qua bộ điều phối sự kiện và tình trạng của hàm do nền tảng kiểm tra, "
                "không qua cổng."))
        length = asgi.content_length(scope)
        if length is not None and length > self.max_body_bytes:
            return await _send(send, *self._too_large())
        await self._proxy(scope, receive, send, route, where)

    def _too_large(self) -> tuple[int, list, bytes]:
        return problem(413, "payload-too-large", "Request body too large",
                       f"The request body exceeds {self.max_body_bytes} bytes.", "Nội dung yêu cầu quá lớn",
                       f"Nội dung yêu cầu vượt quá {self.max_body_bytes} byte.",
                       errors=[{"field": "body", "message": f"at most {self.max_body_bytes} bytes"}])

    # -- proxy -------------------------------------------------------------------------------------

    async def _proxy(self, scope, receive, send, route: Route, where: paths.RequestPath) -> None:
        # one pass over the request's headers: what is forwarded (as aiohttp takes them), and what
        # the gateway itself reads (the caller's trace context, Host, X-Forwarded-For, a body)
        headers: list[tuple[str, str]] = []
        forwarded_for = host = traceparent = tracestate = None
        has_body = False
        for k, v in scope["headers"]:
            k = k.lower()
            if k in _HOP:
                if k == b"transfer-encoding":
                    has_body = True
                continue
            if k == b"x-forwarded-for":
                forwarded_for = v
                continue
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
        client_addr = (scope.get("client") or ("", 0))[0]
        xff = (forwarded_for.decode("latin-1") + ", " if forwarded_for else "") + client_addr
        headers += [("x-forwarded-for", xff), ("x-forwarded-proto", scope.get("scheme", "http")),
                    ("x-forwarded-prefix", "/" + route.name)]
        if host:
            headers.append(("x-forwarded-host", host.decode("latin-1")))

        span = self._server_span(scope, route, traceparent, tracestate)
        if span is None:
            # no tracing: the caller's trace context goes on as it came
            if traceparent is not None:
                headers.append(("traceparent", traceparent.decode("latin-1")))
            if tracestate is not None:
                headers.append(("tracestate", tracestate.decode("latin-1")))
            return await self._forward(scope, receive, send, route, where, headers, has_body, None)
        # the function's parent is the gateway's span (never made the task's current span: nothing
        # else in the gateway records spans, and attaching and detaching a context costs per request)
        carrier: dict[str, str] = {}
        try:
            self._telemetry.inject(carrier, context=_trace.set_span_in_context(span))
        except Exception:  # noqa: BLE001 - tracing must never break routing
            carrier = {}
        headers += [(k.lower(), v) for k, v in carrier.items()]
        try:
            await self._forward(scope, receive, send, route, where, headers, has_body, span)
        except BaseException as exc:
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(_trace.Status(_trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            span.end()

    def _server_span(self, scope, route: Route, traceparent: bytes | None, tracestate: bytes | None):
        """The gateway's SERVER span for a request, child of the caller's ``traceparent`` if any
        (None when telemetry is off or fails: tracing never breaks routing)."""
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
            method = scope["method"]
            return self._tracer.start_span(
                f"{method} /{route.name}", context=parent, kind=_trace.SpanKind.SERVER,
                attributes={"http.request.method": method, "url.path": scope["path"],
                            "http.route": f"/{route.name}/*", "lscloud.function": route.name,
                            "server.port": (scope.get("server") or ("", 0))[1] or 0})
        except Exception:  # noqa: BLE001 - tracing must never break routing
            return None

    async def _forward(self, scope, receive, send, route, where, headers: list[tuple[str, str]], has_body: bool,
                       span) -> None:
        # byte for byte what the client sent (paths.parse accepted it as it is)
        target = where.raw_rest + (b"?" + _query(scope.get("query_string", b"")) if scope.get("query_string") else b"")
        url = yarl.URL(f"http://{self.upstream_host}:{route.port}{target.decode('ascii')}", encoded=True)
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

        def answer(status: int, *args, **kwargs):
            if span is not None:
                span.set_attribute("http.response.status_code", status)
            return _send(send, *problem(status, *args, **kwargs))

        try:
            response = await self.client.request(
                scope["method"], url, headers=headers, data=body() if has_body else None, allow_redirects=False, compress=None)
        except aiohttp.ClientConnectionError as exc:
            cause = exc.__cause__
            if isinstance(cause, _ClientGone):
                return None     # nobody to answer; the function saw the request abandoned, not ended
            if isinstance(cause, _BodyTooLarge):
                if span is not None:
                    span.set_attribute("http.response.status_code", 413)
                return await _send(send, *self._too_large())
            if isinstance(exc, asyncio.TimeoutError):   # ServerTimeoutError: nothing read in time
                return await answer(504, "gateway-timeout", "Function timed out", f"{route.name} did not answer in time.",
                                    "Hàm phản hồi quá thời gian", f"Hàm {route.name} không phản hồi kịp thời.")
            if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)):
                # nothing listens, or it closed the connection without a word: a restart, or a crash
                if route.state in ("starting", "restarting", "crashed"):
                    return await answer(503, "function-unavailable", "Function unavailable",
                                        f"{route.name} is {route.state}; try again shortly.",
                                        "Hàm tạm thời không sẵn sàng",
                                        f"Hàm {route.name} đang khởi động lại; vui lòng thử lại sau.",
                                        [(b"retry-after", b"2")])
                return await answer(502, "bad-gateway", "Function not reachable",
                                    f"{route.name} did not answer ({type(exc).__name__}).",
                                    "Không kết nối được tới hàm", f"Hàm {route.name} không phản hồi.")
            return await answer(502, "bad-gateway", "Function dropped the connection",
                                f"{route.name} closed the connection before answering ({type(exc).__name__}).",
                                "Hàm ngắt kết nối", f"Hàm {route.name} ngắt kết nối trước khi trả lời.")
        except asyncio.TimeoutError:
            return await answer(504, "gateway-timeout", "Function timed out", f"{route.name} did not answer in time.",
                                "Hàm phản hồi quá thời gian", f"Hàm {route.name} không phản hồi kịp thời.")
        except aiohttp.ClientError as exc:  # an answer that is not HTTP, a payload cut short
            return await answer(502, "bad-gateway", "Function dropped the connection",
                                f"{route.name} closed the connection before answering ({type(exc).__name__}).",
                                "Hàm ngắt kết nối", f"Hàm {route.name} ngắt kết nối trước khi trả lời.")
        done = False
        try:
            # the gateway's server writes its own date/server headers
            out_headers = [(k.lower(), v) for k, v in response.raw_headers
                           if k.lower() not in _HOP and k.lower() not in (b"date", b"server")]
            status = response.status
            if span is not None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(_trace.Status(_trace.StatusCode.ERROR))
            length = response.content_length
            if length is not None and length <= WHOLE_BODY_BYTES:
                # a small answer is read whole and sent in one message (one write to the client)
                try:
                    content = await response.read()
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # cut short: nothing was sent yet
                    return await answer(502, "bad-gateway", "Function dropped the connection",
                                        f"{route.name} closed the connection while answering ({type(exc).__name__}).",
                                        "Hàm ngắt kết nối", f"Hàm {route.name} ngắt kết nối khi đang trả lời.")
                await send({"type": "http.response.start", "status": status, "headers": out_headers})
                await send({"type": "http.response.body", "body": content, "more_body": False})
                done = True
                return
            await send({"type": "http.response.start", "status": status, "headers": out_headers})
            # raw bytes: a compressed body stays compressed, Content-Length stays true
            async for chunk in response.content.iter_any():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            done = True
        finally:
            # a response not read to its end never goes back to the pool half-read
            response.release() if done else response.close()

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
            rows = "".join(
                f"<tr><td><a href='/{html.escape(f['name'])}/'>{html.escape(f['name'])}</a></td>"
                f"<td>{html.escape(f['state'])}</td><td class={'ok' if f['healthy'] else 'bad'}>"
                f"{'healthy' if f['healthy'] else 'not ready'}</td>"
                f"<td><a href='{html.escape(f['openapi'])}'>openapi.json</a></td></tr>" for f in functions)
            page = _page("Lạng Sơn Cloud — local", f"<p><a href='/docs'>API docs</a></p><table><tr><th>function</th>"
                                                   f"<th>state</th><th>health</th><th>API</th></tr>{rows}</table>")
            return await _send(send, 200, [(b"content-type", b"text/html; charset=utf-8")], page)
        body = json.dumps({"functions": functions, "healthy": all(f["healthy"] for f in functions)},
                          ensure_ascii=False).encode()
        await _send(send, 200, [(b"content-type", b"application/json")], body)

    async def _docs(self, scope, send) -> None:
        from . import apidocs

        found = apidocs.answer(scope["path"], scope.get("query_string", b""), sorted(self.routes()), self.dev_tokens)
        if found is None:
            found = apidocs.not_found()
        await _send(send, *found)


def _page(title: str, content: str) -> bytes:
    return (f"<!doctype html><html lang='vi'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;text-align:left}"
            ".ok{color:#080}.bad{color:#b00}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{content}</body></html>").encode()


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
    return re.sub(rb"[^\x21-\x7e]|#", lambda m: b"%%%02X" % m.group(0)[0], query)


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
                self._routes = {name: Route(name, int(r["port"]), str(r["state"]))
                                for name, r in data["functions"].items()}
                self._seen = seen
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("routing table %s not read: %s", self.path, type(exc).__name__)
        return self._routes


def write_routes(path, routes: dict[str, Route]) -> None:
    """Write the routing table :class:`RoutesFile` reads (atomically: a reader sees the old or the new)."""
    data = {"functions": {r.name: {"port": r.port, "state": r.state} for r in routes.values()}}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


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
