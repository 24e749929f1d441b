"""A person's number in a request's address stays out of spans and logs, valid or mistyped; the
shapes people write numbers in are redacted; ids, times and counters are not."""

from __future__ import annotations

import json
import logging

import flask
import pytest
from opentelemetry import trace

from lscloud import redaction, telemetry
from lscloud.auth import allow
from lscloud.config import Settings
from lscloud.web import create_app

CCCD = "020095001234"
# one digit off: no province 003, no birth year 2399 (the redaction's plausibility check lets both through)
MISTYPED = ("003095001234", "020899001234")


@pytest.mark.parametrize("text, expected", [
    # a mistyped CCCD as a whole path segment (a request line in a log, a gateway's url.path)
    (f'"GET /identity/v1/cccd/{MISTYPED[0]} HTTP/1.1" 404 -', '"GET /identity/v1/cccd/[cccd] HTTP/1.1" 404 -'),
    (f"/v1/cccd/{MISTYPED[1]}?lang=vi", "/v1/cccd/[cccd]?lang=vi"),
    ("CCCD 020-095-001-234", "CCCD [cccd]"),
    ("gọi (+84) 912 345 678 hoặc (84) 912.345.678", "gọi [phone] hoặc [phone]"),
    ("+84 (0)912345678", "[phone]"),
    ("STK 0011004123456 bị từ chối", "STK [account] bị từ chối"),
    ("số tài khoản: 0011004123456, Số tài khoản 190365432100", "số tài khoản: [account], Số tài khoản [account]"),
    ("account 19036543210011 refused; account number 0011004123", "account [account] refused; account number [account]"),
])
def test_the_shapes_people_write_numbers_in_are_redacted(text, expected):
    assert redaction.redact(text) == expected


@pytest.mark.parametrize("text", [
    "softatm-journal/bd-05983/000000000012.json",                       # a zero-padded sequence in a key
    "identity-attempts/xnx7jcye2f6ciuxhk24dlcektp/001767225600.json",   # a padded epoch in a key
    f"count {MISTYPED[0]} of 1796284154731",                            # 12 digits not in a path: no CCCD
    "2026-12-07 123-456-789-012 999-088-002-468",                      # dates; no such province
    "accounts 12, account 42, 1 account 12345",                         # under six digits
    "+84 (0) and (84) alone, (+84)",                                    # no number after them
    "/v1/dead-letters/1764979200000000_0f1e2d3c4b5a69788796",          # a dead letter's id
])
def test_ids_counters_and_times_are_left_alone(text):
    assert redaction.redact(text) == text


@pytest.mark.parametrize("name", ["url.path", "url.full", "url.query"])
@pytest.mark.parametrize("number", MISTYPED)
def test_any_twelve_digits_in_a_url_attribute_are_redacted(name, number):
    assert redaction.redact_value(name, f"/v1/x/{number}.json?n={number}") == "/v1/x/[cccd].json?n=[cccd]"
    # elsewhere, a 12-digit run that cannot be a CCCD stays (a counter in an object key)
    assert redaction.redact_value("aws.s3.key", f"x/{number}.json") == f"x/{number}.json"


def test_a_request_log_line_with_a_mistyped_number_is_redacted(caplog):
    redaction.install_log_redaction()
    caplog.set_level(logging.INFO, logger="werkzeug")
    logging.getLogger("werkzeug").info('127.0.0.1 - - "%s %s HTTP/1.1" %s -', "GET", f"/v1/cccd/{MISTYPED[0]}", 404)
    assert MISTYPED[0] not in caplog.text and "/v1/cccd/[cccd]" in caplog.text


@pytest.mark.parametrize("schema, personal", [
    ({"type": "string", "pattern": r"^\d{12}$", "examples": [CCCD]}, True),
    ({"type": "string", "pattern": r"^\d{12}$"}, True),                      # no example: its rule says it
    ({"type": "string", "pattern": r"^[0-9]{9}$"}, True),
    ({"type": "string", "examples": ["0912345678"]}, True),
    ({"type": "string", "pattern": r"^[A-Za-z0-9_-]{8,64}$"}, False),       # a client-chosen id
    ({"type": "string", "pattern": r"^(\d{2}|\d{5})$", "examples": ["06040"]}, False),   # a unit code
    ({"type": "string", "pattern": r"^[0-9]{16}_[0-9a-f]{20}$"}, False),    # a dead letter's id
    ({"enum": ["in", "out"]}, False),
    (None, False),
])
def test_a_parameter_names_a_person_by_its_schema(schema, personal):
    from lscloud.web.instrumentation import names_a_person

    assert names_a_person(schema) is personal


@pytest.fixture(scope="module")
def exporter():
    return telemetry.spans_in_memory("redaction-paths-test")


def _app(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "check.json").write_text(json.dumps({"type": "object", "properties": {
        "id_number": {"type": "string", "pattern": r"^\d{12}$", "examples": [CCCD]},
        "code": {"type": "string", "pattern": r"^[0-9]{5}$"}}}))
    app = create_app("p", schemas_dir=tmp_path, settings=Settings(service="p"))
    bp = flask.Blueprint("p", __name__)

    @bp.get('/v1/cccd/<schema("p/check.json#/properties/id_number", match=False):number>')
    @allow("public")
    def decode(number):
        return {"digits": len(number)}

    @bp.get('/v1/units/<schema("p/check.json#/properties/code"):code>/<name>')
    @allow("public")
    def unit(code, name):
        return {"code": code}

    app.register_blueprint(bp)
    return app


def test_a_route_taking_a_persons_number_records_its_template_as_url_path(tmp_path, exporter):
    """Valid, one digit off, one digit short, or sent with the wrong method (405): the exported
    SERVER span's url.path is the route's template, never the number; another route keeps its path."""
    exporter.clear()
    client = _app(tmp_path).test_client()
    for number in (CCCD, *MISTYPED, "02009500123", "0200950012345"):
        assert client.get(f"/v1/cccd/{number}?lang=vi").status_code == 200
    assert client.post(f"/v1/cccd/{MISTYPED[0]}").status_code == 405
    assert client.get("/v1/units/06040/x%20y").status_code == 200
    spans = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    paths = [s.attributes["url.path"] for s in spans]
    assert paths == ["/v1/cccd/<number>"] * 6 + ["/v1/units/06040/x y"], paths
    assert [s.attributes.get("url.query") for s in spans][:5] == ["lang=vi"] * 5
    dumped = json.dumps([dict(s.attributes) for s in spans])
    assert not [n for n in (CCCD, *MISTYPED, "02009500123") if n in dumped]
