"""Kept-alive HTTP/1.1 connections to one endpoint, shared by threads: the runtime's outbound transport.

:class:`Connections` is what :class:`lscloud.store.s3http.S3Http` sends through, and
:class:`lscloud.http_client.Client` (a function's calls to its peers and to partners) per origin. A request goes out
in one ``sendall`` and its answer is parsed by httptools (llhttp, in C). Before, urllib3's pool and
``http.client`` cost 0.29 ms of CPU per signed GET with its span, about half of it in the
standard library's email-based header parsing and urllib3's wrappers; a function makes 3 to 24
store calls per request. What urllib3 did that matters is kept:

- a connection whose other end closed while it sat idle (a server's keep-alive timeout) is never
  sent on: before reuse, a socket that reads as ready (end of file, or bytes nobody asked for) is
  closed and another taken;
- a failure to connect raises :class:`NotSent`, which the caller may always retry, apart from a
  failure once the request may have left (any other ``OSError``, or ``http.client.HTTPException``
  for an answer that is not HTTP), which the caller must treat as possibly acted on;
- at most ``max_idle`` connections are kept; a burst opens more and closes the extra after use;
- over TLS, the server's certificate is checked against ``ca_file`` (or the system's store) and
  its host name.

:func:`parse_url` says where a URL sends a request (the ``Host`` header, the request line's target),
or why none is made to it; both clients above parse with it.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

_RECV = 65536


def default_ca_bundle() -> str | None:
    """certifi's CA bundle (what botocore and httpx trusted), else ``None``: the system's store."""
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


class NotSent(Exception):
    """No connection could be made (refused, timed out, TLS refused): the request never left.
    The cause is chained."""


_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


class BadUrl(ValueError):
    """A URL no call is made to; ``message`` and ``message_vi`` say why (for a 4xx naming the field
    that held it)."""

    def __init__(self, message: str, message_vi: str):
        super().__init__(message)
        self.message, self.message_vi = message, message_vi


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL sends a call: ``scheme``, ``hostname``, ``port`` (the default one filled in),
    ``target`` (the request line's path and query, as sent and as signed) and ``host`` (the
    ``Host`` header: an IPv6 literal bracketed, the port only when not the default)."""

    scheme: str
    hostname: str
    port: int
    target: str
    host: str


