"""Reference data in memory: served for a bounded time, then revalidated by ETag.

Reference data (the directory's units, the procedures catalogue) changes rarely and is read on
every request. :class:`Revalidating` keeps what was read with its ETag and answers from memory
for at most ``fresh_s`` seconds; after that the next read asks the source *conditionally* (an
``If-None-Match`` GET: a "not modified" answer costs a round trip but no body, and renews the
bound). So a change reaches every replica within ``fresh_s`` of being written, and replicas stay
stateless: the cache is only a cache, lost with the process, never a second copy that must be kept
in step. ``fresh_s = 0`` asks on every read (still conditionally).

Two sources use it: another function's answers over HTTP (:class:`lscloud.peers.PeerClient`,
bounded by ``min(max-age, LSCLOUD_PEER_FRESH_S)``) and a model's own objects in the store
(``Meta.reference = True`` in :mod:`lscloud.store.model`, bounded by ``LSCLOUD_PEER_FRESH_S``:
one setting says how stale reference data may be, wherever it is read from). A write made in
this process replaces (or drops) the entry at once (:meth:`Revalidating.replace`,
:meth:`Revalidating.drop`); another replica's write is seen within the bound.

A source that fails to answer a revalidation with a *transient* error (``stale_if_error``: a
timeout, a 503 — never a 404, which is an answer) does not fail the read while the value held is
at most ``max_stale_s`` past its bound: the held value is served, as HTTP caches do under
``stale-if-error`` (RFC 5861), and the next read asks again. Under load a peer slow to answer a
revalidation then slows nobody down, instead of turning every caller's request into a 503.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable

NOT_MODIFIED: Any = object()
"""What a loader returns for "unchanged since that ETag" (HTTP 304)."""


class Revalidating:
    """A bounded (LRU) map of key -> (etag, value), each fresh until a deadline.

    Thread-safe; a load runs outside the lock (two threads may both revalidate one key, which
    costs a request, never a wrong answer). A load that a write here overtook (:meth:`replace`,
    :meth:`drop` while it was asked) is not kept: what it read may be older than that write, and
    kept it would have undone the write for ``fresh_s`` (an operator's override not shown, a signing
    certificate just recorded replaced by the record before it).
    """

    def __init__(self, max_entries: int = 256, *, stale_if_error: tuple[type[BaseException], ...] = (),
                 max_stale_s: float = 60.0):
        self.stale_if_error, self.max_stale_s = stale_if_error, float(max_stale_s)
        self._entries: OrderedDict[Hashable, list] = OrderedDict()   # key -> [etag, value, fresh_until, fresh_s]
        self._lock = threading.Lock()
        self._max = max_entries
        self._writes = 0       # replace() and drop() calls so far: a load overtaken by one is not kept
        self.fetched = 0       # loads that returned a value (a 200)
        self.revalidated = 0   # loads answered "not modified" (a 304)
        self.served_fresh = 0  # reads answered from memory within the bound, nobody asked
        self.served_stale = 0  # reads answered from memory past the bound because the source failed

    def get(self, key: Hashable, load: Callable[[str | None], tuple[str | None, Any, float]]) -> Any:
        """The value at ``key``: from memory while fresh, else ``load(etag or None)``.

        ``load`` returns ``(etag, value, fresh_s)``: ``value`` may be :data:`NOT_MODIFIED` (the
        entry is kept and fresh for ``fresh_s`` more); an ``etag`` of None means "not cacheable"
        (the entry is dropped and the value returned). Whatever ``load`` raises propagates and
        leaves the entry as it was — unless it is one of ``stale_if_error`` and the entry is at
        most ``max_stale_s`` past its bound: then the held value is served.
        """
        overtaken = False
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and time.monotonic() < entry[2]:
                    self.served_fresh += 1
                    self._entries.move_to_end(key)
                    return entry[1]
                etag = entry[0] if entry is not None else None
                writes = self._writes
            try:
                new_etag, value, fresh_s = load(etag)
            except self.stale_if_error:
                with self._lock:
                    entry = self._entries.get(key)
                    if entry is None or time.monotonic() > entry[2] + self.max_stale_s:
                        raise
                    self.served_stale += 1
                    return entry[1]
            with self._lock:
                if value is NOT_MODIFIED:
                    self.revalidated += 1
                    entry = self._entries.get(key)
                    if entry is None:   # dropped while it was asked (a delete here): ask for the body
                        continue
                    if entry[0] == etag:
                        entry[2], entry[3] = time.monotonic() + fresh_s, fresh_s
                    self._entries.move_to_end(key)
                    return entry[1]     # (or what a write here put in its place meanwhile)
                self.fetched += 1
                if self._writes != writes:
                    # a write here while it was asked (any key: writes are rare): asked again once,
                    # to read it or what the write left; overtaken twice, answered and not kept
                    if not overtaken:
                        overtaken = True
                        continue
                    return value
                if new_etag is None:
                    self._entries.pop(key, None)
                else:
                    self._store(key, new_etag, value, fresh_s)
            return value

    def replace(self, key: Hashable, etag: str, value: Any) -> None:
        """A write made in this process: ``key`` now holds ``value`` at ``etag``, fresh for the
        bound it was last read with. Only a key already held is replaced (a write does not fill
        the cache with what nobody reads)."""
        with self._lock:
            self._writes += 1
            entry = self._entries.get(key)
            if entry is not None:
                self._store(key, etag, value, entry[3])

    def drop(self, key: Hashable) -> None:
        """Forget ``key`` (deleted here, or a write whose result is unknown): the next read asks."""
        with self._lock:
            self._writes += 1
            self._entries.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def _store(self, key: Hashable, etag: str, value: Any, fresh_s: float) -> None:
        self._entries[key] = [etag, value, time.monotonic() + fresh_s, fresh_s]
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
