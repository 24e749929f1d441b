"""Reading many reports: by id, by day of receipt within a window (Open311 ``GET requests``), the
open ones (the overdue sweep), and stats per commune, category and agency.

The stats are of each report's *current* status, and a report never stops changing for good (a
closed one is reopened, any is hidden, a fixed one rated). They are summed from one summary per
local day of receipt (:class:`.models.DayFigures`: each report's part by its ``ReportByDay``
entry), which learns which of its reports moved from the change feed (:class:`.models.ReportTouched`,
every committed write under the day it was written). A request lists each day's entries, reads its
summary, lists the feed once from the oldest summary on, and reads only the reports received since
a summary was kept and those the feed says moved since; it read every report of the window (a year:
some 100,000 GETs a request).
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Iterable

from lscloud import workdays
from lscloud.aggregate import side_pool
from lscloud.statemachine import iso, now, parse_iso

from .states import OPEN, open311_status

MARGIN = timedelta(minutes=5)
"""A feed entry is written after its write's commit, on another process's clock: a summary kept at
``as_of`` takes in the feed again from ``as_of - MARGIN`` (all but the entries it has ``seen``)."""
REBUILD_AFTER = timedelta(days=7)
"""A summary built longer ago (and up to a day more, by its day, so days built together are not all
built again by one request) is built again from every report of its day: a feed entry lost (a
process dead between a commit and its indexes) leaves a report's part wrong at most that long."""
REFRESH = timedelta(days=1)
"""A summary nothing changed is kept again once its ``as_of`` is this old, so a request lists a day
or two of the feed, not a week of it."""


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
    return get_many(_received(start, end, limit))


def _received(start: datetime, end: datetime, limit: int) -> list[str]:
    """The ids of the reports received in ``[start, end]``, newest first, at most ``limit`` (listed
    from the days' entries, none read)."""
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
    return ids[:limit]


def requests(start: datetime, end: datetime, limit: int, *, codes: set[str] | None = None,
             status: set[str] | None = None) -> list[dict]:
    """Open311's ``GET requests``: the reports received in ``[start, end]`` of ``codes`` (service
    codes; None: any) in ``status`` (Open311's ``open`` / ``closed``; None: either), newest first, at
    most ``limit``, found among the window's newest ``2 * limit`` (as they always were).

    It read those ``2 * limit`` reports and then filtered: 2,000 reads for anyone's request of a code
    that names nothing. Now only what can be answered is read: a code the catalogue does not have
    names no report (nothing read); a status is told by the open index (:class:`.models.OpenReport`,
    listed once, as the queue and the overdue sweep trust it) before any report is read; and the
    rest is read in rounds of what the answer still lacks, so a listing whose reports all match
    reads ``limit`` of them. Every report read is checked against the filters itself: an index
    entry a move has not yet caught up with costs a read, never a wrong item."""
    from . import catalog

    if codes is not None:
        codes = codes & set(catalog.services())
        if not codes:
            return []
    ids = _received(start, end, 2 * limit)
    if status is not None and len(status) == 1:
        opened = set(open_ids())
        ids = [rid for rid in ids if (rid in opened) == ("open" in status)]
    out: list[dict] = []
    while ids and len(out) < limit:
        batch, ids = ids[:limit - len(out)], ids[limit - len(out):]
        out += [d for d in get_many(batch) if (codes is None or d["service_code"] in codes)
                and (status is None or open311_status(d["status"]) in status)]
    return out


def open_ids() -> list[str]:
    from .models import OpenReport

    return OpenReport.query_keys("open")


def part(doc: dict | None) -> list | None:
    """A report's part of its day's figures: ``[commune, category, agency or "-", status, overdue,
    rating]`` (None for no report)."""
    if doc is None:
        return None
    return [doc["commune"], doc["category"], doc.get("agency") or "-", doc["status"], bool(doc.get("overdue")),
            doc.get("rating")]


def figures(parts: Iterable[list], start: datetime, end: datetime) -> dict:
    """Counts per commune, category and agency of these reports' parts: received, open, closed,
    overdue, and the mean rating (hidden reports left out)."""

    def bucket():
        return {"received": 0, "open": 0, "closed": 0, "overdue": 0, "rated": 0, "rating_sum": 0}

    by: dict[str, dict[str, dict]] = {"commune": {}, "category": {}, "agency": {}}
    total = bucket()
    states: dict[str, int] = {}
    for commune, category, agency, status, overdue, rating in parts:
        if status == "hidden":
            continue
        states[status] = states.get(status, 0) + 1
        keys = {"commune": commune, "category": category, "agency": agency}
        for b in [total] + [by[k].setdefault(v, bucket()) for k, v in keys.items()]:
            b["received"] += 1
            b[open311_status(status)] += 1
            b["overdue"] += 1 if overdue and status in OPEN else 0
            if rating:
                b["rated"] += 1
                b["rating_sum"] += rating

    def done(b):
        s = b.pop("rating_sum")
        return {**b, "mean_rating": round(s / b["rated"], 2) if b["rated"] else None}

    return {"from": iso(start), "to": iso(end), "total": done(total), "states": states,
            **{f"by_{k}": {code: done(b) for code, b in sorted(v.items())} for k, v in by.items()}}


