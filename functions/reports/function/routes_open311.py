"""Open311 GeoReport v2 at ``/reports/open311/v2/`` (and its discovery document), both formats by
suffix, errors in the spec's own format on every one of these paths; FixMyStreet's
``servicerequestupdates`` extension."""

from __future__ import annotations

import functools

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from lscloud import errors, idempotency
from lscloud.aggregate import audit_key
from lscloud.auth import allow, principal
from lscloud.idempotency import IMPLICIT_S, idempotent
from lscloud.problems import Problem
from lscloud.ratelimit import caller_subject
from lscloud.statemachine import Actor
from lscloud.store import DoesNotExist, InvalidKey
from lscloud.context import app_state
from lscloud.web import public_base, raw_body, responds
from lscloud.web.caching import CACHED, cached

from . import apikeys, catalog, lists, open311, photos, queries, reports, views
from .routes_v1 import received
from .open311 import Open311Error
from .states import FMS_ACTION, FMS_STATUS

bp = Blueprint("open311", __name__, url_prefix="/open311")
FORM = "application/x-www-form-urlencoded"
ADDRESS_MAX = 500   # characters, as schemas/reports/report-create.json caps the app's address_string
CHANGESET = "2026-12-03T00:00:00+07:00"


def _fmt() -> str:
    fmt = (request.view_args or {}).get("fmt") or ("xml" if request.path.endswith(".xml") else "json")
    return fmt if fmt in open311.FORMATS else "json"


def _answer(root: str, value, status: int = 200) -> Response:
    body, ctype = open311.render(_fmt(), root, value)
    return Response(body, status=status, content_type=ctype)


def _error(exc: Open311Error) -> Response:
    resp = _answer("errors", exc.items, exc.status)
    resp.headers.update(exc.headers)
    return resp


@bp.errorhandler(Open311Error)
def _open311_error(exc: Open311Error):
    return _error(exc)


@bp.errorhandler(errors.DomainError)
def _domain_error(exc: errors.DomainError):
    return _error(open311.from_domain(exc))


@bp.errorhandler(Problem)
def _problem(p: Problem):
    status = p.status if 400 <= p.status < 600 else 400
    return _error(Open311Error(status, p.detail or p.title or "bad request"))


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    return _error(_from_http(exc))


def _from_http(exc: HTTPException) -> Open311Error:
    # its headers go along: a 405 MUST say which methods the resource takes (RFC 9110 §15.5.6)
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return Open311Error(exc.code or 400, exc.description or exc.name, headers=headers)


def answer_unrouted(app) -> None:
    """A path under ``/open311/`` that routes nowhere (a misspelt resource, a wrong method) also
    answers in the spec's error format; every other path keeps the runtime's problem+json."""
    runtime_handler = app.error_handler_spec[None][None][HTTPException]

    def handler(exc: HTTPException):
        if request.path.startswith("/open311/"):
            return _error(_from_http(exc))
        return runtime_handler(exc)

    for code in (404, 405):
        app.register_error_handler(code, handler)


def _admit_caller() -> None:
    """Count the post against its caller before the key is looked at, so a client can neither
    spread a flood over many keys nor guess keys without bound."""
    current_app.extensions["reports.limits"].open311_caller_hit(
        caller_subject(principal(), request.headers, request.remote_addr))


def _partner_post(view):
    """A partner's POST, checked before it runs or is answered again (the idempotency layer below
    it): the format, the form, the caller counted, the jurisdiction and the api_key, in that order,
    so a revoked key is refused from the moment it is revoked, a retry of its last request too.
    The view finds ``(fields, attributes, key)`` in ``g.open311_post``."""
    @functools.wraps(view)
    def wrapper(fmt: str):
        open311.check_format(fmt)
        if request.mimetype != FORM:
            raise Open311Error(400, f"send the request as {FORM}")
        _admit_caller()
        fields, attrs = open311.parse_form(request.get_data(cache=True))
        open311.check_jurisdiction(fields.get("jurisdiction_id"))
        g.open311_post = (fields, attrs, apikeys.verify(fields.get("api_key")))
        return view(fmt)

    return wrapper


# the spec's errors, not problem+json, on every Open311 path (documented so in the OpenAPI)
ERRORS_AS = {"application/json": "reports/open311/errors.json", "text/xml": None}
FORMAT = 'schema("reports/open311/format.json#", match=False):fmt'
"""The format extension (json or xml) as the spec names it: documented, and answered by the view in
the spec's own errors format when it is another (not a route miss's problem+json)."""
# The ids before ``.<fmt>`` are documented as issued but routed whatever they hold (match=False): an
# unknown one of any shape is the spec's 404 naming it. None of their patterns holds a ``.``.
SERVICE_CODE = 'schema("reports/service-code.json", match=False):code'
"""The route argument of a service type's code, as ``data/services.yaml`` names one."""
REQUEST_ID = 'schema("reports/report-id.json", match=False):request_id'
"""The route argument of a service_request_id: a report's id, as it is issued."""
TOKEN = 'schema("reports/report-token.json", match=False):token'
"""The route argument of a report's Open311 token, as it is issued."""


