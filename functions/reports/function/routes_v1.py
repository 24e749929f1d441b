"""The province's JSON API for the citizen app and the agencies (problem+json errors, OpenAPI)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from flask import Blueprint, current_app, g, jsonify, request

from lscloud import errors, idempotency, images, pseudonyms, store
from lscloud.aggregate import Outcome
from lscloud.auth import allow, principal
from lscloud.idempotency import IMPLICIT_S, idempotent
from lscloud.ratelimit import caller_subject
from lscloud.statemachine import Actor, iso, now, parse_iso
from lscloud.workdays import local_day
from lscloud.context import app_state
from lscloud.web import (before_body, blob_response, body_limit, page_params, query_params, query_schema, raw_body,
                         responds, validate_body)
from lscloud.web.caching import cached_json

from . import agencies, apikeys, catalog, lists, photos, queries, reports, views

bp = Blueprint("reports_v1", __name__)

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
SERVICE_CODE = query_schema(SCHEMAS_DIR, "reports/service-code.json")
"""A service type's code as the catalog and the report body name it (the nearby lookup's filter)."""


class CitizensOnly(errors.Forbidden):
    type = "citizens-only"

HANDLERS = ("officer", "commune-officer")
READERS = ("ioc", "operator", "auditor", "supervisor", "officer", "commune-officer")
REPORT_ID = 'schema("reports/report-id.json"):report_id'
"""The route argument of a report's id, as it is issued (:mod:`lscloud.web.pathparams`): another shape
names no report, the router's not-found as an unknown id's."""
ACTION = 'schema("reports/action-name.json"):action'
"""The route argument of a move, one of the state machine's (``schemas/reports/action-name.json``)."""
KEY_ID = 'schema("reports/api-key-id.json"):key_id'
"""The route argument of an API key's id, as it is issued; another shape names no key."""


def _actor() -> Actor:
    return Actor.of(principal())


ID_TRIES = 8
"""Ids a request's report tries in turn, each past one that holds another report."""


def received(submit: Callable[[datetime, str, dict], Outcome]) -> tuple[Outcome, bool]:
    """Receive a report once however often its request runs (``submit(at, id, stamp)``); True when
    it was received before.

    The ``idempotent`` lease runs a request once, but gives its key back when a run is cut off (a
    5xx: a process that died, a store that failed), and the client's retry runs it again. The
    report's id derives from the request's idempotency stamp (its Idempotency-Key, or the request
    itself when the client sends none), so that retry reaches the report the cut run stored, which
    answers it as the first time, its audit entry, indexes and event finished
    (:meth:`lscloud.aggregate.Aggregate.resend`). The next id is tried when one holds another
    report: another request's, or, for a request without a key, this same request sent more than
    IMPLICIT_S before (two such sendings are two reports, as the lease has them)."""
    key = request.headers.get(idempotency.HEADER)
    stamp, at, agg = idempotency.first_request(), now(), reports.records()
    since = at - timedelta(seconds=IMPLICIT_S)

    def mine(rid: str) -> Callable:
        def find(judge):
            found = agg.resend(rid, judge)
            return found if found is not None and (key or parse_iso(found.doc["requested_at"]) >= since) else None
        return find

    tags = [pseudonyms.digest("reports-id", f"{stamp['scope']}\n{n}").hex()[:8] for n in range(ID_TRIES)]
    if local_day(iso(since)) != local_day(iso(at)):   # a retry just after midnight: its report has yesterday's id
        for found in (mine(reports.new_id(since, tag))(idempotency.resent) for tag in tags):
            if found is not None:
                return found, True
    refused = None
    for tag in tags:
        rid = reports.new_id(at, tag)
        try:
            return idempotency.created_or_resent(lambda: submit(at, rid, stamp), mine(rid))
        except errors.Conflict as exc:   # the id holds another report
            refused = exc
    raise refused


def _view(doc: dict, trail: list | None = None) -> dict:
    actor = _actor()
    if reports.is_reporter(doc, actor) or reports.handles(doc, actor):
        return views.full(doc, trail)
    if actor.kind == "operator":
        return views.moderation(doc, trail)
    if doc["status"] == "hidden":
        raise errors.NotFound("No report with this id is visible to you.", detail_vi="Không tìm thấy phản ánh.")
    return views.public(doc, trail)


def _count_photo() -> None:
    """The caller's photo limit, counted before the photo is read: a caller past it had up to 8 MiB
    read (and a worker thread held for as long as it took to come) for every 429. A request sent
    again under an Idempotency-Key already recorded is not counted: it is answered from its record
    (or refused as the key's reuse), never kept again."""
    key = (request.headers.get(idempotency.HEADER) or "").strip()
    if key and idempotency.recorded(key):
        return
    current_app.extensions["reports.limits"].photo_hit(caller_subject(principal(), request.headers,
                                                                      request.remote_addr))


@bp.post("/v1/photos")
@allow("public")
@raw_body(*images.MEDIA_TYPES)
@body_limit(photos.MAX_BYTES)
@before_body(_count_photo)
@responds("reports/photo.json", status=201, description="The photo kept, by its sha256, and its public URL",
          also={429: "Too many photos from this caller (REPORTS_PHOTO_LIMIT): wait Retry-After seconds"})
