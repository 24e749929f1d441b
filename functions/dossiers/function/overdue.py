"""The overdue sweep: flag each active step past its deadline (one ``step.overdue`` event per step,
ever: the flag is set under the dossier's conditional write) and count the open dossiers past
theirs per agency for the overdue gauge. The platform clock's tick runs it every minute
(:mod:`.schedule`); operators may run it by hand.

It works from two listings, the open index (which dossiers are open) and the clocks
(:mod:`.clocks`: what the sweep needs of each), and reads only the dossiers with a step to flag,
none or several entries (a write whose entry was not stored; entries of earlier states), and every
open one once in :data:`CHECK_EVERY_S` (a change made around the write path, such as a migration,
is then seen within that time). It read every open dossier, every minute.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from lscloud import store
from lscloud.aggregate import delete_quietly, save_quietly
from lscloud.statemachine import iso

from . import clocks, metrics, registry, workflow
from .models import DossierClock

CHECK_EVERY_S = 3600
"""Each process reads every open dossier again this often (and at its first sweep of a bucket)."""

_checked: dict[str, float] = {}   # bucket -> when this process last read every open dossier
_lock = threading.Lock()


def _check_all_due() -> bool:
    _, bucket = store.connection()
    now = time.monotonic()
    with _lock:
        if now - _checked.get(bucket, float("-inf")) < CHECK_EVERY_S:
            return False
        _checked[bucket] = now
        return True


def _listed() -> tuple[set[str], dict[str, list[str]], list[str]]:
    """The two listings: the open dossiers' ids, each one's clock entries, and the entries of no
    open dossier (finished, or not ours). The clocks first: a dossier received meanwhile is then
    open without an entry (read), never an entry of a dossier not listed open."""
    clock_keys = DossierClock.query_keys(clocks.BOX)
    open_ids = set(registry.open_ids())
    listed: dict[str, list[str]] = {}
    stale = []
    for entry in clock_keys:
        c = clocks.parse(entry)
        if c is None or c.id not in open_ids:
            stale.append(entry)
        else:
            listed.setdefault(c.id, []).append(entry)
    return open_ids, listed, stale


def _clocks(listed: dict[str, list[str]], unsure: set[str]) -> dict[str, tuple[clocks.Clock, dict | None]]:
    """Each open dossier's clock: from its one entry, or, for the ``unsure`` ones, from the dossier
    read (with the document: its entries are then the caller's to put right)."""
    held: dict[str, tuple[clocks.Clock, dict | None]] = {
        i: (clocks.parse(entries[0]), None) for i, entries in listed.items() if i not in unsure}
    for doc in registry.get_many(sorted(unsure)):
        c = clocks.of(doc)
        if c is not None:   # else finished since it was listed open
            held[doc["id"]] = (c, doc)
    return held


def open_clocks() -> list[clocks.Clock]:
    """Every open dossier's clock, read-only (the figures' ``overdue_now``): only the dossiers whose
    entries do not tell (none, or several until a sweep tidies them) are read."""
    open_ids, listed, _ = _listed()
    return [c for c, _ in _clocks(listed, {i for i in open_ids if len(listed.get(i, ())) != 1}).values()]


def sweep(at: datetime) -> dict:
    open_ids, listed, stale = _listed()
    for entry in stale:   # finished (or not ours): nothing to keep
        delete_quietly(DossierClock, clocks.BOX, entry)
    unsure = open_ids if _check_all_due() else {i for i in open_ids if len(listed.get(i, ())) != 1}
    held: dict[str, clocks.Clock] = {}
    for i, (c, doc) in _clocks(listed, unsure).items():
        held[i] = c
        if doc is not None:
            _keep_only(c, listed.get(i, []))
    per_agency: dict[str, int] = {}
    marked = 0
    for c in held.values():
        per_agency.setdefault(c.agency, 0)
        if c.overdue(at):
            per_agency[c.agency] += 1
        if c.step_due(at):
            out = registry.RECORDS.mutate(c.id, lambda d, i=c.step: workflow.flag_overdue(d, i, at))
            marked += bool(out.transitions)
            # the dossier as read (and flagged): its entry now, the one it was listed under deleted
            fresh = clocks.of(out.doc)
            if fresh is not None:
                _keep_only(fresh, [clocks.key(c)])
            else:
                delete_quietly(DossierClock, clocks.BOX, clocks.key(c))
    metrics.set_overdue(per_agency)
    return {"overdue_dossiers": sum(per_agency.values()), "by_agency": per_agency, "steps_flagged": marked,
            "read": len(unsure), "at": iso(at)}


def _keep_only(c: clocks.Clock, entries: list[str]) -> None:
    """The dossier's one entry as it is now; those of earlier states deleted."""
    wanted = clocks.key(c)
    if wanted not in entries:
        save_quietly(DossierClock(clocks.BOX, wanted))
    for entry in entries:
        if entry != wanted:
            delete_quietly(DossierClock, clocks.BOX, entry)
