"""The request headers the runtime reads are in /openapi.json, so clients and fuzzers built from the
document send them: ``Idempotency-Key`` (``@idempotent``) and ``If-Match`` (``@takes_if_match``,
with its 412), each with a pattern that accepts exactly what the runtime accepts."""

from __future__ import annotations

import json
import re

import jsonschema_rs
import pytest
from flask import Flask

from lscloud.auth import allow
from lscloud.config import Settings
from lscloud.errors import PreconditionFailed
from lscloud.idempotency import _KEY_RE, idempotent
from lscloud.problems import MEDIA_TYPE
from lscloud.web import build_openapi, create_app, if_match_version, query_params, takes_if_match, validate_body

KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]{1,255}$"}
IF_MATCH_SCHEMA = {"type": "string", "pattern": '^"[0-9]{1,20}"$'}


@pytest.fixture
def doc(tmp_path):
    (tmp_path / "thing.json").write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
        "properties": {"id": {"type": "string"}}, "examples": [{"id": "t-1"}]}))
    app = create_app("things", schemas_dir=tmp_path, settings=Settings())

    @app.post("/v1/required")
    @allow("officer")
    @idempotent()
    def with_required_key():
        """Header required."""

    @app.post("/v1/by-id")
    @allow("officer")
    @validate_body("thing.json")
    @idempotent(key_from=lambda body: body.get("id"))
    def with_id():
        """The body's id stands in for the header."""

    @app.post("/v1/optional")
    @allow("officer")
    @idempotent(required=False)
    def with_optional_key():
        """Header optional."""

    @app.post("/v1/in-record")
    @allow("officer")
    @validate_body("thing.json")
    @idempotent(key_from=lambda body: body.get("id"), in_record=True)
    def in_record():
        """The record is the idempotency record: the header is never read."""

    @app.get("/v1/if-match")
    @allow("public")
    @takes_if_match
    def only_if_match():
        """If-Match only (declared outermost)."""

    @app.patch("/v1/things/<code>")
    @allow("officer")
    @takes_if_match
    @query_params(("reason", "Why"))
    @idempotent()
    def everything(code):
        """Path, query and both headers."""

    @app.get("/v1/plain")
    @allow("public")
    def plain():
        """No header."""

    return build_openapi(app)


def _params(doc, path, method="post"):
    return doc["paths"][path][method].get("parameters")


def _without_description(param):
    assert param["description"].strip()  # present, and said in both languages
    assert " / " in param["description"]
    return {k: v for k, v in param.items() if k != "description"}


def test_the_document_is_valid_openapi_3_1(doc):
    from openapi_spec_validator import validate

    validate(doc)


def test_idempotency_key_is_required_only_when_nothing_stands_in_for_it(doc):
    expected = {"name": "Idempotency-Key", "in": "header", "schema": KEY_SCHEMA}
    required, = _params(doc, "/v1/required")  # an operation with only a header still has parameters
    assert _without_description(required) == {**expected, "required": True}
    assert "Required" in required["description"]
    by_id, = _params(doc, "/v1/by-id")
    assert _without_description(by_id) == {**expected, "required": False}
    assert "id in the body" in by_id["description"]
    optional, = _params(doc, "/v1/optional")
    assert _without_description(optional) == {**expected, "required": False}
    assert _params(doc, "/v1/in-record") is None
    assert _params(doc, "/v1/plain", "get") is None


def test_if_match_is_an_optional_header_with_its_412(doc):
    op = doc["paths"]["/v1/if-match"]["get"]
    if_match, = op["parameters"]
    assert _without_description(if_match) == {"name": "If-Match", "in": "header", "required": False,
                                              "schema": IF_MATCH_SCHEMA}
    answer = op["responses"]["412"]
    assert answer["content"][MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}
    example = answer["content"][MEDIA_TYPE]["example"]
    assert example["status"] == 412 and example["type"].endswith("/precondition-failed")
    assert example["title"] == PreconditionFailed.title and example["errors"][0]["field"] == "If-Match"
    assert "If-Match" in answer["description"]
    # no bad value of If-Match is a 400: an otherwise parameterless public read documents none
    assert "400" not in op["responses"] and list(op["responses"])[-1] == "default"
    for path, item in doc["paths"].items():
        for method, other in item.items():
            if path not in ("/v1/if-match", "/v1/things/{code}"):
                assert "412" not in other["responses"], f"{method} {path}"


def test_idempotent_operations_document_400_and_409(doc):
    for path in ("/v1/required", "/v1/by-id", "/v1/optional", "/v1/in-record"):
        assert {"400", "409"} <= set(doc["paths"][path]["post"]["responses"]), path
    assert "400" not in doc["paths"]["/v1/plain"]["get"]["responses"]


def test_parameters_come_path_then_query_then_headers(doc):
    op = doc["paths"]["/v1/things/{code}"]["patch"]
    assert [(p["in"], p["name"]) for p in op["parameters"]] == [
        ("path", "code"), ("query", "reason"), ("header", "Idempotency-Key"), ("header", "If-Match")]
    assert op["parameters"][2]["required"] is True
    assert {"400", "409", "412"} <= set(op["responses"])


def test_the_document_holds_copies_of_the_declarations(tmp_path):
    app = create_app("things", schemas_dir=tmp_path, settings=Settings())

    @app.patch("/v1/x")
    @allow("officer")
    @takes_if_match
    @idempotent()
    def x():
        """X."""

    first = build_openapi(app)
    for param in first["paths"]["/v1/x"]["patch"]["parameters"]:
        param["schema"]["pattern"] = "edited"
    assert build_openapi(app)["paths"]["/v1/x"]["patch"]["parameters"][0]["schema"] == KEY_SCHEMA


