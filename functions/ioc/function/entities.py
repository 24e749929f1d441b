"""An entity the figures count (a declaration, a dossier, a station …) as of every fact seen: its
facts sorted by :func:`.facts.order` (their second, then the producer's sequence within it) and its
attributes, as the latest fact carrying each one says."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from .facts import order


def _either(merged: dict, *known: dict) -> dict:
    # an entity's attributes are most often exactly its latest fact's (or unchanged by it): that map
    # is kept, not an equal copy (the IOC holds one entity per declaration, dossier, transfer …)
    return next((k for k in known if k == merged), merged)


@dataclass(slots=True)
class Entity:
    """One thing the figures count (a declaration, a dossier, a report …) as of every fact seen.
    Built whole by :meth:`.projection.Projection.apply` and never changed afterwards."""

    kind: str
    id: str
    history: list[dict]  # facts sorted by facts.order: by at first, so times is sorted too
    attrs: dict[str, str]
    times: list[str]  # the history's times, for bisecting

    @classmethod
    def of(cls, kind: str, id: str, facts) -> "Entity":
        history = sorted(facts, key=order)
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
        elif history and order(fact) < order(history[-1]):
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
