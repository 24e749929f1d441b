"""A function's WSGI (Flask) app served from the ASGI server, with one thread hop per request.

The app is synchronous, so it runs on a worker thread, never on the event loop. The generic
bridge (a2wsgi) crosses between the loop and the thread for every message: the request, the
response's start, each chunk, its end — each a ``run_coroutine_threadsafe`` and a wake-up of both
sides. Most requests of a function carry a small body or none and get a small answer, so here:

- a body with a ``Content-Length`` of at most :data:`PREREAD_LIMIT` bytes is read on the loop
  before the app runs and handed to it as a buffer; a larger body or a chunked one is read from
  the thread as the app asks for it (Werkzeug's size limits then refuse it before it is all
  read, as they always did);
- a response of known length (``Content-Length``, as Werkzeug sets for every non-streamed answer)
  is collected on the thread and sent from the loop in one go once the app returns; one that grows
  past :data:`BUFFER_LIMIT` bytes is streamed from then on, chunk by chunk. A response of unknown
  length (a generator: Server-Sent Events, a long export) streams from its first chunk, since
  its caller may be waiting on each one.

A request thus costs one hop to the thread and back. The body rules of :mod:`lscloud.asgi` hold
as before, whether the body was read up front or on demand: a body whose sender left half-way
reaches the app as :class:`lscloud.asgi.BodyIncomplete` when it reads it (a 400 nobody reads, and
no view runs on part of a body), never as a shorter body; an answer given before a large body was
read closes the connection (the guard around ``receive``/``send`` does that).

Every wait of a worker thread on the loop is bounded. The server bounds only a request's head: a
client that sends part of a body and then nothing, or stops reading an answer it asked for (a
stream, a large export), would otherwise hold a worker thread for good, and a handful of such
clients would stop the function. A body that brings nothing for :data:`BODY_IDLE_S` is treated as
abandoned (the app reads :class:`lscloud.asgi.BodyIncomplete`); one that keeps coming, but slower
than :data:`BODY_MIN_RATE` once :data:`BODY_GRACE_S` is past, is refused (:class:`BodyTooSlow`, a
408 problem): a byte now and then would otherwise hold a thread for as long as the body's size
allows. Large bodies are still read on the worker thread, not on the loop before it: only the view
knows its size limit and its checks before the body (:func:`lscloud.web.before_body`, a 413 from
the Content-Length), and reading up to the largest limit first would hold that much memory per
slow connection, with nothing to refuse it early. A response the client takes none
of for :data:`SEND_STALL_S` is cut off (:class:`ResponseStalled` ends the app's iteration, so a
generator's ``close()`` runs). Either way the connection is closed, never kept or drained: its
client is still there, but nothing more will come from it or reach it.

A request that has to wait for a thread (every worker busy) is skipped if its client disconnects
before a thread takes it: the server's ``http.disconnect`` (uvicorn sends it once the connection is
lost) is watched while it waits, and the thread that takes it then returns at once, without
calling the app, and nothing is sent. Under load a caller that gives up (a proxy's timeout, a
user who reloads) would otherwise still have its request run, behind everyone else's, for an
answer nobody reads. A request a thread has taken runs to its end whatever its client does (a Flask
view cannot be interrupted, and a write half done is worse than one done for nobody); only a
request that never started is dropped, so nothing it would have written is half-written.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from .asgi import BodyIncomplete, content_length, has_body

PREREAD_LIMIT = 64 * 1024
"""A request body with a Content-Length up to this is read before the app runs."""

BUFFER_LIMIT = 1024 * 1024
"""A response is sent whole once the app returns, unless it grows past this: then it streams."""

BODY_IDLE_S = 30.0
"""A request body that brings no bytes for this long is treated as abandoned: the app reads
:class:`BodyIncomplete` and the connection is closed (a sender that stalls half-way, connection
open, would otherwise hold a worker thread for as long as it likes)."""

BODY_GRACE_S = 10.0
"""The first seconds of a body read from a worker thread, before :data:`BODY_MIN_RATE` counts (a
connection's slow start, a phone's radio waking up)."""

BODY_MIN_RATE = 16 * 1024
"""A body read from a worker thread must come at :data:`BODY_MIN_RATE` bytes a second on average,
after :data:`BODY_GRACE_S` seconds of grace (Apache's ``mod_reqtimeout`` rule: each byte received
moves the deadline on by ``1 / BODY_MIN_RATE`` s); one slower is refused (408, the connection
closed). :data:`BODY_IDLE_S` alone bounded only the gap between two bytes: sixteen uploads of a
byte every 5 s held every worker thread of a replica for as long as their senders liked (an 8 MiB
photo, 16 months), and nobody else was answered. 16 KiB/s is 128 kbit/s, slower than any 3G
upload: a phone's 4 MB photo is given some four minutes, an 8 MiB one nine."""

