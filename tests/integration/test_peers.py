"""Calling another function (lscloud.peers) against a real HTTP server on loopback."""

import threading

import pytest
from flask import Flask, jsonify, request
from opentelemetry.sdk.trace import TracerProvider
from werkzeug.serving import make_server

from lscloud import config
from lscloud.local.servers import free_port
from lscloud.peers import PeerClient, PeerForbidden, PeerNotFound, PeerUnavailable, path, peer_url

pytestmark = pytest.mark.integration


@pytest.fixture
def peer():
    app = Flask("peer")
    seen = []

    @app.get("/border/v1/declarations/<did>")
    def declaration(did):
        seen.append(dict(request.headers))
        who = request.headers.get("Authorization", "")
        if not who:
            return jsonify(title="token missing"), 401
        if who != "Bearer owner-of-" + did:
            return jsonify(title="not found"), 404   # the peer's own rule: not yours, not visible
        resp = jsonify(id=did, owner=who[len("Bearer owner-of-"):])
        resp.set_etag("d1")
        return resp.make_conditional(request)

    @app.get("/directory/v1/units/<code>")
    def unit(code):
        seen.append(dict(request.headers))
        if code == "99999":
            return jsonify(title="not found"), 404
        if not code.isalnum():
            return jsonify(title="malformed code"), 400
        resp = jsonify(code=code, name="Xã Đồng Đăng")
        resp.set_etag("v1")
        return resp.make_conditional(request)

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port, seen
    server.shutdown()
    thread.join(5)


def client_for(port: int) -> PeerClient:
    return PeerClient(config.load({"LSCLOUD_PEER_URL_TEMPLATE": f"http://127.0.0.1:{port}/{{name}}"}))


def test_peer_url_follows_the_template():
    s = config.load({"LSCLOUD_PEER_URL_TEMPLATE": "http://{name}.lscloud.svc.cluster.local"})
    assert peer_url("directory", s) == "http://directory.lscloud.svc.cluster.local"
    with pytest.raises(ValueError):
        peer_url("../admin", s)


def test_every_call_revalidates_and_a_304_reuses_the_body(peer):
    port, seen = peer
    client = client_for(port)
    first = client.get_json("directory", "/v1/units/06184")
    again = client.get_json("directory", "/v1/units/06184")
    assert first == again == {"code": "06184", "name": "Xã Đồng Đăng"}
    assert (client.fetched, client.revalidated) == (1, 1)
    assert "If-None-Match" not in seen[0] and seen[1]["If-None-Match"] == '"v1"'


def test_the_peer_joins_the_callers_trace(peer):
    port, seen = peer
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("caller") as span:
        client_for(port).get_json("directory", "/v1/units/06184")
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert seen[-1]["Traceparent"].split("-")[1] == trace_id


def test_not_found_and_unreachable_peers_are_distinct_errors(peer):
    port, _ = peer
    with pytest.raises(PeerNotFound):
        client_for(port).get_json("directory", "/v1/units/99999")
    with pytest.raises(PeerUnavailable):
        client_for(free_port()).get_json("directory", "/v1/units/06184")


@pytest.mark.parametrize("code", ["x?y", "x#y", "..", "a/b", "06184?z=1", "\x00"])
def test_codes_from_callers_stay_one_segment_and_a_refused_code_is_not_found(peer, code):
    """Issue 9: a code with ?, #, .. or / (from a caller's URL) asks for that code, nothing else; the
    peer refusing it as malformed (400) is "not found" for the caller, not "unavailable" (503)."""
    port, seen = peer
    with pytest.raises(PeerNotFound):
        client_for(port).get_json("directory", path("/v1/units", code))
    assert path("/v1/units", code).count("/") == 3


def test_one_client_per_process_and_settings_keeps_its_cache_across_calls(peer):
    from lscloud import peers

    port, _ = peer
    s = config.load({"LSCLOUD_PEER_URL_TEMPLATE": f"http://127.0.0.1:{port}/{{name}}", "OTEL_SERVICE_NAME": "border"})
    c = peers.client(s)
    assert peers.client(s.replace()) is c and peers.client(s.replace(service="dossiers")) is not c
    # another freshness bound is another client: one made first would otherwise keep its own bound
    longer = peers.client(s.replace(peer_fresh_s=s.peer_fresh_s + 3600))
    assert longer is not c and longer.fresh_cap_s == s.peer_fresh_s + 3600 and c.fresh_cap_s == s.peer_fresh_s
    c.get_json("directory", "/v1/units/06184")
    peers.client(s).get_json("directory", "/v1/units/06184")
    assert (c.fetched, c.revalidated) == (1, 1)


