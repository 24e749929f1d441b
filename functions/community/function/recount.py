"""The platform clock's tick: the counts a stopped verification left low, repaired off the request path.

A verification being counted is a :class:`.models.Counting` entry from before its members are
written until the progress documents hold them (:mod:`.tallies`). An entry older than
:data:`.tallies.GRACE` is a verification that crashed, failed or gave up in between: its members may
be written and its counts one low. The tick lists only such entries (none, nearly always: one
listing request a minute, however many activities were ever verified), recounts their sets by
listing their members and raises the counts to that, never lowers one.

Members are listed before the entries still in flight: a set with one (a younger entry) waits for
the next tick, since its member may be listed while its count is still to come, and raising to the
listing now would count it twice. Everything here is a raise to a listing or a delete of an entry
already settled, so a tick run twice, or two at once, changes nothing more (func.py marks it
repeat-safe).
"""

from __future__ import annotations

import logging
from datetime import datetime

from lscloud.aggregate import delete_quietly
from lscloud.statemachine import now
from lscloud.store import StoreError

from . import tallies
from .models import Counting, Tally

log = logging.getLogger("community.recount")


def on_tick(event: dict) -> dict:
    """Repair what stopped verifications left (see the module's docstring)."""
    try:
        done = reconcile(now())
    except StoreError as exc:
        # the entries stay and the next tick tries again; raising would skip the runtime's
        # housekeeping that runs after this handler, and dead-letter a tick for nothing
        log.warning("tick %s: recounting failed: %s", event.get("id"), exc.__class__.__name__)
        return {"recount": None}
    if done["raised"] or done["waiting"]:
        log.info("tick %s: %d count(s) raised, %d stopped verification(s) wait for the next tick",
                 event.get("id"), done["raised"], done["waiting"])
    return {"recount": done}


def reconcile(at: datetime) -> dict:
    """Recount the sets of the verifications that stopped counting before ``at`` less the grace:
    ``{"raised": counts raised, "repaired": entries settled, "waiting": entries left for the next tick}``."""
    cutoff = tallies.stamp(at - tallies.GRACE)
    # "~" sorts after the space that ends an entry's time: every entry started at or before the cutoff
    stale = Counting.query_keys(tallies.OPEN, range_between=(None, cutoff + "~"))
    if not stale:
        return {"raised": 0, "repaired": 0, "waiting": 0}
    stopped = {e: joins for e in stale if (joins := _joins(e)) is not None}
    sets = {p.set: p for joins in stopped.values() for p in joins}
    listed = {name: Tally.count(name) for name in sets}
    # only now, after the members: a verification in flight since may have its member listed above
    busy = {p.set for e in Counting.query_keys(tallies.OPEN) if tallies.started_at(e) > cutoff
            for p in _joins(e) or ()}
    floors: dict[tuple[str, str | None], dict[str, dict[str, int]]] = {}
    for name, p in sets.items():
        if name not in busy:
            floors.setdefault((p.commune, p.team), {}).setdefault(p.field, {})[p.name] = listed[name]
    raised = sum(tallies.raise_to(commune, team, floor) for (commune, team), floor in floors.items())
    waiting = 0
    for e, joins in stopped.items():
        if any(p.set in busy for p in joins):
            waiting += 1
        else:
            delete_quietly(Counting, tallies.OPEN, e)
    return {"raised": raised, "repaired": len(stopped) - waiting, "waiting": waiting}


def _joins(entry: str) -> list[tallies.Place] | None:
    """The sets an entry's verification joins; None if the entry is gone (settled since it was listed)."""
    try:
        return tallies.places(Counting.get(tallies.OPEN, entry).data)
    except Counting.DoesNotExist:
        return None
