"""Browser pages on other origins (the province's portal, the officers' portals; in the cluster every
function has a host of its own, so every web page is on another origin) call the API through CORS,
set by ``LSCLOUD_CORS_ORIGINS``:

- a preflight from an allowed page is answered 204 before the caller or the body is checked, with
  the methods of the route and the headers the runtime reads (Authorization, Idempotency-Key …);
  from any other page it gets no CORS header (the browser stops), and no error status;
- every answer to an allowed page, errors, redirects and a 413 given before the body is read
  included, names the page (never ``*``), varies by Origin and exposes the headers clients act on;
- ``*`` opens the public GET routes to any page and nothing else;
- without the setting nothing changes;
- the local gateway's own answers (404 for no such function, 503 while one starts) carry the same
  headers, so a page sees the real status; a function's answer passes through as the function gave it.

Answers say how they may be cached: a record's (:func:`lscloud.web.versioned_json`) is private and
revalidated, with a 304 where the record alone makes the answer; any answer that does not say is
``no-store``.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from flask import jsonify, redirect, request

from asgi_support import Served  # tests/integration helper module
from lscloud import knative
from lscloud.auth import allow
from lscloud.idempotency import idempotent
from lscloud.local.gateway import Gateway, GatewayServer, Route
from lscloud.local.servers import free_port
from lscloud.web import before_body, body_limit, create_app, raw_body, versioned_json

pytestmark = pytest.mark.integration

PORTAL = "https://dichvucong.langson.gov.vn"
OFFICERS = "http://127.0.0.1:5173"   # an officers' portal in development
ELSEWHERE = "https://example.com"
EXPOSED = {"location", "etag", "retry-after", "idempotent-replayed", "content-disposition", "link"}
SENT = {"authorization", "content-type", "idempotency-key", "if-match", "if-none-match", "accept-language"}
UPLOAD_LIMIT = 2048


def build(settings):
    app = create_app("things", settings=settings)
    seen = []

    @app.post("/v1/things")
    @allow("citizen")
    @idempotent()
    def make():
        """A thing of the caller's."""
        seen.append(request.method)
        return jsonify(id="t-1"), 201, {"Location": "/v1/things/t-1"}

    @app.get("/v1/things/<thing_id>")
    @allow("citizen")
    def read(thing_id):
        """A thing at its version: the record alone makes the answer."""
        return versioned_json({"id": thing_id, "name": "cái bàn"}, 7, conditional=True)

    @app.get("/v1/clocked/<thing_id>")
    @allow("citizen")
    def clocked(thing_id):
        """A thing whose answer also says how long it has left (the clock: no 304 on its version)."""
        return versioned_json({"id": thing_id, "left_s": len(seen)}, 7)

    @app.get("/v1/units")
    @allow("public")
    def units():
        """Public reference data without a word on caching."""
        return jsonify(items=[])

    @app.get("/v1/template")
    @allow("public")
    def template():
        """A file by a link: a redirect."""
        return redirect("/downloads/x", 303)

    @app.post("/v1/upload")
    @allow("citizen")
    @raw_body("application/pdf")
    @body_limit(UPLOAD_LIMIT)
    @before_body(lambda: None)
    def upload():
        """A file, refused by its Content-Length before it is read."""
        return jsonify(size=len(request.get_data())), 201

    app.seen = seen
    return app


@pytest.fixture
def app(install):
    return build(install(cors_origins=(PORTAL, OFFICERS)).settings)


@pytest.fixture
def client(app):
    return app.test_client()


