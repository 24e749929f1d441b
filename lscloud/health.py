"""Health endpoints for the platform's long-running processes that serve nothing else (the event
bridge, the devices relay): ``GET /health/liveness`` and ``GET /health/readiness``, the paths
func-python gives a function, so every workload is probed the same way.

Each answers 200 ``{"status": "ok"}`` or 503 ``{"status": "unavailable", "detail": why}`` from
the owner's ``alive()`` / ``ready()`` (each ``-> (ok, detail)``), on a thread of its own.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

LIVENESS_PATH = "/health/liveness"
READINESS_PATH = "/health/readiness"

Check = Callable[[], "tuple[bool, str]"]


class HealthServer:
    """The two probes on ``host:port`` (0: any free port, see :attr:`port`)."""

    def __init__(self, alive: Check, ready: Check, *, host: str = "0.0.0.0", port: int = 8080, name: str = "health"):
        self.name = name
        self._server = ThreadingHTTPServer((host, port), _handler({LIVENESS_PATH: alive, READINESS_PATH: ready}))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "HealthServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(checks: dict[str, Check]):
    class Health(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            check = checks.get(self.path.split("?", 1)[0])
            if check is None:
                self._answer(404, {"status": "not found"})
                return
            ok, detail = check()
            self._answer(200 if ok else 503, {"status": "ok" if ok else "unavailable", **({} if ok else {"detail": detail})})

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # probes every few seconds: not worth a log line
            pass

    return Health
