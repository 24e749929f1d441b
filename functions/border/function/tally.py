"""How many trucks wait in each part of a yard queue, kept on writes, so a truck's position costs
the same with 100 or 100,000 trucks waiting.

The queue's order is ``<lane>_<slot>_<arrival>_<code>`` (:mod:`.queue`); a *part* is one
``<lane>_<slot>``, and no part holds more trucks than its slot has seats. A truck's position is
then the trucks in the parts before its own — read from the queue's tally, one object — plus
those ahead of it in its own part — one listing of a part no bigger than a slot.

The tally is written only by counting: whoever adds or removes a queue entry reads the tally, then
lists the part it changed, and writes that part's count under ``If-Match`` (a lost race reads and
lists again). So the last successful writer listed after every earlier successful write, and the
tally never drifts from the entries by concurrent writers; a writer that dies between its entry and
its count leaves that part's count behind until the next write to the part, or until the platform
clock's tick counts every queue again (:func:`mend_all`, every :data:`MEND_EVERY_MIN` minutes).
A queue's first tally is counted from a full listing, so the entries written before tallies
existed count too; a queue without a tally yet is answered by listing, as before.
"""

from __future__ import annotations

import logging
from datetime import datetime

from lscloud import store
from lscloud.store import ConditionalCheckFailed, DoesNotExist, keys
from lscloud.store.retry import DEFAULT

from .models import QueueEntry, QueueTally

log = logging.getLogger("border.tally")

PART_LEN = len("1_2025010107")


def part_of(key: str) -> str:
    """The ``<lane>_<slot>`` part of a queue key."""
    return key[:PART_LEN]


def _prefix(queue_name: str) -> str:
    return keys.hash_prefix(QueueEntry.Meta.table, queue_name)


def listed(queue_name: str, part: str, *, stop_at: str | None = None) -> int:
    """Entries of ``part`` (before ``stop_at``): a listing of one part, no GETs."""
    objects, bucket = store.connection()
    base = _prefix(queue_name)
    stop = None if stop_at is None else base + keys.encode_part(stop_at) + keys.SUFFIX
    n = 0
    for o in objects.list(bucket, base + keys.encode_part(part + "_")):
        if stop is not None and o.key >= stop:
            break
        n += 1
    return n


def recount(queue_name: str, part: str) -> None:
    """Write the count of ``part`` as listed now (after adding or removing one of its entries)."""
    for attempt in range(DEFAULT.retries + 1):
        try:
            item = QueueTally.get(queue_name)
        except DoesNotExist:
            recount_all(queue_name)   # the first tally counts every part, older entries too
            return
        counts = dict(item.counts or {})
        n = listed(queue_name, part)
        if counts.get(part, 0) == n:
            return
        if n:
            counts[part] = n
        else:
            counts.pop(part, None)
        item.counts = counts
        try:
            item.save()
            return
        except ConditionalCheckFailed:
            if attempt < DEFAULT.retries:
                DEFAULT.pause(attempt)
    log.warning("tally of %s/%s kept changing; the next write to it counts again", queue_name, part)


def recount_quietly(queue_name: str, part: str) -> None:
    """:func:`recount` after a committed queue change: a failure leaves the count to the next writer."""
    try:
        recount(queue_name, part)
    except Exception:  # noqa: BLE001 - the entry is the truth; the count catches up on the next write
        log.warning("tally of %s/%s not written", queue_name, part, exc_info=True)


def recount_all(queue_name: str) -> dict[str, int]:
    """Count every part of the queue from a full listing and write the tally (the first tally, or a
    repair: O(waiting)). As with :func:`recount`, the listing follows the read of the tally."""
    objects, bucket = store.connection()
    base = _prefix(queue_name)
    counts: dict[str, int] = {}
    for attempt in range(DEFAULT.retries + 1):
        try:
            item = QueueTally.get(queue_name)
        except DoesNotExist:
            item = QueueTally(queue_name)
        counts = {}
        for o in objects.list(bucket, base):
            part = part_of(keys.decode_part(o.key[len(base):-len(keys.SUFFIX)]))
            counts[part] = counts.get(part, 0) + 1
        if item.etag is not None and dict(item.counts or {}) == counts:
            break   # right already: no write
        item.counts = counts
        try:
            item.save()
            break
        except ConditionalCheckFailed:
            if attempt < DEFAULT.retries:
                DEFAULT.pause(attempt)
    return counts


MEND_EVERY_MIN = 10


def mend_due(tick_at: datetime) -> bool:
    """Whether the tick of the minute ``tick_at`` is one that counts every queue again."""
    return tick_at.minute % MEND_EVERY_MIN == 0


def mend_all() -> dict[str, int]:
    """Count every queue that has a tally again (:func:`recount_all`): a tally a crashed writer left
    behind is right again. ``{queue: trucks waiting}``; a queue that fails is left to the next time."""
    objects, bucket = store.connection()
    prefix = keys.table_prefix(QueueTally.Meta.table)
    waiting = {}
    for o in objects.list(bucket, prefix):
        try:
            name = keys.decode_part(o.key[len(prefix):].split("/", 1)[0])
            waiting[name] = sum(recount_all(name).values())
        except Exception:  # noqa: BLE001 - one queue's failure does not keep the others from mending
            log.warning("tally of %s not mended", o.key, exc_info=True)
    return waiting


def counts(queue_name: str) -> dict[str, int] | None:
    """The queue's tally (``{"<lane>_<slot>": n}``), or None for a queue that has none yet."""
    try:
        return dict(QueueTally.get(queue_name).counts or {})
    except DoesNotExist:
        return None


def ahead(tally: dict[str, int], key: str, same_slot_earlier: int) -> dict[str, int]:
    """How many trucks wait before ``key``, by rule: ``priority`` (the priority lane before a normal
    truck), ``earlier_slot`` (same lane, earlier slot) and ``same_slot_earlier``, from the queue's
    tally (:func:`counts`) and the entries of ``key``'s own part before it (:func:`listed` with
    ``stop_at=key``), which a caller reads at once."""
    mine = part_of(key)
    lane, slot = mine.split("_")
    priority = earlier_slot = 0
    for part, n in tally.items():
        if part >= mine:
            continue
        if part.split("_")[0] < lane:
            priority += n
        else:
            earlier_slot += n
    return {"priority": priority, "earlier_slot": earlier_slot, "same_slot_earlier": same_slot_earlier}
