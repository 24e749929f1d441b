"""Teams and their members."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify

from lscloud import idempotency
from lscloud.auth import allow, principal
from lscloud.idempotency import idempotent
from lscloud.statemachine import Actor
from lscloud.web import query_params, responds, validate_body

from . import teams
from .route_ids import TEAM_ID

bp = Blueprint("community_teams", __name__)
READERS = ("commune-officer", "team-leader", "team-member", "ioc", "operator", "auditor")


@bp.post("/v1/teams")
@allow("commune-officer")
@validate_body("community/team-create.json")
# the team is its own idempotency record: its create-only write forms it once
@idempotent(key_from=lambda body: body.get("id"), in_record=True)
@responds("community/team.json", status=201)
def form_team():
    """Form a team for a village or street group of the officer's commune, with its leader and
    members. The same request again (same officer, same id, same body) is answered with the team it
    formed; another body under that id is a 409 naming the fields that differ."""
    stamp = idempotency.first_request()
    out, replayed = idempotency.created_or_resent(
        lambda: teams.form(g.body, Actor.of(principal()), current_app.config["COMMUNITY_PEERS"], request=stamp),
        lambda judge: teams.records().resend(g.body["id"], judge))
    resp = jsonify(teams.view(out.doc))
    resp.status_code = 201
    return idempotency.mark_replayed(resp) if replayed else resp


@bp.get("/v1/teams")
@allow(*READERS)
@responds("community/team-list.json")
@query_params(("commune", "the commune or ward", {"type": "string", "pattern": "^[0-9]{5}$"}))
def list_teams():
    """The teams of a commune (``?commune=``; by default the caller's own)."""
    commune = g.query["commune"] or principal().unit or ""
    items = teams.of_commune(commune) if commune.isdigit() and len(commune) == 5 else []
    return jsonify({"items": items, "total": len(items), "next_page_token": None})


@bp.get(f"/v1/teams/<{TEAM_ID}>")
@allow(*READERS)
@responds("community/team.json")
def read_team(team_id: str):
    """A team: village, roster (names and roles), when it was formed."""
    return jsonify(teams.view(teams.records().visible(team_id, lambda doc: True).data))


@bp.post(f"/v1/teams/<{TEAM_ID}>/members")
@allow("team-leader", "commune-officer")
@validate_body("community/member-add.json")
@responds("community/team.json")
@idempotent(required=False)
def add_member(team_id: str):
    """Add a member (the team's leader, or the commune's officer)."""
    return jsonify(teams.view(teams.add_member(team_id, g.body, Actor.of(principal())).doc))
