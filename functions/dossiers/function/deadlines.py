"""A dossier's deadlines and its clock, counted on the runtime's working-day calendar
(:mod:`lscloud.workdays`).

- At receipt the clock starts (:meth:`~lscloud.workdays.Calendar.clock_start`: office hours, the
  16:00 cut-off) and the dossier's deadline is fixed: ``processing_days`` working days later, or
  the close of the day of receipt for a same-day procedure (``processing_days`` 0, received
  before the procedure's ``same_day_cutoff``; else the close of the next working day).
- Each step gets a planned deadline at receipt and its own deadline when it becomes active; a
  0-day step is due with the dossier.
- While the dossier waits for supplements the clock stops: on resuming, every open deadline moves
  by exactly the working time spent waiting.
- A dossier is overdue when its clock (stopped while waiting, at its end once finished) is past
  its deadline; a cancelled one never is.
"""

from __future__ import annotations

from datetime import datetime, time

from lscloud.statemachine import iso, parse_iso
from lscloud.workdays import TZ, Calendar, minutes_to_days

from .states import TERMINAL


def same_day_cutoff(procedure: dict) -> time | None:
    """The cut-off of a same-day procedure (``processing_days`` 0), None for any other."""
    if procedure.get("processing_days") != 0:
        return None
    hh, mm = (procedure.get("same_day_cutoff") or "").split(":")
    return time(int(hh), int(mm))


def stamp_receipt(doc: dict, at: datetime, cal: Calendar) -> None:
    """Clock start, deadline, appointment date (and whether the calendar is sure of it), and every
    step's planned deadline, for a dossier received at ``at``."""
    start = cal.clock_start(at)
    cutoff = same_day_cutoff(doc["procedure"])
    deadline = cal.end_of_day(at, cutoff) if cutoff else cal.add_days(start, doc["procedure"]["processing_days"])
    doc["received_at"] = iso(at)
    doc["clock_start"] = iso(start)
    doc["deadline"] = iso(deadline)
    doc["appointment_date"] = deadline.astimezone(TZ).date().isoformat()
    doc["calendar_provisional"] = not cal.certain(start.astimezone(TZ).date(), deadline.astimezone(TZ).date())
    cursor = start
    for s in doc["steps"]:
        cursor = cal.add_days(cursor, s["days"]) if s["days"] else deadline   # a 0-day step: due with the dossier
        s["planned_deadline"] = iso(cursor)


def step_deadline(doc: dict, step: dict, start: datetime, cal: Calendar) -> str:
    """The deadline of ``step`` becoming active at ``start`` (a step of a same-day procedure is
    due when the dossier is)."""
    if not step["days"]:
        return doc["deadline"]
    return iso(cal.add_days(cal.clock_start(start, cutoff=False), step["days"]))


def first_step_deadline(doc: dict, cal: Calendar) -> str:
    """The first step's clock is the dossier's: time before an officer picks it up counts against
    it, and so does a pause taken before processing started."""
    step = doc["steps"][0]
    deadline = step_deadline(doc, step, parse_iso(doc["clock_start"]), cal)
    if step["days"]:   # a 0-day step took the dossier's deadline, pauses included
        deadline = iso(cal.shift(parse_iso(deadline), doc["paused_minutes"]))
    return deadline


def open_pause(doc: dict) -> dict | None:
    """The pause the clock is stopped by (a supplement asked for and not yet provided)."""
    p = doc.get("pauses") or []
    return p[-1] if p and p[-1]["resumed_at"] is None else None


def resume(doc: dict, pause: dict, at: datetime, cal: Calendar) -> int:
    """End ``pause`` at ``at``: every open deadline moves by the working minutes spent waiting,
    which are returned."""
    paused = cal.between(parse_iso(pause["requested_at"]), at)
    doc["paused_minutes"] += paused
    doc["deadline"] = iso(cal.shift(parse_iso(doc["deadline"]), paused))
    doc["appointment_date"] = parse_iso(doc["deadline"]).astimezone(TZ).date().isoformat()
    # moved into a year the calendar does not know yet (or past an unverified day): no longer certain
    doc["calendar_provisional"] = not cal.certain(parse_iso(doc["clock_start"]).astimezone(TZ).date(),
                                                  parse_iso(doc["deadline"]).astimezone(TZ).date())
    i = doc.get("current_step")
    if i is not None and doc["steps"][i]["status"] == "active":
        doc["steps"][i]["deadline"] = iso(cal.shift(parse_iso(doc["steps"][i]["deadline"]), paused))
    for s in doc["steps"]:
        if s["status"] == "pending" and s["planned_deadline"]:
            s["planned_deadline"] = iso(cal.shift(parse_iso(s["planned_deadline"]), paused))
    return paused


def close(doc: dict, at: datetime) -> None:
    """A dossier decided at ``at`` (done or denied): on time if by its deadline."""
    doc["finished_at"] = iso(at)
    doc["on_time"] = at <= parse_iso(doc["deadline"])


# -- the clock and overdue -------------------------------------------------------------------------

def open_clock(status: str, paused_at: str | None, now: datetime) -> datetime:
    """An open dossier's clock: stopped at the start of the pause it waits in, else ``now``."""
    return parse_iso(paused_at) if status == "waiting" and paused_at else now


def clock_now(doc: dict, now: datetime) -> datetime:
    """The dossier's clock: stopped while it waits for supplements, and at its end when finished."""
    if doc["status"] in TERMINAL:
        return parse_iso(doc["finished_at"]) if doc.get("finished_at") else now
    pause = open_pause(doc)
    return open_clock(doc["status"], pause["requested_at"] if pause else None, now)


def is_overdue(doc: dict, now: datetime) -> bool:
    if doc["status"] == "cancelled":
        return False
    return clock_now(doc, now) > parse_iso(doc["deadline"])


def is_overdue_step(doc: dict, step: dict, now: datetime) -> bool:
    return step["status"] == "active" and bool(step["deadline"]) and clock_now(doc, now) > parse_iso(step["deadline"])


def overdue_steps(doc: dict, now: datetime) -> list[dict]:
    """Steps finished late, and the active step if its deadline has passed."""
    at = clock_now(doc, now)
    return [s for s in doc["steps"]
            if (s["status"] == "done" and s["overdue"])
            or (s["status"] == "active" and s["deadline"] and at > parse_iso(s["deadline"]))]


def clock(doc: dict, now: datetime, cal: Calendar) -> dict:
    """The clock as a dossier's reader sees it, in working days."""
    at = clock_now(doc, now)
    deadline = parse_iso(doc["deadline"])
    return {"running": doc["status"] in ("received", "processing"),
            "elapsed_working_days": minutes_to_days(cal.between(parse_iso(doc["clock_start"]), at)
                                                    - doc.get("paused_minutes", 0)),
            "remaining_working_days": minutes_to_days(cal.between(at, deadline)),
            "late_by_working_days": minutes_to_days(cal.between(deadline, at))}
