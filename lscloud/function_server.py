"""A function served the way Knative's func-python serves it, on uvicorn's C-parsed HTTP/1.1.

func-python's ``func_python.http.serve(new)`` wraps the instance ``new()`` returns in an ASGI app
(:class:`FunctionApp` here) and runs it under hypercorn:

- ``GET /health/liveness`` and ``/health/readiness`` answer from the instance's ``alive()`` and
  ``ready()`` (a bool, or ``(bool, message)``; 200 or 500, ``text/plain``), or 200 ``OK`` without them
  (here ``ready()`` runs off the event loop, one check at a time, a success kept a second);
- the server's lifespan start calls ``start(cfg)`` with a copy of the environment, its end ``stop()``;
- every other request goes to ``handle(scope, receive, send)`` (if it raises: a 500, here a
  problem+json that does not repeat the exception's message as func-python's did);
- it binds ``LISTEN_ADDRESS`` (``func_python.sock.bind``) and stops gracefully on SIGTERM or SIGINT.

All of that stays; only the HTTP server differs. hypercorn parses and serialises HTTP in pure
Python (h11): on the directory's in-memory GET it held the GIL for about 40% of the function's
samples, more than Flask and the function together. uvicorn's httptools protocol parses in C
(llhttp) and keeps its own Python path short: the same function served 1,930-2,160 requests/s
against hypercorn's 1,370-1,650 on one box (both on uvloop). Like hypercorn it still writes a
response's headers and its body with two socket writes; that is most of what the server costs now. Importing uvicorn
also costs a cold start about 14 ms less than ``func_python.http``, which imports hypercorn whether
or not it serves, so this module does not import it (``tests/integration/test_function_server.py``
holds :class:`FunctionApp` to func-python's own app, answer for answer).

What the server adds around the app:

- no ``Server`` header (hypercorn named itself; nobody needs to know) and a ``Date`` header;
- no access log: a path can carry an identifier or a download token, and the runtime's own
  telemetry records every request;
- ``X-Forwarded-*`` are the app's headers to read, never rewritten into the client address;
- 5 s keep-alive; after SIGTERM, 3 s for requests in flight before ``stop()`` (hypercorn's figures);
- a request head (line and headers) over :data:`MAX_HEAD_BYTES` is a 431 problem, and the
  connection is closed; so is one whose head is not in within :data:`HEAD_TIMEOUT_S`;
- a ``start(cfg)`` that raises ends the process (hypercorn logged it and served on without a
  started function, ready to answer with whatever half of it was set up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from typing import Any, Iterator

from . import config

GRACEFUL_S = 3
"""After SIGTERM, requests in flight get this long to finish (hypercorn's ``graceful_timeout``)."""

KEEP_ALIVE_S = 5
"""An idle kept-alive connection is closed after this (hypercorn's and uvicorn's default)."""

HEAD_TIMEOUT_S = 5
"""A connection whose request head has not fully arrived this long after it opened (or after the
request began, on a kept-alive connection) is closed. uvicorn waits for a head forever, so a
client that opens connections and sends nothing, or half a head, would hold them (and their
file descriptors) for good; hypercorn closed both after its 5 s keep-alive timeout."""

MAX_HEAD_BYTES = 64 * 1024
"""A request line and headers longer than this are refused (431) before they are all read.

httptools sets no bound of its own: it would buffer a header of any size. hypercorn's h11 refused
a head over 16 KiB; Envoy (Kourier) passes up to 60 KiB of headers, so a function takes a little
more than what its proxy may forward and never buffers without bound."""

READY_FRESH_S = 1.0
"""A successful readiness check answers the probes of the next second too (see :meth:`FunctionApp._ready`)."""

log = logging.getLogger("lscloud.function_server")


class FunctionApp:
    """func-python's ASGI app around a function instance (``func_python.http.ASGIApplication``):
    health routes, lifespan → ``start(cfg)``/``stop()``, everything else to ``handle``."""

    def __init__(self, instance: Any):
        if not hasattr(instance, "handle"):
            raise AttributeError("Function must implement a 'handle' method.")
        self.f = instance
        self._ready_ok: tuple[float, Any] | None = None      # (loop time, answer) of the last success
        self._ready_running: asyncio.Future | None = None     # the check in flight, shared by probes

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            await _answer(send, 400, f"Functions currently only support ASGI/HTTP connections. Got {kind}")
            return
        path = scope["path"]
        try:
            if path == "/health/liveness":
                await self._probe(send, "alive")
            elif path == "/health/readiness":
                await self._probe(send, "ready")
            else:
                await self.f.handle(scope, receive, send)
        except Exception:  # noqa: BLE001 - the instance's own failure is a 500, as in func-python
            log.exception("function failed")   # redacted like every record (lscloud.redaction)
            await _internal_error(send)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if hasattr(self.f, "start"):
                    self.f.start(config.environ())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if hasattr(self.f, "stop"):
                    self.f.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
            else:
                return

    async def _probe(self, send, method: str):
        ok, message = True, "OK"
        if hasattr(self.f, method):
            result = await self._ready() if method == "ready" else getattr(self.f, method)()
            ok, message = result if isinstance(result, tuple) else (result, message)
        await _answer(send, 200 if ok else 500, f"{message}")

    async def _ready(self):
        """The instance's ``ready()``, off the event loop and one at a time: it asks the object store
        and NATS (seconds, when one of them is down), and on the loop it held every request of the
        replica meanwhile; in the cluster the probe path is reachable from outside, so a flood of
        probes must not make a check each. Concurrent probes share the check in flight, and a
        success is answered again for :data:`READY_FRESH_S`. A failure is not kept: the next probe
        checks again (a replica becomes ready as soon as its dependencies answer)."""
        loop = asyncio.get_running_loop()
        kept = self._ready_ok
        if kept is not None and loop.time() - kept[0] < READY_FRESH_S:
            return kept[1]
        running = self._ready_running
        if running is None or running.done():
            running = self._ready_running = asyncio.ensure_future(asyncio.to_thread(self.f.ready))
        result = await asyncio.shield(running)
        ok = result[0] if isinstance(result, tuple) else result
        self._ready_ok = (loop.time(), result) if ok else None
        return result


async def _internal_error(send) -> None:
    """A 500 problem that says nothing of the failure: func-python answered ``Error: <the exception's
    message>``, and a message can name a citizen or a secret (the log has it, redacted)."""
    from .problems import MEDIA_TYPE, Problem

    body = Problem(500).body()
    await send({"type": "http.response.start", "status": 500,
                "headers": [(b"content-type", MEDIA_TYPE.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _answer(send, status: int, text: str) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text.encode("utf-8")})


def listening_sockets() -> list[socket.socket]:
    """The sockets of ``LISTEN_ADDRESS`` bound exactly as func-python binds them (default
    ``[::]:8080,0.0.0.0:8080``; IPv6 only where the host has it)."""
    import func_python.sock

    return [socket.socket(fileno=int(bound.removeprefix("fd://"))) for bound in func_python.sock.bind()]


def serve(new) -> None:
    """Serve the instance ``new()`` makes until SIGTERM or SIGINT (see the module docstring)."""
    from . import loops

    # func_python.http configures the root logger this way on import; functions' logs rely on it
    logging.basicConfig(level=logging.INFO)
    app = FunctionApp(new())
    sockets = listening_sockets()   # func_python.sock raises when it could bind none
    with asyncio.Runner(loop_factory=loops.loop_factory()) as runner:
        runner.run(server(app).serve(sockets=sockets))


def server(app, *, lifespan: str = "on"):
    """uvicorn's server for the ASGI ``app`` as a function is served (the settings in the module
    docstring); ``await server(app).serve(sockets=[...])`` runs it until SIGTERM or SIGINT (in the
    main thread) or until its ``should_exit`` is set.

    ``lifespan="on"``: an app whose start fails never serves (the process exits, and Knative sees a
    container that is not ready); ``"auto"`` for an app that does not speak the lifespan protocol."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # through the loop, as func-python did, so the process then exits 0: uvicorn's own
            # handlers raise the signal again once stopped, and a stop Knative asked for would
            # look like a crash in the exit code
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            try:
                yield
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    return Server(uvicorn.Config(
        app, loop="none", http=_bounded_head_protocol(), ws="none", interface="asgi3", lifespan=lifespan,
        log_config=None, access_log=False, proxy_headers=False, server_header=False, date_header=True,
        timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=GRACEFUL_S))


def head_too_large():
    """The :class:`lscloud.problems.Problem` (431) a request head over :data:`MAX_HEAD_BYTES` is
    answered with, here and by the local gateway."""
    from .problems import Problem

    return Problem(431, "header-fields-too-large", "Request header fields too large",
                   f"The request line and headers exceed {MAX_HEAD_BYTES} bytes.",
                   title_vi="Phần đầu yêu cầu quá lớn",
                   detail_vi=f"Dòng yêu cầu và các trường đầu vượt quá {MAX_HEAD_BYTES} byte.",
                   errors=[{"field": "headers", "message": f"at most {MAX_HEAD_BYTES} bytes"}])


def malformed_request():
    """The :class:`lscloud.problems.Problem` (400) a request that is not HTTP/1.1 is answered with,
    here and by the local gateway. It repeats none of the bytes received: they may hold a path with
    a citizen's identifier, or a token."""
    from .problems import Problem

    return Problem(400, "malformed-request", "Malformed HTTP request", "The request is not valid HTTP/1.1.",
                   title_vi="Yêu cầu HTTP sai định dạng", detail_vi="Yêu cầu không đúng giao thức HTTP/1.1.",
                   errors=[{"field": "request", "message": "a request line and headers as HTTP/1.1 defines them"}])


def _bounded_head_protocol():
    """uvicorn's httptools protocol, bounded in a request head's size (:data:`MAX_HEAD_BYTES`) and
    in the time it takes to arrive (:data:`HEAD_TIMEOUT_S`)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from .problems import MEDIA_TYPE, Problem

    def closing_answer(status_line: bytes, problem: Problem) -> bytes:
        body = problem.body()
        return (b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (status_line, MEDIA_TYPE.encode(), len(body), body))

    refusal = closing_answer(b"431 Request Header Fields Too Large", head_too_large())
    # what httptools cannot parse (uvicorn's own answer is a text/plain sentence)
    malformed = closing_answer(b"400 Bad Request", malformed_request())

    class BoundedHead(HttpToolsProtocol):
        # the bytes of the current request's head fed so far, counted per chunk: a chunk in which a
        # request begins is not counted (part of it may be the previous request's body), so a head
        # is refused at most one read of the transport past the bound
        _in_head = True
        _began = False
        _head_bytes = 0
        _head_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._await_head()

        def connection_lost(self, exc) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._began, self._head_bytes = True, True, 0
            if self._head_timer is None:   # a kept-alive connection's next request
                self._await_head()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._stop_head_timer()
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            self._began = False
            super().data_received(data)
            if not self._in_head or self._began or self.transport.is_closing():
                return
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._stop_head_timer()
                self.transport.write(refusal)
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            self._stop_head_timer()
            self.transport.write(malformed)
            self.transport.close()

        def _await_head(self) -> None:
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_late)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            # nobody waits for an answer to a request that never finished arriving: just close
            self._head_timer = None
            if self._in_head and not self.transport.is_closing():
                self.transport.close()

    return BoundedHead
