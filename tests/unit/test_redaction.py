"""Personal identifiers never leave a process in a span or a log line; ids, times and ports do, intact."""

from __future__ import annotations

import json
import logging

import flask
import pytest

from lscloud import redaction, telemetry
from lscloud.web.instrumentation import instrument

CCCD, PHONE, PASSPORT, ACCOUNT = "020095001234", "0912345678", "E7654321", "9900000007"


@pytest.mark.parametrize("text,expected", [
    (f"/identity/v1/cccd/{CCCD}", "/identity/v1/cccd/[cccd]"),
    (f"identity-population/{CCCD}/_.json", "identity-population/[cccd]/_.json"),
    (f"border-owners/drv~3A{CCCD}/1796284154731999_e2e.json", "border-owners/drv~3A[cccd]/1796284154731999_e2e.json"),
    (f"border-owners/drv~3A{PASSPORT}/x.json", "border-owners/drv~3A[passport]/x.json"),
    ("old id card 081234567", "old id card [cmnd]"),
    (f"call {PHONE}, +84912345678, 0912 345 678, 0912.345.678 or +8613800000000",
     "call [phone], [phone], [phone], [phone] or [phone]"),
    ("Lạng Sơn office 02053870123", "Lạng Sơn office [phone]"),
    # as people write them in a report's text or a file name: in groups, +84 then a space
    ("CCCD 020 088 002 468, số 0200.8800.2468", "CCCD [cccd], số [cccd]"),
    ("gọi +84 912 345 678 hoặc 84 912.345.678", "gọi [phone] hoặc [phone]"),
    (f'{{"account": "{ACCOUNT}"}} acct={ACCOUNT}', '{"account": "[account]"} acct=[account]'),
    # a JWT (a bearer token, a download link's token in a URL path): a credential while it lives
    ("/dossiers/downloads/eyJhbGciOiJIUzI1NiJ9.eyJibG9iIjoiYXR0YWNobWVudHMvYWIifQ.c2lnbmF0dXJlX29mX3RoZV9saW5r",
     "/dossiers/downloads/[token]"),
    ("Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.QUJDREVGR0g", "Authorization: Bearer [token]"),
    # a credential in a query: OpenTelemetry's url.query list (the key kept), and Open311's api_key
    ("q=OpenTelemetry&sig=abc%2Fdef#top", "q=OpenTelemetry&sig=REDACTED#top"),
    ("X-Amz-Credential=AKIA%2F20261205&X-Amz-Signature=0a1b2c&X-Amz-Security-Token=FQo",
     "X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED"),
    ("X-Goog-Signature=abcdef&x=1", "X-Goog-Signature=REDACTED&x=1"),
    ("jurisdiction_id=langson.gov.vn&api_key=k7f2.QmVyeVNlY3JldA", "jurisdiction_id=langson.gov.vn&api_key=REDACTED"),
    ("b'GET /reports/open311/v2/requests.json?api_key=onlyletters HTTP/1.1 x'",
     "b'GET /reports/open311/v2/requests.json?api_key=REDACTED HTTP/1.1 x'"),
    # a dossier's tracking secret (the route and the assistant's call to it), the border lookup's plate
    ("code=LS-261122-7K3QZP&secret=Q7KX9M2P", "code=LS-261122-7K3QZP&secret=REDACTED"),
    ("code=LS7K3QZP9&plate=12C-345.67", "code=LS7K3QZP9&plate=REDACTED"),
    ("token=abc&access_token=def&password=hunter2", "token=REDACTED&access_token=REDACTED&password=REDACTED"),
    # a reporter's or an applicant's e-mail (an Open311 form field, a file name)
    ("email=nguyen.van.a@gmail.com&x=1", "email=[email]&x=1"),
    ("liên hệ an.tran+bao@langson.gov.vn, không gọi", "liên hệ [email], không gọi"),
])
def test_identifiers_are_redacted(text, expected):
    assert redaction.redact(text) == expected


@pytest.mark.parametrize("text", [
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",     # hex ids
    "127.0.0.1:8080 and 127.0.0.1:45123",                               # ports
    "1796284154 1796284154731 1796284154731999 1796284154731999123",    # epoch s, ms, µs, ns
    "2026-01-02T10:00:00.123456+07:00",                                 # ISO times
    "softatm-journal/bd-05983/000000000012.json",                       # a zero-padded sequence
    "identity-attempts/xnx7jcye2f6ciuxhk24dlcektp/001767225600.json",   # a pseudonym, a padded epoch
    "tax code 0100109106, unit 05983, HS 081090, plate 12C-345.67",
    "e2e-a11f31c5a45c w0912345678x",                                    # inside longer words
    "groups 123 456 789 012 and 999 088 002 468",                       # no such province: not a CCCD
    "signature=valid my_api_key=1 API_KEY=x api_key= sig",              # other names; no value
    "q=OpenTelemetry&sig=REDACTED",                                     # redacted already
    "ssh git@github nats://relay@nats:4222",                           # no domain with a dot: not an address
])
def test_ids_times_ports_and_pseudonyms_are_left_alone(text):
    assert redaction.redact(text) == text


def test_an_attribute_named_account_loses_any_account_number():
    assert redaction.redact_value("bank.account", f"no {ACCOUNT}") == "no [account]"
    assert redaction.redact_value("url.path", ("/a", f"/b/{CCCD}")) == ("/a", "/b/[cccd]")
    assert redaction.redact_value("http.response.status_code", 200) == 200


