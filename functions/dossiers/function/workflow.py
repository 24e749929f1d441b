"""The dossier's state machine (OpenCPS's statuses, with honest clocks), plain Python over a dict.

    received ──start──▶ processing ──complete_step──▶ processing (next step; liên thông when the
        │                  │  │                        agency changes) ──finish──▶ done (result)
        │                  │  └──deny──▶ denied (reason)
        │                  └──request_supplement──▶ waiting ──provide_supplement──▶ processing
        ├──request_supplement──▶ waiting ──provide_supplement──▶ received
        ├──deny──▶ denied
        └──cancel (the owner, before processing)──▶ cancelled

Every step of the procedure is assigned at receipt to one agency and, for the commune People's
Committee, to the dossier's unit; only an officer of that agency (and unit) moves it. The dossier's
deadline is fixed at receipt (working days from the clock start) and moves only by the working time
spent waiting for supplements; each step gets its own deadline when it becomes active.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timezone

from lscloud.workdays import Calendar, days_to_minutes, minutes_to_days

STATES = ("received", "processing", "waiting", "done", "denied", "cancelled")
TERMINAL = frozenset({"done", "denied", "cancelled"})
OPEN = frozenset({"received", "processing", "waiting"})
STATE_VI = {"received": "đã tiếp nhận", "processing": "đang xử lý", "waiting": "đang chờ bổ sung",
            "done": "đã có kết quả", "denied": "bị từ chối", "cancelled": "đã hủy"}
APPLICANTS = frozenset({"citizen", "enterprise"})


@dataclass(frozen=True)
class Actor:
    kind: str                      # citizen | enterprise | officer | supervisor | operator | system
    sub: str | None = None
    agency: str | None = None
    unit: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in (("kind", self.kind), ("sub", self.sub), ("agency", self.agency),
                                  ("unit", self.unit)) if v is not None}


SYSTEM = Actor("system", "dossiers")


@dataclass(frozen=True)
class Action:
    name: str
    sources: frozenset[str]
    target: str | None             # None: back to the state before the pause
    fact: str


ACTIONS = {a.name: a for a in (
    Action("receive", frozenset({"new"}), "received", "dossier.received"),
    Action("start", frozenset({"received"}), "processing", "processing.started"),
    Action("complete_step", frozenset({"processing"}), "processing", "step.completed"),
    Action("request_supplement", frozenset({"received", "processing"}), "waiting", "supplement.requested"),
    Action("provide_supplement", frozenset({"waiting"}), None, "supplement.provided"),
    Action("finish", frozenset({"processing"}), "done", "dossier.done"),
    Action("deny", frozenset({"received", "processing"}), "denied", "dossier.denied"),
    Action("cancel", frozenset({"received"}), "cancelled", "dossier.cancelled"),
)}


class IllegalTransition(Exception):
    """The action is not possible in the dossier's current state (HTTP 409)."""

    def __init__(self, action: str, state: str, why: str | None = None):
        super().__init__(why or f"cannot {action.replace('_', ' ')} a dossier that is {state}")
        self.action, self.state = action, state
        self.allowed_from = sorted(ACTIONS[action].sources) if action in ACTIONS else []


class NotPermitted(Exception):
    """This caller may not do this to this dossier (HTTP 403)."""


@dataclass
class Transition:
    action: str
    source: str
    target: str
    fact: str
    actor: Actor
    at: str
    reason: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        return f"vn.langson.dossiers.{self.fact}.v1"

    def audit(self) -> dict:
        return {"action": self.action, "from": self.source, "to": self.target, "fact": self.fact, "at": self.at,
                "actor": self.actor.as_dict(), "reason": self.reason, "details": self.details}


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _check(doc: dict, action: str) -> Action:
    a = ACTIONS[action]
    if doc["status"] not in a.sources:
        raise IllegalTransition(action, doc["status"])
    return a


def _move(doc: dict, a: Action, actor: Actor, at: datetime, target: str | None = None, reason=None,
          details=None, fact: str | None = None) -> Transition:
    when = iso(at)
    t = Transition(a.name, doc["status"], target or a.target, fact or a.fact, actor, when, reason, dict(details or {}))
    doc["status"] = t.target
    doc.setdefault("timestamps", {}).setdefault(t.target, when)
    doc["updated_at"] = when
    return t


