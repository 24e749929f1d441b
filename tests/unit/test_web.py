"""The app factory: problem+json for every error, body limits, validation with pointers, OpenAPI."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask import g

from lscloud.auth import allow
from lscloud.config import Settings
from lscloud.problems import TYPE_BASE, Problem
from lscloud.web import (PAGE_SCHEMA, AccessError, build_openapi, check_access, create_app, query_params,
                         responds, validate_body)


@pytest.fixture
def schemas(tmp_path):
    d = tmp_path / "schemas"
    (d / "common").mkdir(parents=True)
    (d / "common" / "address.json").write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["street", "ward"],
        "properties": {"street": {"type": "string", "minLength": 1}, "ward": {"type": "string", "pattern": "^[0-9]{5}$"}},
        "additionalProperties": False,
    }))
    (d / "unit.json").write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Unit",
        "type": "object",
        "required": ["code", "name"],
        "properties": {
            "code": {"type": "string", "pattern": "^[0-9]{2,5}$"},
            "name": {"type": "string", "maxLength": 50},
            "population": {"type": "integer", "minimum": 0},
            "address": {"$ref": "common/address.json"},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
        },
        "additionalProperties": False,
        "$defs": {"tag": {"type": "string", "maxLength": 10}},
    }))
    return d


@pytest.fixture
def app(schemas):
    app = create_app("directory", schemas_dir=schemas, settings=Settings().replace(max_body_bytes=1024),
                     openapi={"title": "Directory", "version": "1.2.3"})

    @app.get("/v1/units/<code>")
    @allow("public")
    def get_unit(code):
        """Read one administrative unit.

        More text that is not the summary.
        """
        raise Problem(404, "unit-not-found", "Unit not found", f"No unit {code}.", title_vi="Không tìm thấy đơn vị",
                      detail_vi=f"Không có đơn vị {code}.")

    @app.post("/v1/units")
    @allow("officer")
    @validate_body("unit.json")
    def create_unit():
        """Create a unit."""
        return g.body, 201

    @app.post("/v1/echo")
    @allow("public")
    @validate_body("unit.json")
    def echo():
        """Echo a valid unit."""
        return g.body, 200

    @app.get("/v1/boom")
    @allow("public")
    def boom():
        raise RuntimeError("db password is hunter2")

    @app.get("/v1/down/<what>")
    @allow("public")
    def down(what):
        if what == "store":
            from lscloud.store.errors import StoreUnavailable

            raise StoreUnavailable("store at 10.0.0.5 refused with secret s3cr3t")
        from lscloud.bus import BusUnavailable

        raise BusUnavailable("nats://10.0.0.6 did not confirm")

    @app.post("/v1/reused")
    @allow("public")
    def reused():
        from lscloud.resends import IdReused

        raise IdReused(["/amount_vnd", "/account"], key="w-00000001")  # what a domain module raises

    @app.get("/v1/things/<thing_id>")
    @allow("public")
    def get_thing(thing_id):
        from lscloud.store.keys import encode_part

        encode_part(thing_id)  # what Model.get does with an id from the path
        return {}

    return app


@pytest.fixture
def client(app):
    return app.test_client()


def assert_problem(resp, status, slug=None):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json(force=True)
    for member in ("type", "title", "status", "detail", "instance", "title_vi", "detail_vi", "errors", "trace_id"):
        assert member in body, member
    assert body["status"] == status
    assert body["type"].startswith(TYPE_BASE)
    if slug:
        assert body["type"] == TYPE_BASE + slug
    return body


def test_problem_defaults_carry_both_languages():
    p = Problem(409)
    assert p.type == TYPE_BASE + "conflict"
    assert p.title == "Conflict" and p.title_vi == "Xung đột dữ liệu"
    d = p.to_dict(instance="/x", trace_id=None)
    assert d["detail"] and d["detail_vi"] and d["errors"] == []
    custom = Problem(404, "https://example.org/x", "T", "D", errors=[{"field": "/a", "message": "m"}], extra=1)
    assert custom.type == "https://example.org/x" and custom.to_dict()["extra"] == 1


def test_raised_problem_is_problem_json(client):
    body = assert_problem(client.get("/v1/units/20"), 404, "unit-not-found")
    assert body["instance"] == "/v1/units/20"
    assert body["title_vi"] == "Không tìm thấy đơn vị" and body["detail"] == "No unit 20."
    # behind an ingress that serves the function under a prefix, the path the caller used
    behind = assert_problem(client.get("/v1/units/20", headers={"X-Forwarded-Prefix": "/directory"}), 404,
                            "unit-not-found")
    assert behind["instance"] == "/directory/v1/units/20"


def test_a_reused_id_raised_by_a_domain_module_is_the_one_409(client):
    body = assert_problem(client.post("/v1/reused"), 409, "idempotency-key-reused")
    assert [e["field"] for e in body["errors"]] == ["/account", "/amount_vnd"]
    assert body["idempotency_key"] == "w-00000001"


def test_unknown_route_is_404_problem(client):
    assert_problem(client.get("/nope"), 404, "not-found")


def test_wrong_method_is_405_with_allow(client):
    resp = client.delete("/v1/units/20")
    assert_problem(resp, 405, "method-not-allowed")
    allowed = {m.strip() for m in resp.headers["Allow"].split(",")}
    assert "GET" in allowed and "DELETE" not in allowed
    assert "DELETE" in resp.get_json()["detail_vi"] and "GET" in resp.get_json()["detail_vi"]


def test_malformed_json_is_400(client):
    body = assert_problem(client.post("/v1/echo", data=b'{"code": ', content_type="application/json"), 400,
                          "malformed-json")
    assert "line 1" in body["detail"]


def test_non_json_body_is_415(client):
    assert_problem(client.post("/v1/echo", data=b"code=20", content_type="application/x-www-form-urlencoded"), 415,
                   "unsupported-media-type")
    assert_problem(client.post("/v1/echo", data=b'{"code":"20","name":"x"}', content_type="text/plain"), 415)


def test_json_variants_are_accepted(client):
    resp = client.post("/v1/echo", data=b'{"code":"20","name":"x"}', content_type="application/json; charset=utf-8")
    assert resp.status_code == 200 and resp.get_json() == {"code": "20", "name": "x"}
    resp = client.post("/v1/echo", data=b'{"code":"20","name":"x"}', content_type="application/merge-patch+json")
    assert resp.status_code == 200


def test_body_over_limit_is_413(client):
    big = json.dumps({"code": "20", "name": "x" * 2000}).encode()
    body = assert_problem(client.post("/v1/echo", data=big, content_type="application/json"), 413, "payload-too-large")
    assert "1024" in body["detail"] and "1.024 byte" in body["detail_vi"]


def test_chunked_body_over_limit_is_413_on_read(app):
    big = json.dumps({"code": "20", "name": "x" * 2000}).encode()
    # no Content-Length; the ASGI bridge marks the stream terminated (see knative)
    environ = {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}
    resp = app.test_client().post("/v1/echo", input_stream=io.BytesIO(big), content_type="application/json",
                                  headers={"Transfer-Encoding": "chunked"}, environ_overrides=environ)
    assert_problem(resp, 413)
    small = json.dumps({"code": "20", "name": "x" * 900}).encode()
    resp = app.test_client().post("/v1/echo", input_stream=io.BytesIO(small), content_type="application/json",
                                  headers={"Transfer-Encoding": "chunked"}, environ_overrides=environ)
    assert resp.status_code == 422  # read whole (name too long for the schema), not cut at the limit


def test_validation_reports_every_error_with_pointers(client):
    resp = client.post("/v1/echo", json={
        "code": "x", "population": -1, "extra": True,
        "address": {"street": "", "ward": "abc", "zip": 1},
        "tags": ["ok", "much-too-long-tag"],
    })
    body = assert_problem(resp, 422, "validation-failed")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"/code", "/name", "/population", "/extra", "/address/street", "/address/ward", "/address/zip",
                      "/tags/1"}
    assert all(e["message"] and e["message_vi"] for e in body["errors"])
    # the summary counts the fields a person fixes, in both languages, and names no schema file
    assert body["detail"].startswith("8 fields are not valid: ") and body["detail_vi"].startswith("8 trường chưa hợp lệ: ")
    assert ".json" not in body["detail"] + body["detail_vi"]


def test_valid_body_reaches_the_view(client):
    unit = {"code": "20", "name": "Lạng Sơn", "address": {"street": "Lê Lợi", "ward": "06211"}, "tags": ["tỉnh"]}
    resp = client.post("/v1/echo", json=unit)
    assert resp.status_code == 200 and resp.get_json() == unit


def test_unexpected_exception_is_500_without_its_text(client, caplog):
    with caplog.at_level(logging.ERROR, logger="lscloud.web"):
        resp = client.get("/v1/boom")
    body = assert_problem(resp, 500, "internal-error")
    assert body["detail"] == "internal error"
    assert "hunter2" not in resp.get_data(as_text=True)
    assert any("unhandled error" in r.getMessage() and r.exc_info for r in caplog.records)


def test_problem_and_log_carry_the_trace_id(client, caplog):
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")  # a local provider: no global state touched
    with caplog.at_level(logging.ERROR, logger="lscloud.web"):
        with tracer.start_as_current_span("request") as span:
            resp = client.get("/v1/boom")
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert resp.get_json()["trace_id"] == trace_id
    assert any(trace_id in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("what, cause", [("store", "StoreUnavailable"), ("bus", "BusUnavailable")])
def test_a_platform_dependency_that_does_not_answer_is_one_503(client, caplog, what, cause):
    """The object store and NATS are answered alike (lscloud.errors.retry_later): 503 with
    Retry-After, nothing of the cause in the body, a warning naming the exception's class."""
    with caplog.at_level(logging.WARNING, logger="lscloud.web"):
        resp = client.get(f"/v1/down/{what}")
    body = assert_problem(resp, 503)
    assert resp.headers["Retry-After"] == "5"
    assert "10.0.0" not in resp.get_data(as_text=True) and "s3cr3t" not in resp.get_data(as_text=True)
    (line,) = [r.getMessage() for r in caplog.records if "answered 503" in r.getMessage()]
    assert cause in line and "10.0.0" not in line and body["status"] == 503


