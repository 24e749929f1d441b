"""Stamp batches and scans.

An issue of N stamps writes one batch record (create-only: the batch id is unique), its codes and
one change to the lot. The batch's id derives from the request's idempotency identity, so the retry
of a request whose first run stopped after its batch (a crash, a store failure before or after the
lot's change) finds that batch, keeps whatever codes it has not kept yet, adds it to the lot if it
is not there yet, and issues nothing more.

A code is (batch, serial) signed with the province's key. The codes are signed once, when the batch
is issued, and kept as text beside the batch (:class:`.models.StampCodes`: parts of
:data:`PART_CODES` codes, each written create-only): a download of a batch of 100,000 re-signed every
code, about 2.4 s of CPU each time, and a key rotation would have re-signed an issued batch's codes
under the new key (codes no published key accepts). A batch issued before codes were kept, or whose
issue was cut off before its codes, has its missing parts signed by the first download that needs
them and kept then; the create-only write makes two concurrent downloads serve the same text.

A scan verifies the signature, finds the batch, counts the scan on the stamp's own scan record
(created on its first scan) under the caller's tag for that stamp (:func:`caller_tag`, the rules of
:mod:`.scans`) and tells the lot's story. Scans are public and anonymous, so each caller's are
limited (the app's scan limiter, ``MARKET_SCAN_RATE_LIMIT`` per ``MARKET_SCAN_RATE_WINDOW_S``).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Iterator

from lscloud import errors, outbox, resends
from lscloud.aggregate import NoChange
from lscloud.pseudonyms import pseudonym
from lscloud.statemachine import Actor, iso, now
from lscloud.store import ConditionalCheckFailed, DoesNotExist, StoreError
from lscloud.store.recent import RecentItems

from . import actors, lots, scans, stampcode
from .stampkeys import StampKeys

_BATCH_ID_TRIES = 5
_LOT_TTL_S = 15.0           # a scan shows an export link at most this late
_CACHE_MAX = 4096
PART_CODES = 10_000         # codes a stored part holds (1.2 MB): a sheet (at most 5,000) reads two at most
_LINE = stampcode.CODE_CHARS + 1


class _Cache:
    """A small per-process LRU with an optional time to live: a cache only (every replica may miss)."""

    def __init__(self, ttl_s: float | None):
        self.ttl_s, self._items, self._lock = ttl_s, OrderedDict(), threading.Lock()

    def get(self, key, load):
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and (self.ttl_s is None or hit[0] > time.monotonic()):
                self._items.move_to_end(key)
                return hit[1]
        value = load()
        with self._lock:
            self._items[key] = (time.monotonic() + (self.ttl_s or 0), value)
            while len(self._items) > _CACHE_MAX:
                self._items.popitem(last=False)
        return value


_batches = _Cache(None)       # a batch record never changes
_lots = _Cache(_LOT_TTL_S)


class TooManyStamps(errors.Invalid):
    type = "too-many-stamps"


def _batch_ids(identity: str | None):
    """The ids a batch may take: derived from the request's idempotency ``identity`` (the same
    ones, in the same order, for its retry), random without one."""
    for attempt in range(_BATCH_ID_TRIES):
        raw = hashlib.sha256(f"{identity}\x00{attempt}".encode()).digest() if identity else \
            secrets.token_bytes(stampcode.BATCH_BYTES)
        yield stampcode.batch_id(raw[:stampcode.BATCH_BYTES])


class StampKeyRetired(errors.Conflict):
    type = "stamp-key-retired"
    title, title_vi = "Stamp key retired", "Khóa ký tem đã thay"


def _batch(lot_id: str, count: int, keys: StampKeys, identity: str | None):
    """The request's batch and whether this call created it: created, or — a retry of the request
    whose first run stored it — found."""
    from .models import StampBatch

    issued_at = iso(now())
    for batch_id in _batch_ids(identity):
        batch = StampBatch(batch_id, lot_id=lot_id, stamps=count, key_index=keys.index, issued_at=issued_at,
                           request=identity)
        try:
            batch.save()        # create-only: two batches never share an id, so no code is issued twice
            return batch, True
        except ConditionalCheckFailed:
            if identity is None:
                continue
        try:
            there = StampBatch.get(batch_id)
        except DoesNotExist:
            continue
        if there.request != identity or there.lot_id != lot_id:
            continue            # another request's batch took this id: the next one
        if int(there.stamps) != count:
            raise resends.IdReused(resends.changed_fields({"count": int(there.stamps)}, {"count": count}))
        return there, False
    raise ConditionalCheckFailed("no free batch id")


def issue(lot_id: str, count: int, actor: Actor, keys: StampKeys, max_batch: int, identity: str | None = None,
          inline: int = 0):
    """A batch of ``count`` stamps for the caller's lot, its codes signed and kept:
    ``(batch record, lot outcome, codes)`` — ``codes`` the list when ``count <= inline``, else None.

    ``identity``: the request's idempotency identity (:func:`lscloud.idempotency.record_key`); the
    retry of a request cut off part-way gets the batch its first run stored, its codes as that run
    kept them, added to the lot once (another count under it is the 409 naming ``/count``)."""
    if count > max_batch:
        raise TooManyStamps.at("/count", f"at most {max_batch} stamps per batch", f"Tối đa {max_batch} tem mỗi lần cấp.")
    lots.records().visible(lot_id, lambda doc: lots.owned_by(doc, actor))
    batch, created = _batch(lot_id, count, keys, identity)
    # kept before the lot names the batch; a fresh batch has no part yet (its id was free): none is read first
    codes = [] if count <= inline else None
    for first in range(0, count, PART_CODES):
        text = _part(batch, keys, first, stored=not created)
        if codes is not None:
            codes += _lines(text)

    def op(doc):
        if any(b["batch"] == batch.batch for b in doc["batches"]):
            raise NoChange      # the lot has it: a retry whose first run got that far
        doc["batches"].append({"batch": batch.batch, "count": int(batch.stamps), "issued_at": batch.issued_at})
        doc["stamps_issued"] = doc.get("stamps_issued", 0) + int(batch.stamps)
        return [lots.MACHINE.note(doc, "issue_stamps", "stamps.issued", actors.recorded(actor),
                                  details={"batch": batch.batch, "count": int(batch.stamps)})]

    return batch, lots.records().mutate(lot_id, op), codes


def batch_of(lot_id: str, batch_id: str, actor: Actor):
    """The caller's batch of the caller's lot (the same 404 for anything else)."""
    from .models import StampBatch

    lots.records().visible(lot_id, lambda doc: lots.owned_by(doc, actor))
    try:
        batch = StampBatch.get(batch_id)
    except DoesNotExist:
        batch = None
    if batch is None or batch.lot_id != lot_id:
        raise errors.NotFound("No such batch of this lot.", detail_vi="Không tìm thấy đợt cấp tem của lô hàng.")
    return batch


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1]


def _sign(batch, keys: StampKeys, first: int, count: int) -> str:
    """Codes ``first`` … of ``batch`` as a part's text (each code and a newline), signed now."""
    if int(batch.key_index) != keys.index:
        # another key's index on this key's signature is a code no published key accepts
        raise StampKeyRetired(
            f"The batch was issued under stamp key {int(batch.key_index)}; the service now signs with key "
            f"{keys.index} and cannot sign the codes this batch has not kept yet.",
            detail_vi=f"Đợt tem được cấp với khóa số {int(batch.key_index)}; dịch vụ nay ký bằng khóa số "
                      f"{keys.index} nên không ký được các mã đợt tem này chưa lưu.")
    return "".join(code + "\n" for code in stampcode.encode_range(keys.private, keys.index, batch.batch, first, count))


