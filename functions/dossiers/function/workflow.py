"""What happens to a dossier, plain Python over its document: the moves of :mod:`.states`' table
with the rules around them.

Every step of the procedure is assigned at receipt to one agency and, for the commune People's
Committee, to the dossier's unit; only an officer of that agency (and unit) moves it. The dossier's
deadline is fixed at receipt (working days from the clock start) and moves only by the working time
spent waiting for supplements; each step gets its own deadline when it becomes active
(:mod:`.deadlines`). Each move returns the :class:`~lscloud.statemachine.Transition` s that the
audit trail and the events are made of.
"""

from __future__ import annotations

from datetime import datetime

from lscloud import errors
from lscloud.statemachine import Actor, Transition, iso, parse_iso
from lscloud.workdays import Calendar, days_to_minutes, minutes_to_days

from . import deadlines
from .states import APPLICANTS, MACHINE, NotYourStep

RATEABLE = frozenset({"done", "denied"})


# -- who may move a step -----------------------------------------------------------------------

def assigned_to(step: dict, actor: Actor) -> bool:
    """An officer acts on a step of their own agency, and of their own unit when the step has one."""
    return (actor.kind == "officer" and actor.agency == step["agency"]
            and (step.get("unit") is None or actor.unit == step["unit"]))


def active_step(doc: dict) -> dict | None:
    i = doc.get("current_step")
    return doc["steps"][i] if i is not None else None


def _step_officer(doc: dict, actor: Actor, action: str) -> dict:
    """The step ``action`` works on (the first one before processing starts), if it is ``actor``'s."""
    MACHINE.check(doc, action, actor)
    step = active_step(doc) if doc["status"] != "received" else doc["steps"][0]
    if step is None:
        raise MACHINE.illegal(action, doc["status"], "no step is active")
    if not assigned_to(step, actor):
        where = step["agency"] + (f" / unit {step['unit']}" if step.get("unit") else "")
        raise NotYourStep(f"step {step['index'] + 1} ({step['code']}) is assigned to {where}; a {actor.kind} of "
                          f"{actor.agency or '-'} / {actor.unit or '-'} may not {action.replace('_', ' ')} it")
    return step


# -- receipt ----------------------------------------------------------------------------------------

def plan_steps(procedure: dict, unit: str, agency_units: dict[str, str | None]) -> list[dict]:
    """The procedure's steps assigned to agencies and units. ``ubnd-xa`` is the dossier's commune
    People's Committee; another agency's step goes to the unit of its seat (``agency_units``)."""
    out = []
    for i, s in enumerate(procedure["steps"]):
        agency = f"ubnd-{unit}" if s["agency"] == "ubnd-xa" else s["agency"]
        step_unit = unit if s["agency"] == "ubnd-xa" else agency_units.get(agency)
        try:
            days_to_minutes(s["days"])
        except ValueError as exc:
            raise errors.Invalid.at("/procedure", f"step {s['code']} of the procedure: {exc}",
                                    f"Bước {s['code']} của thủ tục có thời hạn xử lý không hợp lệ.") from None
        out.append({"index": i, "code": s["code"], "name": s["name"], "name_en": s.get("name_en"),
                    "agency": agency, "unit": step_unit, "days": s["days"], "status": "pending",
                    "planned_deadline": None, "started_at": None, "deadline": None, "finished_at": None,
                    "by": None, "note": None, "overdue": False})
    if not out:
        raise errors.Invalid.at("/procedure", "a procedure without steps cannot be processed",
                                "Thủ tục chưa có bước xử lý nào nên không thể tiếp nhận hồ sơ.")
    return out


def receive(doc: dict, actor: Actor, at: datetime, cal: Calendar) -> Transition:
    """Stamp the receipt: clock start, deadline (working days, or the close of the day for a
    same-day procedure), planned step deadlines."""
    doc["status"] = "new"
    deadlines.stamp_receipt(doc, at, cal)
    doc["paused_minutes"] = 0
    doc["pauses"] = []
    doc["current_step"] = None
    return MACHINE.apply(doc, "receive", actor, at=at, details={"deadline": doc["deadline"], "channel": doc["channel"]})