def test_route_without_allow_refuses_to_serve(schemas):
    app = create_app("bad", schemas_dir=schemas, settings=Settings())

    @app.get("/v1/open")
    def open_door():
        return "hi"

    with pytest.raises(AccessError, match="/v1/open"):
        check_access(app)
    resp = app.test_client().get("/v1/open")
    assert resp.status_code == 500 and b"hi" not in resp.data


def test_allow_twice_is_refused():
    with pytest.raises(TypeError):
        @allow("public")
        @allow("officer")
        def view():
            return ""


def test_missing_schema_stops_the_check(schemas):
    app = create_app("bad", schemas_dir=schemas, settings=Settings())

    @app.post("/v1/x")
    @allow("public")
    @validate_body("nope.json")
    def x():
        return ""

    with pytest.raises(KeyError, match="nope.json"):
        check_access(app)


def test_openapi_document_is_valid_3_1(app, client):
    from openapi_spec_validator import validate

    check_access(app)
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    validate(doc)
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "Directory" and doc["info"]["version"] == "1.2.3"
    assert "problem+json" in doc["info"]["description"] and "Hàm `directory`" in doc["info"]["description"]
    get_op = doc["paths"]["/v1/units/{code}"]["get"]
    assert get_op["summary"] == "Read one administrative unit."
    assert get_op["security"] == [] and get_op["x-lscloud-access"] == {"roles": ["public"], "partner": False}
    assert get_op["parameters"][0]["name"] == "code" and get_op["parameters"][0]["required"] is True
    post_op = doc["paths"]["/v1/units"]["post"]
    assert post_op["security"] == [{"bearer": []}]
    assert post_op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/unit"}
    comps = doc["components"]["schemas"]
    assert {"unit", "common.address", "Problem"} <= set(comps)
    assert comps["unit"]["properties"]["address"] == {"$ref": "#/components/schemas/common.address"}
    # a file's $defs are components of their own (generators resolve no pointer into a component)
    assert comps["unit"]["properties"]["tags"]["items"] == {"$ref": "#/components/schemas/unit.defs.tag"}
    assert "$defs" not in comps["unit"] and comps["unit.defs.tag"]["type"]
    assert doc == build_openapi(app)