# -- who may move a step -----------------------------------------------------------------------

def assigned_to(step: dict, actor: Actor) -> bool:
    """An officer acts on a step of their own agency, and of their own unit when the step has one."""
    return (actor.kind == "officer" and actor.agency == step["agency"]
            and (step.get("unit") is None or actor.unit == step["unit"]))


def active_step(doc: dict) -> dict | None:
    i = doc.get("current_step")
    return doc["steps"][i] if i is not None else None


def _require_step_officer(doc: dict, actor: Actor, action: str) -> dict:
    step = active_step(doc) if doc["status"] != "received" else doc["steps"][0]
    if step is None:
        raise IllegalTransition(action, doc["status"], "no step is active")
    if not assigned_to(step, actor):
        where = step["agency"] + (f" / unit {step['unit']}" if step.get("unit") else "")
        raise NotPermitted(f"step {step['index'] + 1} ({step['code']}) is assigned to {where}; "
                           f"a {actor.kind} of {actor.agency or '-'} / {actor.unit or '-'} may not {action.replace('_', ' ')} it")
    return step


# -- receipt ----------------------------------------------------------------------------------------

def plan_steps(procedure: dict, unit: str, agency_units: dict[str, str | None]) -> list[dict]:
    """The procedure's steps assigned to agencies and units. ``ubnd-xa`` is the dossier's commune
    People's Committee; another agency's step goes to the unit of its seat (``agency_units``)."""
    out = []
    for i, s in enumerate(procedure["steps"]):
        agency = f"ubnd-{unit}" if s["agency"] == "ubnd-xa" else s["agency"]
        step_unit = unit if s["agency"] == "ubnd-xa" else agency_units.get(agency)
        days_to_minutes(s["days"])   # validates: whole or half days
        out.append({"index": i, "code": s["code"], "name": s["name"], "name_en": s.get("name_en"),
                    "agency": agency, "unit": step_unit, "days": s["days"], "status": "pending",
                    "planned_deadline": None, "started_at": None, "deadline": None, "finished_at": None,
                    "by": None, "note": None, "overdue": False})
    if not out:
        raise ValueError("a procedure without steps cannot be processed")
    return out


def same_day_cutoff(procedure: dict) -> time | None:
    """The cut-off of a same-day procedure (``processing_days`` 0), None for any other."""
    if procedure.get("processing_days") != 0:
        return None
    hh, mm = (procedure.get("same_day_cutoff") or "").split(":")
    return time(int(hh), int(mm))


def receive(doc: dict, actor: Actor, at: datetime, cal: Calendar) -> Transition:
    """Stamp the receipt: clock start, deadline (working days, or the close of the day for a
    same-day procedure), planned step deadlines."""
    doc["status"] = "new"
    start = cal.clock_start(at)
    cutoff = same_day_cutoff(doc["procedure"])
    deadline = cal.end_of_day(at, cutoff) if cutoff else cal.add_days(start, doc["procedure"]["processing_days"])
    doc["received_at"] = iso(at)
    doc["clock_start"] = iso(start)
    doc["deadline"] = iso(deadline)
    doc["appointment_date"] = deadline.astimezone(cal_tz()).date().isoformat()
    doc["calendar_provisional"] = not cal.certain(start.astimezone(cal_tz()).date(),
                                                  deadline.astimezone(cal_tz()).date())
    doc["paused_minutes"] = 0
    doc["pauses"] = []
    doc["current_step"] = None
    cursor = start
    for s in doc["steps"]:
        cursor = cal.add_days(cursor, s["days"]) if s["days"] else deadline   # a 0-day step: due with the dossier
        s["planned_deadline"] = iso(cursor)
    return _move(doc, ACTIONS["receive"], actor, at, details={"deadline": doc["deadline"], "channel": doc["channel"]})


def cal_tz():
    from lscloud.workdays import TZ

    return TZ


def _activate(doc: dict, i: int, start: datetime, cal: Calendar) -> None:
    s = doc["steps"][i]
    s["status"] = "active"
    s["started_at"] = iso(start)
    if s["days"]:
        s["deadline"] = iso(cal.add_days(cal.clock_start(start, cutoff=False), s["days"]))
    else:   # a step of a same-day procedure is due when the dossier is
        s["deadline"] = doc["deadline"]
    doc["current_step"] = i


