"""Running `lscloud up` from a test: a subprocess on free ports with its own state dir."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from lscloud.local.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 150


def wait_for(predicate, timeout: float, what: str, proc=None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n--- lscloud up output ---\n{tail}")


class Cloud:
    """One `lscloud up` subprocess and what it wrote."""

    def __init__(self, state_dir: Path, functions_dirs: list[Path], port: int, log: Path, only: list[str] = (),
                 env: dict[str, str] | None = None):
        self.state_dir, self.port, self.log = state_dir, port, log
        argv = [sys.executable, "-m", "lscloud.cli", "--state-dir", str(state_dir), "up", "--port", str(port)]
        for d in functions_dirs:
            argv += ["--functions-dir", str(d)]
        for name in only:
            argv += ["--only", name]
        self.argv = argv
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1",
                                              "LSCLOUD_E2E_PROBE_LABEL": "e2e"},
                                         start_new_session=True)
        self.gateway = f"http://127.0.0.1:{port}"

    def state(self) -> dict:
        try:
            return json.loads((self.state_dir / "cloud.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_ready(self) -> dict:
        return wait_for(lambda: (s := self.state()).get("state") == "ready" and s.get("pid") == self.proc.pid and s,
                        START_TIMEOUT_S, "the cloud to be ready", self.proc, self.log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lscloud.cli", "--state-dir", str(self.state_dir), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@contextmanager
def running(tmp_path_factory, name: str, functions_dirs: list[Path] | None = None, *, only: list[str] = (),
            env: dict[str, str] | None = None) -> Iterator[Cloud]:
    """A test module's `lscloud up`: its own state dir and free port, ready when entered, stopped
    (its whole process group) when left — also when it never became ready. ``env`` is added to the
    cloud's environment (the functions inherit it)."""
    base = tmp_path_factory.mktemp(name)
    cloud = Cloud(base / "state", functions_dirs or [ROOT / "functions"], free_port(), base / "up.log", only=only,
                  env=env)
    try:
        cloud.wait_ready()
        yield cloud
    finally:
        cloud.terminate()


def process_tree(pid: int) -> list[psutil.Process]:
    p = psutil.Process(pid)
    return [p, *p.children(recursive=True)]


class OtlpReceiver:
    """A tiny OTLP/HTTP receiver: keeps every POST to /v1/traces and /v1/metrics (protobuf)."""

    def __init__(self):
        self.posts: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path not in ("/v1/traces", "/v1/metrics"):
                    self.send_response(404)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.posts.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)

    def __enter__(self) -> "OtlpReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def raw(self, path: str | None = None) -> bytes:
        """Every body received (or only those POSTed to ``path``, e.g. ``/v1/metrics``)."""
        with self.lock:
            return b"".join(body for p, body in self.posts if path is None or p == path)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for p, _ in self.posts if p == path)

    def spans(self) -> list[dict]:
        """Every exported span as ``{service, name, kind, trace_id, span_id, parent_span_id, attributes}``."""
        with self.lock:
            bodies = [body for path, body in self.posts if path == "/v1/traces"]
        out = []
        for body in bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for rs in request.resource_spans:
                resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append({"service": resource.get("service.name"), "name": s.name,
                                    "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                                    "parent_span_id": s.parent_span_id.hex() or None,
                                    "attributes": {a.key: a.value for a in s.attributes}})
        return out
