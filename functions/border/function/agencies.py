"""The agencies' steps in the store: each decision its own create-only record, folded into the
declaration's summary; customs' risk lane and final release; an agency's work list at a gate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from lscloud import outbox
from lscloud.aggregate import Outcome, side_pool
from lscloud.query import unissued_page_token
from lscloud.statemachine import Actor, iso, now, parse_iso
from lscloud.store import ConditionalCheckFailed, InvalidKey

from . import clearance, crossing, indexes, ledger, metrics
from .ledger import RECORDS
from .models import AgencyDecision, Declaration, WorkItem


# A page of one agency's work list reads at most this many of the gate's work items (most need
# every agency; a rarely needed one may get a short page with a token to go on).
WORKLIST_READ_LIMIT = 500


DECISION_TRIES = 64
"""Numbers a decision tries past the ones listed (each taken by a concurrent decision of the agency)."""


def record_decision(declaration_id: str, agency: str, body: dict, actor: Actor, *, request: dict | None = None,
                    judge: Callable[[dict | None], bool] | None = None) -> tuple[Outcome, bool]:
    """The agency's own create-only decision document, then the fold into the declaration; and
    whether the decision was this request's already (True: answered again, not recorded twice).

    ``request``: what the decision keeps of the request that records it (its idempotency stamp,
    :func:`lscloud.idempotency.first_request`). A run cut off after storing the decision (a process
    that died, a store that failed) answers 5xx, and the key's lease lets the client's retry run
    again: it finds the decision ``judge`` (:func:`lscloud.idempotency.resent`) says is this
    request's, and finishes what followed it (:func:`_finish`) instead of taking the next number.
    """
    decl = Declaration.get(declaration_id)  # 404 before writing anything
    taken = indexes.range_keys(AgencyDecision, declaration_id, prefix=agency + "_")
    first = _recorded_by(declaration_id, taken, judge) if judge is not None and taken else None
    if first is not None:
        return _finish(decl, agency, first.data, body, actor), True
    at = now()
    seq = len(taken) + 1
    data = {"agency": agency, "decision": body["decision"], "notes": body.get("notes"),
            "attachments": body.get("attachments", []), "by": actor.sub, "at": iso(at)}
    kept = {"request": request} if request is not None else {}   # never answered nor published (public)
    for _ in range(DECISION_TRIES):
        try:
            AgencyDecision(declaration_id, f"{agency}_{seq:04d}", agency=agency, seq=seq,
                           data={**data, "seq": seq, **kept}).save()
            break
        except ConditionalCheckFailed:
            seq += 1  # the same agency's concurrent decision took this number
    else:   # a store refusing every create: a retry later, never a request that never ends
        raise ConditionalCheckFailed(f"no free decision number for {agency} after {DECISION_TRIES} tries")
    return _fold(declaration_id, agency, {**data, "seq": seq}, body, actor, at), False


def public(stored: dict) -> dict:
    """A decision as it is answered and published: without the stamp of the request that recorded it."""
    return {k: v for k, v in stored.items() if k != "request"}


def _recorded_by(declaration_id: str, taken: list[str], judge: Callable[[dict | None], bool]) -> AgencyDecision | None:
    """The agency's decision on the declaration that this request recorded (its run cut off before
    the answer), or None; ``judge`` raises the 409 naming the fields for another body under its key.
    Only the same caller's same key can match, so other officers' decisions are never taken for it."""
    for d in side_pool().map(lambda key: AgencyDecision.get(declaration_id, key), taken):
        if judge(d.data.get("request")):
            return d
    return None


def _fold(declaration_id: str, agency: str, decision: dict, body: dict, actor: Actor, at: datetime) -> Outcome:
    """Fold the stored ``decision`` (its public fields) into the declaration, with its event."""
    seq = decision["seq"]
    folded = {"decision": decision["decision"], "seq": seq, "at": decision["at"], "by": decision["by"],
              "notes": decision.get("notes"), "lifts_weight_hold": bool(body.get("lifts_weight_hold"))}
    # always written, even when a newer decision was folded first: its record exists, so its event goes out
    out = RECORDS.mutate(declaration_id, lambda doc: (crossing.decide(doc, agency, folded, actor, at), folded),
                         events_after=lambda doc, _: [_recorded(doc, decision)])
    metrics.decision(out.doc, agency, decision["decision"], decision["at"])
    if decision["decision"] in ("pass", "refuse"):
        indexes.work_done(out.doc, agency)
    return out


def _recorded(doc: dict, decision: dict) -> dict:
    return ledger.fact("decision.recorded", doc, decision,
                       id=f"{doc['id']}.decision.{decision['agency']}.{decision['seq']}")


def _finish(decl: Declaration, agency: str, stored: dict, body: dict, actor: Actor) -> Outcome:
    """What follows a decision this request stored before its run was cut off. Not folded yet: the
    fold its first run would have made (its number, its time). Folded (or passed by a newer one of
    the agency): no write; its event again under its id (JetStream's dedupe and the consumers drop
    a repeat) and the work list, both repeat-safe."""
    decision = public(stored)
    current = decl.data.get("decisions", {}).get(agency)
    if current is None or current["seq"] < decision["seq"]:
        return _fold(decl.id, agency, decision, body, actor, parse_iso(decision["at"]))
    outbox.publish([_recorded(decl.data, decision)])
    if decision["decision"] in ("pass", "refuse"):
        indexes.work_done(decl.data, agency)
    return Outcome(decl)


def reconcile_decisions(doc: dict, stored: list[dict]) -> None:
    """Fold decision documents the declaration's summary missed (a crash between the two writes)."""
    for d in sorted(stored, key=lambda x: x["seq"]):
        clearance.record_decision(doc, d["agency"], {"decision": d["decision"], "seq": d["seq"], "at": d["at"],
                                                     "by": d["by"], "notes": d.get("notes")})


def release(declaration_id: str, actor: Actor, notes: str | None) -> Outcome:
    """Customs' final release: only when every other required agency passed and no hold is open."""
    stored = ledger.decisions_of(declaration_id)
    at = now()

    def op(doc):
        reconcile_decisions(doc, stored)
        return [crossing.release(doc, actor, at, notes)]

    return RECORDS.mutate(declaration_id, op)


def route_lane(declaration_id: str, actor: Actor, lane: str, reason: str | None) -> Outcome:
    """Customs sets or re-routes the risk lane (a re-route needs a reason); audited and published."""
    at = now()
    out = RECORDS.mutate(declaration_id, lambda doc: ([], crossing.assign_lane(doc, lane, reason, actor, at)),
                         events_after=lambda doc, entry: [ledger.fact(
                             "risk-lane.routed", doc, entry, id=f"{doc['id']}.lane.{len(doc['risk_lane_history'])}")])
    RECORDS.audit_only(out.item, "route_risk_lane", actor, at=at, details=out.result, reason=reason)
    return out


def worklist(gate_code: str, agency: str, limit: int, page_token: str | None) -> tuple[list[dict], str | None]:
    """What waits for ``agency`` at the gate, oldest first, and the next page."""
    try:
        # the gate's work items, each naming the agencies still to decide: this agency's are kept
        page = WorkItem.query(gate_code, limit=limit, page_token=page_token, where=lambda w: agency in w.agencies,
                              read_limit=WORKLIST_READ_LIMIT)
    except InvalidKey:
        raise unissued_page_token() from None
    return [{"declaration_id": w.declaration_id, **w.summary} for w in page], page.page_token
