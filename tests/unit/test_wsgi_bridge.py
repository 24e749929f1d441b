"""The WSGI bridge under a function's Flask app: one hop to a worker thread per request, and the body
rules of lscloud.asgi held whether a body is read before the app runs or while it reads it.

Driven as the ASGI server drives it (scope, receive, send), with BodyGuard in front as in
``Function.handle``; no network needed for what is checked here (test_gateway.py checks the same
rules over real connections)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from flask import jsonify, request

from lscloud import asgi, wsgi_bridge
from lscloud.auth import allow
from lscloud.config import Settings
from lscloud.web import body_limit, create_app, raw_body

KIB = 1024
LIMIT = 256 * KIB


@pytest.fixture(scope="module")
def seen():
    return {"bodies": [], "threads": [], "ended": 0, "first_sent": threading.Event()}


@pytest.fixture(scope="module")
def bridge(seen):
    app = create_app("bridged", settings=Settings().replace(max_body_bytes=LIMIT))

    @app.post("/v1/upload")
    @allow("public")
    @raw_body("application/octet-stream")
    @body_limit(LIMIT)
    def upload():
        body = request.get_data()
        seen["bodies"].append(len(body))
        seen["threads"].append(threading.current_thread())
        return jsonify(size=len(body), query=request.args.get("q"), host=request.host, remote=request.remote_addr)

    @app.get("/v1/big/<int:size>")
    @allow("public")
    def big(size):
        def chunks():
            for _ in range(size // (64 * KIB)):
                yield b"b" * (64 * KIB)
        return app.response_class(chunks(), mimetype="application/octet-stream")

    @app.get("/v1/events")
    @allow("public")
    def events():
        def stream():
            yield b"event: hello\n\n"
            # the next event only once the caller has the first (as SSE clients wait on each)
            assert seen["first_sent"].wait(10), "the first event was held back"
            yield b"event: changed\n\n"
        return app.response_class(stream(), mimetype="text/event-stream")

    @app.teardown_request
    def ended(exc):
        seen["ended"] += 1

    bridge = wsgi_bridge.WsgiBridge(app, workers=4)
    yield bridge
    bridge.executor.shutdown(wait=True)


def scope(method: str, path: str, headers=(), query: bytes = b"") -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
            "headers": [(b"host", b"fn.local:8080"), *headers], "client": ("10.0.0.7", 5123),
            "server": ("127.0.0.1", 8080)}


def serve(bridge, sc: dict, messages: list[dict], seen_first: threading.Event | None = None
          ) -> tuple[list[dict], dict]:
    """Run one request: the body ``messages`` as the server would hand them, then a wait for the
    client to go (as after a whole request). Returns what was sent and what the loop saw."""
    sent: list[dict] = []
    facts = {"received": 0}
    seen_first = seen_first or threading.Event()

    async def go():
        facts["loop_thread"] = threading.current_thread()
        queue = list(messages)
        forever = asyncio.Event()

        async def receive():
            if queue:
                facts["received"] += 1
                return queue.pop(0)
            await forever.wait()

        async def send(message):
            sent.append(message)
            if b"event: hello" in message.get("body", b""):
                seen_first.set()

        guard = asgi.BodyGuard(sc, receive, send)
        await bridge(sc, guard.receive, guard.send)

    asyncio.run(go())
    return sent, facts


def body_of(sent: list[dict]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_small_body_is_read_before_the_app_and_the_answer_sent_in_one_go(bridge, seen):
    sc = scope("POST", "/v1/upload", [(b"content-type", b"application/octet-stream"), (b"content-length", b"10")],
               query=b"q=xin%20ch%C3%A0o")
    sent, facts = serve(bridge, sc, [{"type": "http.request", "body": b"12345", "more_body": True},
                                     {"type": "http.request", "body": b"67890", "more_body": False}])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]  # one hop, one answer
    assert sent[0]["status"] == 200 and sent[-1].get("more_body", False) is False
    assert (b"connection", b"close") not in sent[0]["headers"]  # the body was read: the connection stays
    import json
    assert json.loads(body_of(sent)) == {"size": 10, "query": "xin chào", "host": "fn.local:8080", "remote": "10.0.0.7"}
    assert seen["threads"][-1] is not facts["loop_thread"]  # the app never runs on the event loop


def test_a_chunked_body_is_read_as_the_app_asks_and_whole(bridge, seen):
    sc = scope("POST", "/v1/upload", [(b"content-type", b"application/octet-stream"), (b"transfer-encoding", b"chunked")])
    parts = [{"type": "http.request", "body": b"c" * (48 * KIB), "more_body": True} for _ in range(4)]
    sent, _ = serve(bridge, sc, [*parts, {"type": "http.request", "body": b"", "more_body": False}])
    assert sent[0]["status"] == 200 and seen["bodies"][-1] == 4 * 48 * KIB


@pytest.mark.parametrize("length", [b"10", str(200 * KIB).encode(), None])
def test_an_abandoned_body_never_reaches_the_view(bridge, seen, length):
    """Read up front (small), or from the thread (large, chunked): a sender that leaves half-way is a
    400 and the view does not run on the part that came."""
    headers = [(b"content-type", b"application/octet-stream")]
    headers.append((b"content-length", length) if length else (b"transfer-encoding", b"chunked"))
    views, ended = len(seen["bodies"]), seen["ended"]
    sent, _ = serve(bridge, scope("POST", "/v1/upload", headers),
                    [{"type": "http.request", "body": b"12345", "more_body": True}, {"type": "http.disconnect"}])
    assert sent[0]["status"] == 400
    assert len(seen["bodies"]) == views and seen["ended"] == ended + 1  # the app finished the request


@pytest.mark.parametrize("length", [b"10", str(200 * KIB).encode(), None])
def test_a_body_that_stalls_half_way_is_abandoned_and_its_connection_not_kept(bridge, seen, monkeypatch, length):
    """Its sender still connected but sending nothing more: read up front or from the thread, the app
    reads BodyIncomplete once BODY_IDLE_S has passed (the thread is not held), and the answer is
    left unfinished after Connection: close, so the server closes the connection instead of draining
    a body that does not come."""
    monkeypatch.setattr(wsgi_bridge, "BODY_IDLE_S", 0.2)
    headers = [(b"content-type", b"application/octet-stream")]
    headers.append((b"content-length", length) if length else (b"transfer-encoding", b"chunked"))
    views, ended = len(seen["bodies"]), seen["ended"]
    sent, _ = serve(bridge, scope("POST", "/v1/upload", headers),
                    [{"type": "http.request", "body": b"12345", "more_body": True}])   # then nothing, ever
    assert sent[0]["status"] == 400 and (b"connection", b"close") in sent[0]["headers"]
    assert all(m.get("more_body") for m in sent[1:])   # never ended: the server closes the connection
    assert len(seen["bodies"]) == views and seen["ended"] == ended + 1


def test_an_answer_its_client_stops_taking_is_cut_off_and_the_app_closed(monkeypatch):
    """A client that stops reading a stream: once a chunk waits SEND_STALL_S, the app's iteration ends
    (its generator closed: an SSE stream unsubscribes), the thread is free, and the answer is left
    unfinished so that the server closes the connection; no error status (it had started)."""
    monkeypatch.setattr(wsgi_bridge, "SEND_STALL_S", 0.2)
    closed = threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def stream():
            try:
                while True:
                    yield b"data: tick\n\n"
            finally:
                closed.set()
        return stream()

    bridge = wsgi_bridge.WsgiBridge(app, workers=1)
    sent: list[dict] = []

    async def go():
        stuck = asyncio.Event()

        async def receive():
            await stuck.wait()

        async def send(message):
            if len(sent) == 3:   # the client takes nothing more
                await stuck.wait()
            sent.append(message)

        await bridge(scope("GET", "/v1/stream"), receive, send)

    try:
        asyncio.run(go())
        assert closed.is_set() and len(sent) == 3
        assert sent[0]["status"] == 200 and all(m.get("more_body") for m in sent[1:])
    finally:
        bridge.executor.shutdown(wait=True)


def test_a_large_body_over_the_limit_is_refused_before_it_is_read(bridge, seen):
    size = LIMIT + 1
    sc = scope("POST", "/v1/upload", [(b"content-type", b"application/octet-stream"),
                                      (b"content-length", str(size).encode())])
    chunks = [{"type": "http.request", "body": b"x" * (64 * KIB), "more_body": True} for _ in range(size // (64 * KIB))]
    chunks.append({"type": "http.request", "body": b"x" * (size % (64 * KIB)), "more_body": False})
    sent, facts = serve(bridge, sc, chunks)
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    assert sent[-1].get("more_body", False) is False


def test_a_large_answer_streams(bridge):
    size = wsgi_bridge.BUFFER_LIMIT + 256 * KIB
    sent, _ = serve(bridge, scope("GET", f"/v1/big/{size}"), [{"type": "http.request", "body": b"", "more_body": False}])
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) > 2 and all(m.get("more_body") for m in bodies[:-1]) and not bodies[-1].get("more_body")
    assert len(body_of(sent)) == size


def test_an_answer_of_unknown_length_streams_from_its_first_chunk(bridge, seen):
    """Server-Sent Events: the app sends its next event only after the caller has the first; a
    bridge holding the answer until the app returns would never let it (the IOC wall's stream)."""
    sent, _ = serve(bridge, scope("GET", "/v1/events"), [{"type": "http.request", "body": b"", "more_body": False}],
                    seen["first_sent"])
    assert sent[0]["status"] == 200 and (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert body_of(sent) == b"event: hello\n\nevent: changed\n\n" and seen["ended"]


def test_the_environ_is_pep_3333():
    environ = wsgi_bridge.build_environ(scope("GET", "/v1/units/Lạng Sơn", [(b"x-a", b"1"), (b"x-a", b"2"),
                                                                            (b"content-type", b"text/plain")],
                                             query=b"a=1"))
    assert environ["PATH_INFO"] == "/v1/units/Lạng Sơn".encode().decode("latin-1")
    assert environ["QUERY_STRING"] == "a=1" and environ["HTTP_X_A"] == "1,2" and environ["CONTENT_TYPE"] == "text/plain"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1" and environ["REMOTE_ADDR"] == "10.0.0.7"
    assert environ["wsgi.input_terminated"] is True
