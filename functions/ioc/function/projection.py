"""The IOC's projection: every fact it has absorbed, folded per entity, order-independent.

Figures are computed from the facts alone (:mod:`.figures`), never from the order they arrived in:
an entity's history is its facts sorted by ``(at, id)``, its attributes are taken from the latest fact
that carries each one. So a redelivered event (same id) changes nothing, and a projection rebuilt from
the stream in any order gives exactly the same figures as the live one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Entity:
    """One thing the figures count (a declaration, a dossier, a report …) as of every fact seen."""

    kind: str
    id: str
    history: list[dict] = field(default_factory=list)  # facts sorted by (at, id)
    attrs: dict[str, str] = field(default_factory=dict)

    def first(self, *states: str) -> str | None:
        """When the entity first entered one of ``states`` (None: never)."""
        return next((f["at"] for f in self.history if f["state"] in states), None)

    def at(self, t: str) -> dict | None:
        """The entity's last fact at or before ``t`` (None: it did not exist yet)."""
        last = None
        for f in self.history:
            if f["at"] > t:
                break
            last = f
        return last

    def attr_at(self, name: str, t: str) -> str | None:
        """The attribute as the last fact at or before ``t`` that carried it said."""
        value = None
        for f in self.history:
            if f["at"] > t:
                break
            value = f["attrs"].get(name, value)
        return value


class Projection:
    """Facts by id and entities by (kind, id); thread-safe; ``version`` grows with every new fact."""

    def __init__(self):
        self._facts: dict[str, dict] = {}
        self._entities: dict[tuple[str, str], dict[str, dict]] = {}
        self._views: dict[str, list[Entity]] = {}
        self._views_version = -1
        self._lock = threading.RLock()
        self.version = 0

    def apply(self, fact: dict) -> bool:
        """Add a fact; False when a fact with its id is already in (a redelivery)."""
        with self._lock:
            if fact["id"] in self._facts:
                return False
            self._facts[fact["id"]] = fact
            self._entities.setdefault((fact["kind"], fact["entity"]), {})[fact["id"]] = fact
            self.version += 1
            return True

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
        out: dict[str, str] = {}
        with self._lock:
            for f in self._facts.values():
                if f["at"] > out.get(f["source"], ""):
                    out[f["source"]] = f["at"]
        return out

    def entities(self, kind: str) -> list[Entity]:
        """The entities of ``kind``, histories sorted (cached until the next new fact)."""
        with self._lock:
            if self._views_version != self.version:
                views: dict[str, list[Entity]] = {}
                for (k, eid), facts in sorted(self._entities.items()):
                    history = sorted(facts.values(), key=lambda f: (f["at"], f["id"]))
                    attrs: dict[str, str] = {}
                    for f in history:
                        attrs.update(f["attrs"])
                    views.setdefault(k, []).append(Entity(k, eid, history, attrs))
                self._views, self._views_version = views, self.version
            return self._views.get(kind, [])