@idempotent(required=False)
def upload_photo():
    """A photo of what is reported (JPEG or PNG, at most 8 MiB), re-encoded without its metadata
    (no EXIF location) before anyone can see it."""
    ref, clean = images.keep(photos.blobs(), request.get_data(cache=True), request.mimetype)
    return jsonify({"sha256": ref.sha256, "size": ref.size, "media_type": ref.media_type,
                    "url": photos.url(app_state().settings, ref.sha256)}), 201


@bp.get('/v1/photos/<schema("reports/report-create.json#/properties/photos/items"):sha256>')
@allow("public")
@responds(None, binary=images.MEDIA_TYPES, headers={"ETag": "The bytes' sha256 (If-None-Match answers 304)"},
          also={304: "Not modified"})
@query_params(images.SIZE_PARAM)
def get_photo(sha256: str):
    """A report's photo (already without metadata; public, addressed by its content: cached for good).
    ``?size=display``: its rendition for a page on a phone (long side at most 1600 px)."""
    try:
        return blob_response(*images.sized(photos.blobs(), sha256, g.query["size"]))
    except (store.DoesNotExist, store.InvalidKey):
        raise errors.NotFound("no such photo", detail_vi="Không có ảnh này.") from None


@bp.post("/v1/reports")
@allow("public")
@validate_body("reports/report-create.json")
@responds("reports/report-created.json", status=201,
          description="The report, routed, with its deadline and nearby open duplicates",
          also={429: "Too many reports from this caller (REPORTS_CITIZEN_LIMIT): wait Retry-After seconds"})
@idempotent(required=False, implicit_s=IMPLICIT_S)   # the app's retry after a lost answer: not a second report
def submit():
    """Report an incident or violation: a signed-in citizen, or anyone with a phone number to be
    called back on. Answers the report, routed, with its deadline and nearby open duplicates."""
    actor, body = _actor(), g.body
    if actor.kind not in ("citizen", "anonymous"):
        raise CitizensOnly("reports are sent by citizens", detail_vi="Chỉ công dân gửi phản ánh.")
    current_app.extensions["reports.limits"].citizen_hit(caller_subject(principal(), request.headers,
                                                                        request.remote_addr))
    if actor.kind == "anonymous" and not (body.get("reporter") or {}).get("phone"):
        raise errors.Invalid.at("/reporter/phone", "an anonymous report gives a phone number to be called back on",
                                "Phản ánh không đăng nhập cần số điện thoại liên hệ.")
    photos.claim(photos.blobs(), body.get("photos") or [], lambda i: f"/photos/{i}")
    f = {**body, "attributes": body.get("attributes") or {},
         "media_url": photos.url(app_state().settings, body["photos"][0]) if body.get("photos") else None}
    out, again = received(lambda at, rid, stamp: reports.submit(f, actor, "app", at=at, rid=rid, request=stamp))
    answer = views.full(out.doc)
    if out.doc.get("lat") is not None:
        answer["nearby"] = [views.public(d) | {"distance_m": d["distance_m"]}
                            for d in reports.nearby(out.doc["service_code"], out.doc["lat"], out.doc["long"])
                            if d["id"] != out.doc["id"]]
    resp = jsonify(answer)
    resp.status_code = 201
    return idempotency.mark_replayed(resp) if again else resp


@bp.get("/v1/reports/nearby")
@allow("public")
@responds("reports/nearby-reports.json")
@query_params(("service_code", "the service type", SERVICE_CODE),
              ("lat", "latitude (WGS84)", {"type": "number", "minimum": -90, "maximum": 90}),
              ("long", "longitude (WGS84)", {"type": "number", "minimum": -180, "maximum": 180}),
              ("radius", "metres", {"type": "integer", "minimum": 10, "maximum": 500, "default": 100}))
def nearby():
    """Open reports of the same category near a point, recent ones: offered as "me too" before a
    new report is sent."""
    q = g.query
    for name, vi in (("service_code", "loại phản ánh"), ("lat", "vĩ độ"), ("long", "kinh độ")):
        if q.get(name) is None:
            raise errors.InvalidParameter(f"{name} is required", detail_vi=f"Cần có tham số {name} ({vi}).",
                                          errors=[errors.field(name, "required", f"Chưa có {vi} ({name}).")])
    items = [views.public(d) | {"distance_m": d["distance_m"]}
             for d in reports.nearby(q["service_code"], q["lat"], q["long"], q["radius"])]
    return jsonify({"items": items, "total": len(items)})


@bp.get(f"/v1/reports/<{REPORT_ID}>")
@allow("public")
@responds("reports/report.json")
def read(report_id: str):
    """A report with its public history (masked); its reporter and its agency see everything."""
    agg = reports.records()
    doc = agg.visible(report_id, lambda d: True).data
    return jsonify(_view(doc, agg.trail(report_id)))


