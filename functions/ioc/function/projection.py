"""The IOC's projection: every fact it has absorbed, folded per entity, order-independent.

Figures are computed from the facts alone (:mod:`.figures`), never from the order they arrived in:
an entity's history is its facts sorted by ``(at, id)``, its attributes are taken from the latest fact
that carries each one. So a redelivered event (same id) changes nothing, and a projection rebuilt from
the stream in any order gives exactly the same figures as the live one.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Collection, Mapping

TALLIED = frozenset({"observations"})
"""Kinds whose facts are many and alike (each station's readings, every minute or faster): kept as one
*tally* per entity and UTC hour instead of one fact each. A tally is a fact like any other (figures
read it the same way: ``at`` is its hour's start, ``values`` the sums of its facts' values) with
``tally``: the ids it counts and each one's values, so a redelivery is still counted once. One fact
each cost the IOC about 1.7 KB of memory, an object in the store read back at every start and a step
of every figure's scan per message: 20 stations at a message a minute filled its 512 MiB in about
ten days. Tallies grow with station-hours, sixty times slower at that rate."""

TALLY_IDS_KEPT_H = 48
"""A tally keeps the ids it counts while its hour is within this many hours of its entity's newest
tally: a redelivery comes within minutes (an acknowledgement lost, a retry's back-off), and older
tallies keep only their sums. Which tallies keep ids depends only on the tallies, never on the
order facts came in, so a replay of the stream builds the same ones."""


def tally_of(fact: dict) -> dict:
    """An empty tally for the entity and UTC hour of ``fact`` (a fact of a :data:`TALLIED` kind)."""
    hour = fact["at"][:13]
    digest = hashlib.sha256(f"tally\n{fact['kind']}\n{fact['entity']}\n{hour}".encode()).hexdigest()
    return {"id": digest[:40], "source": fact["source"], "kind": fact["kind"], "entity": fact["entity"],
            "at": f"{hour}:00:00Z", "state": fact["state"], "attrs": {}, "values": {}, "tally": {}}


def _hours_before(t: str, hours: int) -> str:
    """``t`` (``YYYY-MM-DDTHH:MM:SSZ``) less ``hours``, in the same form: compared as strings."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (datetime.strptime(t, fmt) - timedelta(hours=hours)).strftime(fmt)


def _either(merged: dict, *known: dict) -> dict:
    # an entity's attributes are most often exactly its latest fact's (or unchanged by it): that map
    # is kept, not an equal copy (the IOC holds one entity per declaration, dossier, transfer …)
    return next((k for k in known if k == merged), merged)


@dataclass(slots=True)
class Entity:
    """One thing the figures count (a declaration, a dossier, a report …) as of every fact seen.
    Built whole by :meth:`Projection.apply` and never changed afterwards."""

    kind: str
    id: str
    history: list[dict]  # facts sorted by (at, id)
    attrs: dict[str, str]
    times: list[str]  # the history's times, for bisecting

    @classmethod
    def of(cls, kind: str, id: str, facts) -> "Entity":
        history = sorted(facts, key=lambda f: (f["at"], f["id"]))
        attrs: dict[str, str] = {}
        for f in history:
            attrs.update(f["attrs"])
        return cls(kind, id, history, _either(attrs, history[-1]["attrs"]), [f["at"] for f in history])

    def then(self, fact: dict) -> "Entity":
        """This entity with ``fact`` added, or a tally of it replaced by its newer count: what
        :meth:`of` builds, without going over the whole history when ``fact`` is the latest (a
        station's tallies arrive in time order and change at the end: a year of one station is
        8,760 of them)."""
        history, times = self.history, self.times
        if history and history[-1]["id"] == fact["id"]:   # the latest tally, counting one more
            history, times = history[:-1], times[:-1]
        elif history and (fact["at"], fact["id"]) < (history[-1]["at"], history[-1]["id"]):
            # out of time order (a late delivery, a tally of an earlier hour): built again, in order
            return Entity.of(self.kind, self.id, [*(f for f in self.history if f["id"] != fact["id"]), fact])
        return Entity(self.kind, self.id, [*history, fact],
                      _either({**self.attrs, **fact["attrs"]}, fact["attrs"], self.attrs), [*times, fact["at"]])

    def first(self, *states: str) -> str | None:
        """When the entity first entered one of ``states`` (None: never)."""
        return next((f["at"] for f in self.history if f["state"] in states), None)

    def at(self, t: str) -> dict | None:
        """The entity's last fact at or before ``t`` (None: it did not exist yet)."""
        i = bisect_right(self.times, t)
        return self.history[i - 1] if i else None

    def attr_at(self, name: str, t: str) -> str | None:
        """The attribute as the last fact at or before ``t`` that carried it said."""
        value = None
        for f in self.history[:bisect_right(self.times, t)]:
            value = f["attrs"].get(name, value)
        return value


def _merged(known: dict, new: dict) -> dict | None:
    """One tally counting what ``known`` and ``new`` (the same station-hour) count, each message once;
    None when ``new`` adds nothing. The usual case: ``new`` is ``known`` with a message more
    (:meth:`Projection.tallied`); the others meet at a start (a stored tally beside facts folded
    since) or an adopt."""
    have, add = known["tally"], new["tally"]
    if not have and not add:   # neither keeps its ids (older than TALLY_IDS_KEPT_H): the larger sums stand
        if sum(known["values"].values()) >= sum(new["values"].values()):
            return None
        return {**new, "attrs": {**known["attrs"], **new["attrs"]}}
    if add.keys() <= have.keys():
        return None
    if have.keys() <= add.keys():   # its sums hold all of known's (and, over sums without ids, more)
        return {**new, "attrs": {**known["attrs"], **new["attrs"]}}
    ids = {**have, **add}   # each counts messages the other does not: both keep ids, so the ids are all
    values: dict[str, float] = {}
    for counted in ids.values():
        for k, v in counted.items():
            values[k] = values.get(k, 0) + v
    return {**new, "attrs": {**known["attrs"], **new["attrs"]}, "values": values, "tally": ids}


class Projection:
    """Facts by id and entities by kind; thread-safe; ``version`` grows with every new fact.

    An entity's history and attributes are replaced, never changed in place, when a fact arrives:
    a reader computing figures meanwhile sees each entity either before or after it."""

    def __init__(self, lingers: Mapping[str, Callable[[dict], bool]] | None = None,
                 dims: Mapping[str, Collection[str]] | None = None):
        """``lingers``: per kind, whether an entity whose latest fact is the one given can still count
        in a window that starts after that fact (a gauge's open thing: a truck still waiting, a report
        still open); :meth:`entities` passes over those that cannot when asked for a window's. A kind
        not named lingers always (nothing is passed over). ``dims``: per kind, the attributes figures
        break it down and filter it by; :meth:`attr_values` keeps every value they take. Both come
        from the figures (:func:`.figures.new_projection`); without them every read is a full scan."""
        self._facts: dict[str, dict] = {}
        self._by_kind: dict[str, dict[str, Entity]] = {}
        self._last_at: dict[str, str] = {}
        self._lock = threading.RLock()
        self._memo: dict = {}
        self._keeping: dict[tuple[str, str], set[str]] = {}   # tallies that still keep their ids, by entity
        self._cutoffs: dict[str, str] = {}
        self._lingers = dict(lingers or {})
        self._dims = {kind: frozenset(d) for kind, d in (dims or {}).items()}
        self._lingering: dict[str, set[str]] = {}             # kind -> ids that may count after their last fact
        self._ended: dict[str, dict[str, dict[str, set[str]]]] = {}   # kind -> hour of last fact -> of first -> ids
        self._ended_hours: dict[str, list[str]] = {}          # kind -> those hours, sorted
        self._attr_values: dict[str, dict] = {}               # kind -> where -> dim -> value -> entities
        self._maps: dict[tuple, dict] = {}                    # attribute and value maps, shared (_held)
        self.version = 0

    def apply(self, fact: dict) -> bool:
        """Add a fact; False when a fact with its id is already in (a redelivery). A fact of a
        :data:`TALLIED` kind goes into its tally (:meth:`tallied`); a tally (as stored) is put in
        whole, merged with what this projection already counts for its hour."""
        with self._lock:
            if "tally" in fact:
                return self._put_tally(fact, read=True)
            if fact["kind"] in TALLIED:
                counted = self.tallied(fact)
                return counted is not None and self._put_tally(counted)
            if fact["id"] in self._facts:
                return False
            fact = self._held(fact)
            self._facts[fact["id"]] = fact
            self._put_entity(fact)
            return True

    def _held(self, fact: dict, read: bool = True) -> dict:
        """``fact`` as the projection holds it: its words interned, its attribute and value maps the
        very ones of every fact with the same (a fact read back from the store has its own copy of
        each: 2.8 KB a transfer). The maps are shared, so nothing may change one in place: facts
        are replaced, never changed. ``read``: a tally as read or given whole, whose counted values
        are shared here too (one :meth:`tallied` made shares all but its new one's already)."""
        # keys too: a dict read from JSON has its own copy of each (8 strings, 440 B a fact)
        held = {sys.intern(k): v for k, v in fact.items()}
        held.update(source=sys.intern(fact["source"]), kind=sys.intern(fact["kind"]), state=sys.intern(fact["state"]),
                    attrs=self._map(fact["attrs"]), values=self._map(fact["values"]))
        if read and held.get("tally"):
            held["tally"] = {k: self._map(v) for k, v in held["tally"].items()}
        return held

    def _map(self, m: dict) -> dict:
        key = tuple((sys.intern(k), sys.intern(v) if isinstance(v, str) else v) for k, v in m.items())
        try:
            found = self._maps.get(key)
        except TypeError:   # a value that is no word or number (none of today's facts has one): its own copy
            return dict(key)
        if found is None:
            if len(self._maps) >= 65536:   # most repeat (a point's, a gate's); the unique ones are not kept
                self._maps.clear()
            found = self._maps[key] = dict(key)
        return found

    def tallied(self, fact: dict) -> dict | None:
        """The tally of ``fact``'s entity and hour with ``fact`` counted in (a new dict, not put in:
        :meth:`apply` it), or None when it counts ``fact`` already."""
        with self._lock:
            base = tally_of(fact)
            current = self._facts.get(base["id"], base)
            if fact["id"] in current["tally"]:
                return None
            values = dict(current["values"])
            for k, v in fact["values"].items():
                values[k] = values.get(k, 0) + v
            return {**current, "state": fact["state"], "attrs": {**current["attrs"], **fact["attrs"]},
                    "values": values, "tally": {**current["tally"], fact["id"]: self._map(fact["values"])}}

    def _put_tally(self, tally: dict, read: bool = False) -> bool:
        known = self._facts.get(tally["id"])
        if known is not None:
            tally = _merged(known, tally)
            if tally is None:
                return False
        tally = self._held(tally, read)
        self._facts[tally["id"]] = tally
        key = (tally["kind"], tally["entity"])
        if tally["tally"]:
            self._keeping.setdefault(key, set()).add(tally["id"])
        self._put_entity(tally)
        self._forget_old_ids(key)
        return True

    def _forget_old_ids(self, key: tuple[str, str]) -> None:
        kind, entity_id = key
        keeping = self._keeping.get(key, set())
        newest = self._by_kind[kind][entity_id].times[-1]
        cutoff = self._cutoffs.get(newest)
        if cutoff is None:   # an hour's tallies share it: computed once an hour, not once a message
            if len(self._cutoffs) > 4096:
                self._cutoffs.clear()
            cutoff = self._cutoffs[newest] = _hours_before(newest, TALLY_IDS_KEPT_H)
        old = [tid for tid in keeping if self._facts[tid]["at"] < cutoff]
        if not old:
            return
        for tid in old:
            # the same sums without the ids: replaced, as every fact is, never changed in place
            self._facts[tid] = {**self._facts[tid], "tally": {}}
            keeping.discard(tid)
        entity = self._by_kind[kind][entity_id]
        self._set(Entity.of(kind, entity_id, [self._facts[f["id"]] for f in entity.history]))

    def _put_entity(self, fact: dict) -> None:
        old = self._by_kind.get(fact["kind"], {}).get(fact["entity"])
        # a tally replaces itself (Entity.then); a fact is new
        self._set(old.then(fact) if old else Entity.of(fact["kind"], fact["entity"], [fact]))
        if fact["at"] > self._last_at.get(fact["source"], ""):
            self._last_at[fact["source"]] = fact["at"]
        self.version += 1

    def _set(self, entity: Entity) -> None:
        """Put ``entity`` in (a new one, or the one with its id replaced) and keep the indexes of
        :meth:`entities` and :meth:`attr_values` in step."""
        entities = self._by_kind.setdefault(entity.kind, {})
        old = entities.get(entity.id)
        entities[entity.id] = entity
        if old is not None:
            self._unindex(old)
        lingers = self._lingers.get(entity.kind)
        if lingers is None or lingers(entity.history[-1]):
            self._lingering.setdefault(entity.kind, set()).add(entity.id)
        else:
            hour, by_hour = entity.times[-1][:13], self._ended.setdefault(entity.kind, {})
            if hour not in by_hour:
                by_hour[hour] = {}
                insort(self._ended_hours.setdefault(entity.kind, []), hour)
            by_hour[hour].setdefault(entity.times[0][:13], set()).add(entity.id)
        dims = self._dims.get(entity.kind)
        if dims and (old is None or old.attrs != entity.attrs):
            if old is not None:
                self._count_attrs(entity.kind, dims, old.attrs, -1)
            self._count_attrs(entity.kind, dims, entity.attrs, 1)

    def _unindex(self, entity: Entity) -> None:
        self._lingering.get(entity.kind, set()).discard(entity.id)
        hour, first, by_hour = entity.times[-1][:13], entity.times[0][:13], self._ended.get(entity.kind, {})
        ids = by_hour.get(hour, {}).get(first)
        if ids is not None:
            ids.discard(entity.id)
            if not ids:
                del by_hour[hour][first]
                if not by_hour[hour]:
                    del by_hour[hour]
                    hours = self._ended_hours[entity.kind]
                    del hours[bisect_left(hours, hour)]

    def _count_attrs(self, kind: str, dims: frozenset[str], attrs: dict, step: int) -> None:
        mine = {k: v for k, v in attrs.items() if k in dims}
        by_where = self._attr_values.setdefault(kind, {})
        for where in (None, *mine.items()):
            per_dim = by_where.setdefault(where, {})
            for dim, value in mine.items():
                counts = per_dim.setdefault(dim, {})
                counts[value] = counts.get(value, 0) + step
                if not counts[value]:
                    del counts[value]

    def memo(self, key, compute):
        """``compute()`` once per ``key`` until the next new fact (readers in the same second share it)."""
        key = (self.version, key)
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        out = compute()
        with self._lock:
            if len(self._memo) > 64 or any(k[0] != self.version for k in self._memo):
                self._memo = {k: v for k, v in self._memo.items() if k[0] == self.version and len(self._memo) <= 64}
            self._memo[key] = out
        return out

    def __len__(self) -> int:
        return len(self._facts)

    def facts(self) -> list[dict]:
        with self._lock:
            return list(self._facts.values())

    def fact(self, fact_id: str) -> dict | None:
        """The fact (or tally) with this id as held, or None."""
        with self._lock:
            return self._facts.get(fact_id)

    def fact_ids(self) -> set[str]:
        with self._lock:
            return set(self._facts)

    def last_at(self) -> dict[str, str]:
        """The latest fact time per source (the freshness of each source's figures)."""
        with self._lock:
            return dict(self._last_at)

    def entities(self, kind: str, since: str | None = None, until: str | None = None) -> list[Entity]:
        """The entities of ``kind`` as they are now (each with its sorted history); with ``since`` and
        ``until`` (a window), only those that can count in it: the ones that linger or have a fact in
        or after ``since``'s hour, and a fact by ``until``'s hour (a few of those hours' may count for
        nothing). What figures read grows with what is open and recent, not with every declaration,
        dossier or transfer the IOC has ever seen."""
        with self._lock:
            every = self._by_kind.get(kind, {})
            if since is None:
                return list(every.values())
            last = (until or "~")[:13]
            ids = set(self._lingering.get(kind, ()))
            hours = self._ended_hours.get(kind, [])
            for hour in hours[bisect_left(hours, since[:13]):]:
                for first, some in self._ended[kind][hour].items():
                    if first <= last:
                        ids |= some
            return [every[i] for i in ids]

    def attr_values(self, kind: str, dim: str, where: Mapping[str, str] | None = None) -> set[str] | None:
        """Every value attribute ``dim`` takes among the entities of ``kind`` (as of their latest
        facts) that match ``where`` (one attribute at most), passed over or not: a breakdown's keys.
        None when the projection was not told to keep them (``dims``)."""
        with self._lock:
            dims = self._dims.get(kind, frozenset())
            if dim not in dims or (where and (len(where) > 1 or not dims.issuperset(where))):
                return None
            key = next(iter(where.items())) if where else None
            return set(self._attr_values.get(kind, {}).get(key, {}).get(dim, {}))
