"""The WSGI-in-ASGI bridge: whole responses in one piece, big ones streamed, bodies read lazily."""

from __future__ import annotations

import asyncio
import sys

import pytest

from lscloud.wsgi_bridge import WSGIBridge


def call(app, *, method="GET", body=b"", chunks=None, buffer_bytes=1024):
    bridge = WSGIBridge(app, workers=2, buffer_bytes=buffer_bytes)
    parts = list(chunks) if chunks is not None else [body]
    sent: list[dict] = []

    async def receive():
        data = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": data, "more_body": bool(parts)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": "/x", "raw_path": b"/x", "query_string": b"a=1", "root_path": "",
             "headers": [(b"host", b"t"), (b"content-type", b"text/plain")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    try:
        asyncio.run(bridge(scope, receive, send))
    finally:
        bridge.executor.shutdown(wait=True)
    return sent


def test_small_response_is_sent_whole_with_status_and_headers():
    def app(environ, start_response):
        assert environ["QUERY_STRING"] == "a=1" and environ["CONTENT_TYPE"] == "text/plain"
        start_response("201 Created", [("Content-Type", "application/json"), ("ETag", '"x"')])
        return [b'{"a":', b"1}"]

    sent = call(app)
    assert sent == [
        {"type": "http.response.start", "status": 201,
         "headers": [(b"content-type", b"application/json"), (b"etag", b'"x"')]},
        {"type": "http.response.body", "body": b'{"a":1}', "more_body": False},
    ]


def test_body_larger_than_the_buffer_is_streamed_in_order():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (bytes([i]) * 600 for i in range(5))

    sent = call(app, buffer_bytes=1000)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert all(m["more_body"] for m in sent[1:-1]) and sent[-1] == {"type": "http.response.body", "body": b"",
                                                                     "more_body": False}
    assert b"".join(m["body"] for m in sent[1:]) == b"".join(bytes([i]) * 600 for i in range(5))


def test_request_body_is_read_through_receive_and_close_is_called():
    closed = []

    class Body(list):
        def close(self):
            closed.append(True)

    def app(environ, start_response):
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return Body([data.upper()])

    sent = call(app, method="POST", chunks=[b"ab", b"cd"])
    assert sent[-1]["body"] == b"ABCD" and closed == [True]


def test_start_response_with_exc_info_replaces_unsent_headers():
    def app(environ, start_response):
        start_response("200 OK", [("X-A", "1")])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error", [("X-B", "2")], sys.exc_info())
        return [b"err"]

    sent = call(app)
    assert sent[0]["status"] == 500 and sent[0]["headers"] == [(b"x-b", b"2")]


def test_an_exception_in_the_app_reaches_the_server():
    def app(environ, start_response):
        raise KeyError("nope")

    with pytest.raises(KeyError):
        call(app)
