"""Reading the seeded reference data: a kind's whole list from its snapshot, one item from its document.

The one seam between the routes and the store. The models are reference models
(``Meta.reference``): a list or an item is served from this replica's memory for at most
``LSCLOUD_PEER_FRESH_S`` seconds, then revalidated by ETag (a conditional GET, :mod:`lscloud.freshness`),
so a re-seed is served by every replica within that bound and a request within it costs no S3 call.
"""

from __future__ import annotations

from lscloud import reference
from lscloud.store import DoesNotExist

from .kinds import KINDS
from .models import DirectorySnapshot


class NotSeeded(reference.NotSeeded):
    title, title_vi = "Directory data not loaded", "Chưa nạp dữ liệu danh mục"


def items(kind: str) -> list[dict]:
    """Every item of ``kind``, in the order the list serves them (503 ``not-seeded`` before the seed)."""
    try:
        return DirectorySnapshot.get(kind).items
    except DoesNotExist:
        k = KINDS[kind].code
        raise NotSeeded(f"The {k.noun} list has not been seeded into the store yet; run `lscloud seed`.",
                        detail_vi=f"Danh sách {k.noun_vi} chưa được nạp vào kho dữ liệu.") from None


def item(kind: str, code: str) -> dict:
    """The item of ``kind`` with ``code`` (400 if the code is malformed, 404 if there is none)."""
    k = KINDS[kind]
    return k.code.get(k.model, code).data
