"""The simulated bank's routes: our webhooks come in here; operators can look and reconcile."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from lscloud import errors
from lscloud.auth import allow, signed_path
from lscloud.web import app_state, json_body

from . import reconcile, signing, webhooks
from .worker import Worker

bp = Blueprint("bank_sim", __name__)


class BadSignature(errors.Unauthenticated):
    type = "bad-signature"
    title = "Bad signature"


def _worker() -> Worker:
    return current_app.extensions["bank-sim.worker"]


@bp.post("/webhooks")
@allow("public")
def webhook():
    """Receive a soft ATM webhook (signature checked with our own key)."""
    raw = request.get_data(cache=True)
    # we are reached through the gateway: the URL the soft ATM signed carries its prefix
    # as sent (decoded once by the canonical form), as the soft ATM verifies banks' requests
    path = request.headers.get("X-Forwarded-Prefix", "") + signed_path(request)
    if not signing.verify(app_state().settings, request.headers, path, raw):
        raise BadSignature("The webhook signature does not verify.")
    webhooks.on_webhook(_worker(), json_body())
    return jsonify(ok=True)


@bp.get("/v1/records")
@allow("operator", "auditor")
def records():
    """The bank's view of every soft ATM transfer and its accounts."""
    return jsonify(reconcile.records())


@bp.post("/v1/reconcile/<day>")
@allow("operator")
def reconcile_day(day):
    """Refresh unfinished records from the soft ATM, then submit our view of the day."""
    return jsonify(reconcile.refresh_and_reconcile(_worker(), day))
