"""The Knative bridge: a real ASGI call into Flask, real readiness checks, /events dedupe."""

from __future__ import annotations

import asyncio
import json
import textwrap

import httpx
import pytest

from lscloud import events, knative
from lscloud.auth import delivery_headers, dev_keys, issue_delivery_token, issue_token
from lscloud.loading import load_function
from lscloud.problems import TYPE_BASE

pytestmark = pytest.mark.integration

EVENT_TYPE = "vn.langson.test.thing.happened.v1"
FAILING_TYPE = "vn.langson.test.thing.failed.v1"
BUSY_TYPE = "vn.langson.test.thing.throttled.v1"


def write_function(root, name: str, greeting: str):
    pkg = root / name / "function"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .func import new\n")
    (pkg / "greeting.py").write_text(f"GREETING = {greeting!r}\n")
    (pkg / "handlers.py").write_text(textwrap.dedent("""
        from lscloud.problems import Problem

        SEEN = []
        FAILURES = {"left": 1}

        def on_happened(event):
            SEEN.append(event["id"])

        def on_failed(event):
            if FAILURES["left"] > 0:
                FAILURES["left"] -= 1
                raise RuntimeError("downstream broke")
            SEEN.append(event["id"])

        def on_throttled(event):
            raise Problem(429, "slow-down", headers={"Retry-After": "2"})
    """))
    (pkg / "app.py").write_text(textwrap.dedent("""
        from flask import g, jsonify

        from lscloud.auth import allow
        from lscloud.web import create_app as base_app

        from .greeting import GREETING


        def create_app(settings):
            app = base_app(%r, settings=settings)

            @app.get("/v1/hello")
            @allow("public")
            def hello():
                \"\"\"Say hello.\"\"\"
                return jsonify(greeting=GREETING)

            @app.post("/v1/echo")
            @allow("public")
            def echo():
                \"\"\"Echo the body's size.\"\"\"
                from flask import request
                return jsonify(size=len(request.get_data()))

            return app
    """) % name)
    (pkg / "func.py").write_text(textwrap.dedent(f"""
        from lscloud import knative

        from .app import create_app
        from .handlers import on_failed, on_happened, on_throttled

        new = knative.function(create_app, events={{
            {EVENT_TYPE!r}: on_happened, {FAILING_TYPE!r}: on_failed, {BUSY_TYPE!r}: on_throttled}})
    """))
    return root / name


@pytest.fixture
def functions_dir(tmp_path):
    return tmp_path / "functions"


@pytest.fixture
def module(functions_dir):
    return load_function(write_function(functions_dir, "greeter", "xin chào"))


@pytest.fixture
def instance(module, settings):
    f = module.new()
    f.start(settings.replace(max_body_bytes=2048).env_vars())
    yield f
    f.stop()


def call(instance, method, path, **kw):
    async def go():
        transport = httpx.ASGITransport(app=instance.handle)
        async with httpx.AsyncClient(transport=transport, base_url="http://fn") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def test_load_function_keeps_functions_apart(functions_dir, module):
    other = load_function(write_function(functions_dir, "other", "hello"))
    assert module.__name__ == "lscloud_fn_greeter" and other.__name__ == "lscloud_fn_other"
    assert module.func.create_app.__module__ == "lscloud_fn_greeter.app"
    assert load_function(functions_dir / "greeter") is module
    assert module.new.__name__ == "new"


def test_handle_serves_flask_through_asgi(instance):
    resp = call(instance, "GET", "/v1/hello")
    assert resp.status_code == 200 and resp.json() == {"greeting": "xin chào"}
    missing = call(instance, "GET", "/v1/nothing")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    doc = call(instance, "GET", "/openapi.json").json()
    assert doc["paths"]["/events"]["post"]["x-lscloud-access"]["roles"] == ["eventing"]


