"""Reading the catalogue's snapshot: every procedure, the folded search index and the fields in one object.

The one seam between the list routes and the store. :class:`SnapshotCache` keeps the parsed
snapshot and asks the store on every request whether it changed (a HEAD, by ETag), so a re-seed
is served at once by every replica; serving from memory at a bounded interval (issue 11) changes
this module only.
"""

from __future__ import annotations

import threading

from lscloud import reference, store
from lscloud.store import DoesNotExist, keys as store_keys

from .models import SNAPSHOT, CatalogueSnapshot


class NotSeeded(reference.NotSeeded):
    title, title_vi = "Catalogue not loaded", "Chưa nạp danh mục thủ tục"

    def __init__(self):
        super().__init__("The procedure catalogue has not been seeded into the store yet; run `lscloud seed`.",
                         detail_vi="Danh mục thủ tục hành chính chưa được nạp.")


class SnapshotCache:
    """The parsed snapshot, revalidated on every request by a HEAD of its object (ETag).

    A cache only: each request still asks the store whether the snapshot changed, so a re-seed
    is served at once by every replica; what is saved is moving and parsing ~100 KiB of JSON
    per search (the bulk of a search's time, see ``lscloud bench procedures``).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._etag: str | None = None
        self._value: CatalogueSnapshot | None = None

    def get(self) -> CatalogueSnapshot:
        """The current snapshot (503 ``not-seeded`` before the seed)."""
        objects, bucket = store.connection()
        try:
            etag = objects.head(bucket, store_keys.object_key(CatalogueSnapshot.Meta.table, SNAPSHOT)).etag
            with self._lock:
                if self._value is not None and etag == self._etag:
                    return self._value
            snap = CatalogueSnapshot.get(SNAPSHOT)
        except DoesNotExist:
            raise NotSeeded() from None
        with self._lock:
            self._etag, self._value = snap.etag, snap
        return snap
