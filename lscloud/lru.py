"""A bounded map for per-replica memory (copies, hints): thread-safe, the least recently used entry
dropped first, so a replica's memory stays bounded however many keys it meets."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, Hashable, Iterator, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``max_items`` entries; reading or writing one makes it the most recently used."""

    def __init__(self, max_items: int):
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        """The keys held now, least recently used first (a snapshot)."""
        with self._lock:
            return iter(list(self._items))

    def get(self, key: K) -> V | None:
        """The value at ``key`` (None when not held)."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Hold ``value`` at ``key``, dropping the least recently used entries past the bound."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        """Forget ``key`` (nothing when it is not held)."""
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()
