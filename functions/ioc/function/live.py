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
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

from lscloud import store
from lscloud.store import ConditionalCheckFailed, DoesNotExist

from . import facts, figures, metrics
from .projection import Projection, rebuild_begun, tick
from .tallies import TALLIED, day_tally_of, merged, tally_of

PREFIX = "ioc/facts/"
PACKS = "ioc/packs/"
PACK_AT = 1000
"""Loose facts gathered before they are packed. A start read every fact as an object of its own, one
GET each (hundreds of thousands after a year); it reads a pack of a thousand as one."""
PACK_MOST = 5000
"""Facts in one pack at most (a rebuilt projection is put live as packs of this many)."""
TALLY_TRIES = 5
"""Writes of one tally tried at most: each lost condition is another writer's copy, read and merged in."""

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
        self.projection.serving = True
        self._loaded = False
        self._load_lock = threading.Lock()
        self._changed = threading.Condition()
        self._seq = 0
        self._recent: deque[tuple[int, str]] = deque(maxlen=history)  # (seq, source)
        # a tally is counted and written under this lock: two facts of one hour written in the other
        # order than they were counted would leave the store's tally without the first
        self._tallying = threading.Lock()
        self._etags: dict[str, str] = {}      # a loose tally's key -> the ETag of its copy as last written or read
        self._loose: set[str] = set()         # keys of the facts stored loose (not in a pack yet)
        self._packing = threading.Lock()
        # a fact is folded in, and kept for a rebuild begun before it (adopt folds those in), under
        # this lock; adopt swaps the projection under it: no fact folded into the one it replaces is missed
        self._folding = threading.Lock()
        self._since: deque[tuple[int, dict]] = deque()   # (tick, fact) folded in while a rebuild was open

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
                listed = {info.key: info.etag for info in objects.list(bucket, PREFIX)}
                keys = list(listed)

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
                            one_by_one = fact["kind"] in TALLIED and "tally" not in fact
                            if one_by_one:
                                fact = {**fact, "entity": fact["attrs"].get("station") or fact["entity"]}
                                per_message.append(key)
                            elif fact["kind"] in TALLIED:
                                self._etags[key] = listed[key]
                            self.projection.apply(fact, stored=one_by_one)
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
            for key in gone:
                self._etags.pop(key, None)
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
            written = self._write_tally(objects, bucket, day)
            if written is not day:   # the stored copy counted more: folded in too
                with self._folding:
                    self.projection.apply(written)
            self._loose.add(stored_key(day))
            for hour in hours:
                objects.delete(bucket, stored_key(hour))   # one already packed: nothing here, its pack's copy stays
                self._loose.discard(stored_key(hour))
                self._etags.pop(stored_key(hour), None)

    def _tally_the_stored(self, per_message: list[str]) -> set[str]:
        """Facts a tallied kind used to keep one per message, now counted in their tallies: the
        tallies are written, then the facts they count are deleted (a start that stops between the
        two finds both, and counts each message once). The tallies' keys are returned."""
        objects, bucket = store.connection()
        tallies = [f for f in self.projection.facts() if f["kind"] in TALLIED]
        for tally in tallies:
            self._etags[stored_key(tally)] = objects.put(bucket, stored_key(tally), _body(tally))
        for key in per_message:
            objects.delete(bucket, key)
        log.info("%d stored facts counted into %d tallies", len(per_message), len(tallies))
        return {stored_key(t) for t in tallies}

    def _write_tally(self, objects, bucket: str, tally: dict) -> dict:
        """Write ``tally`` only over the copy this process last wrote or read (create-only when it
        knows none): a copy another writer left (an instance beside it in a rollout) is read and
        merged in, never overwritten. The tally written, or the stored one when it counts all of it."""
        key = stored_key(tally)
        for _ in range(TALLY_TRIES):
            etag = self._etags.get(key)
            try:
                self._etags[key] = objects.put(bucket, key, _body(tally), if_match=etag, if_none_match=etag is None)
                return tally
            except (ConditionalCheckFailed, DoesNotExist):
                self._etags.pop(key, None)
            try:
                there = objects.get(bucket, key)
            except DoesNotExist:
                continue   # deleted since (packed): created anew
            self._etags[key] = there.etag
            stored = json.loads(there.body)
            tally = merged(stored, tally)
            if tally is None:
                return stored
        raise ConditionalCheckFailed(f"{key} changed {TALLY_TRIES} times while it was written", key=key)

    def _fold(self, fact: dict, held: dict | None) -> bool:
        """Fold ``held`` (``fact``, or its tally counting it) in; while a rebuild is open
        (:func:`.projection.rebuild_begun`) ``fact`` is kept for :meth:`adopt` too."""
        with self._folding:
            added = held is not None and self.projection.apply(held)
            begun = rebuild_begun()
            while self._since and (begun is None or self._since[0][0] <= begun):
                self._since.popleft()
            if begun is not None:
                self._since.append((tick(), fact))
        return added

    def absorb(self, event: Mapping) -> bool:
        """Fold one event in (written to the store first); False when it counts for nothing or was in."""
        fact = fact_of(event)
        if fact is None:
            return False
        self.ensure_loaded()  # first: loading after the write would fold the new fact in unannounced
        objects, bucket = store.connection()
        if fact["kind"] in TALLIED:
            with self._tallying:   # what is stored and folded in is its station-hour's tally, counting it
                tally = self.projection.tallied(fact)   # None: counted already
                if tally is not None:
                    tally = self._write_tally(objects, bucket, tally)
                added = self._fold(fact, tally)
                if tally is not None:
                    self._store_rolled()
            key = stored_key(tally) if added else None
        else:
            key = stored_key(fact)
            objects.put(bucket, key, _body(fact))
            added = self._fold(fact, fact)
        if added:
            self._loose.add(key)
            self._pack_when_due()
            self.announce(fact["source"])
        return added

    def folded_since(self, begun: int) -> set[str]:
        """Ids of what was folded in after ``begun`` (facts, and the tallies counting them): a rebuild
        begun then lacks them, and :meth:`adopt` folds them into it."""
        with self._folding:
            since = [fact for at, fact in self._since if at > begun]
        ids = {f["id"] for f in since}
        return ids | {t(f)["id"] for f in since if f["kind"] in TALLIED for t in (tally_of, day_tally_of)}

    def adopt(self, rebuilt: Projection) -> None:
        """Put a projection rebuilt from the stream live: its facts stored as packs, then the facts
        folded in since it was begun folded into it and it swapped in, then what it does not hold in
        its packs written loose, then the loose facts and packs of the one it replaces deleted. A
        fact of the old one absorbed before the rebuild began and not on the stream is gone. Cut off
        before its deletes, the store holds both: the next start shows what the stream and the old held."""
        objects, bucket = store.connection()
        with self._packing:
            self.ensure_loaded()
            old_packs = [info.key for info in objects.list(bucket, PACKS)]
            held = rebuilt.facts()
            packed = {f["id"]: f for f in held}
            rebuilt.take_rolled()   # its days are in its facts, written whole below
            for some in _batches(held, PACK_MOST):
                _put_pack(objects, bucket, some)
            with self._tallying:   # no tally written meanwhile: each is written below as the swapped-in one counts it
                with self._folding:
                    old = self.projection
                    for at, fact in self._since:
                        if at > rebuilt.begun:
                            rebuilt.apply(fact)
                    rebuilt.take_rolled()   # days it rolled since: among the changed, written below
                    rebuilt.serving = True
                    self.projection = rebuilt
                    changed = [f for f in rebuilt.facts() if packed.get(f["id"]) is not f]
                old_ids = old.fact_ids()
                loose = {info.key: info.etag for info in objects.list(bucket, PREFIX)}
                for f in changed:   # held in memory, not in the packs as it is: stored loose
                    if f["kind"] in TALLIED:
                        written = self._write_tally(objects, bucket, f)
                        if written is not f:
                            with self._folding:
                                rebuilt.apply(written)
                    elif stored_key(f) not in loose:   # packed by the old one meanwhile
                        objects.put(bucket, stored_key(f), _body(f))
                    self._loose.add(stored_key(f))
                gone = []
                for key, etag in loose.items():
                    fid = _fact_id(key)
                    cur = rebuilt.fact(fid)
                    # the facts its packs hold as they are, and the old one's it does not hold (a fact
                    # written and not folded in yet is in neither: it stays)
                    if (packed.get(fid) is cur) if cur is not None else fid in old_ids:
                        gone.append((key, etag))
                with ThreadPoolExecutor(4) as pool:
                    done = list(pool.map(lambda g: _delete_if_unchanged(objects, bucket, *g), gone))
                for (key, _), deleted in zip(gone, done):
                    if deleted:
                        self._loose.discard(key)
                        self._etags.pop(key, None)
            for key in old_packs:
                objects.delete(bucket, key)
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