def preflight(client, path, method, origin=PORTAL, headers="authorization,content-type,idempotency-key"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": headers})


def names(value: str | None) -> set[str]:
    return {v.strip().lower() for v in (value or "").split(",") if v.strip()}


def cors_of(resp) -> dict:
    return {k.lower(): v for k, v in resp.headers.items() if k.lower().startswith("access-control-")}


def assert_readable_by(resp, origin):
    assert resp.headers["Access-Control-Allow-Origin"] == origin, dict(resp.headers)
    assert "origin" in names(resp.headers.get("Vary"))
    assert EXPOSED <= names(resp.headers.get("Access-Control-Expose-Headers"))
    assert "Access-Control-Allow-Credentials" not in resp.headers   # bearer tokens, never cookies


def test_a_preflight_from_an_allowed_page_for_a_post_with_token_and_key_is_a_204(client, app):
    resp = preflight(client, "/v1/things", "POST")
    assert resp.status_code == 204 and resp.data == b""
    assert resp.headers["Access-Control-Allow-Origin"] == PORTAL and "origin" in names(resp.headers["Vary"])
    assert "POST" in {m.upper() for m in names(resp.headers["Access-Control-Allow-Methods"])}
    assert SENT <= names(resp.headers["Access-Control-Allow-Headers"])
    assert int(resp.headers["Access-Control-Max-Age"]) > 0
    assert app.seen == []   # answered before the caller (no token) or a body was asked for
    # the other configured page too, and a GET route's preflight (If-None-Match is not a simple header)
    other = preflight(client, "/v1/things/t-1", "GET", OFFICERS, "authorization,if-none-match")
    assert other.status_code == 204 and other.headers["Access-Control-Allow-Origin"] == OFFICERS


def test_a_preflight_from_another_page_gets_no_cors_header_and_no_error(client, app):
    for origin in (ELSEWHERE, "null", PORTAL + ".evil.example", PORTAL.replace("https", "http")):
        resp = preflight(client, "/v1/things", "POST", origin)
        assert resp.status_code == 200 and cors_of(resp) == {}, origin
    assert app.seen == []


def test_every_answer_to_an_allowed_page_names_it(client, tokens):
    cit = tokens("citizen")
    created = client.post("/v1/things", json={}, headers={**cit, "Origin": PORTAL, "Idempotency-Key": uuid.uuid4().hex})
    assert created.status_code == 201 and created.headers["Location"] == "/v1/things/t-1"
    answers = {
        "POST 201": created,
        "GET 200": client.get("/v1/units", headers={"Origin": PORTAL}),
        "GET 200 with a token": client.get("/v1/things/t-1", headers={**cit, "Origin": PORTAL}),
        "401 problem": client.post("/v1/things", json={}, headers={"Origin": PORTAL}),
        "404 problem": client.get("/v1/nothing-here", headers={"Origin": PORTAL}),
        "405 problem": client.delete("/v1/units", headers={"Origin": PORTAL}),
        "303 redirect": client.get("/v1/template", headers={"Origin": PORTAL}),
        "413 before the body": client.post("/v1/upload", data=b"%PDF" + b"x" * UPLOAD_LIMIT,
                                           headers={**cit, "Origin": PORTAL, "Content-Type": "application/pdf"}),
    }
    assert [a.status_code for a in answers.values()] == [201, 200, 200, 401, 404, 405, 303, 413]
    assert answers["401 problem"].mimetype == "application/problem+json"
    for what, resp in answers.items():
        assert resp.headers["Access-Control-Allow-Origin"] == PORTAL, what
        assert_readable_by(resp, PORTAL)
    # another page is not named, and its answers still vary by Origin (no cache gives them to the portal)
    elsewhere = client.get("/v1/units", headers={"Origin": ELSEWHERE})
    assert elsewhere.status_code == 200 and cors_of(elsewhere) == {} and "origin" in names(elsewhere.headers["Vary"])


def test_any_page_reads_public_get_routes_only_with_star(install, tokens):
    client = build(install(cors_origins=("*", PORTAL)).settings).test_client()
    public = client.get("/v1/units", headers={"Origin": ELSEWHERE})
    assert_readable_by(public, ELSEWHERE)   # its own origin named, never "*"
    assert preflight(client, "/v1/units", "GET", ELSEWHERE, "if-none-match").headers[
        "Access-Control-Allow-Origin"] == ELSEWHERE
    # a citizen's routes stay closed to pages nobody listed
    assert cors_of(preflight(client, "/v1/things", "POST", ELSEWHERE)) == {}
    assert cors_of(client.get("/v1/things/t-1", headers={**tokens("citizen"), "Origin": ELSEWHERE})) == {}
    assert preflight(client, "/v1/things", "POST", PORTAL).status_code == 204


def test_without_the_setting_nothing_changes(install):
    client = build(install(cors_origins=()).settings).test_client()
    resp = preflight(client, "/v1/things", "POST")
    assert resp.status_code == 200 and names(resp.headers["Allow"]) >= {"post", "options"} and cors_of(resp) == {}
    get = client.get("/v1/units", headers={"Origin": PORTAL})
    assert get.status_code == 200 and cors_of(get) == {} and "Vary" not in get.headers


def test_a_record_answers_304_to_its_etag_and_is_never_stored_for_others(client, tokens):
    cit = {**tokens("citizen"), "Origin": PORTAL}
    first = client.get("/v1/things/t-1", headers=cit)
    assert first.status_code == 200 and first.headers["ETag"] == '"7"'
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = client.get("/v1/things/t-1", headers={**cit, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == '"7"'
    assert again.headers["Cache-Control"] == "private, no-cache"
    assert_readable_by(again, PORTAL)   # a page that revalidates by hand reads the 304
    assert client.get("/v1/things/t-1", headers={**cit, "If-None-Match": '"6"'}).status_code == 200
    # an answer that also moves with the clock keeps its version as the tag, and is never a 304
    clocked = client.get("/v1/clocked/t-1", headers=cit)
    assert clocked.headers["ETag"] == '"7"'
    assert client.get("/v1/clocked/t-1", headers={**cit, "If-None-Match": '"7"'}).status_code == 200


def test_an_answer_that_says_nothing_of_caching_is_not_stored(client, tokens):
    cit = tokens("citizen")
    created = client.post("/v1/things", json={}, headers={**cit, "Idempotency-Key": uuid.uuid4().hex})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    assert client.get("/v1/units", headers=cit).headers["Cache-Control"] == "no-store"
    assert client.get("/v1/units").headers["Cache-Control"] == "no-store"
    assert client.post("/v1/things", json={}).headers["Cache-Control"] == "no-store"   # the 401 too
    doc = client.get("/openapi.json")
    assert doc.headers["Cache-Control"].startswith("public, max-age=") and doc.headers["ETag"]
    assert client.get("/openapi.json", headers={"If-None-Match": doc.headers["ETag"]}).status_code == 304


# --- through the local gateway ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def function_server(base_settings):
    from lscloud.function_server import FunctionApp

    instance = knative.function(build, needs=())()
    env = base_settings.replace(service="things", cors_origins=(PORTAL,)).env_vars()
    with pytest.MonkeyPatch.context() as mp:  # func-python's lifespan start reads the environment
        for name, value in env.items():
            mp.setenv(name, value)
        served = Served(FunctionApp(instance)).start()
        try:
            httpx.get(served.url + "/health/readiness", timeout=30).raise_for_status()
            yield served
        finally:
            served.stop()


@pytest.fixture(scope="module", params=["fast", "asgi"])
def gateway(request, function_server):
    routes = {"things": Route("things", function_server.port, "ready"),
              "starting": Route("starting", free_port(), "starting")}
    server = GatewayServer(Gateway(lambda: routes, cors_origins=(PORTAL,), fast_path=request.param == "fast"),
                           "127.0.0.1", free_port()).start()
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
        yield client
    server.stop()


def test_the_gateways_own_answers_carry_the_cors_headers(gateway):
    for path, status in (("/nosuch/v1/units", 404), ("/starting/v1/units", 503), ("/things/events", 404)):
        resp = gateway.get(path, headers={"Origin": PORTAL})
        assert resp.status_code == status and resp.headers["content-type"] == "application/problem+json", path
        assert resp.headers["access-control-allow-origin"] == PORTAL, path
        assert "origin" in names(resp.headers["vary"]) and "retry-after" in names(
            resp.headers["access-control-expose-headers"])
        # a page the setting does not name reads none of them
        other = gateway.get(path, headers={"Origin": ELSEWHERE})
        assert other.status_code == status and "access-control-allow-origin" not in other.headers
    assert gateway.get("/starting/v1/units", headers={"Origin": PORTAL}).headers["retry-after"]


def test_a_functions_answer_passes_through_the_gateway_as_the_function_gave_it(gateway):
    resp = gateway.get("/things/v1/units", headers={"Origin": PORTAL})
    assert resp.status_code == 200
    assert resp.headers.get_list("access-control-allow-origin") == [PORTAL]   # the function's, once
    pre = gateway.options("/things/v1/things", headers={"Origin": PORTAL, "Access-Control-Request-Method": "POST",
                                                        "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 204 and pre.headers.get_list("access-control-allow-origin") == [PORTAL]


def test_a_gateway_without_the_setting_adds_nothing():
    server = GatewayServer(Gateway(lambda: {}, cors_origins=()), "127.0.0.1", free_port()).start()
    try:
        resp = httpx.get(f"http://127.0.0.1:{server.port}/nosuch/v1/units", headers={"Origin": PORTAL}, timeout=30)
        assert resp.status_code == 404 and "vary" not in resp.headers
        assert not [k for k in resp.headers if k.lower().startswith("access-control-")]
    finally:
        server.stop()
