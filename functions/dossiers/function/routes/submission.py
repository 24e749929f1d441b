"""Submission: a dossier online (citizen, business) or at the counter (officer), answered with its receipt."""

from __future__ import annotations

from flask import Blueprint, current_app, g

from lscloud import idempotency
from lscloud.auth import allow, principal
from lscloud.idempotency import idempotent
from lscloud.statemachine import Actor
from lscloud.web import public_path, responds, validate_body, versioned_json

from .. import registry, submission, views
from .answers import ETAG

bp = Blueprint("submission", __name__)


@bp.post("/v1/dossiers")
@allow("citizen", "enterprise", "officer")
@validate_body("dossiers/dossier-create.json", files=True)
# the dossier is its own idempotency record: its create-only write runs the submission once
@idempotent(key_from=lambda body: body.get("id") if isinstance(body, dict) else None, in_record=True)
@responds("dossiers/dossier.json", status=201, headers=ETAG)
def submit_dossier():
    """Submit a dossier online (citizen, business) or at the counter for a citizen (officer); the
    answer carries the receipt: code, appointment date in working days, tracking secret. The same
    request again (same caller, same id and body) is answered with the dossier it created.

    The documents are files uploaded before (``/v1/attachments``), or sent with the dossier in one
    ``multipart/form-data`` request: the JSON in the field ``body``, each file beside it, named by
    its sha256 in ``documents`` like an uploaded one (checked like an upload; up to the blob
    limit together)."""
    actor = Actor.of(principal())
    # refused (the dossier there already, a document or a counter that no longer checks): a
    # resend still gets the first answer (its audit, indexes and event finished if a crash cut
    # them off), another body under a stored id the 409 naming its fields
    outcome, replayed = idempotency.created_or_resent(
        lambda: submission.submit(g.body, actor, current_app.config["DOSSIERS_CATALOG"],
                                  request=idempotency.first_request(), files=g.files),
        lambda judge: registry.RECORDS.resend(g.body["id"], judge))
    item = outcome.item
    resp = versioned_json(views.submitted(item.data, actor), int(item.version), 201)
    resp.headers["Location"] = public_path(f"/v1/dossiers/{item.id}")
    return idempotency.mark_replayed(resp) if replayed else resp
