"""Counting verified work exactly once, and the progress that follows.

A count is a set of create-only members (:class:`.models.Tally`): a household reached for an
indicator is the member ``<household pseudonym>`` of ``<commune>.<indicator>`` — so a household two
teams visit, or one visit synced twice, counts once — and a verified activity is the member
``<activity id>`` of ``team.<team>.<kind>`` and ``commune.<commune>.<kind>``. Each set's count is
kept in the commune's or the team's progress document, and a verification costs the same whatever
its sets hold (none is listed):

1. a :class:`.models.Counting` entry says the verification is being counted;
2. its members are written create-only: a member this write created is new to its set; one already
   there (a repeat, a retried request, a household another team reached, a concurrent verification
   that won the create) adds nothing, so exactly one writer ever adds each member;
3. the progress documents add the new members under If-Match (a lost race reads again and adds
   again to what the other writer stored), so concurrent verifications all count;
4. the entry is deleted.

A crash or a store failure between 1 and 4 leaves the entry, and perhaps a count one low: the
clock's tick recounts the sets of entries older than :data:`GRACE` by listing their members, off the
request path, and raises those counts, never lowers them (:mod:`.recount`). A verification that
reaches step 3 later than :data:`IN_TIME` adds nothing and leaves its entry to the tick, so the tick
never recounts a member whose addition is still to come.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from typing import Callable, Iterable, NamedTuple

from lscloud import errors
from lscloud.aggregate import delete_quietly, save_all_quietly, together
from lscloud.statemachine import iso, now
from lscloud.store.recent import RecentItems

from . import targets
from .models import CommuneProgress, Counting, Tally, TeamProgress

OPEN = "open"
"""The hash key of every :class:`.models.Counting` entry: one listing finds them all."""
IN_TIME = timedelta(minutes=1)
"""A verification adds its members within this, or leaves them to the tick."""
GRACE = timedelta(minutes=10)
"""An entry older than this is a verification that stopped: far past :data:`IN_TIME` and a slow
store's last retry, and past any skew between the replicas' clocks."""

_JOINS = ("id", "commune", "team", "kind", "household_ref")
# a progress document is written by every verification of its commune: start from this replica's
# last copy, so a write that finds it current costs no read
_COMMUNES: RecentItems[CommuneProgress] = RecentItems(CommuneProgress, max_items=1024)
_TEAMS: RecentItems[TeamProgress] = RecentItems(TeamProgress, max_items=4096)


class Place(NamedTuple):
    """A counted set an activity joins, its member there, and where the set's count is kept: the
    commune's progress (``team`` None) or the team's, under ``field`` (``reached``: households per
    indicator; ``activities``: per kind) and ``name`` (the indicator or the kind)."""

    set: str
    member: str
    commune: str
    team: str | None
    field: str
    name: str


def places(doc: dict) -> list[Place]:
    """Every set a verified activity (``doc``, or a Counting entry's data) is a member of."""
    commune, team, kind = doc["commune"], doc["team"], doc["kind"]
    out = []
    if doc.get("household_ref"):
        out += [Place(f"{commune}.{name}", doc["household_ref"], commune, None, "reached", name)
                for name in targets.indicators_for(kind)]
    out.append(Place(f"commune.{commune}.{kind}", doc["id"], commune, None, "activities", kind))
    out.append(Place(f"team.{team}.{kind}", doc["id"], commune, team, "activities", kind))
    return out


def stamp(at: datetime) -> str:
    """``at`` as entries start with it: always one width, so the entries list in time order."""
    return iso(at, "microseconds")


def started_at(entry: str) -> str:
    """When the verification of a Counting entry started counting (:func:`stamp`)."""
    return entry.partition(" ")[0]


class _Late(Exception):
    """Past :data:`IN_TIME`: the tick may soon recount this verification's sets itself."""


def count_in(doc: dict) -> tuple[dict, dict]:
    """Add a verified activity to every count it belongs to; ``(commune progress, team progress)``.

    Repeat-safe: a repeat, a retry or a concurrent run finds the members there and adds nothing."""
    joins = places(doc)
    started = time.monotonic()
    # a nonce: two runs for one activity each keep their own entry until their own counts hold
    entry = Counting(OPEN, f"{stamp(now())} {doc['id']} {secrets.token_hex(4)}",
                     data={k: doc.get(k) for k in _JOINS})
    entry.save()
    new = [p for p, created in zip(joins, save_all_quietly([Tally(p.set, p.member) for p in joins])) if created]

    def in_time() -> None:
        if new and time.monotonic() - started > IN_TIME.total_seconds():
            raise _Late

    commune, team = doc["commune"], doc["team"]

    def commune_change(data: dict) -> dict:
        in_time()
        data.setdefault("households", None)
        data["commune"] = commune
        data["commune_name"] = doc.get("commune_name") or data.get("commune_name")
        for field in ("reached", "activities"):
            data[field] = _counted(data, field, add=[p.name for p in new if p.team is None and p.field == field])
        data["updated_at"] = iso(now())
        return data

    def team_change(data: dict) -> dict:
        in_time()
        data.update({"team": team, "commune": commune, "name": doc.get("team_name") or data.get("name"),
                     "village": doc.get("village") or data.get("village")})
        data["activities"] = _counted(data, "activities", add=[p.name for p in new if p.team is not None])
        data["total"] = sum(data["activities"].values())
        data["updated_at"] = iso(now())
        return data

    try:
        progress, team_progress = together(lambda: _change(_COMMUNES, (commune,), commune_change),
                                           lambda: _change(_TEAMS, (commune, team), team_change))
    except _Late:
        # the entry stays: past GRACE the tick counts what this run did not add
        return _stored(CommuneProgress, commune), _stored(TeamProgress, commune, team)
    delete_quietly(Counting, OPEN, entry.entry)
    return progress, team_progress


def raise_to(commune: str, team: str | None, floors: dict[str, dict[str, int]]) -> int:
    """Raise a progress document's counts to at least ``floors`` (``{field: {name: members listed}}``),
    never lower one (a verification may have added more since the listing); how many it raised."""
    raised = 0

    def change(data: dict) -> dict:
        nonlocal raised
        raised = sum(n > (data.get(field) or {}).get(name, 0) for field, names in floors.items()
                     for name, n in names.items())
        for field, names in floors.items():
            data[field] = _counted(data, field, floor=names)
        data["commune"] = commune
        if team is None:
            data.setdefault("households", None)
        else:
            data["team"] = team
            data["total"] = sum((data.get("activities") or {}).values())
        data["updated_at"] = iso(now())
        return data

    if team is None:
        _change(_COMMUNES, (commune,), change)
    else:
        _change(_TEAMS, (commune, team), change)
    return raised


def _counted(data: dict, field: str, add: Iterable[str] = (), floor: dict[str, int] | None = None) -> dict:
    out = dict(data.get(field) or {})
    for name in add:
        out[name] = out.get(name, 0) + 1
    for name, n in (floor or {}).items():
        out[name] = max(out.get(name, 0), n)
    return out


def _change(recent: RecentItems, key: tuple, change: Callable[[dict], dict], recheck: tuple = ()) -> dict:
    """``change(data)`` applied to a progress document under If-Match (create-only when there is
    none yet); a lost race runs it again on what the other writer stored. ``recheck``: refusals of
    ``change`` raised again only when a fresh read gives them too (not on a remembered copy)."""
    def apply(item) -> None:
        item.data = change(dict(item.data or {}))

    range_key = key[1] if len(key) > 1 else None
    return recent.update(key[0], range_key, apply, create=lambda: recent.model(*key, data={}),
                         recheck=recheck).data


def _stored(model, *key) -> dict:
    try:
        return model.get(*key).data
    except model.DoesNotExist:
        return {"commune": key[0]}


def target_version(data: dict) -> int:
    """The version of the commune's household target (0: never set), which the answers' ETag
    carries: counting changes the progress document all day, the target only when an officer sets
    it, so an officer's If-Match goes stale only when another officer set it since."""
    return int(data.get("households_version") or 0)


class _AsItStands(Exception):
    """The target is already what was asked (a resend, or the same figure twice): nothing to write."""

    def __init__(self, data: dict):
        super().__init__("unchanged")
        self.data = data


def set_households(commune: str, commune_name: str, households: int, source: str, by: dict,
                   version: int | None) -> dict:
    """Set the commune's number of households (the base of its shares), keeping its counts.

    ``version``: the target's version the officer read (``If-Match``; :func:`target_version`). Two
    officers must not silently replace each other's figure: a target that was set changes only at
    the version read (412 otherwise, 428 without one); the first is set only while still none is.
    A target already as asked (a retry whose answer was lost) is answered as it stands: no write,
    its ``updated_at`` and version unchanged."""
    def change(data):
        current = target_version(data)
        if data.get("households") == households and data.get("households_source") == source:
            raise _AsItStands(data)
        errors.hold_to_version(version, current, exists=bool(current))
        data.update({"commune": commune, "commune_name": commune_name, "households": households,
                     "households_source": source, "households_set_by": by, "households_set_at": iso(now()),
                     "households_version": current + 1})
        data.setdefault("reached", {})
        data.setdefault("activities", {})
        return data

    try:
        return _change(_COMMUNES, (commune,), change,
                       recheck=(_AsItStands, errors.PreconditionRequired, errors.PreconditionFailed))
    except _AsItStands as same:
        return same.data


def view(data: dict) -> dict:
    """A commune's progress as answered and published: counts, shares against the targets."""
    return {"commune": data["commune"], "commune_name": data.get("commune_name"), "households": data.get("households"),
            "households_source": data.get("households_source"),
            "indicators": targets.figures(data.get("reached", {}), data.get("households")),
            "activities": {k: data.get("activities", {}).get(k, 0) for k in targets.KINDS},
            "updated_at": data.get("updated_at") or data.get("households_set_at")}
