"""The process's live projection: facts written to the store, folded in memory, changes announced.

Every absorbed event's fact is written once under ``ioc/facts/<source>/<digest>.json`` (the digest of
the event's source and id, so a redelivery rewrites the same object with the same bytes) *before* it
is folded in: what the projection shows is always in the store, and a restarted instance loads it
back. A fact of a tallied kind (a station's readings: :data:`.projection.TALLIED`) is counted into
its station-hour's tally, and the tally is what is written, under its own id. The IOC runs as one
replica (func.yaml ``max: 1``): it is the one reader of its facts, and the live stream
(:meth:`Live.wait`) follows the changes this process folds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import deque
from contextlib import nullcontext
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

from lscloud import store

from . import facts, figures
from .projection import TALLIED, Projection

PREFIX = "ioc/facts/"

log = logging.getLogger("ioc.live")


def stored_key(fact: Mapping) -> str:
    """Where a fact (or a tally) is kept: its id is the digest its key ends with."""
    return f"{PREFIX}{fact['source']}/{fact['id']}.json"


def _body(fact: Mapping) -> bytes:
    return json.dumps(fact, sort_keys=True, ensure_ascii=False).encode()


def fact_of(event: Mapping) -> dict | None:
    """The event's fact, its id the digest of the event's source and id (never the raw event id), which
    also names where it is kept (:func:`stored_key`): a redelivery rewrites the same object."""
    fact = facts.of(event)
    if fact is not None:
        fact["id"] = hashlib.sha256(f"{event.get('source')}\n{event.get('id')}".encode()).hexdigest()[:40]
    return fact


class Live:
    """The live projection of one IOC instance and the changes it announces to streams."""

    def __init__(self, history: int = 512):
        self.projection = figures.new_projection()
        self._loaded = False
        self._load_lock = threading.Lock()
        self._changed = threading.Condition()
        self._seq = 0
        self._recent: deque[tuple[int, str]] = deque(maxlen=history)  # (seq, source)
        # a tally is counted and written under this lock: two facts of one hour written in the other
        # order than they were counted would leave the store's tally without the first
        self._tallying = threading.Lock()

    # -- state -----------------------------------------------------------------------------------

    def ensure_loaded(self) -> Projection:
        """Load every stored fact once (a restarted instance shows what it had absorbed)."""
        if self._loaded:
            return self.projection
        with self._load_lock:
            if not self._loaded:
                objects, bucket = store.connection()
                keys = [info.key for info in objects.list(bucket, PREFIX)]

                def read(key: str) -> dict:
                    return json.loads(objects.get(bucket, key).body)

                per_message: list[str] = []   # a tallied kind's facts kept one by one (before tallies)
                with ThreadPoolExecutor(8) as pool:
                    for key, fact in zip(keys, pool.map(read, keys)):
                        if fact["kind"] in TALLIED and "tally" not in fact:
                            fact = {**fact, "entity": fact["attrs"].get("station") or fact["entity"]}
                            per_message.append(key)
                        self.projection.apply(fact)
                if per_message:
                    self._tally_the_stored(per_message)
                self._loaded = True
        return self.projection

    def _tally_the_stored(self, per_message: list[str]) -> None:
        """Facts a tallied kind used to keep one per message, now counted in their tallies: the
        tallies are written, then the facts they count are deleted (a start that stops between the
        two finds both, and counts each message once)."""
        objects, bucket = store.connection()
        tallies = [f for f in self.projection.facts() if f["kind"] in TALLIED]
        for tally in tallies:
            objects.put(bucket, stored_key(tally), _body(tally))
        for key in per_message:
            objects.delete(bucket, key)
        log.info("%d stored facts counted into %d tallies", len(per_message), len(tallies))

    def absorb(self, event: Mapping) -> bool:
        """Fold one event in (written to the store first); False when it counts for nothing or was in."""
        fact = fact_of(event)
        if fact is None:
            return False
        self.ensure_loaded()  # first: loading after the write would fold the new fact in unannounced
        objects, bucket = store.connection()
        tallied = fact["kind"] in TALLIED
        with self._tallying if tallied else nullcontext():
            if tallied:   # what is stored and folded in is its station-hour's tally, counting it
                fact = self.projection.tallied(fact)
                if fact is None:
                    return False   # counted already
            objects.put(bucket, stored_key(fact), _body(fact))
            added = self.projection.apply(fact)
        if added:
            self.announce(fact["source"])
        return added

    def adopt(self, rebuilt: Projection) -> None:
        """Put a projection rebuilt from the stream live: its facts stored first, then swapped in."""
        objects, bucket = store.connection()
        current = {f["id"]: f for f in self.ensure_loaded().facts()}
        for fact in rebuilt.facts():
            if current.get(fact["id"]) != fact:   # new, or a tally that counts otherwise
                objects.put(bucket, stored_key(fact), _body(fact))
        kept = rebuilt.fact_ids()
        for fid, fact in current.items():  # facts the stream no longer has (nothing else reads them)
            if fid not in kept:
                objects.delete(bucket, stored_key(fact))
        self.projection = rebuilt
        self.announce("*")

    # -- changes ---------------------------------------------------------------------------------

    def announce(self, source: str) -> None:
        with self._changed:
            self._seq += 1
            self._recent.append((self._seq, source))
            self._changed.notify_all()

    @property
    def seq(self) -> int:
        return self._seq

    def wait(self, after: int, timeout: float) -> tuple[int, set[str]]:
        """Block until a change after ``after`` (or ``timeout`` seconds); the last seq and the sources changed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._seq <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._seq, set()
                self._changed.wait(left)
            return self._seq, {s for q, s in self._recent if q > after}
