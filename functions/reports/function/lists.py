"""What the reports' own indexes answer, beside the reports (:mod:`.reports` writes them): an
agency's queue, FixMyStreet's updates in a window, and the entries a process gives the reports
stored before the due and queue indexes existed (:mod:`.queries` reads many reports by id or day)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lscloud import store, workdays
from lscloud.aggregate import delete_quietly, save_quietly, side_pool
from lscloud.statemachine import iso
from lscloud.timestamps import parse_iso

from . import reports
from .models import AgencyQueue, DueReport, UpdateIndex, due_entry, update_entry
from .queries import get_many, in_window, open_ids
from .states import OPEN


INDEX_MARGIN = timedelta(hours=1)
"""Moves up to this long after the updates index was first read are also looked for in the trails
of the reports received then: replicas of the version before the index may still run that long."""

Move = tuple[str, str, str, str]   # (at UTC, report id, audit entry, state it moved to)


def updates(start: datetime, end: datetime, limit: int) -> list[tuple[dict, dict]]:
    """FixMyStreet's updates made in ``[start, end]``, oldest first, at most ``limit``: ``(report, entry)``
    for :func:`.views.fms_update`. From the updates index (every move of any report, by the day it
    was made), reading only the reports answered with; the part of the window before the index
    existed as before (the trails of the reports received in it), but for what the migration has put
    in the index (:func:`backfilled`): every move made before it. Without it, anyone's request of a
    window before the index (a ``start_date`` in the past) read up to ``limit`` reports' trails."""
    since, complete = _index_since(), backfilled()
    moves: dict[tuple[str, str], Move] = {}
    trails_from = start if complete is None else max(start, complete)
    if trails_from < since + INDEX_MARGIN and trails_from <= end:
        for m in _moves_in_trails(trails_from, min(end, since + INDEX_MARGIN), limit):
            moves[(m[1], m[2])] = m
    indexed_from = start if complete is not None else max(start, since)
    if end >= indexed_from:
        for m in _moves_indexed(indexed_from, end, limit):
            moves[(m[1], m[2])] = m
    chosen = sorted(moves.values())[:limit]
    docs = {d["id"]: d for d in get_many(sorted({m[1] for m in chosen}))}
    return [(docs[rid], {"entry": key, "to": to, "at": at}) for at, rid, key, to in chosen if rid in docs]


_since: dict[str, datetime] = {}   # bucket -> its marker (create-only: it never changes once kept)


def _index_since() -> datetime:
    """When the updates index was first read (kept, create-only, by the first read): every move
    since is in it. Listed once per process, not on every request."""
    bucket = store.connection()[1]
    if bucket not in _since:
        if not UpdateIndex.query_keys("_since", limit=1):
            save_quietly(UpdateIndex("_since", iso(datetime.now(timezone.utc))))
        _since[bucket] = parse_iso(UpdateIndex.query_keys("_since", limit=1)[0])   # the first kept, if two raced
    return _since[bucket]


BACKFILLED = "_backfilled"
"""The updates index's marker (create-only, its entry an ISO time): every move made before that time
is in the index, put there from the trails by the migration (:func:`trail_entries`)."""
_backfilled: dict[str, datetime] = {}   # bucket -> its marker, once there (it never changes once kept)


def backfilled() -> datetime | None:
    """When the migration began putting every earlier move in the updates index, once it finished
    (None before: listed again each time, so a process sees it once it is there)."""
    bucket = store.connection()[1]
    if bucket not in _backfilled:
        kept = UpdateIndex.query_keys(BACKFILLED, limit=1)
        if not kept:
            return None
        _backfilled[bucket] = parse_iso(kept[0])
    return _backfilled[bucket]


def mark_backfilled(began: datetime) -> None:
    """Record that every move made before ``began`` is in the updates index (a later run's record is
    kept beside it; the earliest is the one read, and says the least)."""
    save_quietly(UpdateIndex(BACKFILLED, iso(began)))


def trail_entries(report_id: str) -> list[UpdateIndex]:
    """The updates index's entries of every move in a report's trail, as its writes kept them since
    the index exists (the same keys: kept again, they are no-ops)."""
    return [UpdateIndex(workdays.local_day(e["at"]), update_entry(e["at"], report_id, e["entry"], e["to"]))
            for e in reports.records().trail(report_id) if reports.is_update(e.get("fact"))]


def _moves_indexed(start: datetime, end: datetime, limit: int) -> list[Move]:
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
    lo, hi = iso(start), iso(end)
    docs = in_window(start, end, limit)
    trails = side_pool().map(lambda d: (d["id"], reports.records().trail(d["id"])), docs)
    return [(e["at"], rid, e["entry"], e["to"]) for rid, trail in trails for e in trail
            if reports.is_update(e.get("fact")) and lo <= e["at"] <= hi]


def queue(agency: str) -> list[dict]:
    """The open reports routed to ``agency``, oldest deadline first, from its queue index: only its
    entries are listed and only their reports read. An entry a report left behind (closed,
    transferred, given another deadline) is dropped."""
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
    return doc["status"] in OPEN and doc.get("agency") == agency and due_entry(doc) == entry


def _drop(agency: str, entry: str) -> None:
    """Delete a queue entry its report left behind, then look again: a report that came back to it
    meanwhile (transferred back, its write's create-only entry a no-op before the delete) gets it
    again, so no open report is ever left out of its agency's queue."""
    delete_quietly(AgencyQueue, agency, entry)
    again = get_many([entry.partition("_")[2]])
    if again and _queued(again[0], agency, entry):
        save_quietly(AgencyQueue(agency, entry))


_indexed: list[bool] = [False]   # this process has given every open report its due and queue entries


def indexed() -> None:
    """Give the open reports stored before the due and queue indexes their entries, once per
    process (a read of every open report, where the sweep and the queue did that on every call)."""
    if _indexed[0]:
        return
    for doc in get_many(open_ids()):
        if doc["status"] not in OPEN:
            continue
        if not doc.get("overdue"):
            save_quietly(DueReport("due", due_entry(doc)))
        if doc.get("agency"):
            save_quietly(AgencyQueue(doc["agency"], due_entry(doc)))
    _indexed[0] = True
