"""Stations as NGSI-LD entities (ETSI GS CIM 009) shaped by the Smart Data Models
AirQualityObserved, NoiseLevelObserved and WaterQualityObserved: the latest ended hour of each
station (an hour still running has no mean yet, :mod:`.reports`), normalized or ``keyValues``; the ``q`` and ``georel=near`` filters; the temporal representation of
its hourly summaries, aggregated (``aggrMethods``, ``aggrPeriodDuration``) or not.

Errors are NGSI-LD's own problem types (``https://uri.etsi.org/ngsi-ld/errors/…``), except the 406,
for which NGSI-LD defines none (:class:`NotAcceptable` is the platform's). An entity id
that is not a URI at all is BadRequestData, one that is a URI but names none of our stations
ResourceNotFound (V1.9.1 clauses 5.7.1.4, 5.7.2.4, 5.7.3.4).
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import datetime, timedelta

from lscloud import errors, statemachine

from . import aqi, clock, ngsi_query, noise

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CONTEXT = ["https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld",
           "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]
TYPES = {"air": "AirQualityObserved", "noise": "NoiseLevelObserved", "water": "WaterQualityObserved"}
KIND_OF = {v: k for k, v in TYPES.items()}
# our parameter -> the Smart Data Model's attribute
ATTRS = {"air": {p: p for p in aqi.POLLUTANTS},
         "noise": {"laeq": "LAeq", "lamax": "LAmax"},
         "water": {"ph": "pH", "do": "O2", "temperature": "temperature", "conductivity": "conductivity",
                   "turbidity": "turbidity", "tss": "tss", "n_nh4": "NH4", "n_no3": "NO3",
                   "cod": "cod", "bod5": "bod5", "p_po4": "p_po4"}}
EXTRA_MEASURANDS = {"cod": ("COD", "M1", "Chemical oxygen demand"), "bod5": ("BOD5", "M1", "Biochemical oxygen demand, 5 days"),
                    "p_po4": ("P-PO4", "M1", "Phosphate as P")}
AGGREGATES = ("avg", "min", "max", "sum", "totalCount")


class BadRequestData(errors.DomainError):
    status, type = 400, ERRORS + "BadRequestData"
    title, title_vi = "Bad request data", "Dữ liệu yêu cầu không hợp lệ"


class ResourceNotFound(errors.DomainError):
    status, type = 404, ERRORS + "ResourceNotFound"
    title, title_vi = "Resource not found", "Không tìm thấy thực thể"


class OperationNotSupported(errors.DomainError):
    """422: the NGSI-LD API's answer for an operation a broker does not offer (V1.6.1 OpenAPI,
    ``Unprocessable``: "It is used to indicate that the operation is not available")."""
    status, type = 422, ERRORS + "OperationNotSupported"
    title, title_vi = "Operation not supported", "Thao tác không được hỗ trợ"


class NotAcceptable(errors.DomainError):
    """406 for an Accept header none of our representations satisfies (RFC 9110 15.5.7: "the target
    resource does not have a current representation that would be acceptable to the user agent,
    according to the proactive negotiation header fields received in the request"). The platform's
    own problem type: NGSI-LD defines no error type for it (Table 5.5.2-1), and a URI under
    uri.etsi.org/ngsi-ld/errors/ would claim one it does not."""
    status, type = 406, "not-acceptable"
    title, title_vi = "Not acceptable", "Không có định dạng phù hợp"


def bad(param: str, message: str, message_vi: str | None = None) -> BadRequestData:
    """BadRequestData naming the query or path parameter ``param`` (``message_vi``: the detail in
    Vietnamese; without it the status's Vietnamese sentence stands)."""
    return BadRequestData(message, detail_vi=message_vi, errors=[errors.field(param, message, message_vi)])


# -- URIs (RFC 3986) -----------------------------------------------------------------------------
# An entity id is a URI (ETSI GS CIM 009 V1.9.1, 5.7.1.4 / 5.7.2.4 / 5.7.3.4: one that is not is
# BadRequestData). The grammar is RFC 3986 appendix A, ASCII only (an IRI's other characters are
# percent-encoded in a URI); its names are kept below. uritools (installed with pyHanko) only
# splits, so "urn:x y" would pass it: the check is ours.
_UNRESERVED = r"A-Za-z0-9\-._~"                                   # ALPHA / DIGIT / "-" / "." / "_" / "~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"                                          # pct-encoded
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_SEGMENT = rf"{_PCHAR}*"
_SEGMENT_NZ = rf"{_PCHAR}+"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"           # an IPv4address is one too, syntactically
# IP-literal = "[" ( IPv6address / IPvFuture ) "]"; the IPv6 address itself is checked by ipaddress
_IP_LITERAL = rf"\[(?:(?P<ipv6>[0-9A-Fa-f:.]+)|[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+)\]"
_URI = re.compile(rf"""
    [A-Za-z][A-Za-z0-9+\-.]*:                                         # scheme ":"
    (?: //(?:{_USERINFO}@)?(?:{_IP_LITERAL}|{_REG_NAME})(?::[0-9]*)?  # hier-part = "//" authority
           (?:/{_SEGMENT})*                                           #   path-abempty
      | /(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?                           # / path-absolute
      | {_SEGMENT_NZ}(?:/{_SEGMENT})*                                 # / path-rootless
      |                                                               # / path-empty
    )
    (?:\?(?:{_PCHAR}|[/?])*)?                                         # [ "?" query ]
    (?:\#(?:{_PCHAR}|[/?])*)?                                         # [ "#" fragment ]
    """, re.VERBOSE)


def is_uri(value: object) -> bool:
    """Whether ``value`` is a URI (RFC 3986 ``URI = scheme ":" hier-part [ "?" query ] [ "#"
    fragment ]``): ``urn:ngsi-ld:AirQualityObserved:abc`` and ``https://example.org/x`` are; ``abc``
    (no scheme), ``""``, ``" urn:x"`` and ``"urn:x y"`` (whitespace) are not, nor anything with a
    control character, a non-ASCII character or a ``%`` not followed by two hex digits."""
    if not isinstance(value, str):
        return False
    m = _URI.fullmatch(value)       # fullmatch: no "$" letting a final newline through
    if not m:
        return False
    if m.group("ipv6") is not None:
        try:
            ipaddress.IPv6Address(m.group("ipv6"))
        except ValueError:
            return False
    return True


def entity_id(station: dict) -> str:
    return f"urn:ngsi-ld:{TYPES[station['kind']]}:{station['id']}"


_URN_NID = re.compile(r"(?i:urn:ngsi-ld):")


def canonical_id(entity: str) -> str:
    """An entity id as we issue it: RFC 8141 (2.1, 3.1) makes a URN's ``urn`` scheme and namespace
    id case-insensitive (its namespace-specific part is not), so ``URN:NGSI-LD:AirQualityObserved:x``
    is the same entity as ``urn:ngsi-ld:AirQualityObserved:x``, which CIM 009 5.7.1.4 asks us to
    find ("equivalent" id)."""
    m = _URN_NID.match(entity)
    return "urn:ngsi-ld:" + entity[m.end():] if m else entity


def not_found(entity: str) -> ResourceNotFound:
    """ResourceNotFound naming ``id``: a URI that no entity of this broker has (5.7.1.4)."""
    return ResourceNotFound(f"no entity {str(entity)[:80]!r}", errors=[errors.field("id", "not an entity of this broker")])


def station_of(entity: str) -> tuple[str, str]:
    """(type, station id) of an entity id: BadRequestData naming ``id`` when it is not a URI at
    all (5.7.1.4, 5.7.3.4), ResourceNotFound when it is a URI but not one of ours."""
    if not is_uri(entity):
        raise bad("id", f"the entity id {str(entity)[:80]!r} is not a URI (RFC 3986), e.g. urn:ngsi-ld:AirQualityObserved:<station>",
                  f"Mã thực thể {str(entity)[:80]!r} không phải là một URI (RFC 3986), ví dụ urn:ngsi-ld:AirQualityObserved:<trạm>.")
    m = re.fullmatch(r"urn:ngsi-ld:(AirQualityObserved|NoiseLevelObserved|WaterQualityObserved):([a-z0-9-]{3,64})",
                     canonical_id(entity))
    if not m:
        raise not_found(entity)
    return m.group(1), m.group(2)


def _stamp(t: datetime) -> str:
    return statemachine.iso(t, "auto")


def key_values(station: dict, latest: tuple[datetime, dict] | None, aqi_result: dict | None = None) -> dict:
    """The entity in ``keyValues`` form (what the Smart Data Models schemas validate)."""
    e = {"id": entity_id(station), "type": TYPES[station["kind"]], "name": station["name"],
         "location": {"type": "Point", "coordinates": [station["lon"], station["lat"]]},
         "areaServed": station.get("commune") or station["unit"], "dataProvider": "Lạng Sơn Cloud (environment)",
         "source": "https://langson.gov.vn/environment"}
    if latest is None:
        return e
    end, summary = latest
    start = end - timedelta(hours=1)
    values = {ATTRS[station["kind"]][p]: round(s["mean"], 3) for p, s in summary.items() if s.get("n")}
    if station["kind"] == "noise":
        e.update(dateObservedFrom=_stamp(start), dateObservedTo=_stamp(end), dateObserved=f"{_stamp(start)}/{_stamp(end)}")
    else:
        e["dateObserved"] = _stamp(end)
    if station["kind"] == "water":
        for p, (name, unit, what) in EXTRA_MEASURANDS.items():
            if p in values:
                e.setdefault("measurand", []).append(f"{name}, {values.pop(p)}, {unit}, {what}")
    e.update(values)
    if station["kind"] == "air":
        e["typeofLocation"] = "outdoor"
        if aqi_result and aqi_result.get("aqi") is not None:
            e["airQualityIndex"] = aqi_result["aqi"]
            e["airQualityLevel"] = aqi_result["level"]["key"]
    return e


def observed_at(kv: dict) -> str | None:
    """When a keyValues entity's values were observed, a DateTime as 4.8 asks of ``observedAt``: the
    hour's end. A noise station's ``dateObserved`` is the Smart Data Model's ISO 8601 interval
    ``start/end``, not a DateTime; its end, ``dateObservedTo``, is the instant the temporal
    representation gives the same hour."""
    return kv.get("dateObservedTo") or kv.get("dateObserved")


def normalized(kv: dict, observed_at: str | None) -> dict:
    """The same entity in normalized form (Property / GeoProperty / Relationship)."""
    out = {"id": kv["id"], "type": kv["type"]}
    for k, v in kv.items():
        if k in ("id", "type"):
            continue
        if k == "location":
            out[k] = {"type": "GeoProperty", "value": v}
        else:
            prop = {"type": "Property", "value": v}
            if observed_at and isinstance(v, (int, float)):
                prop["observedAt"] = observed_at
            out[k] = prop
    return out


def concise(kv: dict, observed_at: str | None) -> dict:
    """The same entity in concise form (V1.6.1 6.3.7: "a concise lossless representation of
    Entities shall be provided [...] for example removing all Attribute "type" members"). 4.5.2.3:
    "An NGSI-LD Property without sub-attributes shall be represented [...] by a member whose key is
    the Property name (a term) and whose value is the Property Value"; a measured value keeps its
    ``observedAt`` in an object with ``value``. The location stays ``{"value": <GeoJSON>}``: a bare
    object with a "type" would be read as normalized, and from ``value`` "the "GeoProperty"
    sub-type shall be inferred [...] if the Property Value resolves to a supported GeoJSON geometry"."""
    out = {"id": kv["id"], "type": kv["type"]}
    for k, v in kv.items():
        if k in ("id", "type"):
            continue
        if isinstance(v, dict):
            out[k] = {"value": v}
        elif observed_at and isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = {"value": v, "observedAt": observed_at}
        else:
            out[k] = v
    return out


# -- q -------------------------------------------------------------------------------------------

def parse_q(q: str):
    """``q`` read by the NGSI-LD Query Language (clause 4.9, :mod:`.ngsi_query`); BadRequestData
    naming ``q`` when the grammar does not produce it."""
    try:
        return ngsi_query.parse(q, is_uri)
    except ngsi_query.Malformed as e:
        raise bad("q", e.message, e.message_vi) from None


matches = ngsi_query.matches


# -- geo -----------------------------------------------------------------------------------------

def parse_near(georel: str, geometry: str | None, coordinates: str | None) -> tuple[float, float, str, float]:
    """``georel=near;maxDistance==2000`` with ``geometry=Point`` and ``coordinates=[lon,lat]`` →
    (lon, lat, "max" | "min", metres)."""
    m = re.fullmatch(r"near;(max|min)Distance==([0-9]+(?:\.[0-9]+)?)", georel or "")
    if not m:
        raise bad("georel", "supported: near;maxDistance==<metres> or near;minDistance==<metres>",
                  "Chỉ hỗ trợ near;maxDistance==<số mét> hoặc near;minDistance==<số mét>.")
    if geometry != "Point":
        raise bad("geometry", "near needs geometry=Point", "near cần có geometry=Point.")
    try:
        lon, lat = [float(x) for x in (coordinates or "").strip("[] ").split(",")]
    except ValueError:
        raise bad("coordinates", "coordinates must be [longitude,latitude]", "coordinates phải có dạng [kinh độ,vĩ độ].") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise bad("coordinates", "coordinates out of range", "Tọa độ nằm ngoài phạm vi cho phép.")
    return lon, lat, m.group(1), float(m.group(2))


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius 6,371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


# -- temporal ------------------------------------------------------------------------------------

def parse_duration_hours(value: str | None) -> int | None:
    """``PT1H`` / ``PT6H`` / ``P1D`` as hours (None: the whole interval)."""
    if not value:
        return None
    m = re.fullmatch(r"P(?:(\d{1,3})D)?(?:T(\d{1,4})H)?", value)
    if not m or not any(m.groups()):
        raise bad("aggrPeriodDuration", "supported: whole hours or days, e.g. PT1H, PT6H, P1D",
                  "Chỉ hỗ trợ số giờ hoặc số ngày tròn, ví dụ PT1H, PT6H, P1D.")
    hours = int(m.group(1) or 0) * 24 + int(m.group(2) or 0)
    if hours < 1:
        raise bad("aggrPeriodDuration", "the period must be at least one hour", "Mỗi khoảng phải dài ít nhất một giờ.")
    return hours


def aggregate(summaries: list[dict], method: str, energy: bool) -> float | int | None:
    """One aggregate over hourly summaries (each ``n``, ``mean``, ``min``, ``max``)."""
    rows = [s for s in summaries if s.get("n")]
    if not rows:
        return None
    n = sum(s["n"] for s in rows)
    if method == "totalCount":
        return n
    if method == "max":
        return max(s["max"] for s in rows)
    if method == "min":
        return min(s["min"] for s in rows)
    if method == "avg":
        if energy:
            return round(10 * math.log10(sum(10 ** (s["mean"] / 10) * s["n"] for s in rows) / n), 3)
        return round(sum(s["mean"] * s["n"] for s in rows) / n, 4)
    if method == "sum":
        return round(sum(s["mean"] * s["n"] for s in rows), 4)
    raise bad("aggrMethods", f"{method} is not supported (supported: {', '.join(AGGREGATES)})",
              f"Không hỗ trợ {method} (chỉ hỗ trợ: {', '.join(AGGREGATES)}).")


def temporal(station: dict, series: dict[str, dict], start: datetime, end: datetime, attrs: list[str] | None,
             methods: list[str] | None, period_h: int | None, simplified: bool, last_n: int | None = None) -> dict:
    """The temporal representation of the station's hourly summaries between ``start`` and ``end``.

    ``last_n`` (the ``lastN`` parameter): "Only the last n instances, per Attribute, per Entity
    (under the specified time interval) shall be retrieved", i.e. those of "the last n timestamps
    (in descending ordering)" (5.7.3.4): the n most recent, listed oldest first as every temporal
    answer here is; aggregated, the n most recent periods of each method."""
    names = ATTRS[station["kind"]]
    wanted = [p for p, a in names.items() if attrs is None or a in attrs]
    out: dict = {"id": entity_id(station), "type": TYPES[station["kind"]]}
    hours = sorted((clock.parse_hour_key(h), s) for h, s in series.items())
    if methods:
        step = timedelta(hours=period_h or max(1, int((end - start).total_seconds() // 3600)))
        periods = max(1, math.ceil((end - start) / step))
        buckets: list[list[dict]] = [[] for _ in range(periods)]
        for t, s in hours:
            i = math.ceil((t - start) / step) - 1          # (start + i·step, start + (i+1)·step]
            if 0 <= i < periods:
                buckets[i].append(s)
        for p in wanted:
            prop: dict = {"type": "Property"}
            for i, rows in enumerate(buckets):
                rows = [r[p] for r in rows if p in r]
                lo, hi = start + i * step, min(end, start + (i + 1) * step)
                for m in methods:
                    v = aggregate(rows, m, energy=(p == "laeq"))
                    if v is not None:
                        prop.setdefault(m, []).append([v, _stamp(lo), _stamp(hi)])
            if last_n:
                prop.update({m: prop[m][-last_n:] for m in methods if m in prop})
            if len(prop) > 1:
                out[names[p]] = prop
        return out
    for p in wanted:
        points = [(round(s[p]["mean"], 4), _stamp(t)) for t, s in hours if p in s and s[p].get("n")]
        if last_n:
            points = points[-last_n:]
        if not points:
            continue
        out[names[p]] = ({"type": "Property", "values": [[v, t] for v, t in points]} if simplified
                         else [{"type": "Property", "value": v, "observedAt": t} for v, t in points])
    return out


def noise_assessment(station: dict, end: datetime, summary: dict) -> dict | None:
    s = summary.get("laeq")
    return noise.assess(station.get("zone", "ordinary"), end.astimezone(clock.TZ).hour,
                        s["mean"] if s and s.get("n") else None)
