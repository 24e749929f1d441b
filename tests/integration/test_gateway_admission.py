"""The local gateway holds each function to the bounds Knative's queue-proxy holds a replica to in
the cluster, so that one function under load (or hung) cannot starve the others:

- at most ``containerConcurrency`` requests sent on to it at once, ten times as many waiting in line
  behind them, and beyond that an immediate 503 problem with Retry-After; meanwhile another function
  behind the same gateway answers at once;
- a request whose answer has not begun within the function's ``timeoutSeconds`` of its arrival,
  waiting included, is a 504 problem (and one that waited never reaches the function);
- a request whose client leaves while it waits is never sent on, and a client that leaves is no
  error in the gateway's log.

The function is a real lscloud function (Flask behind ``lscloud.knative``, served as functions are)
whose view blocks until the test releases it. Deadlines below only keep a failing test from
hanging; nothing is timed.
"""

from __future__ import annotations

import json
import logging
import socket
import threading

import httpx
import pytest
from flask import jsonify, request

from asgi_support import Served, exchange  # tests/integration helper module
from waiting import wait_for  # tests/integration helper module
from lscloud import knative, web
from lscloud.auth import allow
from lscloud.local.gateway import Gateway, GatewayServer, RoutesFile
from lscloud.local.routes import Route, write_routes
from lscloud.local.servers import free_port
from lscloud.manifest import PLATFORM_CONTAINER_CONCURRENCY, PLATFORM_TIMEOUT_S, QUEUE_DEPTH_PER_SLOT, parse

pytestmark = pytest.mark.integration

ANSWER_S = 20.0   # how long a client waits for an answer that should come at once (a generous bound)


class Held:
    """What the function's blocking view saw: the X-Probe of each request it began, how many were
    inside it at once (at most), and the event that lets them all return."""

    def __init__(self):
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.entered: list[str] = []
        self.inside = 0
        self.most = 0


HELD = Held()   # replaced for each test (the `held` fixture); the view reads the current one


def create_app(settings):
    app = web.create_app("held", settings=settings)

    @app.get("/v1/hold")
    @allow("public")
    def hold():
        """Returns once the test releases it."""
        state, probe = HELD, request.headers.get("X-Probe", "")
        with state.lock:
            state.entered.append(probe)
            state.inside += 1
            state.most = max(state.most, state.inside)
        try:
            state.release.wait(120)
        finally:
            with state.lock:
                state.inside -= 1
        return jsonify(probe=probe)

    return app


async def pong(scope, receive, send):
    """Another function: answers every request at once."""
    if scope["type"] != "http":
        return
    body = b'{"pong": true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def function_server(base_settings):
    from lscloud.function_server import FunctionApp

    instance = knative.function(create_app, needs=())()
    env = base_settings.replace(service="held").env_vars()
    with pytest.MonkeyPatch.context() as mp:  # func-python's lifespan start reads the environment
        for name, value in env.items():
            mp.setenv(name, value)
        served = Served(FunctionApp(instance)).start()
        try:
            httpx.get(served.url + "/health/readiness", timeout=30).raise_for_status()
            yield served
        finally:
            HELD.release.set()
            served.stop()


@pytest.fixture(scope="module")
def routes(function_server):
    other = Served(pong).start()
    port = function_server.port
    # one function process behind several routes: each route is a function to the gateway (its own
    # bounds, its own line), as each would be its own Knative Service
    yield {"held": Route("held", port, "ready", concurrency=2),
           "brief": Route("brief", port, "ready", concurrency=1, timeout_s=1.0),
           "one": Route("one", port, "ready", concurrency=1),
           "pong": Route("pong", other.port, "ready")}
    other.stop()