@pytest.fixture(scope="module")
def exporter():
    return telemetry.spans_in_memory("redaction-test")


def test_exported_spans_carry_no_identifier(exporter):
    exporter.clear()
    app = flask.Flask("ids")

    @app.get("/v1/cccd/<number>")
    def decode(number):
        if number.endswith("4"):
            raise ValueError(f"no citizen {number}")
        return {"number": number}

    instrument(app)
    client = app.test_client()
    assert client.get(f"/v1/cccd/{CCCD}", query_string={"phone": PHONE}).status_code == 500
    with telemetry.tracer().start_as_current_span(f"lookup {PASSPORT}") as span:
        span.set_attribute("aws.s3.key", f"border-owners/drv~3A{CCCD}/x.json")
        span.add_event("note", {"text": f"caller {PHONE}"})
        telemetry.mark_error(span, f"no such citizen {CCCD}")
    spans = exporter.get_finished_spans()
    dumped = json.dumps([telemetry.span_to_dict(s) for s in spans], default=str)
    for value in (CCCD, PHONE, PASSPORT):
        assert value not in dumped
    assert "/v1/cccd/[cccd]" in dumped and "lookup [passport]" in dumped and "caller [phone]" in dumped
    # the trace still hangs together: ids, kinds and times pass unchanged
    named = {s.name: s for s in spans}
    assert named["lookup [passport]"].context.trace_id and named["lookup [passport]"].end_time


def test_log_records_are_redacted_at_birth(caplog):
    redaction.install_log_redaction()
    log = logging.getLogger("lscloud.test.redaction")
    with caplog.at_level(logging.INFO, logger="lscloud.test.redaction"):
        log.info("citizen %s called from %s", CCCD, PHONE)
        log.warning("record %r", {"id_number": CCCD})
        try:
            raise KeyError(f"identity-population/{CCCD}")
        except KeyError:
            log.exception("lookup of %s failed", PASSPORT)
    text = caplog.text
    assert CCCD not in text and PHONE not in text and PASSPORT not in text
    assert "citizen [cccd] called from [phone]" in text and "KeyError" in text


def test_uncaught_exceptions_print_redacted_tracebacks(tmp_path):
    import subprocess
    import sys

    script = ("from lscloud import redaction\nimport threading\nredaction.install_log_redaction()\n"
              f"def work():\n    raise KeyError('identity-population/{CCCD}')\n"
              "t = threading.Thread(target=work)\nt.start()\nt.join()\n"
              f"raise LookupError('no citizen {CCCD} at {PHONE}')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Exception in thread" in done.stderr and "LookupError: no citizen [cccd] at [phone]" in done.stderr
    assert CCCD not in done.stderr and PHONE not in done.stderr


def test_a_download_links_token_is_not_in_the_exported_span(exporter):
    # the link's token is a credential in a URL path, which the SERVER span records
    exporter.clear()
    app = flask.Flask("files")

    @app.get("/downloads/<token>")
    def download(token):
        return "ok"

    instrument(app)
    token = "eyJhbGciOiJIUzI1NiJ9.eyJibG9iIjoiYXR0YWNobWVudHMvYWIifQ.c2lnbmF0dXJlX29mX3RoZV9saW5rXzEyMzQ1"
    assert app.test_client().get(f"/downloads/{token}", query_string={"t": token}).status_code == 200
    dumped = json.dumps([telemetry.span_to_dict(s) for s in exporter.get_finished_spans()], default=str)
    assert token not in dumped and "/downloads/[token]" in dumped and "t=[token]" in dumped


def test_an_open311_api_key_in_a_query_is_not_in_the_exported_span(exporter):
    exporter.clear()
    app = flask.Flask("open311")

    @app.get("/open311/v2/services.json")
    def services():
        return "[]"

    instrument(app)
    key = "k7f2.QmVyeVNlY3JldEtleVZhbHVl"
    assert app.test_client().get("/open311/v2/services.json",
                                 query_string={"jurisdiction_id": "langson.gov.vn", "api_key": key}).status_code == 200
    dumped = json.dumps([telemetry.span_to_dict(s) for s in exporter.get_finished_spans()], default=str)
    assert key not in dumped and "jurisdiction_id=langson.gov.vn&api_key=REDACTED" in dumped



def test_the_bus_names_its_servers_without_their_credentials():
    """The bus's errors name the NATS URL and are logged and recorded on spans: a user and password
    in LSCLOUD_NATS_URL went with them (the cluster uses mTLS, an operator's URL might not)."""
    from lscloud import bus

    assert bus._shown("nats://relay:Sup3rS3cret@nats:4222") == "nats://nats:4222"
    assert bus._shown("tls://a:b@h1:4222, tls://c@h2:4222") == "tls://h1:4222,tls://h2:4222"
    assert bus._shown("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def test_a_failed_delivery_is_described_by_its_status_and_problem_type_not_its_answer():
    """A 422's schema messages echo the event's values (a plate, a name), and the dispatcher put the
    answer's body in its span status and a log line, past every pattern. The dead letter keeps it."""
    from lscloud import delivery

    body = '{"type": "https://errors.lscloud.langson.gov.vn/validation-failed", "detail": "12C-345.67 is not valid"}'
    assert delivery._reason(422, f"HTTP 422: {body}") == "HTTP 422 validation-failed"
    assert delivery._reason(500, "HTTP 500: <html>Nông Văn Thắng</html>") == "HTTP 500"
    assert delivery._reason(None, "no answer within 10s") == "no answer within 10s"
