"""The local gateway with real servers behind it (served as functions are: lscloud.function_server).

- It routes exactly the path it forwards: no spelling of ``/<function>/events`` or
  ``/<function>/health/...`` reaches a function, and an accepted path arrives byte for byte.
- Every error it produces itself is problem+json with the right status (400 for a malformed
  path, naming it; 502 for an upstream that drops the connection; 413 for a body over its cap).
- An oversized body, by Content-Length or chunked, leaves no half-read connection behind: the
  next request to the same function is answered normally (the function is a real lscloud
  function, Flask behind ``lscloud.knative``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time

import httpx
import pytest
from flask import jsonify, request

from asgi_support import Served, closed_by_peer, exchange  # tests/integration helper module
from waiting import wait_for  # tests/integration helper module
from lscloud import knative, web
from lscloud.auth import allow
from lscloud.local.gateway import Gateway, GatewayServer, Route
from lscloud.local.servers import free_port

pytestmark = pytest.mark.integration

KIB, MIB = 1024, 1024 * 1024
JSON_LIMIT = 256 * KIB  # the function's default body limit
UPLOAD_LIMIT = 3 * MIB  # its upload route's (@body_limit), also the gateway's cap

# every spelling found (or feared) to reach /events or /health once a later step normalises or decodes
FORGED = [
    "/border/x/../events", "/border/./events", "/border/x/./../events", "//events", "//border/events",
    "/border//events", "/border/events/", "/border/events/.", "/border/events/..", "/border/events.",
    "/border/events%2e", "/border/events%2E%2e", "/border/%2e/events", "/border/%2E%2E/events",
    "/border/x/%2e%2e/events", "/border/x/.%2e/events", "/border/x/%2e./events", "/border/x%2f..%2fevents",
    "/border/x%2F%2E%2E%2Fevents", "/border/x/..%2fevents", "/border/x\\..\\events", "/border/x%5c..%5cevents",
    "/border/x%5C%2e%2e%5Cevents", "/border/%65vents", "/border/%45VENTS", "/border/EVENTS", "/border/Events",
    "/border/events;jsessionid=1", "/border/%252e%252e/events", "/border/x/%252e%252e/events",
    "/%62order/events", "/border/events?x=1", "/border/events/x", "/border/health/readiness",
    "/border/health/liveness", "/border/HEALTH/readiness", "/border/health%2freadiness",
    "/border/x/../health/liveness", "/border/%68ealth/readiness", "http://127.0.0.1/border/events",
    "/border/events%00", "/border/events%20", "/border/events%09",
]


class Recorder:
    """A function stand-in that records what reached it (path, raw path, query) and answers 200."""

    def __init__(self):
        self.seen: list[tuple[str, bytes, bytes]] = []
        self.headers: list[dict[bytes, bytes]] = []
        self.header_lists: list[list[tuple[bytes, bytes]]] = []   # every line, repeats kept
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        with self.lock:
            self.seen.append((scope["path"], scope["raw_path"], scope["query_string"]))
            self.headers.append(dict(scope["headers"]))
            self.header_lists.append(list(scope["headers"]))
        body = json.dumps({"path": scope["path"], "raw_path": scope["raw_path"].decode("latin-1"),
                           "query": scope["query_string"].decode("latin-1")}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class Rude:
    """An upstream that resets every connection once it has read the request head (httpx.ReadError)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.answer(conn)

    def answer(self, conn: socket.socket) -> None:
        """What it does once it has the request head: close with a reset (no answer at all)."""
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def close(self):
        self.sock.close()


class Short(Rude):
    """An upstream that answers 200 with a Content-Length of 100 and closes after 10 bytes of it."""

    def answer(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                     b'{"ok": tru')


# --- the real function behind the gateway --------------------------------------------------------

UPLOADS: list[int] = []
STARTED: list[str] = []  # the X-Probe header of every request the app was called for (before its body is read)
ENDED: list[str] = []   # ... of every request the app finished, whatever its answer
VIEWED: list[str] = []  # ... of every upload that reached the view


