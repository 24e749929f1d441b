"""Reading many reports: by id, by day of receipt within a window (Open311 ``GET requests``), the
open ones (the overdue sweep), and stats per commune, category and agency."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

from lscloud import workdays
from lscloud.aggregate import side_pool
from lscloud.statemachine import iso

from .states import OPEN, open311_status


def get_many(ids: Iterable[str]) -> list[dict]:
    """The reports of ``ids`` that exist, in order (read in parallel)."""
    from lscloud.store import DoesNotExist, InvalidKey

    from .models import Report

    def one(rid):
        try:
            return Report.get(rid).data
        except (DoesNotExist, InvalidKey):   # an id that names nothing (or cannot be a key) is simply not listed
            return None                      # (a store that does not answer is the caller's 503, not a shorter list)

    return [d for d in side_pool().map(one, list(ids)) if d is not None]


def in_window(start: datetime, end: datetime, limit: int) -> list[dict]:
    """Reports received in ``[start, end]``, newest first, at most ``limit``."""
    from .models import ReportByDay

    lo, hi = iso(start), iso(end)
    day, first = end.astimezone(workdays.TZ).date(), start.astimezone(workdays.TZ).date()
    ids: list[str] = []
    while day >= first and len(ids) < limit:
        rows = ReportByDay.query_keys(day.isoformat())
        for entry in reversed(rows):
            at, rid = entry.rsplit("_", 1)
            if lo <= at <= hi:
                ids.append(rid)
        day -= timedelta(days=1)
    return get_many(ids[:limit])


INDEX_MARGIN = timedelta(hours=1)
"""Moves up to this long after the updates index was first read are also looked for in the trails
of the reports received then: replicas of the version before the index may still run that long."""

Move = tuple[str, str, str, str]   # (at UTC, report id, audit entry, state it moved to)


def updates(start: datetime, end: datetime, limit: int) -> list[tuple[dict, dict]]:
    """FixMyStreet's updates made in ``[start, end]``, oldest first, at most ``limit``: ``(report, entry)``
    for :func:`.views.fms_update`. From the updates index (every move of any report, by the day it
    was made), reading only the reports answered with; the part of the window before the index
    existed as before (the trails of the reports received in it)."""
    since = _index_since()
    moves: dict[tuple[str, str], Move] = {}
    if start < since + INDEX_MARGIN:
        for m in _moves_in_trails(start, min(end, since + INDEX_MARGIN), limit):
            moves[(m[1], m[2])] = m
    if end >= since:
        for m in _moves_indexed(max(start, since), end, limit):
            moves[(m[1], m[2])] = m
    chosen = sorted(moves.values())[:limit]
    docs = {d["id"]: d for d in get_many(sorted({m[1] for m in chosen}))}
    return [(docs[rid], {"entry": key, "to": to, "at": at}) for at, rid, key, to in chosen if rid in docs]


def _index_since() -> datetime:
    """When the updates index was first read (kept, create-only, by the first read): every move
    since is in it."""
    from lscloud.aggregate import save_quietly
    from lscloud.timestamps import parse_iso

    from .models import UpdateIndex

    kept = UpdateIndex.query_keys("_since", limit=1)
    if kept:
        return parse_iso(kept[0])
    at = datetime.now(timezone.utc)
    save_quietly(UpdateIndex("_since", iso(at)))
    return parse_iso(UpdateIndex.query_keys("_since", limit=1)[0])


def _moves_indexed(start: datetime, end: datetime, limit: int) -> list[Move]:
    from .models import UpdateIndex

    lo, hi = iso(start), iso(end)
    out: list[Move] = []
    day, last = start.astimezone(workdays.TZ).date(), end.astimezone(workdays.TZ).date()
    while day <= last and len(out) < limit:
        for key in UpdateIndex.query_keys(day.isoformat(), range_between=(lo, hi + "~"), limit=limit - len(out)):
            at, rid, entry, to = key.split("|")
            if lo <= at <= hi:
                out.append((at, rid, entry, to))
        day += timedelta(days=1)
    return out


def _moves_in_trails(start: datetime, end: datetime, limit: int) -> list[Move]:
    """The moves made in the window of the reports received in it (all there was before the index)."""
    from . import reports

    lo, hi = iso(start), iso(end)
    docs = in_window(start, end, limit)
    trails = side_pool().map(lambda d: (d["id"], reports.records().trail(d["id"])), docs)
    return [(e["at"], rid, e["entry"], e["to"]) for rid, trail in trails for e in trail
            if reports.is_update(e.get("fact")) and lo <= e["at"] <= hi]


def queue(agency: str) -> list[dict]:
    """The open reports routed to ``agency``, oldest deadline first, from its queue index: only its
    entries are listed and only their reports read. An entry a report left behind (closed,
    transferred, given another deadline) is dropped."""
    from .models import AgencyQueue

    indexed()
    entries = AgencyQueue.query_keys(agency)
    docs = {d["id"]: d for d in get_many(e.partition("_")[2] for e in entries)}
    out = []
    for entry in entries:
        doc = docs.get(entry.partition("_")[2])
        if doc is not None and _queued(doc, agency, entry):
            out.append(doc)
        else:
            _drop(agency, entry)
    return out


def _queued(doc: dict, agency: str, entry: str) -> bool:
    from . import reports

    return doc["status"] in OPEN and doc.get("agency") == agency and reports.due_entry(doc) == entry


def _drop(agency: str, entry: str) -> None:
    """Delete a queue entry its report left behind, then look again: a report that came back to it
    meanwhile (transferred back, its write's create-only entry a no-op before the delete) gets it
    again, so no open report is ever left out of its agency's queue."""
    from lscloud.aggregate import delete_quietly, save_quietly

    from .models import AgencyQueue

    delete_quietly(AgencyQueue, agency, entry)
    again = get_many([entry.partition("_")[2]])
    if again and _queued(again[0], agency, entry):
        save_quietly(AgencyQueue(agency, entry))


_indexed: list[bool] = [False]   # this process has given every open report its due and queue entries


def indexed() -> None:
    """Give the open reports stored before the due and queue indexes their entries, once per
    process (a read of every open report, where the sweep and the queue did that on every call)."""
    from lscloud.aggregate import save_quietly

    from . import reports
    from .models import AgencyQueue, DueReport

    if _indexed[0]:
        return
    for doc in get_many(open_ids()):
        if doc["status"] not in OPEN:
            continue
        if not doc.get("overdue"):
            save_quietly(DueReport("due", reports.due_entry(doc)))
        if doc.get("agency"):
            save_quietly(AgencyQueue(doc["agency"], reports.due_entry(doc)))
    _indexed[0] = True


def open_ids() -> list[str]:
    from .models import OpenReport

    return OpenReport.query_keys("open")


def stats(start: datetime, end: datetime) -> dict:
    """Counts per commune, category and agency of the reports received in the window: received,
    open, closed, overdue, and the mean rating."""
    docs = in_window(start, end, 100_000)

    def bucket():
        return {"received": 0, "open": 0, "closed": 0, "overdue": 0, "rated": 0, "rating_sum": 0}

    by: dict[str, dict[str, dict]] = {"commune": {}, "category": {}, "agency": {}}
    total = bucket()
    states: dict[str, int] = {}
    for d in docs:
        if d["status"] == "hidden":
            continue
        states[d["status"]] = states.get(d["status"], 0) + 1
        keys = {"commune": d["commune"], "category": d["category"], "agency": d.get("agency") or "-"}
        for b in [total] + [by[k].setdefault(v, bucket()) for k, v in keys.items()]:
            b["received"] += 1
            b[open311_status(d["status"])] += 1
            b["overdue"] += 1 if d.get("overdue") and d["status"] in OPEN else 0
            if d.get("rating"):
                b["rated"] += 1
                b["rating_sum"] += d["rating"]

    def done(b):
        s = b.pop("rating_sum")
        return {**b, "mean_rating": round(s / b["rated"], 2) if b["rated"] else None}

    return {"from": iso(start), "to": iso(end), "total": done(total), "states": states,
            **{f"by_{k}": {code: done(b) for code, b in sorted(v.items())} for k, v in by.items()}}
