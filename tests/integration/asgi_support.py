"""Serving ASGI apps on loopback ports for tests: on the server functions run on (uvicorn, configured
by :func:`lscloud.function_server.server`)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from lscloud import asgi
from lscloud.local.servers import free_port, port_open


class Served:
    """``app`` served as a function is (:func:`lscloud.function_server.server`) from a thread on a free
    loopback port, until :meth:`stop`."""

    def __init__(self, app, port: int | None = None):
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"served-{self.port}", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by start()
            self.error = exc

    async def _serve(self) -> None:
        from lscloud import function_server

        self._loop = asyncio.get_running_loop()
        self._server = function_server.server(self.app, lifespan="auto")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        await self._server.serve(sockets=[sock])

    def start(self, timeout: float = 30.0) -> "Served":
        self._thread.start()
        end = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self.error is not None or not self._thread.is_alive() or time.monotonic() > end:
                raise RuntimeError(f"the server on {self.port} did not start: {self.error!r}")
            time.sleep(0.05)
        return self

    @property
    def stopped(self) -> bool:
        """Its thread has ended (stopped, or failed: :attr:`error`)."""
        return not self._thread.is_alive()

    def stop(self) -> None:
        if self._loop is not None and self._server is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(setattr, self._server, "should_exit", True)
            except RuntimeError:  # the loop already ended
                pass
        self._thread.join(15)


class Bridged:
    """A function instance whose ``handle`` is :meth:`lscloud.knative.Function.handle`'s for HTTP: the
    body guard around ``bridge`` (a :class:`lscloud.wsgi_bridge.WsgiBridge` a test sizes itself)."""

    def __init__(self, bridge):
        self.bridge = bridge

    async def handle(self, scope, receive, send):
        guard = asgi.BodyGuard(scope, receive, send)
        await self.bridge(scope, guard.receive, guard.send)


def exchange(port: int, request: bytes, *, sock: socket.socket | None = None, timeout: float = 30.0):
    """Send raw ``request`` bytes (a path exactly as written, no client-side normalising) and read one
    response: ``(status, headers, body, sock)``; headers lower-cased. ``sock`` reuses a connection."""
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    s.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response (got {data[:80]!r})")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body, s


def closed_by_peer(sock: socket.socket, timeout: float = 30.0) -> bool:
    """True when the peer closed the connection (EOF), False if it sends anything; raises on a hang."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
