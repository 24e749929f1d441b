"""What a dossier looks like to whoever reads it: the dossier with its clock and what may happen
next, the receipt (giấy tiếp nhận và hẹn trả kết quả), and the public tracking view, which holds
no personal data. The tracking secret is shown only to the applicant (and to the officers who hand
out the receipt)."""

from __future__ import annotations

import copy
from datetime import datetime

from lscloud import runtime, workdays
from lscloud.statemachine import Actor, now, parse_iso
from lscloud.workdays import TZ

from . import deadlines, workflow
from .states import APPLICANTS, STATE_EN, STATE_VI, allowed_actions


def is_applicant(doc: dict, actor: Actor) -> bool:
    return actor.kind in APPLICANTS and doc["owner"] == actor.sub


def dossier(doc: dict, actor: Actor, at: datetime | None = None) -> dict:
    at = at or now()
    out = copy.deepcopy(doc)
    if not is_applicant(doc, actor):
        out.pop("tracking_secret", None)
    out["status_vi"], out["status_en"] = STATE_VI[doc["status"]], STATE_EN[doc["status"]]
    out["allowed_actions"] = allowed_actions(doc["status"])
    out["overdue"] = deadlines.is_overdue(doc, at)
    out["overdue_steps"] = [s["code"] for s in deadlines.overdue_steps(doc, at)]
    out["clock"] = deadlines.clock(doc, at, workdays.load())
    return out


def receipt(doc: dict) -> dict:
    local = parse_iso(doc["received_at"]).astimezone(TZ)
    appointment = parse_iso(doc["deadline"]).astimezone(TZ)
    # below the function's URL; track_url is it whole (the platform's public address of the function)
    track = f"/v1/track?code={doc['code']}&secret={doc.get('tracking_secret')}"
    return {"code": doc["code"], "dossier_id": doc["id"], "procedure": doc["procedure"]["code"],
            "procedure_name": doc["procedure"]["name"], "received_at": doc["received_at"],
            "received_at_local": local.isoformat(timespec="minutes"), "clock_start": doc["clock_start"],
            "processing_days": doc["procedure"]["processing_days"], "appointment_at": doc["deadline"],
            "appointment_local": appointment.isoformat(timespec="minutes"), "appointment_date": doc["appointment_date"],
            "calendar_provisional": doc["calendar_provisional"], "channel": doc["channel"],
            "documents": [{"code": d["code"], "name": d.get("name"), "sha256": d["sha256"]} for d in doc["documents"]],
            "fees": doc["fees"], "fee_total_vnd": doc["fee_total_vnd"],
            "tracking_secret": doc.get("tracking_secret"),
            "track_path": track,
            "track_url": f"{runtime.current().settings.public_url()}{track}"}


def receipt_for(doc: dict, actor: Actor) -> dict:
    """The receipt as ``actor`` may read it again: the tracking secret only for the applicant and officers."""
    out = receipt(doc)
    if not is_applicant(doc, actor) and actor.kind != "officer":
        out["tracking_secret"] = None
        out["track_path"] = out["track_url"] = None
    return out


def submitted(doc: dict, actor: Actor) -> dict:
    """The answer to a submission: the dossier with its receipt."""
    return {**dossier(doc, actor), "receipt": receipt(doc)}


TRACK_LANGUAGES = ("vi", "en")
"""The languages the tracking names the state in (its Content-Language, by Accept-Language)."""


def track(doc: dict, at: datetime) -> dict:
    """Status, appointment, the current step and what is missing: nothing personal. The state is
    named in Vietnamese and in English; which one the reader asked for is the Content-Language the
    route sets."""
    step = workflow.active_step(doc)
    pause = deadlines.open_pause(doc)
    return {"code": doc["code"], "status": doc["status"], "status_vi": STATE_VI[doc["status"]],
            "status_en": STATE_EN[doc["status"]],
            "procedure": doc["procedure"]["code"], "procedure_name": doc["procedure"]["name"],
            "received_at": doc["received_at"], "appointment_at": doc["deadline"],
            "appointment_date": doc["appointment_date"], "overdue": deadlines.is_overdue(doc, at),
            "current_step": {"code": step["code"], "name": step["name"], "agency": step["agency"],
                             "deadline": step["deadline"]} if step else None,
            "missing": pause["missing"] if pause else [], "message": pause["message"] if pause else None,
            "result_ready": doc["status"] == "done", "finished_at": doc.get("finished_at"),
            "denial_reason": (doc.get("denial") or {}).get("reason")}