@bp.post(f"/v1/reports/<{REPORT_ID}>/actions/<{ACTION}>")
@allow("officer", "commune-officer", "citizen", "operator")
@responds("reports/report.json")
@validate_body("reports/action.json", optional=True)
@idempotent(required=False, implicit_s=IMPLICIT_S, move=True)   # a retry after a lost answer: the first answer
def act(report_id: str, action: str):
    """Move a report: its agency (acknowledge, transfer, investigate, schedule, start, fix, close,
    unable_to_fix, mark_duplicate, not_responsible, reopen), its reporter (close, reopen),
    moderation (hide, transfer)."""
    body = g.get("body") or {}
    if action == "transfer" and body.get("agency"):
        agencies.check(current_app.config["REPORTS_PEERS"], body["agency"])
    actor = _actor()
    out = reports.move(report_id, action, actor, body)
    # moderation (hide, transfer) answers what moderation sees: no reporter's contact
    view = views.moderation if actor.kind == "operator" else views.full
    return jsonify(view(out.doc, reports.records().trail(report_id)))


@bp.post(f"/v1/reports/<{REPORT_ID}>/rating")
@allow("citizen")
@validate_body("reports/rating.json")
@responds("reports/report.json")
@idempotent(required=False, implicit_s=IMPLICIT_S, move=True)
def rate(report_id: str):
    """The reporter rates the answer, 1 to 5."""
    out = reports.rate(report_id, _actor(), g.body["rating"], g.body.get("comment"))
    return jsonify(views.full(out.doc))


@bp.post(f"/v1/reports/<{REPORT_ID}>/support")
@allow("citizen")
@responds("reports/support.json")
@idempotent(required=False)
def support(report_id: str):
    """"Me too": support an open report instead of sending a duplicate; each citizen counts once."""
    reports.records().visible(report_id, lambda d: d["status"] != "hidden")
    out = reports.support(report_id, _actor())
    return jsonify({"id": report_id, "supporters": len(out.doc["supporters"])})


@bp.get("/v1/queue")
@allow(*HANDLERS)
@responds("reports/report-list.json")
def queue():
    """The open reports of the caller's agency (a commune officer: their commune's committee),
    oldest deadline first."""
    agency = reports.queue_of(_actor())
    docs = lists.queue(agency) if agency else []
    return jsonify({"items": [views.full(d) for d in docs], "total": len(docs)})


@bp.get("/v1/stats")
@allow(*READERS)
@responds("reports/stats.json")
@query_params(("days", "the window: reports received in the last N days", {"type": "integer", "minimum": 1,
                                                                           "maximum": 366, "default": 30}))
def stats():
    """Reports per commune, category and agency: received, open, closed, overdue, mean rating."""
    end = datetime.now(timezone.utc)
    return jsonify(queries.stats(end - timedelta(days=g.query["days"]), end))


@bp.get("/v1/services")
@allow("public")
@responds("reports/service-list.json")
def services():
    """The service types with their category, agency and deadline in working days, and whether that
    deadline was checked against a published text (``deadline_verified``: today none was)."""
    items = [{k: s[k] for k in ("code", "name", "description", "category", "agency", "deadline_days",
                                "deadline_verified", "deadline_source")} for s in catalog.services().values()]
    # the list envelope every other list has (one page: the catalogue is small)
    return cached_json({"items": items, "total": len(items), "next_page_token": None})


@bp.get("/v1/api-keys")
@allow("operator")
@responds("reports/api-key-listed.json", page=True)
@query_params(*page_params(default_limit=50, max_limit=200))
def list_keys():
    """The Open311 API keys issued, revoked ones too, by id: whose, when issued, rotated or revoked,
    never a secret."""
    items, total, token = apikeys.page(g.query["limit"], g.query["page_token"] or None)
    return jsonify({"items": items, "total": total, "next_page_token": token})


# neither issue nor rotate is @idempotent: a replay would need the answer, secret included, kept in
# clear in an idempotency record for a day (apikeys' docstring says what makes a retry safe instead)
@bp.post("/v1/api-keys")
@allow("operator")
@validate_body("reports/api-key-create.json")
@responds("reports/api-key.json", status=201)
def issue_key():
    """Issue an Open311 API key to a partner application; the key is shown once. A name (with its
    agency) has one live key: issuing it again (an operator console's retry) is a 409 naming that
    key, to be rotated if its secret was lost."""
    return jsonify(apikeys.issue(g.body["name"], g.body.get("agency"), principal().sub)), 201


@bp.post(f"/v1/api-keys/<{KEY_ID}>/rotate")
@allow("operator")
@responds("reports/api-key.json")
def rotate_key(key_id: str):
    """A new secret for a key; the old one stops working at once (shown once). Sent again, it makes
    another secret: the answer received last holds the live one."""
    return jsonify(apikeys.rotate(key_id))


@bp.delete(f"/v1/api-keys/<{KEY_ID}>")
@allow("operator")
@responds("reports/api-key.json")
def revoke_key(key_id: str):
    """Revoke a key: refused from now on."""
    return jsonify(apikeys.revoke(key_id))
