"""Community digital technology teams (Tổ công nghệ số cộng đồng): one per village (thôn, bản) or
street group (khối, tổ dân phố) of a commune, formed by the commune's officer, led by a leader.

Members sign in with their own accounts (``team-member`` / ``team-leader`` tokens, ``sub`` = the
member's identifier, ``unit`` = the commune). The team keeps members by pseudonym only, with the
name the officer gave, so the roster names people without holding their ID numbers.
"""

from __future__ import annotations

from lscloud import communes, errors, peers, pseudonyms
from lscloud.aggregate import Aggregate, NoChange, save_quietly
from lscloud.statemachine import Action, Actor, StateMachine, iso, now

from .refusals import NotOnTheTeam, NotYourCommune

MACHINE = StateMachine("community", [
    Action("form", {"new"}, "active", "team.formed", actors={"commune-officer"}),
], states=("active",), noun=("team", "tổ công nghệ số"), state_names_vi={"active": "đang hoạt động"})

MAX_MEMBERS = 30


def member_ref(member_id: str) -> str:
    return pseudonyms.pseudonym("community-members", member_id)


def recorded(actor: Actor) -> Actor:
    return actor.pseudonymous("community-actors")


def records() -> Aggregate:
    from .models import Team, TeamAudit

    return Aggregate(Team, machine=MACHINE, source="/community", audit=TeamAudit, mirror=("commune",), event_ids="team:",
                     summary=lambda doc: {"team_id": doc["id"], "commune": doc["commune"], "village": doc["village"],
                                          "members": len(doc["members"])})


def _officer_of(actor: Actor, commune: str, pointer: str) -> None:
    if actor.unit != commune:
        raise NotYourCommune(f"a commune officer acts for their own commune ({actor.unit}), not {commune}",
                               detail_vi="Công chức chỉ thao tác với xã, phường của mình.",
                               errors=[errors.field(pointer, "not your commune")])


def form(body: dict, actor: Actor, directory: peers.PeerClient):
    from .models import Team, TeamByCommune

    _officer_of(actor, body["commune"], "/commune")
    commune = communes.commune(directory, body["commune"], "/commune")
    people = [{"ref": member_ref(body["leader"]["id"]), "name": body["leader"]["name"], "role": "leader"}]
    for m in body.get("members", []):
        if member_ref(m["id"]) not in {p["ref"] for p in people}:
            people.append({"ref": member_ref(m["id"]), "name": m["name"], "role": "member"})
    doc = {"id": body["id"], "name": body["name"], "commune": commune["code"], "commune_name": commune["name"],
           "village": body["village"], "members": people[:MAX_MEMBERS], "status": "new", "created_at": iso(now())}
    t = MACHINE.apply(doc, "form", recorded(actor))
    out = records().create(Team(doc["id"], data=doc, commune=doc["commune"]), [t])
    save_quietly(TeamByCommune(doc["commune"], doc["id"]))
    return out


def add_member(team_id: str, body: dict, actor: Actor):
    """A new member, added by the team's leader or the commune's officer (a repeat adds nothing)."""
    ref = member_ref(body["id"])

    def op(doc):
        if actor.kind == "commune-officer":
            _officer_of(actor, doc["commune"], "/id")
        elif role_in(doc, actor) != "leader":
            raise NotOnTheTeam("only the team's leader or the commune's officer adds members",
                                   detail_vi="Chỉ tổ trưởng hoặc công chức xã được thêm thành viên.")
        if any(p["ref"] == ref for p in doc["members"]):
            raise NoChange
        if len(doc["members"]) >= MAX_MEMBERS:
            raise errors.Conflict(f"a team has at most {MAX_MEMBERS} members", detail_vi="Tổ đã đủ thành viên.")
        doc["members"].append({"ref": ref, "name": body["name"], "role": "member"})
        return [MACHINE.note(doc, "add_member", "member.added", recorded(actor), details={"members": len(doc["members"])})]

    return records().mutate(team_id, op)


def role_in(doc: dict, actor: Actor) -> str | None:
    """``leader`` / ``member`` if the caller is on the team's roster, else None."""
    if not actor.sub or actor.kind not in ("team-member", "team-leader"):
        return None
    ref = member_ref(actor.sub)
    return next((p["role"] for p in doc["members"] if p["ref"] == ref), None)


def view(doc: dict) -> dict:
    return {**doc, "members": [{"name": p["name"], "role": p["role"]} for p in doc["members"]]}


def of_commune(commune: str) -> list[dict]:
    from .models import Team, TeamByCommune

    out = []
    for row in TeamByCommune.query(commune, limit=500):
        try:
            out.append(view(Team.get(row.team_id).data))
        except Team.DoesNotExist:
            continue
    return out
