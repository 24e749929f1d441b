"""The agencies' steps: decisions (each agency only its own), customs' risk lane and release, and
each agency's work list at a gate."""

from __future__ import annotations

from flask import Blueprint, g

from lscloud import idempotency
from lscloud.auth import allow
from lscloud.idempotency import idempotent
from lscloud.web import page_params, query_params, responds, validate_body

from .. import agencies, ledger, scopes
from .common import DECLARATION, DECLARATION_ID, GATE_CODE, actor, answer, page, visible

bp = Blueprint("clearance", __name__)


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/decisions")
@allow("officer")
@validate_body("border/decision.json")
@idempotent()
@responds(DECLARATION)
def record_decision(declaration_id: str):
    """Record your agency's decision (pass / hold / refuse) — only your own agency's step."""
    decl, who = visible(declaration_id), actor()
    agency = scopes.agency_step(who, decl.doc)
    scopes.at_gate(who, decl.doc["gate"])
    # a retry after a run cut off once the decision was stored finds it by this stamp: one decision
    out, again = agencies.record_decision(declaration_id, agency, g.body, who, request=idempotency.first_request(),
                                          judge=idempotency.resent)
    return idempotency.mark_replayed(answer(out)) if again else answer(out)


@bp.get(f"/v1/declarations/<{DECLARATION_ID}>/decisions")
@allow("enterprise", "officer", "operator", "auditor")
@responds("border/decision-record.json", page=True)
def list_decisions(declaration_id: str):
    """Every agency decision on the declaration, each its own record."""
    visible(declaration_id)
    return page([agencies.public(d) for d in ledger.decisions_of(declaration_id)])


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/risk-lane")
@allow("officer")
@validate_body("border/risk-lane.json")
@idempotent()
@responds(DECLARATION)
def route_risk_lane(declaration_id: str):
    """Customs sets or re-routes the risk lane (green / yellow / red); a re-route needs a reason."""
    who = actor()
    scopes.customs_only(who, "route a risk lane")
    visible(declaration_id)
    return answer(agencies.route_lane(declaration_id, who, g.body["lane"], g.body.get("reason")))


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/release")
@allow("officer")
@validate_body("border/release.json", optional=True)
@idempotent()
@responds(DECLARATION)
def release_declaration(declaration_id: str):
    """Customs' final release: only when every other required agency passed and no hold is open."""
    who = actor()
    scopes.customs_only(who, "release")
    scopes.at_gate(who, visible(declaration_id).doc["gate"])
    return answer(agencies.release(declaration_id, who, g.body.get("notes")))


@bp.get(f"/v1/gates/<{GATE_CODE}>/worklist")
@allow("officer")
@responds("border/work-item.json", page=True)
@query_params(*page_params(default_limit=50))
def worklist(gate_code: str):
    """What waits for my agency at this gate, oldest first."""
    who = actor()
    scopes.at_gate(who, gate_code)
    return page(*agencies.worklist(gate_code, scopes.border_agency(who), g.query["limit"],
                                   g.query["page_token"] or None))
