"""CloudEvents 1.0 as plain dicts: build, validate, and carry over HTTP.

An event is the structured JSON form of a CloudEvent (``specversion``, ``id``, ``source``,
``type``, ``time``?, ``datacontenttype``, ``subject``?, ``data``) held as a ``dict``, so it can
be logged, stored and published without wrapper objects. The ``cloudevents`` package does the
spec validation and the HTTP binary-mode header encoding; this module adds the project's own
rule on types (``vn.langson.<domain>.<fact>.v<N>``) and the NATS subject that follows from it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping
from urllib.parse import unquote

from typing import TYPE_CHECKING

from . import strictjson
from .timestamps import iso

if TYPE_CHECKING:  # pragma: no cover
    from cloudevents.core.exceptions import BaseCloudEventException
    from cloudevents.core.v1.event import CloudEvent

# The CloudEvents SDK is imported where an event is built or bound to HTTP, not here: a function
# that neither publishes nor receives events never loads it.

SPECVERSION = "1.0"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
JSON_CONTENT_TYPE = "application/json"
TYPE_PATTERN = re.compile(r"^vn\.langson\.[a-z0-9-]+(\.[a-z0-9-]+)+\.v[0-9]+$")
SUBJECT_PREFIX = "lscloud"
DELIVERY_PATH = "/events"
"""Where a function takes the events it subscribed to (an internal route: the platform delivers)."""
DEAD_LETTER_PATH = "/events/dead-letters"
"""Where a function is told of events its subscriptions gave up on (:mod:`lscloud.deadletters`)."""

_JSON_TYPE = re.compile(r"^(application|text)/([a-zA-Z0-9.\-]+\+)?json(;.*)?$")
_CLOUDEVENTS_MEDIA = re.compile(r"^application/cloudevents([+-].*)?$")
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"

# RFC 3986: Appendix B splits any string into its five components, which are then checked one by one
_URI_PARTS = re.compile(r"^(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$", re.S)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_SUB = r"A-Za-z0-9\-._~!$&'()*+,;="                 # unreserved and sub-delims
_PCT = r"%[0-9A-Fa-f]{2}"
_AUTHORITY = re.compile(rf"(?:(?:[{_SUB}:]|{_PCT})*@)?(?:\[[0-9A-Za-z.:\-_~!$&'()*+,;=]+\]|(?:[{_SUB}]|{_PCT})*)(?::[0-9]*)?")
_PATH = re.compile(rf"(?:[{_SUB}:@/]|{_PCT})*")
_QUERY = re.compile(rf"(?:[{_SUB}:@/?]|{_PCT})*")
_LEAP_SECOND = re.compile(r"[Tt ]\d{2}:\d{2}:60")


def check_type(type: str) -> str:
    """Return ``type`` if it follows ``vn.langson.<domain>.<fact...>.v<N>``, else raise ValueError."""
    if not isinstance(type, str) or not TYPE_PATTERN.match(type):
        raise ValueError(
            f"event type {type!r} must look like 'vn.langson.<domain>.<fact>.v1' "
            "(lowercase letters, digits and '-', at least a domain and a fact, a version suffix)"
        )
    return type


def subject_for(type: str) -> str:
    """The NATS subject of an event type.

    ``vn.langson.border.declaration.submitted.v1`` -> ``lscloud.border.declaration.submitted``:
    the version is dropped so consumers of v1 and v2 share one subject and filter on ``type``.
    """
    check_type(type)
    parts = type.split(".")[2:-1]
    return ".".join([SUBJECT_PREFIX, *parts])


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("event time must carry a time zone")
    return iso(value, "auto")


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"event attribute 'time' must be an RFC 3339 string, got {type(value).__name__}")
    if _LEAP_SECOND.search(value):
        # RFC 3339 allows :60, but a datetime cannot hold it, nor can any timestamp parsed downstream
        raise ValueError(f"event attribute 'time' is a leap second, which this platform cannot hold: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"event attribute 'time' is not an RFC 3339 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"event attribute 'time' must carry a UTC offset or 'Z': {value!r}")
    return parsed


def _uri_problem(value: str, absolute: bool) -> str | None:
    """Why ``value`` is not a URI-reference (or, ``absolute``, an absolute URI: RFC 3986 section 4.3,
    which the CloudEvents type ``URI`` names), or None."""
    scheme, authority, path, query, fragment = _URI_PARTS.match(value).groups()
    if scheme is not None and not _SCHEME.fullmatch(scheme):
        return "its scheme is malformed (or a relative reference's first segment holds a ':')"
    if absolute and scheme is None:
        return "it has no scheme (a relative reference)"
    if absolute and fragment is not None:
        return "an absolute URI has no '#fragment'"
    if authority is not None and not _AUTHORITY.fullmatch(authority):
        return "its authority (host, port) is malformed"
    if not _PATH.fullmatch(path) or not all(_QUERY.fullmatch(p) for p in (query, fragment) if p is not None):
        return "it holds characters a URI does not (spaces, non-ASCII, '<>\"{}|\\^`' must be percent-encoded)"
    return None


def _check_uris(attrs: Mapping[str, Any]) -> None:
    # the SDK checks only that these are non-empty strings
    for name, absolute in (("source", False), ("dataschema", True)):
        value = attrs.get(name)
        if isinstance(value, str) and value:
            why = _uri_problem(value, absolute)
            if why:
                kind = "an absolute URI" if absolute else "a URI-reference"
                raise ValueError(f"malformed CloudEvent: attribute '{name}' must be {kind} (RFC 3986): "
                                 f"{why}: {value[:200]!r}")


def _ce_error(exc: BaseCloudEventException) -> ValueError:
    errors = getattr(exc, "errors", None)
    if errors:
        detail = "; ".join(f"{name}: {', '.join(str(e) for e in errs)}" for name, errs in errors.items())
    else:
        detail = str(exc)
    return ValueError(f"malformed CloudEvent: {detail}")


def to_cloudevent(event: Mapping[str, Any]) -> CloudEvent:
    """The ``cloudevents`` object for an event dict (validates it; ValueError when malformed)."""
    if not isinstance(event, Mapping):
        raise ValueError(f"a CloudEvent must be a JSON object, got {type(event).__name__}")
    attrs = {k: v for k, v in event.items() if k not in ("data", "data_base64")}
    if "specversion" not in attrs:
        raise ValueError("malformed CloudEvent: missing required attribute 'specversion'")
    if attrs["specversion"] != SPECVERSION:
        raise ValueError(f"unsupported CloudEvents specversion {attrs['specversion']!r}: only '1.0' is accepted")
    for required in ("id", "source", "type"):
        if required not in attrs:
            raise ValueError(f"malformed CloudEvent: missing required attribute '{required}'")
    if "time" in attrs:
        attrs["time"] = _parse_time(attrs["time"])
    _check_uris(attrs)
    data = event.get("data")
    if data is None and "data_base64" in event:
        try:
            data = base64.b64decode(event["data_base64"], validate=True)
        except (ValueError, TypeError):
            raise ValueError("malformed CloudEvent: 'data_base64' is not base64") from None
    from cloudevents.core.exceptions import BaseCloudEventException
    from cloudevents.core.v1.event import CloudEvent

    timed = "time" in attrs
    try:
        ce = CloudEvent(attrs, data)
    except BaseCloudEventException as exc:
        raise _ce_error(exc) from None
    if not timed:
        # the SDK stamps an event without 'time' with now: 'time' is OPTIONAL, and an invented one
        # would tell a consumer when the event arrived (each redelivery another instant), not when it
        # happened (get_attributes() is the event's own dict: the pop takes it off the event)
        ce.get_attributes().pop("time", None)
    return ce


def from_cloudevent(ce: CloudEvent) -> dict[str, Any]:
    """The structured JSON dict of a ``cloudevents`` object (time as RFC 3339 UTC)."""
    out: dict[str, Any] = {}
    for name, value in ce.get_attributes().items():
        if value is None:
            continue
        out[name] = _format_time(value) if isinstance(value, datetime) else value
    data = ce.get_data()
    if isinstance(data, (bytes, bytearray)):
        out["data_base64"] = base64.b64encode(bytes(data)).decode("ascii")
    elif data is not None:
        out["data"] = data
    return out


def validate(event: Mapping[str, Any]) -> dict[str, Any]:
    """Check an event dict against CloudEvents 1.0 and return it normalised (ValueError if not)."""
    return from_cloudevent(to_cloudevent(event))


def new_event(type: str, source: str, data: Any, *, subject: str | None = None, id: str | None = None,
              time: datetime | None = None, dataschema: str | None = None) -> dict[str, Any]:
    """Build a CloudEvents 1.0 structured JSON dict for a domain event.

    ``type`` must follow ``vn.langson.<domain>.<fact>.v<N>`` (ValueError otherwise); ``id`` is a
    fresh UUID4 unless given (give one to make a retried publish dedupe); ``time`` is now, UTC.
    """
    check_type(type)
    attrs: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": id if id is not None else str(uuid.uuid4()),
        "source": source,
        "type": type,
        "time": time or datetime.now(timezone.utc),
        "datacontenttype": JSON_CONTENT_TYPE,
    }
    if subject is not None:
        attrs["subject"] = subject
    if dataschema is not None:
        attrs["dataschema"] = dataschema
    _check_uris(attrs)
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event data must be JSON-serialisable: {exc}") from None
    from cloudevents.core.exceptions import BaseCloudEventException
    from cloudevents.core.v1.event import CloudEvent

    try:
        ce = CloudEvent(attrs, data)
    except BaseCloudEventException as exc:
        raise _ce_error(exc) from None
    return from_cloudevent(ce)


def to_structured(event: Mapping[str, Any]) -> bytes:
    """The ``application/cloudevents+json`` body of an event."""
    return json.dumps(validate(event), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def from_structured(body: bytes | str) -> dict[str, Any]:
    """Parse an ``application/cloudevents+json`` body (ValueError with the reason when malformed)."""
    try:
        doc = strictjson.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"structured CloudEvent body is not valid JSON (or not accepted: {exc})") from None
    if isinstance(doc, list):
        raise ValueError("batched CloudEvents are not supported: send one event per request")
    return validate(doc)


def to_binary_http(event: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """HTTP binary content mode: ``ce-*`` headers (spec percent-encoding) and the data as the body."""
    from cloudevents.core.bindings import http as ce_http
    from cloudevents.core.formats.json import JSONFormat

    ce = to_cloudevent(event)
    message = ce_http.to_binary(ce, JSONFormat())
    headers = dict(message.headers)
    data = ce.get_data()
    content_type = ce.get_datacontenttype() or JSON_CONTENT_TYPE
    if data is None:
        body = b""
    elif isinstance(data, (bytes, bytearray)):
        body = bytes(data)
    elif _JSON_TYPE.match(content_type):
        # our own encoder: the library's would write a list payload with str()
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    else:
        body = str(data).encode("utf-8")
    headers["content-type"] = content_type
    return headers, body


def _lower_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(k).lower(): str(v) for k, v in items}


def _header_value(name: str, raw: str) -> str:
    """A binary-mode ``ce-*`` header's attribute value (HTTP binding 3.1.3.2): double-quoted strings
    unescaped first (RFC 7230 section 3.2.6; older senders quoted instead of percent-encoding), then
    one round of percent-decoding, refusing encoded bytes that are not UTF-8."""
    if '"' in raw:
        out: list[str] = []
        quoted, i = False, 0
        while i < len(raw):
            c = raw[i]
            if c == '"':
                quoted = not quoted
            elif c == "\\" and quoted and i + 1 < len(raw):
                i += 1
                out.append(raw[i])
            else:
                out.append(c)
            i += 1
        if quoted:
            raise ValueError(f"malformed CloudEvent: header '{name}' opens a double-quoted string it does not close")
        raw = "".join(out)
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"malformed CloudEvent: header '{name}' percent-encodes bytes that are not UTF-8") from None


def from_http(headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes | str) -> dict[str, Any]:
    """Parse a CloudEvent from an HTTP request in binary or structured mode.

    The Content-Type decides the mode (HTTP binding, section 3): ``application/cloudevents+json``
    (with or without parameters) is structured mode, whatever ``ce-*`` headers come along (a sender
    MAY repeat attributes there, a proxy may add ``ce-traceparent``: the body is the event); other
    ``application/cloudevents...`` formats and batches are refused; otherwise ``ce-*`` headers make
    binary mode. Raises ValueError saying what is wrong (no event at all, missing attribute, bad
    time, a header that does not decode, data not matching its content type).
    """
    h = _lower_headers(headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
    content_type = h.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if _CLOUDEVENTS_MEDIA.match(media_type):
        if media_type == STRUCTURED_CONTENT_TYPE:
            return from_structured(body)
        if media_type == BATCH_CONTENT_TYPE:
            raise ValueError("batched CloudEvents are not supported: send one event per request")
        raise ValueError(f"structured CloudEvents in {media_type!r} are not supported: send "
                         f"'{STRUCTURED_CONTENT_TYPE}' or binary mode")
    if any(k.startswith("ce-") for k in h):
        if "ce-datacontenttype" in h:
            raise ValueError("malformed CloudEvent: in binary mode 'datacontenttype' is the Content-Type header; "
                             "a 'ce-datacontenttype' header must not be sent")
        if h.get("ce-specversion") is None:
            raise ValueError("malformed CloudEvent: binary mode needs a 'ce-specversion' header")
        for required in ("id", "source", "type"):
            if not h.get(f"ce-{required}"):
                raise ValueError(f"malformed CloudEvent: missing required header 'ce-{required}'")
        attrs: dict[str, Any] = {}
        for name, value in h.items():
            if name.startswith("ce-"):
                attrs[name[3:]] = _header_value(name, value)
        if content_type:
            attrs["datacontenttype"] = content_type
        event: dict[str, Any] = dict(attrs)
        if body:
            if _JSON_TYPE.match(content_type or JSON_CONTENT_TYPE):
                try:
                    event["data"] = strictjson.loads(body)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise ValueError(f"CloudEvent data is declared as {content_type or 'JSON'} but is not valid JSON (or not accepted: {exc})") from None
            elif content_type.startswith("text/"):
                try:
                    event["data"] = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(f"CloudEvent data is declared as {content_type} but is not UTF-8") from None
            else:
                event["data_base64"] = base64.b64encode(body).decode("ascii")
        return validate(event)
    raise ValueError(
        "not a CloudEvent: expected binary mode ('ce-*' headers) or a structured "
        f"'{STRUCTURED_CONTENT_TYPE}' body, got content type {content_type or 'none'!r}"
    )


_ERROR_CHARS = 500   # of the subscriber's last answer: enough to say why, never a whole page
DEAD_LETTER_EXTENSIONS = ("knativeerrorcode", "knativeerrordata", "knativeerrordest")


@dataclass(frozen=True)
class DeliveryFailure:
    """Why a delivery was given up on, as Knative tells a dead-letter sink: the last status (None:
    no answer), the last answer or error, and the subscriber's URL (:mod:`lscloud.deadletters`)."""

    status: int | None
    error: str
    destination: str

    def extensions(self) -> dict[str, str]:
        """The CloudEvents extension attributes Knative adds to a dead letter."""
        out = {"knativeerrordest": self.destination,
               "knativeerrordata": base64.b64encode(self.error.encode("utf-8")).decode("ascii")}
        if self.status is not None:
            out["knativeerrorcode"] = str(self.status)
        return out

    @classmethod
    def of(cls, event: dict[str, Any]) -> "DeliveryFailure":
        """The failure a dead letter carries (its extension attributes, any of them may be missing)."""
        code = str(event.get("knativeerrorcode") or "").strip()
        raw = event.get("knativeerrordata") or ""
        try:
            error = base64.b64decode(raw, validate=True).decode("utf-8", "replace") if raw else ""
        except (binascii.Error, ValueError):
            error = str(raw)
        # [0-9], not str.isdigit(): "²" is a digit to it and not to int()
        return cls(int(code) if re.fullmatch(r"[0-9]{3}", code) else None, error[:_ERROR_CHARS],
                   str(event.get("knativeerrordest") or "")[:300])