def _report_of(entry: str) -> str:
    return entry.rsplit("_", 1)[1]


def _day(day: str):
    """A local day's ``ReportByDay`` entries (a listing) and its summary, if it has one."""
    from .models import DayFigures, ReportByDay

    entries = ReportByDay.query_keys(day)
    try:
        # a day with no report has no summary either: not asked for (a year's window: many such)
        return day, entries, DayFigures.get(day) if entries else None
    except DayFigures.DoesNotExist:
        return day, entries, None


def _current(held, at: datetime) -> bool:
    """Whether a summary is brought up to date from the feed (else it is built again)."""
    from .models import TOUCHED_KEPT_S

    if held is None:
        return False
    # the days a first request built together are built again over a day of requests, not by one
    stagger = timedelta(seconds=zlib.crc32(held.day.encode()) % 86_400)
    return (parse_iso(held.built) > at - REBUILD_AFTER - stagger
            and parse_iso(held.as_of) - MARGIN > at - timedelta(seconds=TOUCHED_KEPT_S))


def _touched(since: datetime) -> dict[str, list[str]]:
    """The change feed's entries from ``since`` on, by report (listed, none read)."""
    from .models import ReportTouched

    first, last = since.astimezone(workdays.TZ).date(), now().astimezone(workdays.TZ).date()
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    lo = iso(since)
    out: dict[str, list[str]] = {}
    for keys in side_pool().map(lambda d: ReportTouched.query_keys(d, range_between=(lo, None), expired_too=True),
                                days):
        for key in keys:
            out.setdefault(key.rpartition("|")[2], []).append(key)
    return out


def _to_read(entries: list[str], held, touched: dict[str, list[str]]) -> list[str]:
    """The entries whose report is read: every one without a current summary; else those it lacks,
    and those whose report the feed shows moved since it was kept (but for the entries it has seen)."""
    if held is None:
        return entries
    rows, seen = held.rows or {}, set(held.seen or [])
    since = iso(parse_iso(held.as_of) - MARGIN)
    return [e for e in entries
            if e not in rows or any(t > since and t not in seen for t in touched.get(_report_of(e), ()))]


def _keep(held) -> None:
    from lscloud.store import ConditionalCheckFailed, StoreUnavailable

    try:
        held.save()
    except (ConditionalCheckFailed, StoreUnavailable):
        pass   # another request kept it first, or none now: the next request reads those reports again


def stats(start: datetime, end: datetime) -> dict:
    """Counts per commune, category and agency of the reports received in the window: received,
    open, closed, overdue, and the mean rating (see the module's docstring for how they are read)."""
    from .models import DayFigures

    at = now()
    lo, hi = iso(start), iso(end)
    first, last = start.astimezone(workdays.TZ).date(), end.astimezone(workdays.TZ).date()
    days = [(last - timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]   # newest first
    # every day's listing and summary at once; then the feed, the reports and the summaries kept,
    # each one round in parallel (never a pool's task waiting on tasks queued behind it in the same pool)
    listed = [(day, entries, held if _current(held, at) else None, held)
              for day, entries, held in side_pool().map(_day, days) if entries]
    kept_since = [parse_iso(current.as_of) for _, _, current, _ in listed if current is not None]
    touched = _touched(min(kept_since + [at]) - MARGIN)
    reading = [(day, entries, current, held, _to_read(entries, current, touched))
               for day, entries, current, held in listed]
    docs = {d["id"]: d for d in get_many(sorted({_report_of(e) for *_, read in reading for e in read}))}
    parts, saving = [], []
    for day, entries, current, held, read in reading:
        rows = dict(current.rows or {}) if current is not None else {}
        rows.update({e: part(docs.get(_report_of(e))) for e in read})
        parts += [rows[e] for e in reversed(entries) if lo <= e.rsplit("_", 1)[0] <= hi and rows.get(e) is not None]
        if current is not None and not read and parse_iso(current.as_of) > at - REFRESH:
            continue   # nothing new in it: kept as it is
        held = held or DayFigures(day)
        # what was read after the feed was listed has every entry listed: those the next request
        # would take in again (within the margin) are seen
        held.rows, held.as_of = rows, iso(at)
        held.seen = sorted(t for e in entries for t in touched.get(_report_of(e), ()) if t > iso(at - MARGIN))
        held.built = held.built if current is not None else iso(at)
        saving.append(held)
    list(side_pool().map(_keep, saving))
    return figures(parts, start, end)