def _checked(text: str, batch, first: int, count: int) -> str:
    if len(text) != count * _LINE:      # a part cut short is never served as a shorter sheet of labels
        raise StoreError(f"the kept codes of batch {batch.batch} from {first} are damaged", cause="corrupt")
    return text


def _part(batch, keys: StampKeys, first: int, *, stored: bool = True) -> str:
    """The text of the batch's part from serial ``first``: as kept; or, not kept yet (``stored``
    False: known not to be), signed now and kept create-only — another writer's part, kept first,
    is the one served."""
    from .models import StampCodes

    count, key = min(PART_CODES, int(batch.stamps) - first), f"{first:010d}"
    if stored:
        try:
            return _checked(StampCodes.get(batch.batch, key).codes, batch, first, count)
        except DoesNotExist:
            pass
    text = _sign(batch, keys, first, count)
    try:
        StampCodes(batch.batch, key, codes=text).save()
    except ConditionalCheckFailed:
        return _checked(StampCodes.get(batch.batch, key).codes, batch, first, count)
    return text


def codes(batch, keys: StampKeys, first: int = 0, count: int | None = None) -> list[str]:
    """The batch's codes ``first`` … (all of them by default), from the parts that hold them."""
    total = int(batch.stamps)
    count = total - first if count is None else min(count, total - first)
    out: list[str] = []
    for start in range(first - first % PART_CODES, first + count, PART_CODES):
        text = _part(batch, keys, start)
        out += _lines(text[(max(first, start) - start) * _LINE:(min(first + count, start + PART_CODES) - start) * _LINE])
    return out


