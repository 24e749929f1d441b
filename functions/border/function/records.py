"""Crossings in the store: conditional writes, the audit trail, indexes, seats and queue keys,
and the events every transition publishes.

Every change of a declaration goes through :func:`mutate`: read, apply one operation of
:mod:`.crossing` / :mod:`.lifecycle` to the fresh document, write it back with ``If-Match``; a lost
race reads again and re-applies (up to :data:`RETRIES` times), so concurrent writers never
overwrite each other. Only then are the audit entries (create-only, keyed by time and the
document's version, so a repeat writes nothing new) and the events (ids derived from the same
version, so NATS's dedupe window drops a repeat) written. An event NATS does not confirm is kept
in the runtime's outbox (:mod:`lscloud.outbox`) and published again on the clock's tick.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from lscloud import events as ce
from lscloud import outbox, store
from lscloud.store import ConditionalCheckFailed, DoesNotExist, keys

from . import clearance, declarations, lifecycle, metrics, queue
from .lifecycle import Actor, Transition, iso
from .models import (AgencyDecision, AuditEntry, CallEntry, CapacityOverride, Declaration, DeclarationCode,
                     DayIndex, OwnerIndex, PlateIndex, QueueEntry, SlotSeat, WorkItem)

log = logging.getLogger("border.records")
SOURCE = "/border"
RETRIES = 40
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="border-side")


def micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def now() -> datetime:
    return datetime.now(timezone.utc)


def safe(part: str) -> str:
    """A key part of letters, digits and ``_`` (gate codes and plates hold dashes and dots)."""
    return "".join(c if c.isalnum() and c.isascii() else "_" for c in part)


# -- events ----------------------------------------------------------------------------------------

def summary(doc: dict) -> dict:
    """The declaration as events carry it (no personal data beyond the plate and the driver's phone
    for notifiers)."""
    return {"declaration_id": doc["id"], "code": doc["code"], "status": doc["status"], "gate": doc["gate"],
            "direction": doc["direction"], "flow": doc["flow"], "tractor_plate": doc["vehicle"]["tractor_plate"],
            "trailer_plate": doc["vehicle"].get("trailer_plate"), "enterprise_tax_code": doc["enterprise"]["tax_code"]}


def transition_event(doc: dict, t: Transition, event_id: str) -> dict:
    data = {**summary(doc), "from": t.source, "to": t.target, "action": t.action, "at": t.at,
            "actor": t.actor.as_dict(), "reason": t.reason, "details": t.details}
    return ce.new_event(t.event_type, SOURCE, data, subject=doc["id"], id=event_id)


def event(type_: str, data: dict, *, subject: str | None = None, id: str | None = None) -> dict:
    return ce.new_event(f"vn.langson.border.{type_}.v1", SOURCE, data, subject=subject, id=id)


# -- the declaration document -------------------------------------------------------------------------

class NoChange(Exception):
    """Raised by an operation that finds nothing to do (no write, no event)."""


@dataclass
class Outcome:
    decl: Declaration
    transitions: list[Transition] = field(default_factory=list)
    result: Any = None

    @property
    def doc(self) -> dict:
        return self.decl.data


def get(declaration_id: str) -> Declaration:
    return Declaration.get(declaration_id)


def _write_trail(decl: Declaration, transitions: list[Transition], extra_events: list[dict]) -> None:
    """Audit entries, events and metrics for one committed write (deterministic keys and ids)."""
    doc = decl.data
    metrics.transitions(doc, transitions)
    entries, evts = [], []
    for i, t in enumerate(transitions):
        at = datetime.fromisoformat(t.at.replace("Z", "+00:00"))
        entries.append(AuditEntry(doc["id"], f"{micros(at):016d}_{decl.version:06d}_{i:02d}", data=t.audit()))
        evts.append(transition_event(doc, t, f"{doc['id']}.{decl.version}.{i}"))
    def save(entry):
        try:
            entry.save()
        except ConditionalCheckFailed:
            pass  # a repeat of a committed write: the entry is already there

    done = [_pool.submit(save, e) for e in entries]
    outbox.publish(evts + extra_events)
    for f in done:
        f.result()


def audit_only(decl: Declaration, action: str, actor: Actor, at: datetime, details: dict, reason: str | None = None,
               seq: int = 0) -> None:
    """An audit entry for a change that is not a state transition (risk lane, priority, attachment)."""
    entry = {"action": action, "from": decl.data["status"], "to": decl.data["status"], "at": iso(at),
             "actor": actor.as_dict(), "reason": reason, "details": details}
    try:
        AuditEntry(decl.id, f"{micros(at):016d}_{decl.version:06d}_{50 + seq:02d}", data=entry).save()
    except ConditionalCheckFailed:
        pass


def mutate(declaration_id: str, op: Callable[[dict], Any], *, events_after: Callable[[dict, Any], list[dict]] | None = None,
           retries: int = RETRIES) -> Outcome:
    """Read-modify-write one declaration under If-Match. ``op(doc)`` mutates the fresh document and
    returns the transitions it made (a list) or ``(transitions, result)``; raising NoChange skips the
    write. Domain exceptions pass through untouched."""
    for attempt in range(retries + 1):
        decl = Declaration.get(declaration_id)
        doc = decl.data
        try:
            out = op(doc)
        except NoChange:
            return Outcome(decl, [], None)
        transitions, result = (out if isinstance(out, tuple) else (out or [], None))
        decl.data = doc
        decl.status = doc["status"]
        try:
            decl.save()
        except ConditionalCheckFailed:
            time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))
            continue
        extra = events_after(doc, result) if events_after else []
        _write_trail(decl, transitions, extra)
        if doc["status"] in lifecycle.TERMINAL and any(t.target in lifecycle.TERMINAL for t in transitions):
            _pool.submit(_cleanup_terminal, doc)
        return Outcome(decl, transitions, result)
    raise ConditionalCheckFailed(f"declaration {declaration_id} kept changing: {retries} retries")


def _delete_quietly(model, *key) -> None:
    try:
        model(*key).delete()
    except (DoesNotExist, ConditionalCheckFailed):
        pass


def _cleanup_terminal(doc: dict) -> None:
    """A finished crossing leaves the indexes that serve live work (its record and trail stay)."""
    try:
        for p in plate_keys(doc):
            _delete_quietly(PlateIndex, p, doc["id"])
        for agency in [r["agency"] for r in doc.get("required_agencies", [])]:
            _delete_quietly(WorkItem, work_queue(doc["gate"], agency), work_entry(doc))
        b = doc.get("booking") or {}
        if b.get("queue_key"):
            _delete_quietly(QueueEntry, queue_name(doc["gate"], doc["flow"]), b["queue_key"])
        if b.get("seat") is not None and doc["status"] in ("cancelled",):
            _delete_quietly(SlotSeat, seat_slot(doc["gate"], doc["flow"], b["slot"]), queue.seat_key(b["seat"]))
        c = doc.get("call") or {}
        if c.get("key"):
            _delete_quietly(CallEntry, queue_name(doc["gate"], doc["flow"]), c["key"])
    except Exception:  # noqa: BLE001 - indexes of a finished crossing; readers re-check state anyway
        log.exception("cleanup of %s failed", doc.get("id"))


# -- keys -----------------------------------------------------------------------------------------------

def queue_name(gate: str, flow: str) -> str:
    return f"{gate}_{flow}"


def seat_slot(gate: str, flow: str, slot: str) -> str:
    return f"{gate}_{flow}_{slot}"


def work_queue(gate: str, agency: str) -> str:
    return f"{gate}_{agency}"


def work_entry(doc: dict) -> str:
    submitted = datetime.fromisoformat(doc["timestamps"]["submitted"].replace("Z", "+00:00"))
    return f"{micros(submitted):016d}_{safe(doc['id'])}"


def plate_keys(doc: dict) -> list[str]:
    from .identifiers import plate_key

    v = doc["vehicle"]
    return [plate_key(p) for p in (v["tractor_plate"], v.get("trailer_plate")) if p]


def owner_keys(doc: dict) -> list[str]:
    return [f"ent:{doc['owner']}", f"drv:{doc['driver']['id_number']}"]


# -- creation -----------------------------------------------------------------------------------------

class Conflict(Exception):
    def __init__(self, message: str, state: str | None = None):
        super().__init__(message)
        self.state = state


def reserve_code(declaration_id: str) -> str:
    for _ in range(8):
        code = declarations.new_code()
        try:
            DeclarationCode(code, declaration_id=declaration_id).save()
            return code
        except ConditionalCheckFailed:
            continue
    raise ConditionalCheckFailed("no free declaration code after 8 tries")


def create(doc: dict, actor: Actor, *, submit: bool, booking: dict | None, gate: dict, at: datetime) -> Outcome:
    """Store a new declaration (draft, or submitted, or submitted and queued in one write).

    The code and the seat are claimed first; until the declaration itself is saved, any failure
    (a full slot, a lost race, the store) gives both back, so a refused request leaves nothing.
    """
    doc["code"] = reserve_code(doc["id"])
    try:
        doc["status"] = "draft"
        doc["owner"] = actor.sub
        doc["created_at"] = iso(at)
        doc["timestamps"] = {"draft": iso(at)}
        transitions = [Transition("create", "new", "draft", "declaration.drafted", actor, iso(at))]
        if submit:
            transitions.append(submit_doc(doc, actor, at))
            if booking:
                transitions.append(book_doc(doc, actor, booking, gate, at))
        decl = Declaration(doc["id"], code=doc["code"], status=doc["status"], owner=actor.sub, data=doc)
        decl.save()
    except BaseException as exc:
        _release_seat(doc)
        _delete_quietly(DeclarationCode, doc["code"])
        if isinstance(exc, ConditionalCheckFailed):
            raise Conflict(f"a declaration with id {doc['id']!r} already exists") from None
        raise
    side = [OwnerIndex(k, f"{micros(at):016d}_{safe(doc['id'])}", declaration_id=doc["id"]) for k in owner_keys(doc)]
    side += [PlateIndex(p, doc["id"]) for p in plate_keys(doc)]
    if submit:
        side += _submitted_indexes(doc)
    list(_pool.map(lambda m: m.save(), side))
    _write_trail(decl, transitions, [])
    return Outcome(decl, transitions)


def _submitted_indexes(doc: dict) -> list:
    day = datetime.fromisoformat(doc["timestamps"]["submitted"].replace("Z", "+00:00")).astimezone(queue.TZ).date().isoformat()
    out = [DayIndex(day, f"{safe(doc['gate'])}_{safe(doc['id'])}", declaration_id=doc["id"])]
    summ = {"code": doc["code"], "direction": doc["direction"], "plate": doc["vehicle"]["tractor_plate"],
            "submitted_at": doc["timestamps"]["submitted"], "risk_lane": doc.get("risk_lane")}
    out += [WorkItem(work_queue(doc["gate"], r["agency"]), work_entry(doc), declaration_id=doc["id"], summary=summ)
            for r in doc["required_agencies"]]
    return out


def submit_doc(doc: dict, actor: Actor, at: datetime) -> Transition:
    t = lifecycle.apply(doc, "submit", actor, at=at)
    lane, why = clearance.initial_lane(doc["goods"], doc["direction"])
    doc["risk_lane"] = lane
    doc["risk_lane_history"] = [{"from": None, "to": lane, "reason": f"selectivity: {why}", "by": "system", "at": iso(at)}]
    return t


def submit(declaration_id: str, actor: Actor) -> Outcome:
    at = now()
    out = mutate(declaration_id, lambda doc: [submit_doc(doc, actor, at)])
    list(_pool.map(lambda m: m.save(), _submitted_indexes(out.doc)))
    return out


# -- seats and booking -------------------------------------------------------------------------------

def capacity_override(gate: str, flow: str) -> int | None:
    try:
        return int(CapacityOverride.get(gate, flow).per_hour)
    except DoesNotExist:
        return None


def _taken_seats(slot_hash: str) -> set[str]:
    objects, bucket = store.connection()
    prefix = keys.hash_prefix(SlotSeat.Meta.table, slot_hash)
    return {keys.decode_part(o.key[len(prefix):-len(keys.SUFFIX)]) for o in objects.list(bucket, prefix)}


def take_seat(gate: dict, flow: str, declaration_id: str, mode: str, slot: str | None, start: datetime) -> tuple[str, int]:
    """A seat in the requested slot (reservation) or the first slot with one free (living queue)."""
    cap = queue.capacity(gate, flow, capacity_override(gate["code"], flow))
    metrics.capacity_seen(gate["code"], flow, cap)
    if mode == "reservation":
        if not slot:
            raise queue.QueueError("slot-required", "a reservation names its slot (YYYYMMDDHH, local time)")
        if queue.slot_start(slot) + queue.timedelta(hours=1) <= start:
            raise queue.QueueError("slot-past", f"slot {slot} is over")
        if not queue.is_open(gate, slot):
            raise queue.QueueError("gate-closed", f"the gate is closed during slot {slot}",
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
                               _free_slots(gate, flow, queue.slot_start(slot), cap, 3))
    raise queue.QueueError("no-slot", "no free slot in the booking horizon")


def _try_seats(gate_code: str, flow: str, slot: str, cap: int, declaration_id: str) -> int | None:
    slot_hash = seat_slot(gate_code, flow, slot)
    taken = _taken_seats(slot_hash)
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
        if len(_taken_seats(seat_slot(gate["code"], flow, s))) < cap:
            out.append(s)
            if len(out) >= n:
                break
    return out


def book_doc(doc: dict, actor: Actor, booking: dict, gate: dict, at: datetime) -> Transition:
    lifecycle.check(doc, "book", actor)
    start = max(at, datetime.fromisoformat(doc["expected_arrival"].replace("Z", "+00:00")))
    try:
        slot, seat = take_seat(gate, doc["flow"], doc["id"], booking["mode"], booking.get("slot"), start)
    except queue.QueueError as exc:
        metrics.booking_refused(doc["gate"], doc["flow"], exc.code, booking["mode"])
        raise
    doc["booking"] = {"mode": booking["mode"], "slot": slot, "seat": seat, "booked_at": iso(at)}
    return lifecycle.apply(doc, "book", actor, at=at, details={"slot": slot, "mode": booking["mode"]})


def _release_seat(doc: dict) -> None:
    b = doc.get("booking") or {}
    if b.get("seat") is not None:
        _delete_quietly(SlotSeat, seat_slot(doc["gate"], doc["flow"], b["slot"]), queue.seat_key(b["seat"]))


def book(declaration_id: str, actor: Actor, booking: dict, gate: dict) -> Outcome:
    at = now()
    seat_holder: dict = {}

    def op(doc):
        if doc.get("booking"):   # a retry after a lost race: the seat is already ours
            raise lifecycle.IllegalTransition("book", doc["status"]) if doc["status"] != "submitted" else NoChange()
        t = book_doc(doc, actor, booking, gate, at)
        seat_holder["doc"] = {"gate": doc["gate"], "flow": doc["flow"], "booking": dict(doc["booking"])}
        return [t]

    try:
        return mutate(declaration_id, op, retries=0)
    except ConditionalCheckFailed:
        if seat_holder:
            _release_seat(seat_holder["doc"])
        raise


# -- yard queue ------------------------------------------------------------------------------------

def enqueue(doc: dict, at: datetime) -> str:
    lane = queue.LANE_PRIORITY if doc.get("priority") else queue.LANE_NORMAL
    key = queue.queue_key(lane, doc["booking"]["slot"], at, doc["code"])
    QueueEntry(queue_name(doc["gate"], doc["flow"]), key, declaration_id=doc["id"]).save()
    return key


def parse_arrival(key: str) -> datetime:
    return queue.parse_key(key).arrival


def arrive(declaration_id: str, actor: Actor, gate_code: str | None = None) -> Outcome:
    at = now()

    def op(doc):
        lifecycle.check(doc, "arrive", actor)
        if gate_code and doc["gate"] != gate_code:
            raise lifecycle.NotPermitted("arrive", actor)
        key = enqueue(doc, at)
        doc["booking"]["queue_key"] = key
        doc["booking"]["arrived_at"] = iso(at)
        return [lifecycle.apply(doc, "arrive", actor, at=at, details={"queue_key": key})]

    return mutate(declaration_id, op)


def queue_keys(gate: str, flow: str, stop_at: str | None = None) -> list[str]:
    """The yard queue's keys in order (up to and excluding ``stop_at``): a prefix listing, no GETs."""
    objects, bucket = store.connection()
    prefix = keys.hash_prefix(QueueEntry.Meta.table, queue_name(gate, flow))
    out = []
    stop = None if stop_at is None else prefix + keys.encode_part(stop_at) + keys.SUFFIX
    for o in objects.list(bucket, prefix):
        if stop is not None and o.key >= stop:
            break
        out.append(keys.decode_part(o.key[len(prefix):-len(keys.SUFFIX)]))
    return out