SEND_STALL_S = 60.0
"""A response chunk the client has not taken for this long ends the response: it is cut off and
the connection closed (a client that stops reading a stream would otherwise hold a worker thread
for good)."""

log = logging.getLogger("lscloud.wsgi_bridge")


class ResponseStalled(ConnectionError):
    """The client took nothing of the response for :data:`SEND_STALL_S`: raised where the answer is
    written, so the app's iteration ends (its ``close()`` runs) and the response is cut off."""


class _BodyIdle(BodyIncomplete):
    """No byte of the request body for :data:`BODY_IDLE_S`: abandoned, though its sender is still
    connected (the connection is closed, never drained)."""


class BodyTooSlow(BodyIncomplete):
    """The request body came slower than :data:`BODY_MIN_RATE` (after :data:`BODY_GRACE_S`): the
    app reads it as the body's end (no view runs on part of a body) and the request is answered 408,
    the connection closed."""

    code = 408
    description = "The request body came too slowly."


class _Stalled(Exception):
    """A wait of a worker thread on the loop ran out (the coroutine waited on is cancelled)."""


def _from_thread(coro, loop: asyncio.AbstractEventLoop, timeout: float) -> Any:
    """``coro`` run on ``loop`` and waited for from a worker thread, at most ``timeout`` seconds."""
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result(timeout)
    except TimeoutError:
        if not future.cancel():  # it ended as the wait did (or raised a TimeoutError of its own)
            return future.result()
        raise _Stalled() from None


def build_environ(scope: dict) -> dict:
    """The WSGI environ of an ASGI HTTP ``scope`` (PEP 3333: strings are latin-1 of the bytes)."""
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root):]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        # the server frames the body: Werkzeug may read one without a Content-Length (chunked)
        # up to its size limit instead of treating it as empty
        "wsgi.input_terminated": True,
        "asgi.scope": scope,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name == "content-length":
            key = "CONTENT_LENGTH"
        elif name == "content-type":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if key in environ:
            value = environ[key] + "," + value
        environ[key] = value
    return environ


async def read_body(receive: Callable) -> bytes:
    """The whole request body (raises :class:`BodyIncomplete` if its sender left before its end)."""
    parts = []
    while True:
        try:
            async with asyncio.timeout(BODY_IDLE_S):
                message = await receive()
        except TimeoutError:
            raise _BodyIdle() from None
        if message["type"] == "http.disconnect":
            raise BodyIncomplete()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


