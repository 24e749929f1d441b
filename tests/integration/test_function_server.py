"""How a function is served (lscloud.function_server): func-python's contract, answer for answer,
on uvicorn; and the process `python -m lscloud.serve` as Knative runs it (a real server on a
loopback port, SIGTERM while a request is in flight, a start that fails)."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest
from func_python.http import ASGIApplication

from lscloud.function_server import FunctionApp
from lscloud.local.servers import free_port
from serve_support import answers_ready, running  # tests/integration helper module
from waiting import wait_for

from asgi_support import closed_by_peer, exchange  # tests/integration helper module

ROOT = Path(__file__).resolve().parents[2]


class Instance:
    """A function instance with whichever of ``alive``/``ready`` a case gives it."""

    def __init__(self, alive=None, ready=None, fail: str = ""):
        self.calls: list[tuple] = []
        if alive is not None:
            self.alive = lambda: alive
        if ready is not None:
            self.ready = lambda: ready
        self.fail = fail

    def start(self, cfg):
        self.calls.append(("start", cfg))

    def stop(self):
        self.calls.append(("stop",))

    async def handle(self, scope, receive, send):
        if self.fail:
            raise RuntimeError(self.fail)
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-path", scope["path"].encode())]})
        await send({"type": "http.response.body", "body": b"handled"})


async def _call(app, path: str, kind: str = "http"):
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": kind, "path": path, "method": "GET", "headers": []}, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m["body"] if isinstance(m["body"], bytes) else m["body"].encode()
                    for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]).get(b"content-type"), body


CASES = {
    "no probes": {},
    "alive and ready": {"alive": True, "ready": True},
    "not ready, with a reason": {"ready": (False, "store unavailable")},
    "dead": {"alive": False},
    "ready with a message": {"ready": (True, "warming")},
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", ["/health/liveness", "/health/readiness", "/v1/things"])
def test_answers_as_func_python_does(case, path):
    ours = asyncio.run(_call(FunctionApp(Instance(**CASES[case])), path))
    theirs = asyncio.run(_call(ASGIApplication(Instance(**CASES[case])), path))
    assert ours == theirs


class SlowReady(Instance):
    """``ready()`` blocks until the test lets it answer, and counts its checks."""

    def __init__(self, answers):
        super().__init__()
        self.answers, self.checks, self.release = list(answers), 0, threading.Event()

    def ready(self):
        self.checks += 1
        assert self.release.wait(5), "the test never let the check answer"
        return self.answers[min(self.checks, len(self.answers)) - 1]


def test_a_flood_of_readiness_probes_makes_one_check_off_the_loop_and_a_failure_is_not_kept():
    # the probe path is public in the cluster: each probe asked the store and NATS, on the event loop
    instance = SlowReady([(False, "object store not ready"), True])
    app = FunctionApp(instance)

    async def scenario():
        probes = [asyncio.ensure_future(_call(app, "/health/readiness")) for _ in range(50)]
        await asyncio.sleep(0)
        # while the check blocks, the replica still answers: it runs in a thread, not on the loop
        assert (await _call(app, "/health/liveness"))[0] == 200
        assert (await _call(app, "/v1/things"))[0] == 201
        assert not any(p.done() for p in probes)
        instance.release.set()
        failed = await asyncio.gather(*probes)
        assert {f[0] for f in failed} == {500} and instance.checks == 1   # fifty probes, one check
        # a failure is asked again at the next probe; a success is kept for the next second's
        assert (await _call(app, "/health/readiness"))[0] == 200 and instance.checks == 2
        again = await asyncio.gather(*[_call(app, "/health/readiness") for _ in range(20)])
        assert {a[0] for a in again} == {200} and instance.checks == 2

    asyncio.run(scenario())


def test_a_failing_handler_is_a_500_as_in_func_python_without_the_message():
    secret = "citizen 001090012345 not found"
    status, kind, body = asyncio.run(_call(FunctionApp(Instance(fail=secret)), "/x"))
    theirs = asyncio.run(_call(ASGIApplication(Instance(fail=secret)), "/x"))
    assert theirs == (500, b"text/plain", f"Error: {secret}".encode())   # what func-python would say
    assert (status, kind) == (500, b"application/problem+json") and b"001090012345" not in body
    assert json.loads(body)["status"] == 500


def test_a_websocket_is_refused_as_in_func_python():
    ours = asyncio.run(_call(FunctionApp(Instance()), "/ws", kind="websocket"))
    theirs = asyncio.run(_call(ASGIApplication(Instance()), "/ws", kind="websocket"))
    assert ours == theirs and ours[0] == 400


def test_lifespan_starts_with_the_environment_and_stops():
    instance = Instance()
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    asyncio.run(FunctionApp(instance)({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    (start, cfg), (stop,) = instance.calls
    assert (start, stop) == ("start", "stop") and cfg == dict(os.environ) and cfg is not os.environ


def test_an_instance_without_handle_is_refused():
    with pytest.raises(AttributeError, match="handle"):
        FunctionApp(object())


SLOW_FUNCTION = '''
import asyncio, pathlib

class Slow:
    def start(self, cfg):
        self.out = pathlib.Path(cfg["OUT_DIR"])
        if cfg.get("FAIL_START"):
            raise RuntimeError("cannot start")

    def stop(self):
        (self.out / "stopped").write_text("yes")

    async def handle(self, scope, receive, send):
        (self.out / "began").write_text(scope["path"])
        (self.out / "client").write_text(scope["client"][0])
        await asyncio.sleep(1.0 if scope["path"] == "/slow" else 0)
        body = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

def new():
    return Slow()
'''


@pytest.fixture
def slow_function(tmp_path):
    root = tmp_path / "slow"
    (root / "function").mkdir(parents=True)
    (root / "function" / "__init__.py").write_text(textwrap.dedent(SLOW_FUNCTION))
    return root


@pytest.fixture
def served(slow_function, tmp_path):
    """The port of ``python -m lscloud.serve`` on the slow function, ready; SIGTERM at the end."""
    port = free_port()
    proc = _spawn(slow_function, port, tmp_path)
    try:
        wait_for(lambda: answers_ready(port), "readiness", 60, alive=running(proc, lambda: ""))
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def _spawn(function_dir: Path, port: int, out: Path, **extra) -> subprocess.Popen:
    env = {**os.environ, "LISTEN_ADDRESS": f"127.0.0.1:{port}", "OUT_DIR": str(out), **extra}
    return subprocess.Popen([sys.executable, "-m", "lscloud.serve", str(function_dir)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigterm_lets_the_request_in_flight_finish_then_stops_and_exits_0(slow_function, tmp_path):
    port = free_port()
    proc = _spawn(slow_function, port, tmp_path)
    try:
        wait_for(lambda: answers_ready(port), "readiness", 60, alive=running(proc, lambda: ""))
        answer: dict = {}
        t = threading.Thread(target=lambda: answer.update(r=httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10)))
        t.start()
        wait_for(lambda: (tmp_path / "began").exists(), "the slow request to begin", 10)
        proc.send_signal(signal.SIGTERM)
        t.join(10)
        assert answer["r"].status_code == 200 and answer["r"].text == "/slow"
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0]
    assert (tmp_path / "stopped").read_text() == "yes", output


def test_a_function_whose_start_fails_never_serves(slow_function, tmp_path):
    port = free_port()
    proc = _spawn(slow_function, port, tmp_path, FAIL_START="1")
    try:
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.communicate()[0]
    assert code != 0 and "cannot start" in output
    assert not answers_ready(port)


def test_the_server_names_nobody_and_refuses_garbage_without_hanging(served, tmp_path):
    port = served
    r = httpx.get(f"http://127.0.0.1:{port}/fast", timeout=10)
    assert r.status_code == 200 and "server" not in r.headers and "date" in r.headers
    status, headers, body, sock = exchange(port, b"NOT HTTP AT ALL\r\n\r\n", timeout=10)
    closed = sock.recv(1) == b""
    sock.close()
    # a problem like every other refusal (uvicorn's own is a text/plain sentence), and the end of it
    assert status == 400 and headers["content-type"] == "application/problem+json" and closed
    problem = json.loads(body)
    assert problem["errors"][0]["field"] == "request" and problem["title_vi"]
    # a proxy's forwarding headers are the app's to read, never rewritten into the client address
    r = httpx.get(f"http://127.0.0.1:{port}/fast", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert r.status_code == 200 and (tmp_path / "client").read_text() == "127.0.0.1"


def test_a_head_over_the_bound_is_a_431_problem_and_a_large_body_is_not(served):
    from lscloud.function_server import MAX_HEAD_BYTES

    port = served
    ok, _, _, sock = exchange(port, b"GET /fast HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * (MAX_HEAD_BYTES // 2)
                              + b"\r\n\r\n", timeout=10)
    sock.close()
    # a head of many reads: refused once past the bound, without reading (or buffering) the rest
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n")
    sent = 0
    while not select.select([sock], [], [], 0.05)[0]:   # until the server answers
        sock.sendall(b"X-B: " + b"b" * 16_000 + b"\r\n")
        sent += 16_000
        assert sent < 100 * MAX_HEAD_BYTES, "a head without bound was read on"
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    big = b"x" * (8 * MAX_HEAD_BYTES)
    posted, _, echoed, sock = exchange(port, b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                                       % len(big) + big, timeout=10)
    sock.close()
    assert ok == 200 and posted == 200 and echoed == b"/fast"
    problem = json.loads(body)
    assert (status, headers["content-type"], headers["connection"]) == (431, "application/problem+json", "close")
    assert problem["status"] == 431 and problem["errors"][0]["field"] == "headers" and problem["title_vi"]


def test_a_connection_whose_head_never_arrives_is_closed(served):
    # uvicorn alone waits for a head forever: a client could hold connections (and descriptors) open
    port = served
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    half = socket.create_connection(("127.0.0.1", port), timeout=10)
    half.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n")
    status, _, body, kept = exchange(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
    assert (status, body) == (200, b"/slow")   # a request of a second on it is no slow head
    kept.sendall(b"GET /fast HTTP/1.1\r\n")
    assert all(closed_by_peer(s, timeout=30) for s in (idle, half, kept))
    for s in (idle, half, kept):
        s.close()
    assert answers_ready(port)
