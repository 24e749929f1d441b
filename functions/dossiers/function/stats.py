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

from lscloud.aggregate import side_pool
from lscloud.query import QueryError
from lscloud.statemachine import Actor, iso
from lscloud.store import ConditionalCheckFailed, StoreUnavailable
from lscloud.workdays import TZ

from . import clocks, overdue, registry
from .models import DayFigures, DayIndex

DEFAULT_DAYS = 30
MAX_DAYS = 366


_COUNTS = ("received", "received_online", "resolved", "on_time", "late", "cancelled")
Cell = tuple[str, str, str]   # (agency, unit, procedure code)


def _row() -> dict:
    return {"received": 0, "received_online": 0, "resolved": 0, "on_time": 0, "late": 0, "overdue_now": 0,
            "cancelled": 0}


def _finish(row: dict) -> dict:
    row["online_share"] = round(row["received_online"] / row["received"], 4) if row["received"] else None
    row["on_time_share"] = round(row["on_time"] / row["resolved"], 4) if row["resolved"] else None
    return row


def _cell(d: dict) -> Cell:
    return d["agency"], d["unit"], d["procedure"]["code"]


def cells_of(received: list[dict], finished: list[dict]) -> dict[Cell, dict[str, int]]:
    """What dossiers received and finished add to each (agency, unit, procedure): a dossier's part
    is fixed when it is received (its channel) or finished (done, denied or cancelled; on time or
    late), so a day's cells change only by new entries of its index."""
    cells: dict[Cell, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_COUNTS, 0))
    for d in received:
        cells[_cell(d)]["received"] += 1
        if d["channel"] == "online":
            cells[_cell(d)]["received_online"] += 1
    for d in finished:
        if d["status"] == "cancelled":
            cells[_cell(d)]["cancelled"] += 1
        elif d["status"] in ("done", "denied"):
            cells[_cell(d)]["resolved"] += 1
            cells[_cell(d)]["on_time" if d.get("on_time") else "late"] += 1
    return dict(cells)


def _add(into: dict[Cell, dict[str, int]], cells: dict[Cell, dict[str, int]]) -> None:
    for cell, counts in cells.items():
        row = into.setdefault(cell, dict.fromkeys(_COUNTS, 0))
        for k, n in counts.items():
            row[k] += n


def figures(cells: dict[Cell, dict[str, int]], open_now: list[clocks.Clock], now: datetime) -> dict:
    """The totals and the tables by agency, unit and procedure, from the period's cells and the
    clocks of the dossiers open now (those past their deadline are ``overdue_now``)."""
    groups = {"agency": 0, "unit": 1, "procedure": 2}
    by = {g: defaultdict(_row) for g in groups}
    total = _row()
    for cell, counts in cells.items():
        for k, n in counts.items():
            total[k] += n
            for g, i in groups.items():
                by[g][cell[i]][k] += n
    for c in open_now:
        if c.overdue(now):
            total["overdue_now"] += 1
            for g, i in groups.items():
                by[g][(c.agency, c.unit, c.procedure)[i]]["overdue_now"] += 1
    return {"total": _finish(total),
            **{f"by_{g}": [{g: k, **_finish(v)} for k, v in sorted(rows.items())] for g, rows in by.items()}}


def compute(received: list[dict], finished: list[dict], open_docs: list[dict], now: datetime) -> dict:
    """:func:`figures` of these dossiers (received and finished in the period, open now)."""
    return figures(cells_of(received, finished), [c for c in map(clocks.of, open_docs) if c is not None], now)


def _summary(day: str) -> tuple[str, list[str], DayFigures]:
    """A local day's index entries (a listing) and its summary (:class:`.models.DayFigures`)."""
    entries = DayIndex.query_keys(day)
    try:
        # a day with no entry has no summary either: not asked for (a year's figures: most are not)
        held = DayFigures.get(day) if entries else DayFigures(day, seen=[], cells=[])
    except DayFigures.DoesNotExist:
        held = DayFigures(day, seen=[], cells=[])
    return day, entries, held


def day_cells(day: str, entries: list[str], held: DayFigures) -> dict[Cell, dict[str, int]]:
    """A local day's cells: its summary's, and those of the index entries it has not taken in yet.
    Only those entries and their dossiers are read, and the summary then holds them too. A period's
    figures read a summary a day; they read every entry and every dossier of every day (a year:
    some 200,000 reads a request)."""
    cells = {(c[0], c[1], c[2]): dict(zip(_COUNTS, c[3:])) for c in held.cells or []}
    seen = set(held.seen or [])
    new = [e for e in entries if e not in seen]
    if not new:
        return cells

    def dossier_of(entry: str) -> str | None:
        try:
            return DayIndex.get(day, entry).dossier_id
        except DayIndex.DoesNotExist:
            return None

    ids = dict(zip(new, side_pool().map(dossier_of, new)))
    docs = {d["id"]: d for d in registry.get_many(sorted({i for i in ids.values() if i}))}
    received = [docs[ids[e]] for e in new if e.startswith("r_") and ids[e] in docs]
    finished = [docs[ids[e]] for e in new if e.startswith("f_") and ids[e] in docs]
    _add(cells, cells_of(received, finished))
    held.seen = sorted(seen | set(new))
    held.cells = [[*cell, *(counts[k] for k in _COUNTS)] for cell, counts in sorted(cells.items())]
    try:
        held.save()
    except (ConditionalCheckFailed, StoreUnavailable):
        pass   # another request kept a summary first, or none now: the next one takes these entries in again
    return cells


def report(actor: Actor, first: date | None, last: date | None, agency: str | None, at: datetime) -> dict:
    """The figures over local days ``first`` to ``last`` (default: the 30 days up to today), of one
    agency or all (a supervisor: always their own)."""
    last = last or at.astimezone(TZ).date()
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)   # 30 days, today the last of them
    if not 0 <= (last - first).days < MAX_DAYS:
        raise QueryError("to", "to is on or after from, at most 366 days later",
                         "Ngày 'to' phải từ ngày 'from' trở đi và không quá 366 ngày sau.")
    agency = (actor.agency or "-") if actor.kind == "supervisor" else agency   # none in the token: no agency's
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    cells: dict[Cell, dict[str, int]] = {}
    # the days' listings and summaries at once; a day's new entries then one day at a time, each
    # read in parallel (never a pool's task waiting on tasks queued behind it in the same pool)
    for day, entries, held in side_pool().map(_summary, days):
        _add(cells, day_cells(day, entries, held))
    open_now = overdue.open_clocks()   # the clock index: no open dossier read but those it does not tell
    if agency:
        cells = {c: v for c, v in cells.items() if c[0] == agency}
        open_now = [c for c in open_now if c.agency == agency]
    return {"from": first.isoformat(), "to": last.isoformat(), "agency": agency, "at": iso(at),
            **figures(cells, open_now, at)}
