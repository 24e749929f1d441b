"""The declaration's other access paths, each a small create-only object beside the declaration:
owner ("my declarations"), plate (device reads), day (figures), the agencies' work lists (one
object per declaration naming the agencies still to decide), and the keys of slot seats, the yard
queue and calls.

They are written after the declaration's committed write and dropped when the crossing ends,
but for the one the crossing's end writes: its health entry (:func:`health_due`), dropped once its
health data is minimised. Every reader checks the declaration itself, so an index is a way in,
never the truth.

The lapse sweep's entries (:class:`StaleDue`, :mod:`.lapse`) are written by the clock, but for a
draft's, written with it: a submitted declaration is found through its day entry, so a submit
writes nothing more for it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from lscloud import store
from lscloud.aggregate import delete_quietly, micros
from lscloud.statemachine import parse_iso
from lscloud.store import ConditionalCheckFailed, InvalidKey, Model, keys
from lscloud.store.retry import DEFAULT

from . import declarations, queue, tally
from .identifiers import plate_key
from .models import CallEntry, DayIndex, HealthDue, OwnerRecent, PlateIndex, QueueEntry, SlotSeat, StaleDue, WorkItem

log = logging.getLogger("border.indexes")

DRAFT_FIRST_LOOK_S = 86_400
"""When the lapse sweep first looks at a new draft (a day on): then under the time it would lapse,
by the settings it reads (:mod:`.lapse`), which this module does not."""


def safe(part: str) -> str:
    """A key part of letters, digits and ``_`` (gate codes and plates hold dashes and dots)."""
    return "".join(c if c.isalnum() and c.isascii() else "_" for c in part)


def queue_name(gate: str, flow: str) -> str:
    return f"{gate}_{flow}"


def seat_slot(gate: str, flow: str, slot: str) -> str:
    return f"{gate}_{flow}_{slot}"


def work_entry(doc: dict) -> str:
    return f"{micros(parse_iso(doc['timestamps']['submitted'])):016d}_{safe(doc['id'])}"


def plate_keys(doc: dict) -> list[str]:
    v = doc["vehicle"]
    return [plate_key(p) for p in (v["tractor_plate"], v.get("trailer_plate")) if p]


def owner_keys(doc: dict) -> list[str]:
    return [f"ent:{doc['owner']}", f"drv:{doc['driver']['id_number']}"]


def range_keys(model: type[Model], hash_value: str, *, prefix: str = "", stop_at: str | None = None) -> list[str]:
    """The range keys under one hash key of ``model``, in key order, starting with ``prefix`` and up
    to (not including) ``stop_at``: a prefix listing, no GETs."""
    objects, bucket = store.connection()
    base = keys.hash_prefix(model.Meta.table, hash_value)
    stop = None if stop_at is None else base + keys.encode_part(stop_at) + keys.SUFFIX
    out = []
    for o in objects.list(bucket, base + (keys.encode_part(prefix) if prefix else "")):
        if stop is not None and o.key >= stop:
            break
        out.append(keys.decode_part(o.key[len(base):-len(keys.SUFFIX)]))
    return out


def hash_keys(model: type[Model]) -> set[str]:
    """Every hash key of ``model`` that has an item (a listing of the table, no GETs)."""
    objects, bucket = store.connection()
    prefix = keys.table_prefix(model.Meta.table)
    found = set()
    for o in objects.list(bucket, prefix):
        try:
            found.add(keys.decode_part(o.key[len(prefix):].split("/", 1)[0]))
        except InvalidKey:
            continue   # not one of our keys
    return found


# -- writing -------------------------------------------------------------------------------------------

def created(doc: dict) -> list[Model]:
    """The indexes of a new declaration, from its document alone (a resend writes what is missing
    again): its owners (enterprise and driver) and its plates; a submitted one's too."""
    entry = f"{keys.newest_first(micros(parse_iso(doc['created_at'])))}_{safe(doc['id'])}"
    side: list[Model] = [OwnerRecent(k, entry, declaration_id=doc["id"]) for k in owner_keys(doc)]
    side += [PlateIndex(p, doc["id"]) for p in plate_keys(doc)]
    if "submitted" in doc.get("timestamps", {}):
        return side + submitted(doc)
    at = parse_iso(doc["created_at"]) + timedelta(seconds=DRAFT_FIRST_LOOK_S)
    return side + [stale_due(doc["id"], at)]


def submitted(doc: dict) -> list[Model]:
    """The indexes of a submitted declaration: its day (figures) and each required agency's work list."""
    day = parse_iso(doc["timestamps"]["submitted"]).astimezone(queue.TZ).date().isoformat()
    out: list[Model] = [DayIndex(day, f"{safe(doc['gate'])}_{safe(doc['id'])}", declaration_id=doc["id"])]
    summ = {"code": doc["code"], "direction": doc["direction"], "plate": doc["vehicle"]["tractor_plate"],
            "submitted_at": doc["timestamps"]["submitted"], "risk_lane": doc.get("risk_lane")}
    agencies = [r["agency"] for r in doc["required_agencies"]]
    if agencies:
        out.append(WorkItem(doc["gate"], work_entry(doc), declaration_id=doc["id"], summary=summ, agencies=agencies))
    return out


