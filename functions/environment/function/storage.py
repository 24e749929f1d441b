"""Readings into hour documents and hourly summaries into day documents, each written read-modify-
write under ``If-Match`` (a lost race reads again), so concurrent writers never overwrite each other.

A reading is idempotent on (station, observed_at): the same values again are a duplicate (nothing
written), other values for a time already recorded are a conflict (the first stays). Late and
out-of-order readings simply land in their own hour; that hour's summary is recomputed.
"""

from __future__ import annotations

import json
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from lscloud.lru import LRU
from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.store.retry import DEFAULT
from lscloud.timestamps import parse_iso

from . import clock, readings
from .models import Day, Hour

_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="environment-days")
# Writers of the same document in this process take turns (striped locks): device messages of one
# station arrive in parallel deliveries and would otherwise spend their time losing If-Match races.
# Correctness never depends on it — other replicas still meet at If-Match.
_stripes = [threading.Lock() for _ in range(64)]


def _turn(*key: str) -> threading.Lock:
    return _stripes[hash(key) % len(_stripes)]


VERSION = "_version"   # key of the hour document's version inside a day slot (not a parameter name)


@dataclass
class HourWrite:
    """What one hour's write did, item by item."""

    hour: str
    created: bool = False
    accepted: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    redo: list[str] = field(default_factory=list)   # duplicates first stored less than REDO_S ago
    conflict: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    version: int = 0


def _rmw(load, build, apply, save_new):
    """Read-modify-write with create-only for a missing document, under the one retry policy."""
    for attempt in range(DEFAULT.retries + 1):
        try:
            item = load()
            fresh = False
        except DoesNotExist:
            item, fresh = build(), True
        result = apply(item)
        if result is None:
            return item, None, fresh
        try:
            item.save() if not fresh else save_new(item)
            return item, result, fresh
        except ConditionalCheckFailed:
            if attempt < DEFAULT.retries:
                DEFAULT.pause(attempt)
    raise ConditionalCheckFailed("the hour kept changing", key=None)


REDO_S = 3600
"""A reading found stored already, first stored less than this ago, is a delivery again of a message
whose run may have stopped after storing it: what follows a reading's storing (the day summary, the
event, the alert) is done again for it (each is repeat-safe). An older duplicate is a device resending."""


def write_hour(station: dict, hour: str, items: list[dict], channel: str, received: str) -> HourWrite:
    """Add ``items`` (``{"observed_at": utc iso, "values": {...}, "flags": {...}}``) to one hour."""
    out = HourWrite(hour)
    recent = clock.utc(parse_iso(received) - timedelta(seconds=REDO_S))   # stored as ``received`` is

    def apply(doc: Hour):
        out.accepted, out.duplicate, out.redo, out.conflict = [], [], [], []
        rs = doc.readings
        for it in items:
            key, values = it["observed_at"], it["values"]
            known = rs.get(key)
            if known is None:
                rs[key] = {"v": values, "f": dict(it["flags"]), "via": channel, "at": received}
                out.accepted.append(key)
            elif known["v"] == values:
                out.duplicate.append(key)
                if str(known.get("at") or "") >= recent:
                    out.redo.append(key)
            else:
                out.conflict.append(key)
        if not out.accepted:
            return None
        readings.mark_stuck(rs)
        return True

    with _turn("hour", station["id"], hour):
        item, result, fresh = _rmw(lambda: Hour.get(station["id"], hour), lambda: Hour(station["id"], hour, readings={}),
                                   apply, lambda i: i.save())
    out.created = fresh and result is not None
    out.summary = readings.summary(station["kind"], item.readings)
    # the hour document's version travels with its summary: a day write never replaces a newer
    # summary of the hour with an older one (two batches' day writes may land in either order)
    out.version = int(item.version or 0)
    return out