def position(doc: dict, gate: dict) -> dict | None:
    key = (doc.get("booking") or {}).get("queue_key")
    if doc["status"] != "in_yard" or not key:
        return None
    ahead = queue_keys(doc["gate"], doc["flow"], stop_at=key)
    per_hour = queue.capacity(gate, doc["flow"], capacity_override(doc["gate"], doc["flow"]))
    metrics.capacity_seen(doc["gate"], doc["flow"], per_hour)
    return queue.explain(key, ahead, per_hour)


def call_next(gate_code: str, flow: str, count: int, actor: Actor, minutes: int) -> list[Outcome]:
    """Call the first ``count`` trucks of the yard queue (stale entries are dropped on the way)."""
    called: list[Outcome] = []
    qn = queue_name(gate_code, flow)
    for entry in QueueEntry.query(qn, limit=max(count * 3, 10)):
        if len(called) >= count:
            break
        at = now()
        deadline = queue.call_deadline(at, minutes)
        call_key = f"{micros(deadline):016d}_{entry.key.rsplit('_', 1)[-1]}"

        def op(doc, entry=entry, at=at, deadline=deadline, call_key=call_key):
            if doc["status"] != "in_yard" or doc.get("booking", {}).get("queue_key") != entry.key:
                raise NoChange()
            t = lifecycle.apply(doc, "call", actor, at=at, details={"deadline": iso(deadline)})
            doc["call"] = {"called_at": iso(at), "deadline": iso(deadline), "key": call_key,
                           "misses": (doc.get("call") or {}).get("misses", 0)}
            doc["booking"]["queue_key"] = None
            return [t]

        out = mutate(entry.declaration_id, op)
        if out.transitions:
            CallEntry(qn, call_key, declaration_id=entry.declaration_id).save()
            called.append(out)
        _delete_quietly(QueueEntry, qn, entry.key)
    return called


