"""What is done to a declaration outside the gate's queue and the agencies' steps: create it (a
draft, or submitted, or submitted and booked, in one write), submit, cancel, grant the priority lane,
attach a document.
"""

from __future__ import annotations

from datetime import datetime

from lscloud import errors, store
from lscloud.aggregate import NoChange, Outcome, give_back, side_pool
from lscloud.statemachine import Actor, Transition, iso, now
from lscloud.store import BlobRejected, ConditionalCheckFailed

from . import booking, clearance, declarations, indexes, ledger, lifecycle, metrics, queueing, scopes
from .ledger import RECORDS
from .lifecycle import MACHINE
from .models import Declaration, DeclarationCode

ATTACHMENT_KINDS = ("invoice", "packing-list", "phytosanitary-certificate", "health-certificate", "other")
CODE_TRIES = 8


def normalised(body: dict, actor: Actor) -> dict:
    """The declaration's document from its (schema-valid) body: every bad field at once (422)."""
    doc = declarations.normalise(body, owner_tax_code=scopes.own_tax_code(actor))
    doc["id"] = body["id"]
    return doc


def reserve_code(declaration_id: str) -> str:
    """A free public code for the driver's lookup, claimed create-only."""
    for _ in range(CODE_TRIES):
        code = declarations.new_code()
        try:
            DeclarationCode(code, declaration_id=declaration_id).save()
            return code
        except ConditionalCheckFailed:
            continue
    raise ConditionalCheckFailed(f"no free declaration code after {CODE_TRIES} tries")


def submit_doc(doc: dict, actor: Actor, at: datetime) -> Transition:
    """Submit: customs' selectivity gives the first risk lane."""
    t = lifecycle.apply(doc, "submit", actor, at=at)
    lane, why = clearance.initial_lane(doc["goods"], doc["direction"])
    doc["risk_lane"] = lane
    doc["risk_lane_history"] = [{"from": None, "to": lane, "reason": f"selectivity: {why}", "by": "system", "at": iso(at)}]
    return t


def create(doc: dict, actor: Actor, *, submit: bool, slot_request: dict | None, gate: dict,
           request: dict | None = None) -> Outcome:
    """Store a new declaration (draft, or submitted, or submitted and queued in one write).

    The declaration is its own idempotency record: ``request`` is what it keeps of the request that
    created it (:func:`lscloud.idempotency.first_request`); a refused resend is answered from it
    by :meth:`lscloud.aggregate.Aggregate.resend`, which also finishes a create cut off before
    its audit entries, indexes and events were all stored.

    The code is claimed create-only beside the booking of a seat, before the declaration that
    names it (a code is unique only once its claim is stored); until the declaration itself is
    stored, any failure (a full slot, a lost race, a declaration already there, the store) gives
    both back, so a refused request leaves nothing.
    """
    if slot_request and not submit:
        raise errors.Invalid.at("/booking", "a booking needs submit: true",
                                "Chỉ đặt được lượt khi nộp tờ khai (submit: true)")
    at = now()
    code = side_pool().submit(reserve_code, doc["id"])
    doc.update(status="new", owner=actor.sub, created_at=iso(at))
    item = None
    try:
        transitions = [MACHINE.apply(doc, "create", actor, at=at)]
        if submit:
            transitions.append(submit_doc(doc, actor, at))
            if slot_request:
                transitions.append(booking.book_doc(doc, actor, slot_request, gate, at))
        doc["code"] = code.result()
        item = Declaration(doc["id"], code=doc["code"], owner=actor.sub, data=doc, request=request)
        # its indexes (indexes.created) go out with its audit entries and events, all at once
        # after the create-only write
        return RECORDS.create(item, transitions, conflict=errors.Conflict(
            f"a declaration with id {doc['id']!r} already exists", detail_vi="Đã có tờ khai với mã này."))
    except BaseException:
        if item is None or not item.version:   # not stored: the seat and the code go back
            indexes.release_seat(doc)
            give_back(DeclarationCode, code)
        raise


def submit(declaration_id: str, actor: Actor) -> Outcome:
    """Submit a draft: the agencies' work lists and the day's figures get it."""
    at = now()
    return RECORDS.mutate(declaration_id, lambda doc: [submit_doc(doc, actor, at)], side=indexes.submitted)


def cancel(declaration_id: str, actor: Actor, reason: str | None) -> Outcome:
    """Cancel before the truck is called (the seat is freed with the other indexes)."""
    at = now()
    return RECORDS.mutate(declaration_id, lambda doc: [lifecycle.apply(doc, "cancel", actor, at=at, reason=reason)])


def grant_priority(declaration_id: str, actor: Actor, category: str, reason: str) -> Outcome:
    """The priority lane (perishable, emergency, diplomatic), with a reason; a truck in the yard
    moves to the priority lane keeping its arrival time. Granted once."""
    at = now()
    grant = {"category": category, "reason": reason, "by": actor.sub, "at": iso(at)}

    def op(doc):
        if doc["status"] in lifecycle.TERMINAL or doc["status"] == "cleared":
            raise MACHINE.illegal("grant_priority", doc["status"])
        if doc.get("priority"):
            raise NoChange()
        doc["priority"] = grant
        left = queueing.requeue_priority(doc)
        return [], {"state": doc["status"], "left": left}

    out = RECORDS.mutate(declaration_id, op, events_after=lambda doc, _: [ledger.fact(
        "priority.granted", doc, grant, id=f"{doc['id']}.priority")])
    if out.result:   # committed: an in_yard grant moved the truck from the normal to the priority lane
        metrics.priority_granted(out.doc, category, out.result["state"])
        if out.result["left"]:
            queueing.leave_queue(out.doc, out.result["left"])
        RECORDS.audit_only(out.item, "grant_priority", actor, at=at, details=grant, reason=reason)
    return out


def attach(declaration_id: str, actor: Actor, kind: str, data: bytes, media_type: str,
           filename: str | None) -> Outcome:
    """Store a document content-addressed, then list it on the declaration (once per content and kind)."""
    try:
        ref = store.blobs("border-attachments").put(data, media_type, filename)
    except BlobRejected as exc:
        raise errors.Invalid.at("", f"attachment refused: {exc.cause}",
                                f"Tệp đính kèm bị từ chối: {exc.message_vi}") from None
    entry = {"kind": kind, **ref.to_dict(), "added_by": actor.sub, "at": iso(now())}

    def op(doc):
        if doc["status"] in lifecycle.TERMINAL:
            raise MACHINE.illegal("attach", doc["status"])
        if any(a["sha256"] == ref.sha256 and a["kind"] == kind for a in doc["attachments"]):
            raise NoChange()
        doc["attachments"].append(entry)
        return [], entry

    out = RECORDS.mutate(declaration_id, op)
    if out.result is not None:   # listed now: the same document sent again (no key) listed nothing new
        RECORDS.audit_only(out.item, "attach", actor, details={"kind": kind, "sha256": ref.sha256})
    return out
