"""The local cloud's front door: one port that routes ``/<function>/...`` to each function.

It plays the part of the cluster's ingress + Knative activator, and nothing more: a plain
streaming reverse proxy (method, path, query, headers and body passed through, hop-by-hop
headers dropped, ``X-Forwarded-*`` added). Two things it adds:

- ``/`` lists the functions and their readiness (JSON, or HTML for a browser) and ``/docs``
  links every function's ``openapi.json`` (no external assets: the machine may be offline);
- when ``lscloud.telemetry`` is set up, a SERVER span per request and a ``traceparent`` to
  the function, so a trace starts where the request entered the cloud.

``/<function>/events`` is refused from outside: events reach functions only through the
dispatcher, as with Knative Eventing. Errors are ``application/problem+json``.
"""

from __future__ import annotations

import asyncio
import html
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import httpx

# hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, never forwarded
_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"proxy-connection"}


from lscloud.problems import TYPE_BASE as _TYPE_BASE  # the functions' own problem type URIs


@dataclass
class Route:
    """What the gateway knows of one function (kept current by the supervisor)."""

    name: str
    port: int
    state: str = "starting"  # starting | ready | crashed | restarting | stopped


def problem(status: int, type_: str, title: str, detail: str, title_vi: str, detail_vi: str,
            extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> tuple[int, list, bytes]:
    body = json.dumps({"type": _TYPE_BASE + type_, "title": title, "status": status,
                       "detail": detail, "title_vi": title_vi, "detail_vi": detail_vi, "errors": []},
                      ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
               *extra_headers]
    return status, headers, body


class Gateway:
    """The ASGI app. ``routes`` returns the current routing table (name -> Route)."""

    def __init__(self, routes: Callable[[], dict[str, Route]], *, upstream_host: str = "127.0.0.1",
                 read_timeout_s: float = 60.0):
        self.routes = routes
        self.upstream_host = upstream_host
        self.read_timeout_s = read_timeout_s
        self.client: httpx.AsyncClient | None = None
        self._telemetry = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def _startup(self) -> None:
        # one pooled client for every upstream: keep-alive connections to each function
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.read_timeout_s, connect=2.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30),
            follow_redirects=False, trust_env=False)
        from lscloud import telemetry

        self._telemetry = telemetry

    async def _shutdown(self) -> None:
        if self.client is not None:
            await self.client.aclose()
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
        path = scope["path"]
        if path in ("/", ""):
            return await self._index(scope, send)
        if path in ("/docs", "/docs/"):
            return await self._docs(send)
        name, _, rest = path.lstrip("/").partition("/")
        rest = "/" + rest
        route = self.routes().get(name)
        if route is None:
            return await _send(send, *problem(
                404, "function-not-found", "No such function", f"No function named {name!r} runs in this cloud; "
                "see / for the list.", "Không có hàm này", f"Không có hàm nào tên {name!r}; xem danh sách tại /."))
        if rest.rstrip("/") == "/events" or rest.startswith("/events/"):
            return await _send(send, *problem(
                404, "not-found", "Not found", "Events are delivered to functions by the event dispatcher, "
                "not through the gateway.", "Không tìm thấy", "Sự kiện được chuyển tới hàm qua bộ điều phối sự kiện, "
                "không qua cổng."))
        await self._proxy(scope, receive, send, route, rest)

    # -- proxy -------------------------------------------------------------------------------------

    async def _proxy(self, scope, receive, send, route: Route, rest: str) -> None:
        telemetry = self._telemetry
        span_cm = None
        in_headers = [(k.lower(), v) for k, v in scope["headers"]]
        if telemetry is not None:
            try:
                carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in in_headers}
                from opentelemetry.trace import SpanKind

                span_cm = telemetry.tracer().start_as_current_span(
                    f"{scope['method']} /{route.name}", kind=SpanKind.SERVER, context=telemetry.extract(carrier),
                    attributes={"http.request.method": scope["method"], "url.path": scope["path"],
                                "http.route": f"/{route.name}/*", "lscloud.function": route.name,
                                "server.port": (scope.get("server") or ("", 0))[1] or 0})
            except Exception:  # noqa: BLE001 - tracing must never break routing
                span_cm = None
        if span_cm is None:
            return await self._forward(scope, receive, send, route, rest, in_headers, None)
        with span_cm as span:
            await self._forward(scope, receive, send, route, rest, in_headers, span)

    async def _forward(self, scope, receive, send, route, rest, in_headers, span) -> None:
        client_addr = (scope.get("client") or ("", 0))[0]
        headers: list[tuple[bytes, bytes]] = []
        forwarded_for = None
        host = None
        for k, v in in_headers:
            if k in _HOP:
                continue
            if k == b"x-forwarded-for":
                forwarded_for = v
                continue
            if k == b"host":
                host = v
            if span is not None and k in (b"traceparent", b"tracestate"):
                continue  # replaced by the gateway span's context below
            headers.append((k, v))
        xff = (forwarded_for + b", " if forwarded_for else b"") + client_addr.encode()
        headers += [(b"x-forwarded-for", xff), (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
                    (b"x-forwarded-prefix", f"/{route.name}".encode())]
        if host:
            headers.append((b"x-forwarded-host", host))
        if span is not None:
            carrier: dict[str, str] = {}
            try:
                self._telemetry.inject(carrier)
            except Exception:  # noqa: BLE001
                carrier = {}
            headers += [(k.lower().encode(), v.encode()) for k, v in carrier.items()]

        url = httpx.URL(scheme="http", host=self.upstream_host, port=route.port, path=rest,
                        query=scope.get("query_string", b""))
        has_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in in_headers)

        async def body():
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                more = message.get("more_body", False)

        request = self.client.build_request(scope["method"], url, headers=headers,
                                            content=body() if has_body else None)
        try:
            response = await self.client.send(request, stream=True)
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            starting = route.state in ("starting", "restarting", "crashed")
            if span is not None:
                span.set_attribute("http.response.status_code", 503 if starting else 502)
            if starting:
                return await _send(send, *problem(
                    503, "function-unavailable", "Function unavailable",
                    f"{route.name} is {route.state}; try again shortly.", "Hàm tạm thời không sẵn sàng",
                    f"Hàm {route.name} đang khởi động lại; vui lòng thử lại sau.", [(b"retry-after", b"2")]))
            return await _send(send, *problem(
                502, "bad-gateway", "Function not reachable", f"{route.name} did not answer ({type(exc).__name__}).",
                "Không kết nối được tới hàm", f"Hàm {route.name} không phản hồi."))
        except httpx.TimeoutException:
            if span is not None:
                span.set_attribute("http.response.status_code", 504)
            return await _send(send, *problem(
                504, "gateway-timeout", "Function timed out", f"{route.name} did not answer in time.",
                "Hàm phản hồi quá thời gian", f"Hàm {route.name} không phản hồi kịp thời."))
        try:
            # the gateway's server writes its own date/server headers
            out_headers = [(k.lower(), v) for k, v in response.headers.raw
                           if k.lower() not in _HOP and k.lower() not in (b"date", b"server")]
            if span is not None:
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code >= 500:
                    from opentelemetry.trace import Status, StatusCode

                    span.set_status(Status(StatusCode.ERROR))
            await send({"type": "http.response.start", "status": response.status_code, "headers": out_headers})
            # raw bytes: a compressed body stays compressed, Content-Length stays true
            async for chunk in response.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    # -- index and docs ----------------------------------------------------------------------------

    async def _health(self) -> list[dict]:
        routes = sorted(self.routes().values(), key=lambda r: r.name)

        async def one(r: Route) -> dict:
            try:
                resp = await self.client.get(f"http://{self.upstream_host}:{r.port}/health/readiness", timeout=2.0)
                healthy, detail = resp.status_code == 200, resp.text[:200]
            except httpx.HTTPError as exc:
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

    async def _docs(self, send) -> None:
        names = sorted(self.routes())
        # links work without JavaScript; the script adds each function's operations
        index = "".join(f"<li><a href='#fn-{html.escape(n)}'>{html.escape(n)}</a> — "
                        f"<a href='/{html.escape(n)}/openapi.json'>/{html.escape(n)}/openapi.json</a></li>" for n in names)
        page = (_DOCS_PAGE.replace("__INDEX__", index)
                .replace("__FUNCTIONS__", json.dumps(names).replace("</", "<\\/")).encode())
        await _send(send, 200, [(b"content-type", b"text/html; charset=utf-8")], page)


