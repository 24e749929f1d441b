"""NGSI-LD (ETSI GS CIM 009) for the outside world: entities and their temporal evolution.

Errors here are NGSI-LD's problem types (``https://uri.etsi.org/ngsi-ld/errors/BadRequestData`` …),
also for a query parameter the runtime refuses, and for any other path or method under
``/ngsi-ld/v1/`` (OperationNotSupported, ResourceNotFound: :func:`.ngsi_request.unsupported`); the
406 excepted, for which NGSI-LD defines none (:class:`.ngsi.NotAcceptable`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from lscloud import errors, query
from lscloud.auth import allow
from lscloud.problems import problem_response
from lscloud.web import query_params, responds

from . import clock, ngsi, ngsi_request, reports, stations, storage
from .route_ids import ENTITY_ID

bp = Blueprint("ngsi", __name__, url_prefix="/ngsi-ld/v1")
JSON, LD_JSON = "application/json", "application/ld+json"
MAX_DAYS = 366
TIME = {"type": "string", "format": "date-time"}
OPTIONS = {"type": "string", "pattern": r"^[A-Za-z,]{0,80}$"}
REPRESENTATION = "normalized (default), concise, keyValues or simplified (its synonym); count"
ATTRS = ("attrs", "Only entities with any of these attributes, and only those (comma-separated names or URIs)",
         {"type": "string", "maxLength": 600})


@bp.errorhandler(query.InvalidQuery)
def _bad_query(exc: query.InvalidQuery):
    return problem_response(ngsi.BadRequestData("; ".join(e["message"] for e in exc.errors), errors=exc.errors,
                                                detail_vi=" ".join(e.get("message_vi", "") for e in exc.errors).strip()
                                                or None).to_problem())


def _media() -> str:
    """The media type to answer in, negotiated from Accept with its q-values (RFC 9110 12.5.1): JSON
    or JSON-LD; no Accept header is any. GeoJSON ("If the Accept Header is set to
    "application/geo+json" the response will be in simplified GeoJSON format") is not offered, so
    it, like any other type we do not serve, is 406 (the platform's problem type: NGSI-LD has none for
    it), not JSON regardless."""
    accept = request.accept_mimetypes
    if not accept:
        return JSON
    best = accept.best_match((JSON, LD_JSON))
    if best is None:
        raise ngsi.NotAcceptable(f"this broker answers in {JSON} or {LD_JSON}, none of which Accept allows",
                                 detail_vi=f"Hệ thống chỉ trả lời dạng {JSON} hoặc {LD_JSON}; tiêu đề Accept không chấp nhận dạng nào.",
                                 errors=[errors.field("Accept", f"allows neither {JSON} nor {LD_JSON}")])
    return best


def _answer(body, media: str, **headers):
    """JSON-LD with the @context in the body when negotiated (:func:`_media`), else JSON with the
    context in a Link header, as the specification does."""
    ld = media == LD_JSON
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
    resp.vary.add("Accept")
    resp.headers.update(headers)
    return resp


def _options() -> set[str]:
    return ngsi_request.options(g.query.get("options"))


def _entity(station: dict, now: datetime, form: str) -> dict:
    """The station as an entity in ``form``: ``keyValues``, ``concise`` or ``normalized``."""
    return _shape(_read(station, now), form)


def _read(station: dict, now: datetime) -> tuple[dict, str | None]:
    """The station's latest ended hour as keyValues, and when it was observed (None: no reading yet): the
    store reads of an entity, made once whatever shape it is answered in."""
    latest = reports.latest(station, now)
    r = None
    if latest and station["kind"] == "air":
        item = reports.hourly(station, latest[0] - timedelta(minutes=1), latest[0])[-1]
        r = {"aqi": item.get("aqi"), "level": item.get("level")}
    kv = ngsi.key_values(station, latest, r)
    return kv, ngsi.observed_at(kv) if latest else None


def _shape(read: tuple[dict, str | None], form: str) -> dict:
    kv, observed = read
    if form == "keyValues":
        return kv
    return (ngsi.concise if form == "concise" else ngsi.normalized)(kv, observed)


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
@responds("environment/ngsi-entity-list.json", media={LD_JSON: "environment/ngsi-entity-list.json"},
          headers={"Link": "application/json: the @context (application/ld+json has it in the body)",
                   "NGSILD-Results-Count": "with count=true: the entities matched over all pages"})
@query_params(("type", "Entity types: AirQualityObserved, NoiseLevelObserved, WaterQualityObserved (or their URIs); "
                       ", or | for or, ; for and, parentheses (NGSI-LD 4.17)", {"type": "string", "maxLength": 600}),
              ("id", "Only these entities: their ids, URIs (comma-separated)", {"type": "string", "maxLength": 2000}),
              ATTRS,
              ("q", ("NGSI-LD Query Language (4.9): attr (exists), attr op value (== != > >= < <= ~= !~=), "
                     "ranges a..b and lists a,b with == and !=, attr.observedAt, ; (and) | (or) and parentheses; "
                     "date-times compare as instants"), {"type": "string", "maxLength": 200}),
              ("georel", "near;maxDistance==<metres> (or minDistance)", {"type": "string", "maxLength": 60}),
              ("geometry", "Point", {"type": "string", "maxLength": 20}),
              ("coordinates", "[longitude,latitude]", {"type": "string", "maxLength": 60}),
              ("options", REPRESENTATION, OPTIONS),
              ("count", "true: the total in NGSILD-Results-Count", {"type": "boolean", "default": False}),
              ("limit", "Page size (default 20, at most 100)", {"type": "integer", "minimum": 0, "maximum": 100, "default": 20}),
              ("offset", "Skip this many", {"type": "integer", "minimum": 0, "maximum": 100000, "default": 0}))
def entities():
    """Stations as NGSI-LD entities (their latest hour), filtered by type, id, attrs, q and georel=near."""
    media, q = _media(), g.query
    ids = q["id"].split(",") if q["id"] else None
    for i in ids or []:
        if not ngsi.is_uri(i):      # 5.7.2.4: a list of entity ids with one that is not a URI
            raise ngsi.bad("id", f"{i[:80]!r} is not a URI (RFC 3986): id is a comma-separated list of entity ids",
                           f"{i[:80]!r} không phải là một URI (RFC 3986): id là danh sách mã thực thể, cách nhau bằng dấu phẩy.")
    kinds = ngsi_request.type_kinds(q["type"]) if q["type"] else None
    attrs = ngsi_request.attr_names(q["attrs"]) if q["attrs"] else None
    if kinds is None and attrs is None and not q["q"] and not q["georel"]:
        raise ngsi.bad("type", "a query needs type, attrs, q or georel (NGSI-LD 5.7.2)",
                       "Truy vấn cần có ít nhất một trong type, attrs, q hoặc georel (NGSI-LD 5.7.2).")
    groups = ngsi.parse_q(q["q"]) if q["q"] else None
    near = ngsi.parse_near(q["georel"], q["geometry"], q["coordinates"]) if q["georel"] else None
    kinds = set(ngsi.TYPES) if kinds is None else kinds
    found = sorted((s for s in stations.all_stations() if s["kind"] in kinds), key=lambda s: s["id"])
    if ids is not None:
        wanted = {ngsi.canonical_id(i) for i in ids}
        found = [s for s in found if ngsi.entity_id(s) in wanted]
    if near:
        lon, lat, which, metres = near
        found = [s for s in found if (ngsi.distance_m(lon, lat, s["lon"], s["lat"]) <= metres) == (which == "max")]
    now = reports.now()
    read: dict[str, tuple] = {}   # station id -> its reads: a filter's are the page's too
    if groups is not None or attrs is not None:
        read = {s["id"]: _read(s, now) for s in found}
        # q is evaluated on the normalized form: its paths reach sub-attributes (pm25.observedAt)
        found = [s for s in found if (groups is None or ngsi.matches(ngsi.normalized(*read[s["id"]]), groups))
                 and (attrs is None or ngsi_request.project(read[s["id"]][0], attrs) is not None)]
    total = len(found)
    page = found[q["offset"]:q["offset"] + q["limit"]]
    form = ngsi_request.representation(_options())
    body = [_shape(read.get(s["id"]) or _read(s, now), form) for s in page]
    if attrs is not None:
        body = [ngsi_request.project(e, attrs) for e in body]
    headers = {"NGSILD-Results-Count": str(total)} if q["count"] or "count" in _options() else {}
    return _answer(body, media, **headers)


@bp.get(f"/entities/<{ENTITY_ID}>")
@allow("public")
@responds("environment/ngsi-entity.json", media={LD_JSON: "environment/ngsi-entity.json"},
          headers={"Link": "application/json: the @context (application/ld+json has it in the body)"})
@query_params(("options", REPRESENTATION, OPTIONS), ATTRS)
def entity(entity_id: str):
    """One station as an NGSI-LD entity; with ``attrs``, only those of its attributes (404 when it
    has none of them)."""
    media = _media()
    station = _station(entity_id)
    e = _entity(station, reports.now(), ngsi_request.representation(_options()))
    if g.query["attrs"]:
        names = ngsi_request.attr_names(g.query["attrs"])
        e = ngsi_request.project(e, names)
        if e is None:
            raise ngsi_request.no_such_attributes(entity_id, names)
    return _answer(e, media)


@bp.get(f"/temporal/entities/<{ENTITY_ID}>")
@allow("public")
@responds("environment/ngsi-temporal-entity.json", media={LD_JSON: "environment/ngsi-temporal-entity.json"},
          headers={"Link": "application/json: the @context (application/ld+json has it in the body)"})
@query_params(("timerel", "before, after or between", {"type": "string", "enum": ["before", "after", "between"]}),
              ("timeAt", "ISO 8601 with offset", TIME),
              ("endTimeAt", (f"with between; at most {MAX_DAYS} days after timeAt. An answer holds at most "
                             f"{ngsi_request.MAX_INSTANCES} instances per attribute ({ngsi_request.MAX_INSTANCES // 24} "
                             "days of hourly values): a longer window needs lastN or aggrMethods (else 403 TooManyResults)"), TIME),
              ("attrs", "Only these attributes (comma-separated names or URIs)", {"type": "string", "maxLength": 600}),
              ("lastN", "Only the last n instances per attribute (the most recent, oldest first)",
               {"type": "integer", "minimum": 1, "maximum": 100000}),
              ("aggrMethods", "avg, min, max, sum, totalCount (comma-separated)", {"type": "string", "maxLength": 80}),
              ("aggrPeriodDuration", "PT1H, PT6H, P1D …", {"type": "string", "maxLength": 20}),
              ("options", "temporalValues (simplified form), aggregatedValues", OPTIONS))
def temporal(entity_id: str):
    """The station's hourly values over time, or their aggregates per period."""
    media = _media()
    station = _station(entity_id)
    q, now = g.query, reports.now()
    if not q["timerel"] or not q["timeAt"]:
        raise ngsi.bad("timerel", "timerel and timeAt are required", "Cần có cả timerel và timeAt.")
    if q["timerel"] == "between":
        if not q["endTimeAt"]:
            raise ngsi.bad("endTimeAt", "between needs endTimeAt", "timerel=between cần có endTimeAt.")
        start, end = q["timeAt"], q["endTimeAt"]
    elif q["timerel"] == "after":
        start, end = q["timeAt"], now
    else:
        start, end = q["timeAt"] - timedelta(days=30), q["timeAt"]
    if end <= start:
        raise ngsi.bad("endTimeAt", "endTimeAt must be after timeAt", "endTimeAt phải sau timeAt.")
    if end - start > timedelta(days=MAX_DAYS):
        raise ngsi.bad("endTimeAt", f"at most {MAX_DAYS} days per query", f"Mỗi truy vấn tối đa {MAX_DAYS} ngày.")
    methods = [m for m in (q["aggrMethods"] or "").split(",") if m] or None
    for m in methods or []:
        if m not in ngsi.AGGREGATES:
            raise ngsi.bad("aggrMethods", f"{m[:20]} is not supported (supported: {', '.join(ngsi.AGGREGATES)})",
                           f"Không hỗ trợ {m[:20]} (chỉ hỗ trợ: {', '.join(ngsi.AGGREGATES)}).")
    period = ngsi.parse_duration_hours(q["aggrPeriodDuration"])
    attrs = ngsi_request.attr_names(q["attrs"]) if q["attrs"] else None
    if attrs is not None and not attrs & set(ngsi.ATTRS[station["kind"]].values()):
        raise ngsi_request.no_such_attributes(entity_id, attrs)
    ngsi_request.bound_instances(start, end, period, methods is not None, q["lastN"],
                                 "endTimeAt" if q["timerel"] == "between" else "timeAt")
    settled = storage.settled_before(now.astimezone(clock.TZ).date(), current_app.config["ENVIRONMENT"].max_late_days)
    series = storage.hourly_series(station["id"], clock.hour_end(start), clock.hour_end(end), settled)
    # hours that have ended only (:mod:`.reports`): a window reaching past now stops at the last one
    last = min(end, reports.last_ended(now))
    series = {h: s for h, s in series.items() if start < clock.parse_hour_key(h) <= last}
    return _answer(ngsi.temporal(station, series, start, end, attrs, methods, period, "temporalValues" in _options(),
                                 q["lastN"]), media)


@bp.before_app_request
def _elsewhere():
    """Every other path and method under /ngsi-ld/v1/ in NGSI-LD's problem types, not the router's
    404 and 405 (:func:`.ngsi_request.unsupported`). A hook rather than a catch-all route: a route
    would document a multi-segment path parameter, which no gateway rule describes. The runtime's
    own body check runs first, so a write with a body that is not JSON still meets its 415."""
    if isinstance(request.routing_exception, (NotFound, MethodNotAllowed)) \
            and (request.path + "/").startswith(bp.url_prefix + "/"):
        raise ngsi_request.unsupported(request.method, request.path[len(bp.url_prefix) + 1:])
