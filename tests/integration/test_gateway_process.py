"""The gateway as the local cloud runs it: a process of its own, routed by the table the supervisor
writes (``routes.json``), restarted when it dies.

- A change of the table reaches the running gateway from the next request on: a function that is
  starting is a 503 with Retry-After, the same function once ready is proxied, a new port is used.
- A gateway killed outright is restarted by the watch step and routes again from the same file.
"""

from __future__ import annotations

import json
import os
import signal

import httpx
import pytest

from asgi_support import Served  # tests/integration helper module
from lscloud.config import Settings
from lscloud.local.routes import Route, write_routes
from lscloud.local.gateway_process import GatewayProcess, gateway_env
from lscloud.local.servers import free_port
from waiting import wait_for

pytestmark = pytest.mark.integration


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({"path": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def upstream():
    served = Served(hello).start()
    yield served
    served.stop()


@pytest.fixture
def gateway(tmp_path):
    routes = tmp_path / "routes.json"
    write_routes(routes, {})
    settings = Settings(state_dir=str(tmp_path), trace_file="")
    gw = GatewayProcess("127.0.0.1", free_port(), routes, gateway_env(settings, base=dict(os.environ)),
                        tmp_path / "gateway.log", max_body_bytes=1024 * 1024)
    gw.spawn()
    try:
        gw.wait_ready()
        gw.url = f"http://127.0.0.1:{gw.port}"
        yield gw
    finally:
        gw.stop()


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=10)
    except httpx.TransportError:
        return None


def test_the_routing_table_reaches_the_gateway_process(gateway, upstream, tmp_path):
    assert get(gateway.url + "/hello/").status_code == 404   # not in the table yet

    # starting: nothing listens on its port yet, so the gateway says "try again", not "broken"
    waiting_port = free_port()
    write_routes(gateway.routes_path, {"hello": Route("hello", waiting_port, "starting")})
    r = get(gateway.url + "/hello/")
    assert r.status_code == 503 and r.headers["retry-after"] and r.headers["content-type"] == "application/problem+json"

    # ready on another port (as after a restart that took a new one): proxied from the next request
    write_routes(gateway.routes_path, {"hello": Route("hello", upstream.port, "ready")})
    r = get(gateway.url + "/hello/v1/x")
    assert r.status_code == 200 and r.json() == {"path": "/v1/x"}

    # ready but gone: a 502, not a 503
    write_routes(gateway.routes_path, {"hello": Route("hello", waiting_port, "ready")})
    assert get(gateway.url + "/hello/").status_code == 502


def test_a_killed_gateway_is_restarted_and_routes_again(gateway, upstream):
    write_routes(gateway.routes_path, {"hello": Route("hello", upstream.port, "ready")})
    assert get(gateway.url + "/hello/").status_code == 200
    old = gateway.proc.pid
    os.killpg(old, signal.SIGKILL)

    lines = []

    def restarted():
        line = gateway.check()
        if line:
            lines.append(line)
        return gateway.state == "ready" and gateway.proc.pid != old

    wait_for(restarted, "the gateway restarted")
    assert any("exited with code -9" in line and "SIGKILL" in line for line in lines), lines
    assert gateway.restarts == 1
    r = wait_for(lambda: get(gateway.url + "/hello/"), "the restarted gateway answered")
    assert r.status_code == 200 and r.json() == {"path": "/"}