def start(doc: dict, actor: Actor, at: datetime, cal: Calendar) -> list[Transition]:
    a = _check(doc, "start")
    _require_step_officer(doc, actor, "start")
    # the first step's clock is the dossier's: time before an officer picks it up counts against it
    _activate(doc, 0, parse(doc["clock_start"]), cal)
    if doc["steps"][0]["days"]:   # a 0-day step took the dossier's deadline, pauses included
        doc["steps"][0]["deadline"] = iso(cal.shift(parse(doc["steps"][0]["deadline"]), doc["paused_minutes"]))
    return [_move(doc, a, actor, at, details={"step": doc["steps"][0]["code"], "agency": doc["steps"][0]["agency"]})]


def complete_step(doc: dict, actor: Actor, at: datetime, cal: Calendar, note: str | None = None) -> list[Transition]:
    a = _check(doc, "complete_step")
    step = _require_step_officer(doc, actor, "complete_step")
    if step["index"] == len(doc["steps"]) - 1:
        raise IllegalTransition("complete_step", doc["status"],
                                "this is the last step: return the result (finish) or deny the dossier")
    _finish_step(step, actor, at, note)
    nxt = step["index"] + 1
    _activate(doc, nxt, at, cal)
    out = [_move(doc, a, actor, at, details={"step": step["code"], "agency": step["agency"], "on_time": not step["overdue"],
                                            "next_step": doc["steps"][nxt]["code"]})]
    if doc["steps"][nxt]["agency"] != step["agency"]:
        out.append(_move(doc, a, actor, at, fact="dossier.handed-over",
                         details={"from_agency": step["agency"], "to_agency": doc["steps"][nxt]["agency"],
                                  "to_unit": doc["steps"][nxt]["unit"], "step": doc["steps"][nxt]["code"],
                                  "step_deadline": doc["steps"][nxt]["deadline"]}))
    return out


def _finish_step(step: dict, actor: Actor, at: datetime, note: str | None) -> None:
    step["status"] = "done"
    step["finished_at"] = iso(at)
    step["by"] = actor.sub
    step["note"] = note
    step["overdue"] = at > parse(step["deadline"])


def request_supplement(doc: dict, actor: Actor, at: datetime, missing: list[dict], message: str) -> list[Transition]:
    a = _check(doc, "request_supplement")
    step = _require_step_officer(doc, actor, "request_supplement")
    if not missing:
        raise ValueError("name at least one missing or incorrect document")
    pause = {"n": len(doc["pauses"]) + 1, "requested_at": iso(at), "by": actor.sub, "agency": actor.agency,
             "step": step["code"], "resume_to": doc["status"], "missing": missing, "message": message,
             "resumed_at": None, "paused_minutes": None, "documents": []}
    doc["pauses"].append(pause)
    return [_move(doc, a, actor, at, reason=message, details={"pause": pause["n"], "missing": missing,
                                                             "step": step["code"]})]


def open_pause(doc: dict) -> dict | None:
    p = doc.get("pauses") or []
    return p[-1] if p and p[-1]["resumed_at"] is None else None


def provide_supplement(doc: dict, actor: Actor, at: datetime, cal: Calendar, documents: list[dict]) -> list[Transition]:
    """End the pause: every open deadline moves by exactly the working time spent waiting."""
    a = _check(doc, "provide_supplement")
    if actor.kind in APPLICANTS:
        if actor.sub != doc["owner"]:
            raise NotPermitted("only the dossier's applicant provides supplements")
    elif not (actor.kind == "officer" and actor.agency in {s["agency"] for s in doc["steps"]}):
        raise NotPermitted("an officer of an agency with a step on this dossier receives supplements at the counter")
    pause = open_pause(doc)
    paused = cal.between(parse(pause["requested_at"]), at)
    pause.update(resumed_at=iso(at), paused_minutes=paused, documents=[d["sha256"] for d in documents],
                 provided_by=actor.sub)
    doc["paused_minutes"] += paused
    doc["deadline"] = iso(cal.shift(parse(doc["deadline"]), paused))
    doc["appointment_date"] = parse(doc["deadline"]).astimezone(cal_tz()).date().isoformat()
    step = active_step(doc)
    if step is not None and step["status"] == "active":
        step["deadline"] = iso(cal.shift(parse(step["deadline"]), paused))
    for s in doc["steps"]:
        if s["status"] == "pending" and s["planned_deadline"]:
            s["planned_deadline"] = iso(cal.shift(parse(s["planned_deadline"]), paused))
    doc["documents"].extend(documents)
    return [_move(doc, a, actor, at, target=pause["resume_to"],
                  details={"pause": pause["n"], "paused_working_days": minutes_to_days(paused),
                           "deadline": doc["deadline"], "documents": pause["documents"]})]


