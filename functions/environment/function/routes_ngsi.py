"""NGSI-LD (ETSI GS CIM 009) for the outside world: entities and their temporal evolution.

Errors here are NGSI-LD's problem types (``https://uri.etsi.org/ngsi-ld/errors/BadRequestData`` …),
also for a query parameter the runtime refuses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, g, jsonify, request

from lscloud import query
from lscloud.auth import allow
from lscloud.problems import problem_response
from lscloud.web import query_params, responds

from . import clock, ngsi, reports, stations, storage
from .route_ids import ENTITY_ID

bp = Blueprint("ngsi", __name__, url_prefix="/ngsi-ld/v1")
LD_JSON = "application/ld+json"
MAX_DAYS = 366
TIME = {"type": "string", "format": "date-time"}
OPTIONS = {"type": "string", "pattern": r"^[A-Za-z,]{0,80}$"}


@bp.errorhandler(query.InvalidQuery)
def _bad_query(exc: query.InvalidQuery):
    return problem_response(ngsi.BadRequestData("; ".join(e["message"] for e in exc.errors), errors=exc.errors).to_problem())


def _answer(body, **headers):
    """JSON-LD with the @context in the body when asked for (Accept: application/ld+json), else JSON
    with the context in a Link header, as the specification does."""
    ld = LD_JSON in (request.headers.get("Accept") or "")
    if ld:
        if isinstance(body, list):
            body = [{**e, "@context": ngsi.CONTEXT} for e in body]
        else:
            body = {**body, "@context": ngsi.CONTEXT}
    resp = jsonify(body)
    if ld:
        resp.mimetype = LD_JSON
    else:
        resp.headers["Link"] = f'<{ngsi.CONTEXT[0]}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    resp.headers.update(headers)
    return resp


def _options() -> set[str]:
    return {o for o in (g.query.get("options") or "").split(",") if o}


def _entity(station: dict, now: datetime, key_values: bool) -> dict:
    latest = reports.latest(station, now)
    r = None
    if latest and station["kind"] == "air":
        item = reports.hourly(station, latest[0] - timedelta(minutes=1), latest[0])[-1]
        r = {"aqi": item.get("aqi"), "level": item.get("level")}
    kv = ngsi.key_values(station, latest, r)
    return kv if key_values else ngsi.normalized(kv, kv.get("dateObserved") if latest else None)


def _station(entity_id: str) -> dict:
    """The station an entity id in the path names: BadRequestData (``id``) when the id is not a URI,
    ResourceNotFound when it is one but names none of our stations (5.7.1.4, 5.7.3.4)."""
    kind_type, station_id = ngsi.station_of(entity_id)
    try:
        station = stations.get(station_id)
    except stations.NoSuchStation:
        raise ngsi.not_found(entity_id) from None
    if ngsi.TYPES[station["kind"]] != kind_type:
        raise ngsi.not_found(entity_id)
    return station


@bp.get("/entities")
@allow("public")
@responds(None)
@query_params(("type", "AirQualityObserved, NoiseLevelObserved or WaterQualityObserved (comma-separated)", {"type": "string", "maxLength": 100}),
              ("id", "Only these entities: their ids, URIs (comma-separated)", {"type": "string", "maxLength": 2000}),
              ("q", "Attribute filter: attr op value, joined by ; (and) and | (or)", {"type": "string", "maxLength": 200}),
              ("georel", "near;maxDistance==<metres> (or minDistance)", {"type": "string", "maxLength": 60}),
              ("geometry", "Point", {"type": "string", "maxLength": 20}),
              ("coordinates", "[longitude,latitude]", {"type": "string", "maxLength": 60}),
              ("options", "keyValues (simplified form), count", OPTIONS),
              ("count", "true: the total in NGSILD-Results-Count", {"type": "boolean", "default": False}),
              ("limit", "Page size (default 20, at most 100)", {"type": "integer", "minimum": 0, "maximum": 100, "default": 20}),
              ("offset", "Skip this many", {"type": "integer", "minimum": 0, "maximum": 100000, "default": 0}))
def entities():
    """Stations as NGSI-LD entities (their latest hour), filtered by type, id, q and georel=near."""
    ids = g.query["id"].split(",") if g.query["id"] else None
    for i in ids or []:
        if not ngsi.is_uri(i):      # 5.7.2.4: a list of entity ids with one that is not a URI
            raise ngsi.bad("id", f"{i[:80]!r} is not a URI (RFC 3986): id is a comma-separated list of entity ids",
                           f"{i[:80]!r} không phải là một URI (RFC 3986): id là danh sách mã thực thể, cách nhau bằng dấu phẩy.")
    types = [t for t in (g.query["type"] or "").split(",") if t]
    if not types and not g.query["q"] and not g.query["georel"]:
        raise ngsi.bad("type", "a query needs type, q or georel (NGSI-LD 5.7.2)")
    unknown = [t for t in types if t not in ngsi.KIND_OF]
    if unknown:
        raise ngsi.bad("type", f"this broker holds AirQualityObserved, NoiseLevelObserved and WaterQualityObserved, not {unknown[0][:40]}")
    groups = ngsi.parse_q(g.query["q"]) if g.query["q"] else None
    near = ngsi.parse_near(g.query["georel"], g.query["geometry"], g.query["coordinates"]) if g.query["georel"] else None
    kinds = {ngsi.KIND_OF[t] for t in types} or set(ngsi.TYPES)
    found = sorted((s for s in stations.all_stations() if s["kind"] in kinds), key=lambda s: s["id"])
    if ids is not None:
        wanted = {ngsi.canonical_id(i) for i in ids}
        found = [s for s in found if ngsi.entity_id(s) in wanted]
    if near:
        lon, lat, which, metres = near
        found = [s for s in found if (ngsi.distance_m(lon, lat, s["lon"], s["lat"]) <= metres) == (which == "max")]
    now = datetime.now(timezone.utc)
    key_values = "keyValues" in _options()
    if groups is not None:
        kvs = [_entity(s, now, True) for s in found]
        found = [s for s, kv in zip(found, kvs) if ngsi.matches(kv, groups)]
    total = len(found)
    page = found[g.query["offset"]:g.query["offset"] + g.query["limit"]]
    body = [_entity(s, now, key_values) for s in page]
    headers = {"NGSILD-Results-Count": str(total)} if g.query["count"] or "count" in _options() else {}
    return _answer(body, **headers)


@bp.get(f"/entities/<{ENTITY_ID}>")
@allow("public")
@responds(None)
@query_params(("options", "keyValues", OPTIONS), ("attrs", "Only these attributes (comma-separated)", {"type": "string", "maxLength": 200}))
def entity(entity_id: str):
    """One station as an NGSI-LD entity."""
    station = _station(entity_id)
    e = _entity(station, datetime.now(timezone.utc), "keyValues" in _options())
    if g.query["attrs"]:
        keep = set(g.query["attrs"].split(",")) | {"id", "type"}
        e = {k: v for k, v in e.items() if k in keep}
    return _answer(e)


@bp.get(f"/temporal/entities/<{ENTITY_ID}>")
@allow("public")
@responds(None)
@query_params(("timerel", "before, after or between", {"type": "string", "enum": ["before", "after", "between"]}),
              ("timeAt", "ISO 8601 with offset", TIME), ("endTimeAt", "with between", TIME),
              ("attrs", "Only these attributes (comma-separated)", {"type": "string", "maxLength": 200}),
              ("aggrMethods", "avg, min, max, sum, totalCount (comma-separated)", {"type": "string", "maxLength": 80}),
              ("aggrPeriodDuration", "PT1H, PT6H, P1D …", {"type": "string", "maxLength": 20}),
              ("options", "temporalValues (simplified form), aggregatedValues", OPTIONS))
def temporal(entity_id: str):
    """The station's hourly values over time, or their aggregates per period."""
    station = _station(entity_id)
    q, now = g.query, datetime.now(timezone.utc)
    if not q["timerel"] or not q["timeAt"]:
        raise ngsi.bad("timerel", "timerel and timeAt are required")
    if q["timerel"] == "between":
        if not q["endTimeAt"]:
            raise ngsi.bad("endTimeAt", "between needs endTimeAt")
        start, end = q["timeAt"], q["endTimeAt"]
    elif q["timerel"] == "after":
        start, end = q["timeAt"], now
    else:
        start, end = q["timeAt"] - timedelta(days=30), q["timeAt"]
    if end <= start:
        raise ngsi.bad("endTimeAt", "endTimeAt must be after timeAt")
    if end - start > timedelta(days=MAX_DAYS):
        raise ngsi.bad("endTimeAt", f"at most {MAX_DAYS} days per query")
    methods = [m for m in (q["aggrMethods"] or "").split(",") if m] or None
    for m in methods or []:
        if m not in ngsi.AGGREGATES:
            raise ngsi.bad("aggrMethods", f"{m[:20]} is not supported (supported: {', '.join(ngsi.AGGREGATES)})")
    period = ngsi.parse_duration_hours(q["aggrPeriodDuration"])
    series = storage.hourly_series(station["id"], clock.hour_end(start), clock.hour_end(end))
    series = {h: s for h, s in series.items() if start < clock.parse_hour_key(h) <= end}
    attrs = q["attrs"].split(",") if q["attrs"] else None
    return _answer(ngsi.temporal(station, series, start, end, attrs, methods, period, "temporalValues" in _options()))


