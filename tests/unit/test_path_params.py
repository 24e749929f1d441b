"""Path parameters: the ``schema`` converter matches an id by its body schema's own pattern, the
OpenAPI documents say so, and every other parameter is documented with the gateway's segment rule."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Blueprint, g, jsonify
from hypothesis import HealthCheck, given, settings, strategies as st

from lscloud.auth import allow
from lscloud.config import Settings
from lscloud.local import paths
from lscloud.patterns import ecma_regex
from lscloud.web import build_openapi, create_app
from lscloud.web.pathparams import PATH_SEGMENT

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(d.name for d in (ROOT / "functions").iterdir() if (d / "func.yaml").is_file())


def _gateway_forwards(segment: str) -> bool:
    try:
        paths.parse(("/f/" + quote(segment, safe="")).encode())
    except paths.MalformedPath:
        return False
    return True


# the characters each rule is about, so that short strings hit them often
_EDGES = " .%4Aa/\\\x00\x1f\x7f\x85\x9f\xa0\u2000\u3000é"


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(min_size=1, max_size=16) | st.text(alphabet=_EDGES, min_size=1, max_size=6))
def test_the_documented_segment_rule_is_the_gateways(segment):
    assert bool(ecma_regex(PATH_SEGMENT).search(segment)) == _gateway_forwards(segment), repr(segment)


@pytest.mark.parametrize("segment, forwarded", [("06040", True), ("bd-06040", True), ("a.b", True), ("a b", True),
                                                ("a.", False), (".", False), (" a", False), ("a\u3000", False),
                                                ("a\x85b", False), ("a%41", False), ("100%", True), ("x\\y", False)])
def test_the_segment_rule_by_example(segment, forwarded):
    assert bool(ecma_regex(PATH_SEGMENT).search(segment)) is forwarded is _gateway_forwards(segment)


def _app(tmp_path: Path, *routes: str):
    (tmp_path / "t").mkdir(parents=True)
    (tmp_path / "t" / "create.json").write_text(json.dumps({
        "type": "object", "properties": {
            "id": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{8,64}$", "description": "client-chosen"},
            "n": {"type": "string", "pattern": r"^\d{3}$"},
            "code": {"type": "string", "pattern": r"^[a-z]+$", "maxLength": 4},
            "flow": {"enum": ["in", "out"]},
            "loose": {"type": "string", "pattern": "[a-z]"}}}))
    app = create_app("t", schemas_dir=tmp_path, settings=Settings(service="t"))
    bp = Blueprint("t", __name__)
    for i, rule in enumerate(routes):
        bp.add_url_rule(rule, f"r{i}", allow("public")(lambda **kw: jsonify(kw)), methods=["GET"])
    bp.add_url_rule("/v1/things/sync", "sync", allow("public")(lambda: jsonify({})), methods=["POST"])
    app.register_blueprint(bp)
    return app


ID = 'schema("t/create.json#/properties/id")'


def test_an_id_route_matches_ids_of_the_body_shape_only(tmp_path):
    c = _app(tmp_path, f"/v1/things/<{ID}:thing>").test_client()
    assert c.get("/v1/things/abcd-1234").get_json() == {"thing": "abcd-1234"}
    short = c.get("/v1/things/abc")
    assert short.status_code == 404 and short.mimetype == "application/problem+json"
    # the static route's segment is not an id: its method is what is wrong, and OPTIONS says so exactly
    sync = c.get("/v1/things/sync")
    assert sync.status_code == 405 and sync.headers["Allow"] == "OPTIONS, POST"
    assert set(c.options("/v1/things/sync").headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_patterns_keep_their_ecma_meaning_and_enums_work(tmp_path):
    c = _app(tmp_path, '/v1/n/<schema("t/create.json#/properties/n"):n>',
             '/v1/flows/<schema("t/create.json#/properties/flow"):flow>').test_client()
    assert c.get("/v1/n/123").status_code == 200
    assert c.get("/v1/n/" + quote("١٢٣")).status_code == 404   # Arabic-Indic digits are not \d in ECMA-262
    assert c.get("/v1/n/123%0A").status_code == 404            # $ is the end, not the end or a final newline
    assert c.get("/v1/flows/in").get_json() == {"flow": "in"}
    assert c.get("/v1/flows/inout").status_code == 404
    c = _app(tmp_path / "2", '/v1/codes/<schema("t/create.json#/properties/code"):code>').test_client()
    assert c.get("/v1/codes/abcd").status_code == 200 and c.get("/v1/codes/abcde").status_code == 404


def test_the_document_names_the_body_schema_and_the_segment_rule(tmp_path):
    app = _app(tmp_path, f"/v1/things/<{ID}:thing>/parts/<part>", "/v1/years/<int(min=1900, max=2999):year>")
    doc = build_openapi(app)
    params = {p["name"]: p["schema"] for p in doc["paths"]["/v1/things/{thing}/parts/{part}"]["get"]["parameters"]
              if p["in"] == "path"}
    assert params["thing"] == {"type": "string", "pattern": r"^[A-Za-z0-9_-]{8,64}$", "description": "client-chosen"}
    assert params["part"] == {"type": "string", "pattern": PATH_SEGMENT}
    year = doc["paths"]["/v1/years/{year}"]["get"]["parameters"][0]["schema"]
    assert year == {"type": "integer", "minimum": 1900, "maximum": 2999}


def test_a_query_parameter_takes_the_rule_a_path_and_a_body_name(tmp_path):
    """``query_schema``: the same file, the same rule, checked in a query string (a 400 naming the
    parameter) and documented without the file's annotations."""
    from lscloud.web import query_params, query_schema

    _app(tmp_path)   # writes t/create.json
    (tmp_path / "t" / "code.json").write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "A code", "examples": ["ab"],
        "type": "string", "maxLength": 4, "pattern": "^[a-z]+$"}))
    code = query_schema(tmp_path, "t/code.json")
    assert code == {"type": "string", "maxLength": 4, "pattern": "^[a-z]+$"}
    assert query_schema(tmp_path, "t/create.json#/properties/id")["pattern"] == r"^[A-Za-z0-9_-]{8,64}$"
    with pytest.raises(ValueError, match="no 'nope'"):
        query_schema(tmp_path, "t/create.json#/properties/nope")

    app = create_app("q", schemas_dir=tmp_path, settings=Settings(service="q"))
    bp = Blueprint("q", __name__)
    view = allow("public")(query_params(("code", "a code", code))(lambda: jsonify({"code": g.query["code"]})))
    bp.add_url_rule("/v1/q", "q", view, methods=["GET"])
    app.register_blueprint(bp)
    c = app.test_client()
    assert c.get("/v1/q?code=abc").get_json() == {"code": "abc"}
    for bad in ("ABC", "abcde", "a%0A"):
        r = c.get(f"/v1/q?code={bad}")
        assert r.status_code == 400 and r.mimetype == "application/problem+json", bad
        assert [e["field"] for e in r.get_json()["errors"]] == ["code"], bad
    documented = build_openapi(app)["paths"]["/v1/q"]["get"]["parameters"][0]
    assert documented["name"] == "code" and documented["schema"] == code