def check_documents(procedure: dict, documents: list[dict]) -> list[dict]:
    """errors[] for the procedure's required documents that are missing, and unknown codes."""
    known = {d["code"]: d for d in procedure.get("documents", [])}
    given = [d["code"] for d in documents]
    out = []
    for i, code in enumerate(given):
        if code not in known:
            out.append({"field": f"/documents/{i}/code",
                        "message": f"{code!r} is not a document of procedure {procedure['code']}"})
    for code, d in known.items():
        if d.get("required") and code not in given:
            out.append({"field": "/documents", "message": f"required document missing: {code} — {d['name']}",
                        "code": code, "name": d["name"], "name_en": d.get("name_en")})
    return out


# -- processing -------------------------------------------------------------------------------------

def _activate(doc: dict, i: int, start: datetime, deadline: str) -> None:
    s = doc["steps"][i]
    s["status"] = "active"
    s["started_at"] = iso(start)
    s["deadline"] = deadline
    doc["current_step"] = i


def _finish_step(step: dict, actor: Actor, at: datetime, note: str | None) -> None:
    step["status"] = "done"
    step["finished_at"] = iso(at)
    step["by"] = actor.sub
    step["note"] = note
    step["overdue"] = at > parse_iso(step["deadline"])


def start(doc: dict, actor: Actor, at: datetime, cal: Calendar) -> list[Transition]:
    _step_officer(doc, actor, "start")
    _activate(doc, 0, parse_iso(doc["clock_start"]), deadlines.first_step_deadline(doc, cal))
    first = doc["steps"][0]
    return [MACHINE.apply(doc, "start", actor, at=at, details={"step": first["code"], "agency": first["agency"]})]


def complete_step(doc: dict, actor: Actor, at: datetime, cal: Calendar, note: str | None = None) -> list[Transition]:
    step = _step_officer(doc, actor, "complete_step")
    if step["index"] == len(doc["steps"]) - 1:
        raise MACHINE.illegal("complete_step", doc["status"],
                              "this is the last step: return the result (finish) or deny the dossier")
    _finish_step(step, actor, at, note)
    nxt = doc["steps"][step["index"] + 1]
    _activate(doc, nxt["index"], at, deadlines.step_deadline(doc, nxt, at, cal))
    out = [MACHINE.apply(doc, "complete_step", actor, at=at, details={
        "step": step["code"], "agency": step["agency"], "on_time": not step["overdue"], "next_step": nxt["code"]})]
    if nxt["agency"] != step["agency"]:   # liên thông: the dossier is handed over to another agency
        out.append(MACHINE.apply(doc, "complete_step", actor, at=at, fact="dossier.handed-over", check=False, details={
            "from_agency": step["agency"], "to_agency": nxt["agency"], "to_unit": nxt["unit"], "step": nxt["code"],
            "step_deadline": nxt["deadline"]}))
    return out


def request_supplement(doc: dict, actor: Actor, at: datetime, missing: list[dict], message: str) -> list[Transition]:
    step = _step_officer(doc, actor, "request_supplement")
    if not missing:
        raise errors.Invalid.at("/missing", "name at least one missing or incorrect document",
                                "Cần nêu ít nhất một giấy tờ còn thiếu hoặc chưa đúng.")
    pause = {"n": len(doc["pauses"]) + 1, "requested_at": iso(at), "by": actor.sub, "agency": actor.agency,
             "step": step["code"], "resume_to": doc["status"], "missing": missing, "message": message,
             "resumed_at": None, "paused_minutes": None, "documents": []}
    doc["pauses"].append(pause)
    return [MACHINE.apply(doc, "request_supplement", actor, at=at, reason=message,
                          details={"pause": pause["n"], "missing": missing, "step": step["code"]})]


