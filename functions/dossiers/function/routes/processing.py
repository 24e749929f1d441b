"""Processing: the workflow's moves (start, steps, supplements, result, denial, cancellation) and
the applicant's rating. Every move needs an ``Idempotency-Key``."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from lscloud.auth import allow, principal
from lscloud.idempotency import IMPLICIT_S, idempotent
from lscloud.statemachine import Actor
from lscloud.web import responds, validate_body

from .. import processing
from . import answers
from .answers import DOSSIER_ID

bp = Blueprint("processing", __name__)
DOSSIER = "dossiers/dossier.json"


@bp.post(f"/v1/dossiers/<{DOSSIER_ID}>/start")
@allow("officer")
@idempotent()
@responds(DOSSIER)
def start_processing(dossier_id: str):
    """The receiving unit starts processing (the first step becomes active)."""
    return answers.dossier(processing.start(dossier_id, Actor.of(principal())).item)


@bp.post(f"/v1/dossiers/<{DOSSIER_ID}>/steps/complete")
@allow("officer")
@validate_body("dossiers/step-complete.json")
@idempotent()
@responds(DOSSIER)
def complete_step(dossier_id: str):
    """Complete your unit's active step; the next starts (liên thông when it is another agency's)."""
    return answers.dossier(processing.complete_step(dossier_id, Actor.of(principal()), g.body).item)


@bp.post(f"/v1/dossiers/<{DOSSIER_ID}>/supplement-requests")
@allow("officer")
@validate_body("dossiers/supplement-request.json")
@idempotent()
@responds(DOSSIER)
def request_supplement(dossier_id: str):
    """Ask the applicant for missing or corrected documents: the clock stops until they come."""
    return answers.dossier(processing.request_supplement(dossier_id, Actor.of(principal()), g.body).item)


@bp.post(f"/v1/dossiers/<{DOSSIER_ID}>/supplements")
@allow("citizen", "enterprise", "officer")
@validate_body("dossiers/supplement.json")
@idempotent()
@responds(DOSSIER)
def provide_supplement(dossier_id: str):
    """Provide the requested documents (the applicant online, or an officer at the counter): the
    clock restarts and every open deadline moves by the working time spent waiting."""
    return answers.dossier(processing.provide_supplement(dossier_id, Actor.of(principal()), g.body).item)


@bp.post(f"/v1/dossiers/<{DOSSIER_ID}>/result")
@allow("officer")
@validate_body("dossiers/result.json")
@idempotent()
@responds(DOSSIER)
def return_result(dossier_id: str):
    """The last step's unit returns the result document (uploaded first): the dossier is done."""
    return answers.dossier(processing.return_result(dossier_id, Actor.of(principal()), g.body).item)


@bp.post(f"/v1/dossiers/<{DOSSIER_ID}>/deny")
@allow("officer")
@validate_body("dossiers/deny.json")
@idempotent()
@responds(DOSSIER)
def deny_dossier(dossier_id: str):
    """Deny the dossier with the reason the applicant will read (the active step's unit)."""
    return answers.dossier(processing.deny(dossier_id, Actor.of(principal()), g.body).item)


@bp.post(f"/v1/dossiers/<{DOSSIER_ID}>/cancel")
@allow("citizen", "enterprise")
@validate_body("dossiers/cancel.json", optional=True)
@idempotent()
@responds(DOSSIER)
def cancel_dossier(dossier_id: str):
    """The applicant withdraws the dossier, only before processing starts."""
    return answers.dossier(processing.cancel(dossier_id, Actor.of(principal()), g.body.get("reason")).item)


@bp.post(f"/v1/dossiers/<{DOSSIER_ID}>/rating")
@allow("citizen", "enterprise")
@validate_body("dossiers/rating.json")
@idempotent(required=False, implicit_s=IMPLICIT_S, move=True)   # a retry: not "already rated"
@responds("dossiers/rating-record.json", status=201)
def rate_dossier(dossier_id: str):
    """The applicant rates the service once the dossier is finished (done or denied); once."""
    return jsonify(processing.rate(dossier_id, Actor.of(principal()), g.body)), 201
