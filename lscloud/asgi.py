"""What every HTTP/1.1 server in the cloud must do with a request body it answers early.

A connection carries the next request only once the current request's body has been read to its
end. An application that answers before reading it all (a 413 for a body over the limit, a 401 or
404 decided from the headers) leaves the rest of the body in the connection: the next request on
it is read as garbage or never read at all. Under hypercorn (functions' server before uvicorn) it
was worse: the unread chunks filled the application's receive queue, so the server could not even
tell the application that the request was over, and the connection hung until someone's timeout
(a proxy's pooled connection to the function, then 60 s and a 504 for an unrelated request).

:class:`BodyGuard` wraps an ASGI ``(receive, send)`` pair so that an early answer is always safe:

- a response that starts before the request body was read says ``Connection: close`` (the
  connection is not reused: RFC 9112 §9.6);
- a body its sender abandons half-way is never handed on as if it had ended (:class:`BodyIncomplete`
  is raised from ``receive``);
- before the response's last byte, the rest of the request body is read and thrown away (never
  kept), so the server closes cleanly instead of resetting a connection that still has unread
  data (a reset can destroy the response before the client reads it); past ``drain_limit``
  bytes it stops reading and the connection is just closed.

Used by the function entry point (:mod:`lscloud.knative`) and the local gateway.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from werkzeug.exceptions import ClientDisconnected

DRAIN_LIMIT = 64 * 1024 * 1024
"""How much of an unwanted request body is read and thrown away before the connection is closed
instead (a clean close lets the client read the answer; past this it is not worth the bandwidth)."""

Message = dict[str, Any]


def content_length(scope) -> int | None:
    """The request's Content-Length (None when absent or malformed; a chunked body has none)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def has_body(scope) -> bool:
    """Whether a body follows the request's head (a Content-Length or a Transfer-Encoding)."""
    return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in scope.get("headers", ()))


class BodyIncomplete(ClientDisconnected):
    """The request body ended early: its sender disconnected before the last byte (a 400 nobody
    reads; what matters is that no view runs on part of a body)."""

    description = "The request body ended before its end: the client disconnected."


class BodyGuard:
    """The ``receive`` and ``send`` to hand an ASGI application instead of the server's own."""

    def __init__(self, scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]],
                 drain_limit: int = DRAIN_LIMIT):
        self._receive, self._send = receive, send
        self.drain_limit = drain_limit
        self.expected = content_length(scope)
        self.received = 0
        self.complete = False  # the server said the body has ended (or the client left)
        self.no_body = not has_body(scope) or self.expected == 0
        self.started = False  # the response has started (no other answer can be given)
        self.early = False  # ... before the body was read
        self._discarding: asyncio.Task | None = None

    @property
    def read_all(self) -> bool:
        """Every byte of the body has been received (the end-of-body message may still be queued)."""
        return self.no_body or self.complete or (self.expected is not None and self.received >= self.expected)

    def _note(self, message: Message) -> Message:
        if message["type"] == "http.disconnect":
            self.complete = True
        elif message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
        return message

    async def receive(self) -> Message:
        body_was_read = self.read_all
        message = self._note(await self._receive())
        if message["type"] == "http.disconnect" and not body_was_read:
            # The client (or a proxy abandoning the request) left in the middle of the body. Bridges
            # such as a2wsgi read that as the end of the body, and a chunked body cut short would
            # reach the view as if it were whole: refuse to hand over a body that never ended.
            raise BodyIncomplete()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
        if kind == "http.response.start" and not self.read_all:
            self.early = True
            headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        elif kind == "http.response.body" and not message.get("more_body", False) and self.early \
                and not self.complete:
            if message.get("body"):  # the client gets the whole answer now; the end of it after the drain
                await self._send({"type": "http.response.body", "body": message["body"], "more_body": True})
            await self.drain()
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await self._send(message)

    async def drain(self) -> None:
        """Read and drop the rest of the body, up to ``drain_limit`` bytes."""
        while not self.complete and self.received <= self.drain_limit:
            self._note(await self._receive())
        if not self.complete:
            # too much to read: the server closes the connection once the answer is sent, but it
            # first queues the end of the request for us, and a full queue would block it forever
            self._discarding = asyncio.ensure_future(self._discard())

    async def _discard(self) -> None:
        while not self.complete:
            self._note(await self._receive())
