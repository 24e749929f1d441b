"""The object store's transport (lscloud.connections) on real loopback sockets: connections
are kept and reused, one the server closed while it sat idle is never sent on, and a connection
that could not be made is told apart from a request that may have left."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest

from lscloud.local.servers import free_port
from lscloud.connections import Connections, NotSent
from loopback_http import scripted

pytestmark = pytest.mark.integration


_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def server(request, serve):
    """Answers 200 "ok" to each request; with the parameter True it hangs up after each answer
    without saying so (as a server whose keep-alive timeout passed does)."""
    return serve(lambda *_: (_OK, request.param))


def _sent(server) -> list[tuple[str, bytes]]:
    return [(method, body) for method, _, _, body in server.requests]


@pytest.mark.parametrize("server", [False], indirect=True)
def test_one_kept_alive_connection_serves_one_request_after_another(server):
    pool = Connections("http", "127.0.0.1", server.port)
    for _ in range(3):
        status, headers, body = pool.request("GET", "/a", {"host": "x"}, None)
        assert (status, headers.get("content-length"), body) == (200, "2", b"ok")
    assert server.accepted == 1


@pytest.mark.parametrize("server", [True], indirect=True)
def test_a_connection_the_server_closed_while_idle_is_not_sent_on(server):
    pool = Connections("http", "127.0.0.1", server.port)
    assert pool.request("GET", "/a", {"host": "x"}, None)[0] == 200
    # the hang-up reaches the idle connection: the server's side is closed (not a fixed wait, which a
    # loaded machine can outlast before the handler's thread closes it), and loopback delivers the FIN
    assert server.hung_up.acquire(timeout=10)
    time.sleep(0.05)
    # a write sent on the dead connection would fail after it may have left (ambiguous for a
    # conditional write); it goes out on a new one and is answered
    assert pool.request("PUT", "/a", {"host": "x"}, b"body")[0] == 200
    assert server.accepted == 2 and _sent(server) == [("GET", b""), ("PUT", b"body")]


def test_requests_sent_before_any_answer_is_read_each_have_their_own_connection(serve):
    server = serve(lambda m, path, h, b: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path.encode()))
    pool = Connections("http", "127.0.0.1", server.port)
    first, second = (pool.send("GET", p, {"host": "x"}, None) for p in ("/first", "/second"))
    assert second.read()[2] == b"/second" and first.read()[2] == b"/first"   # read in any order
    assert [pool.request("GET", "/again", {"host": "x"}, None)[2] for _ in range(2)] == [b"/again"] * 2
    assert server.accepted == 2   # both went back to the pool


def test_a_connection_that_cannot_be_made_is_not_sent():
    port = free_port()   # nothing listens there
    with pytest.raises(NotSent) as refused:
        Connections("http", "127.0.0.1", port, timeout_s=2).request("PUT", "/a", {"host": "x"}, b"1")
    assert isinstance(refused.value.__cause__, OSError)


def test_an_exchange_cut_after_sending_is_not_a_connection_failure():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up():
        conn, _ = listener.accept()
        conn.recv(65536)      # the request arrived; no answer
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises((OSError, ConnectionError)) as cut:
            Connections("http", "127.0.0.1", port, timeout_s=5).request("PUT", "/a", {"host": "x"}, b"1")
        assert not isinstance(cut.value, NotSent)
    finally:
        listener.close()


def test_bodies_sent_in_chunks_or_until_the_end_and_answers_without_a_body_are_read_whole(serve):
    server = serve(scripted(
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"a\"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Amz-Meta-Kind: x\r\n\r\n", False),   # the answer to a HEAD
        (b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end", True)))
    pool = Connections("http", "127.0.0.1", server.port)
    status, headers, body = pool.request("GET", "/a", {"host": "x"}, None)
    assert (status, headers["etag"], body) == (200, '"a"', b"abcde")
    status, headers, body = pool.request("HEAD", "/a", {"host": "x"}, None)
    assert (status, headers["content-length"], headers["x-amz-meta-kind"], body) == (200, "5", "x", b"")
    assert pool.request("GET", "/a", {"host": "x", "if-none-match": '"a"'}, None)[::2] == (304, b"")
    assert pool.request("DELETE", "/a", {"host": "x"}, None)[::2] == (200, b"")
    assert pool.request("GET", "/a", {"host": "x"}, None)[::2] == (200, b"to the end")
    assert server.accepted == 1   # one connection for all five: each answer's end was found


def test_an_answer_that_is_not_http_is_not_a_connection_failure(serve):
    server = serve(scripted((b"SSH-2.0-OpenSSH_9.6\r\n\r\n", True)))
    with pytest.raises(http.client.HTTPException):   # may have landed: not NotSent, which is never raised so
        Connections("http", "127.0.0.1", server.port).request("PUT", "/a", {"host": "x"}, b"1")


@pytest.mark.parametrize("server", [False], indirect=True)
def test_a_large_body_arrives_whole(server):
    body = bytes(range(256)) * 4096   # 1 MiB: sent apart from its head
    pool = Connections("http", "127.0.0.1", server.port)
    assert pool.request("PUT", "/big", {"host": "x"}, body)[0] == 200
    assert _sent(server) == [("PUT", body)]


@pytest.mark.parametrize("server", [False], indirect=True)
def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(server):
    pool = Connections("http", "127.0.0.1", server.port)
    with pytest.raises(ValueError):
        pool.request("PUT", "/a", {"host": "x", "x-amz-meta-name": "a\r\nx-amz-acl: public-read"}, b"1")
    assert server.requests == []