def test_a_call_on_behalf_of_the_caller_carries_their_token_and_is_never_shared(peer):
    port, seen = peer
    client = client_for(port)
    mine = client.get_json("border", "/v1/declarations/d-1", authorization="Bearer owner-of-d-1")
    assert mine == {"id": "d-1", "owner": "d-1"} and seen[-1]["Authorization"] == "Bearer owner-of-d-1"
    # another caller is judged by the peer, not answered from the first caller's copy
    with pytest.raises(PeerNotFound):
        client.get_json("border", "/v1/declarations/d-1", authorization="Bearer owner-of-d-2")
    assert "If-None-Match" not in seen[-1]
    with pytest.raises(PeerForbidden):
        client.get_json("border", "/v1/declarations/d-1", authorization="")
    assert client.revalidated == 0


FAILING: dict[str, int] = {}   # code -> the status the reference peer answers instead (a peer in trouble)


@pytest.fixture
def reference_peer():
    """A peer whose answers allow caching (``Cache-Control: public, max-age=300``), as the directory's do."""
    app = Flask("reference")
    seen = []

    failing = FAILING
    failing.clear()

    @app.get("/directory/v1/units/<code>")
    def unit(code):
        seen.append(dict(request.headers))
        if code in failing:
            return jsonify(title="trouble"), failing[code]
        resp = jsonify(code=code, name="Xã Đồng Đăng")
        resp.set_etag("v1")
        resp.headers["Cache-Control"] = "public, max-age=300"
        return resp.make_conditional(request)

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port, seen
    server.shutdown()
    thread.join(5)


def test_reference_data_is_served_from_memory_within_the_bound_then_revalidated(reference_peer, monkeypatch):
    """What every request reads (the directory's answers) costs no round trip while it is fresh —
    at most LSCLOUD_PEER_FRESH_S, however long the peer's max-age — and is asked again after."""
    import lscloud.freshness as freshness_mod

    port, seen = reference_peer
    s = config.load({"LSCLOUD_PEER_URL_TEMPLATE": f"http://127.0.0.1:{port}/{{name}}", "LSCLOUD_PEER_FRESH_S": "5"})
    clock = [1000.0]
    monkeypatch.setattr(freshness_mod.time, "monotonic", lambda: clock[0])
    client = PeerClient(s)
    for _ in range(20):
        assert client.get_json("directory", "/v1/units/06184")["code"] == "06184"
    assert len(seen) == 1 and (client.fetched, client.served_fresh) == (1, 19)
    clock[0] += 5.5   # past the bound (not the peer's 300 s): asked again, a 304
    client.get_json("directory", "/v1/units/06184")
    assert len(seen) == 2 and seen[1]["If-None-Match"] == '"v1"' and client.revalidated == 1
    client.get_json("directory", "/v1/units/06184")
    assert len(seen) == 2   # fresh again after the 304
    # 0 turns it off: every call asks
    off = PeerClient(s.replace(peer_fresh_s=0))
    off.get_json("directory", "/v1/units/06184")
    off.get_json("directory", "/v1/units/06184")
    assert len(seen) == 4 and off.revalidated == 1


def test_a_peer_that_cannot_revalidate_is_answered_from_what_it_said_last_for_a_while(reference_peer, monkeypatch):
    """stale-if-error: past the freshness bound a peer that times out or answers 5xx does not fail
    the caller's request while the held answer is at most a minute stale; a 404 is an answer."""
    import lscloud.freshness as freshness_mod

    port, seen = reference_peer
    s = config.load({"LSCLOUD_PEER_URL_TEMPLATE": f"http://127.0.0.1:{port}/{{name}}", "LSCLOUD_PEER_FRESH_S": "5"})
    clock = [1000.0]
    monkeypatch.setattr(freshness_mod.time, "monotonic", lambda: clock[0])
    client = PeerClient(s)
    for code in ("06184", "06190"):
        client.get_json("directory", f"/v1/units/{code}")
    FAILING.update({"06184": 503, "06190": 404, "00001": 503})
    clock[0] += 30                       # past the bound, within the minute of grace
    assert client.get_json("directory", "/v1/units/06184")["code"] == "06184"
    assert client.served_stale == 1 and len(seen) == 3        # it did ask
    with pytest.raises(PeerNotFound):
        client.get_json("directory", "/v1/units/06190")     # gone is gone, whatever was held
    clock[0] += 60                       # more than a minute past the bound: the trouble shows
    with pytest.raises(PeerUnavailable):
        client.get_json("directory", "/v1/units/06184")
    with pytest.raises(PeerUnavailable):
        client.get_json("directory", "/v1/units/00001")     # nothing held: nothing to serve