def write_days(station_id: str, summaries: dict[datetime, tuple[dict, int]]) -> None:
    """Put hours' summaries (each with its hour document's version) into their days' documents: one
    read-modify-write per day, so the hours of one batch never race each other for the same document;
    a slot holding a summary of a newer version of the hour is left as it is."""
    by_day: dict[str, dict[str, dict]] = {}
    for end, (summary, version) in summaries.items():
        by_day.setdefault(clock.day_of(end).isoformat(), {})[clock.slot(end)] = {**summary, VERSION: version}

    def one(day: str) -> None:
        slots = by_day[day]

        def apply(doc: Day):
            newer = {k: v for k, v in slots.items() if (doc.hours.get(k) or {}).get(VERSION, -1) < v[VERSION]}
            if not newer:
                return None
            doc.hours.update(newer)
            return True

        with _turn("day", station_id, day):
            _rmw(lambda: Day.get(station_id, day), lambda: Day(station_id, day, hours={}), apply, lambda i: i.save())

    list(_pool.map(one, sorted(by_day)))


SETTLED_DAYS = 4096
"""Day documents of settled days held in memory (:func:`days`): a year of eleven stations. Each is
held as its compressed JSON, 4–9 kB (parsed, an air day is about 55 kB: 4096 of them would not fit
the replica's 320 MiB); parsing it again costs what parsing the GET's body did, without the request."""
_settled: LRU[tuple[str, str], bytes] = LRU(SETTLED_DAYS)


def _pack(hours: dict | None) -> bytes:
    return zlib.compress(json.dumps(hours, separators=(",", ":")).encode(), 1) if hours else b""


def settled_before(today: date, max_late_days: int) -> date:
    """The first day whose document may still change: a reading older than ``max_late_days`` is
    refused (:func:`.ingest.check`), so no summary lands in a day before it any more. Two days' margin:
    the hour ending at 00:00 is its previous day's 24:00, and a message accepted at the bound may be
    delivered again later, its day write redone (:data:`REDO_S`)."""
    return today - timedelta(days=max_late_days + 2)


def days(station_id: str, first: date, last: date, settled: date | None = None) -> dict[str, dict]:
    """``{"2026-12-03": {"01": summary, …}, …}`` for the days from ``first`` to ``last`` (missing days
    absent), read in one listing (two when days held in memory lie between those read).

    Days before ``settled`` (:func:`settled_before`; None: every day may change) are read once per
    replica and then answered from memory, absent ones too: a year's query reads only its recent
    days again."""
    if last < first:
        return {}
    out: dict[str, dict] = {}
    missing: list[date] = []
    d, settled_last = first, last if settled is None else min(last, settled - timedelta(days=1))
    while settled is not None and d <= settled_last:
        held = _settled.get(Day.located(station_id, d.isoformat()))
        if held is None:
            missing.append(d)
        elif held:   # b"": the day has no document
            out[d.isoformat()] = json.loads(zlib.decompress(held))
        d += timedelta(days=1)
    fresh = first if settled is None else max(first, settled)
    spans = [[missing[0], missing[-1]]] if missing else []
    if fresh <= last:
        if spans and spans[0][1] + timedelta(days=1) == fresh:
            spans[0][1] = last   # adjoining: one listing
        else:
            spans.append([fresh, last])
    read: dict[str, dict] = {}
    for lo, hi in spans:
        read.update({x.day: x.hours for x in Day.query(station_id, range_between=(lo.isoformat(), hi.isoformat()))})
    for m in missing:
        _settled.put(Day.located(station_id, m.isoformat()), _pack(read.get(m.isoformat())))
    out.update(read)
    return out


def hourly_series(station_id: str, first_end: datetime, last_end: datetime,
                  settled: date | None = None) -> dict[str, dict]:
    """``{hour_key: summary}`` for every hour end from ``first_end`` to ``last_end`` with data (days
    before ``settled`` from memory once read: :func:`days`)."""
    stored = days(station_id, clock.day_of(first_end), clock.day_of(last_end), settled)
    out, t = {}, first_end
    while t <= last_end:
        s = stored.get(clock.day_of(t).isoformat(), {}).get(clock.slot(t))
        if s:
            out[clock.hour_key(t)] = {k: v for k, v in s.items() if k != VERSION}
        t += timedelta(hours=1)
    return out


def hour_readings(station_id: str, hour: str) -> dict:
    try:
        return Hour.get(station_id, hour).readings
    except DoesNotExist:
        return {}


def pool() -> ThreadPoolExecutor:
    return _pool