def test_openapi_documents_responses_and_query_params(schemas):
    from openapi_spec_validator import validate

    app = create_app("directory", schemas_dir=schemas, settings=Settings())

    @app.get("/v1/units")
    @allow("public")
    @responds("unit.json", page=True, headers={"ETag": "Strong validator"}, also={304: "Not modified"})
    @query_params(("q", "Search names"), ("limit", "Page size", {"type": "integer", "minimum": 1}))
    def list_units():
        """List units."""
        return {"items": [], "total": 0, "next_page_token": None}

    @app.get("/v1/units/<int:number>")
    @allow("public")
    @responds("unit.json", also=(304,))
    def get_unit(number):
        """Read one unit."""
        return {}

    @app.post("/v1/units")
    @allow("officer")
    @validate_body("unit.json")
    @responds("unit.json", status=201, headers={"Location": ""})
    def create_unit():
        """Create a unit."""
        return g.body, 201

    @app.delete("/v1/units/<code>")
    @allow("officer")
    @responds(None, status=204)
    def delete_unit(code):
        """Delete a unit."""
        return "", 204

    @app.post("/v1/units/<code>/legacy")
    @allow("public")
    @responds(None, also={429: "Too many"}, errors_as={"application/json": "common/address.json", "text/xml": None})
    def legacy_errors(code):
        """A path whose errors follow another standard's format."""
        return "", 200

    @app.get("/v1/units/<code>/untyped")
    @allow("public")
    def untyped(code):
        """A route without @responds."""
        return "", 200

    check_access(app)
    assert app.test_client().get("/v1/units?q=x").get_json()["total"] == 0
    doc = build_openapi(app)
    validate(doc)
    comps = doc["components"]["schemas"]
    assert comps["Page"] == PAGE_SCHEMA and {"unit", "common.address", "Problem"} <= set(comps)

    listing = doc["paths"]["/v1/units"]["get"]
    assert [p["name"] for p in listing["parameters"]] == ["q", "limit"]
    assert listing["parameters"][0] == {"name": "q", "in": "query", "required": False, "description": "Search names",
                                        "schema": {"type": "string", "maxLength": 200,
                                                   "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}}
    assert listing["parameters"][1]["schema"] == {"type": "integer", "minimum": 1}
    assert [c for c in listing["responses"] if c[0] not in "45"] == ["200", "304", "default"]
    ok = listing["responses"]["200"]
    assert ok["description"] == "OK"
    assert ok["headers"] == {"ETag": {"description": "Strong validator", "schema": {"type": "string"}}}
    assert ok["content"]["application/json"]["schema"] == {"allOf": [
        {"$ref": "#/components/schemas/Page"},
        {"properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/unit"}}}}]}
    assert listing["responses"]["304"] == {"description": "Not modified"}
    assert listing["responses"]["default"]["content"]["application/problem+json"]["schema"] == \
        {"$ref": "#/components/schemas/Problem"}

    item = doc["paths"]["/v1/units/{number}"]["get"]
    assert item["parameters"] == [{"name": "number", "in": "path", "required": True, "schema": {"type": "integer"}}]
    assert item["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/unit"}
    assert item["responses"]["304"] == {"description": "Not Modified"}

    created = doc["paths"]["/v1/units"]["post"]["responses"]
    assert [c for c in created if not c.startswith(("4", "5"))] == ["201", "default"]
    assert created["201"]["description"] == "Created"
    assert created["201"]["headers"] == {"Location": {"schema": {"type": "string"}}}
    deleted = doc["paths"]["/v1/units/{code}"]["delete"]
    assert deleted["parameters"][0]["name"] == "code"
    assert deleted["responses"]["204"] == {"description": "No Content"}
    # a path answering another standard's errors documents each error (and default) in that format
    legacy = doc["paths"]["/v1/units/{code}/legacy"]["post"]["responses"]
    assert {"429", "404", "503", "default"} <= set(legacy) and all(
        legacy[c]["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/common.address"}},
                                 "text/xml": {}} for c in legacy if c != "200")
    assert "content" not in legacy["200"]
    # a route without @responds keeps the generic success answer; the runtime's own document is typed
    assert [c for c in doc["paths"]["/v1/units/{code}/untyped"]["get"]["responses"] if not c.startswith(("4", "5"))] \
        == ["2XX", "default"]
    assert "application/json" in doc["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"]