def sweep_calls(gate_code: str, flow: str, actor: Actor = lifecycle.SYSTEM) -> list[Outcome]:
    """Trucks whose call deadline passed: back to the yard queue once, then expired."""
    qn = queue_name(gate_code, flow)
    out = []
    at = now()
    for entry in CallEntry.query(qn, range_between=(None, f"{micros(at):016d}")):
        def op(doc, at=at):
            c = doc.get("call") or {}
            if doc["status"] != "called" or datetime.fromisoformat(c["deadline"].replace("Z", "+00:00")) > at:
                raise NoChange()
            action = queue.after_missed_call(c.get("misses", 0))
            c["misses"] = c.get("misses", 0) + 1
            t = lifecycle.apply(doc, action, actor, at=at, reason="not at the gate within the call deadline",
                                details={"deadline": c["deadline"], "misses": c["misses"]})
            if action == "miss_call":
                doc["booking"]["queue_key"] = enqueue(doc, at)
            return [t]

        outcome = mutate(entry.declaration_id, op)
        _delete_quietly(CallEntry, qn, entry.key)
        if outcome.transitions:
            out.append(outcome)
    return out


def sweep_gate(gate_code: str, actor: Actor = lifecycle.SYSTEM) -> list[Outcome]:
    """Apply the missed call deadlines of one gate, both flows (``POST /v1/gates/{gate}/sweep``)."""
    missed = []
    for flow in ("in", "out"):
        missed += sweep_calls(gate_code, flow, actor)
    return missed