def code_file(batch, keys: StampKeys) -> tuple[int, Iterator[bytes]]:
    """The batch's codes file (one code a line): its length and its bytes, part after part. The
    first part is read (or signed) before this returns, so a batch that cannot be served is an
    answer of its own, never a body cut short."""
    total = int(batch.stamps)
    head = _part(batch, keys, 0)

    def parts():
        yield head.encode("ascii")
        for first in range(PART_CODES, total, PART_CODES):
            yield _part(batch, keys, first).encode("ascii")

    return total * _LINE, parts()


def _not_authentic(reason: str) -> dict:
    messages = {"malformed": ("This is not a stamp code of Lạng Sơn.", "Đây không phải mã tem truy xuất của tỉnh Lạng Sơn."),
                "unknown-format": ("This is not a stamp code of Lạng Sơn.", "Đây không phải mã tem truy xuất của tỉnh Lạng Sơn."),
                "unknown-key": ("The code was not signed by the province.", "Mã không do tỉnh ký."),
                "bad-signature": ("The code was altered or forged.", "Mã đã bị sửa đổi hoặc làm giả."),
                "not-issued": ("No stamp with this code was ever issued.", "Chưa từng cấp tem nào có mã này.")}
    en, vi = messages[reason]
    return {"authentic": False, "reason": reason, "message": en, "message_vi": vi}


CALLER_TAG_CHARS = 5
"""A caller's tag on a stamp's record: 25 bits of a keyed hash of the stamp and the caller. Enough
that the 51 callers :mod:`.scans` tells apart at most almost never share one (a shared one only
counts two as one: never a flag), and few enough that each tag stands for hundreds of addresses."""


def caller_tag(batch: str, serial: int, caller: str) -> str:
    """The caller (:func:`lscloud.ratelimit.caller_subject`) as the stamp's scan record names it:
    keyed per stamp, so tags on two stamps' records never tell they were one shopper's."""
    return pseudonym("market-stamp-scan-callers", f"{batch}.{serial}\x00{caller}")[:CALLER_TAG_CHARS]


@functools.cache
def _recent_scans() -> RecentItems:
    from .models import StampScans

    # a stamp's next scan here (the buyer's family, a second look) is one conditional PUT, not three
    return RecentItems(StampScans, max_items=_CACHE_MAX)


def _tally(batch: str, serial: int, place, at: datetime, rules: dict, by: str) -> tuple[dict, bool]:
    from .models import StampScans

    key, out = f"{serial:010d}", {}

    def count(item):
        fresh = item.data
        out["flagged"] = scans.observe(fresh, place, at, by=by, **rules)
        item.data = fresh

    # created on the stamp's first scan (create-only); else the copy this replica last wrote, If-Match
    item = _recent_scans().update(batch, key, count, create=lambda: StampScans(batch, key, data=scans.new_tally()))
    return item.data, out["flagged"]


def scan(code: str, place, keys: StampKeys, rules: dict, caller: str) -> dict:
    """The answer to a scan by ``caller`` (:func:`lscloud.ratelimit.caller_subject`): ``authentic``
    and, if so, the lot's origin and journey, the scan count and any copy flag with its evidence."""
    from .models import Lot, StampBatch

    try:
        stamp = stampcode.verify(code, keys.public)
    except stampcode.NotAStamp as exc:
        return _not_authentic(exc.reason)
    try:
        batch = _batches.get(stamp.batch, lambda: StampBatch.get(stamp.batch))
    except DoesNotExist:
        return _not_authentic("not-issued")
    if stamp.serial >= int(batch.stamps) or stamp.key_index != int(batch.key_index):
        return _not_authentic("not-issued")
    lot = _lots.get(batch.lot_id, lambda: Lot.get(batch.lot_id).data)
    tally, flagged = _tally(stamp.batch, stamp.serial, place, now(), rules,
                            caller_tag(stamp.batch, stamp.serial, caller))
    if flagged:
        outbox.publish([lots.records().fact("stamp.flagged", {
            "lot_id": lot["id"], "batch": stamp.batch, "serial": stamp.serial, "reasons": tally["reasons"],
            "scans": tally["count"]}, subject=lot["id"], id=f"{stamp.batch}.{stamp.serial}.flagged")])
    return {"authentic": True, "stamp": {"batch": stamp.batch, "serial": stamp.serial, "issued_at": batch.issued_at},
            **lots.public_view(lot),
            "scans": {"count": tally["count"], "first_at": tally["first_at"]},
            "possible_copy": tally["possible_copy"], "copy_reasons": tally["reasons"],
            "copy_evidence": scans.explained(tally["evidence"])}