_DOCS_PAGE = (Path(__file__).with_name("docs.html")).read_text(encoding="utf-8")


def _page(title: str, content: str) -> bytes:
    return (f"<!doctype html><html lang='vi'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;text-align:left}"
            ".ok{color:#080}.bad{color:#b00}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{content}</body></html>").encode()


async def _send(send, status: int, headers: list, body: bytes) -> None:
    if not any(k == b"content-length" for k, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GatewayServer:
    """Hypercorn serving :class:`Gateway` on its own event loop in a thread of the supervisor.

    In-process (rather than a child process) because the gateway needs the supervisor's live
    view of each function (its port, and whether it is restarting, to answer 503 instead of
    502), and one process fewer is one fewer thing to orphan. Proxying is I/O-bound, so the
    thread does not compete with the supervisor's mostly idle monitor loop.
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
        import hypercorn.asyncio
        import hypercorn.config

        cfg = hypercorn.config.Config()
        cfg.bind = [f"{self.host}:{self.port}"]
        cfg.accesslog = None
        cfg.errorlog = None
        cfg.keep_alive_timeout = 75
        cfg.graceful_timeout = 5
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()

        async def main():
            # a shutdown_trigger keeps hypercorn from installing signal handlers (main thread only)
            server = asyncio.ensure_future(hypercorn.asyncio.serve(self.app, cfg, shutdown_trigger=self._stop.wait))
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