def test_page_component_only_when_a_route_pages(app):
    check_access(app)
    assert "Page" not in build_openapi(app)["components"]["schemas"]


def test_responds_and_query_params_are_checked(schemas):
    with pytest.raises(TypeError, match="item schema"):
        responds(None, page=True)
    with pytest.raises(ValueError):
        responds("unit.json", also={200: "again"})
    with pytest.raises(TypeError):
        query_params("q")
    with pytest.raises(ValueError, match="twice"):
        query_params(("q", "a"), ("q", "b"))
    with pytest.raises(TypeError, match="exactly one"):
        @responds("unit.json")
        @responds("unit.json")
        def twice():
            pass

    app = create_app("x", schemas_dir=schemas, settings=Settings())

    @app.get("/v1/x")
    @allow("public")
    @responds("nope.json")
    def x():
        return {}

    with pytest.raises(KeyError, match="nope.json"):
        check_access(app)

    bare = create_app("bare", settings=Settings())

    @bare.get("/v1/y")
    @allow("public")
    @responds("unit.json")
    def y():
        return {}

    with pytest.raises(RuntimeError, match="no schemas_dir"):
        check_access(bare)


# -- strict JSON bodies (issue 9: deep nesting, NaN / Infinity, duplicate keys, integer-valued floats) ----


