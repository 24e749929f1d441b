"""The IOC's projection: every fact it has absorbed, folded per entity, order-independent.

Figures are computed from the facts alone (:mod:`.figures`), never from the order they arrived in:
an entity's history is its facts sorted by ``(at, id)``, its attributes are taken from the latest fact
that carries each one. So a redelivered event (same id) changes nothing, and a projection rebuilt from
the stream in any order gives exactly the same figures as the live one.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass
class Entity:
    """One thing the figures count (a declaration, a dossier, a report …) as of every fact seen.
    Built whole by :meth:`Projection.apply` and never changed afterwards."""

    kind: str
    id: str
    history: list[dict] = field(default_factory=list)  # facts sorted by (at, id)
    attrs: dict[str, str] = field(default_factory=dict)
    firsts: dict[str, str] = field(default_factory=dict)  # state -> when first entered
    times: list[str] = field(default_factory=list)  # the history's times, for bisecting

    @classmethod
    def of(cls, kind: str, id: str, facts) -> "Entity":
        history = sorted(facts, key=lambda f: (f["at"], f["id"]))
        attrs: dict[str, str] = {}
        firsts: dict[str, str] = {}
        for f in history:
            attrs.update(f["attrs"])
            firsts.setdefault(f["state"], f["at"])
        return cls(kind, id, history, attrs, firsts, [f["at"] for f in history])

    def first(self, *states: str) -> str | None:
        """When the entity first entered one of ``states`` (None: never)."""
        found = [self.firsts[s] for s in states if s in self.firsts]
        return min(found) if found else None

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


class Projection:
    """Facts by id and entities by kind; thread-safe; ``version`` grows with every new fact.

    An entity's history and attributes are replaced, never changed in place, when a fact arrives:
    a reader computing figures meanwhile sees each entity either before or after it."""

    def __init__(self):
        self._facts: dict[str, dict] = {}
        self._by_kind: dict[str, dict[str, Entity]] = {}
        self._last_at: dict[str, str] = {}
        self._lock = threading.RLock()
        self._memo: dict = {}
        self.version = 0

    def apply(self, fact: dict) -> bool:
        """Add a fact; False when a fact with its id is already in (a redelivery)."""
        with self._lock:
            if fact["id"] in self._facts:
                return False
            self._facts[fact["id"]] = fact
            entities = self._by_kind.setdefault(fact["kind"], {})
            old = entities.get(fact["entity"])
            entities[fact["entity"]] = Entity.of(fact["kind"], fact["entity"], [*(old.history if old else ()), fact])
            if fact["at"] > self._last_at.get(fact["source"], ""):
                self._last_at[fact["source"]] = fact["at"]
            self.version += 1
            return True

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

    def fact_ids(self) -> set[str]:
        with self._lock:
            return set(self._facts)

    def last_at(self) -> dict[str, str]:
        """The latest fact time per source (the freshness of each source's figures)."""
        with self._lock:
            return dict(self._last_at)

    def entities(self, kind: str) -> list[Entity]:
        """The entities of ``kind`` as they are now (each with its sorted history)."""
        with self._lock:
            return list(self._by_kind.get(kind, {}).values())
