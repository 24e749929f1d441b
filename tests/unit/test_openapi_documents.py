"""Every function's OpenAPI document, built offline from its app: valid OpenAPI 3.1, an example for
every request body that the function's own validator accepts, and its errors documented as
problem+json. Iterates over functions/*: a function added later is covered as it lands."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from lscloud.config import Settings
from lscloud.context import app_state
from lscloud.web import build_openapi
from lscloud.web.examples import example, valid_example

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(d.name for d in (ROOT / "functions").iterdir() if (d / "func.yaml").is_file())


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_document_is_valid_and_every_body_has_an_accepted_example(name):
    from openapi_spec_validator import validate

    app = importlib.import_module(f"functions.{name}.function.app").create_app(Settings(service=name))
    doc = build_openapi(app)
    validate(doc)
    schemas = app_state(app).schemas
    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            body = op.get("requestBody")
            if body is not None and "application/json" in body["content"]:   # an upload's body is the file
                media = body["content"]["application/json"]
                assert "example" in media, f"{where}: add `examples` to its schema"
                schema_file = next(f for f in schemas.documents
                                   if media["schema"]["$ref"].endswith("/" + f[:-5].replace("/", ".")))
                assert schemas.errors(schema_file, media["example"]) == [], where
            if op.get("x-lscloud-access", {}).get("roles") != ["eventing"]:   # the event sender's routes
                problems = {c for c in op["responses"] if c[0] in "45"}
                assert problems >= {"404", "503"}, where
                if op.get("security") != []:
                    assert {"401", "403"} <= problems, where


@pytest.mark.parametrize("pattern", [r"^[A-Za-z0-9_-]{8,64}$", r"^[0-9]{5}$", r"^\d{2}:\d{2}$",
                                     r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$", r"^(\d{2}|\d{5})$",
                                     r"^[A-Z]{2,5}(?:-[A-Z0-9]{1,8}){1,3}$", r"^PT[0-9]+(\.[0-9]+)?[SM]$", r"\S"])
def test_a_string_is_built_for_each_pattern_the_schemas_use(pattern):
    import re

    value = example({"type": "string", "pattern": pattern})
    assert isinstance(value, str) and re.search(pattern, value)


def test_an_authored_example_wins_and_an_invalid_one_is_not_shown():
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 5}},
              "examples": [{"n": 7}]}
    assert example(schema) == {"n": 7}
    import jsonschema

    errors = lambda instance: list(jsonschema.Draft202012Validator(schema).iter_errors(instance))  # noqa: E731
    assert valid_example(schema, errors) == (True, {"n": 7})
    bad = {**schema, "examples": [{"n": 1}]}
    errors = lambda instance: list(jsonschema.Draft202012Validator(bad).iter_errors(instance))  # noqa: E731
    assert valid_example(bad, errors)[0] is False


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_query_parameter_schema_and_default_is_valid(name):
    # a parameter's metaschema and default checks run on its first value, not where it is declared
    # (jsonschema is kept off a function's start): this is where a broken declaration is caught
    app = importlib.import_module(f"functions.{name}.function.app").create_app(Settings(service=name))
    params = [p for view in app.view_functions.values() for p in getattr(view, "__lscloud_query__", ())]
    for p in params:
        p.check()