def work_done(doc: dict, agency: str) -> None:
    """``agency`` decided: off its work list. The declaration's work item loses ``agency`` under
    ``If-Match`` (a lost race reads again); the last agency deletes it, also under ``If-Match``.
    An agency already off the list, or a work item already gone, is the repeat of this."""
    for attempt in range(DEFAULT.retries + 1):
        try:
            item = WorkItem.get(doc["gate"], work_entry(doc))
        except WorkItem.DoesNotExist:
            return
        if agency not in item.agencies:
            return
        item.agencies = [a for a in item.agencies if a != agency]
        try:
            item.save() if item.agencies else item.delete()
            return
        except (ConditionalCheckFailed, WorkItem.DoesNotExist):
            if attempt < DEFAULT.retries:
                DEFAULT.pause(attempt)
    log.warning("work item of %s kept changing; %s stays on the list until the crossing ends", doc["id"], agency)


def queue_entry(doc: dict) -> list[QueueEntry]:
    """The yard-queue entry of the key an in-yard declaration holds (none otherwise): a side object
    of every committed write of the declaration (``ledger.RECORDS``), created create-only with its
    audit entries. So an arrival cut off after its write gets its entry from the retry it refuses
    (lscloud.aggregate's ``_finish_moved``), and from any later write of the declaration."""
    slot = held_slot(doc)
    return [] if slot is None else [QueueEntry(*slot, declaration_id=doc["id"])]


def health_due(doc: dict) -> list[HealthDue]:
    """The entry that brings a finished declaration back when its health answers and the driver's
    phone are due to go (:mod:`.minimise`); none for a live or an already minimised one. A side
    object of every committed write (``ledger.RECORDS``): the final move writes it beside its audit
    entries, and a retry of a move cut off after its write writes it again."""
    ended = declarations.ended_at(doc)
    if ended is None or declarations.minimised(doc):
        return []
    return [HealthDue(*health_due_key(doc["id"], ended), declaration_id=doc["id"])]


def health_due_key(declaration_id: str, ended: str) -> tuple[str, str]:
    at = parse_iso(ended)
    return at.astimezone(queue.TZ).strftime("%Y%m%d"), f"{micros(at):016d}_{declaration_id}"


def stale_due(declaration_id: str, at: datetime) -> StaleDue:
    """The lapse sweep's entry looking at a declaration again at ``at``."""
    return StaleDue(at.astimezone(queue.TZ).strftime("%Y%m%d"), f"{micros(at):016d}_{declaration_id}",
                    declaration_id=declaration_id)


def every_write(doc: dict) -> list[Model]:
    """The indexes a declaration keeps through every committed write: its yard-queue entry while it
    waits, its health entry once it has ended."""
    return [*queue_entry(doc), *health_due(doc)]


def held_slot(doc: dict) -> tuple[str, str] | None:
    """The yard queue and the key an in-yard truck holds there (None for a truck not in it): what
    its position is read from, and where its entry is."""
    key = (doc.get("booking") or {}).get("queue_key")
    if doc.get("status") != "in_yard" or not key:
        return None
    return queue_name(doc["gate"], doc["flow"]), key


def release_seat(doc: dict) -> None:
    """Give back the slot seat ``doc`` holds (a refused create, a cancelled crossing), if it still
    holds it. Seat numbers are reused: given back twice (a cleanup run again), a blind delete took
    the seat another truck had booked since, and the slot then seated one truck more than its
    capacity. The seat is read and deleted only while it names this declaration, under If-Match."""
    b = doc.get("booking") or {}
    if b.get("seat") is None:
        return
    try:
        seat = SlotSeat.get(seat_slot(doc["gate"], doc["flow"], b["slot"]), queue.seat_key(b["seat"]))
    except SlotSeat.DoesNotExist:
        return
    if seat.declaration_id != doc["id"]:
        return
    try:
        seat.delete()   # conditional on the version read (a tombstone where the store ignores If-Match)
    except (ConditionalCheckFailed, SlotSeat.DoesNotExist):
        pass


def drop_finished(doc: dict) -> None:
    """A finished crossing leaves the indexes that serve live work (its record and trail stay)."""
    try:
        for p in plate_keys(doc):
            delete_quietly(PlateIndex, p, doc["id"])
        if "submitted" in doc.get("timestamps", {}):   # a draft was never on a work list
            delete_quietly(WorkItem, doc["gate"], work_entry(doc))
        b = doc.get("booking") or {}
        if b.get("queue_key"):
            delete_quietly(QueueEntry, queue_name(doc["gate"], doc["flow"]), b["queue_key"])
            tally.recount_quietly(queue_name(doc["gate"], doc["flow"]), tally.part_of(b["queue_key"]))
        if doc["status"] == "cancelled":
            release_seat(doc)
        c = doc.get("call") or {}
        if c.get("key"):
            delete_quietly(CallEntry, queue_name(doc["gate"], doc["flow"]), c["key"])
    except Exception:  # noqa: BLE001 - indexes of a finished crossing; readers re-check state anyway
        log.exception("cleanup of %s failed", doc.get("id"))