@pytest.fixture
def roomy(schemas):
    """A client whose body limit (1 MiB) lets the odd bodies below reach the parser."""
    app = create_app("roomy", schemas_dir=schemas, settings=Settings().replace(max_body_bytes=1 << 20))

    @app.post("/v1/echo")
    @allow("public")
    @validate_body("unit.json")
    def echo():
        return g.body, 200

    return app.test_client()


@pytest.mark.parametrize("raw,field", [
    (b"[" * 5000 + b"]" * 5000, ""),                       # RecursionError in the parser: was a 500
    (b'{"a":' * 40 + b"1" + b"}" * 40, "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a"),
    (b'{"code": "20", "name": "x", "population": NaN}', "/population"),
    (b'{"code": "20", "name": "x", "population": Infinity}', "/population"),
    (b'{"code": "20", "name": "x", "population": -Infinity}', "/population"),
    (b'{"code": "20", "name": "x", "population": 1e400}', "/population"),
    (b'{"code": "20", "name": "x", "population": 1' + b"0" * 5000 + b"}", "/population"),
    (b'{"code": "20", "name": "x", "tags": ["a"], "population": 1000, "population": 2000}', "/population"),
    (b'{"code": "20", "name": "x", "address": {"street": "a", "street": "b", "ward": "06211"}}', "/address/street"),
    # a lone surrogate is valid JSON and no character: it could not be written back (a 500 on
    # every JSON route, the problem answer itself included when it was in a name)
    (b'{"code": "20", "name": "\\ud800"}', "/name"),
    (b'{"code": "20", "name": "x", "tags": ["a", "b\\udfffc"]}', "/tags/1"),
    (b'{"code": "20", "name": "x", "\\ud800": 1}', "/\\ud800"),
], ids=["5000-deep", "40-deep", "NaN", "Infinity", "-Infinity", "1e400", "5000-digits", "duplicate", "duplicate-inside",
        "surrogate", "surrogate-inside", "surrogate-name"])
