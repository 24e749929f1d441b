"""The process's live projection: facts written to the store, folded in memory, changes announced.

Every absorbed event's fact is written once under ``ioc/facts/<source>/<digest>.json`` (the digest of
the event's source and id, so a redelivery rewrites the same object with the same bytes) *before* it
is folded in: what the projection shows is always in the store, and a restarted instance loads it
back. A fact of a tallied kind (a station's readings: :data:`.tallies.TALLIED`) is counted into
its station-hour's tally, and the tally is what is written, under its own id. Once :data:`PACK_AT`
such loose facts have gathered they are written again as one *pack* (``ioc/packs/``, gzipped JSON)
and deleted: a start reads a few hundred packs, not a fact per object. The IOC runs as one replica
(func.yaml ``max: 1``): it is the one reader and writer of its facts, and the live stream
(:meth:`Live.wait`) follows the changes this process folds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from contextlib import nullcontext
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

from lscloud import store
from lscloud.store import ConditionalCheckFailed, DoesNotExist

from . import facts, figures, metrics
from .projection import Projection
from .tallies import TALLIED

PREFIX = "ioc/facts/"
PACKS = "ioc/packs/"
PACK_AT = 1000
"""Loose facts gathered before they are packed. A start read every fact as an object of its own, one
GET each (hundreds of thousands after a year); it reads a pack of a thousand as one."""
PACK_MOST = 5000
"""Facts in one pack at most (a rebuilt projection is put live as packs of this many)."""

log = logging.getLogger("ioc.live")


def stored_key(fact: Mapping) -> str:
    """Where a fact (or a tally) is kept: its id is the digest its key ends with."""
    return f"{PREFIX}{fact['source']}/{fact['id']}.json"


def _body(fact: Mapping) -> bytes:
    return json.dumps(fact, sort_keys=True, ensure_ascii=False).encode()


def _fact_id(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".json")


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _put_pack(objects, bucket: str, held: list[Mapping]) -> str:
    key = f"{PACKS}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:12]}.json.gz"
    body = gzip.compress(json.dumps({"facts": held}, ensure_ascii=False, separators=(",", ":")).encode(), 6)
    objects.put(bucket, key, body, content_type="application/gzip", if_none_match=True)
    return key


def _delete_if_unchanged(objects, bucket: str, key: str, etag: str) -> bool:
    try:
        objects.delete(bucket, key, if_match=etag)
        return True
    except (ConditionalCheckFailed, DoesNotExist):   # rewritten since (a tally counting more), or gone
        return False


def fact_of(event: Mapping) -> dict | None:
    """The event's fact, its id the digest of the event's source and id (never the raw event id), which
    also names where it is kept (:func:`stored_key`): a redelivery rewrites the same object. An event
    the IOC cannot read a fact from (data of another shape than its contract's) is none: logged and
    skipped. It was a 500, dead-lettered after five deliveries, and ``POST /v1/replay``, which reads
    every event the stream keeps, answered 500 for as long as the stream kept it."""
    try:
        fact = facts.of(event)
    except (AttributeError, TypeError, ValueError, KeyError, OverflowError) as exc:
        log.warning("event %s (%s) holds no fact the IOC can read (%s): skipped", event.get("id"),
                    event.get("type"), type(exc).__name__)
        metrics.unread(event.get("type"))
        return None
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
        self._loose: set[str] = set()         # keys of the facts stored loose (not in a pack yet)
        self._packing = threading.Lock()

    # -- state -----------------------------------------------------------------------------------

    def ensure_loaded(self) -> Projection:
        """Load every stored fact once (a restarted instance shows what it had absorbed)."""
        if self._loaded:
            return self.projection
        with self._load_lock:
            if not self._loaded:
                started = time.monotonic()
                objects, bucket = store.connection()
                packs = [info.key for info in objects.list(bucket, PACKS)]
                keys = [info.key for info in objects.list(bucket, PREFIX)]

                def read(key: str) -> dict:
                    return json.loads(objects.get(bucket, key).body)

                def read_pack(key: str) -> bytes:
                    return objects.get(bucket, key).body

                per_message: list[str] = []   # a tallied kind's facts kept one by one (before tallies)
                with ThreadPoolExecutor(8) as pool:
                    # a fact in a pack and loose too (a pack cut off before its deletes): held once;
                    # a tally in both: the one counting more (Projection.apply merges them). Read
                    # a few at a time: what is read waits in memory beside what is already held
                    for some in _batches(packs, 8):
                        for body in pool.map(read_pack, some):
                            for fact in json.loads(gzip.decompress(body))["facts"]:
                                self.projection.apply(fact)
                    for some in _batches(keys, 256):
                        for key, fact in zip(some, pool.map(read, some)):
                            if fact["kind"] in TALLIED and "tally" not in fact:
                                fact = {**fact, "entity": fact["attrs"].get("station") or fact["entity"]}
                                per_message.append(key)
                            self.projection.apply(fact)
                self._loose = set(keys)
                if per_message:
                    self._loose -= set(per_message)
                    self._loose |= self._tally_the_stored(per_message)
                self._store_rolled()   # days the start rolled up (hour tallies stored before their day's)
                self._loaded = True
                metrics.loaded(time.monotonic() - started)
                log.info("loaded %d facts from %d packs and %d loose objects", len(self.projection), len(packs), len(keys))
        self._pack_when_due()
        return self.projection

    def loose_count(self) -> int:
        """Facts stored one object each, not packed yet."""
        return len(self._loose)

    def _pack_when_due(self) -> None:
        if len(self._loose) >= PACK_AT and not self._packing.locked():
            threading.Thread(target=self.pack, name="ioc-pack", daemon=True).start()

    def pack(self) -> int:
        """Write the loose facts as one pack (at most :data:`PACK_MOST`), then delete each loose object
        still as listed; how many were packed. One at a time; a run cut off anywhere leaves every
        fact in the store (in its pack, loose, or both)."""
        if not self._packing.acquire(blocking=False):
            return 0
        try:
            objects, bucket = store.connection()
            # listed and read from memory together under the tallying lock: a tally's loose copy is
            # then exactly what memory holds (both are written under it), so the pack holds it whole
            with self._tallying:
                listed = [(i.key, i.etag) for i in objects.list(bucket, PREFIX, limit=PACK_MOST)]
                chosen = [(key, etag, self.projection.fact(_fact_id(key))) for key, etag in listed]
            # a fact written and not folded in yet is not in memory: it stays loose for the next pack
            chosen = [(key, etag, fact) for key, etag, fact in chosen if fact is not None]
            if not chosen:
                return 0
            _put_pack(objects, bucket, [fact for _, _, fact in chosen])
            with ThreadPoolExecutor(4) as pool:
                gone = [key for (key, _, _), done in zip(chosen, pool.map(
                    lambda c: _delete_if_unchanged(objects, bucket, c[0], c[1]), chosen)) if done]
            self._loose.difference_update(gone)
            deleted = len(gone)
            log.info("packed %d loose facts (%d deleted; the others were rewritten since)", len(chosen), deleted)
            return len(chosen)
        except Exception:  # noqa: BLE001 - packing only saves reads at the next start: tried again later
            log.warning("packing the loose facts failed", exc_info=True)
            return 0
        finally:
            self._packing.release()

    def _store_rolled(self) -> None:
        """The days the projection rolled up (:meth:`.Projection.take_rolled`): each day's tally
        written, then the hour tallies it took in deleted (a start that finds both counts each hour
        once). Called where tallies are written: under the tallying lock, or while loading."""
        objects, bucket = store.connection()
        for day, hours in self.projection.take_rolled():
            objects.put(bucket, stored_key(day), _body(day))
            self._loose.add(stored_key(day))
            for hour in hours:
                objects.delete(bucket, stored_key(hour))   # one already packed: nothing here, its pack's copy stays
                self._loose.discard(stored_key(hour))

    def _tally_the_stored(self, per_message: list[str]) -> set[str]:
        """Facts a tallied kind used to keep one per message, now counted in their tallies: the
        tallies are written, then the facts they count are deleted (a start that stops between the
        two finds both, and counts each message once). The tallies' keys are returned."""
        objects, bucket = store.connection()
        tallies = [f for f in self.projection.facts() if f["kind"] in TALLIED]
        for tally in tallies:
            objects.put(bucket, stored_key(tally), _body(tally))
        for key in per_message:
            objects.delete(bucket, key)
        log.info("%d stored facts counted into %d tallies", len(per_message), len(tallies))
        return {stored_key(t) for t in tallies}

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
            if tallied:
                self._store_rolled()
        if added:
            self._loose.add(stored_key(fact))
            self._pack_when_due()
            self.announce(fact["source"])
        return added

    def adopt(self, rebuilt: Projection) -> None:
        """Put a projection rebuilt from the stream live: its facts stored first (as packs), then the
        packs and loose facts of the one it replaces deleted, then swapped in. A fact folded in since
        the rebuild began stays in the store (loose) and is back at the next start. Cut off before
        its deletes, the store holds both: the next start shows what the stream and the old held."""
        objects, bucket = store.connection()
        with self._packing:
            current = self.ensure_loaded().fact_ids()
            old_packs = [info.key for info in objects.list(bucket, PACKS)]
            loose = [(info.key, info.etag) for info in objects.list(bucket, PREFIX)]
            held = rebuilt.facts()
            rebuilt.take_rolled()   # its days are in its facts, written whole below
            for some in _batches(held, PACK_MOST):
                _put_pack(objects, bucket, some)
            for key in old_packs:
                objects.delete(bucket, key)
            for key, etag in loose:
                if _fact_id(key) in current and _delete_if_unchanged(objects, bucket, key, etag):
                    self._loose.discard(key)
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
