"""Clients that stall against a function's WSGI bridge (lscloud.wsgi_bridge), on the server functions
run on (uvicorn as lscloud.function_server configures it) on a loopback port: a body that stops
coming half-way with its connection open, an answer its client stops reading. Neither may hold a
worker thread for good (the bridge here has one, so a second request answers only once it is free
again), and the stalled connection is closed.

The bounds are cut to half a second; the deadlines below only keep a failing test from hanging,
nothing is timed."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from asgi_support import Bridged, Served  # tests/integration helper module
from flask import jsonify, request
from waiting import wait_for

from lscloud import wsgi_bridge
from lscloud.auth import allow
from lscloud.config import Settings
from lscloud.function_server import FunctionApp
from lscloud.web import body_limit, create_app, raw_body

KIB = 1024
LIMIT = 1024 * KIB


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.entered = 0     # requests the app began (on the bridge's thread)
        self.inside = 0      # ... and has not returned from
        self.bodies: list[int] = []   # lengths of the bodies the upload view read whole
        self.closed = threading.Event()   # the endless stream's generator was closed


@pytest.fixture
def state():
    return State()


@pytest.fixture
def port(state, monkeypatch):
    monkeypatch.setattr(wsgi_bridge, "BODY_IDLE_S", 0.5)
    monkeypatch.setattr(wsgi_bridge, "SEND_STALL_S", 0.5)
    app = create_app("stalls", settings=Settings().replace(max_body_bytes=LIMIT))

    @app.post("/v1/upload")
    @allow("public")
    @raw_body("application/octet-stream")
    @body_limit(LIMIT)
    def upload():
        body = request.get_data()
        state.bodies.append(len(body))
        return jsonify(size=len(body))

    @app.get("/v1/ping")
    @allow("public")
    def ping():
        return jsonify(pong=True)

    @app.get("/v1/forever")
    @allow("public")
    def forever():
        def stream():
            try:
                while True:
                    yield b"f" * (64 * KIB)
            finally:
                state.closed.set()
        return app.response_class(stream(), mimetype="application/octet-stream")

    def counted(environ, start_response):
        # the app's body reading begins before any view does (lscloud.web reads it to check it)
        with state.lock:
            state.entered += 1
            state.inside += 1
        try:
            return app(environ, start_response)
        finally:
            with state.lock:
                state.inside -= 1

    bridge = wsgi_bridge.WsgiBridge(counted, workers=1)
    served = Served(FunctionApp(Bridged(bridge))).start()
    yield served.port
    served.stop()
    bridge.executor.shutdown(wait=False)


def ping(port: int) -> int:
    """The status of a plain request on a connection of its own (the bridge's one thread must be free)."""
    return httpx.get(f"http://127.0.0.1:{port}/v1/ping", timeout=10).status_code


def until_closed(sock: socket.socket, deadline_s: float = 10.0) -> bytes:
    """What the server sends until it closes the connection (an end of file, or a reset);
    AssertionError when the connection is still open at the deadline."""
    end = time.monotonic() + deadline_s
    data = b""
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(256 * KIB)
        except ConnectionResetError:
            return data
        except TimeoutError:
            break
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the connection is still open ({len(data)} bytes read)")


def test_a_body_that_stalls_half_way_frees_its_thread_and_its_connection(port, state):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"POST /v1/upload HTTP/1.1\r\nHost: fn.local\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 300000\r\n\r\n" + b"x" * 100_000)
        # ... and nothing more, the connection kept open
        wait_for(lambda: state.entered, "the app to begin (and read the body)", 10)
        assert ping(port) == 200   # the one worker thread is free again
        answer = until_closed(sock)
    finally:
        sock.close()
    # nobody reads the 400 (a reset may even destroy it); what matters is that the connection ends
    assert answer == b"" or (answer.startswith(b"HTTP/1.1 400 ") and b"connection: close\r\n" in answer.lower())
    assert state.bodies == [] and state.inside == 0   # no view ran on part of a body, the app returned


def test_an_answer_its_client_stops_reading_is_cut_off(port, state):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * KIB)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /v1/forever HTTP/1.1\r\nHost: fn.local\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4 * KIB)
            assert chunk, "the connection closed before the answer's head"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        # ... and nothing more is read
        wait_for(state.closed.is_set, "the stream's generator to be closed", 10)
        assert ping(port) == 200   # the one worker thread is free again
        answer += until_closed(sock)   # what was already on its way, then the end
    finally:
        sock.close()
    assert b"transfer-encoding: chunked\r\n" in answer.lower()
    assert not answer.endswith(b"0\r\n\r\n")   # cut off, never ended as if it were whole