def test_json_no_schema_can_see_is_refused_with_its_place(roomy, raw, field):
    body = assert_problem(roomy.post("/v1/echo", data=raw, content_type="application/json"), 400, "json-rejected")
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["message"]


def test_json_nested_to_the_bound_still_reaches_validation(roomy):
    from lscloud.strictjson import MAX_DEPTH

    nested = b"[" * (MAX_DEPTH - 1) + b"1" + b"]" * (MAX_DEPTH - 1)
    raw = b'{"code": "20", "name": "x", "tags": ' + nested + b"}"
    body = assert_problem(roomy.post("/v1/echo", data=raw, content_type="application/json"), 422, "validation-failed")
    assert body["errors"][0]["field"].startswith("/tags/0")


@pytest.mark.parametrize("literal", [b"5000000.0", b"5e6", b"5E+6", b"1.0"])
def test_integer_fields_take_integer_literals_only(client, literal):
    raw = b'{"code": "20", "name": "x", "population": ' + literal + b"}"
    body = assert_problem(client.post("/v1/echo", data=raw, content_type="application/json"), 422, "validation-failed")
    assert [e["field"] for e in body["errors"]] == ["/population"]
    ok = client.post("/v1/echo", data=b'{"code": "20", "name": "x", "population": 5000000}',
                     content_type="application/json")
    assert ok.status_code == 200 and ok.get_json()["population"] == 5000000


# -- query parameters: declared once, validated from the declaration -------------------------------------


@pytest.fixture
def query_app(schemas):
    from lscloud.query import Param

    app = create_app("q", schemas_dir=schemas, settings=Settings())

    @app.get("/v1/things")
    @allow("public")
    @query_params(("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
                  ("from", "First day", {"type": "string", "format": "date"}),
                  ("at", "A moment", {"type": "string", "format": "date-time"}),
                  ("kind", "Which", {"type": "string", "enum": ["a", "b"]}),
                  ("ratio", "A number", {"type": "number", "minimum": 0}),
                  ("soft_atm", "A flag", {"type": "boolean"}),
                  ("unit", "A unit code", {"type": "string", "pattern": "^[0-9]{5}$"}),
                  Param("code", "Needed", {"type": "string", "maxLength": 8}, required=True))
    def things():
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in g.query.items()}

    return app


def test_query_params_arrive_typed_with_defaults(query_app):
    resp = query_app.test_client().get("/v1/things?code=x&from=2024-02-29&at=2026-03-01T08:00:00%2B07:00&kind=b"
                                       "&ratio=0.5&soft_atm=false&unit=06040&ignored=1")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == {"limit": 20, "from": "2024-02-29", "at": "2026-03-01T08:00:00+07:00", "kind": "b",
                               "ratio": 0.5, "soft_atm": False, "unit": "06040", "code": "x"}
    assert query_app.test_client().get("/v1/things?code=x&limit=100").get_json()["limit"] == 100


