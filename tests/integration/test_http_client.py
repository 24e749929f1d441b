"""A function's outbound client (lscloud.http_client) against real loopback servers: answers read
whole, one kept-alive connection per origin, a CLIENT span carrying the trace to the callee and no
URL it was not asked to show, the retry only an idempotent call gets, and no answer told apart
from an answer."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lscloud import http_client, telemetry
from lscloud.local.servers import free_port
from loopback_http import ok as _ok
import metrics_support
from lscloud.metrics import HTTP_CLIENT

pytestmark = pytest.mark.integration


def test_answers_are_read_whole_over_one_kept_alive_connection(serve):
    server = serve(lambda m, p, h, b: _ok(b'{"path": "%s", "body": "%s"}' % (p.encode(), b), "ETag: \"v1\""))
    client = http_client.Client(headers={"Accept": "application/json", "User-Agent": "lscloud-test"})
    r = client.get(server.url + "/v1/units/20?x=1", headers={"user-agent": "mine"})
    assert (r.status_code, r.json(), r.header("ETag"), r.headers["etag"]) == (200, {"path": "/v1/units/20?x=1", "body": ""}, '"v1"', '"v1"')
    assert client.post(server.url + "/hooks", b"abc").json() == {"path": "/hooks", "body": "abc"}
    assert client.request("PUT", server.url + "/a", body=b"").status_code == 200
    assert server.accepted == 1
    (_, _, first, _), (_, _, second, _), (put_method, _, put, _) = server.requests
    host = server.url.removeprefix("http://")
    assert (first["host"], first["accept"], first["user-agent"]) == (host, "application/json", "mine")
    assert (second["user-agent"], second["content-length"]) == ("lscloud-test", "3")
    assert (put_method, put["content-length"]) == ("PUT", "0")


def test_threads_share_the_client_and_each_gets_its_own_answer(serve):
    server = serve(lambda m, p, h, b: _ok(p.encode()))
    client = http_client.Client()
    wrong = []

    def work(n):
        for i in range(40):
            path = f"/t{n}/{i}"
            if client.get(server.url + path).content != path.encode():
                wrong.append(path)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert wrong == [] and len(server.requests) == 320
    assert server.accepted <= 8 + 1   # connections are kept: at most one per thread at a time (and a spare)


def test_an_ipv6_literal_is_named_in_brackets(serve):
    try:
        server = serve(lambda m, p, h, b: _ok(h["host"].encode()), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    assert http_client.Client().get(f"http://[::1]:{server.port}/").content == f"[::1]:{server.port}".encode()


def test_redirects_are_answers_not_followed(serve):
    server = serve(lambda m, p, h, b: b"HTTP/1.1 302 Found\r\nLocation: http://example.invalid/\r\nContent-Length: 0\r\n\r\n")
    r = http_client.Client().post(server.url + "/hooks", b"{}")
    assert (r.status_code, r.header("location"), len(server.requests)) == (302, "http://example.invalid/", 1)


def test_each_call_is_a_client_span_that_carries_the_trace_and_shows_no_url_unless_asked(serve):
    server = serve(lambda m, p, h, b: _ok(b"{}") if p != "/missing" else
                   b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    exporter = InMemorySpanExporter()
    telemetry.use_span_exporter(exporter)
    client = http_client.Client()
    with telemetry.tracer().start_as_current_span("request") as parent:
        client.get(server.url + "/citizens/020095001234?token=s3cr3t", url_template="/citizens/{id_number}")
        client.get(server.url + "/v1/units/20", record_url=True)
        client.get(server.url + "/missing")
    spans = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.CLIENT and s.name == "GET"][-3:]
    hidden, shown, missing = spans
    trace_id = parent.get_span_context().trace_id
    for span, (_, _, headers, _) in zip(spans, server.requests):
        assert span.context.trace_id == trace_id and span.parent.span_id == parent.get_span_context().span_id
        # the callee's server span becomes this span's child
        assert headers["traceparent"][:-3] == f"00-{trace_id:032x}-{span.context.span_id:016x}"
        assert (span.attributes["http.request.method"], span.attributes["server.address"]) == ("GET", "127.0.0.1")
        assert span.attributes["server.port"] == int(server.url.rsplit(":", 1)[1])
    assert "url.full" not in hidden.attributes and hidden.attributes["url.template"] == "/citizens/{id_number}"
    assert not any("020095001234" in str(v) or "s3cr3t" in str(v) for v in hidden.attributes.values())
    assert shown.attributes["url.full"] == server.url + "/v1/units/20"
    assert shown.attributes["http.response.status_code"] == 200 and shown.status.is_ok
    assert (missing.attributes["http.response.status_code"], missing.attributes["error.type"]) == (404, "404")
    assert not missing.status.is_ok


def test_each_call_is_one_sample_of_the_client_duration_without_its_url(serve, monkeypatch):
    """There was no client metric at all: each call is one ``http.client.request.duration`` sample
    (HTTP semconv) by method, server, status or ``error.type``, never its path or its query."""
    server = serve(lambda m, p, h, b: _ok(b"{}") if p != "/missing" else
                   b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    port, refused = int(server.url.rsplit(":", 1)[1]), free_port()
    reader = metrics_support.own_meter(monkeypatch, HTTP_CLIENT)
    client = http_client.Client(timeout_s=1)
    client.get(server.url + "/citizens/020095001234?token=s3cr3t")
    client.get(server.url + "/citizens/020095001235?token=s3cr3t")
    client.get(server.url + "/missing")
    with pytest.raises(http_client.NoAnswer):
        client.post(f"http://127.0.0.1:{refused}/hooks", b"{}")
    added = metrics_support.samples(reader, "http.client.request.duration", unit="s")
    ours = {key: n for key, n in added.items() if dict(key)["server.port"] in (port, refused)}
    base = {"server.address": "127.0.0.1", "server.port": port, "http.request.method": "GET"}
    assert ours == {
        frozenset({**base, "http.response.status_code": 200}.items()): 2,         # two paths, one series
        frozenset({**base, "http.response.status_code": 404, "error.type": "404"}.items()): 1,
        frozenset({**base, "server.port": refused, "http.request.method": "POST",
                   "error.type": "ConnectionRefusedError"}.items()): 1,
    }


def test_an_idempotent_call_cut_off_is_tried_once_more_and_a_post_never(serve):
    server = serve(lambda m, p, h, b: None)   # reads the request, hangs up without a word
    client = http_client.Client()
    with pytest.raises(http_client.NoAnswer) as cut:
        client.get(server.url + "/a")
    assert cut.value.maybe_sent and not cut.value.timed_out
    assert [r[0] for r in server.requests] == ["GET", "GET"]   # the second on a new connection
    del server.requests[:]
    with pytest.raises(http_client.NoAnswer) as cut:
        client.post(server.url + "/withdrawals", b"{}")
    assert cut.value.maybe_sent   # it may have been acted on: the caller's idempotency decides
    assert [r[0] for r in server.requests] == ["POST"]


def test_a_callee_that_does_not_answer_in_time_times_out(serve):
    hold = threading.Event()
    server = serve(lambda m, p, h, b: hold.wait(5) and None)
    try:
        with pytest.raises(http_client.NoAnswer) as late:
            http_client.Client(timeout_s=0.3).post(server.url + "/slow", b"{}")
        assert late.value.timed_out and late.value.maybe_sent
    finally:
        hold.set()


def test_no_connection_means_not_sent():
    with pytest.raises(http_client.NoAnswer) as refused:
        http_client.Client(timeout_s=1).post(f"http://127.0.0.1:{free_port()}/x", b"{}")
    assert not refused.value.maybe_sent and not refused.value.timed_out
    assert isinstance(refused.value.__cause__.__cause__, ConnectionRefusedError)


def test_what_cannot_be_a_request_is_refused_before_anything_is_sent(serve):
    server = serve(lambda m, p, h, b: _ok(b"{}"))
    client = http_client.Client()
    for url in ("ftp://127.0.0.1/x", "/relative", "http:///nohost", server.url + ":99999/x", "http://127.0.0.1:port/",
                server.url + "/Lạng Sơn", server.url + "/café", server.url.replace("//", "//bank:token@") + "/x",
                server.url + "/x#part", server.url + "/x#"):
        with pytest.raises(http_client.BadUrl) as refused:
            client.get(url)
        assert refused.value.message and refused.value.message_vi
    with pytest.raises(ValueError):
        client.get(server.url + "/a", headers={"x-note": "a\r\nx-admin: 1"})
    with pytest.raises(ValueError):
        client.get(server.url + "/\r\nx-admin: 1")
    assert server.requests == []


def test_a_url_is_parsed_once_into_what_the_call_sends():
    """What a call sends for a URL, which a caller that signs the request line (a bank's webhook)
    signs too: the path with its query, and the Host header with the port only when not the default."""
    t = http_client.parse_url("https://bank.example/hooks/atm?token=a%20b&x=1")
    assert (t.scheme, t.hostname, t.port, t.target, t.host) == ("https", "bank.example", 443,
                                                                  "/hooks/atm?token=a%20b&x=1", "bank.example")
    assert http_client.parse_url("http://bank.example").target == "/"
    assert http_client.parse_url("http://bank.example:80/a").host == "bank.example"
    assert http_client.parse_url("https://bank.example:8443/a").host == "bank.example:8443"
    assert http_client.parse_url("http://[::1]:8080/a").host == "[::1]:8080"


def test_the_object_stores_client_parses_its_endpoint_as_calls_do():
    """One parser for every outbound URL: the store's endpoint too (its IPv6 literal was sent unbracketed)."""
    from lscloud.store.s3http import S3Http

    s3 = S3Http("http://[::1]:8333/base/", "key", "secret", "us-east-1")
    assert (s3.hostname, s3.port, s3.host, s3.path("b", "k.json")) == ("::1", 8333, "[::1]:8333", "/base/b/k.json")
    assert S3Http("https://minio.lscloud.svc", "key", "secret", "us-east-1").host == "minio.lscloud.svc"
    with pytest.raises(http_client.BadUrl):
        S3Http("http://key:secret@minio:9000", "key", "secret", "us-east-1")


def test_an_answer_that_is_not_json_says_so(serve):
    server = serve(lambda m, p, h, b: _ok(b"<html>"))
    with pytest.raises(ValueError):
        http_client.Client().get(server.url + "/").json()


def test_a_socket_left_listening_without_accepting_times_out_as_not_answered():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:   # the kernel completes the handshake; nobody ever reads
        with pytest.raises(http_client.NoAnswer) as late:
            http_client.Client(timeout_s=0.3).get(f"http://127.0.0.1:{listener.getsockname()[1]}/")
        assert late.value.timed_out
    finally:
        listener.close()


def test_an_answer_longer_than_the_client_reads_is_no_answer(serve):
    server = serve(lambda m, p, h, b: _ok(b"x" * 300_000))
    assert len(http_client.Client(max_answer_bytes=400_000).get(server.url + "/").content) == 300_000
    with pytest.raises(http_client.NoAnswer) as too_long:
        http_client.Client(max_answer_bytes=100_000).get(server.url + "/big")
    assert "longer than 100000 bytes" in str(too_long.value.__cause__)


def test_a_server_that_dribbles_its_answer_is_given_up_at_the_calls_deadline():
    """Each wait for bytes was bounded, the whole answer not: a server sending a byte a little more
    often than timeout_s held the call for as long as it liked (a bank's webhook answer, a peer)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def dribble():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
                while not stop.wait(0.05):   # a byte every 50 ms, well within each wait's 0.3 s
                    try:
                        conn.sendall(b"x")
                    except OSError:
                        break

    threading.Thread(target=dribble, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        with pytest.raises(http_client.NoAnswer) as late:
            http_client.Client(timeout_s=0.3, deadline_s=1.0).post(url, b"{}")
        assert late.value.timed_out and late.value.maybe_sent
    finally:
        stop.set()
        listener.close()


def test_a_kept_alive_connection_gets_its_own_wait_back_after_a_deadline(serve):
    server = serve(lambda m, p, h, b: _ok(b"{}"))
    client = http_client.Client(timeout_s=0.3, deadline_s=5.0)
    for _ in range(3):   # the same connection each time, its timeout restored after each answer
        assert client.get(server.url + "/").status_code == 200
    (pool,) = client._pools.values()
    (sock,) = pool._idle
    assert sock.gettimeout() == 0.3
