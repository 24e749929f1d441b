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


def open_clocks() -> list[clocks.Clock]:
    """Every open dossier's clock, from the two listings; read-only (the figures' ``overdue_now``):
    a dossier whose entries do not tell (none, or several until a sweep tidies them) is read."""
    open_ids = set(registry.open_ids())
    listed: dict[str, list[clocks.Clock]] = {}
    for entry in DossierClock.query_keys(clocks.BOX):
        c = clocks.parse(entry)
        if c is not None and c.id in open_ids:
            listed.setdefault(c.id, []).append(c)
    held = [cs[0] for cs in listed.values() if len(cs) == 1]
    unsure = sorted(i for i in open_ids if len(listed.get(i, ())) != 1)
    return held + [c for c in map(clocks.of, registry.get_many(unsure)) if c is not None]


def sweep(at: datetime) -> dict:
    # the clocks first: a dossier received meanwhile is then open without an entry (read), never an
    # entry of a dossier not listed open (deleted as finished)
    clock_keys = DossierClock.query_keys(clocks.BOX)
    open_ids = set(registry.open_ids())
    listed: dict[str, list[str]] = {}
    for entry in clock_keys:
        c = clocks.parse(entry)
        if c is None or c.id not in open_ids:   # finished (or not ours): nothing to keep
            delete_quietly(DossierClock, clocks.BOX, entry)
            continue
        listed.setdefault(c.id, []).append(entry)
    unsure = open_ids if _check_all_due() else {i for i in open_ids if len(listed.get(i, ())) != 1}
    held: dict[str, clocks.Clock] = {i: clocks.parse(entries[0]) for i, entries in listed.items() if i not in unsure}
    for doc in registry.get_many(sorted(unsure)):
        c = clocks.of(doc)
        if c is None:
            continue   # finished since it was listed open
        held[doc["id"]] = c
        _keep_only(c, listed.get(doc["id"], []))
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
