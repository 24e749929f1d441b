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
        self.listed_max_keys: list[int] = []   # each listing request's max-keys, in order
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


_S3 = {"GetObject": "get", "HeadObject": "head", "PutObject": "put", "DeleteObject": "delete",
       "ListObjectsV2": "list"}


class _Counted:
    """The store's S3 wire (:class:`lscloud.store.s3http.S3Http`), every object request counted (a
    listing counts once per page)."""

    def __init__(self, http, calls: StoreCalls, gate: "Rounds | None" = None):
        self._http, self._calls, self._gate = http, calls, gate

    def __getattr__(self, name):
        return getattr(self._http, name)

    def request(self, operation, method, bucket, key="", **kw):
        if operation in _S3:
            params = dict(kw.get("params", ()))
            name, what = _S3[operation], key or params.get("prefix", "")
            self._calls.note(name, what)
            if operation == "ListObjectsV2":
                self._calls.listed_max_keys.append(int(params["max-keys"]))
            if self._gate is not None:
                self._gate.hold(name, what)
        return self._http.request(operation, method, bucket, key, **kw)

    def start_get(self, bucket, key):
        """A GET sent ahead (:meth:`ObjectStore.ahead`): in flight from now, its answer held until
        its round is let go."""
        self._calls.note("get", key)
        mine = self._gate.arrive("get", key) if self._gate is not None else None
        return _HeldAnswer(self._http.start_get(bucket, key), self._gate, mine)


class _HeldAnswer:
    def __init__(self, started, gate: "Rounds | None", round_no: int | None):
        self._started, self._gate, self._round = started, gate, round_no

    def reply(self):
        if self._gate is not None:
            self._gate.wait(self._round)
        return self._started.reply()

    def discard(self):
        self._started.discard()


class Rounds:
    """Holds every S3 request until the test lets its round go: how many round trips a request
    makes one after the other is then counted, not timed.

    ``next_round(n)`` waits until ``n`` requests are held at once (the round's requests: a request
    that waits on them cannot send the next round before they are let go), lets them go and
    returns them as ``[(method, key)]``; it fails if fewer than ``n`` ever come together."""

    def __init__(self, patience_s: float = 30.0):
        self._cond = threading.Condition()
        self._held: list[tuple[str, str]] = []
        self._round = 0
        self.patience_s = patience_s
        self.open = False  # once open, nothing is held any more

    def hold(self, method: str, key: str) -> None:
        self.wait(self.arrive(method, key))

    def arrive(self, method: str, key: str) -> int:
        """A request is in flight (sent, its answer not read yet): the round it belongs to."""
        with self._cond:
            self._held.append((method, key))
            self._cond.notify_all()
            return self._round

    def wait(self, round_no: int) -> None:
        """Hold the answer of a request of round ``round_no`` until that round is let go."""
        with self._cond:
            self._cond.wait_for(lambda: self._round != round_no or self.open)

    def next_round(self, n: int) -> list[tuple[str, str]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._held) >= n, timeout=self.patience_s):
                raise AssertionError(f"expected {n} requests in flight at once, only these came: {self._held}")
            out, self._held = self._held, []
            self._round += 1
            self._cond.notify_all()
            return out

    def let_go(self) -> None:
        with self._cond:
            self.open = True
            self._cond.notify_all()


@contextmanager
def counting(rounds: Rounds | None = None):
    """Count every S3 request of the configured store while the block runs (side threads included);
    with ``rounds``, hold each one until its round is let go (see :class:`Rounds`), to count how
    many round trips a request makes one after the other. Nothing is timed: the round's patience
    only keeps a failing test from hanging."""
    objects, _ = store.connection()
    calls = StoreCalls()
    http = objects.http
    objects.http = _Counted(http, calls, rounds)
    try:
        yield calls
    finally:
        if rounds is not None:
            rounds.let_go()
        objects.http = http
