"""Reading many reports: by id, by day of receipt within a window (Open311 ``GET requests``), the
open ones (the overdue sweep), and stats per commune, category and agency."""

from __future__ import annotations

from datetime import datetime, timedelta
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
