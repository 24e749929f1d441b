"""Reports: received (from the citizen app or an Open311 client), routed to the agency that handles
their category in their commune, moved through FixMyStreet's states by that agency, rated by the
reporter, flagged overdue by the platform clock.

Personal data: the reporter's name, phone and e-mail stay inside the report's document (the
handlers need them to call back); they are never in a key, an event or a log line. A signed-in
citizen is known by a pseudonym of their subject (``owner``); audit entries carry pseudonyms too.
They go on the reporter's request (:mod:`.erase`) and, for a closed report, once its keep period
has passed (:mod:`.retention`).

Deadlines go by handling round: a reopen starts a new round, with the service's deadline counted from
the reopen as for a report received then (:func:`_act`); its due and queue entries, Open311's
``expected_datetime`` and its events follow, and ``overdue`` is the round's own. The rounds before stay
as they were (``rounds``: start, deadline, flagged; their ``report.overdue`` events and audit entries),
so no figure of the time before the reopen changes. (A reopened report kept its first deadline: one
fixed on time and reopened a month later was overdue a minute after.)
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from lscloud import errors, workdays
from lscloud.workdays import local_day
from lscloud.aggregate import Aggregate, NoChange, Outcome, audit_key, delete_quietly, save_quietly, side_pool
from lscloud.events import new_event
from lscloud.statemachine import Actor, iso, now, parse_iso

from . import catalog, communes, geo, places
from .models import PSEUDONYM_PURPOSE
from .states import CLOSED, MACHINE, NEEDS_REASON, STATE_VI, fms_path, open311_status

SOURCE = "/reports"
RATED_STATES = ("fixed", "closed", "unable_to_fix")
CONTRACT_SCHEMA = "https://schemas.langson.gov.vn/events/reports/report.v1.json"


def local_iso(value: str | None, timespec: str = "seconds") -> str | None:
    """An instant as ISO 8601 with the province's offset (+07:00); an event says it to the millisecond."""
    return parse_iso(value).astimezone(workdays.TZ).isoformat(timespec=timespec) if value else None


class ReportRecords(Aggregate):
    """The reports' write path; every event carries the published contract's ``data`` and nothing
    else (no actor, no reason text: free text may hold personal data)."""

    def event(self, t, doc, subject, event_id):
        data = {"report_id": doc["id"], "service_code": doc["service_code"], "category": doc["category"],
                "commune": doc["commune"], "agency": doc.get("agency"), "status": open311_status(doc["status"]),
                "from_state": None if t.source == "new" else t.source, "to_state": t.target,
                "deadline": local_iso(doc.get("deadline")), "occurred_at": local_iso(t.at, "milliseconds"),
                "channel": doc["channel"], "rating": doc.get("rating") if t.fact == "report.rated" else None}
        return new_event(t.type, self.source, data, subject=subject, id=event_id, dataschema=CONTRACT_SCHEMA)


def is_update(fact: str | None) -> bool:
    """Whether a move is one of FixMyStreet's updates (a rating is not)."""
    return bool(fact) and fact != "report.rated"