def provide_supplement(doc: dict, actor: Actor, at: datetime, cal: Calendar, documents: list[dict]) -> list[Transition]:
    """End the pause: every open deadline moves by exactly the working time spent waiting."""
    MACHINE.check(doc, "provide_supplement", actor)
    if actor.kind in APPLICANTS:
        if actor.sub != doc["owner"]:
            raise NotYourStep("only the dossier's applicant provides supplements")
    elif not (actor.kind == "officer" and actor.agency in {s["agency"] for s in doc["steps"]}):
        raise NotYourStep("an officer of an agency with a step on this dossier receives supplements at the counter")
    pause = deadlines.open_pause(doc)
    paused = deadlines.resume(doc, pause, at, cal)
    pause.update(resumed_at=iso(at), paused_minutes=paused, documents=[d["sha256"] for d in documents],
                 provided_by=actor.sub)
    doc["documents"].extend(documents)
    return [MACHINE.apply(doc, "provide_supplement", actor, at=at, target=pause["resume_to"],
                          details={"pause": pause["n"], "paused_working_days": minutes_to_days(paused),
                                   "deadline": doc["deadline"], "documents": pause["documents"]})]


def finish(doc: dict, actor: Actor, at: datetime, result: dict, note: str | None = None) -> list[Transition]:
    step = _step_officer(doc, actor, "finish")
    if step["index"] != len(doc["steps"]) - 1:
        raise MACHINE.illegal("finish", doc["status"],
                              f"step {step['index'] + 1} of {len(doc['steps'])} is active: complete it first")
    _finish_step(step, actor, at, note)
    doc["current_step"] = None
    doc["result"] = {**result, "at": iso(at), "by": actor.sub, "agency": actor.agency}
    deadlines.close(doc, at)
    return [MACHINE.apply(doc, "finish", actor, at=at,
                          details={"on_time": doc["on_time"], "result_sha256": result["sha256"]})]


def deny(doc: dict, actor: Actor, at: datetime, reason: str) -> list[Transition]:
    step = _step_officer(doc, actor, "deny")
    if not (reason or "").strip():
        raise errors.Invalid.at("/reason", "a denial states its reason", "Từ chối hồ sơ phải nêu rõ lý do.")
    if step["status"] == "active":
        _finish_step(step, actor, at, reason)
    doc["current_step"] = None
    doc["denial"] = {"reason": reason, "at": iso(at), "by": actor.sub, "agency": actor.agency, "step": step["code"]}
    deadlines.close(doc, at)
    return [MACHINE.apply(doc, "deny", actor, at=at, reason=reason,
                          details={"on_time": doc["on_time"], "step": step["code"]})]


def cancel(doc: dict, actor: Actor, at: datetime, reason: str | None) -> list[Transition]:
    if actor.kind not in APPLICANTS or actor.sub != doc["owner"]:
        raise NotYourStep("only the dossier's applicant may cancel it")
    MACHINE.check(doc, "cancel", actor)
    doc["finished_at"] = iso(at)
    doc["on_time"] = None
    return [MACHINE.apply(doc, "cancel", actor, at=at, reason=reason)]


# -- after the decision -------------------------------------------------------------------------------

def rateable(doc: dict) -> None:
    """Raise unless the dossier is finished (done or denied): only then does its applicant rate it."""
    if doc["status"] not in RATEABLE:
        raise MACHINE.illegal("rate", doc["status"], "a dossier is rated once it is finished")


def rate(doc: dict, actor: Actor, at: datetime, score: int) -> list[Transition]:
    rateable(doc)
    doc["rating"] = {"score": score, "at": iso(at)}
    return [MACHINE.note(doc, "rate", "dossier.rated", actor, at=at, details={"score": score})]


def flag_overdue(doc: dict, i: int, at: datetime) -> list[Transition]:
    """Flag step ``i`` overdue, once ever; nothing when it is no longer active and late."""
    step = doc["steps"][i]
    if step["status"] != "active" or step.get("overdue_flagged") or not deadlines.is_overdue_step(doc, step, at):
        return []
    step["overdue_flagged"] = iso(at)
    return [MACHINE.note(doc, "flag_overdue", "step.overdue", MACHINE.system, at=at, details={
        "step": step["code"], "agency": step["agency"], "unit": step.get("unit"), "deadline": step["deadline"]})]