def _responds(schema: str | None, **declared):
    """``@responds`` for an Open311 path: its errors in the spec's format, and its answer in JSON
    and the spec's XML (a ``.xml`` path); without a schema of ours, in either with none."""
    media = {"text/xml": None} if schema else {"application/json": None, "text/xml": None}
    return responds(schema, errors_as=ERRORS_AS, media=media, **declared)


TOO_MANY = {429: "Too many posts from this caller or API key (REPORTS_KEY_LIMIT, REPORTS_OPEN311_CALLER_LIMIT): "
                 "wait Retry-After seconds; the body is the spec's errors list"}


def _count_listing() -> None:
    """Count a listing against its caller before anything is listed or read."""
    current_app.extensions["reports.limits"].open311_list_hit(caller_subject(principal(), request.headers,
                                                                      request.remote_addr))


LISTED_TOO_MANY = {429: "Too many listings from this caller (REPORTS_OPEN311_LIST_LIMIT): wait Retry-After "
                        "seconds; the body is the spec's errors list"}


def _media(fields: dict) -> tuple[str | None, list[str]]:
    """The request's ``media_url`` and the photos it names: one uploaded here (``POST /v1/photos``,
    its URL as this function's public address or the one the caller reached it at) is claimed and
    kept in the report's photos, as the app's report keeps its own; any other URL is kept as it is."""
    url = open311.media_url(fields)
    sha = photos.own(url, (current_app.extensions["lscloud"].settings.public_url(), public_base()))
    if sha is None:
        return url, []
    photos.claim(photos.blobs(), [sha], lambda i: "media_url")
    return photos.url(app_state().settings, sha), [sha]


def _args():
    args = request.args.to_dict()
    open311.check_jurisdiction(args.get("jurisdiction_id"))
    return args


@bp.get(f"/discovery.<{FORMAT}>")
@allow("public")
@_responds(None, description="The Service Discovery document, in the requested format")
def discovery(fmt: str):
    """The Open311 Service Discovery document."""
    open311.check_format(fmt)
    return _answer("discovery", open311.discovery(public_base(), CHANGESET))


@bp.get(f"/v2/services.<{FORMAT}>")
@allow("public")
@_responds("reports/open311/services.json", **CACHED)
def services(fmt: str):
    """GET Service List: every service type, in Vietnamese with English."""
    open311.check_format(fmt)
    _args()
    return cached(_answer("services", [{
        "service_code": s["code"], "service_name": s["name"], "description": s["description"], "metadata": True,
        "type": "realtime", "keywords": s["keywords"], "group": s["category"]} for s in catalog.services().values()]))


@bp.get(f"/v2/services/<{SERVICE_CODE}>.<{FORMAT}>")
@allow("public")
@_responds("reports/open311/service-definition.json")
def service_definition(code: str, fmt: str):
    """GET Service Definition: the attributes a service asks beyond the base fields."""
    open311.check_format(fmt)
    _args()
    if code not in catalog.services():
        raise Open311Error(404, f"service_code {code!r} not found")
    return _answer("service_definition", {"service_code": code,
                                          "attributes": catalog.attributes(catalog.get(code))})


@bp.post(f"/v2/requests.<{FORMAT}>")
@allow("public")
@raw_body(FORM)
@_responds("reports/open311/service-requests.json", status=201, also=TOO_MANY)
@_partner_post
@idempotent(required=False, implicit_s=IMPLICIT_S)   # GeoReport clients send no key: a retry is the same request
def create_request(fmt: str):
    """POST Service Request (form-encoded, api_key required): answers the new service_request_id."""
    fields, attrs, key = g.open311_post
    current_app.extensions["reports.limits"].key_hit(key["id"])
    if not fields.get("service_code"):
        raise Open311Error(400, "service_code was not provided")
    if fields["service_code"] not in catalog.services():
        raise Open311Error(404, f"service_code {fields['service_code']!r} not found")
    if len(fields.get("description") or "") > 4000:
        raise Open311Error(400, "description: at most 4,000 characters")
    if len(fields.get("address_string") or "") > ADDRESS_MAX:   # as the app's report body caps it
        raise Open311Error(400, f"address_string: at most {ADDRESS_MAX} characters")
    commune = attrs.pop(catalog.COMMUNE_ATTRIBUTE, [None])
    if len(commune) != 1:
        raise Open311Error(400, "attribute[commune]: one value")
    name = " ".join(x for x in (fields.get("last_name"), fields.get("first_name")) if x)
    media_url, shas = _media(fields)
    f = {
        "service_code": fields["service_code"], "lat": open311.number(fields, "lat"),
        "long": open311.number(fields, "long"), "address_string": fields.get("address_string"),
        "commune": commune[0], "commune_field": "attribute[commune]", "attributes": attrs,
        "attribute_pointer": lambda c: f"attribute[{c}]", "description": fields.get("description"),
        "media_url": media_url, "photos": shas,
        "reporter": {"first_name": fields.get("first_name"), "last_name": fields.get("last_name"), "name": name or None,
                     "email": fields.get("email"), "phone": fields.get("phone"), "device_id": fields.get("device_id"),
                     "account_id": fields.get("account_id")}}
    # a retry after a run cut off once the report was stored: that report, not a second one
    out, again = received(lambda at, rid, stamp: reports.submit(f, Actor("partner", key["id"]), "open311", at=at,
                                                                rid=rid, request=stamp))
    resp = _answer("service_requests", [{"service_request_id": out.doc["id"],
                                         "service_notice": views.open311(out.doc)["service_notice"],
                                         "account_id": fields.get("account_id") or None}], 201)
    return idempotency.mark_replayed(resp) if again else resp