def parse_url(url: str) -> Target:
    """Where a request to ``url`` goes, or :class:`BadUrl` saying why none is made to it: the checks
    :meth:`lscloud.http_client.Client.request` makes before sending (and the object store's client
    on its endpoint), for a URL kept to call later."""
    if _UNSAFE.search(url) or not url.isascii():   # urlsplit would quietly drop a line break
        raise BadUrl("a URL holds a space, a control character or a character that is not ASCII "
                     "(percent-encode it)",
                     "địa chỉ chứa khoảng trắng, ký tự điều khiển hoặc ký tự ngoài ASCII (hãy mã hóa phần trăm)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadUrl("not an http(s)://host/... URL", "không phải địa chỉ http(s)://máy-chủ/...")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:   # a port that is not a number, or out of range
        raise BadUrl("the port is not a number from 1 to 65535", "cổng không phải số từ 1 đến 65535") from None
    if parts.username is not None or parts.password is not None:
        raise BadUrl("credentials in a URL (user@host) are never sent; a call authenticates otherwise",
                     "thông tin đăng nhập trong địa chỉ (user@host) không bao giờ được gửi")
    if parts.fragment or url.endswith("#"):
        raise BadUrl("a URL's fragment (#...) is never sent", "phần # của địa chỉ không bao giờ được gửi")
    default_port = parts.port is None or (parts.scheme, parts.port) in (("http", 80), ("https", 443))
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname   # an IPv6 literal
    return Target(parts.scheme, parts.hostname, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                  host if default_port else f"{host}:{port}")


class _Answer:
    """httptools' callbacks for one response: its headers (lower-case names) and body."""

    __slots__ = ("parser", "headers", "chunks", "headers_done", "done", "keep_alive")

    def __init__(self):
        self.parser = httptools.HttpResponseParser(self)
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.headers_done = self.done = self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True
        # asked now: once the message is complete the parser has reset and says no
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle connection can no longer be sent on (closed, or readable while idle)."""
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
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes | None,
                max_answer_bytes: int | None = None, deadline: float | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send one request and read its whole answer: (status, headers with lower-case names,
        body). ``headers`` must hold ``host``; ``content-length`` is added. Raises
        :class:`NotSent` when no connection could be made, ``OSError`` when the exchange failed
        after that (``TimeoutError`` past ``deadline``, a ``time.monotonic()`` by which the whole
        answer must have come), ``http.client.HTTPException`` when the answer is not HTTP or its
        body is longer than ``max_answer_bytes``; ``ValueError``, before anything is sent, for a
        header holding a line break."""
        return self.send(method, target, headers, body, deadline).read(max_answer_bytes, deadline)

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None,
             deadline: float | None = None) -> "Pending":
        """Send one request and leave its answer unread: several requests go out from one thread
        before any answer is waited for (:meth:`Pending.read`). Raises as :meth:`request` does up
        to the sending; connecting and sending wait no later than ``deadline`` either."""
        head = _head(method, target, headers, body)
        wait = self._wait(deadline)
        sock = self._take(wait)
        try:
            # changing a socket's timeout is a system call: made only when the deadline is nearer
            if sock.gettimeout() != wait:
                sock.settimeout(wait)
            if body and len(body) > _RECV:   # a large body is not copied behind its head
                sock.sendall(head)
                sock.sendall(body)
            else:
                sock.sendall(head + body if body else head)
            if wait != self.timeout_s:
                sock.settimeout(self.timeout_s)
        except BaseException:
            sock.close()
            raise
        return Pending(self, sock, method == "HEAD")

    def _wait(self, deadline: float | None) -> float:
        """How long one wait may take: ``timeout_s``, or less when ``deadline`` comes sooner."""
        if deadline is None:
            return self.timeout_s
        return max(0.001, min(self.timeout_s, deadline - time.monotonic()))

    def _take(self, wait: float) -> socket.socket:
        while True:
            with self._lock:
                sock = self._idle.pop() if self._idle else None
            if sock is None:
                return self._connect(wait)
            if not _dropped(sock):
                return sock
            sock.close()

    def _connect(self, wait: float) -> socket.socket:
        try:
            sock = socket.create_connection((self.hostname, self.port), timeout=wait)
        except OSError as exc:   # refused, unreachable, timed out
            raise NotSent(f"{exc.__class__.__name__}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._context is None:
            return sock
        try:
            return self._context.wrap_socket(sock, server_hostname=self.hostname)
        except OSError as exc:   # the handshake failed, or the certificate was refused: nothing sent
            sock.close()
            raise NotSent(f"{exc.__class__.__name__}: {exc}") from exc

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(sock)
                return
        sock.close()


class Pending:
    """A request sent on a connection of :class:`Connections`, its answer not read yet."""

    __slots__ = ("_pool", "_sock", "_head")

    def __init__(self, pool: Connections, sock: socket.socket, head: bool):
        self._pool, self._sock, self._head = pool, sock, head

    def read(self, max_answer_bytes: int | None = None, deadline: float | None = None) -> tuple[int, dict[str, str], bytes]:
        """The answer, as :meth:`Connections.request` returns it (and raises); the connection goes
        back to the pool, or is closed."""
        sock, self._sock = self._sock, None
        if sock is None:
            raise RuntimeError("this answer was read already")
        try:
            status, answer, keep_alive = _read(sock, self._head, max_answer_bytes, deadline)
        except BaseException:
            sock.close()
            raise
        if keep_alive:
            self._pool._give_back(sock)
        else:
            sock.close()
        return status, answer.headers, b"".join(answer.chunks)

    def close(self) -> None:
        """Give up on the answer: the connection is closed (its answer may still be on its way)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


_BREAKS = re.compile(r"[\r\n\0]")


def _head(method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if any(_BREAKS.search(line) for line in lines):   # as http.client refused: no header smuggled in
        raise ValueError("a request line or header holds a line break")
    if body or method in ("PUT", "POST"):
        lines.append(f"content-length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read(sock: socket.socket, head: bool, max_bytes: int | None = None,
          deadline: float | None = None) -> tuple[int, _Answer, bool]:
    """One answer from ``sock``: (status, its headers and body, whether the connection may be reused).
    An answer to HEAD ends with its headers, whatever length they announce. More than ``max_bytes``
    read raises ``http.client.HTTPException``, an answer not ended by ``deadline`` (monotonic)
    ``TimeoutError`` (the connection is then closed by the caller): the socket's own timeout bounds
    each wait only, so a server sending a byte now and then could hold the call for as long as it
    likes."""
    answer = _Answer()
    received = 0
    each = current = sock.gettimeout()
    while not (answer.done or (head and answer.headers_done)):
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the answer did not end in time")
            wait = left if each is None else min(each, left)
            if wait != current:   # a system call: made only when the deadline shortens the wait
                sock.settimeout(wait)
                current = wait
        data = sock.recv(_RECV)
        received += len(data)
        if max_bytes is not None and received > max_bytes:
            raise http.client.HTTPException(f"the answer is longer than {max_bytes} bytes")
        if not data:
            if answer.headers_done and "content-length" not in answer.headers \
                    and "transfer-encoding" not in answer.headers:
                return answer.parser.get_status_code(), answer, False   # a body that ends with the connection
            raise http.client.RemoteDisconnected("the server closed the connection before its answer ended")
        try:
            answer.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise http.client.HTTPException("the server asked to switch protocols") from None
        except httptools.HttpParserError as exc:
            raise http.client.HTTPException(f"not an HTTP answer: {exc}") from None
    if current != each:
        sock.settimeout(each)   # kept alive for another call, with its own bound again
    return answer.parser.get_status_code(), answer, answer.keep_alive