def _indexes(out: Outcome) -> None:
    """The listing, open, due and nearby indexes follow the report's state (each write repeat-safe),
    and the write is in the change feed the stats read (a re-run adds an entry: one more read); all
    written in parallel."""
    from .models import (TOUCHED_KEPT_S, AgencyQueue, DueReport, NearbyOpen, OpenReport, ReportTouched, UpdateIndex,
                         due_entry, nearby_entry, update_entry)

    doc = out.doc
    # stamped now, after the commit, not with the move's own time: a tick's flag carries the sweep's
    # start (minutes before a long sweep's last write) and a resend finishes a create made long ago;
    # an entry older than the stats' margin when written would never be seen
    seen_at = now()
    saves = [ReportTouched(local_day(iso(seen_at)), f"{iso(seen_at)}|{doc['id']}",
                           expires_at=seen_at + timedelta(seconds=TOUCHED_KEPT_S))]
    cell = f"{doc['category']}:{doc['geohash']}" if doc.get("geohash") else None
    deletes = []
    if any(t.source == "new" for t in out.transitions):   # the rest went out with its audit entry (created_indexes)
        return save_quietly(saves[0])
    if doc["status"] in CLOSED:
        deletes += [(OpenReport, "open", doc["id"])] + ([(NearbyOpen, cell, nearby_entry(doc))] if cell else [])
    else:
        saves += [OpenReport("open", doc["id"])] + ([NearbyOpen(cell, nearby_entry(doc))] if cell else [])
    saves += [UpdateIndex(local_day(t.at), update_entry(t.at, doc["id"], audit_key(t.at, out.version, i), t.target))
              for i, t in enumerate(out.transitions) if is_update(t.fact)]
    if doc["status"] not in CLOSED and doc.get("agency"):
        saves.append(AgencyQueue(doc["agency"], due_entry(doc)))
    elif doc.get("agency") and any(t.target in CLOSED and t.source not in CLOSED for t in out.transitions):
        deletes.append((AgencyQueue, doc["agency"], due_entry(doc)))
    if doc["status"] not in CLOSED and not doc["overdue"]:
        saves.append(DueReport("due", due_entry(doc)))
    elif any(t.action == "flag_overdue" or (t.target in CLOSED and t.source not in CLOSED) for t in out.transitions):
        # once, by the write that flags or closes it (one whose delete failed: the sweep's, when due)
        deletes.append((DueReport, "due", due_entry(doc)))
    pending = [side_pool().submit(save_quietly, item) for item in saves]
    pending += [side_pool().submit(delete_quietly, *d) for d in deletes]
    for f in pending:
        f.result()


def records() -> ReportRecords:
    from .models import Report, ReportAudit, closed_entries, created_indexes
    from .owners import entries

    return ReportRecords(Report, machine=MACHINE, source=SOURCE, audit=ReportAudit, after_commit=_indexes,
                         created_side=lambda doc: [*created_indexes(doc), *entries(doc)], side=closed_entries)


def recorded(actor: Actor) -> Actor:
    """The actor as the audit trail keeps it: citizens and partners by pseudonym."""
    return actor.pseudonymous(PSEUDONYM_PURPOSE) if actor.kind in ("citizen", "partner", "anonymous") else actor


def owner_of(actor: Actor) -> str | None:
    from lscloud import pseudonyms

    return pseudonyms.pseudonym(PSEUDONYM_PURPOSE, actor.sub) if actor.kind == "citizen" and actor.sub else None


def _location(f: dict) -> tuple[float | None, float | None]:
    lat, lon = f.get("lat"), f.get("long")
    if (lat is None) != (lon is None):
        missing = "long" if lon is None else "lat"
        raise errors.Invalid.at(missing, "lat and long are sent together", "Cần gửi cả vĩ độ và kinh độ.")
    if lat is None:
        if not (f.get("address_string") or "").strip():
            raise errors.Invalid.at("lat", "a location is required: lat and long, or address_string",
                                    "Cần vị trí: vĩ độ và kinh độ, hoặc địa chỉ.")
        return None, None
    if not geo.in_province(lat, lon):
        raise errors.Invalid.at("lat", "the location is not in Lạng Sơn province", "Vị trí không thuộc tỉnh Lạng Sơn.")
    return lat, lon


def _commune(f: dict, lat: float | None, lon: float | None) -> dict:
    """The commune named by its code, else by the address, else the one the point is taken to be in
    (``inferred``): lat & long are a full location (GeoReport v2), and a client sends the commune
    attribute only when its user filled it in."""
    code = f.get("commune")
    if code:
        unit = communes.get(code)
        if unit is None:
            raise errors.Invalid.at(f.get("commune_field", "commune"), f"{code!r} is not a commune or ward of Lạng Sơn",
                                    f"{code!r} không phải mã xã, phường của tỉnh Lạng Sơn.")
        return dict(unit)
    unit = communes.from_address(f.get("address_string") or "")
    if unit is None and lat is not None:
        unit = places.commune_at(lat, lon)
        if unit is None:
            raise errors.Invalid.at("lat", "the location is not in Lạng Sơn province", "Vị trí không thuộc tỉnh Lạng Sơn.")
        return {**unit, "inferred": True}
    if unit is None:
        raise errors.Invalid.at(f.get("commune_field", "commune"),
                                "name the commune (its code), or an address_string with its xã/phường in Lạng Sơn",
                                "Cần chọn xã, phường hoặc ghi địa chỉ có tên xã, phường thuộc tỉnh Lạng Sơn.")
    return unit