@pytest.mark.parametrize("query,field", [
    ("limit=abc", "limit"), ("limit=null", "limit"), ("limit=0", "limit"), ("limit=-5", "limit"),
    ("limit=10%5E20", "limit"), ("limit=100000000000000000000", "limit"), ("limit=1.5", "limit"), ("limit=", "limit"),
    ("limit=1&limit=2", "limit"), ("from=2026-02-30", "from"), ("from=20260101", "from"), ("from=2026-13-01", "from"),
    ("at=2026-03-01T08:00:00", "at"), ("at=2026-02-30T08:00:00Z", "at"), ("kind=c", "kind"), ("kind=", "kind"),
    ("ratio=NaN", "ratio"), ("ratio=Infinity", "ratio"), ("ratio=1e999", "ratio"), ("ratio=-1", "ratio"),
    ("soft_atm=yes", "soft_atm"), ("unit=6040", "unit"), ("unit=06040%0A", "unit"), ("unit=%00", "unit"),
])
def test_bad_query_parameters_are_400_naming_the_parameter(query_app, query, field):
    body = assert_problem(query_app.test_client().get(f"/v1/things?code=x&{query}"), 400, "invalid-parameter")
    assert [e["field"] for e in body["errors"]] == [field]


def test_every_bad_query_parameter_is_named_at_once(query_app):
    body = assert_problem(query_app.test_client().get("/v1/things?limit=0&kind=z&code=" + "x" * 9), 400)
    assert sorted(e["field"] for e in body["errors"]) == ["code", "kind", "limit"]
    body = assert_problem(query_app.test_client().get("/v1/things"), 400)
    assert body["errors"] == [{"field": "code", "message": "code is required",
                               "message_vi": "Thiếu tham số bắt buộc 'code'."}]


def test_query_declarations_are_checked_when_declared():
    from lscloud.query import Param

    with pytest.raises(TypeError):
        Param("n", "", {"type": "object"})
    with pytest.raises(TypeError):
        Param("n", "", {"type": "integer", "default": "many"})
    with pytest.raises(TypeError):
        Param("n", "", {"type": "integer", "format": "date"})


def test_query_schemas_are_checked_against_the_metaschema_on_first_use():
    # jsonschema stays off a function's start: check() (first value, preload, the unit tests) catches these
    from lscloud.query import InvalidQuery, Param, parse

    out_of_range = Param("n", "", {"type": "integer", "minimum": 1, "default": 0})
    with pytest.raises(TypeError, match="default 0"):
        out_of_range.check()
    broken = Param("n", "", {"type": "integer", "minimum": "one"})
    with pytest.raises(TypeError, match="query parameter 'n'"):
        parse([broken], {"n": "3"})
    fine = Param("n", "", {"type": "integer", "minimum": 1, "default": 5})
    assert parse([fine], {}) == {"n": 5}
    with pytest.raises(InvalidQuery):
        parse([fine], {"n": "0"})


@pytest.mark.parametrize("code", ["20\n", "06211\n"])
def test_patterns_mean_what_ecma_262_means(roomy, code):
    # Python's "$" matches before a final newline and its "\d" matches every script's digits; JSON Schema's don't
    body = assert_problem(roomy.post("/v1/echo", json={"code": code, "name": "x"}), 422, "validation-failed")
    assert [e["field"] for e in body["errors"]] == ["/code"]


def test_an_id_the_store_cannot_spell_is_404_not_500(client):
    assert client.get("/v1/things/ok").status_code == 200
    body = assert_problem(client.get("/v1/things/" + "a" * 5000), 404, "not-found")
    assert "a" * 50 not in body["detail"]


