"""The WSGI bridge's requests that wait for a worker thread (every thread busy): one whose client
disconnects before a thread takes it is skipped (the app never called, nothing sent), while one a
thread has taken runs to its end whatever its client does.

Driven as uvicorn drives it (scope, receive, send; ``http.disconnect`` from ``receive`` once the
connection is lost), with BodyGuard in front as in ``Function.handle``; the bridge has one thread,
held by a request whose view blocks until the test lets it return."""

from __future__ import annotations

import asyncio
import threading

import pytest
from flask import jsonify, request

from lscloud import asgi, wsgi_bridge
from lscloud.auth import allow
from lscloud.config import Settings
from lscloud.web import create_app


class Seen:
    def __init__(self):
        self.entered: list[str] = []   # the X-Probe of every request a view began
        self.ended: list[str] = []     # ... and returned from
        self.release = threading.Event()
        self.first_in = threading.Event()


@pytest.fixture
def seen():
    return Seen()


@pytest.fixture
def bridge(seen):
    app = create_app("queued", settings=Settings())

    @app.route("/v1/hold", methods=["GET", "POST"])
    @allow("public")
    def hold():
        probe = request.headers.get("X-Probe", "")
        request.get_data()
        seen.entered.append(probe)
        seen.first_in.set()
        assert seen.release.wait(30), "never released"
        seen.ended.append(probe)
        return jsonify(probe=probe)

    bridge = wsgi_bridge.WsgiBridge(app, workers=1)
    yield bridge
    seen.release.set()
    bridge.executor.shutdown(wait=True)


def scope(probe: str, body: bytes | None) -> dict:
    headers = [(b"host", b"fn.local:8080"), (b"x-probe", probe.encode())]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET" if body is None else "POST",
            "scheme": "http", "path": "/v1/hold", "raw_path": b"/v1/hold", "query_string": b"", "root_path": "",
            "headers": headers, "client": ("10.0.0.7", 5123), "server": ("127.0.0.1", 8080)}


class Client:
    """One connection as uvicorn presents it: the body, then nothing until :meth:`leave` (then
    ``http.disconnect``, as for every later ``receive``)."""

    def __init__(self, probe: str, body: bytes | None = None):
        self.scope = scope(probe, body)
        self.body = body
        self.gone = asyncio.Event()
        self.sent: list[dict] = []
        self._body_sent = False

    def leave(self) -> None:
        self.gone.set()

    async def receive(self) -> dict:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.body or b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def serve(self, bridge) -> asyncio.Task:
        guard = asgi.BodyGuard(self.scope, self.receive, self.send)
        return asyncio.ensure_future(bridge(self.scope, guard.receive, guard.send))


def status(client: Client) -> int | None:
    return next((m["status"] for m in client.sent if m["type"] == "http.response.start"), None)


@pytest.mark.parametrize("body", [None, b'{"x": 1}'], ids=["bodyless", "small-body"])
def test_a_waiting_request_whose_client_left_is_skipped(bridge, seen, body):
    async def go():
        running, waiting, after = Client("running"), Client("waiting", body), Client("after", body)
        first = running.serve(bridge)
        assert await asyncio.to_thread(seen.first_in.wait, 10), "the first request never reached its view"
        second = waiting.serve(bridge)     # every thread is busy: it waits
        third = after.serve(bridge)        # ... and so does this one, behind it
        for _ in range(5):
            await asyncio.sleep(0)         # (both handed to the pool)
        waiting.leave()
        for _ in range(10):
            await asyncio.sleep(0)         # (the loop hears of it before a thread is free)
        seen.release.set()
        await asyncio.wait_for(asyncio.gather(first, second, third), 30)
        return running, waiting, after

    running, waiting, after = asyncio.run(go())
    assert seen.entered == ["running", "after"] and seen.ended == ["running", "after"]
    assert status(running) == 200 and status(after) == 200
    assert waiting.sent == []   # nothing is sent to a client that has gone


def test_a_request_a_thread_has_taken_runs_to_its_end_though_its_client_left(bridge, seen):
    async def go():
        running, waiting = Client("running"), Client("waiting")
        first = running.serve(bridge)
        assert await asyncio.to_thread(seen.first_in.wait, 10), "the first request never reached its view"
        second = waiting.serve(bridge)
        for _ in range(5):
            await asyncio.sleep(0)
        running.leave()   # its view is running: it is not interrupted (a write half done is worse)
        seen.release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 30)
        return running, waiting

    running, waiting = asyncio.run(go())
    assert seen.entered == ["running", "waiting"] and seen.ended == ["running", "waiting"]
    assert status(waiting) == 200