class _Abandoned(io.RawIOBase):
    """The input of a request whose body never ended: reading it raises, as reading it live would."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise self.exc


class StreamedInput:
    """``wsgi.input`` read from the worker thread, each chunk received on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Callable):
        self.loop, self.receive = loop, receive
        self.buffer = bytearray()
        self.more = True
        self.idle = False  # the sender stalled: nothing more is read from the connection
        self.slow = False  # the sender was too slow (BODY_MIN_RATE): nothing more is read either
        self.received = 0
        # from the first read, not the request's arrival: a request that waited for a thread had
        # its sender held back meanwhile (the server stops reading a connection whose data waits)
        self.started: float | None = None

    def _fill(self) -> None:
        if self.idle:
            raise _BodyIdle()
        if self.slow:
            raise BodyTooSlow()
        now = time.monotonic()
        if self.started is None:
            self.started = now
        left = self.started + BODY_GRACE_S + self.received / BODY_MIN_RATE - now
        if left <= 0:
            self.slow = True
            raise BodyTooSlow()
        try:
            message = _from_thread(self.receive(), self.loop, min(left, BODY_IDLE_S))
        except _Stalled:
            if left < BODY_IDLE_S:
                self.slow = True
                raise BodyTooSlow() from None
            self.idle = True
            raise _BodyIdle() from None
        if message["type"] == "http.disconnect":
            raise BodyIncomplete()
        body = message.get("body", b"")
        self.buffer += body
        self.received += len(body)
        self.more = message.get("more_body", False)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self.more:
                self._fill()
            size = len(self.buffer)
        while self.more and len(self.buffer) < size:
            self._fill()
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self.buffer.find(b"\n", 0, limit if limit > -1 else None)
            if end != -1:
                return self.read(end + 1)
            if limit > -1 and len(self.buffer) >= limit:
                return self.read(limit)
            if not self.more:
                return self.read(len(self.buffer))
            self._fill()

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")


class _Response:
    """The app's answer: collected on the worker thread, sent from the loop (or streamed once large)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send: Callable):
        self.loop, self.send = loop, send
        self.start: dict | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.streaming = False
        self.known_length = False
        self.cut = False  # the client stopped taking the streamed answer: nothing more is sent

    # -- on the worker thread ----------------------------------------------------------------

    def run(self, app: Callable, environ: dict) -> None:
        iterable = app(environ, self.start_response)
        try:
            for chunk in iterable:
                self.write(chunk)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    def start_response(self, status: str, headers, exc_info=None):
        if exc_info is not None and self.streaming:
            raise exc_info[1].with_traceback(exc_info[2])  # too late for another answer (PEP 3333)
        self.start = {"type": "http.response.start", "status": int(status[:3]),
                      "headers": [(k.strip().lower().encode("latin-1"), v.strip().encode("latin-1")) for k, v in headers]}
        self.known_length = any(name == b"content-length" for name, _ in self.start["headers"])
        return self.write

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.start is None:
            raise RuntimeError("the WSGI app wrote a body before calling start_response")
        if self.streaming:
            self._on_loop({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
            return
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.size > BUFFER_LIMIT or not self.known_length:  # too big to hold, or an open-ended stream
            self.streaming = True
            self._on_loop(self.start)
            body, self.chunks = b"".join(self.chunks), []
            self._on_loop({"type": "http.response.body", "body": body, "more_body": True})

    def _on_loop(self, message: dict) -> None:
        if self.cut:
            raise ResponseStalled()
        try:
            _from_thread(self.send(message), self.loop, SEND_STALL_S)
        except _Stalled:
            self.cut = True
            raise ResponseStalled() from None

    # -- on the loop -----------------------------------------------------------------------------

    async def finish(self) -> None:
        if self.streaming:
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if self.start is None:
            raise RuntimeError("the WSGI app returned without calling start_response")
        await self.send(self.start)
        chunks = self.chunks
        await self.send({"type": "http.response.body", "body": chunks[0] if len(chunks) == 1 else b"".join(chunks),
                         "more_body": False})

    async def abandon(self, instead: tuple[dict, bytes] | None = None) -> None:
        """The answer to a request whose body stalled (or ``instead``, a response start and its
        body, given for it), left unfinished so that the server closes the connection: draining
        the rest of the body, as after another early answer, would wait on the stalled sender,
        and a kept connection would read that rest as its next request."""
        if self.streaming or (self.start is None and instead is None):
            return
        start, body = instead or (self.start, b"".join(self.chunks))
        headers = [(k, v) for k, v in start["headers"] if k != b"connection"]
        await self.send({**start, "headers": [*headers, (b"connection", b"close")]})
        if body:
            await self.send({"type": "http.response.body", "body": body, "more_body": True})


def _too_slow() -> tuple[dict, bytes]:
    """The 408 problem for a body slower than :data:`BODY_MIN_RATE`, whatever the app made of the
    part it read (its generic answer to a body that ended early says nothing of why)."""
    from .problems import MEDIA_TYPE, Problem

    rate = f"{BODY_MIN_RATE // 1024} KiB/s"
    body = Problem(408, "request-timeout", "Request body too slow",
                   f"The request body came slower than {rate}: send it again on a better connection.",
                   title_vi="Gửi dữ liệu quá chậm",
                   detail_vi=f"Dữ liệu của yêu cầu đến chậm hơn {rate}: vui lòng gửi lại khi kết nối tốt hơn.").body()
    return ({"type": "http.response.start", "status": 408,
             "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                         (b"cache-control", b"no-store")]}, body)


class _Waiting:
    """A request waiting for a worker thread: whether its client has left, and whether a thread took it."""

    __slots__ = ("left", "taken")

    def __init__(self):
        self.left = False
        self.taken = False


async def _watch(receive: Callable, waiting: _Waiting) -> None:
    """Note when the client of a waiting request leaves (its body, if any, was read already: only
    the end of the request or ``http.disconnect`` can come)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not waiting.taken:
                waiting.left = True
            return


