"""Slot seats and booking: a seat in the requested hour (reservation) or in the first hour with one
free (living queue). Each seat is an object written create-only, so no race can seat more trucks in
a slot than its capacity; the booking itself is the declaration's ``book`` transition.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lscloud.aggregate import NoChange, Outcome
from lscloud.statemachine import Actor, Transition, iso, now, parse_iso
from lscloud.store import ConditionalCheckFailed
from lscloud.store.retry import Backoff

from . import capacity, indexes, ledger, lifecycle, metrics, queue
from .models import SlotSeat

# Booking is not retried on a lost race: the seat taken for the first attempt is given back and the
# caller gets a 409 to retry (a retry inside would need a second seat while holding the first).
NO_RETRY = Backoff(retries=0)


def _taken(slot_hash: str) -> set[str]:
    return set(indexes.range_keys(SlotSeat, slot_hash))


def take_seat(gate: dict, flow: str, declaration_id: str, mode: str, slot: str | None,
              start: datetime) -> tuple[str, int]:
    """A seat in the requested slot (reservation) or the first slot with one free (living queue)."""
    cap = capacity.effective(gate, flow)
    if mode == "reservation":
        if not slot:
            raise queue.QueueError("slot-required", "a reservation names its slot (YYYYMMDDHH, local time)",
                                   "Đặt trước phải ghi rõ khung giờ (dạng YYYYMMDDHH, giờ Việt Nam)")
        if queue.slot_start(slot) + timedelta(hours=1) <= start:
            raise queue.QueueError("slot-past", f"slot {slot} is over", f"Khung giờ {slot} đã qua")
        if not queue.is_open(gate, slot):
            raise queue.QueueError("gate-closed", f"the gate is closed during slot {slot}",
                                   f"Cửa khẩu đóng cửa trong khung giờ {slot}",
                                   _free_slots(gate, flow, start, cap, 3))
        candidates = [slot]
    else:
        candidates = queue.slots_from(gate, max(start, queue.slot_start(slot)) if slot else start)
    for s in candidates:
        seat = _try_seats(gate["code"], flow, s, cap, declaration_id)
        if seat is not None:
            return s, seat
    if mode == "reservation":
        raise queue.QueueError("slot-full", f"slot {slot} is full ({cap} trucks)",
                               f"Khung giờ {slot} đã đủ chỗ ({cap} xe)",
                               _free_slots(gate, flow, queue.slot_start(slot), cap, 3))
    raise queue.QueueError("no-slot", "no free slot in the booking horizon",
                           "Không còn khung giờ trống trong thời gian nhận đặt lượt")


def _try_seats(gate_code: str, flow: str, slot: str, cap: int, declaration_id: str) -> int | None:
    slot_hash = indexes.seat_slot(gate_code, flow, slot)
    taken = _taken(slot_hash)
    for n in range(cap):
        k = queue.seat_key(n)
        if k in taken:
            continue
        try:
            SlotSeat(slot_hash, k, declaration_id=declaration_id).save()
            return n
        except ConditionalCheckFailed:
            continue  # someone took it between our listing and our write
    return None


def _free_slots(gate: dict, flow: str, start: datetime, cap: int, n: int) -> list[str]:
    out = []
    for s in queue.slots_from(gate, start):
        if len(_taken(indexes.seat_slot(gate["code"], flow, s))) < cap:
            out.append(s)
            if len(out) >= n:
                break
    return out


def book_doc(doc: dict, actor: Actor, booking: dict, gate: dict, at: datetime) -> Transition:
    """Take a seat for ``doc`` and move it to ``queued`` (the seat is claimed before the write)."""
    lifecycle.check(doc, "book", actor)
    start = max(at, parse_iso(doc["expected_arrival"]))
    try:
        slot, seat = take_seat(gate, doc["flow"], doc["id"], booking["mode"], booking.get("slot"), start)
    except queue.QueueError as exc:
        metrics.booking_refused(doc["gate"], doc["flow"], exc.code, booking["mode"])
        raise
    doc["booking"] = {"mode": booking["mode"], "slot": slot, "seat": seat, "booked_at": iso(at)}
    return lifecycle.apply(doc, "book", actor, at=at, details={"slot": slot, "mode": booking["mode"]})


def book(declaration_id: str, actor: Actor, booking: dict, gate: dict) -> Outcome:
    """Book a slot for a submitted declaration; a lost race gives the seat back (409, retry)."""
    at = now()
    held: dict = {}

    def op(doc):
        if doc.get("booking"):   # a retry after a lost race: the seat is already ours
            if doc["status"] != "submitted":
                raise lifecycle.MACHINE.illegal("book", doc["status"])
            raise NoChange()
        t = book_doc(doc, actor, booking, gate, at)
        held["doc"] = {"gate": doc["gate"], "flow": doc["flow"], "booking": dict(doc["booking"])}
        return [t]

    try:
        return ledger.RECORDS.mutate(declaration_id, op, backoff=NO_RETRY)
    except ConditionalCheckFailed:
        if held:
            indexes.release_seat(held["doc"])
        raise