def deadline_of(service: dict, at: datetime) -> datetime:
    cal = workdays.load()
    return cal.add(cal.clock_start(at), workdays.days_to_minutes(service["deadline_days"]))


def deadline_provisional(at: datetime, deadline: datetime) -> bool:
    """Whether the calendar is not sure of the working days from ``at`` to ``deadline``: a year whose
    holidays are not published yet (Tết moves with the moon; the break is decided each year) counts
    only the fixed holidays, so the deadline may fall in it. Dossiers' receipts say so too."""
    cal = workdays.load()
    return not cal.certain(at.astimezone(workdays.TZ).date(), deadline.astimezone(workdays.TZ).date())


def new_id(at: datetime, tag: str | None = None) -> str:
    """A report's id, by the day it is received (``schemas/reports/report-id.json``): random, or ``tag``."""
    return f"{at.astimezone(workdays.TZ):%Y%m%d}-{tag or secrets.token_hex(4)}"


def new_token() -> str:
    """A report's Open311 token (``schemas/reports/report-token.json``)."""
    return secrets.token_hex(8)


def submit(f: dict, actor: Actor, channel: str, at: datetime | None = None, rid: str | None = None,
           request: dict | None = None) -> Outcome:
    """Receive a report. ``f``: service_code, lat/long or address_string, commune (a unit code) or an
    address naming it, description, media_url, photos, attributes, reporter {first_name, last_name,
    email, phone, device_id, account_id}. ``at``, ``rid``, ``request``: when, its id, and the
    idempotency stamp it keeps (a 409 when the id holds a report: the caller's to judge)."""
    service = catalog.get(f["service_code"])
    attrs = catalog.check_attributes(service, f.get("attributes") or {}, f.get("attribute_pointer") or (lambda c: f"/attributes/{c}"))
    lat, lon = _location(f)
    unit = _commune(f, lat, lon)
    at = at or now()
    rid = rid or new_id(at)
    reporter = {k: v for k, v in (f.get("reporter") or {}).items() if v not in (None, "")}
    doc = {"id": rid, "service_code": service["code"], "service_name": service["name"], "category": service["category"],
           "commune": unit["code"], "commune_name": unit["name"], "address_2025": unit.get("address_2025"),
           "commune_inferred": bool(unit.get("inferred")),
           "agency": catalog.agency_for(service, unit["code"]), "transfers": [],
           "description": f.get("description"), "address": f.get("address_string"), "lat": lat, "long": lon,
           "geohash": geo.cell(lat, lon) if lat is not None else None, "attributes": attrs,
           "media_url": f.get("media_url"), "photos": list(f.get("photos") or []), "channel": channel,
           "reporter": reporter, "owner": owner_of(actor), "partner": actor.sub if actor.kind == "partner" else None,
           "token": new_token(), "requested_at": iso(at), "day": f"{at.astimezone(workdays.TZ):%Y-%m-%d}",
           "deadline": iso(deadline := deadline_of(service, at)),
           "deadline_provisional": deadline_provisional(at, deadline), "overdue": False, "supporters": [], "rating": None,
           "notes": [], "status": "new"}
    t = MACHINE.apply(doc, "submit", recorded(actor), at=at)
    agg = records()
    return agg.create(agg.model(rid, data=doc, request=request), [t])


def queue_of(actor: Actor) -> str | None:
    """The agency whose reports ``actor`` handles: an officer's own, a commune officer's commune
    committee; None for anyone else."""
    if actor.kind == "officer":
        return actor.agency or None
    if actor.kind == "commune-officer":
        return f"ubnd-{actor.unit}" if actor.unit else None
    return None


def handles(doc: dict, actor: Actor) -> bool:
    """An officer of the report's agency, or the commune officer of the commune whose committee it is."""
    agency = queue_of(actor)
    return agency is not None and doc.get("agency") == agency


def is_reporter(doc: dict, actor: Actor) -> bool:
    return actor.kind == "citizen" and doc.get("owner") is not None and doc["owner"] == owner_of(actor)


