"""Uploads that come too slowly, and callers past their photo limit, against a function served as in
the cluster (uvicorn as lscloud.function_server configures it, the WSGI bridge, the body guard).

A body larger than the bridge reads up front is read on a worker thread; only the gap between two
of its bytes was bounded (BODY_IDLE_S, 30 s). Sixteen anonymous photo uploads of one byte every 5 s
held every worker thread of a reports replica, and nobody else was answered. Now a body must come at
BODY_MIN_RATE on average after BODY_GRACE_S, else it is answered 408 (a problem, both languages)
and its connection closed. And the reports photo limit is counted before the photo is read, so a
caller past it is refused without sending (or trickling) a byte of it.

The bounds are cut here (grace 1 s, 50 kB/s); the deadlines below only keep a failing test from
hanging, nothing is timed.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from types import SimpleNamespace

import httpx
import pytest
from asgi_support import Bridged, Served, closed_by_peer, exchange  # tests/integration helper module
from flask import jsonify, request
from PIL import Image
from waiting import clear_of_a_window_edge, wait_for

from lscloud import wsgi_bridge
from lscloud.auth import allow
from lscloud.config import Settings
from lscloud.function_server import FunctionApp
from lscloud.web import body_limit, create_app, raw_body

pytestmark = pytest.mark.integration

KIB = 1024
LIMIT = 1024 * KIB
ANSWER_WITHIN_S = 15.0   # a failure mode (the connection still open), below the 30 s BODY_IDLE_S


@pytest.fixture
def slow_bounds(monkeypatch):
    # raising=False: on the code before these bounds the test runs, and fails, instead of erroring
    monkeypatch.setattr(wsgi_bridge, "BODY_GRACE_S", 1.0, raising=False)
    monkeypatch.setattr(wsgi_bridge, "BODY_MIN_RATE", 50_000, raising=False)


@pytest.fixture
def one_thread(slow_bounds):
    """A function with one worker thread: a body that holds it holds the function."""
    bodies: list[int] = []
    entered = threading.Event()
    app = create_app("slow", settings=Settings().replace(max_body_bytes=LIMIT))

    @app.post("/v1/upload")
    @allow("public")
    @raw_body("application/octet-stream")
    @body_limit(LIMIT)
    def upload():
        body = request.get_data()
        bodies.append(len(body))
        return jsonify(size=len(body))

    @app.get("/v1/ping")
    @allow("public")
    def ping():
        return jsonify(pong=True)

    def counted(environ, start_response):
        entered.set()
        return app(environ, start_response)

    bridge = wsgi_bridge.WsgiBridge(counted, workers=1)
    served = Served(FunctionApp(Bridged(bridge))).start()
    yield SimpleNamespace(port=served.port, url=served.url, bodies=bodies, entered=entered)
    served.stop()
    bridge.executor.shutdown(wait=False)


def until_closed(sock: socket.socket, deadline_s: float = ANSWER_WITHIN_S) -> bytes:
    """What the server sends until it closes the connection; AssertionError if it is still open."""
    sock.settimeout(deadline_s)
    data = b""
    try:
        while chunk := sock.recv(64 * KIB):
            data += chunk
    except ConnectionResetError:
        return data
    except TimeoutError:
        raise AssertionError(f"the connection is still open ({data[:200]!r})") from None
    return data


def trickle(sock: socket.socket, stop: threading.Event, every_s: float = 0.2) -> threading.Thread:
    def run():
        while not stop.wait(every_s):
            try:
                sock.send(b"x")
            except OSError:
                return
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_body_that_trickles_is_answered_408_and_frees_its_thread(one_thread):
    sock = socket.create_connection(("127.0.0.1", one_thread.port), timeout=10)
    stop = threading.Event()
    try:
        # past what the bridge reads up front: read on the one worker thread
        sock.sendall(b"POST /v1/upload HTTP/1.1\r\nHost: fn.local\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 300000\r\n\r\n" + b"x" * 100_000)
        wait_for(one_thread.entered.is_set, "the app to begin reading the body", 10)
        trickle(sock, stop)   # a byte every 0.2 s: never idle, never done
        answer = until_closed(sock)
    finally:
        stop.set()
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b"connection: close" in head.lower() and b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["status"] == 408 and problem["type"].endswith("request-timeout")
    assert problem["detail"] and problem["detail_vi"] and problem["title_vi"]
    assert one_thread.bodies == []   # no view ran on part of a body
    assert httpx.get(one_thread.url + "/v1/ping", timeout=10).status_code == 200   # the thread is free


def test_a_body_that_comes_at_a_fair_rate_is_read_whole(one_thread):
    """The read deadline does not cut an ordinary upload short (a guard: passes before the change too)."""
    data = b"y" * 300_000
    r = httpx.post(one_thread.url + "/v1/upload", content=data,
                   headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert r.status_code == 200 and r.json() == {"size": len(data)}


# -- the reports function: its photo limit comes before the photo --------------------------------


@pytest.fixture
def reports(start_function, peers, slow_bounds):
    inst = start_function("reports", peer_url_template=peers.template, function_env={"REPORTS_PHOTO_LIMIT": "1"})
    served = Served(FunctionApp(SimpleNamespace(handle=inst.handle))).start()
    yield served
    served.stop()


def photo_head(length: int, address: str, extra: str = "") -> bytes:
    return (f"POST /v1/photos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {length}\r\nX-Forwarded-For: {address}\r\n{extra}\r\n").encode("latin-1")


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (shade, 90, 40)).save(out, "JPEG")
    return out.getvalue()


def test_a_caller_past_its_photo_limit_is_refused_before_its_photo_comes(reports):
    clear_of_a_window_edge(3_600)
    caller = "203.0.113.61"
    first = httpx.post(reports.url + "/v1/photos", content=jpeg(1), timeout=30,
                       headers={"Content-Type": "image/jpeg", "X-Forwarded-For": caller, "Idempotency-Key": "p-1"})
    assert first.status_code == 201, first.text
    # its retry after a lost answer is answered again, not counted: its photo is read for that
    again = httpx.post(reports.url + "/v1/photos", content=jpeg(1), timeout=30,
                       headers={"Content-Type": "image/jpeg", "X-Forwarded-For": caller, "Idempotency-Key": "p-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    # an 8 MB photo declared, not a byte of it sent: the 429 comes anyway
    status, got, body, sock = exchange(reports.port, photo_head(8_000_000, caller), timeout=ANSWER_WITHIN_S)
    try:
        assert status == 429, body[:300]
        problem = json.loads(body)
        assert problem["type"].endswith("rate-limited") and problem["detail_vi"], problem
        assert got["connection"] == "close" and int(got["retry-after"]) > 0
        sock.shutdown(socket.SHUT_WR)
        assert closed_by_peer(sock)
    finally:
        sock.close()
    # another caller's photo is not refused
    other = httpx.post(reports.url + "/v1/photos", content=jpeg(2), timeout=30,
                       headers={"Content-Type": "image/jpeg", "X-Forwarded-For": "203.0.113.62"})
    assert other.status_code == 201, other.text


def test_a_photo_that_trickles_is_answered_408(reports):
    clear_of_a_window_edge(3_600)
    sock = socket.create_connection(("127.0.0.1", reports.port), timeout=10)
    stop = threading.Event()
    try:
        sock.sendall(photo_head(8_000_000, "203.0.113.63") + b"\xff" * 100_000)
        trickle(sock, stop)
        answer = until_closed(sock)
    finally:
        stop.set()
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b'"detail_vi"' in answer
