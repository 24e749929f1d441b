"""A fault in front of the real object store: a TCP proxy to weed that, request by request, passes
the request through, loses the store's answer after the store acted on it (the connection is cut),
or answers 503 SlowDown without passing it on. The store is real; only the network misbehaves.
And a store that ignores If-Match on DELETE as MinIO does (:func:`store_like_minio`)."""

from __future__ import annotations

import socket
import threading
from collections import deque

from lscloud.local.servers import free_port
from lscloud.store import ObjectStore

PASS, LOSE_ANSWER, SLOW_DOWN = "pass", "lose-answer", "slow-down"
_SLOW_DOWN_BODY = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>'
_SLOW_DOWN = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(_SLOW_DOWN_BODY), _SLOW_DOWN_BODY))


def _read_request(conn: socket.socket, buffered: bytes) -> tuple[bytes, bytes] | None:
    """One whole HTTP/1.1 request from ``conn`` (headers and Content-Length body), and what follows it."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


class FaultProxy:
    """``plan(*actions)`` sets what the next requests meet (then PASS); ``seen`` counts requests."""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1", tls=None):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port(host)
        self.tls = tls   # an ssl.SSLContext: the proxy then terminates TLS, as a store with a certificate does
        self.endpoint = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self._actions: deque[str] = deque()
        self._lock = threading.Lock()
        self.seen: list[str] = []
        self._server = socket.create_server((host, self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def plan(self, *actions: str) -> None:
        with self._lock:
            self._actions = deque(actions)

    def _next(self) -> str:
        with self._lock:
            action = self._actions.popleft() if self._actions else PASS
            self.seen.append(action)
            return action

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffered = b""
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:            # a client that refused our certificate
                conn.close()
                return
        with conn:
            while True:
                got = _read_request(conn, buffered)
                if got is None:
                    return
                request, buffered = got
                action = self._next()
                if action == SLOW_DOWN:
                    conn.sendall(_SLOW_DOWN)
                    continue
                head, body = request.split(b"\r\n\r\n", 1)
                # one upstream connection per request, closed by the store after its answer
                lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:")]
                with socket.create_connection(self.upstream) as up:
                    up.sendall(b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body)
                    answer = b""
                    while chunk := up.recv(65536):
                        answer += chunk
                if action == LOSE_ANSWER:
                    return                      # the store acted; its answer never arrives
                # the client's connection stays open, as the store keeps it alive
                head, _, rest = answer.partition(b"\r\n\r\n")
                head = b"\r\n".join(l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:"))
                conn.sendall(head + b"\r\n\r\n" + rest)

    def close(self) -> None:
        self._server.close()


class IgnoresIfMatchOnDelete:
    """The store's S3 wire with every DELETE sent without its If-Match (what MinIO does with it)."""

    def __init__(self, http):
        self._http, self.deletes = http, []

    def __getattr__(self, name):
        return getattr(self._http, name)

    def request(self, operation, method, bucket, key="", **kw):
        if operation == "DeleteObject":
            headers = {k: v for k, v in (kw.pop("headers", None) or {}).items() if k.lower() != "if-match"}
            self.deletes.append((key, kw.get("conditional", False)))
            kw["headers"] = headers or None
        return self._http.request(operation, method, bucket, key, **kw)


def store_like_minio(base_settings, *, trusted: bool) -> tuple[ObjectStore, IgnoresIfMatchOnDelete]:
    """A store client on the real weed that behaves as MinIO on DELETE; ``trusted``: the client
    believes the store honours If-Match there (the local default), else it uses its tombstone."""
    objects = ObjectStore.from_settings(base_settings, conditional_delete=trusted)
    wire = IgnoresIfMatchOnDelete(objects.http)
    objects.http = wire
    return objects, wire