def create_app(settings):
    app = web.create_app("sizes", settings=settings)

    @app.post("/v1/echo")
    @allow("public")
    def echo():
        """JSON up to the default limit."""
        return jsonify(size=len(request.get_data()))

    @app.post("/v1/upload")
    @allow("public")
    @web.raw_body("application/octet-stream")
    @web.body_limit(UPLOAD_LIMIT)
    def upload():
        """A file up to the upload limit."""
        UPLOADS.append(len(request.get_data()))
        VIEWED.append(request.headers.get("X-Probe", ""))
        return jsonify(size=UPLOADS[-1]), 201

    @app.get("/v1/ping")
    @allow("public")
    def ping():
        """Alive."""
        return jsonify(ok=True)

    @app.teardown_request
    def ended(exc):
        ENDED.append(request.headers.get("X-Probe", ""))

    wsgi_app = app.wsgi_app

    def started(environ, start_response):
        STARTED.append(environ.get("HTTP_X_PROBE", ""))
        return wsgi_app(environ, start_response)

    app.wsgi_app = started
    return app


@pytest.fixture(scope="module")
def function_server(base_settings):
    from lscloud.function_server import FunctionApp

    instance = knative.function(create_app, needs=())()
    env = base_settings.replace(service="sizes", max_body_bytes=JSON_LIMIT, blob_max_bytes=UPLOAD_LIMIT).env_vars()
    with pytest.MonkeyPatch.context() as mp:  # func-python's lifespan start reads the environment
        for name, value in env.items():
            mp.setenv(name, value)
        served = Served(FunctionApp(instance)).start()
        try:
            httpx.get(served.url + "/health/readiness", timeout=30).raise_for_status()
            yield served
        finally:
            served.stop()


@pytest.fixture(scope="module")
def recorder():
    app = Recorder()
    served = Served(app).start()
    served.recorder = app
    yield served
    served.stop()


@pytest.fixture(scope="module")
def upstreams(recorder, function_server):
    rude, short = Rude(), Short()
    yield {"border": Route("border", recorder.port, "ready"), "sizes": Route("sizes", function_server.port, "ready"),
           "rude": Route("rude", rude.port, "ready"), "gone": Route("gone", free_port(), "ready"),
           "short": Route("short", short.port, "ready"), "starting": Route("starting", free_port(), "starting")}
    rude.close()
    short.close()


def serve_gateway(routes: dict, fast_path: bool) -> GatewayServer:
    # a short read timeout: a request stuck behind a half-read connection fails as a 504 quickly
    server = GatewayServer(Gateway(lambda: routes, read_timeout_s=15, max_body_bytes=UPLOAD_LIMIT, fast_path=fast_path),
                           "127.0.0.1", free_port()).start()
    server.url = f"http://{server.host}:{server.port}"
    return server


# every test runs against both ways in: the aiohttp-native path for bodyless forwards, and ASGI only
@pytest.fixture(scope="module", params=["fast", "asgi"])
def gateway(request, upstreams):
    server = serve_gateway(upstreams, fast_path=request.param == "fast")
    yield server
    server.stop()


def raw(gateway, method: str, target: str, body: bytes = b"", headers: str = "") -> tuple[int, dict, bytes]:
    """One request with ``target`` exactly as written (no client normalising it), on a new connection.
    A GET or HEAD without a body says no Content-Length (as clients send them: the gateway's fast path)."""
    length = f"Content-Length: {len(body)}\r\n" if body or method not in ("GET", "HEAD") else ""
    request = (f"{method} {target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n{headers}"
               f"{length}\r\n").encode("latin-1") + body
    status, head, content, sock = exchange(gateway.port, request)
    sock.close()
    return status, head, content


def problem_of(status: int, head: dict, content: bytes) -> dict:
    assert head["content-type"] == "application/problem+json", (status, content[:200])
    doc = json.loads(content)
    assert doc["status"] == status and doc["title"] and doc["detail"] and doc["title_vi"] and doc["detail_vi"]
    return doc


# --- item 1: the path it decides on is the path it forwards --------------------------------------

@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("target", FORGED)
def test_no_spelling_of_an_internal_route_reaches_the_function(gateway, recorder, target, method):
    before = len(recorder.recorder.seen)
    body = b'{"specversion": "1.0"}' if method == "POST" else b""
    status, head, content = raw(gateway, method, target, body,
                                "ce-specversion: 1.0\r\nce-id: forged\r\nce-source: /x\r\nce-type: vn.langson.x.y.v1\r\n"
                                "Content-Type: application/json\r\n")
    assert status in (400, 404), (target, status, content[:200])
    problem_of(status, head, content)
    assert recorder.recorder.seen[before:] == [], target