def called_gates() -> list[str]:
    """The gates with trucks under call now: a prefix listing of the call table, no GETs
    (an entry lives from the call until the truck reaches the gate or the sweep takes it)."""
    objects, bucket = store.connection()
    prefix = keys.table_prefix(CallEntry.Meta.table)
    gates = set()
    for o in objects.list(bucket, prefix):
        part = o.key[len(prefix):].split("/", 1)[0]
        try:
            gate, _, flow = keys.decode_part(part).rpartition("_")
        except ValueError:
            continue
        if gate and flow in ("in", "out"):
            gates.add(gate)
    return sorted(gates)


def sweep_all_gates(actor: Actor = lifecycle.SYSTEM) -> dict[str, list[Outcome]]:
    """:func:`sweep_gate` for every gate with trucks under call (the clock's tick)."""
    return {gate: sweep_gate(gate, actor) for gate in called_gates()}


def reach_gate(declaration_id: str, actor: Actor, gate_code: str | None = None) -> Outcome:
    at = now()

    def op(doc):
        lifecycle.check(doc, "reach_gate", actor)
        if gate_code and doc["gate"] != gate_code:
            raise lifecycle.NotPermitted("reach_gate", actor)
        return [lifecycle.apply(doc, "reach_gate", actor, at=at)]

    out = mutate(declaration_id, op)
    c = out.doc.get("call") or {}
    if c.get("key"):
        _delete_quietly(CallEntry, queue_name(out.doc["gate"], out.doc["flow"]), c["key"])
    return out


