"""CloudEvents helpers: building, validating, binary and structured HTTP modes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest

from lscloud import events

TYPE = "vn.langson.border.declaration.submitted.v1"


def test_new_event_is_a_structured_cloudevent():
    ev = events.new_event(TYPE, "/functions/border", {"plate": "12C-345.67", "cửa khẩu": "Hữu Nghị"}, subject="d-1")
    assert ev["specversion"] == "1.0"
    assert uuid.UUID(ev["id"]).version == 4
    assert ev["type"] == TYPE and ev["source"] == "/functions/border" and ev["subject"] == "d-1"
    assert ev["datacontenttype"] == "application/json"
    assert ev["time"].endswith("Z")
    parsed = datetime.fromisoformat(ev["time"])
    assert parsed.utcoffset().total_seconds() == 0
    assert ev["data"]["cửa khẩu"] == "Hữu Nghị"
    json.dumps(ev)  # JSON-ready as it is


def test_given_id_and_time_are_kept():
    when = datetime(2025, 7, 1, 8, 30, tzinfo=timezone.utc)
    ev = events.new_event(TYPE, "/x", {}, id="evt-1", time=when)
    assert ev["id"] == "evt-1" and ev["time"] == "2025-07-01T08:30:00Z"
    assert "subject" not in ev


@pytest.mark.parametrize("bad", [
    "vn.langson.border.v1",                    # no fact
    "vn.langson.border.declaration.submitted",  # no version
    "com.example.border.declaration.v1",        # not ours
    "vn.langson.Border.declaration.v1",         # upper case
    "vn.langson.border.declaration submitted.v1",
    "",
])
def test_bad_types_are_refused(bad):
    with pytest.raises(ValueError, match="vn.langson"):
        events.new_event(bad, "/x", {})
    with pytest.raises(ValueError):
        events.subject_for(bad)


def test_subject_for_drops_prefix_and_version():
    assert events.subject_for(TYPE) == "lscloud.border.declaration.submitted"
    assert events.subject_for("vn.langson.soft-atm.transfer.committed.v12") == "lscloud.soft-atm.transfer.committed"


def test_data_must_be_json():
    with pytest.raises(ValueError, match="JSON"):
        events.new_event(TYPE, "/x", {"when": object()})


def test_binary_http_round_trip_with_non_ascii_attributes():
    ev = events.new_event(TYPE, "/functions/border", {"n": 1, "tên": "Lạng Sơn"}, subject="xe 12C/345 \"đêm\"")
    headers, body = events.to_binary_http(ev)
    assert headers["ce-id"] == ev["id"] and headers["ce-type"] == TYPE and headers["ce-specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert all(h.isascii() for h in headers.values())  # percent-encoded per the HTTP binding
    assert json.loads(body) == ev["data"]
    assert events.from_http({k.upper(): v for k, v in headers.items()}, body) == ev


def test_structured_round_trip():
    ev = events.new_event(TYPE, "/x", [1, 2, 3])
    back = events.from_http({"Content-Type": "application/cloudevents+json; charset=utf-8"}, events.to_structured(ev))
    assert back == ev


def test_list_data_in_binary_mode_stays_json():
    ev = events.new_event(TYPE, "/x", [{"a": 1}])
    _, body = events.to_binary_http(ev)
    assert json.loads(body) == [{"a": 1}]


@pytest.mark.parametrize("headers, body, message", [
    ({"content-type": "application/json"}, b"{}", "not a CloudEvent"),
    ({"ce-id": "1", "ce-source": "/x", "ce-type": TYPE}, b"{}", "ce-specversion"),
    ({"ce-specversion": "1.0", "ce-source": "/x", "ce-type": TYPE}, b"{}", "ce-id"),
    ({"ce-specversion": "0.3", "ce-id": "1", "ce-source": "/x", "ce-type": TYPE}, b"{}", "specversion"),
    ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "ce-type": TYPE, "content-type": "application/json"},
     b"{not json", "not valid JSON"),
    ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "ce-type": TYPE, "ce-time": "yesterday"}, b"", "time"),
    ({"content-type": "application/cloudevents+json"}, b"{oops", "not valid JSON"),
    ({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0", "id": "1", "type": "t"}', "source"),
    ({"content-type": "application/cloudevents+json"}, b'[{"specversion": "1.0"}]', "batched"),
    ({"content-type": "application/cloudevents-batch+json"}, b"[]", "batched"),
])
def test_malformed_http_events_raise_clear_value_errors(headers, body, message):
    with pytest.raises(ValueError, match=message):
        events.from_http(headers, body)


def test_binary_without_body_has_no_data():
    ev = events.from_http({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "ce-type": TYPE}, b"")
    assert "data" not in ev and ev["id"] == "1"


def test_binary_octet_stream_body_becomes_data_base64():
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "ce-type": TYPE,
               "content-type": "application/octet-stream"}
    ev = events.from_http(headers, b"\x00\xff")
    assert ev["data_base64"] == "AP8="
    h2, body2 = events.to_binary_http(ev)
    assert body2 == b"\x00\xff" and h2["content-type"] == "application/octet-stream"


# -- what a sender may not put in a CloudEvent's JSON (issue 9) ---------------------------------------

@pytest.mark.parametrize("data", [b"[" * 5000 + b"]" * 5000, b'{"weight_kg": NaN}', b'{"a": 1, "a": 2}'],
                         ids=["5000-deep", "NaN", "duplicate-key"])
def test_event_json_is_parsed_strictly(data):
    headers = {"ce-specversion": "1.0", "ce-id": "x1", "ce-source": "/test", "ce-type": "vn.langson.test.thing.v1",
               "content-type": "application/json"}
    with pytest.raises(ValueError):
        events.from_http(headers, data)
    structured = b'{"specversion": "1.0", "id": "x1", "source": "/test", "type": "vn.langson.test.thing.v1", "data": ' \
                 + data + b"}"
    with pytest.raises(ValueError):
        events.from_http({"content-type": "application/cloudevents+json"}, structured)


def test_an_instant_with_its_offset_or_none_and_a_ticks_minute():
    """One reading of "a time a device or an event gives, or None" (lscloud.timestamps.parse_instant):
    the border's weighbridge readings and the runtime's tick housekeeping both use it."""
    from datetime import datetime, timezone

    from lscloud import clock
    from lscloud.timestamps import parse_instant

    assert parse_instant("2026-12-06T10:00:00+07:00") == datetime(2026, 12, 6, 3, tzinfo=timezone.utc)
    assert parse_instant("2026-12-06T03:00:00Z") == datetime(2026, 12, 6, 3, tzinfo=timezone.utc)
    for bad in (None, 5, "", "yesterday", "2026-12-06T03:00:00", ["2026-12-06T03:00:00Z"]):
        assert parse_instant(bad) is None, bad
    at = datetime(2026, 12, 6, 3, 7, 30, tzinfo=timezone.utc)
    assert clock.tick_at(clock.tick_event(at)) == at.replace(second=0)
    assert clock.tick_at({"data": {"at": "nonsense"}}) is None and clock.tick_at({"data": None}) is None
