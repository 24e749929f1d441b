"""The earlier versions of objects in a versioned bucket, and forgetting them.

In the cluster the function buckets are versioned (``objectStore.noncurrentVersionDays``, 30 in
prod): an overwritten or deleted object stays readable as a noncurrent version until the bucket's
lifecycle removes it, so a mistake can be undone. An erasure request must not leave the erased data
there for a month (Law 91/2025/QH15, Art. 14(1): deleted so that it cannot be recovered), so
:func:`lscloud.erasure.run` asks :func:`forget` to delete the earlier versions of exactly the
objects its hooks changed, and only those: every other object keeps its history.

What is deleted for a key: every version that is not the current one, and its delete markers; when
the current version is itself a delete marker (the hook deleted the object), everything, so the key
is gone. A version under object lock (a record's retention) is refused by the store: counted as
kept, never forced (no governance bypass). In a bucket that is not versioned (the local cloud's
``weed mini``) a key has one version, the current one: nothing to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from .errors import DoesNotExist, StoreError
from .objects import Version

log = logging.getLogger("lscloud.store")

@dataclass
class Forgotten:
    """What :func:`forget` did: versions deleted, versions the store kept (object lock), keys whose
    versions could not be listed or deleted for another reason (left for a later request)."""

    deleted: int = 0
    locked: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"deleted": self.deleted, "locked": self.locked, "failed": self.failed}


def _doomed(found: list[Version]) -> list[Version]:
    """The versions :func:`forget` deletes of one key (see the module docstring)."""
    current = next((v for v in found if v.latest), None)
    if current is None or current.delete_marker:
        return list(found)
    return [v for v in found if not v.latest]


def forget(objects, written: Iterable[tuple[str, str]]) -> Forgotten:
    """Delete the earlier versions of each ``(bucket, key)`` in ``written`` (see the module
    docstring); never raises for one key's failure (it is counted, logged without the key)."""
    done = Forgotten()
    for bucket, key in sorted(set(written)):
        try:
            doomed = _doomed(objects.versions(bucket, key))
        except StoreError as exc:
            done.failed += 1
            log.warning("the versions of an object were not listed: %s", exc.__class__.__name__)
            continue
        for v in doomed:
            try:
                objects.delete_version(bucket, key, v.version_id)
                done.deleted += 1
            except DoesNotExist:
                continue   # gone already (another request, the lifecycle)
            except StoreError as exc:
                # object lock refuses a retained version (403 AccessDenied); anything else: next request
                if getattr(exc, "cause", None) in ("accessdenied", "invalidrequest"):
                    done.locked += 1
                else:
                    done.failed += 1
                    log.warning("an earlier version of an object was not deleted: %s", exc.__class__.__name__)
    return done