def test_chunked_body_is_read_and_limited(instance):
    async def chunks(n):
        for _ in range(n):
            yield b"x" * 500

    ok = call(instance, "POST", "/v1/echo", content=chunks(3), headers={"content-type": "application/json"})
    assert ok.status_code == 200 and ok.json() == {"size": 1500}
    big = call(instance, "POST", "/v1/echo", content=chunks(6), headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["type"] == TYPE_BASE + "payload-too-large"


def test_ready_checks_the_real_servers(instance, module, settings):
    assert instance.ready() == (True, "OK")
    assert instance.alive()[0] is True

    no_s3 = module.new()
    no_s3.start(settings.replace(s3_endpoint="http://127.0.0.1:9").env_vars())
    try:
        ok, message = no_s3.ready()
        assert ok is False and "object store" in message
    finally:
        no_s3.stop()

    no_bucket = module.new()
    no_bucket.start(settings.replace(bucket="no-such-bucket-here").env_vars())
    try:
        assert no_bucket.ready()[0] is False
    finally:
        no_bucket.stop()

    no_nats = module.new()
    no_nats.start(settings.replace(nats_url="nats://127.0.0.1:9").env_vars())
    try:
        ok, message = no_nats.ready()
        assert ok is False and "nats" in message
    finally:
        no_nats.stop()


def test_ready_asks_only_what_the_function_needs(module, settings):
    s3_only = knative.function(module.app.create_app, needs=("s3",))()
    assert s3_only.needs == ("s3",) and module.new().needs == ("s3", "nats")
    s3_only.start(settings.replace(nats_url="nats://127.0.0.1:9").env_vars())
    try:
        assert s3_only.ready() == (True, "OK")
    finally:
        s3_only.stop()

    s3_down = knative.function(module.app.create_app, needs=("s3",))()
    s3_down.start(settings.replace(s3_endpoint="http://127.0.0.1:9", nats_url="nats://127.0.0.1:9").env_vars())
    try:
        ok, message = s3_down.ready()
        assert ok is False and "object store" in message
    finally:
        s3_down.stop()

    nothing = knative.function(module.app.create_app, needs=())()
    nothing.start(settings.replace(s3_endpoint="http://127.0.0.1:9", nats_url="nats://127.0.0.1:9").env_vars())
    try:
        assert nothing.ready() == (True, "OK")
    finally:
        nothing.stop()


def test_a_function_s_own_readiness_check_holds_traffic_until_it_passes(instance):
    """An index still being built keeps the replica out of service (Knative sends it nothing yet)."""
    state = {"built": False}
    instance.app.extensions.setdefault(knative.READINESS_CHECKS, []).append(
        lambda: (state["built"], "the index is being built"))
    try:
        assert instance.ready() == (False, "the index is being built")
        state["built"] = True
        assert instance.ready() == (True, "OK")
    finally:
        instance.app.extensions[knative.READINESS_CHECKS].pop()


def test_work_after_readiness_starts_once_the_replica_first_answers_ready(instance, caplog):
    """Work a function defers until it serves (an index the first requests can do without) starts
    the first time the replica answers ready, once, in the background; a failing job is logged and
    the rest still run; the replica stays ready."""
    import threading

    ran, done, gate = [], threading.Event(), threading.Event()

    def broken():
        raise RuntimeError("index source unreachable")

    def after_ready_threads():
        return [t for t in threading.enumerate() if t.name == "lscloud-after-ready"]

    state = {"built": False}
    instance.app.extensions.setdefault(knative.READINESS_CHECKS, []).append(
        lambda: (state["built"], "still starting"))
    instance.app.extensions[knative.AFTER_READY] = [
        gate.wait, broken, lambda: ran.append(threading.current_thread().name), done.set]
    try:
        assert instance.ready() == (False, "still starting")
        assert after_ready_threads() == []               # not started: it would be held at the gate
        state["built"] = True
        assert instance.ready() == (True, "OK")
        assert instance.ready() == (True, "OK")
        assert len(after_ready_threads()) == 1           # started once, though asked twice
        gate.set()
        assert done.wait(10), "the work after readiness never ran"
        assert instance.ready() == (True, "OK")
        assert ran == ["lscloud-after-ready"]            # once, in its own thread
        assert "index source unreachable" in caplog.text
    finally:
        instance.app.extensions[knative.READINESS_CHECKS].pop()
        instance.app.extensions.pop(knative.AFTER_READY)


def test_needs_is_checked_when_declared(module):
    with pytest.raises(ValueError, match="redis"):
        knative.function(module.app.create_app, needs=("s3", "redis"))
    with pytest.raises(TypeError):
        knative.function(module.app.create_app, needs="s3")
    with pytest.raises(ValueError, match="s3"):
        knative.function(module.app.create_app, events={EVENT_TYPE: module.handlers.on_happened}, needs=("nats",))


def test_directory_is_ready_without_nats(settings):
    from pathlib import Path

    directory = load_function(Path(__file__).resolve().parents[2] / "functions" / "directory")
    f = directory.new()
    assert f.needs == ("s3",)
    f.start(settings.replace(nats_url="nats://127.0.0.1:9").env_vars())
    try:
        assert f.ready() == (True, "OK")
    finally:
        f.stop()


def test_func_python_health_endpoints_use_ready(instance):
    from func_python.http import ASGIApplication

    wrapped = ASGIApplication(instance)
    resp = call(type("Shim", (), {"handle": staticmethod(wrapped)}), "GET", "/health/readiness")
    assert resp.status_code == 200 and resp.text == "OK"


def post_binary(instance, event, auth: dict | None = None):
    """What the dispatcher does: the event in binary mode, with its delivery token for this function."""
    headers, body = events.to_binary_http(event)
    headers.update(delivery_headers(instance.settings) if auth is None else auth)
    return call(instance, "POST", "/events", content=body, headers=headers)


def test_same_event_twice_runs_the_handler_once(instance, module):
    event = events.new_event(EVENT_TYPE, "/test", {"n": 1})
    first = post_binary(instance, event)
    second = post_binary(instance, event)
    assert first.status_code == 200 and first.json()["status"] == "done"
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    assert module.handlers.SEEN == [event["id"]]


def test_structured_event_is_accepted(instance, module):
    event = events.new_event(EVENT_TYPE, "/test", {"n": 2})
    resp = call(instance, "POST", "/events", content=events.to_structured(event),
                headers={"content-type": "application/cloudevents+json", **delivery_headers(instance.settings)})
    assert resp.status_code == 200 and module.handlers.SEEN == [event["id"]]


def test_failed_handler_forgets_the_event_so_a_retry_runs(instance, module, settings, object_store):
    event = events.new_event(FAILING_TYPE, "/test", {"n": 3})
    failed = post_binary(instance, event)
    assert failed.status_code == 500 and failed.json()["detail"] == "internal error"
    assert list(object_store.list(settings.bucket, "events-seen/")) == []
    retried = post_binary(instance, event)
    assert retried.status_code == 200 and module.handlers.SEEN == [event["id"]]
    assert len(list(object_store.list(settings.bucket, "events-seen/"))) == 1


def test_throttled_handler_passes_429_through(instance):
    resp = post_binary(instance, events.new_event(BUSY_TYPE, "/test", {}))
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "2"


def test_unknown_type_and_malformed_events_are_4xx(instance):
    unknown = post_binary(instance, events.new_event("vn.langson.test.other.v1", "/test", {}))
    assert unknown.status_code == 400 and unknown.json()["type"] == TYPE_BASE + "unsupported-event-type"
    malformed = call(instance, "POST", "/events", content=json.dumps({"specversion": "1.0", "id": "x"}),
                     headers={"content-type": "application/cloudevents+json", **delivery_headers(instance.settings)})
    assert malformed.status_code == 400 and malformed.json()["type"] == TYPE_BASE + "malformed-event"
    # the attribute it lacks is named, as any bad input's field is
    assert [e["field"] for e in malformed.json()["errors"]] == ["source"]
    not_an_event = call(instance, "POST", "/events", content=b"{}",
                        headers={"content-type": "application/json", **delivery_headers(instance.settings)})
    assert not_an_event.status_code == 400 and [e["field"] for e in not_an_event.json()["errors"]] == ["body"]
    bad_header = call(instance, "POST", "/events", content=b"{}", headers={
        "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "x", "ce-source": "/test",
        "ce-type": "vn.langson.test.thing.v1", "ce-subject": "%C0%A0", **delivery_headers(instance.settings)})
    assert bad_header.status_code == 400 and [e["field"] for e in bad_header.json()["errors"]] == ["ce-subject"]


def test_events_refuse_every_sender_but_the_dispatcher(instance, module, tmp_path):
    """/events authenticates its sender: no token, a token for another function, an expired one, one
    from another issuer or signed with another key (the dev-token key), or a subject not allowed."""
    from lscloud.auth import eventing_keys

    settings = instance.settings
    dev_private, _ = dev_keys(tmp_path / "dev")
    other_private, _ = eventing_keys(tmp_path / "another-cloud")
    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    refused = {
        "no token": {},
        "not a bearer": {"Authorization": "Basic dXNlcjpwdw=="},
        "not a JWT": bearer("not.a.jwt"),
        "another audience": delivery_headers(settings, audience="other-function"),
        "expired": delivery_headers(settings, ttl_s=-120),
        "another issuer": delivery_headers(settings, issuer="someone-else"),
        "another key": bearer(issue_delivery_token(other_private, settings.service)),
        "a dev token": bearer(issue_token(dev_private, "someone", "operator", audience=settings.service,
                                          issuer=settings.events_issuer)),
        "a dev token for the API": bearer(issue_token(dev_private, "someone", "admin")),
    }
    for why, auth in refused.items():
        event = events.new_event(EVENT_TYPE, "/forged", {"why": why})
        resp = post_binary(instance, event, auth=auth)
        assert resp.status_code == 401, why
        assert resp.headers["content-type"] == "application/problem+json", why
        assert resp.json()["errors"][0]["field"] == "Authorization", why
        assert resp.headers["WWW-Authenticate"].startswith("Bearer"), why
    not_allowed = post_binary(instance, events.new_event(EVENT_TYPE, "/forged", {}),
                              auth=delivery_headers(settings, subject="system:serviceaccount:x:intruder"))
    assert not_allowed.status_code == 403 and not_allowed.json()["type"] == TYPE_BASE + "sender-not-allowed"
    assert module.handlers.SEEN == []
    # the dispatcher's own token, for this function: accepted
    assert post_binary(instance, events.new_event(EVENT_TYPE, "/test", {})).status_code == 200
    assert len(module.handlers.SEEN) == 1


def test_route_without_allow_stops_the_start(functions_dir, settings):
    pkg = write_function(functions_dir, "leaky", "x") / "function"
    (pkg / "app.py").write_text(textwrap.dedent("""
        from lscloud.web import create_app as base_app

        def create_app(settings):
            app = base_app("leaky", settings=settings)
            app.add_url_rule("/v1/open", "open", lambda: "hi")
            return app
    """))
    f = load_function(functions_dir / "leaky").new()
    from lscloud.web import AccessError

    with pytest.raises(AccessError, match="/v1/open"):
        f.start(settings.env_vars())
    f.stop()


def test_a_served_request_continues_the_caller_s_trace_under_its_route(instance):
    """Through the ASGI entry point as the server calls it: one SERVER span named by the route, child
    of the caller's traceparent, with its status, and the view's own spans under it."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from lscloud import telemetry

    exporter = InMemorySpanExporter()
    telemetry.use_span_exporter(exporter)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = call(instance, "GET", "/v1/hello", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    assert r.status_code == 200
    spans = [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.name == "GET /v1/hello" and format(server.parent.span_id, "016x") == parent_id
    assert server.attributes["http.route"] == "/v1/hello" and server.attributes["http.response.status_code"] == 200
    assert server.attributes["http.request.method"] == "GET"