def move(report_id: str, action: str, actor: Actor, body: dict) -> Outcome:
    """An agency's (or the reporter's, or moderation's) move, audited, with its event."""
    if action not in MACHINE.actions or action == "submit":
        raise errors.NotFound(f"no action {action!r}", detail_vi="Không có thao tác này.")
    reason = (body.get("reason") or "").strip() or None
    if action in NEEDS_REASON and not reason:
        raise errors.Invalid.at("/reason", f"{action.replace('_', ' ')} needs a reason", "Cần nêu lý do.")
    agg = records()
    agg.visible(report_id, lambda d: handles(d, actor) or is_reporter(d, actor) or actor.kind == "operator")

    def op(doc):
        if actor.kind == "citizen" and not is_reporter(doc, actor):
            raise MACHINE.not_permitted(action, actor)
        if actor.kind in ("officer", "commune-officer") and not handles(doc, actor):
            raise MACHINE.not_permitted(action, actor)
        return [_act(doc, action, actor, body, reason)]

    return agg.mutate(report_id, op)


def _act(doc: dict, action: str, actor: Actor, body: dict, reason: str | None, at: datetime | None = None):
    """One move of ``doc`` with what it needs (the agency transferred to, the report repeated), and
    its note; the caller has checked who acts."""
    details = {}
    if action == "transfer":
        to = body.get("agency") or ""
        if not to or to == doc["agency"]:
            raise errors.Invalid.at("/agency", "the agency to transfer to (another directory agency code)",
                                    "Cần mã cơ quan nhận chuyển.")
        details = {"from_agency": doc["agency"], "to_agency": to}
        doc["transfers"].append({**details, "reason": reason, "at": iso(at or now())})
        doc["agency"] = to
    if action == "mark_duplicate":
        dup = body.get("duplicate_of") or ""   # its shape is the body schema's (report-id.json)
        if not dup or dup == doc["id"] or not _exists(dup):
            raise errors.Invalid.at("/duplicate_of", "the id of the report this one repeats", "Cần mã phản ánh gốc.")
        doc["duplicate_of"] = dup
    if action == "reopen":   # a new handling round from now (the module's docstring); the one ending is kept
        at = at or now()
        deadline = deadline_of(catalog.get(doc["service_code"]), at)
        doc.setdefault("rounds", []).append({"started_at": doc.get("round_started_at") or doc["requested_at"],
                                             "deadline": doc["deadline"], "overdue": bool(doc.get("overdue"))})
        doc.update(rating=None, round_started_at=iso(at), deadline=iso(deadline), overdue=False,
                   deadline_provisional=deadline_provisional(at, deadline))
    t = MACHINE.apply(doc, action, recorded(actor), at=at, reason=reason, details=details)
    if body.get("note") or reason:
        doc["notes"].append({"at": t.at, "state": t.target, "text": body.get("note") or reason})
    return t


def agency_update(report_id: str, status: str, actor: Actor, body: dict) -> Outcome:
    """An agency's system posts a FixMyStreet status (``states.FMS_ACTION``): the report takes the
    shortest legal path of moves to it (OPEN on a submitted report acknowledges it; IN_PROGRESS
    acknowledges then starts), each audited and published as the machine does, in one write. The
    agency's note and reason go with the last move. Already there: no write."""
    agg = records()
    agg.visible(report_id, lambda d: handles(d, actor))
    reason = (body.get("reason") or "").strip() or None

    def op(doc):
        if not handles(doc, actor):
            raise MACHINE.not_permitted("update", actor)
        state, path = doc["status"], fms_path(doc["status"], status)
        if path is None:   # Open311 shows the detail and the field's message: one language each
            vi = f"phản ánh đang ở trạng thái “{STATE_VI[state]}”, không có bước chuyển nào dẫn tới {status}"
            raise errors.Invalid(f"The report is {state}: no move leads from there to {status}.", detail_vi=vi,
                                 errors=[errors.field("status", vi)])
        if not path:
            raise NoChange
        if path[-1] in NEEDS_REASON and not reason:
            raise errors.Invalid.at("description", f"{status} needs its reason in description (cần nêu lý do)",
                                    "Cần nêu lý do trong description.")
        moves = []
        for action in path:
            at = now()
            if moves and iso(at) <= moves[-1].at:   # each move its own instant: the trail, the updates
                at = parse_iso(moves[-1].at) + timedelta(milliseconds=1)   # and the notes are keyed by it
            last = len(moves) == len(path) - 1
            moves.append(_act(doc, action, actor, body if last else {}, reason if last else None, at))
        return moves

    return agg.mutate(report_id, op)


