"""Submission: a dossier online (citizen, business) or at the counter (officer), answered with its receipt."""

from __future__ import annotations

from flask import Blueprint, current_app, g

from lscloud.auth import allow, principal
from lscloud.idempotency import idempotent
from lscloud.statemachine import Actor
from lscloud.web import responds, validate_body, versioned_json

from .. import submission, views
from .answers import ETAG

bp = Blueprint("submission", __name__)


@bp.post("/v1/dossiers")
@allow("citizen", "enterprise", "officer")
@validate_body("dossiers/dossier-create.json")
@idempotent(key_from=lambda body: body.get("id") if isinstance(body, dict) else None)
@responds("dossiers/dossier.json", status=201, headers=ETAG)
def submit_dossier():
    """Submit a dossier online (citizen, business) or at the counter for a citizen (officer); the
    answer carries the receipt: code, appointment date in working days, tracking secret."""
    actor = Actor.of(principal())
    outcome = submission.submit(g.body, actor, current_app.config["DOSSIERS_CATALOG"])
    resp = versioned_json(views.submitted(outcome.doc, actor), outcome.version, 201)
    resp.headers["Location"] = f"/v1/dossiers/{outcome.doc['id']}"
    return resp
