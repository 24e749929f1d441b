"""CloudEvents 1.0 over HTTP as the spec's HTTP protocol binding reads it (lscloud.events.from_http,
which every function's ``/events`` route answers a 400 problem with when it refuses):
the mode from the Content-Type, ``time`` left absent when the sender gave none, binary-mode
header decoding, and the URI attributes."""

from __future__ import annotations

import json

import pytest

from lscloud import events

TYPE = "vn.langson.border.truck.exited.v1"
ENVELOPE = {"specversion": "1.0", "id": "e-1", "source": "/border", "type": TYPE, "time": "2025-08-20T10:00:00Z",
            "datacontenttype": "application/json", "data": {"gate": "huu-nghi"}}
BINARY = {"ce-specversion": "1.0", "ce-id": "e-2", "ce-source": "/border", "ce-type": TYPE,
          "content-type": "application/json"}
DATA = b'{"gate":"huu-nghi"}'


def structured(envelope: dict) -> bytes:
    return json.dumps(envelope).encode()


# -- 1. the Content-Type decides the mode (binding section 3; 3.2.3: structured MAY carry ce-* too) ------

@pytest.mark.parametrize("extra", [
    {"ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "/border", "ce-type": TYPE},
    {"ce-traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
], ids=["required-attributes-repeated", "one-extension-header"])
@pytest.mark.parametrize("content_type", ["application/cloudevents+json", "Application/CloudEvents+JSON; charset=UTF-8"])
def test_structured_mode_with_ce_headers_is_read_from_the_body(extra, content_type):
    ev = events.from_http({"content-type": content_type, **extra}, structured(ENVELOPE))
    assert ev == ENVELOPE


@pytest.mark.parametrize("content_type, message", [
    ("application/cloudevents-batch+json", "batched"),
    ("application/cloudevents+avro", "not supported"),
])
def test_other_cloudevents_formats_are_refused_even_with_ce_headers(content_type, message):
    with pytest.raises(ValueError, match=message):
        events.from_http({**BINARY, "content-type": content_type}, b"[" + structured(ENVELOPE) + b"]")


# -- 2. 'time' is OPTIONAL: never the time the event arrived ------------------------------------------

def test_an_event_without_time_stays_without_time():
    binary = events.from_http(BINARY, DATA)
    timeless = {k: v for k, v in ENVELOPE.items() if k != "time"}
    structured_ev = events.from_http({"content-type": "application/cloudevents+json"}, structured(timeless))
    assert "time" not in binary and "time" not in structured_ev
    assert events.from_http(BINARY, DATA) == binary            # a redelivery reads the same event
    assert structured_ev == timeless and events.validate(timeless) == timeless
    headers, body = events.to_binary_http(structured_ev)     # and the platform's delivery passes it on so
    assert "ce-time" not in headers and "time" not in events.from_http(headers, body)
    assert events.new_event(TYPE, "/border", {})["time"].endswith("Z")   # what we publish has its time


def test_the_consumers_of_time_take_an_event_without_it():
    from functions.ioc.function import facts
    from functions.market.function import exports

    data = {"declaration_id": "TK-1", "to": "exited", "gate": "huu-nghi", "flow": "export"}
    timeless = events.from_http(BINARY, json.dumps(data).encode())
    assert facts.of(timeless) is None                                     # nothing says when: not counted
    fact = facts.of({**timeless, "data": {**data, "at": "2025-08-20T17:00:00+07:00"}})
    assert fact["at"] == "2025-08-20T10:00:00Z"
    assert facts.of({**timeless, "time": "2025-08-20T10:00:00Z"})["at"] == "2025-08-20T10:00:00Z"
    # returns before it reads any lot: no day to record, none invented
    assert exports.on_exited({**timeless, "data": {**data, "direction": "export"}}) is None


# -- 3. binary-mode headers: quoted strings, strict UTF-8, no ce-datacontenttype (3.1.3.2, 3.1.1) -------

@pytest.mark.parametrize("raw, value", [
    ('"xe 12C-345.67"', "xe 12C-345.67"),
    ('"say \\"hi\\""', 'say "hi"'),
    ('"a%20b"', "a b"),                       # unquoted first, then one round of percent-decoding
    ("Quy%E1%BA%BFt%20%C4%91%E1%BB%8Bnh", "Quyết định"),
])
def test_binary_header_values_are_unquoted_then_percent_decoded(raw, value):
    assert events.from_http({**BINARY, "ce-subject": raw}, DATA)["subject"] == value


@pytest.mark.parametrize("raw, message", [
    ("a%C0%A0b", "ce-subject.*not UTF-8"),       # an overlong encoding of a space
    ("%ED%A0%80", "ce-subject.*not UTF-8"),       # a surrogate
    ('"open', "ce-subject.*double-quoted"),
])
def test_binary_header_values_that_do_not_decode_are_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        events.from_http({**BINARY, "ce-subject": raw}, DATA)


def test_binary_mode_refuses_a_ce_datacontenttype_header():
    with pytest.raises(ValueError, match="ce-datacontenttype"):
        events.from_http({**BINARY, "ce-datacontenttype": "text/plain"}, b'{"a":1}')


@pytest.mark.parametrize("source", ["not a uri <>", "/cửa-khẩu", "1a:b", "http://host:80x/", "/a%zz"])
def test_a_source_that_is_not_a_uri_reference_is_refused(source):
    with pytest.raises(ValueError, match="'source'.*URI-reference"):
        events.from_http({"content-type": "application/cloudevents+json"}, structured({**ENVELOPE, "source": source}))
    with pytest.raises(ValueError, match="'source'"):
        events.from_http({**BINARY, "ce-source": source.replace(" ", "%20")}, DATA)
    with pytest.raises(ValueError, match="'source'"):
        events.new_event(TYPE, source, {})


@pytest.mark.parametrize("source", ["/border", "border/gate-1", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
                                    "https://langson.gov.vn/a?b=1#c", "mailto:ops@langson.gov.vn", "//host:8080/x",
                                    "/x%C3%A1", "http://[::1]/x"])
def test_uri_reference_sources_are_accepted(source):
    ev = events.from_http({"content-type": "application/cloudevents+json"}, structured({**ENVELOPE, "source": source}))
    assert ev["source"] == source
    assert events.from_http(*events.to_binary_http(ev))["source"] == source   # percent-encoded in its header


@pytest.mark.parametrize("schema", ["schemas/x.json", "/schemas/x.json", "https://x.vn/s.json#/defs/a", "h ttp://x"])
def test_a_dataschema_that_is_not_an_absolute_uri_is_refused(schema):
    with pytest.raises(ValueError, match="'dataschema'.*absolute URI"):
        events.from_http({"content-type": "application/cloudevents+json"},
                         structured({**ENVELOPE, "dataschema": schema}))


def test_an_absolute_dataschema_is_kept():
    schema = "https://schemas.langson.gov.vn/events/border/truck.exited.json"
    assert events.from_http({**BINARY, "ce-dataschema": schema}, DATA)["dataschema"] == schema


def test_a_leap_second_is_refused_saying_so():
    """RFC 3339 allows :60; a Python datetime, and so every timestamp the platform parses, cannot hold it."""
    with pytest.raises(ValueError, match="'time' is a leap second"):
        events.from_http({"content-type": "application/cloudevents+json"},
                         structured({**ENVELOPE, "time": "2016-12-31T23:59:60Z"}))
