"""Run-once records: the in-progress / completed lease behind idempotent requests and event dedupe.

The model is AWS Powertools' idempotency record: before doing the work, write a record
*create-only* saying "in progress until T"; whoever wins that write does the work and then
replaces the record (``If-Match`` its ETag) with the outcome, or deletes it on failure so a
retry can run. A record past its ``expires_at`` (a crashed run, or an outcome past its TTL) is
taken over with ``If-Match``, so two takers never both win. Each record is a JSON object with
at least ``status`` and ``expires_at`` (epoch seconds); what else it holds is the caller's.

A run that may last longer than its lease keeps it with :meth:`Lease.renewed`: a heartbeat that
moves ``expires_at`` on while the run goes on, and stops with it. A short lease then frees a dead
run's record soon (its heartbeat died with it) without a slow run's record being taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from .errors import ConditionalCheckFailed, DoesNotExist, StoreError
from .objects import ObjectStore

log = logging.getLogger(__name__)

IN_PROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"


class LeaseContended(StoreError):
    """Other runs kept winning the record; the caller should answer "retry later"."""

    cause = "lease_contended"


@dataclass
class Lease:
    """A record this run owns (it holds the ETag of its own write)."""

    objects: ObjectStore
    bucket: str
    key: str
    etag: str
    record: dict[str, Any] = field(default_factory=dict)   # our in-progress record, as last written
    # a heartbeat's write and the run's own (complete, release) never interleave: each needs the other's ETag
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def complete(self, record: dict[str, Any]) -> bool:
        """Replace our in-progress record with the outcome; False if another run took it over."""
        with self._lock:
            try:
                self.etag = self.objects.put(self.bucket, self.key, _dump(record), if_match=self.etag)
                self.record = record
                return True
            except StoreError as exc:
                # we overran our expiry and were taken over, or the store hiccuped: the work stands,
                # only the record of it is lost (redeliveries then wait out the lease)
                log.warning("run-once record %s not completed: %s", self.key, exc.cause)
                return False

    def release(self) -> None:
        """Delete our record so that a retry runs the work again."""
        with self._lock:
            try:
                self.objects.delete(self.bucket, self.key, if_match=self.etag)
            except StoreError as exc:
                log.warning("run-once record %s not released: %s", self.key, exc.cause)

    def renew(self, lease_s: float) -> bool:
        """Move our in-progress record's end to ``lease_s`` from now; False once another run took it
        over (we outlived our end: a heartbeat that stalled longer than the lease). A store that
        does not answer raises its :class:`StoreError`: the lease may still hold, try again later."""
        with self._lock:
            now = time.time()
            renewed = {**self.record, "expires_at": now + lease_s, "renewed_at": now}
            try:
                self.etag = self.objects.put(self.bucket, self.key, _dump(renewed), if_match=self.etag)
            except (ConditionalCheckFailed, DoesNotExist):
                return False
            self.record = renewed
            return True

    @contextlib.contextmanager
    def renewed(self, lease_s: float, every_s: float, *, at_most_s: float | None = None) -> Iterator["Lease"]:
        """Keep the lease while the ``with`` block runs: every ``every_s`` its end is moved to
        ``lease_s`` ahead (:meth:`renew`). The heartbeat stops when the block ends (before the
        caller completes or releases the record) and with the process: a run that died holds its
        record ``lease_s`` at most. ``at_most_s``: a run still going after that long is presumed
        hung, and its lease is left to end so that the work can be taken over."""
        if every_s >= lease_s:
            raise ValueError("a lease must be renewed more often than it lasts")
        done = threading.Event()
        started = time.monotonic()

        def beat() -> None:
            while not done.wait(every_s):
                if at_most_s is not None and time.monotonic() - started >= at_most_s:
                    log.warning("run-once record %s: the run has held it %.0f s; no longer renewed", self.key,
                                at_most_s)
                    return
                try:
                    if not self.renew(lease_s):
                        log.warning("run-once record %s was taken over while its run went on", self.key)
                        return
                except StoreError as exc:   # the next beat tries again: two may fail within one lease
                    log.warning("run-once record %s not renewed: %s", self.key, exc.cause)

        heart = threading.Thread(target=beat, name=f"lease {self.key[-24:]}", daemon=True)
        heart.start()
        try:
            yield self
        finally:
            done.set()
            heart.join()


def acquire(objects: ObjectStore, bucket: str, key: str, record: dict[str, Any], *,
            attempts: int = 4) -> Lease | dict[str, Any]:
    """Take the record at ``key`` for this run, or return the live record someone else holds.

    ``record`` is our in-progress record (``status`` and ``expires_at`` included). Returns a
    :class:`Lease` when we own the key, or the other run's record (a dict, not expired) for the
    caller to judge: completed (replay its outcome) or in progress (retry later). Raises
    :class:`LeaseContended` after ``attempts`` lost rounds.
    """
    body = _dump(record)
    for _ in range(attempts):
        try:
            return Lease(objects, bucket, key, objects.put(bucket, key, body, if_none_match=True), dict(record))
        except ConditionalCheckFailed:
            pass
        try:
            existing = objects.get(bucket, key)
        except DoesNotExist:
            continue  # released between our write and our read
        try:
            current = json.loads(existing.body)
            expires_at = float(current["expires_at"])
        except (ValueError, KeyError, TypeError):
            current, expires_at = None, 0.0  # unreadable: nobody can be relying on it
        if current is not None and expires_at >= time.time():
            return current
        try:
            return Lease(objects, bucket, key, objects.put(bucket, key, body, if_match=existing.etag), dict(record))
        except (ConditionalCheckFailed, DoesNotExist):
            continue
    raise LeaseContended(f"run-once record {key} is contended", key=key)


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


READ_TOGETHER = 32
"""How many lease records :func:`completed` sends for at once (the store's connection pool)."""


def completed(objects: ObjectStore, bucket: str, keys: Iterable[str]) -> dict[str, dict]:
    """The lease records at ``keys`` whose run finished (:data:`COMPLETED`): ``key -> record`` (an
    event's events-seen record, :func:`lscloud.runonce.events_seen_key`, says its handler finished).
    Not in it: a key with no record (never run to its end, a failed run's released, one swept past
    its end), one still in progress, and one the store did not answer for: so a reader takes nothing
    for done that nothing says is. One GET each, :data:`READ_TOGETHER` sent at once
    (:meth:`~lscloud.store.ObjectStore.ahead`)."""
    wanted = list(dict.fromkeys(keys))
    done: dict[str, dict] = {}
    for start in range(0, len(wanted), READ_TOGETHER):
        batch = wanted[start:start + READ_TOGETHER]
        with objects.ahead(*((bucket, key) for key in batch)):
            for key in batch:
                try:
                    record = json.loads(objects.get(bucket, key).body)
                except (StoreError, ValueError):   # none (DoesNotExist), or none that can be read
                    continue
                if isinstance(record, dict) and record.get("status") == COMPLETED:
                    done[key] = record
    return done
