"""The IOC's figures: received, resolved, on time / late, overdue now and the online share, per
agency, commune (the dossier's unit) and procedure, over a period of local days.

- received: dossiers received in the period (by receipt day);
- resolved: dossiers finished in the period as done or denied (cancelled ones are neither);
  on_time / late split the resolved ones by their deadline (working days, pauses excluded);
- overdue_now: dossiers still open whose deadline has passed (the clock stops while waiting);
- online_share: online / received.

A supervisor sees their own agency's figures only.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from lscloud.query import QueryError
from lscloud.statemachine import Actor, iso
from lscloud.workdays import TZ

from . import deadlines, registry
from .models import DayIndex
from .states import OPEN

DEFAULT_DAYS = 30
MAX_DAYS = 366


def _row() -> dict:
    return {"received": 0, "received_online": 0, "resolved": 0, "on_time": 0, "late": 0, "overdue_now": 0,
            "cancelled": 0}


def _finish(row: dict) -> dict:
    row["online_share"] = round(row["received_online"] / row["received"], 4) if row["received"] else None
    row["on_time_share"] = round(row["on_time"] / row["resolved"], 4) if row["resolved"] else None
    return row


def compute(received: list[dict], finished: list[dict], open_docs: list[dict], now: datetime) -> dict:
    groups = {"agency": lambda d: d["agency"], "unit": lambda d: d["unit"], "procedure": lambda d: d["procedure"]["code"]}
    by = {g: defaultdict(_row) for g in groups}
    total = _row()

    def add(d, field_, n=1):
        total[field_] += n
        for g, key in groups.items():
            by[g][key(d)][field_] += n

    for d in received:
        add(d, "received")
        if d["channel"] == "online":
            add(d, "received_online")
    for d in finished:
        if d["status"] == "cancelled":
            add(d, "cancelled")
        elif d["status"] in ("done", "denied"):
            add(d, "resolved")
            add(d, "on_time" if d.get("on_time") else "late")
    for d in open_docs:
        if d["status"] in OPEN and deadlines.is_overdue(d, now):
            add(d, "overdue_now")
    return {"total": _finish(total),
            **{f"by_{g}": [{g: k, **_finish(v)} for k, v in sorted(rows.items())] for g, rows in by.items()}}


def report(actor: Actor, first: date | None, last: date | None, agency: str | None, at: datetime) -> dict:
    """The figures over local days ``first`` to ``last`` (default: the 30 days up to today), of one
    agency or all (a supervisor: always their own)."""
    last = last or at.astimezone(TZ).date()
    first = first or last - timedelta(days=DEFAULT_DAYS)
    if not 0 <= (last - first).days < MAX_DAYS:
        raise QueryError("to", "to is on or after from, at most 366 days later")
    agency = actor.agency if actor.kind == "supervisor" else agency
    received_ids, finished_ids = [], []
    d = first
    while d <= last:
        for e in DayIndex.query(d.isoformat()):
            (received_ids if e.entry.startswith("r_") else finished_ids).append(e.dossier_id)
        d += timedelta(days=1)
    received = registry.get_many(received_ids)
    finished = registry.get_many(finished_ids)
    open_docs = registry.get_many(registry.open_ids())
    if agency:
        received, finished, open_docs = ([x for x in docs if x["agency"] == agency]
                                         for docs in (received, finished, open_docs))
    return {"from": first.isoformat(), "to": last.isoformat(), "agency": agency, "at": iso(at),
            **compute(received, finished, open_docs, at)}
