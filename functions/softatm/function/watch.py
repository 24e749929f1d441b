"""Waiting for a transfer to change: the long-poll behind ``GET /v1/transfers/{id}`` with
``If-None-Match`` and ``Prefer: wait=N`` (RFC 7240 §4.3).

A teller who created a withdrawal waits for the bank's answer. Instead of asking again and again,
they send the ETag they hold and how long they are willing to wait; the answer comes as soon as
the transfer is something else (200 with the new ETag), or at the bound as ``304 Not Modified``.

- In this replica every committed write of a transfer (:data:`.documents.TRANSFERS`' ``after_commit``)
  hands the document as written to the requests waiting on it: a change made here ends the wait
  at once, without reading the store. A waiter takes a written state only once its consequences
  are done (``notified`` caught up): the teller's next step (commit) then never races the settle
  of the step that woke it.
- A change made by another replica is not seen here: every :data:`RECHECK_S` the waiter reads the
  store again (one GET, instead of the fifty 20 ms polls it replaces), and at the bound it answers
  what the store says. So with several replicas a wait still ends correctly, at worst
  :data:`RECHECK_S` late.
- A long-poll holds one of the WSGI threads the replica serves with (16): at most
  :data:`WAITERS` wait at once, and a request beyond them is answered at once, as a plain GET
  (a preference may be ignored; ``Preference-Applied`` says when it was not).

Who may read a transfer is unchanged: the route checks it on the first read, and a transfer never
changes point or bank.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

MAX_WAIT_S = 20
"""The longest a request may wait (a larger ``wait`` is cut to this; the gateway allows 60 s)."""
RECHECK_S = 1.0
"""How often a waiter reads the store, for changes made by another replica."""
WAITERS = 8
"""At most this many requests wait at once in a replica (half its WSGI threads)."""

_WAIT_RE = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?([0-9]{1,6})\"?(?:$|[,;\s])", re.IGNORECASE)

_lock = threading.Lock()
_waiting: dict[str, list["_Waiter"]] = {}
_slots = threading.BoundedSemaphore(WAITERS)


def etag(view: dict) -> str:
    """A strong validator of the transfer as the caller sees it (sha256 of its JSON, quoted)."""
    body = json.dumps(view, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def requested_wait(prefer_headers: list[str]) -> int:
    """The ``wait`` preference in seconds (0 when none), cut to :data:`MAX_WAIT_S`. A preference the
    server cannot read is ignored, as RFC 7240 says."""
    for header in prefer_headers:
        m = _WAIT_RE.search(header)
        if m:
            return min(int(m.group(1)), MAX_WAIT_S)
    return 0


class _Waiter:
    def __init__(self) -> None:
        self.woken = threading.Event()
        self.doc: dict | None = None


def changed(doc: dict) -> None:
    """A transfer was written in this replica: wake whoever waits on it, with the document as written."""
    with _lock:
        waiters = _waiting.get(doc["id"])
        if not waiters:
            return
        # a copy: the writer's document may be changed in place by its next attempt, stored or not
        doc = copy.deepcopy(doc)
        for w in waiters:
            w.doc = doc
            w.woken.set()


@contextmanager
def watching(tid: str, wanted: bool = True) -> Iterator["_Waiter | None"]:
    """Register for the changes of transfer ``tid`` made in this replica, before reading it (so no
    change after that read is missed); yields the registration, or None when not ``wanted`` or
    when every waiting slot is taken (the caller then answers at once)."""
    if not wanted or not _slots.acquire(blocking=False):
        yield None
        return
    w = _Waiter()
    with _lock:
        _waiting.setdefault(tid, []).append(w)
    try:
        yield w
    finally:
        with _lock:
            waiters = _waiting.get(tid, [])
            if w in waiters:
                waiters.remove(w)
            if not waiters:
                _waiting.pop(tid, None)
        _slots.release()


def settled(doc: dict) -> bool:
    """The consequences of the transfer's state are done (so the caller's next step races nothing)."""
    return doc["notified"] == doc["state"]


def wait(w: _Waiter, held: Callable[[str], bool], seconds: float, read: Callable[[], dict],
         view: Callable[[dict], dict]) -> dict | None:
    """Wait up to ``seconds`` for the transfer ``w`` watches to look other than the caller holds
    (``held(etag)`` is the route's reading of ``If-None-Match``): the document once it does
    (settled, when the change was made here), or None when the store still matches at the bound.
    ``read()`` reads the store (with the route's access and lazy checks)."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left > 0 and w.woken.wait(min(left, RECHECK_S)):
            with _lock:
                w.woken.clear()
                doc, w.doc = w.doc, None
            if doc is not None and settled(doc) and not held(etag(view(doc))):
                return doc
            continue   # a write that changes nothing the caller sees, or its consequences still running
        # a recheck (another replica may have changed it, and be settling it: answered as it is),
        # or the bound: what the store says
        doc = read()
        if not held(etag(view(doc))):
            return doc
        if left <= RECHECK_S:   # this read was at the bound
            return None
