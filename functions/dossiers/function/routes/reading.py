"""Reading: the dossiers a caller works with, one dossier, its receipt and audit trail, and the
public tracking by receipt code and secret."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from lscloud.auth import allow, principal
from lscloud.query import Param
from lscloud.statemachine import Actor, now
from lscloud.web import page_params, query_params, responds

from .. import registry, views
from ..states import STATES
from . import answers
from .answers import DOSSIER_ID, ETAG, READERS

bp = Blueprint("reading", __name__)
_RECEIPT_FIELD = {"type": "string", "minLength": 1, "maxLength": 32}


@bp.get("/v1/dossiers")
@allow("citizen", "enterprise", "officer", "supervisor")
@responds("dossiers/dossier.json", page=True)
@query_params(*page_params(default_limit=20),
              ("status", "Only dossiers in this state.", {"type": "string", "enum": list(STATES)}),
              ("code", "Only the dossier with this receipt code (e.g. LS-261122-7K3QZP), if you may see it "
                       "(the rule of GET /v1/dossiers/{id}): at most one item, none for a code that is not "
                       "yours as for one nobody was given.", _RECEIPT_FIELD))
def list_dossiers():
    """Your dossiers, newest first (citizen, business); your unit's (officer) and your agency's
    (supervisor), oldest first. ``?code=`` finds one by the code its receipt prints."""
    actor, at = Actor.of(principal()), now()
    if g.query["code"]:
        # a filter, not a second meaning of /v1/dossiers/{id}: ids are client-chosen and their pattern
        # admits a receipt-code-shaped one, which would then name two dossiers
        found = registry.by_code(g.query["code"], actor)
        docs = [found.data] if found and (not g.query["status"] or found.data["status"] == g.query["status"]) else []
        return jsonify({"items": [views.dossier(d, actor, at) for d in docs], "total": len(docs),
                        "next_page_token": None})
    docs, next_token = registry.listing(actor, g.query["limit"], g.query["page_token"] or None, g.query["status"])
    items = [views.dossier(d, actor, at) for d in docs]
    return jsonify({"items": items, "total": len(items), "next_page_token": next_token})


@bp.get(f"/v1/dossiers/<{DOSSIER_ID}>")
@allow(*READERS)
@responds("dossiers/dossier.json", headers=ETAG)
def get_dossier(dossier_id: str):
    """One dossier: state, steps with their deadlines, pauses, the clock, what can happen next."""
    return answers.dossier(registry.visible(dossier_id, Actor.of(principal())))


@bp.get(f"/v1/dossiers/<{DOSSIER_ID}>/receipt")
@allow(*READERS)
@responds("dossiers/receipt.json")
def get_receipt(dossier_id: str):
    """The receipt (giấy tiếp nhận và hẹn trả kết quả): code, appointment, documents, fees."""
    actor = Actor.of(principal())
    return jsonify(views.receipt_for(registry.visible(dossier_id, actor).data, actor))


@bp.get(f"/v1/dossiers/<{DOSSIER_ID}>/audit")
@allow(*READERS)
@responds("dossiers/audit-entry.json", page=True)
def get_audit(dossier_id: str):
    """The audit trail: every transition and change, who (agency, unit), when and why."""
    registry.visible(dossier_id, Actor.of(principal()))
    items = registry.RECORDS.trail(dossier_id)
    return jsonify({"items": items, "total": len(items), "next_page_token": None})


@bp.get("/v1/track")
@allow("public")
@responds("dossiers/track.json", headers={"Content-Language": "vi or en (Accept-Language)"})
@query_params(Param("code", "The dossier code on the receipt (e.g. LS-261122-7K3QZP).", _RECEIPT_FIELD, required=True),
              Param("secret", "The tracking secret printed on the receipt.", _RECEIPT_FIELD, required=True))
def track():
    """Public tracking by receipt code + tracking secret: state, appointment, current step, what is
    missing. No personal data. A wrong code or secret answers the same 404. The state is named in
    Vietnamese and English (``status_vi``, ``status_en``); Content-Language says which one
    Accept-Language prefers (vi or en; vi when it names neither)."""
    lang = request.accept_languages.best_match(views.TRACK_LANGUAGES, default="vi")
    resp = jsonify(views.track(registry.tracked(g.query["code"], g.query["secret"]), now()))
    resp.headers["Content-Language"] = lang
    resp.vary.add("Accept-Language")
    return resp