def finish(doc: dict, actor: Actor, at: datetime, result: dict, note: str | None = None) -> list[Transition]:
    a = _check(doc, "finish")
    step = _require_step_officer(doc, actor, "finish")
    if step["index"] != len(doc["steps"]) - 1:
        raise IllegalTransition("finish", doc["status"],
                                f"step {step['index'] + 1} of {len(doc['steps'])} is active: complete it first")
    _finish_step(step, actor, at, note)
    doc["current_step"] = None
    doc["result"] = {**result, "at": iso(at), "by": actor.sub, "agency": actor.agency}
    _close(doc, at)
    return [_move(doc, a, actor, at, details={"on_time": doc["on_time"], "result_sha256": result["sha256"]})]


def deny(doc: dict, actor: Actor, at: datetime, reason: str) -> list[Transition]:
    a = _check(doc, "deny")
    step = _require_step_officer(doc, actor, "deny")
    if not (reason or "").strip():
        raise ValueError("a denial states its reason")
    if step["status"] == "active":
        _finish_step(step, actor, at, reason)
    doc["current_step"] = None
    doc["denial"] = {"reason": reason, "at": iso(at), "by": actor.sub, "agency": actor.agency, "step": step["code"]}
    _close(doc, at)
    return [_move(doc, a, actor, at, reason=reason, details={"on_time": doc["on_time"], "step": step["code"]})]


def cancel(doc: dict, actor: Actor, at: datetime, reason: str | None) -> list[Transition]:
    if actor.kind not in APPLICANTS or actor.sub != doc["owner"]:
        raise NotPermitted("only the dossier's applicant may cancel it")
    a = _check(doc, "cancel")
    doc["finished_at"] = iso(at)
    doc["on_time"] = None
    return [_move(doc, a, actor, at, reason=reason)]


def _close(doc: dict, at: datetime) -> None:
    doc["finished_at"] = iso(at)
    doc["on_time"] = at <= parse(doc["deadline"])


# -- overdue -------------------------------------------------------------------------------------

def clock_now(doc: dict, now: datetime) -> datetime:
    """The dossier's clock: stopped while it waits for supplements, and at its end when finished."""
    if doc["status"] in TERMINAL:
        return parse(doc.get("finished_at")) or now
    pause = open_pause(doc)
    if doc["status"] == "waiting" and pause:
        return parse(pause["requested_at"])
    return now


def is_overdue(doc: dict, now: datetime) -> bool:
    if doc["status"] == "cancelled":
        return False
    return clock_now(doc, now) > parse(doc["deadline"])


def is_overdue_step(doc: dict, step: dict, now: datetime) -> bool:
    return step["status"] == "active" and bool(step["deadline"]) and clock_now(doc, now) > parse(step["deadline"])


def overdue_steps(doc: dict, now: datetime) -> list[dict]:
    at = clock_now(doc, now)
    return [s for s in doc["steps"]
            if (s["status"] == "done" and s["overdue"])
            or (s["status"] == "active" and s["deadline"] and at > parse(s["deadline"]))]


def allowed_actions(state: str) -> list[str]:
    return sorted(n for n, a in ACTIONS.items() if state in a.sources and n != "receive")


def check_documents(procedure: dict, documents: list[dict]) -> list[dict]:
    """errors[] for the procedure's required documents that are missing, and unknown codes."""
    known = {d["code"]: d for d in procedure.get("documents", [])}
    given = [d["code"] for d in documents]
    errors = []
    for i, code in enumerate(given):
        if code not in known:
            errors.append({"field": f"/documents/{i}/code",
                           "message": f"{code!r} is not a document of procedure {procedure['code']}"})
    for code, d in known.items():
        if d.get("required") and code not in given:
            errors.append({"field": "/documents", "message": f"required document missing: {code} — {d['name']}",
                           "code": code, "name": d["name"], "name_en": d.get("name_en")})
    return errors
