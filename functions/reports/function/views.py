"""What each reader sees of a report: the public (masked text, no reporter), the platform's operators
(the same masked text, hidden reports too, for moderation), the reporter and the handling agency
(everything), an Open311 client (the spec's fields)."""

from __future__ import annotations

from . import catalog
from .masking import mask
from .reports import local_iso
from .states import FMS_STATUS, MACHINE, STATE_VI, open311_status

_PUBLIC = ("id", "service_code", "service_name", "category", "commune", "commune_name", "commune_inferred", "agency",
           "lat", "long", "attributes", "media_url", "photos", "channel", "overdue", "rating", "duplicate_of",
           "deadline_provisional")


def _names(doc: dict) -> list[str]:
    r = doc.get("reporter") or {}
    full = " ".join(x for x in (r.get("last_name"), r.get("first_name")) if x)
    return [full, r.get("first_name") or "", r.get("last_name") or ""] + ([r["name"]] if r.get("name") else [])


def history(doc: dict, trail: list[dict]) -> list[dict]:
    """The public history: each move's state and when, with the agency's note masked."""
    notes = {n["at"]: n["text"] for n in doc.get("notes", [])}
    out = []
    for e in trail:
        if e.get("fact") in (None, "report.rated"):
            continue
        out.append({"at": local_iso(e["at"]), "state": e["to"], "state_vi": STATE_VI.get(e["to"], e["to"]),
                    "overdue": e.get("fact") == "report.overdue", "note": mask(notes.get(e["at"]), _names(doc))})
    return out


def public(doc: dict, trail: list[dict] | None = None) -> dict:
    out = {k: doc.get(k) for k in _PUBLIC}
    out.update(state=doc["status"], state_vi=STATE_VI.get(doc["status"]), status=open311_status(doc["status"]),
               description=mask(doc.get("description"), _names(doc)), address=mask(doc.get("address"), _names(doc)),
               requested_at=local_iso(doc["requested_at"]), updated_at=local_iso(doc.get("updated_at")),
               deadline=local_iso(doc.get("deadline")), supporters=len(doc.get("supporters", [])),
               deadline_verified=catalog.deadline_verified(doc.get("service_code")))
    if doc["status"] == "hidden":
        out.update(description=None, address=None, media_url=None, photos=[])
    if trail is not None:
        out["history"] = history(doc, trail)
    return out


def full(doc: dict, trail: list[dict] | None = None) -> dict:
    """The reporter's and the handlers' view: unmasked, the reporter's contact, allowed actions."""
    out = public(doc, trail)
    out.update(description=doc.get("description"), address=doc.get("address"), reporter=doc.get("reporter"),
               token=doc.get("token"), transfers=doc.get("transfers", []), address_2025=doc.get("address_2025"),
               allowed_actions=[a for a in MACHINE.allowed_actions(doc["status"])])
    return out


def moderation(doc: dict, trail: list[dict] | None = None) -> dict:
    """The operators' view: they hide abusive reports and transfer misrouted ones, so they see any
    report, a hidden one too, with its transfers and next moves, but its text masked as the public
    reads it and never the reporter's contact or Open311 token: only the reporter and the agency,
    who call back, see those (``access.yaml``)."""
    out = public(doc, trail)
    names = _names(doc)
    out.update(description=mask(doc.get("description"), names), address=mask(doc.get("address"), names),
               media_url=doc.get("media_url"), photos=doc.get("photos"), address_2025=doc.get("address_2025"),
               transfers=[t | {"reason": mask(t.get("reason"), names)} for t in doc.get("transfers", [])],
               allowed_actions=list(MACHINE.allowed_actions(doc["status"])))
    return out


# two separate doubts, each said only when true: the service's number of working days has no
# published text behind it yet (deadline_verified), and the calendar may miss that year's holidays
# (deadline_provisional). "Tạm tính" / "placeholder" read as the latter, which a report may not be.
UNVERIFIED = (" (số ngày làm việc của loại phản ánh này chưa đối chiếu văn bản công bố / this service's number of "
              "working days is not checked against a published service level yet)")
PROVISIONAL = " (dự kiến: lịch nghỉ năm đó chưa công bố / provisional: that year's holidays are not published yet)"


def notice(doc: dict) -> str:
    """The deadline as Open311's free-text ``service_notice`` gives it, with what makes it uncertain."""
    return (f"Hạn xử lý (deadline): {local_iso(doc.get('deadline'))}"
            + ("" if catalog.deadline_verified(doc.get("service_code")) else UNVERIFIED)
            + (PROVISIONAL if doc.get("deadline_provisional") else ""))


def open311(doc: dict) -> dict:
    """One Open311 ``request``, every field of the spec's GET Service Request."""
    closed = open311_status(doc["status"]) == "closed"
    last_note = (doc.get("notes") or [{}])[-1].get("text")
    hidden = doc["status"] == "hidden"
    return {
        "service_request_id": doc["id"], "status": open311_status(doc["status"]),
        "status_notes": None if hidden else mask(last_note, _names(doc)) or STATE_VI.get(doc["status"]),
        "service_name": doc["service_name"], "service_code": doc["service_code"],
        "description": None if hidden else mask(doc.get("description"), _names(doc)),
        "agency_responsible": doc.get("agency"),
        "service_notice": None if closed else notice(doc),
        "requested_datetime": local_iso(doc["requested_at"]),
        "updated_datetime": local_iso(doc.get("updated_at") or doc["requested_at"]),
        "expected_datetime": local_iso(doc.get("deadline")),
        "address": None if hidden else mask(doc.get("address"), _names(doc)) or doc.get("commune_name"),
        "address_id": None, "zipcode": None, "lat": doc.get("lat"), "long": doc.get("long"),
        "media_url": None if hidden else doc.get("media_url"),
    }


def fms_update(doc: dict, entry: dict) -> dict:
    """One FixMyStreet ``request_update`` from an audit entry."""
    notes = {n["at"]: n["text"] for n in doc.get("notes", [])}
    return {"update_id": f"{doc['id']}.{entry['entry']}", "service_request_id": doc["id"],
            "status": FMS_STATUS.get(entry["to"], "OPEN"), "updated_datetime": local_iso(entry["at"]),
            "description": mask(notes.get(entry["at"]), _names(doc)) or STATE_VI.get(entry["to"]), "media_url": None}