def move_to_priority(doc_before: dict, doc: dict) -> None:
    """After a priority grant, an in-yard truck's queue key moves to the priority lane."""
    old = (doc_before.get("booking") or {}).get("queue_key")
    if doc["status"] == "in_yard" and old:
        _delete_quietly(QueueEntry, queue_name(doc["gate"], doc["flow"]), old)


# -- agencies --------------------------------------------------------------------------------------

def next_decision_seq(declaration_id: str, agency: str) -> int:
    objects, bucket = store.connection()
    prefix = keys.hash_prefix(AgencyDecision.Meta.table, declaration_id) + keys.encode_part(agency + "_")
    return sum(1 for _ in objects.list(bucket, prefix)) + 1


def record_decision(declaration_id: str, agency: str, body: dict, actor: Actor) -> Outcome:
    """The agency's own create-only decision document, then the fold into the declaration."""
    Declaration.get(declaration_id)  # 404 before writing anything
    at = now()
    seq = next_decision_seq(declaration_id, agency)
    data = {"agency": agency, "decision": body["decision"], "notes": body.get("notes"),
            "attachments": body.get("attachments", []), "by": actor.sub, "at": iso(at)}
    while True:
        try:
            AgencyDecision(declaration_id, f"{agency}_{seq:04d}", agency=agency, seq=seq, data={**data, "seq": seq}).save()
            break
        except ConditionalCheckFailed:
            seq += 1  # the same officer's concurrent decision took this number
    folded = {"decision": body["decision"], "seq": seq, "at": iso(at), "by": actor.sub, "notes": body.get("notes"),
              "lifts_weight_hold": bool(body.get("lifts_weight_hold"))}
    from . import crossing

    out = mutate(declaration_id, lambda doc: crossing.decide(doc, agency, folded, actor, at),
                 events_after=lambda doc, _: [event("decision.recorded", {**summary(doc), **data, "seq": seq},
                                                    subject=doc["id"], id=f"{doc['id']}.decision.{agency}.{seq}")])
    metrics.decision(out.doc, agency, body["decision"], iso(at))
    if body["decision"] in ("pass", "refuse"):
        _delete_quietly(WorkItem, work_queue(out.doc["gate"], agency), work_entry(out.doc))
    return out


def decisions_of(declaration_id: str) -> list[dict]:
    return [d.data for d in AgencyDecision.query(declaration_id)]


def reconcile_decisions(doc: dict, stored: list[dict]) -> None:
    """Fold decision documents the declaration's summary missed (a crash between the two writes)."""
    for d in sorted(stored, key=lambda x: x["seq"]):
        clearance.record_decision(doc, d["agency"], {"decision": d["decision"], "seq": d["seq"], "at": d["at"],
                                                     "by": d["by"], "notes": d.get("notes")})


def audit_trail(declaration_id: str) -> list[dict]:
    return [{"entry": a.entry, **a.data} for a in AuditEntry.query(declaration_id)]