def test_an_accepted_path_is_forwarded_byte_for_byte(gateway, recorder):
    for target, path, raw_path, query in [
        ("/border/v1/items/a%3Fb%23c?x=1&y=%zz", "/v1/items/a?b#c", b"/v1/items/a%3Fb%23c", b"x=1&y=%zz"),
        ("/border/v1/items/L%e1%ba%a1ng%20S%C6%A1n", "/v1/items/Lạng Sơn", b"/v1/items/L%e1%ba%a1ng%20S%C6%A1n", b""),
        ("/border/v1/items/a+b:c@d!$&'()*,;=~_-", "/v1/items/a+b:c@d!$&'()*,;=~_-", b"/v1/items/a+b:c@d!$&'()*,;=~_-", b""),
        ("/border/v1/items/", "/v1/items/", b"/v1/items/", b""),
        ("/border", "/", b"/", b""),
        ("/border/?q=%E1%BA%A1", "/", b"/", b"q=%E1%BA%A1"),
        ("/border/v1/event-types/events", "/v1/event-types/events", b"/v1/event-types/events", b""),
    ]:
        status, _, content = raw(gateway, "GET", target)
        assert status == 200, (target, content[:200])
        assert recorder.recorder.seen[-1] == (path, raw_path, query), target


@pytest.mark.parametrize("target", [
    "/border/v1/items/a%00b", "/border/v1/items/a%0Ab", "/border/v1/items/a%7fb", "/border/v1/items/%C2%85",
    "/border/v1/items/%FF", "/border/v1/items/a%", "/border/v1/items/a%zz", "/border/v1/items/a%2Fb",
    "/border/v1/items/a%5Cb", '/border/v1/items/a"b', "/border/v1/items/a<b>", "/border/v1/items/a{b}",
    "/border/v1/items/a|b", "/border/v1/items/a^b", "/border/v1/items/a`b", "/border/v1/items//x",
])
def test_a_malformed_path_is_a_400_naming_it(gateway, recorder, target):
    before = len(recorder.recorder.seen)
    status, head, content = raw(gateway, "GET", target)
    assert status == 400, (target, status, content[:200])
    doc = problem_of(400, head, content)
    assert doc["type"].endswith("/malformed-path") and doc["errors"][0]["field"] == "path"
    assert "/border/v1/items/" in doc["detail"]
    assert recorder.recorder.seen[before:] == []


def test_a_header_a_function_takes_is_forwarded(gateway, recorder):
    """A 20 KB header (a large cookie or token) passes the gateway as it passes the cluster's: aiohttp
    alone refuses a header line over 8,190 bytes, and the functions take 64 KiB of head."""
    before = len(recorder.recorder.seen)
    status, _, content = raw(gateway, "GET", "/border/v1/items/big", headers="X-Big: " + "a" * 20_000 + "\r\n")
    assert status == 200, (status, content[:200])
    assert recorder.recorder.seen[before:] == [("/v1/items/big", b"/v1/items/big", b"")]