def _exists(report_id: str) -> bool:
    from .models import Report

    # a HEAD; only "not there" is False: a store that does not answer is the caller's 503, not a wrong id
    return Report.exists(report_id)


def rate(report_id: str, actor: Actor, rating: int, comment: str | None) -> Outcome:
    """The reporter rates the answer (1-5), once per answer (a reopened report may be rated again)."""
    agg = records()
    agg.visible(report_id, lambda d: is_reporter(d, actor))

    def op(doc):
        if doc["status"] not in RATED_STATES:
            raise MACHINE.illegal("rate", doc["status"], "Only an answered report can be rated.",
                                  "Chỉ đánh giá được phản ánh đã có kết quả xử lý.")
        if doc.get("rating") is not None:
            raise errors.Conflict("this answer is already rated", detail_vi="Bạn đã đánh giá kết quả này.")
        doc["rating"] = rating
        doc["rating_comment"] = comment
        return [MACHINE.note(doc, "rate", "report.rated", recorded(actor), details={"rating": rating})]

    return agg.mutate(report_id, op)


def support(report_id: str, actor: Actor) -> Outcome:
    """"Me too": a citizen supports an open report; each supporter counts once."""
    me = owner_of(actor)

    def op(doc):
        if doc["status"] in CLOSED:
            raise MACHINE.illegal("support", doc["status"], "Only an open report can be supported.",
                                  "Chỉ ủng hộ được phản ánh đang xử lý.")
        if me in doc["supporters"] or me == doc.get("owner"):
            raise NoChange
        doc["supporters"].append(me)
        return [], len(doc["supporters"])

    return records().mutate(report_id, op)


def flag_overdue(report_id: str, at: datetime) -> bool:
    """Flag a report past its round's deadline (once a round: the flag is set under the conditional
    write, and only a reopen clears it)."""

    def op(doc):
        if doc["overdue"] or doc["status"] in CLOSED or parse_iso(doc["deadline"]) > at:
            raise NoChange
        doc["overdue"] = True
        return [MACHINE.note(doc, "flag_overdue", "report.overdue", MACHINE.system, at=at)]

    return records().mutate(report_id, op).changed


def nearby(service_code: str, lat: float, lon: float, radius_m: float = 100.0, days: int = 30,
           limit: int = 20) -> list[dict]:
    """Open reports of the same category within ``radius_m`` received in the last ``days``: the
    duplicates a new report is offered ("me too"), nearest first. Lists the nine cells' keys, which
    carry each report's position (listed in parallel, no item read), and reads only the ``limit``
    nearest reports."""
    from datetime import timedelta

    from .models import NearbyOpen
    from .queries import get_many

    if not geo.in_province(lat, lon):
        return []   # no report is filed outside the province (and a pole has no geohash neighbours: a 500)
    category = catalog.get(service_code)["category"]
    since = iso(now() - timedelta(days=days))
    near = []
    cells = geo.neighbourhood(lat, lon)
    listed = side_pool().map(lambda c: NearbyOpen.query_keys(f"{category}:{c}", range_between=(since, None),
                                                             limit=1000), cells)
    for entry in (e for keys in listed for e in keys):
        try:
            _, plat, plon, rid = entry.rsplit("_", 3)
            d = geo.distance_m((lat, lon), (float(plat), float(plon)))
        except ValueError:
            continue
        if d <= radius_m:
            near.append((d, rid))
    near.sort()
    dist = {rid: d for d, rid in near[:limit]}
    docs = [doc for doc in get_many(list(dist)) if doc["status"] not in CLOSED]
    return sorted(({**doc, "distance_m": round(dist[doc["id"]], 1)} for doc in docs), key=lambda d: d["distance_m"])
