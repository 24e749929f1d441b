"""Community digital technology teams (Tổ công nghệ số cộng đồng): one per village (thôn, bản) or
street group (khối, tổ dân phố) of a commune, formed by the commune's officer, led by a leader.

Members sign in with their own accounts (``team-member`` / ``team-leader`` tokens, ``sub`` = the
member's identifier, ``unit`` = the commune). The team keeps members by pseudonym only, with the
name the officer gave, so the roster names people without holding their ID numbers. Each member
leads to their teams by :class:`.models.TeamByMember`, keyed by that same pseudonym, so an
erasure request finds the rosters that name a person (:func:`erase_name`).
"""

from __future__ import annotations

from lscloud import communes, errors, peers, pseudonyms
from lscloud.aggregate import Aggregate, NoChange, micros, save_all_quietly, save_quietly
from lscloud.statemachine import Action, Actor, StateMachine, iso, now, parse_iso
from lscloud.store import InvalidKey

from .refusals import NotOnTheTeam, NotYourCommune

MACHINE = StateMachine("community", [
    Action("form", {"new"}, "active", "team.formed", actors={"commune-officer"}),
], states=("active",), noun=("team", "tổ công nghệ số"), state_names_vi={"active": "đang hoạt động"})

MAX_MEMBERS = 30
MEMBERS = "community-members"
"""The purpose of a member's pseudonym: an erasure request asks for the pseudonym of a CCCD by it."""
ERASED = "(đã xóa theo yêu cầu) / (erased on request)"
"""The name a roster shows for a member whose name an erasure request took out."""
ERASE_ACTION = "erase_member_name"


def member_ref(member_id: str) -> str:
    return pseudonyms.pseudonym(MEMBERS, member_id)


def by_member(doc: dict) -> list:
    """The index entries that lead from each member of the roster to the team."""
    from .models import TeamByMember

    return [TeamByMember(p["ref"], doc["id"]) for p in doc["members"]]


def recorded(actor: Actor) -> Actor:
    return actor.pseudonymous("community-actors")


def by_commune(doc: dict) -> list:
    """The entry that lists a new team among its commune's (written with its forming's round)."""
    from .models import TeamByCommune

    return [TeamByCommune(doc["commune"], doc["id"])]


def records() -> Aggregate:
    from .models import Team, TeamAudit

    return Aggregate(Team, machine=MACHINE, source="/community", audit=TeamAudit, mirror=("commune",), event_ids="team:",
                     created_side=by_commune,
                     summary=lambda doc: {"team_id": doc["id"], "commune": doc["commune"], "village": doc["village"],
                                          "members": len(doc["members"])})


def _officer_of(actor: Actor, commune: str, pointer: str) -> None:
    if actor.unit != commune:
        raise NotYourCommune(f"a commune officer acts for their own commune ({actor.unit}), not {commune}",
                               detail_vi="Công chức chỉ thao tác với xã, phường của mình.",
                               errors=[errors.field(pointer, "not your commune")])


def form(body: dict, actor: Actor, directory: peers.PeerClient, request: dict | None = None):
    """Form a team. It is its own idempotency record: ``request`` is what it keeps of the request
    (:func:`lscloud.idempotency.first_request`), so a resend finds it (:meth:`Aggregate.resend`
    then finishes a round a crash cut off: its audit entry, its commune's index, its event)."""
    from .models import Team

    _officer_of(actor, body["commune"], "/commune")
    commune = communes.commune(directory, body["commune"], "/commune")
    people = [{"ref": member_ref(body["leader"]["id"]), "name": body["leader"]["name"], "role": "leader"}]
    for m in body.get("members", []):
        if member_ref(m["id"]) not in {p["ref"] for p in people}:
            people.append({"ref": member_ref(m["id"]), "name": m["name"], "role": "member"})
    doc = {"id": body["id"], "name": body["name"], "commune": commune["code"], "commune_name": commune["name"],
           "village": body["village"], "members": people[:MAX_MEMBERS], "status": "new", "created_at": iso(now())}
    t = MACHINE.apply(doc, "form", recorded(actor))
    # before the roster: a crash in between leaves an entry leading to a team that does not list
    # the person (an erasure reads the roster and finds nothing), never a name no entry leads to
    save_all_quietly(by_member(doc))
    return records().create(Team(doc["id"], data=doc, commune=doc["commune"], request=request), [t])


def add_member(team_id: str, body: dict, actor: Actor):
    """A new member, added by the team's leader or the commune's officer (a repeat adds nothing)."""
    from .models import TeamByMember

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
        save_quietly(TeamByMember(ref, doc["id"]))   # before the roster, as in form (create-only)
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


def erase_name(team_id: str, ref: str, actor: Actor, request: str = "") -> tuple[str, list[str]]:
    """Put :data:`ERASED` in place of the name the team's roster gives the member ``ref``; their
    place (pseudonym, role) stays. ``("erased", the names taken out)`` by this call, ``("already",
    [])`` by an earlier request, ``("absent", [])`` if the roster does not list them (an index entry
    of a write that did not land) or the team is gone. One conditional write through the team's
    aggregate, and an audit entry naming the field, never its value, keyed by the time the name
    went (kept in the roster's entry), so a request made again writes no second one but does write
    one a failure cut off."""
    from .models import Team, TeamAudit

    agg = records()
    at = iso(now())
    names: list[str] = []

    def op(doc: dict):
        names.clear()   # run again on a fresh copy after a lost race
        held = [p for p in doc["members"] if p["ref"] == ref and p["name"] != ERASED]
        if not held:
            raise NoChange
        for p in held:
            names.append(p["name"])
            p.update(name=ERASED, erased_at=at)
        return [], "erased"

    try:
        out = agg.mutate(team_id, op)
    except (Team.DoesNotExist, InvalidKey):
        return "absent", []
    entry = next((p for p in out.doc["members"] if p["ref"] == ref), None)
    if entry is None or not entry.get("erased_at"):
        return "absent", []
    when = parse_iso(entry["erased_at"])
    if out.result == "erased" or not TeamAudit.query(team_id, range_prefix=f"{micros(when):016d}_", limit=1):
        agg.audit_only(out.item, ERASE_ACTION, actor, at=when, details={"fields": ["members.name"],
                                                                       "request": request or None},
                       reason="yêu cầu xóa dữ liệu cá nhân / a personal data erasure request")
    return ("erased", names) if out.result == "erased" else ("already", [])
