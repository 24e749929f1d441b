"""Declarations: create, list, read, and what the enterprise, the operators and the yard do to one."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from lscloud import idempotency
from lscloud.auth import allow
from lscloud.idempotency import idempotent
from lscloud.web import page_params, public_path, query_params, raw_body, responds, validate_body

from .. import booking, declaring, ledger, queueing, scopes
from ..models import Declaration
from .common import DECLARATION, DECLARATION_ID, VERSIONED, actor, answer, gate, page, platform, visible

bp = Blueprint("declarations", __name__)


def _id_of(body):
    return body.get("id") if isinstance(body, dict) else None


@bp.post("/v1/declarations")
@allow("enterprise")
@validate_body("border/declaration-create.json")
# the declaration is its own idempotency record: its create-only write runs the create once
@idempotent(key_from=_id_of, in_record=True)
@responds(DECLARATION, status=201, headers=VERSIONED)
def create_declaration():
    """Create a declaration (draft, or submitted with `submit`, and booked with `booking`). The same
    request again (same caller, same id and body) is answered with the declaration it created."""
    who = actor()

    def create():
        doc = declaring.normalised(g.body, who)
        return declaring.create(doc, who, submit=bool(g.body.get("submit")), slot_request=g.body.get("booking"),
                                gate=gate(g.body["gate"]), request=idempotency.first_request())

    # refused (the declaration there already, a slot filled since): a resend still gets the first
    # answer (its audit, indexes and events finished if a crash cut them off), another body under
    # a stored id the 409 naming its fields
    out, replayed = idempotency.created_or_resent(
        create, lambda judge: ledger.RECORDS.resend(g.body["id"], judge))
    resp = answer(out, 201)
    resp.headers["Location"] = public_path(f"/v1/declarations/{out.doc['id']}")
    return idempotency.mark_replayed(resp) if replayed else resp


@bp.get("/v1/declarations")
@allow("enterprise", "driver")
@responds(DECLARATION, page=True)
@query_params(*page_params(default_limit=20))
def list_declarations():
    """Your own declarations (enterprise: yours; driver: those naming you), newest first."""
    return page(*ledger.of_owner(actor(), g.query["limit"], g.query["page_token"] or None))


@bp.get(f"/v1/declarations/<{DECLARATION_ID}>")
@allow(*scopes.READERS)
@responds(DECLARATION, headers=VERSIONED)
def get_declaration(declaration_id: str):
    """One declaration with what can happen next and who still has to decide."""
    return answer(visible(declaration_id))


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/submit")
@allow("enterprise")
@idempotent()
@responds(DECLARATION)
def submit_declaration(declaration_id: str):
    """Submit a draft: agencies see it, customs' selectivity gives it a first risk lane."""
    visible(declaration_id)
    return answer(declaring.submit(declaration_id, actor()))


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/booking")
@allow("enterprise", "operator")
@validate_body("border/booking.json")
@idempotent()
@responds(DECLARATION)
def book_slot(declaration_id: str):
    """Book a slot: living queue (first free hour) or a reservation of a chosen hour."""
    decl = visible(declaration_id)
    return answer(booking.book(declaration_id, actor(), g.body, gate(decl.doc["gate"])))


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/cancel")
@allow("enterprise", "operator")
@validate_body("border/cancel.json", optional=True)
@idempotent()
@responds(DECLARATION)
def cancel_declaration(declaration_id: str):
    """Cancel before the truck is called (its seat is freed)."""
    reason = g.body.get("reason")
    visible(declaration_id)
    return answer(declaring.cancel(declaration_id, actor(), reason))


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/arrival")
@allow("yard-operator")
@idempotent()
@responds(DECLARATION)
def register_arrival(declaration_id: str):
    """Register the truck's arrival in the waiting area (it joins the yard queue)."""
    return _at_its_gate(declaration_id, queueing.arrive)


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/at-gate")
@allow("gate-operator")
@idempotent()
@responds(DECLARATION)
def register_at_gate(declaration_id: str):
    """Register that a called truck reached the gate within its deadline."""
    return _at_its_gate(declaration_id, queueing.reach_gate)


def _at_its_gate(declaration_id: str, move):
    """A gate-bound operator's move, only at the declaration's own gate."""
    decl, who = visible(declaration_id), actor()
    scopes.at_gate(who, decl.doc["gate"])
    return answer(move(declaration_id, who, decl.doc["gate"]))


@bp.get(f"/v1/declarations/<{DECLARATION_ID}>/position")
@allow(*scopes.READERS)
@responds("border/position.json")
def get_position(declaration_id: str):
    """The truck's place in the yard queue and why it is there."""
    return jsonify(queueing.where_read(lambda: visible(declaration_id).doc, platform(), declaration_id,
                                       lambda: Declaration.located(declaration_id))[1])


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/priority")
@allow("operator")
@validate_body("border/priority.json")
@idempotent()
@responds(DECLARATION)
def grant_priority(declaration_id: str):
    """Grant the priority lane (perishable, emergency, diplomatic) with a reason."""
    visible(declaration_id)
    return answer(declaring.grant_priority(declaration_id, actor(), g.body["category"], g.body["reason"]))


@bp.post(f"/v1/declarations/<{DECLARATION_ID}>/attachments")
@allow("enterprise")
@raw_body("application/pdf", "image/png", "image/jpeg")
@query_params(("kind", "What the document is.", {"type": "string", "default": "other",
                                                  "enum": list(declaring.ATTACHMENT_KINDS)}),
              ("filename", "The original file name (shown to officers).", {"type": "string", "maxLength": 200}))
@idempotent(required=False)
@responds(DECLARATION, status=201)
def add_attachment(declaration_id: str):
    """Attach a document (PDF, PNG, JPEG; stored content-addressed in the object store)."""
    visible(declaration_id)
    return answer(declaring.attach(declaration_id, actor(), g.query["kind"], request.get_data(), request.mimetype,
                                   g.query["filename"]), 201)


@bp.get(f"/v1/declarations/<{DECLARATION_ID}>/audit")
@allow("enterprise", "officer", "operator", "auditor")
@responds("border/audit-entry.json", page=True)
def get_audit(declaration_id: str):
    """The declaration's audit trail: who, which agency, when, why — oldest first."""
    visible(declaration_id)
    return page(ledger.trail(declaration_id))
