"""Run-once records: the in-progress / completed lease behind idempotent requests and event dedupe.

The model is AWS Powertools' idempotency record: before doing the work, write a record
*create-only* saying "in progress until T"; whoever wins that write does the work and then
replaces the record (``If-Match`` its ETag) with the outcome, or deletes it on failure so a
retry can run. A record past its ``expires_at`` (a crashed run, or an outcome past its TTL) is
taken over with ``If-Match``, so two takers never both win. Each record is a JSON object with
at least ``status`` and ``expires_at`` (epoch seconds); what else it holds is the caller's.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

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

    def complete(self, record: dict[str, Any]) -> bool:
        """Replace our in-progress record with the outcome; False if another run took it over."""
        try:
            self.etag = self.objects.put(self.bucket, self.key, _dump(record), if_match=self.etag)
            return True
        except StoreError as exc:
            # we overran our expiry and were taken over, or the store hiccuped: the work stands,
            # only the record of it is lost (redeliveries then wait out the lease)
            log.warning("run-once record %s not completed: %s", self.key, exc.cause)
            return False

    def release(self) -> None:
        """Delete our record so that a retry runs the work again."""
        try:
            self.objects.delete(self.bucket, self.key, if_match=self.etag)
        except StoreError as exc:
            log.warning("run-once record %s not released: %s", self.key, exc.cause)


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
            return Lease(objects, bucket, key, objects.put(bucket, key, body, if_none_match=True))
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
            return Lease(objects, bucket, key, objects.put(bucket, key, body, if_match=existing.etag))
        except (ConditionalCheckFailed, DoesNotExist):
            continue
    raise LeaseContended(f"run-once record {key} is contended", key=key)


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()
