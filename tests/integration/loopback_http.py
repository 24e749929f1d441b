"""A loopback HTTP/1.1 server that answers exactly the bytes a test scripts: for the runtime's own
HTTP clients (lscloud.connections, lscloud.http_client), whose tests need answers no real server
gives on demand (a hang-up after an answer, an answer that is not HTTP, one that never comes).

The ``serve`` fixture (tests/integration/conftest.py) starts one: ``serve(answer)``, where
``answer(method, path, headers, body)`` returns the raw answer, or ``(raw, True)`` to hang up after
it, or None to hang up without answering. The server records each request as ``(method, path,
headers, body)`` (header names lower-case) and counts connections.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Callable


Answer = Callable[[str, str, dict, bytes], "bytes | tuple[bytes, bool] | None"]


class LoopbackServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: Answer, host: str = "127.0.0.1"):
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.answer, self.accepted, self.requests = answer, 0, []
        self.lock = threading.Lock()
        self.hung_up = threading.Semaphore(0)   # released once a connection is closed on this side
        super().__init__((host, 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def shutdown_request(self, request):
        super().shutdown_request(request)
        self.hung_up.release()

    def handle_error(self, request, client_address):
        pass   # a client that hung up mid-answer (a bound, a timeout) is what some tests do

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        with self.server.lock:
            self.server.accepted += 1
        while line := self.rfile.readline():
            headers = {}
            while (h := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = h.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = self.rfile.read(int(headers.get("content-length", 0)))
            method, path = line.decode().split()[:2]
            with self.server.lock:
                self.server.requests.append((method, path, headers, body))
            raw = self.server.answer(method, path, headers, body)
            hang_up = raw is None
            if isinstance(raw, tuple):
                raw, hang_up = raw
            if raw:
                self.wfile.write(raw)
                self.wfile.flush()
            if hang_up:
                return


def ok(body: bytes, *extra: str) -> bytes:
    """A 200 answer of ``body`` as JSON, with ``extra`` header lines."""
    head = "".join(f"{h}\r\n" for h in extra)
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def scripted(*answers: tuple[bytes, bool]) -> Answer:
    """Each request answered with the next of ``answers`` (raw, hang up after it); none left: hang up."""
    left = list(answers)
    return lambda *_: left.pop(0) if left else None
