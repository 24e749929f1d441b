"""The agencies' steps in the store: each decision its own create-only record, folded into the
declaration's summary; customs' risk lane and final release; an agency's work list at a gate.
"""

from __future__ import annotations

from lscloud.aggregate import Outcome
from lscloud.query import QueryError
from lscloud.statemachine import Actor, iso, now
from lscloud.store import ConditionalCheckFailed, InvalidKey

from . import clearance, crossing, indexes, ledger, metrics
from .ledger import RECORDS
from .models import AgencyDecision, Declaration, WorkItem


# A page of one agency's work list reads at most this many of the gate's work items (most need
# every agency; a rarely needed one may get a short page with a token to go on).
WORKLIST_READ_LIMIT = 500


DECISION_TRIES = 64
"""Numbers a decision tries past the ones listed (each taken by a concurrent decision of the agency)."""


def next_decision_seq(declaration_id: str, agency: str) -> int:
    return len(indexes.range_keys(AgencyDecision, declaration_id, prefix=agency + "_")) + 1


def record_decision(declaration_id: str, agency: str, body: dict, actor: Actor) -> Outcome:
    """The agency's own create-only decision document, then the fold into the declaration."""
    Declaration.get(declaration_id)  # 404 before writing anything
    at = now()
    seq = next_decision_seq(declaration_id, agency)
    data = {"agency": agency, "decision": body["decision"], "notes": body.get("notes"),
            "attachments": body.get("attachments", []), "by": actor.sub, "at": iso(at)}
    for _ in range(DECISION_TRIES):
        try:
            AgencyDecision(declaration_id, f"{agency}_{seq:04d}", agency=agency, seq=seq, data={**data, "seq": seq}).save()
            break
        except ConditionalCheckFailed:
            seq += 1  # the same agency's concurrent decision took this number
    else:   # a store refusing every create: a retry later, never a request that never ends
        raise ConditionalCheckFailed(f"no free decision number for {agency} after {DECISION_TRIES} tries")
    folded = {"decision": body["decision"], "seq": seq, "at": iso(at), "by": actor.sub, "notes": body.get("notes"),
              "lifts_weight_hold": bool(body.get("lifts_weight_hold"))}
    # always written, even when a newer decision was folded first: its record exists, so its event goes out
    out = RECORDS.mutate(declaration_id, lambda doc: (crossing.decide(doc, agency, folded, actor, at), folded),
                         events_after=lambda doc, _: [ledger.fact("decision.recorded", doc, {**data, "seq": seq},
                                                                     id=f"{doc['id']}.decision.{agency}.{seq}")])
    metrics.decision(out.doc, agency, body["decision"], iso(at))
    if body["decision"] in ("pass", "refuse"):
        indexes.work_done(out.doc, agency)
    return out


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
        raise QueryError("page_token", "page_token is not one this list issued") from None
    return [{"declaration_id": w.declaration_id, **w.summary} for w in page], page.page_token