class WsgiBridge:
    """An ASGI app (HTTP only) running the WSGI ``app`` on a pool of ``workers`` threads."""

    def __init__(self, app: Callable, workers: int = 16):
        self.app = app
        self.workers = workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wsgi")
        self._busy = 0   # requests handed to the pool and not yet back (read and written on the loop only)

    def _run(self, response: "_Response", environ: dict, waiting: _Waiting | None) -> bool:
        """On a worker thread: the app's answer collected in ``response``; False (the app not
        called) for a request whose client left while it waited."""
        if waiting is not None:
            if waiting.left:
                return False
            waiting.taken = True
        response.run(self.app, environ)
        return True

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            raise ValueError(f"the WSGI bridge serves HTTP, not {scope['type']!r}")
        loop = asyncio.get_running_loop()
        environ = build_environ(scope)
        length = content_length(scope)
        idle, streamed = False, None
        if length == 0 or not has_body(scope):
            environ["wsgi.input"] = io.BytesIO(b"")
        elif length is not None and length <= PREREAD_LIMIT:
            try:
                environ["wsgi.input"] = io.BytesIO(await read_body(receive))
            except BodyIncomplete as exc:
                idle = isinstance(exc, _BodyIdle)
                environ["wsgi.input"] = io.BufferedReader(_Abandoned(exc))
        else:
            environ["wsgi.input"] = streamed = StreamedInput(loop, receive)
        response = _Response(loop, send)
        # only a request that will wait for a thread is watched (one taken at once costs nothing
        # more); one whose body the app reads as it goes cannot be: its thread reads ``receive``
        waiting = _Waiting() if self._busy >= self.workers and streamed is None else None
        watcher = asyncio.ensure_future(_watch(receive, waiting)) if waiting is not None else None
        self._busy += 1
        try:
            ran = await loop.run_in_executor(self.executor, contextvars.copy_context().run, self._run, response,
                                             environ, waiting)
        except ResponseStalled:
            if not response.cut:
                raise
            # a response already started cannot become an error, and its end would wait on the
            # stalled client again: returning without it makes the server close the connection
            log.warning("response cut off: the client took nothing more of it for %s s", SEND_STALL_S)
            return
        finally:
            self._busy -= 1
            if watcher is not None:
                watcher.cancel()
        if not ran:
            log.debug("request skipped: its client left while it waited for a worker thread")
            return   # nobody to answer (the server closes the connection)
        if streamed is not None and streamed.slow:
            log.warning("request body refused: it came slower than %s bytes/s", BODY_MIN_RATE)
            await response.abandon(_too_slow())
            return
        if idle or (streamed is not None and streamed.idle):
            log.warning("request body abandoned: no more of it came for %s s", BODY_IDLE_S)
            await response.abandon()
            return
        await response.finish()