@bp.get(f"/v2/tokens/<{TOKEN}>.<{FORMAT}>")
@allow("public")
@_responds(None, description="The service_request_id of the token, in the requested format")
def token(token: str, fmt: str):
    """GET service_request_id from a token."""
    from .models import ReportToken

    open311.check_format(fmt)
    _args()
    try:
        rid = ReportToken.get(token).report_id
    except (DoesNotExist, InvalidKey):   # any shape routes here; an outage is a 503, not "not found"
        raise Open311Error(404, f"token {token!r} not found") from None
    return _answer("service_requests", [{"service_request_id": rid, "token": token}])


@bp.get(f"/v2/requests/<{REQUEST_ID}>.<{FORMAT}>")
@allow("public")
@_responds("reports/open311/service-requests.json")
def one_request(request_id: str, fmt: str):
    """GET Service Request: a list with the one request."""
    open311.check_format(fmt)
    _args()
    docs = queries.get_many([request_id])
    if not docs:
        raise Open311Error(404, f"service_request_id {request_id!r} not found")
    return _answer("service_requests", [views.open311(docs[0])])


@bp.get(f"/v2/requests.<{FORMAT}>")
@allow("public")
@_responds("reports/open311/service-requests.json", also=LISTED_TOO_MANY)
def list_requests(fmt: str):
    """GET Service Requests: by ids (overrides the rest), or by service codes, dates and status;
    the most recent 90 days and at most 1,000 requests by default."""
    open311.check_format(fmt)
    args = _args()
    _count_listing()
    ids = open311.listed(args, "service_request_id")
    if ids is not None:
        docs = queries.get_many(sorted(ids))
    else:
        start, end = open311.window(args)
        docs = queries.requests(start, end, open311.MAX_REQUESTS, codes=open311.listed(args, "service_code"),
                                status=open311.listed(args, "status", ("open", "closed")))
    return _answer("service_requests", [views.open311(d) for d in docs])


@bp.get(f"/v2/servicerequestupdates.<{FORMAT}>")
@allow("public")
@_responds(None, description="Service request updates, in the requested format", also=LISTED_TOO_MANY)
def updates(fmt: str):
    """FixMyStreet's updates: every move made in the window, of any report, with its status."""
    open311.check_format(fmt)
    args = _args()
    _count_listing()
    start, end = open311.window(args)
    return _answer("service_request_updates", [views.fms_update(doc, e)
                                               for doc, e in lists.updates(start, end, open311.MAX_REQUESTS)])


@bp.post(f"/v2/servicerequestupdates.<{FORMAT}>")
@allow("public")
@raw_body(FORM)
@_responds(None, description="The update as recorded, in the request's format", also=TOO_MANY)
@_partner_post
@idempotent(required=False)
def post_update(fmt: str):
    """An agency's own system posts a FixMyStreet update (its key names the agency): the report
    takes the moves the status means (``reports.agency_update``). DUPLICATE names the report it
    repeats in ``duplicate_of``, INTERNAL_REFERRAL the agency it goes to in ``agency`` (ours: the
    extension has no field for them); ``description`` is the note, and the reason where one is needed."""
    fields, _, key = g.open311_post
    current_app.extensions["reports.limits"].key_hit(key["id"])
    if not key.get("agency"):
        raise Open311Error(403, "this api_key is not an agency's: it may not post updates")
    status = (fields.get("status") or "").upper()
    if status not in FMS_ACTION:
        raise Open311Error(400, f"status is one of {', '.join(sorted(FMS_ACTION))}")
    rid = fields.get("service_request_id") or ""
    if not rid:
        raise Open311Error(400, "service_request_id was not provided")
    actor = Actor("officer", f"api-key:{key['id']}", agency=key["agency"])
    body = {"note": fields.get("description") or None, "reason": fields.get("description") or None,
            "agency": fields.get("agency"), "duplicate_of": fields.get("duplicate_of")}
    out = reports.agency_update(rid, status, actor, body)
    if out.transitions:   # the last move is the update asked for; earlier ones are listed by GET
        t, i = out.transitions[-1], len(out.transitions) - 1
        entry = {"entry": audit_key(t.at, out.version, i), **t.audit()}
    else:
        entry = reports.records().trail(rid)[-1]
    update = views.fms_update(out.doc, entry)
    update["status"] = FMS_STATUS.get(out.doc["status"], status)
    return _answer("service_request_updates", [update])
