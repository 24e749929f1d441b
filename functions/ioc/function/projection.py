"""The IOC's projection: every fact it has absorbed, folded per entity, order-independent.

Figures are computed from the facts alone (:mod:`.figures`), never from the order they arrived in:
an entity's history is its facts sorted by :func:`.facts.order` (``at``, then the producer's sequence
within the second), its attributes are taken from the latest fact that carries each one. So a
redelivered event (same id) changes nothing, and a projection rebuilt from the stream in any order
gives exactly the same figures as the live one.
"""

from __future__ import annotations

import itertools
import sys
import threading
import weakref
from bisect import bisect_left, insort
from typing import Callable, Collection, Mapping

from . import metrics
from .entities import Entity
from .tallies import TALLIED, TALLY_IDS_KEPT_H, day_tally_of, hours_before, larger, merged, plus, tally_of

_TICKS = itertools.count(1)
_OPEN: "weakref.WeakSet[Projection]" = weakref.WeakSet()
_OPEN_LOCK = threading.Lock()


def tick() -> int:
    """A process-wide instant, larger at every call: when a projection was begun, when a fact was folded."""
    return next(_TICKS)


def rebuild_begun() -> int | None:
    """When the oldest projection still held that no live state serves was made (as far as the live
    state can tell, a rebuild from the stream in progress), or None."""
    with _OPEN_LOCK:
        return min((p.begun for p in _OPEN if not p.serving), default=None)


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
        self._counts: dict[str, int] = {}                     # kind -> facts held
        self._hourly: dict[tuple[str, str], set[str]] = {}   # hour tallies (not days), by entity
        self._days: set[tuple[str, str, str]] = set()          # (kind, entity, UTC day) rolled up
        self._swept: dict[tuple[str, str], str] = {}           # the cutoff each entity was last swept at
        self._rolled: list[tuple[dict, list[dict]]] = []      # days rolled up, and their hours (take_rolled)
        self.version = 0
        # a rebuild lacks what is absorbed live after its stream was read: the live state keeps what
        # it folds in once this is made, while it is held and not serving (rebuild_begun), for
        # Live.adopt. So a rebuild is made before the stream is read
        self.begun = tick()
        self.serving = False
        with _OPEN_LOCK:
            _OPEN.add(self)

    def apply(self, fact: dict, *, stored: bool = False) -> bool:
        """Add a fact; False when a fact with its id is already in (a redelivery). A fact of a
        :data:`TALLIED` kind goes into its tally (:meth:`tallied`; ``stored``: one the store kept
        one by one, read back in no order); a tally (as stored) is put in whole, merged with what
        this projection already counts for its hour."""
        with self._lock:
            if "tally" in fact:
                return self._put_tally(fact, read=True)
            if fact["kind"] in TALLIED:
                counted = self.tallied(fact, stored=stored)
                return counted is not None and self._put_tally(counted)
            if fact["id"] in self._facts:
                return False
            fact = self._held(fact)
            self._facts[fact["id"]] = fact
            self._counts[fact["kind"]] = self._counts.get(fact["kind"], 0) + 1
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
        if read and held.get("hours"):
            held["hours"] = {sys.intern(k): self._map(v) for k, v in held["hours"].items()}
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

    def tallied(self, fact: dict, *, stored: bool = False) -> dict | None:
        """The tally of ``fact``'s entity and hour with ``fact`` counted in (a new dict, not put in:
        :meth:`apply` it), or None when it counts ``fact`` already, or may: an hour that counts
        messages and keeps no ids any more (:data:`TALLY_IDS_KEPT_H`; a day rolled up) cannot tell a
        repeat from another message, and there a repeat (a dead letter retried after 48 h, a stream
        replayed) is far likelier than a first delivery that late. Counted, a repeat stayed in the
        readings for good; so such a message is not counted (``lscloud.ioc.readings.late``): a late
        first one is left out. An hour that counts nothing yet takes it. Ids kept as long as dead
        letters live (a year) would cost a digest per message in memory and at every start.
        ``stored``: a fact the store kept one by one (before tallies), each stored once: counted."""
        with self._lock:
            day = None
            if (fact["kind"], fact["entity"], fact["at"][:10]) in self._days:
                day = self._facts.get(day_tally_of(fact)["id"])
            hh = fact["at"][11:13]
            if day is not None:   # a day rolled up already (its hours keep no ids): counted into its hour
                if hh in day["hours"] and not stored:
                    metrics.late(fact["kind"])
                    return None
                hours = dict(sorted({**day["hours"], hh: self._map(plus(day["hours"].get(hh, {}), fact["values"]))}.items()))
                return {**day, "state": fact["state"], "attrs": {**day["attrs"], **fact["attrs"]},
                        "values": plus(day["values"], fact["values"]), "hours": hours}
            base = tally_of(fact)
            current = self._facts.get(base["id"], base)
            if fact["id"] in current["tally"]:
                return None
            if current is not base and not current["tally"] and not stored:   # past its ids: as a rolled day's hour
                metrics.late(fact["kind"])
                return None
            values = dict(current["values"])
            for k, v in fact["values"].items():
                values[k] = values.get(k, 0) + v
            return {**current, "state": fact["state"], "attrs": {**current["attrs"], **fact["attrs"]},
                    "values": values, "tally": {**current["tally"], fact["id"]: self._map(fact["values"])}}

    def _put_tally(self, tally: dict, read: bool = False) -> bool:
        known = self._facts.get(tally["id"])
        if known is not None:
            tally = merged(known, tally)
            if tally is None:
                return False
        tally = self._held(tally, read)
        if known is None:
            self._counts[tally["kind"]] = self._counts.get(tally["kind"], 0) + 1
        self._facts[tally["id"]] = tally
        key = (tally["kind"], tally["entity"])
        if tally["tally"]:
            self._keeping.setdefault(key, set()).add(tally["id"])
        if "hours" in tally:
            self._days.add((*key, tally["at"][:10]))
        else:
            self._hourly.setdefault(key, set()).add(tally["id"])
        self._put_entity(tally)
        cutoff = self._cutoff(key)
        # what forgetting and rolling look at changes when the cutoff moves (once an hour), or when a
        # tally older than it comes in (a late message, a stored tally at a start)
        if self._swept.get(key) != cutoff or tally["at"] < cutoff:
            self._forget_old_ids(key, cutoff)
            self._roll(key, cutoff)
            self._swept[key] = cutoff
        return True

    def _cutoff(self, key: tuple[str, str]) -> str:
        """The hour before which ``key``'s tallies keep no ids: :data:`TALLY_IDS_KEPT_H` before its newest."""
        newest = self._by_kind[key[0]][key[1]].times[-1]
        cutoff = self._cutoffs.get(newest)
        if cutoff is None:   # an hour's tallies share it: computed once an hour, not once a message
            if len(self._cutoffs) > 4096:
                self._cutoffs.clear()
            cutoff = self._cutoffs[newest] = hours_before(newest, TALLY_IDS_KEPT_H)
        return cutoff

    def _roll(self, key: tuple[str, str], cutoff: str) -> None:
        """Put the hour tallies of each UTC day whose every hour keeps no ids into that day's tally,
        each hour's sums kept (the larger, when the day counted that hour already). Which days are
        rolled depends on the newest tally alone, so a replay rolls the same ones."""
        hourly = self._hourly.get(key, set())
        due: dict[str, list[dict]] = {}
        for tid in hourly:
            f = self._facts[tid]
            if f"{f['at'][:10]}T23:00:00Z" < cutoff:
                due.setdefault(f["at"][:10], []).append(f)
        if not due:
            return
        kind, entity_id = key
        days = []
        for hours in due.values():
            base = day_tally_of(hours[0])
            day = self._facts.get(base["id"], base)
            counted = dict(day["hours"])
            attrs = dict(day["attrs"])
            for f in sorted(hours, key=lambda f: f["at"]):
                hh = f["at"][11:13]
                if larger(counted.get(hh), f["values"]):
                    counted[hh] = f["values"]
                attrs.update(f["attrs"])
                del self._facts[f["id"]]
                hourly.discard(f["id"])
                self._counts[kind] -= 1
            total: dict[str, float] = {}
            for v in counted.values():
                total = plus(total, v)
            if day is base:
                self._counts[kind] += 1
            rolled = self._held({**day, "state": hours[-1]["state"], "attrs": attrs, "hours": dict(sorted(counted.items())),
                                 "values": total})
            self._facts[rolled["id"]] = rolled
            self._days.add((*key, rolled["at"][:10]))
            self._rolled.append((rolled, hours))
            days.append(rolled["id"])
        gone = {f["id"] for hours in due.values() for f in hours}
        kept = [self._facts[f["id"]] for f in self._by_kind[kind][entity_id].history
                if f["id"] not in gone and f["id"] not in days]
        self._set(Entity.of(kind, entity_id, kept + [self._facts[d] for d in days]))
        self.version += 1

    def take_rolled(self) -> list[tuple[dict, list[dict]]]:
        """The day tallies rolled up since the last call, each with the hour tallies it took in (for
        the store: the day written, those hours deleted)."""
        with self._lock:
            out, self._rolled = self._rolled, []
            return out

    def _forget_old_ids(self, key: tuple[str, str], cutoff: str) -> None:
        kind, entity_id = key
        keeping = self._keeping.get(key, set())
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

    def counts(self) -> dict[str, int]:
        """Facts held, per kind (a tally counts as one)."""
        with self._lock:
            return dict(self._counts)

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