KEYS = ["k", "!", "~", "a" * 255, "a" * 256, "", " ", "a b", "é", "\t", "abc\x7f", "550e8400-e29b-41d4-a716-446655440000",
        "key\n", "\nkey"]


@pytest.mark.parametrize("key", KEYS)
def test_the_documented_key_accepts_what_the_runtime_accepts(key):
    runtime = _KEY_RE.fullmatch(key) is not None
    # JSON Schema's semantics (ECMA-262: $ is the end of the string), length limits included
    assert jsonschema_rs.validator_for(KEY_SCHEMA).is_valid(key) is runtime
    if not key.endswith("\n"):  # Python's $ also matches before a final newline, ECMA-262's does not
        assert (re.search(KEY_SCHEMA["pattern"], key) is not None) is runtime


TAGS = ['"0"', '"3"', '"' + "9" * 20 + '"', '"' + "9" * 21 + '"', '""', "3", '"3', 'W/"3"', "*", '"3", "4"',
        '"\u00b2"', '"\u0663"', '"-1"', '"3 "', '"3"x']


@pytest.mark.parametrize("tag", TAGS)
def test_the_documented_if_match_accepts_what_the_runtime_accepts(tag):
    with Flask(__name__).test_request_context(headers={"If-Match": tag}):
        try:
            runtime = isinstance(if_match_version(), int)
        except PreconditionFailed:
            runtime = False
    assert jsonschema_rs.validator_for(IF_MATCH_SCHEMA).is_valid(tag) is runtime
    assert (re.search(IF_MATCH_SCHEMA["pattern"], tag) is not None) is runtime


def test_if_match_with_a_superscript_digit_is_a_412_not_a_crash():
    # "²".isdigit() is True and int("²") raises: the rule is ASCII digits only
    with Flask(__name__).test_request_context(headers={"If-Match": '"\u00b2"'}), pytest.raises(PreconditionFailed):
        if_match_version()
    with Flask(__name__).test_request_context(headers={"If-Match": ' "42" '}):
        assert if_match_version() == 42


def test_a_view_that_reads_if_match_undeclared_fails_at_its_first_call(tmp_path):
    # the document cannot see a call inside a view: the runtime holds the declaration instead
    app = create_app("things", schemas_dir=tmp_path, settings=Settings())

    @app.patch("/v1/declared")
    @allow("public")
    @takes_if_match
    def declared():
        """Declared."""
        return {"version": if_match_version()}

    @app.patch("/v1/undeclared")
    @allow("public")
    def undeclared():
        """Not declared."""
        return {"version": if_match_version()}

    client = app.test_client()
    assert client.patch("/v1/declared", headers={"If-Match": '"3"'}).get_json() == {"version": 3}
    r = client.patch("/v1/undeclared", headers={"If-Match": '"3"'})
    assert r.status_code == 500 and "takes_if_match" not in r.get_data(as_text=True)   # the caller sees no internals


def test_a_required_if_match_is_a_428_naming_it_and_documented_so(tmp_path):
    # two operators changing one record: the one who read it earlier must not silently undo the other
    app = create_app("things", schemas_dir=tmp_path, settings=Settings())

    @app.patch("/v1/things/<code>")
    @allow("public")
    @takes_if_match(required=True)
    def change(code):
        """Change a thing at the version read."""
        return {"version": if_match_version()}

    client = app.test_client()
    refused = client.patch("/v1/things/a")
    assert refused.status_code == 428 and refused.mimetype == MEDIA_TYPE
    body = refused.get_json()
    assert body["type"].endswith("/precondition-required") and [e["field"] for e in body["errors"]] == ["If-Match"]
    assert body["detail_vi"] and body["errors"][0]["message_vi"]   # read in Vietnamese too
    assert client.patch("/v1/things/a", headers={"If-Match": '"7"'}).get_json() == {"version": 7}

    op = build_openapi(app)["paths"]["/v1/things/{code}"]["patch"]
    if_match = next(p for p in op["parameters"] if p["name"] == "If-Match")
    assert _without_description(if_match) == {"name": "If-Match", "in": "header", "required": True,
                                              "schema": IF_MATCH_SCHEMA}
    example = op["responses"]["428"]["content"][MEDIA_TYPE]["example"]
    assert example["status"] == 428 and example["errors"][0]["field"] == "If-Match"
    assert "412" in op["responses"]


def test_an_if_match_required_once_set_is_optional_and_documents_its_428(tmp_path):
    # the first write of a record replaces nobody's; after that, a change without If-Match is a 428
    app = create_app("things", schemas_dir=tmp_path, settings=Settings())

    @app.put("/v1/things/<code>")
    @allow("public")
    @takes_if_match(required="once-set")
    def put_thing(code):
        """Set a thing at the version read."""
        return {"version": if_match_version()}

    assert app.test_client().put("/v1/things/a").get_json() == {"version": None}   # the view decides
    op = build_openapi(app)["paths"]["/v1/things/{code}"]["put"]
    if_match = next(p for p in op["parameters"] if p["name"] == "If-Match")
    assert _without_description(if_match) == {"name": "If-Match", "in": "header", "required": False,
                                              "schema": IF_MATCH_SCHEMA}
    assert "428" in if_match["description"] and "Without it the change applies" not in if_match["description"]
    assert {"412", "428"} <= set(op["responses"])
    with pytest.raises(ValueError):
        takes_if_match(required="sometimes")
