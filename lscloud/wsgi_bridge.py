"""Flask (WSGI) inside the function's ASGI ``handle``, with one thread hop per request.

``a2wsgi.WSGIMiddleware`` runs the app in a worker thread and hands every response message
(the start, each body chunk, the final empty chunk) back to the event loop one at a time,
blocking the worker on each: four loop round trips per request on top of the dispatch. On a
busy box every round trip is a GIL handoff between the worker and the loop thread, and the
profile of the directory showed those waits, not the work, setting the latency.

:class:`WSGIBridge` keeps a2wsgi's request side (the environ and the lazily read body, whose
reads still go to the loop, so nothing is read unless the app asks) and changes the response
side: the worker runs the app to the end and returns status, headers and body in one piece,
which the loop sends. Only a body larger than ``buffer_bytes`` (a big download; the runtime
serves those by presigned URL, so rarely) is streamed, chunk by chunk with back-pressure, as
a2wsgi does.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from a2wsgi.wsgi import Body, build_environ

BUFFER_BYTES = 256 * 1024


class _Exchange:
    """One request's response, collected in the worker thread."""

    __slots__ = ("loop", "send", "buffer_bytes", "status", "headers", "chunks", "size", "streaming")

    def __init__(self, loop: asyncio.AbstractEventLoop, send: Callable, buffer_bytes: int):
        self.loop = loop
        self.send = send
        self.buffer_bytes = buffer_bytes
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.streaming = False  # the start message has gone out; the rest is sent as it comes

    # -- WSGI side (worker thread) -------------------------------------------------------------

    def start_response(self, status: str, response_headers, exc_info=None):
        if exc_info is not None and self.streaming:
            raise exc_info[1].with_traceback(exc_info[2])  # PEP 3333: headers already sent
        if self.status is None or exc_info is not None:
            self.status = int(status.split(" ", 1)[0])
            self.headers = [(name.strip().encode("latin1").lower(), value.strip().encode("latin1"))
                            for name, value in response_headers]
        return self.write

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.streaming:
            self._hop({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
            return
        self.chunks.append(bytes(chunk))
        self.size += len(chunk)
        if self.size > self.buffer_bytes:
            self._start_streaming()

    def _start_streaming(self) -> None:
        if self.status is None:
            raise RuntimeError("the WSGI app sent a body before calling start_response")
        self.streaming = True
        self._hop({"type": "http.response.start", "status": self.status, "headers": self.headers})
        chunks, self.chunks, self.size = self.chunks, [], 0
        self._hop({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})

    def _hop(self, message: dict) -> None:
        asyncio.run_coroutine_threadsafe(self.send(message), self.loop).result()

    def run(self, app, environ: dict) -> None:
        iterable = app(environ, self.start_response)
        try:
            for chunk in iterable:
                self.write(chunk)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        if self.status is None:
            raise RuntimeError("the WSGI app returned without calling start_response")
        if self.streaming:
            self._hop({"type": "http.response.body", "body": b"", "more_body": False})

    # -- ASGI side (event loop) ----------------------------------------------------------------

    async def finish(self) -> None:
        if self.streaming:
            return
        await self.send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


class WSGIBridge:
    """An ASGI app running a WSGI app on ``workers`` threads (see the module docstring)."""

    def __init__(self, app: Callable[..., Any], *, workers: int = 16, buffer_bytes: int = BUFFER_BYTES):
        self.app = app
        self.buffer_bytes = buffer_bytes
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            loop = asyncio.get_running_loop()
            environ = build_environ(scope, Body(loop, receive))
            exchange = _Exchange(loop, send, self.buffer_bytes)
            context = contextvars.copy_context()
            await loop.run_in_executor(self.executor, context.run, exchange.run, self.app, environ)
            await exchange.finish()
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
