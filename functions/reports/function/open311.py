"""Open311 GeoReport v2's wire formats: the XML and JSON shapes of the spec (a list at the root,
the Spark convention between them), its error list, its form-encoded POST with ``attribute[code]``.
Plain Python: the routes hand it parsed values and send what it renders."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree as ET

from lscloud import errors
from lscloud.timestamps import YEARS_MESSAGE, year_in_range

JURISDICTION = "langson.gov.vn"
FORMATS = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
DEFAULT_WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
# the XML element of each item of a list (the spec's examples)
ITEM = {"services": "service", "attributes": "attribute", "values": "value", "service_requests": "request",
        "errors": "error", "endpoints": "endpoint", "formats": "format",
        "service_request_updates": "request_update"}


class Open311Error(Exception):
    """An error answered the spec's way: ``[{code, description}]`` with the HTTP status."""

    def __init__(self, status: int, description: str, code: int | None = None, headers: dict | None = None):
        super().__init__(description)
        self.status, self.items = status, [{"code": code or status, "description": description}]
        self.headers = dict(headers or {})   # e.g. Retry-After on a 429


def from_domain(exc: errors.DomainError) -> Open311Error:
    """A domain refusal in Open311's terms: 404 for what does not exist, 403 for keys, 429 (with its
    Retry-After) for a rate limit, 400 otherwise."""
    fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in (exc.errors or []))
    text = f"{exc.detail} ({fields})" if fields and fields not in (exc.detail or "") else (fields or exc.detail or "")
    status = exc.status if exc.status in (403, 404, 429, 503) else 400
    return Open311Error(status, text or exc.title, headers=getattr(exc, "headers", None))


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(400, f"unknown format {fmt!r}: use .xml or .json")
    return fmt


def check_jurisdiction(value: str | None) -> None:
    """Optional (one jurisdiction is served); an empty value is the same as none, another is unknown."""
    if value and value != JURISDICTION:
        raise Open311Error(404, f"jurisdiction_id {value!r} not found: this endpoint serves {JURISDICTION}")


def _element(tag: str, value) -> ET.Element:
    el = ET.Element(tag)
    if isinstance(value, dict):
        for k, v in value.items():
            el.append(_element(k, v))
    elif isinstance(value, list):
        for v in value:
            el.append(_element(ITEM.get(tag, "item"), v))
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = str(value)
    return el


def render(fmt: str, root: str, value) -> tuple[bytes, str]:
    """``(body, content type)``: JSON as is; XML under ``<root>`` with the XML declaration."""
    if fmt == "json":
        return json.dumps(value, ensure_ascii=False).encode(), FORMATS["json"]
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(_element(root, value), encoding="utf-8",
                                                                      xml_declaration=False)
    return body, FORMATS["xml"]


def parse_form(raw: bytes) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The POST's fields and its ``attribute[code]`` / ``attribute[code][]`` values."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Open311Error(400, "the body is not UTF-8") from None
    fields: dict[str, str] = {}
    attrs: dict[str, list[str]] = {}
    for k, v in pairs:
        if k.startswith("attribute[") and "]" in k:
            code = k[len("attribute["):k.index("]")]
            attrs.setdefault(code, []).append(v)
        elif k in fields:
            raise Open311Error(400, f"{k} is given twice")
        else:
            fields[k] = v
    return fields, attrs


def media_url(fields: dict) -> str | None:
    """The request's ``media_url``: an absolute http(s) URL (GeoReport v2 and the response schema say
    a URI), kept and shown to everyone, so nothing else is stored (a ``javascript:`` link, a path)."""
    raw = (fields.get("media_url") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if len(raw) > 2048 or parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in raw):
        raise Open311Error(400, "media_url must be an absolute http(s) URL of at most 2,048 characters")
    return raw


def number(fields: dict, name: str) -> float | None:
    raw = (fields.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number (WGS84 degrees)") from None
    if value != value or abs(value) > 180:
        raise Open311Error(400, f"{name} is out of range")
    return value


def w3_datetime(fields: dict, name: str) -> datetime | None:
    """A w3 date-time with its timezone (the spec requires one)."""
    raw = (fields.get(name) or "").strip()
    if not raw:
        return None
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise Open311Error(400, f"{name} must be a w3 date-time with a timezone, e.g. 2010-01-01T00:00:00Z")
    if not year_in_range(t.year):   # year 1 or 9999: the window's arithmetic overflowed (a 500)
        raise Open311Error(400, f"{name} {YEARS_MESSAGE}")
    return t


def window(fields: dict) -> tuple[datetime, datetime]:
    """GET requests' range: the most recent 90 days by default, never more than 90 days."""
    start, end = w3_datetime(fields, "start_date"), w3_datetime(fields, "end_date")
    end = end or ((start + DEFAULT_WINDOW) if start else datetime.now(timezone.utc))
    start = start or (end - DEFAULT_WINDOW)
    if start > end:
        raise Open311Error(400, "start_date is after end_date")
    if end - start > DEFAULT_WINDOW:
        raise Open311Error(400, "start_date to end_date may not span more than 90 days")
    return start, end


MAX_LISTED = 100
"""Values a comma-delimited argument may name (service_request_id: each is a read of the store)."""


def listed(fields: dict, name: str, allowed: tuple[str, ...] | None = None) -> set[str] | None:
    """A comma-delimited argument (empty = not given), at most :data:`MAX_LISTED` values."""
    raw = (fields.get(name) or "").strip()
    if not raw:
        return None
    values = {v.strip() for v in raw.split(",") if v.strip()}
    if len(values) > MAX_LISTED:
        raise Open311Error(400, f"{name} names at most {MAX_LISTED} values")
    if allowed is not None and values - set(allowed):
        raise Open311Error(400, f"{name} is one of {', '.join(allowed)}")
    return values


def discovery(base_url: str, changeset: str) -> dict:
    """The Service Discovery document: where the GeoReport v2 endpoint is and what it speaks.
    ``base_url``: this function's public URL as the client reached it (a client appends
    ``/services.json`` and the other paths to the endpoint's ``url``)."""
    return {"changeset": changeset, "contact": "Trung tâm Giám sát, điều hành thông minh tỉnh Lạng Sơn (IOC)",
            "key_service": f"{base_url}/v1/api-keys (issued by the platform's operators)",
            "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": f"{base_url}/open311/v2",
                           "changeset": changeset, "type": "production",
                           "formats": ["text/xml", "application/json"]}]}
