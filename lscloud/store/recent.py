"""Read-modify-write without the read: the items this replica last wrote, kept with their ETags.

A hot item that one replica writes again and again (a caller's rate-limit counter, a chat
session's context) costs a GET and a conditional PUT per change under :meth:`Model.update`.
:class:`RecentItems` remembers the copy this replica last read or wrote; the next change starts
from it and goes straight to the conditional PUT (``If-Match`` its ETag, or create-only for a key
this replica has not seen and is told to presume free). The PUT itself says whether the copy was
still current: if another replica wrote the item since (or it exists after all), the condition
fails, the copy is forgotten and the change is made again on a fresh read, under the project's
retry policy. So a stale copy costs one lost condition and a re-read, never a lost write, and
replicas stay stateless: the store holds the truth, the copy is only a guess at its version.

    RECENT = RecentItems(RateWindow, max_items=10_000)
    item = RECENT.update(subject, window, lambda item: ..., create=lambda: RateWindow(subject, window))

``fn`` may run more than once (once per attempt), so it must only compute from the item it is
given; an exception from it aborts the change with nothing written. A decision ``fn`` makes
without a write is only as current as the item it was made on: where the item can go back (a
daily counter that an abort takes a transfer out of), name that decision's exceptions in
``recheck=`` and one made on the remembered copy (or on ``create()``'s new item) is made again
on a fresh read before it is raised.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Generic, TypeVar

from ..lru import LRU
from .errors import ConditionalCheckFailed
from .model import ResultPage
from .retry import DEFAULT, Backoff

M = TypeVar("M")


class RecentItems(Generic[M]):
    """At most ``max_items`` copies of ``model`` items (least recently used dropped first)."""

    def __init__(self, model: type[M], *, max_items: int = 4096, policy: Backoff = DEFAULT):
        self.model, self.max_items, self.policy = model, max_items, policy
        self._items: LRU[str, M] = LRU(max_items)

    def __len__(self) -> int:
        return len(self._items)

    def lookup(self, hash_key: Any, range_key: Any = None) -> M | None:
        """A private copy of the item as this replica last saw it (None: not seen, or expired since)."""
        item = self._items.get(self.model._key_for(hash_key, range_key))
        if item is None or item._expired():
            return None
        return _copy(item)

    def keep(self, item: M) -> None:
        """Remember ``item`` (as read or saved: it has an ETag) for the next change."""
        if item.etag is None:
            return
        self._items.put(item._key(), _copy(item))

    def forget(self, hash_key: Any, range_key: Any = None) -> None:
        self._items.pop(self.model._key_for(hash_key, range_key))

    def scan(self, limit: int | None = None, page_token: str | None = None) -> ResultPage[M]:
        """:meth:`Model.scan` without reading what this replica holds as it is stored: an item the
        listing shows with the ETag of the copy held here is answered from the copy (a private one,
        as :meth:`lookup` gives); every other item is read, and remembered as read.

        For a sweep that goes over a whole table again and again (a back office's rescan of the
        day's records): only what changed since this replica last saw it costs a GET. The listing
        says what is stored; a copy is used only when its ETag is the stored one, so a change by
        another replica, or a deletion, is never missed."""

        from_memory: set[str] = set()

        def held(key: str, etag: str) -> M | None:
            item = self._items.get(key)
            if item is None or not etag or _unquoted(item.etag) != _unquoted(etag) or item._expired():
                return None
            from_memory.add(key)
            return _copy(item)

        page = self.model._scan(limit, page_token, held=held)
        for item in page:
            if item._key() not in from_memory:
                self.keep(item)
        return page

    def update(self, hash_key: Any, range_key: Any, fn: Callable[[M], Any], *,
               create: Callable[[], M] | None = None,
               recheck: type[BaseException] | tuple[type[BaseException], ...] = ()) -> M:
        """``fn(item)`` applied to the item and saved conditionally; the saved item.

        The first attempt starts from the remembered copy; for a key not remembered, from
        ``create()`` (presumed free, written create-only) when given, else from a read. Every
        later attempt starts from a fresh read (``create()`` when there is none; without
        ``create`` a missing item raises ``model.DoesNotExist``). Lost conditions are retried
        under the retry policy, then ConditionalCheckFailed propagates.

        ``recheck``: exceptions of ``fn`` not trusted when raised on the remembered copy or on
        ``create()``'s item (they may be stale): the change is tried on a fresh read, and raised
        only if ``fn`` raises them there too.
        """
        guess = self.lookup(hash_key, range_key)
        if guess is None and create is not None:
            guess = create()

        def attempt(item: M) -> M:
            fn(item)
            try:
                item.save()
            except ConditionalCheckFailed:
                self.forget(hash_key, range_key)
                raise
            self.keep(item)
            return item

        def once() -> M:
            nonlocal guess
            if guess is not None:
                item, guess = guess, None
                try:
                    return attempt(item)
                except ConditionalCheckFailed:
                    pass    # the copy was stale (or the key taken): a fresh read at once, no back-off
                except recheck:
                    pass    # decided on a guess: the stored item decides
            return attempt(self._read(hash_key, range_key, create))

        return self.policy.run(once)

    def _read(self, hash_key: Any, range_key: Any, create: Callable[[], M] | None) -> M:
        try:
            return self.model.get(hash_key, range_key)
        except self.model.DoesNotExist:
            if create is None:
                raise
            return create()


def _unquoted(etag: str | None) -> str:
    return (etag or "").removeprefix("W/").strip('"')


def _copy(item: M) -> M:
    twin = copy.copy(item)
    twin._values = _tree_copy(item._values)
    return twin


_IMMUTABLE = (str, int, float, bool, type(None), bytes)


def _tree_copy(value: Any) -> Any:
    """A deep copy of an item's values: they are JSON-shaped (dicts, lists, strings, numbers), which
    this copies at a third of ``copy.deepcopy``'s cost; anything else goes to ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _IMMUTABLE else _tree_copy(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _IMMUTABLE else _tree_copy(v) for v in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)   # a dict or list subclass keeps its type, as deepcopy keeps it
