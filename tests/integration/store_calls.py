"""Counting what a request asks of the object store: each path's budget is held by counting calls,
never by timing them (the machine is shared and slow)."""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager

from lscloud import store

class StoreCalls:
    """What one block asked of the store: ``calls["put"]``, ``calls.keys_of("put")``."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def note(self, method: str, key: str) -> None:
        with self._lock:
            self.counts[method] += 1
            self.log.append((method, key))

    def __getitem__(self, method: str) -> int:
        return self.counts[method]

    def keys_of(self, method: str) -> list[str]:
        return [k for m, k in self.log if m == method]

    def __repr__(self) -> str:
        return "\n".join(f"{m} {k}" for m, k in self.log)


_S3 = {"get_object": "get", "head_object": "head", "put_object": "put", "delete_object": "delete",
       "list_objects_v2": "list"}


class _Counted:
    """The store's S3 client, every request counted (a listing counts once per page)."""

    def __init__(self, client, calls: StoreCalls):
        self._client, self._calls = client, calls

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name not in _S3:
            return attr

        def call(**kw):
            self._calls.note(_S3[name], kw.get("Key") or kw.get("Prefix", ""))
            return attr(**kw)

        return call


@contextmanager
def counting():
    """Count every S3 request of the configured store while the block runs (side threads included)."""
    objects, _ = store.connection()
    calls = StoreCalls()
    client = objects.client
    objects.client = _Counted(client, calls)
    try:
        yield calls
    finally:
        objects.client = client