@pytest.fixture(scope="module", params=["fast", "asgi"])
def gateway(request, routes):
    # the pool's read timeout as `lscloud up` has it: a 504 sooner than that is the function's timeout
    server = GatewayServer(Gateway(lambda: routes, fast_path=request.param == "fast"), "127.0.0.1", free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def held(gateway, routes):
    global HELD
    HELD = state = Held()
    yield state
    state.release.set()
    wait_for(lambda: state.inside == 0, "the function's views to return")
    wait_for(lambda: all(gateway.app.load(name) == (0, 0) for name in routes), "the gateway to hold nothing")


def ask(port: int, target: str, probe: str) -> socket.socket:
    """A request sent on a connection of its own, its answer not read yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_S)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: gw\r\nX-Probe: {probe}\r\nConnection: close\r\n\r\n".encode())
    return sock


def answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """The answer to the request sent on ``sock`` (which is then closed)."""
    try:
        status, head, content, _ = exchange(0, b"", sock=sock, timeout=ANSWER_S)
        return status, head, content
    finally:
        sock.close()


def problem_of(status: int, head: dict, content: bytes) -> dict:
    assert head["content-type"] == "application/problem+json", (status, content[:200])
    doc = json.loads(content)
    assert doc["status"] == status and doc["title"] and doc["detail"] and doc["title_vi"] and doc["detail_vi"]
    return doc


def test_a_busy_function_takes_its_concurrency_queues_ten_times_as_many_and_refuses_the_rest_at_once(gateway, held):
    line = QUEUE_DEPTH_PER_SLOT * 2
    waiting = [ask(gateway.port, "/held/v1/hold", f"w{i}") for i in range(2 + line)]
    try:
        wait_for(lambda: gateway.app.load("held") == (2, line), "2 requests sent on and 20 waiting")
        wait_for(lambda: len(held.entered) == 2, "the function to have its 2")
        for i in range(3):   # the line is full: refused at once, never sent on
            status, head, content = answer(ask(gateway.port, "/held/v1/hold", f"refused{i}"))
            assert status == 503, content[:200]
            assert problem_of(503, head, content)["type"].endswith("/function-busy")
            assert head["retry-after"] == "1"
        # another function behind the same gateway is not held up by this one
        status, _, content = answer(ask(gateway.port, "/pong/v1/ping", "other"))
        assert status == 200 and json.loads(content) == {"pong": True}
        assert len(held.entered) == 2 and gateway.app.load("held") == (2, line)
        held.release.set()
        assert [answer(sock)[0] for sock in waiting] == [200] * (2 + line)
    finally:
        for sock in waiting:
            sock.close()
    assert held.most == 2 and sorted(held.entered) == sorted(f"w{i}" for i in range(2 + line))


def test_a_request_that_waits_past_the_functions_timeout_is_a_504_and_never_sent_on(gateway, held, routes):
    running = ask(gateway.port, "/one/v1/hold", "running")
    try:
        wait_for(lambda: held.entered == ["running"], "the first request to reach the function")
        routes["one"].timeout_s = 1.0   # from now on (the one running was let in under 60 s)
        status, head, content = answer(ask(gateway.port, "/one/v1/hold", "waiting"))
        assert status == 504 and problem_of(504, head, content)["type"].endswith("/gateway-timeout")
        assert gateway.app.load("one") == (1, 0) and held.entered == ["running"]
        held.release.set()
        assert answer(running)[0] == 200
    finally:
        routes["one"].timeout_s = PLATFORM_TIMEOUT_S
        running.close()
    assert held.entered == ["running"]


def test_a_request_sent_on_whose_answer_has_not_begun_within_the_timeout_is_a_504(gateway, held):
    status, head, content = answer(ask(gateway.port, "/brief/v1/hold", "slow"))   # brief: 1 s
    assert status == 504 and problem_of(504, head, content)["type"].endswith("/gateway-timeout")
    assert held.entered == ["slow"]
    wait_for(lambda: gateway.app.load("brief") == (0, 0), "its slot to be let go")


def test_a_waiting_request_whose_client_left_never_reaches_the_function(gateway, held):
    first = ask(gateway.port, "/one/v1/hold", "first")
    try:
        wait_for(lambda: held.entered == ["first"], "the first request to reach the function")
        gone = ask(gateway.port, "/one/v1/hold", "gone")
        wait_for(lambda: gateway.app.load("one") == (1, 1), "the second to wait in line")
        gone.close()
        wait_for(lambda: gateway.app.load("one") == (1, 0), "its place in line to be given up")
        after = ask(gateway.port, "/one/v1/hold", "after")
        wait_for(lambda: gateway.app.load("one") == (1, 1), "the third to wait in line")
        held.release.set()
        assert answer(first)[0] == 200 and answer(after)[0] == 200
    finally:
        first.close()
    assert held.entered == ["first", "after"]


def test_a_client_that_leaves_is_no_error_in_the_gateways_log(gateway, held, caplog):
    """One client leaves while the function works on its request, one while its request waits:
    each is a DEBUG line at most, never an ERROR with a traceback (12,844 of them in one overloaded
    session of `lscloud up`, each "Cannot write to closing transport")."""
    caplog.set_level(logging.DEBUG, logger="lscloud.gateway")
    running = ask(gateway.port, "/one/v1/hold", "running")
    wait_for(lambda: held.entered == ["running"], "the first request to reach the function")
    waiting = ask(gateway.port, "/one/v1/hold", "waiting")
    wait_for(lambda: gateway.app.load("one") == (1, 1), "the second to wait in line")
    # the waiting one leaves first: were the running one to leave first, its slot could go to the
    # waiting request before its own client's leaving is seen (forwarded, as a request in time is)
    waiting.close()
    wait_for(lambda: gateway.app.load("one") == (1, 0), "the gateway to let go of the waiting one")
    running.close()
    # nobody is left to answer: the gateway lets go of both without waiting for the function
    wait_for(lambda: gateway.app.load("one") == (0, 0), "the gateway to let go of both")
    held.release.set()
    wait_for(lambda: held.inside == 0, "the function's view to return")
    assert answer(ask(gateway.port, "/one/v1/hold", "next"))[0] == 200
    assert held.entered == ["running", "next"]
    gateway_errors = [r for r in caplog.records if r.name.startswith("lscloud.gateway") and r.levelno >= logging.WARNING]
    assert gateway_errors == [], [r.getMessage() for r in gateway_errors]
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("lscloud.gateway"))


def test_the_routing_table_carries_each_functions_bounds_from_its_manifest(tmp_path):
    """What infra renders into the Knative Service (containerConcurrency from func.yaml's
    ``resources.limits.concurrency``, else the platform's; timeoutSeconds the platform's) is what
    the gateway process reads from the table the supervisor writes."""
    bounded = parse("name: held\nruntime: python\ndeploy:\n  options:\n    resources:\n      limits: {concurrency: 3}\n",
                    tmp_path / "held" / "func.yaml")
    bare = parse("name: bare\nruntime: python\n", tmp_path / "bare" / "func.yaml")
    table = tmp_path / "routes.json"
    write_routes(table, {"held": Route.of(bounded, 8001, "ready"), "bare": Route.of(bare, 8002)})
    got = RoutesFile(table)()
    assert got["held"] == Route("held", 8001, "ready", 3, PLATFORM_TIMEOUT_S)
    assert got["bare"] == Route("bare", 8002, "starting", PLATFORM_CONTAINER_CONCURRENCY, PLATFORM_TIMEOUT_S)
    table.write_text(json.dumps({"functions": {"old": {"port": 8003, "state": "ready"}}}))  # written before the bounds
    assert RoutesFile(table)()["old"] == Route("old", 8003, "ready")
