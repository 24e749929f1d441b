"""Kept-alive HTTP/1.1 connections to one endpoint, shared by threads: the object store's transport.

:class:`Connections` is what :class:`lscloud.store.s3http.S3Http` sends through: the standard
library's ``http.client`` and a small pool, where urllib3 was before. A call through urllib3's
pool (its URL parsing, header dict, timeout objects and response wrapper) cost 0.11 ms of CPU
more than the same signed GET on a plain ``http.client`` connection, 40% of a GET's client CPU;
a function makes 3 to 24 store calls per request. What urllib3 did that matters is kept:

- a connection whose other end closed while it sat idle (a server's keep-alive timeout) is never
  sent on: before reuse, a socket that reads as ready (end of file, or bytes nobody asked for) is
  closed and another taken;
- a failure to connect raises :class:`NotSent`, which the caller may always retry, apart from a
  failure once the request may have left (any other ``OSError`` or ``http.client`` error), which
  the caller must treat as possibly acted on;
- at most ``max_idle`` connections are kept; a burst opens more and closes the extra after use;
- over TLS, the server's certificate is checked against ``ca_file`` (or certifi's bundle) and its
  host name.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading


class NotSent(Exception):
    """No connection could be made (refused, timed out, TLS refused): the request never left.
    The cause is chained."""


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection can no longer be sent on (closed, or readable while idle)."""
    sock = conn.sock
    if sock is None:
        return True
    if hasattr(select, "poll"):   # any descriptor number (select() stops at 1024)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


class Connections:
    """A thread-safe pool of connections to ``scheme://hostname:port``; each is used by one thread
    at a time, the most recently returned first."""

    def __init__(self, scheme: str, hostname: str, port: int, *, max_idle: int = 32, timeout_s: float = 10.0,
                 ca_file: str | None = None):
        self.hostname, self.port, self.timeout_s = hostname, port, timeout_s
        self.max_idle = max_idle
        self._context: ssl.SSLContext | None = None
        if scheme == "https":
            self._context = ssl.create_default_context(cafile=ca_file)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes | None) \
            -> tuple[int, dict[str, str], bytes]:
        """Send one request and read its whole answer: (status, headers with lower-case names,
        body). Raises
        :class:`NotSent` when no connection could be made, and ``OSError`` or
        ``http.client.HTTPException`` when the exchange failed after that."""
        conn = self._take()
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()
            raise
        if response.will_close or conn.sock is None:
            conn.close()
        else:
            self._give_back(conn)
        # as sent (raw_items): reading each header through email's policy cost more than the rest
        return response.status, {k.lower(): v for k, v in response.headers.raw_items()}, data

    def close(self) -> None:
        """Close the idle connections (those in use close when their request ends, if not returned)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if not _dropped(conn):
                return conn
            conn.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self._context is not None:
            conn = http.client.HTTPSConnection(self.hostname, self.port, timeout=self.timeout_s,
                                               context=self._context)
        else:
            conn = http.client.HTTPConnection(self.hostname, self.port, timeout=self.timeout_s)
        try:
            conn.connect()
        except OSError as exc:   # refused, unreachable, timed out, a certificate refused
            conn.close()
            raise NotSent(f"{exc.__class__.__name__}: {exc}") from exc
        return conn

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()
