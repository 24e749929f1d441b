"""Targets, progress and rankings."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify

from lscloud import communes
from lscloud.auth import allow, principal
from lscloud.web import if_match_version, query_params, responds, takes_if_match, validate_body, versioned_json

from .refusals import NotYourCommune
from . import progress, tallies
from .route_ids import COMMUNE

bp = Blueprint("community_progress", __name__)
READERS = ("commune-officer", "team-leader", "team-member", "supervisor", "ioc", "operator", "auditor")


TARGET_VERSIONED = {"ETag": 'The version of the commune\'s household target ("0": never set): send it in If-Match '
                            "to set it (counting does not change it)"}


@bp.put(f"/v1/communes/<{COMMUNE}>/target")
@allow("commune-officer")
@takes_if_match(required="once-set")
@validate_body("community/target.json")
@responds("community/progress.json", headers=TARGET_VERSIONED)
def set_target(commune: str):
    """The commune's number of households (from its register): the base of its Resolution 49
    shares. Once set, ``If-Match`` (the ETag of the progress as read) is required: 412 when another
    officer set it since, 428 without it; the same figure and source again are answered as they stand."""
    who = principal()
    if who.unit != commune:
        raise NotYourCommune("a commune officer sets their own commune's figures",
                               detail_vi="Công chức chỉ cập nhật số liệu của xã, phường mình.")
    version = if_match_version()
    unit = communes.commune(current_app.config["COMMUNITY_PEERS"], commune, "commune")
    data = tallies.set_households(commune, unit["name"], g.body["households"], g.body["source"],
                                  {"role": who.role, "unit": who.unit}, version)
    return versioned_json(tallies.view(data), tallies.target_version(data))


@bp.get(f"/v1/communes/<{COMMUNE}>/progress")
@allow(*READERS)
@responds("community/progress.json", headers=TARGET_VERSIONED)
def commune_progress(commune: str):
    """Households reached per indicator against the targets, verified activities by kind."""
    return versioned_json(*progress.of_commune(commune))


@bp.get("/v1/rankings")
@allow(*READERS)
@responds("community/rankings.json")
@query_params(("of", "communes or teams", {"type": "string", "enum": ["communes", "teams"], "default": "communes"}),
              ("commune", "teams of one commune", {"type": "string", "pattern": "^[0-9]{5}$"}))
def rankings():
    """Communes by their Resolution 49 share (then households reached); teams by verified activities."""
    if g.query["of"] == "teams":
        items = progress.rank_teams(g.query["commune"])
    else:
        items = progress.rank_communes()
    return jsonify({"items": items, "total": len(items), "next_page_token": None})
