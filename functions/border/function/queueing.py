"""The yard queue in the store: arrival (a queue entry whose key is the truck's place), calls with a
deadline, missed calls swept back to the queue once, arrival at the gate; a truck's position and
the public board.

A queue entry's key is ``queue.queue_key(...)``: the store lists keys in order, so the queue's
order is a listing. How many trucks wait and how many are ahead of one come from the queue's tally
(:mod:`.tally`, kept on every queue write): a position costs one GET and one listing of a slot's
part (at once), whatever the number waiting, and for a truck asked about again (a driver's app
polls) they go out with the declaration's own read (:func:`where_read`). Every add or removal of a queue entry goes through this module
(and :func:`.indexes.drop_finished`), followed by its part's recount. An entry is created after the
declaration's committed write, from the key that write stored (``ledger.RECORDS``' side objects,
:func:`.indexes.queue_entry`), never inside its ``op``: an ``op`` runs again on a lost race, and an entry written by the attempt that lost stayed
in the queue beside the one the retry wrote (a truck waiting twice, the board counting it twice).
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from lscloud import store
from lscloud.store import InvalidKey
from lscloud.aggregate import NoChange, Outcome, delete_quietly, micros, save_quietly, together
from lscloud.lru import LRU
from lscloud.statemachine import Actor, iso, now, parse_iso

from . import capacity, gates, indexes, ledger, lifecycle, queue, tally
from .indexes import held_slot, queue_name
from .lifecycle import MACHINE
from .models import CallEntry, QueueEntry, QueueTally

FLOWS = queue.FLOWS


# -- how many wait, and who is ahead -------------------------------------------------------------------

def waiting(gate_code: str, flow: str) -> list[str]:
    """The queue keys of the trucks waiting in the yard, in queue order."""
    return indexes.range_keys(QueueEntry, queue_name(gate_code, flow))


def ahead_of(gate_code: str, flow: str, key: str) -> list[str]:
    """The queue keys before ``key``, in queue order."""
    return indexes.range_keys(QueueEntry, queue_name(gate_code, flow), stop_at=key)


def _queue_reads(qn: str, key: str, read: Callable[[], dict] | None = None, sent: tuple[str, str] | None = None):
    """The reads of a position, in one round trip: ``(doc, same_part, counts)``. The queue's tally
    (and the document ``read()`` reads, at ``sent``) is asked for first, and the truck's own slot
    part is listed in this thread while those answers travel; ``doc`` is None without ``read``.
    (On the side pool, the three reads started 0.2–0.9 ms apart, each waiting for its thread.) A
    ``read()`` whose reads are not known ahead (the lookup's code, then its declaration) goes beside
    the listing, on the side pool, as before."""
    objects, _ = store.connection()
    with objects.ahead(QueueTally.located(qn), *([sent] if sent else [])):
        if read is None or sent is not None:
            same_part = tally.listed(qn, tally.part_of(key), stop_at=key)
            doc = read() if read is not None else None
        else:
            doc, same_part = together(read, lambda: tally.listed(qn, tally.part_of(key), stop_at=key))
        return doc, same_part, tally.counts(qn)


def position(doc: dict, settings, read: tuple | None = None,
             read_gate: Callable[[str], dict] | None = None) -> dict | None:
    """Where an in-yard truck stands and why (None for a truck not in the yard queue).

    After the declaration's own read, one round trip: the queue's tally and the listing of the
    truck's own slot part go out at once (or were read already, ``read``: see :func:`where_read`).
    The directory's gate and its capacity override (which only change the expected wait) are read
    as they were at most ``settings.peer_fresh_s`` ago (from memory, asked again once per bound);
    ``read_gate(code)``: the directory's gate as the caller reads it (its own read, kept for its
    answer). How many trucks wait does not change what it costs."""
    slot = held_slot(doc)
    if slot is None:
        return None
    qn, key = slot
    same_part, counts = read if read is not None else _queue_reads(qn, key)[1:]
    # from memory but once per bound (a thread of its own would cost more than it saves)
    gate = read_gate(doc["gate"]) if read_gate is not None else gates.gate(settings, doc["gate"])
    per_hour = capacity.with_override(gate, doc["flow"],
                                      capacity.override_shown(doc["gate"], doc["flow"], settings.peer_fresh_s))
    if counts is None:   # a queue from before its tally: listed
        return queue.explain(key, ahead_of(doc["gate"], doc["flow"], key), per_hour)
    counted = tally.ahead(counts, key, same_part)
    return queue.explain_counts(key, counted["priority"], counted["earlier_slot"], counted["same_slot_earlier"],
                                per_hour)


# The slot this replica last answered a truck's position from, per question (the declaration id, or
# the driver's code). A hint only lets the queue's reads go out beside the declaration's own; it is
# used only when the declaration read then holds the same slot, so a stale or missing hint costs a
# round trip, never a wrong answer, and replicas stay stateless.
HINTS: LRU[str, tuple[str, str]] = LRU(8192)


def where_read(read: Callable[[], dict], settings, asked_as: str,
               located: Callable[[], tuple[str, str]] | None = None,
               read_gate: Callable[[str], dict] | None = None) -> tuple[dict, dict]:
    """The declaration ``read()`` gives (it raises for a caller who may not see it) and :func:`where`
    it stands, for a truck asked about again and again (a driver's app polling, the public lookup).

    ``asked_as`` names the question (the declaration id, or the driver's code): when this replica
    answered it before, the queue's two reads go out at once with the declaration's, in one round
    trip instead of two after it, and count if the declaration then holds the slot they were read
    for (else they are read again for the slot it holds). ``located()``: where ``read()`` reads the
    declaration (``Model.located``), when the question names it, so its GET goes out with the
    tally's. Read at once or one after the other, every read is made within the request, as before.
    ``read_gate``: see :func:`position`."""
    hint = HINTS.get(asked_as)
    early = None
    if hint is None:
        doc = read()
    else:
        try:
            sent = located() if located is not None else None
        except InvalidKey:   # a malformed id: read() refuses it as it always did
            sent = None
        doc, *early = _queue_reads(*hint, read=read, sent=sent)
    slot = held_slot(doc)
    if slot is None:
        HINTS.pop(asked_as)
    else:
        HINTS.put(asked_as, slot)
    return doc, where(doc, settings, early if early is not None and slot == hint else None, read_gate)


def board(gate_code: str, gate: dict, lang: str = "vi") -> dict:
    """The public queue board: waiting trucks per flow and lane, calls out, expected wait; the
    gate's ``name`` in ``lang`` where the directory has it (:func:`.gates.names`), all of them in ``names``."""
    at = now()
    flows = {}
    for flow in FLOWS:
        per_hour = capacity.effective(gate, flow)
        counts = tally.counts(queue_name(gate_code, flow))
        if counts is None:   # a queue from before its tally: listed
            keys_ = waiting(gate_code, flow)
            total, prio = len(keys_), sum(1 for k in keys_ if k.startswith(queue.LANE_PRIORITY + "_"))
        else:
            total = sum(counts.values())
            prio = sum(n for part, n in counts.items() if part.startswith(queue.LANE_PRIORITY + "_"))
        flows[flow] = {"waiting": total, "waiting_priority": prio, "waiting_normal": total - prio,
                       "called": CallEntry.count(queue_name(gate_code, flow)), "capacity_per_hour": per_hour,
                       "expected_wait_minutes": queue.expected_wait_minutes(total, per_hour)}
    slot = queue.slot_of(at)
    names = gates.names(gate)
    return {"gate": gate_code, "name": names[lang], "names": names, "language": lang, "current_slot": slot, "open_now": queue.is_open(gate, slot),
            "flows": flows, "at": iso(at)}


def waiting_declarations(gate_code: str, flows=FLOWS, limit: int = 500) -> list[str]:
    """The ids of the declarations waiting in the yard queue of ``flows`` (a traffic order's drivers)."""
    ids = []
    for flow in flows:
        ids += [e.declaration_id for e in QueueEntry.query(queue_name(gate_code, flow), limit=limit)]
    return ids


# -- moving trucks -----------------------------------------------------------------------------------

def queue_key_of(doc: dict, at: datetime) -> str:
    """The key of the truck in the yard queue (priority or normal lane) as arrived at ``at``: from
    the document and ``at`` alone, so every attempt of an ``op`` computes the same key."""
    lane = queue.LANE_PRIORITY if doc.get("priority") else queue.LANE_NORMAL
    return queue.queue_key(lane, doc["booking"]["slot"], at, doc["code"])


def counted(out: Outcome) -> Outcome:
    """Recount the queue part a committed write's entry (:func:`.indexes.queue_entry`) joined."""
    slot = held_slot(out.doc)
    if out.transitions and slot is not None:
        tally.recount_quietly(slot[0], tally.part_of(slot[1]))
    return out


def requeue_priority(doc: dict) -> str | None:
    """After a priority grant, an in-yard truck joins the priority lane, keeping its arrival time:
    the document takes its priority key here (in the grant's ``op``, so no write), and returns the
    normal-lane key it leaves, for :func:`leave_queue` once the grant is committed."""
    old = (doc.get("booking") or {}).get("queue_key")
    if doc["status"] == "in_yard" and old:
        doc["booking"]["queue_key"] = queue_key_of(doc, queue.parse_key(old).arrival)
        return old
    return None


def leave_queue(doc: dict, key: str) -> None:
    """After a committed write moved the truck off ``key`` (a priority grant): the entry of the key
    the document now holds, then ``key`` dropped, in that order, so the truck never drops out of the
    queue between the two."""
    for entry in indexes.queue_entry(doc):
        if entry.key != key:
            save_quietly(entry)
            tally.recount_quietly(entry.queue, tally.part_of(entry.key))
    remove(queue_name(doc["gate"], doc["flow"]), key)


def remove(qn: str, key: str) -> None:
    """Take an entry out of the yard queue (if it is there) and recount its part."""
    delete_quietly(QueueEntry, qn, key)
    tally.recount_quietly(qn, tally.part_of(key))


def _may(doc: dict, action: str, actor: Actor, gate_code: str | None) -> None:
    """``actor`` may take ``action`` now, and at this gate (a camera or operator of another gate may not)."""
    lifecycle.check(doc, action, actor)
    if gate_code and doc["gate"] != gate_code:
        raise MACHINE.not_permitted(action, actor)


def arrive(declaration_id: str, actor: Actor, gate_code: str | None = None) -> Outcome:
    """A queued truck reached the waiting area (the yard operator, or the yard camera)."""
    at = now()

    def op(doc):
        _may(doc, "arrive", actor, gate_code)
        key = queue_key_of(doc, at)
        doc["booking"]["queue_key"] = key
        doc["booking"]["arrived_at"] = iso(at)
        return [lifecycle.apply(doc, "arrive", actor, at=at, details={"queue_key": key})]

    # a second arrival of the truck (the camera and the operator at once) finds it in_yard: the
    # machine's 409 naming that state, and no entry of its own
    return counted(ledger.RECORDS.mutate(declaration_id, op))


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

        out = ledger.RECORDS.mutate(entry.declaration_id, op)
        if out.transitions:
            CallEntry(qn, call_key, declaration_id=entry.declaration_id).save()
            called.append(out)
        remove(qn, entry.key)
    return called


def sweep_calls(gate_code: str, flow: str, actor: Actor = lifecycle.SYSTEM,
                asked_by: Actor | None = None) -> list[Outcome]:
    """Trucks whose call deadline passed: back to the yard queue once, then expired. ``asked_by``:
    who asked for the sweep (an operator's ``POST /v1/gates/{gate}/sweep``), named in each move's
    audit details; the move stays the platform's (``actor``)."""
    asked = {"asked_by": ledger.event_actor(asked_by).as_dict()} if asked_by is not None else {}
    qn = queue_name(gate_code, flow)
    out = []
    at = now()
    for entry in CallEntry.query(qn, range_between=(None, f"{micros(at):016d}")):
        def op(doc, at=at):
            c = doc.get("call") or {}
            if doc["status"] != "called" or parse_iso(c["deadline"]) > at:
                raise NoChange()
            action = queue.after_missed_call(c.get("misses", 0))
            c["misses"] = c.get("misses", 0) + 1
            t = lifecycle.apply(doc, action, actor, at=at, reason="not at the gate within the call deadline",
                                details={"deadline": c["deadline"], "misses": c["misses"], **asked})
            if action == "miss_call":
                doc["booking"]["queue_key"] = queue_key_of(doc, at)
            return [t]

        outcome = counted(ledger.RECORDS.mutate(entry.declaration_id, op))
        delete_quietly(CallEntry, qn, entry.key)
        if outcome.transitions:
            out.append(outcome)
    return out


def sweep_gate(gate_code: str, actor: Actor = lifecycle.SYSTEM, asked_by: Actor | None = None) -> list[Outcome]:
    """Apply the missed call deadlines of one gate, both flows (``POST /v1/gates/{gate}/sweep``;
    ``asked_by``: see :func:`sweep_calls`)."""
    missed = []
    for flow in FLOWS:
        missed += sweep_calls(gate_code, flow, actor, asked_by)
    return missed


def called_gates() -> list[str]:
    """The gates with trucks under call now: a listing of the call table, no GETs (an entry lives
    from the call until the truck reaches the gate or the sweep takes it)."""
    gates = set()
    for name in indexes.hash_keys(CallEntry):
        gate, _, flow = name.rpartition("_")
        if gate and flow in FLOWS:
            gates.add(gate)
    return sorted(gates)


def sweep_all_gates(actor: Actor = lifecycle.SYSTEM) -> dict[str, list[Outcome]]:
    """:func:`sweep_gate` for every gate with trucks under call (the clock's tick)."""
    return {gate: sweep_gate(gate, actor) for gate in called_gates()}


def reach_gate(declaration_id: str, actor: Actor, gate_code: str | None = None) -> Outcome:
    """A called truck reached the gate within its deadline (the gate operator, or the gate camera)."""
    at = now()

    def op(doc):
        _may(doc, "reach_gate", actor, gate_code)
        return [lifecycle.apply(doc, "reach_gate", actor, at=at)]

    out = ledger.RECORDS.mutate(declaration_id, op)
    c = out.doc.get("call") or {}
    if c.get("key"):
        delete_quietly(CallEntry, queue_name(out.doc["gate"], out.doc["flow"]), c["key"])
    return out


def where(doc: dict, settings, read: tuple | None = None,
          read_gate: Callable[[str], dict] | None = None) -> dict:
    """A truck's place: its slot, its call, and its position in the yard queue (asked of the
    directory's gate only while it is in the yard; ``read``, ``read_gate``: see :func:`position`)."""
    pos = position(doc, settings, read, read_gate) if doc["status"] == "in_yard" else None
    return {"declaration_id": doc["id"], "code": doc["code"], "status": doc["status"],
            "slot": (doc.get("booking") or {}).get("slot"), "call": doc.get("call"), "queue": pos}
