"""The IOC's figures from the store: the declarations submitted on the days asked (the day index),
computed by :mod:`.stats`, and the trucks waiting now at the gates they crossed.

A day's finished declarations (refused, exited, cancelled, expired: they never change again) are
read once: their parts of the figures are then kept in the day's summary (:class:`.models.DayFigures`),
and a request reads only the declarations still live and those the summary has not taken in yet.
A month of figures at the province's peak read some 15,000 declarations a request before."""

from __future__ import annotations

from datetime import date, timedelta

from lscloud.aggregate import side_pool
from lscloud.query import QueryError
from lscloud.statemachine import now
from lscloud.store import ConditionalCheckFailed, StoreUnavailable

from . import indexes, ledger, lifecycle, queue, queueing, stats
from .models import DayFigures, DayIndex

MAX_DAYS = 31


def _listed(day: str, prefix: str) -> tuple[str, list[str], DayFigures]:
    """A local day's index entries (of one gate with ``prefix``; a listing, no GETs) and its summary."""
    entries = indexes.range_keys(DayIndex, day, prefix=prefix)
    try:
        # a day with no entry has no summary worth a GET (a quiet gate's month: most days)
        held = DayFigures.get(day) if entries else DayFigures(day, finished={})
    except DayFigures.DoesNotExist:
        held = DayFigures(day, finished={})
    return day, entries, held


def _read(day_entry: tuple[str, str]) -> dict | None:
    """The declaration of one day index entry, or None if either is gone. The entry's key holds
    the id only as a safe key part (``-`` as ``_``): the entry itself names it."""
    try:
        declaration_id = DayIndex.get(*day_entry).declaration_id
    except DayIndex.DoesNotExist:
        return None
    d = ledger.get_or_none(declaration_id)
    return None if d is None else d.data


def _keep(held: DayFigures) -> None:
    try:
        held.save()
    except (ConditionalCheckFailed, StoreUnavailable):
        pass   # another request kept its summary first, or none now: the next request takes these in


def figures(first: date | None, last: date | None, gate: str | None) -> dict:
    """Figures from ``first`` to ``last`` (local days; default today, at most 31), optionally of one gate."""
    first = first or now().astimezone(queue.TZ).date()
    last = last or first
    if not 0 <= (last - first).days < MAX_DAYS:
        raise QueryError("to", "to is on or after from, at most 31 days later",
                         "Ngày 'to' phải từ ngày 'from' trở đi và không quá 31 ngày sau.")
    prefix = indexes.safe(gate) + "_" if gate else ""
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    pool = side_pool()
    # the days' listings and summaries at once, then every entry not summed up at once: each task
    # reads the store only, never waiting on tasks queued behind it in the same pool
    listed = list(pool.map(lambda day: _listed(day, prefix), days))
    unread = [(day, e) for day, entries, held in listed for e in entries if e not in held.finished]
    docs = dict(zip(unread, pool.map(_read, unread)))
    contribs, grown = [], []
    for day, entries, held in listed:
        finished = {}
        for e in entries:
            if e in held.finished:
                contribs.append(held.finished[e])
            elif (doc := docs[(day, e)]) is not None:
                contribs.append(stats.contribution(doc))
                if doc["status"] in lifecycle.TERMINAL:
                    finished[e] = contribs[-1]
        if finished:
            held.finished = {**held.finished, **finished}
            grown.append(held)
    list(pool.map(_keep, grown))
    out = stats.compute_contributions(contribs)
    gates_seen = sorted({c[0] for c in contribs if c is not None} | ({gate} if gate else set()))
    out["waiting"] = [{"gate": gc, "flow": flow, "waiting": len(queueing.waiting(gc, flow))}
                      for gc in gates_seen for flow in queueing.FLOWS]
    out["from"], out["to"] = first.isoformat(), last.isoformat()
    return out
