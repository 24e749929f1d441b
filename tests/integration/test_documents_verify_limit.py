"""A caller over its verification limit is refused before its PDF is read.

``POST /v1/verifications`` takes a PDF as large as an upload (``blob_max_bytes``, 20 MiB) from
anyone, and is rate limited per caller. The limit was counted in the view, and the runtime reads
the whole body before any view runs: a caller past its limit still had every refused PDF read
whole (up to 20 MiB in memory, a worker thread held for as long as the upload took), only to be told
429 at the end. Now the limit is counted before the body is read (``lscloud.web.bodies.before_body``),
the 429 comes while the body is still on its way, and the connection is closed after it
(``Connection: close``) rather than its unread rest being taken for the next request.

Served as a function is (uvicorn, ``FunctionApp``, the function's ``handle``), spoken to over a
raw socket: a request that declares a 20 MiB PDF and sends 4 MiB of it gets its answer, so nothing
waited for the rest. On the old code the function waits for the rest and the socket times out.
"""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace

import httpx
import pytest

from asgi_support import Served, closed_by_peer, exchange  # tests/integration helper module
from documents_support import make_pdf

pytestmark = pytest.mark.integration

PDF = {"Content-Type": "application/pdf"}
SENT = 4 * 1_048_576   # of a body declared as large as an upload may be
ANSWER_WITHIN_S = 20.0   # a failure mode (a socket timeout), not a timed assertion


@pytest.fixture
def documents(start_function):
    return start_function("documents", function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents",
                                                     "DOCUMENTS_VERIFY_LIMIT": "1"})


@pytest.fixture
def served(documents):
    from lscloud.function_server import FunctionApp

    # the instance is started (and stopped) by start_function: the server only hands it requests
    s = Served(FunctionApp(SimpleNamespace(handle=documents.handle))).start()
    yield s
    s.stop()


@pytest.fixture
def gateway(served):
    """``lscloud up``'s gateway in front of the function, as a caller of the local cloud reaches it."""
    from lscloud.local.gateway import Gateway, GatewayServer, Route
    from lscloud.local.servers import free_port

    routes = {"documents": Route("documents", served.port, "ready")}
    server = GatewayServer(Gateway(lambda: routes), "127.0.0.1", free_port()).start()
    yield server
    server.stop()


def bound(documents) -> int:
    return documents.app.extensions["lscloud"].settings.blob_max_bytes


def verify(served, headers: dict) -> httpx.Response:
    return httpx.post(served.url + "/v1/verifications", content=make_pdf(), headers={**PDF, **headers}, timeout=60)


def head(length: int, headers: dict, prefix: str = "") -> bytes:
    lines = [f"POST {prefix}/v1/verifications HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/pdf",
             f"Content-Length: {length}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def refused_unread(port: int, documents, headers: dict, prefix: str = ""):
    """A request declaring a body of the whole bound and sending only its first :data:`SENT` bytes:
    its answer, and the socket (the rest is never sent)."""
    start = b"%PDF-1.7\n" + b"0" * (SENT - 9)
    return exchange(port, head(bound(documents), headers, prefix) + start, timeout=ANSWER_WITHIN_S)


def test_a_caller_at_its_limit_is_refused_before_its_pdf_is_sent(served, documents):
    caller = {"X-Forwarded-For": "203.0.113.21"}
    assert verify(served, caller).status_code == 200   # its one verification of the window
    status, got, body, sock = refused_unread(served.port, documents, caller)
    try:
        refused_and_closed(status, got, body, sock)
    finally:
        sock.close()
    # another caller has a window of its own, its PDF read and verified as before
    assert verify(served, {"X-Forwarded-For": "203.0.113.22"}).status_code == 200


def refused_and_closed(status: int, got: dict, body: bytes, sock: socket.socket) -> None:
    assert status == 429, body[:300]
    problem = json.loads(body)
    assert got["content-type"] == "application/problem+json" and problem["type"].endswith("rate-limited")
    assert int(got["retry-after"]) > 0 and problem["detail"] and problem["detail_vi"], problem
    # the rest of the body is still owed: the connection is not kept for another request ...
    assert got["connection"] == "close", got
    # ... and once the caller gives up on sending it, it is closed
    sock.shutdown(socket.SHUT_WR)
    assert closed_by_peer(sock)


def test_through_the_gateway_the_refusal_comes_before_the_pdf_too(served, documents, gateway):
    """The local cloud's gateway streams a body on as it comes, and relays the function's early
    answer (each caller is the address the gateway saw: this test's own)."""
    assert httpx.post(f"http://127.0.0.1:{gateway.port}/documents/v1/verifications", content=make_pdf(),
                      headers=PDF, timeout=60).status_code == 200
    status, got, body, sock = refused_unread(gateway.port, documents, {}, prefix="/documents")
    try:
        refused_and_closed(status, got, body, sock)
    finally:
        sock.close()


def test_a_signed_in_caller_is_counted_by_its_token_before_its_body(served, documents, tokens):
    """The check before the body knows the caller as the view does: by its token, not its address."""
    who = tokens("citizen", "cong-dan-7")
    assert verify(served, {**who, "X-Forwarded-For": "203.0.113.31"}).status_code == 200
    status, got, body, sock = refused_unread(served.port, documents, {**who, "X-Forwarded-For": "203.0.113.32"})
    sock.close()
    assert status == 429 and got["connection"] == "close", body[:300]
    # the address it came from last time, without the token, is another caller
    assert verify(served, {"X-Forwarded-For": "203.0.113.31"}).status_code == 200


def test_what_the_headers_refuse_comes_first_and_counts_nothing(served, documents):
    """A body declared past the bound (413) or of another type (415) is refused as before, naming
    why, and uses none of the caller's window."""
    caller = {"X-Forwarded-For": "203.0.113.41"}
    status, got, body, sock = exchange(served.port, head(bound(documents) + 1, caller) + b"%PDF-1.7\n",
                                       timeout=ANSWER_WITHIN_S)
    sock.close()
    assert status == 413 and str(bound(documents)) in json.loads(body)["detail"], body[:300]
    r = httpx.post(served.url + "/v1/verifications", content=b"not a pdf", timeout=60,
                   headers={**caller, "Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["detail_vi"], r.text[:300]
    assert verify(served, caller).status_code == 200
    assert verify(served, caller).status_code == 429


def test_a_view_that_takes_signed_requests_may_not_check_before_its_body(settings):
    """A partner's signature covers the body and spends a nonce: it cannot be checked before the body
    and again in the view, so such a view with ``before_body`` stops the start."""
    from lscloud.auth import allow
    from lscloud.web import AccessError, check_access, create_app
    from lscloud.web.bodies import before_body

    app = create_app("signed", settings=settings)

    @app.post("/v1/payments")
    @allow(partner=True)
    @before_body(lambda: None)
    def pay():
        return "", 204

    with pytest.raises(AccessError, match="before_body"):
        check_access(app)