def test_what_the_gateway_says_of_the_request_is_its_own_not_the_clients(gateway, recorder):
    """X-Forwarded-Host, -Proto and -Prefix are the gateway's to say (a function's links are built
    from them, lscloud.web.origin, which reads the first): a client's own are dropped, not passed on."""
    status, _, _ = raw(gateway, "GET", "/border/v1/items/origin",
                       headers="X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: javascript\r\n"
                               "X-Forwarded-Prefix: /elsewhere\r\nForwarded: host=evil.example\r\n")
    assert status == 200
    lines = recorder.recorder.header_lists[-1]
    said = {name: [v for k, v in lines if k == name] for name in
            (b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-prefix", b"forwarded")}
    assert said == {b"x-forwarded-host": [b"gw"], b"x-forwarded-proto": [b"http"],
                    b"x-forwarded-prefix": [b"/border"], b"forwarded": []}


# a request line holding what a citizen's request may hold: their CCCD in a path (Lạng Sơn, born
# 1990); and one holding a secret no redaction pattern knows (an Open311 API key in the query)
SECRET_LINE = b"GET /identity/v1/citizens/020090001234 HTTP/1.1 trailing"
KEY_LINE = b"GET /reports/open311/v2/requests.json?api_key=k3y-s3cr3t-value HTTP/1.1 trailing"


@pytest.mark.parametrize("request_bytes, status, field", [
    (b"NOT HTTP AT ALL\r\n\r\n", 400, "request"),
    (SECRET_LINE + b"\r\nHost: gw\r\n\r\n", 400, "request"),
    (KEY_LINE + b"\r\nHost: gw\r\n\r\n", 400, "request"),
    (b"GET /border/v1/x HTTP/1.1\r\nHost: gw\r\nX-Cccd-020090001234: " + b"a" * (70 * KIB) + b"\r\n\r\n",
     431, "headers"),
])
def test_what_the_gateway_cannot_parse_is_a_problem_that_repeats_none_of_it(gateway, recorder, caplog,
                                                                              request_bytes, status, field):
    """As a function answers it (``lscloud.function_server``): aiohttp's own answer is text/plain and
    repeats the bytes it could not parse, and its log line keeps them."""
    before = len(recorder.recorder.seen)
    with caplog.at_level("DEBUG"):
        got, head, content, sock = exchange(gateway.port, request_bytes, timeout=10)
        closed = closed_by_peer(sock, timeout=10)
        sock.close()
    assert got == status and closed, content[:200]
    doc = problem_of(status, head, content)
    assert doc["errors"][0]["field"] == field
    assert head["server"] == "lscloud-gateway"
    for sent in (b"020090001234", b"k3y-s3cr3t-value", b"NOT HTTP"):
        assert sent not in content
        # aiohttp logged the line it could not parse with its traceback: under `lscloud up` the gateway's
        # log redaction replaced a CCCD there, but not a secret of no known shape
        assert sent.decode() not in caplog.text
    assert recorder.recorder.seen[before:] == []


def test_the_gateway_names_itself_without_a_version(gateway):
    status, head, _ = raw(gateway, "GET", "/border/v1/items/x")   # forwarded
    assert status == 200 and head["server"] == "lscloud-gateway"
    status, head, _ = raw(gateway, "GET", "/nobody/v1/x")          # answered by the gateway itself
    assert status == 404 and head["server"] == "lscloud-gateway"


def test_gateway_errors_are_problems(gateway):
    status, head, content = raw(gateway, "GET", "/rude/v1/anything")  # the upstream resets the connection
    assert status == 502, content[:200]
    assert problem_of(502, head, content)["type"].endswith("/bad-gateway")
    status, head, content = raw(gateway, "GET", "/gone/v1/anything")  # nothing listens
    assert status == 502 and problem_of(502, head, content)
    status, head, content = raw(gateway, "GET", "/nobody/v1/x")
    assert status == 404 and problem_of(404, head, content)["type"].endswith("/function-not-found")
    status, head, content = raw(gateway, "GET", "/starting/v1/x")  # nothing listens yet: it is starting
    assert status == 503 and problem_of(503, head, content)["type"].endswith("/function-unavailable")
    assert head["retry-after"] == "2"


def test_an_answer_cut_short_is_a_502_not_a_truncated_200(gateway):
    """The function promised 100 bytes and closed after 10: the client gets a problem, never the
    10 bytes as a whole answer (the gateway reads a small answer whole before sending anything)."""
    for method in ("GET", "POST"):
        status, head, content = raw(gateway, method, "/short/v1/x", b"{}" if method == "POST" else b"")
        assert status == 502, (method, status, content[:200])
        assert problem_of(502, head, content)["type"].endswith("/bad-gateway")


# --- both ways in: the aiohttp-native path refuses and forwards exactly as the ASGI app ---------

@pytest.fixture(scope="module")
def both(upstreams):
    fast, slow = serve_gateway(upstreams, fast_path=True), serve_gateway(upstreams, fast_path=False)
    # what the fast path forwarded itself: "alike" says nothing if it handed everything to the ASGI app
    forward_native, fast.native = fast.app._forward_native, []

    async def counted(request, *args):
        fast.native.append(request.raw_path)
        return await forward_native(request, *args)

    fast.app._forward_native = counted
    yield fast, slow
    fast.stop()
    slow.stop()


ALIKE = [*FORGED, "/border/v1/items/a%3Fb%23c?x=1&y=%zz", "/border/v1/items/L%e1%ba%a1ng%20S%C6%A1n",
         "/border", "/border/?q=%E1%BA%A1", "/border/v1/items/a%00b", "/border/v1/items/%FF", "/border/v1/items/a%2Fb",
         "/border/v1/items//x", "/border/v1/items/a%", "/nobody/v1/x", "/rude/v1/x", "/gone/v1/x", "/starting/v1/x",
         "/short/v1/x", "/sizes/v1/ping", "/sizes/v1/nothing-here", "/docs/nothing", "/sizes/health/readiness"]


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_both_ways_in_answer_every_bodyless_request_alike(both, recorder, method):
    """Every refusal (400 malformed, 404 unknown or internal, 502, 503), every forward (byte for
    byte), through the fast path and through the ASGI app: the same status, headers and body."""
    fast, slow = both
    natively = len(fast.native)
    for target in ALIKE:
        answers = []
        for gateway in (fast, slow):
            before = len(recorder.recorder.seen)
            status, head, content = raw(gateway, method, target)
            seen = recorder.recorder.seen[before:]
            # what the function got, headers too (X-Forwarded-*, hop-by-hop dropped); each span its own id
            seen += [{k: v for k, v in h.items() if k != b"traceparent"} for h in recorder.recorder.headers[before:]]
            head = {k: v for k, v in head.items() if k != "date"}
            content = re.sub(rb'"trace_id": "[0-9a-f]{32}"', b'"trace_id": "-"', content)  # each request its own
            answers.append((status, head, content, seen))
        assert answers[0] == answers[1], (method, target, answers)
        assert answers[0][1].get("connection") == "close"   # the client asked to close: closed after the answer
    if method != "DELETE":  # (raw() sends a DELETE with Content-Length: 0, which the fast path leaves to ASGI)
        assert {"/sizes/v1/ping", "/border"} <= set(fast.native[natively:])  # forwards took the fast path


def test_a_bodyless_forward_keeps_the_connection_and_the_next_body_is_refused_alike(both):
    """On one client connection: bodyless GETs (fast path), then a body over the cap (413 by the
    ASGI app, closing the connection it did not read), on each gateway."""
    for gateway in both:
        request = b"GET /sizes/v1/ping HTTP/1.1\r\nHost: gw\r\n\r\n"
        status, head, content, sock = exchange(gateway.port, request)
        try:
            assert status == 200 and json.loads(content) == {"ok": True} and "connection" not in head
            status, head, content, _ = exchange(gateway.port, request, sock=sock)
            assert status == 200 and json.loads(content) == {"ok": True}
            over = (b"POST /sizes/v1/upload HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Length: %d\r\n\r\n" % (UPLOAD_LIMIT + 1))
            sock.sendall(over)
            status, head, content, _ = exchange(gateway.port, b"", sock=sock)
            assert status == 413 and head["connection"] == "close"
            assert problem_of(413, head, content)["errors"][0]["field"] == "body"
        finally:
            sock.close()


def test_both_ways_in_continue_the_callers_trace(both, recorder):
    """The gateway's SERVER span (conventional name and attributes) is the child of the caller's
    traceparent, and the function gets the gateway span's context as its parent: on both paths."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from lscloud import config, telemetry

    telemetry.setup(config.Settings(service="gateway-test"))
    spans = InMemorySpanExporter()
    telemetry.use_span_exporter(spans)
    for gateway, probe in zip(both, ("fast", "asgi")):
        trace_id, caller = os.urandom(16).hex(), os.urandom(8).hex()
        status, _, _ = raw(gateway, "GET", f"/border/v1/traced/{probe}",
                           headers=f"traceparent: 00-{trace_id}-{caller}-01\r\ntracestate: lscloud=t\r\n")
        assert status == 200
        assert (f"/border/v1/traced/{probe}" in getattr(gateway, "native", [])) == (probe == "fast")
        got = recorder.recorder.headers[-1]
        assert recorder.recorder.seen[-1][1] == f"/v1/traced/{probe}".encode()
        version, seen_trace, parent, flags = got[b"traceparent"].decode().split("-")
        assert (version, seen_trace, flags) == ("00", trace_id, "01") and parent != caller, probe
        assert got[b"tracestate"] == b"lscloud=t"
        # the span ends once the answer is written: wait for it rather than race the gateway's loop
        (span,) = wait_for(lambda: [s for s in spans.get_finished_spans() if s.context.trace_id == int(trace_id, 16)],
                           f"the gateway's span of trace {trace_id}")
        # the HTTP conventions' server span name: "{method} {http.route}"
        assert span.name == "GET /border/*" and span.kind.name == "SERVER", probe
        assert f"{span.context.span_id:016x}" == parent and f"{span.parent.span_id:016x}" == caller
        assert span.attributes["http.response.status_code"] == 200
        assert span.attributes["http.route"] == "/border/*" and span.attributes["url.path"] == f"/border/v1/traced/{probe}"


@pytest.mark.parametrize("target, status", [("/gone/v1/x", 502), ("/starting/v1/x", 503), ("/rude/v1/x", 502),
                                            ("/short/v1/x", 502), ("/sizes/v1/nothing-here", 404)])
def test_a_5xx_the_gateway_answers_itself_is_an_error_span_and_a_4xx_is_not(both, target, status):
    """Nothing listening (502), a function restarting (503), one that drops the connection or cuts
    its answer short (502): the gateway's own answers are server errors, so its SERVER span is an
    ERROR span with ``error.type`` the status code, on both ways in. A function's 404 is the
    caller's mistake: no status, no ``error.type``."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from lscloud import config, telemetry

    telemetry.setup(config.Settings(service="gateway-test"))
    spans = InMemorySpanExporter()
    telemetry.use_span_exporter(spans)
    for gateway in both:
        trace_id = os.urandom(16).hex()
        got, _, _ = raw(gateway, "GET", target, headers=f"traceparent: 00-{trace_id}-{os.urandom(8).hex()}-01\r\n")
        assert got == status
        # the gateway's span (a real function records its own in the same trace)
        (span,) = wait_for(lambda: [s for s in spans.get_finished_spans() if s.context.trace_id == int(trace_id, 16)
                                    and "lscloud.function" in s.attributes], f"the gateway's span of trace {trace_id}")
        assert span.attributes["http.response.status_code"] == status
        if status >= 500:
            assert (span.status.status_code.name, span.attributes.get("error.type")) == ("ERROR", str(status)), target
        else:
            assert span.status.status_code.name == "UNSET" and "error.type" not in span.attributes, target
        route = span.attributes["http.route"]
        assert span.name == f"GET {route}" and route == "/" + target.split("/")[1] + "/*"


# --- item 2: oversized bodies --------------------------------------------------------------------

def test_an_oversized_body_leaves_the_next_request_unaffected(gateway, function_server):
    """The function refuses a body over its limit early, by Content-Length or chunked, and the next
    unrelated request through the gateway (on its pooled connection to the function) is answered."""

    def chunks(n: int, size: int = 64 * KIB):
        for _ in range(n // size):
            yield b"x" * size

    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        assert client.get("/sizes/v1/ping").status_code == 200  # a pooled connection to the function
        for round_ in range(3):
            by_length = client.post("/sizes/v1/echo", content=b"x" * (2 * MIB), headers={"content-type": "application/json"})
            assert by_length.status_code == 413, (round_, by_length.text[:200])
            assert by_length.headers["content-type"] == "application/problem+json"
            after = client.get("/sizes/v1/ping")
            assert after.status_code == 200, (round_, after.text[:200])
            chunked = client.post("/sizes/v1/echo", content=chunks(2 * MIB), headers={"content-type": "application/json"})
            assert chunked.status_code == 413, (round_, chunked.text[:200])
            assert chunked.json()["detail"] == f"The request body exceeds {JSON_LIMIT} bytes."
            assert client.get("/sizes/v1/ping").status_code == 200
        # uploads up to the route's own limit still pass the gateway's cap
        ok = client.post("/sizes/v1/upload", content=b"u" * (2 * MIB + 5), headers={"content-type": "application/octet-stream"})
        assert ok.status_code == 201 and ok.json() == {"size": 2 * MIB + 5}
        ok = client.post("/sizes/v1/upload", content=chunks(UPLOAD_LIMIT), headers={"content-type": "application/octet-stream"})
        assert ok.status_code == 201 and ok.json() == {"size": UPLOAD_LIMIT}
        assert client.get("/sizes/v1/ping").status_code == 200


def test_a_body_over_the_gateway_cap_is_refused_there(gateway, function_server):
    uploads = len(UPLOADS)
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        big = client.post("/sizes/v1/upload", content=b"u" * (UPLOAD_LIMIT + 1), headers={"content-type": "application/octet-stream"})
        assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
        assert big.json()["errors"][0]["field"] == "body"

        def stream():
            for _ in range(UPLOAD_LIMIT // (64 * KIB) + 2):
                yield b"u" * (64 * KIB)

        chunked = client.post("/sizes/v1/upload", content=stream(), headers={"content-type": "application/octet-stream"})
        assert chunked.status_code == 413 and chunked.headers["content-type"] == "application/problem+json"
        assert client.get("/sizes/v1/ping").status_code == 200
    assert len(UPLOADS) == uploads  # neither reached the function's view


def test_the_function_closes_a_connection_it_answered_early(function_server):
    """Directly, without the gateway: after an early 413 the function says Connection: close and
    closes, instead of keeping a connection whose unread body would swallow the next request."""
    for raw in (
        b"POST /v1/echo HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (2 * MIB)
        + b"x" * (2 * MIB),
        b"POST /v1/echo HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"10000\r\n" + b"x" * 65536 + b"\r\n" for _ in range(32)) + b"0\r\n\r\n",
    ):
        status, head, content, sock = exchange(function_server.port, raw)
        try:
            assert status == 413 and head["connection"] == "close" and json.loads(content)["status"] == 413
            assert closed_by_peer(sock)
        finally:
            sock.close()
    # a request that was read to its end keeps its connection
    status, head, _, sock = exchange(function_server.port, b"POST /v1/echo HTTP/1.1\r\nHost: f\r\n"
                                     b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    try:
        assert status == 200 and "connection" not in head
        again, _, content, _ = exchange(function_server.port, b"GET /v1/ping HTTP/1.1\r\nHost: f\r\n\r\n", sock=sock)
        assert again == 200 and json.loads(content) == {"ok": True}
    finally:
        sock.close()


def _abandoned_upload(port: int, target: str, probe: str) -> None:
    """A chunked upload cut short: a chunk, and once the function's app has the request a second
    one, then the connection closed without the last chunk. (Leaving before the request reached
    the function would test nothing: a gateway that has forwarded nothing yet just drops it.)"""
    chunk = b"10000\r\n" + b"u" * 65536 + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST {target} HTTP/1.1\r\nHost: f\r\nContent-Type: application/octet-stream\r\n"
                     f"X-Probe: {probe}\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunk)
        wait_for(lambda: probe in STARTED, f"the function's app called for {probe}")
        sock.sendall(chunk)


@pytest.mark.parametrize("via", ["direct", "gateway"])
def test_a_body_its_sender_abandons_never_reaches_a_view_as_if_whole(via, gateway, function_server):
    """A chunked body whose sender leaves half-way (a client on a weak network, or the gateway
    abandoning an over-cap upload) is not a complete body of 128 KiB: the view must not run on it."""
    probe = f"abandoned-{via}-{time.monotonic_ns()}"
    port, target = (function_server.port, "/v1/upload") if via == "direct" else (gateway.port, "/sizes/v1/upload")
    _abandoned_upload(port, target, probe)
    wait_for(lambda: probe in ENDED, f"the app to finish {probe}")
    assert probe not in VIEWED


def test_a_request_nobody_answers_closes_its_connection_quietly():
    """An app that answers nothing (its client left mid-body: the gateway has no one to answer)
    gets its connection closed and a response aiohttp never sends, not an error in the handler."""
    import asyncio
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    from lscloud.local import asgi_host

    async def silent(scope, receive, send):
        return None

    async def go():
        transport = mock.Mock()
        protocol = mock.Mock(peername=("127.0.0.1", 5000), sockname=("127.0.0.1", 8080))
        request = make_mocked_request("POST", "/border/v1/x", headers={"Transfer-Encoding": "chunked"},
                                      protocol=protocol, transport=transport)
        answer = await asgi_host.handler_for(silent)(request)
        return answer, transport

    answer, transport = asyncio.run(go())
    assert answer.status == 499 and transport.close.called
