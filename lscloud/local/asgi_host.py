"""A small HTTP/1.1 server for one ASGI app (the gateway), on aiohttp's low-level server.

The gateway is a proxy: its whole cost per request is parsing a request, writing one upstream and
parsing the answer. hypercorn's pure-Python h11 parsing and its separate header and body writes
were more CPU per request than the function behind it; aiohttp's server parses in C and writes
headers with the first body bytes. The app stays a plain ASGI app (``scope``, ``receive``,
``send``), so every refusal and the :class:`lscloud.asgi.BodyGuard` rules hold unchanged:

- ``raw_path`` is the request target exactly as sent (up to ``?``), ``query_string`` the rest;
- a body its sender abandons is a ``http.disconnect`` before the body ended (the guard turns it
  into :class:`lscloud.asgi.BodyIncomplete`);
- a response with ``Connection: close`` closes the connection after it is sent;
- a client that disconnects cancels its request's handler (aiohttp's ``handler_cancellation``):
  the gateway then gives up the request's place in line or abandons its upstream request, rather
  than wait for an answer nobody will read and hold a function's slot for it;
- an answer given in one body message goes out in one write (status line, headers and body);
- what aiohttp cannot parse is answered as a function answers it (:class:`_RefusingHandler`), and
  every answer names the gateway without a version (:data:`SERVER`, written by :class:`_Request`).

An app may serve its common case without ASGI (the gateway's bodyless forwards,
:meth:`lscloud.local.gateway.Gateway.aiohttp_handler`); what it does not serve itself comes here.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import unquote

from aiohttp import HttpVersion10, HttpVersion11, hdrs, web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from ..function_server import MAX_HEAD_BYTES, head_too_large, malformed_request
from ..problems import MEDIA_TYPE, Problem

log = logging.getLogger("lscloud.gateway")

_ASGI = {"version": "3.0", "spec_version": "2.3"}

SERVER = "lscloud-gateway"
"""The ``Server`` header of every answer. aiohttp writes its own name and version when an answer
has none (``Python/3.11 aiohttp/3.14.5``), which tells a scanner which advisories to try; the
functions send none, and in the cluster Kourier names itself."""
_VERSIONS = {HttpVersion11: "1.1", HttpVersion10: "1.0"}


def _response_headers(raw) -> tuple[list[tuple[str, str]], bool]:
    """An ASGI response's headers for aiohttp (str pairs, repeats kept), and whether it asks to
    close the connection (``Connection`` itself is the server's to write)."""
    headers, close = [], False
    for k, v in raw:
        name = k.decode("latin-1")
        if name.lower() == "connection":
            close = close or b"close" in v.lower()
            continue
        headers.append((name, v.decode("latin-1")))
    return headers, close


def handler_for(app):
    """An aiohttp low-level handler that runs ``app`` (ASGI 3) for each request."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        target = request.raw_path
        raw_path, _, query = target.partition("?")
        # the connection's addresses, asked of the socket once per connection (aiohttp caches them)
        protocol = request.protocol
        peer, sock = protocol.peername, protocol.sockname
        version = request.version
        scope = {
            "type": "http", "asgi": _ASGI,
            "http_version": _VERSIONS.get(version) or f"{version.major}.{version.minor}",
            "method": request.method, "scheme": "http", "root_path": "",
            "path": unquote(raw_path), "raw_path": raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": [(k.lower(), v) for k, v in request.raw_headers],
            "client": tuple(peer[:2]) if peer else None, "server": tuple(sock[:2]) if sock else None,
        }
        content = request.content
        ended = False

        async def receive():
            nonlocal ended
            if ended:
                return {"type": "http.disconnect"}
            try:
                chunk = await content.readany()
            except Exception:  # noqa: BLE001 - the connection broke mid-body (reset, payload error)
                ended = True
                return {"type": "http.disconnect"}
            if not chunk and not content.is_eof():
                ended = True
                return {"type": "http.disconnect"}
            more = not content.is_eof()
            if not more:
                ended = True
            return {"type": "http.request", "body": chunk, "more_body": more}

        response: web.StreamResponse | None = None
        start: dict | None = None

        async def send(message):
            nonlocal response, start
            kind = message["type"]
            if kind == "http.response.start":
                start = message
                return
            if kind != "http.response.body" or start is None:
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if response is None:
                headers, close = _response_headers(start.get("headers", ()))
                if more:
                    response = web.StreamResponse(status=start["status"], headers=headers)
                else:
                    # the whole answer in one message: status line, headers and body in one write
                    response = web.Response(status=start["status"], headers=headers, body=body)
                    body = b""
                if close:
                    response.force_close()
                await response.prepare(request)
            if body:
                await response.write(body)
            if not more:
                await response.write_eof()

        try:
            await app(scope, receive, send)
        except Exception:  # noqa: BLE001 - the app answers its own errors; this is a last resort
            log.exception("gateway: unhandled error")
            if response is None:
                return web.Response(status=500)
        if response is None:   # nothing was answered (the client left): close without a word
            return nobody_to_answer(request)
        return response

    return handle


class _RefusingHandler(RequestHandler):
    """aiohttp's connection handler, answering what it cannot parse as a function does.

    aiohttp's own answer is ``text/plain`` and repeats the bytes it could not parse ("Invalid method
    encountered: b'...'"), and its log line keeps them with the traceback: a request line can hold a
    citizen's identifier or a token. Here it is the function server's problem (400, or 431 for a
    line or header over :data:`MAX_HEAD_BYTES`), and the log names the error's kind only."""

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:   # an answer has begun: nothing more can be said on it
            raise ConnectionError("an answer was already begun")
        if status == 400:
            problem = head_too_large() if isinstance(exc, LineTooLong) else malformed_request()
            log.warning("gateway: refused a request it could not parse (%s)", type(exc).__name__)
        else:   # aiohttp logged the handler's exception already (its "Unhandled exception")
            problem = Problem(status)
        response = web.Response(status=problem.status, body=problem.body(), content_type=MEDIA_TYPE)
        response.force_close()
        return response


class _Request(web.BaseRequest):
    """aiohttp's request; every answer to it names the gateway (:data:`SERVER`), whichever path
    built the answer (a forward, the ASGI app, a refusal)."""

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        # aiohttp calls this for every answer after it has filled in its own headers and before it
        # writes them: the one place that sees them all
        response.headers[hdrs.SERVER] = SERVER


class _Server(web.Server):
    """aiohttp's low-level server with :class:`_RefusingHandler` for each connection and
    :class:`_Request` for each request."""

    def __call__(self) -> RequestHandler:
        return _RefusingHandler(self, loop=self._loop, **self._kwargs)

    def _make_request(self, message, payload, protocol, writer, task) -> web.BaseRequest:
        return _Request(message, payload, protocol, writer, task, self._loop)


async def serve(app, host: str, port: int, stop: asyncio.Event, *, keepalive_timeout: float = 75.0) -> None:
    """Serve ``app`` on ``host:port`` until ``stop`` is set (then close; open requests get
    ``grace_s`` to finish). An app with an ``aiohttp_handler(asgi_handler)`` method (the gateway)
    is served by the handler it returns, given the ASGI one for what it does not serve itself."""
    handler = handler_for(app)
    native = getattr(app, "aiohttp_handler", None)
    if native is not None:  # the app serves its common case without ASGI, the rest through it
        handler = native(handler)
    # a request head as large as a function takes (aiohttp's own bound is 8,190 bytes a line: a
    # large cookie or token the cluster's gateway forwards would be refused here as text/plain).
    # Handlers are cancelled when their client leaves: without it, a request whose caller gave up
    # still waited for a slot, ran, and logged its unwritable answer as an error.
    server = _Server(handler, keepalive_timeout=keepalive_timeout, access_log=None,
                     handler_cancellation=True, max_line_size=MAX_HEAD_BYTES, max_field_size=MAX_HEAD_BYTES)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, host, port, reuse_address=True, backlog=1024)
    try:
        await stop.wait()
    finally:
        listener.close()
        await server.shutdown(5.0)
        await listener.wait_closed()
        shutdown = getattr(app, "_shutdown", None)
        if shutdown is not None:
            await shutdown()


def nobody_to_answer(request) -> web.StreamResponse:
    """What the aiohttp handler returns for a client that has left: its connection closed, nothing sent."""
    transport = request.transport
    if transport is not None:
        transport.close()
    response = web.Response(status=499)
    response.force_close()
    return response