@pytest.mark.parametrize("ref, message", [('schema("t/create.json#/properties/loose")', "anchored pattern"),
                                          ('schema("t/create.json#/properties/nope")', "no 'nope'")])
def test_a_rule_naming_what_cannot_be_a_segment_rule_stops_the_start(tmp_path, ref, message):
    with pytest.raises(ValueError, match=message):
        _app(tmp_path, f"/v1/x/<{ref}:x>")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_documented_path_parameter_has_a_rule(name):
    """A client or validator reading any function's document knows what each path segment may hold."""
    app = importlib.import_module(f"functions.{name}.function.app").create_app(Settings(service=name))
    for path, item in build_openapi(app)["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []):
                if p["in"] == "path":
                    s = p["schema"]
                    assert s.get("pattern") or s.get("enum") or s.get("type") == "integer", \
                        f"{method.upper()} {path}: {p['name']}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_rule_is_read_with_the_parameters_werkzeug_reads(name):
    """The document, the spans and the access tables read a rule with :mod:`lscloud.rulesyntax`;
    Werkzeug's own reading (its public ``Rule.arguments``) names the same parameters."""
    from lscloud import rulesyntax

    app = importlib.import_module(f"functions.{name}.function.app").create_app(Settings(service=name))
    for rule in app.url_map.iter_rules():
        names = [m.group("name") for m in rulesyntax.parameters(rule.rule)]
        assert len(names) == len(set(names)) and set(names) == rule.arguments, rule.rule


def test_a_converter_argument_holding_a_parenthesis_is_read_as_werkzeug_reads_it(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "odd.json").write_text(json.dumps({"$defs": {"a)b": {"type": "string", "pattern": "^[a-z]{3}$"}}}))
    app = create_app("t", schemas_dir=tmp_path, settings=Settings(service="t"))
    bp = Blueprint("t", __name__)
    bp.add_url_rule('/v1/odd/<schema("t/odd.json#/$defs/a)b"):x>/<int:n>', "odd",
                    allow("public")(lambda **kw: jsonify(kw)), methods=["GET"])
    app.register_blueprint(bp)
    assert app.test_client().get("/v1/odd/abc/4").get_json() == {"x": "abc", "n": 4}
    (op,) = build_openapi(app)["paths"]["/v1/odd/{x}/{n}"].values()
    assert [p["schema"] for p in op["parameters"]] == [{"type": "string", "pattern": "^[a-z]{3}$"}, {"type": "integer"}]
    from lscloud.web.pathparams import route_template

    assert route_template('/v1/odd/<schema("t/odd.json#/$defs/a)b"):x>/<int:n>') == "/v1/odd/<x>/<int:n>"


def test_spans_and_metrics_name_the_route_as_written_without_its_schema(tmp_path):
    """``http.route`` stays ``/v1/things/<thing>``: the span names dashboards and tests look for."""
    from opentelemetry import trace

    from lscloud import telemetry
    from lscloud.web.pathparams import route_template

    assert route_template(f"/v1/things/<{ID}:thing>/parts/<int:n>") == "/v1/things/<thing>/parts/<int:n>"
    exporter = telemetry.spans_in_memory("path-params-test")
    app = _app(tmp_path, f"/v1/things/<{ID}:thing>")
    assert app.test_client().get("/v1/things/abcd-1234").status_code == 200
    (span,) = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert span.name == "GET /v1/things/<thing>" and span.attributes["http.route"] == "/v1/things/<thing>"


def test_a_value_the_view_checks_is_documented_but_routed_whatever_it_holds(tmp_path):
    app = _app(tmp_path, '/v1/n/<schema("t/create.json#/properties/n", match=False):n>')
    assert app.test_client().get("/v1/n/12x").get_json() == {"n": "12x"}   # the view's to answer (400)
    (param,) = build_openapi(app)["paths"]["/v1/n/{n}"]["get"]["parameters"]
    assert param["schema"] == {"type": "string", "pattern": r"^\d{3}$"}


def test_the_open311_format_extension_is_documented_as_the_spec_names_it():
    """GeoReport v2 clients read ``{fmt}`` as json or xml; another is the view's answer, in the spec's
    errors format, not a route miss."""
    app = importlib.import_module("functions.reports.function.app").create_app(Settings(service="reports"))
    fmts = [p["schema"] for item in build_openapi(app)["paths"].values() for op in item.values()
            for p in op.get("parameters", []) if p["in"] == "path" and p["name"] == "fmt"]
    assert len(fmts) == 9 and all(s == {"description": fmts[0]["description"], "type": "string",
                                        "enum": ["json", "xml"]} for s in fmts)
    # and each answer is documented in both: a .xml path answers the spec's XML
    doc = build_openapi(app)
    assert set(doc["paths"]["/open311/v2/requests.{fmt}"]["get"]["responses"]["200"]["content"]) == \
        {"application/json", "text/xml"}
    assert set(doc["paths"]["/open311/discovery.{fmt}"]["get"]["responses"]["200"]["content"]) == \
        {"application/json", "text/xml"}
    # one list of formats: what the schema documents is what the view serves, in the media types documented
    from functions.reports.function import open311

    assert sorted(open311.FORMATS) == fmts[0]["enum"]
    assert set(doc["paths"]["/open311/v2/requests.{fmt}"]["get"]["responses"]["200"]["content"]) == \
        {media.split(";")[0] for media in open311.FORMATS.values()}
    r = app.test_client().get("/open311/v2/services.csv")
    assert r.status_code == 400 and r.get_json() == [{"code": 400, "description": "unknown format 'csv': use .xml or .json"}]


def _runtime_pattern(name: str):
    from lscloud.web.pathparams import RUNTIME_SCHEMAS

    schema = json.loads((RUNTIME_SCHEMAS / name).read_text(encoding="utf-8"))
    return schema, ecma_regex(schema["pattern"])


@pytest.mark.parametrize("event", [
    {"id": "e-1", "source": "/softatm", "time": "2026-12-06T01:02:03.456789+07:00"},
    {"id": "e-2", "source": "/softatm"},                                   # no time: the oldest
    {"id": "x" * 300, "source": "/x", "time": "1970-01-01T00:00:00Z"}])
def test_a_dead_letter_s_id_matches_the_runtime_s_schema(event):
    """Every id :func:`letter_id` makes matches the runtime's ``lscloud/dead-letter-id.json``."""
    from lscloud import deadletters

    _, pattern = _runtime_pattern("dead-letter-id.json")
    assert pattern.search(deadletters.letter_id(event))


def test_the_dead_letter_routes_document_the_runtime_s_schema():
    """The soft ATM's redelivery documents its letter with ``lscloud/dead-letter-id.json``."""
    app = importlib.import_module("functions.softatm.function.app").create_app(Settings(service="softatm"))
    (param,) = build_openapi(app)["paths"]["/v1/webhooks/dead-letters/{letter}/redeliver"]["post"]["parameters"]
    assert param["schema"]["pattern"] == _runtime_pattern("dead-letter-id.json")[0]["pattern"]


def test_a_download_link_s_token_is_what_its_route_documents(tmp_path):
    """``/downloads/{token}`` names the runtime's ``lscloud/download-token.json``: a token
    :func:`mint` makes matches it and fits its length; any other segment is still the view's 404."""
    from lscloud.store.blobs import BlobStore
    from lscloud.web import downloads

    schema, pattern = _runtime_pattern("download-token.json")
    settings_ = Settings(service="t", s3_secret_key="k" * 40)
    token = downloads.mint(settings_, BlobStore(None, "b"), "a" * 64, 3600, filename="Tờ khai " + "x" * 200 + ".pdf")
    assert pattern.search(token) and len(token) <= schema["maxLength"]
    app = create_app("t", settings=settings_, downloads=True)   # no schemas of its own: the runtime's are read
    (param,) = build_openapi(app)["paths"]["/downloads/{token}"]["get"]["parameters"]
    assert param["schema"]["pattern"] == schema["pattern"] and param["schema"]["maxLength"] == schema["maxLength"]
    r = app.test_client().get("/downloads/not-a-link")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_an_int_parameter_of_more_digits_than_an_integer_holds_is_no_route_not_a_500():
    """int() refuses more than 4,300 digits: a <int:…> segment of 4,301 was a ValueError while the
    route was matched, before any view or check (a 500 for anyone's URL, the bounds survey)."""
    from flask import jsonify

    from lscloud.auth import allow
    from lscloud.config import Settings
    from lscloud.web import create_app

    app = create_app("years", settings=Settings())

    @app.get("/v1/registers/<int:year>")
    @allow("public")
    def register(year: int):
        """A year's register."""
        return jsonify(year=year)

    client = app.test_client()
    assert client.get("/v1/registers/2026").get_json() == {"year": 2026}
    for digits in (19, 4_301):
        r = client.get("/v1/registers/" + "9" * digits)
        assert r.status_code == 404 and r.mimetype == "application/problem+json", digits