def test_an_optional_body_may_be_left_out_and_is_validated_when_sent(schemas):
    (schemas / "reason.json").write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
        "properties": {"reason": {"type": "string", "maxLength": 5}}}))
    app = create_app("dossiers", schemas_dir=schemas, settings=Settings())

    @app.post("/v1/things/<thing_id>/cancel")
    @allow("public")
    @validate_body("reason.json", optional=True)
    def cancel(thing_id):
        """Cancel, with a reason if you like."""
        return {"reason": g.body.get("reason")}

    c = app.test_client()
    assert c.post("/v1/things/a/cancel").get_json() == {"reason": None}
    assert c.post("/v1/things/a/cancel", json={"reason": "đổi ý"}).get_json() == {"reason": "đổi ý"}
    assert assert_problem(c.post("/v1/things/a/cancel", json={"reason": "too long"}), 422)["errors"][0]["field"] == "/reason"
    assert assert_problem(c.post("/v1/things/a/cancel", json=["x"]), 422)["errors"][0]["field"] == ""
    body = build_openapi(app)["paths"]["/v1/things/{thing_id}/cancel"]["post"]["requestBody"]
    assert body["required"] is False
    assert build_openapi(app)["paths"]["/openapi.json"]["get"].get("requestBody") is None


def test_a_record_at_its_version_carries_it_as_the_etag(schemas):
    from lscloud.web import versioned_json

    app = create_app("dossiers", schemas_dir=schemas, settings=Settings())

    @app.post("/v1/records")
    @allow("public")
    def create_record():
        """Create a record."""
        return versioned_json({"id": "r1"}, 3, 201)

    r = app.test_client().post("/v1/records")
    assert (r.status_code, r.headers["ETag"], r.get_json()) == (201, '"3"', {"id": "r1"})


def test_a_body_limit_may_name_a_setting_of_the_serving_app(schemas):
    from lscloud.web import body_limit, raw_body

    def build(blob_max_bytes):
        app = create_app("dossiers", schemas_dir=schemas, settings=Settings().replace(max_body_bytes=1024,
                                                                                      blob_max_bytes=blob_max_bytes))

        @app.post("/v1/uploads")
        @allow("public")
        @raw_body("application/pdf")
        @body_limit("blob_max_bytes")
        def upload():
            """Upload a file."""
            return {}, 201

        return app.test_client()

    scan = b"%PDF-" + b"0" * 4000
    assert build(8000).post("/v1/uploads", data=scan, content_type="application/pdf").status_code == 201
    assert_problem(build(2000).post("/v1/uploads", data=scan, content_type="application/pdf"), 413)
    with pytest.raises(ValueError, match="no such setting"):
        body_limit("blob_max_byte")


@pytest.mark.parametrize("doc,summary,rest", [
    ("Read one unit.\n\nMore text.", "Read one unit.", "More text."),
    # a first sentence wrapped over two lines is the summary whole, never its first line alone
    ("Download a file by a link the function\nhanded out. 404 if it did not.", "Download a file by a link the function handed out.",
     "Download a file by a link the function\nhanded out. 404 if it did not."),
    ("List units, e.g. communes.", "List units, e.g. communes.", ""),
    # too long for a summary: cut on a word, marked, and the whole docstring kept in the description
    ("Word " * 40 + "end.", ("Word " * 24).strip() + " …", "Word " * 40 + "end."),
])
def test_an_operations_summary_is_its_first_sentence_and_nothing_is_lost(doc, summary, rest):
    from lscloud.web.openapi import _SUMMARY_MAX, _summarize

    got = _summarize(doc)
    assert got == (summary, rest.strip()) and len(got[0]) <= _SUMMARY_MAX + 2


def test_an_app_serves_no_folder_that_no_access_table_names(app, tmp_path, monkeypatch):
    """Flask serves ``<root>/static/*`` to anyone by default (the process's working directory for
    a function), a route with no ``@allow`` nor a row in any access table: a ``static/`` folder
    someone added later would have been public without anyone deciding so."""
    assert [r.rule for r in app.url_map.iter_rules() if "static" in r.rule] == []
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "x.txt").write_text("not for you")
    monkeypatch.chdir(tmp_path)
    fresh = create_app("directory", settings=Settings())
    assert fresh.test_client().get("/static/x.txt").status_code == 404
