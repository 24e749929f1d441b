"""What team members do in the field, logged offline and synced in batches, then verified.

    (new) ──log──▶ submitted ──verify──▶ verified   (counts from now on)
                       │  ▲    └──reject──▶ rejected
                       └──┘ revise (a newer revision from the device)

**Offline sync.** The field app queues activities while coverage is weak and uploads them in
batches. Each carries the ``client_id`` the app gave it, which is its id here: a batch sent twice,
or cut into pieces, stores each activity once. Each item gets its own answer (``created``,
``duplicate``, ``updated``, ``conflict``, ``rejected``), so one bad item never loses the others.

**Conflicting edits — the rule.** The app numbers its local edits of an activity (``revision``,
1, 2 …). For an activity already here:

1. another member's activity under the same client id is never touched (``conflict: taken``);
2. the same content again is a ``duplicate`` (nothing written);
3. once the commune officer has verified or rejected it, the decision stands: later edits are
   refused (``conflict: decided``; a correction is a new activity);
4. otherwise the higher revision wins (``updated``); an equal or lower revision with other content
   is refused (``conflict: stale``) and the answer carries the stored revision, so the app can
   show the member what the server holds.

Households are personal data: the app sends the household's identifier (its code in the commune's
household register, or the head of household's ID number), and only its pseudonym is kept.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from lscloud import errors, outbox, pseudonyms
from lscloud.aggregate import Aggregate, NoChange, delete_quietly
from lscloud.statemachine import Action, Actor, StateMachine, iso, now, parse_iso

from . import tallies, targets, teams
from .refusals import NotOnTheTeam

MACHINE = StateMachine("community", [
    Action("log", {"new"}, "submitted", "activity.logged", actors={"team-member", "team-leader"}),
    Action("revise", {"submitted"}, "submitted", "activity.revised", actors={"team-member", "team-leader"}),
    Action("verify", {"submitted"}, "verified", "activity.verified", actors={"commune-officer"}),
    Action("reject", {"submitted"}, "rejected", "activity.rejected", actors={"commune-officer"}),
], states=("submitted", "verified", "rejected"), terminal={"verified", "rejected"}, noun=("activity", "hoạt động"),
   state_names_vi={"submitted": "chờ xác nhận", "verified": "đã xác nhận", "rejected": "bị từ chối"})

CLOCK_SKEW = timedelta(minutes=10)
MAX_AGE = timedelta(days=366)
_CONTENT = ("team", "kind", "household", "details", "happened_at", "photo", "note")


def queued(doc: dict) -> list:
    """A new activity's place on its commune officer's queue, from its document alone (a resend
    writes it again if missing)."""
    from .models import Pending

    return [Pending(doc["commune"], doc["id"])]


def records() -> Aggregate:
    from .models import Activity, ActivityAudit

    return Aggregate(Activity, machine=MACHINE, source="/community", audit=ActivityAudit,
                     summary=lambda doc: {"activity_id": doc["id"], "team": doc["team"], "commune": doc["commune"],
                                          "kind": doc["kind"], "status": doc["status"], "revision": doc["revision"]},
                     created_side=queued)


def household_ref(household: str) -> str:
    return pseudonyms.pseudonym("community-households", household.strip().upper())


def content_hash(item: dict) -> str:
    """A digest of what the member said (the revision number is not content)."""
    body = {k: item.get(k) for k in _CONTENT}
    if body["household"]:
        body["household"] = household_ref(body["household"])
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _check(i: int, item: dict, claim_photo) -> None:
    at = f"/activities/{i}"
    kind, details = item["kind"], item.get("details") or {}
    if kind in targets.HOUSEHOLD_KINDS and not item.get("household"):
        raise errors.Invalid.at(f"{at}/household", f"a {kind} names the household", "Hoạt động này cần mã hộ.")
    if kind == "training" and not details.get("participants"):
        raise errors.Invalid.at(f"{at}/details/participants", "a training counts its participants",
                                "Buổi tập huấn cần số người tham gia.")
    if kind == "app-install" and details.get("app") not in targets.APPS:
        raise errors.Invalid.at(f"{at}/details/app", f"app is one of {', '.join(targets.APPS)}",
                                "Ứng dụng phải là VNeID hoặc Công dân số Xứ Lạng.")
    try:
        happened = parse_iso(item["happened_at"])
    except ValueError:          # RFC 3339 allows a leap second (…:60) that Python's datetime does not
        happened = None
    if happened is None or happened > now() + CLOCK_SKEW or happened < now() - MAX_AGE:
        raise errors.Invalid.at(f"{at}/happened_at", "not in the future, nor more than a year ago",
                                "Thời điểm không hợp lệ.")
    if item.get("photo") and not claim_photo(item["photo"]):
        raise errors.Invalid.at(f"{at}/photo", "upload the photo before the batch that names it",
                                "Cần tải ảnh lên trước.")


def _one(i: int, item: dict, actor: Actor, team_doc, claim_photo) -> dict:
    from .models import Activity

    cid = item["client_id"]
    if team_doc is None:
        raise errors.Invalid.at(f"/activities/{i}/team", "no such team", "Không có tổ này.")
    if teams.role_in(team_doc, actor) is None:
        raise NotOnTheTeam("you are not on this team's roster", detail_vi="Bạn không thuộc tổ này.",
                               errors=[errors.field(f"/activities/{i}/team", "not your team")])
    _check(i, item, claim_photo)
    author = teams.member_ref(actor.sub)
    digest = content_hash(item)
    doc = {"id": cid, "team": team_doc["id"], "team_name": team_doc["name"], "commune": team_doc["commune"],
           "commune_name": team_doc["commune_name"], "village": team_doc["village"], "kind": item["kind"],
           "household_ref": household_ref(item["household"]) if item.get("household") else None,
           "details": item.get("details") or {}, "happened_at": item["happened_at"], "photo": item.get("photo"),
           "note": item.get("note"), "revision": item["revision"], "author": author, "content_hash": digest,
           "status": "new", "received_at": iso(now())}
    agg = records()
    try:
        t = MACHINE.apply(doc, "log", teams.recorded(actor))
        # its place on the officer's queue (queued) goes out with its audit entry and event
        out = agg.create(Activity(cid, data=doc), [t])
        return {"client_id": cid, "result": "created", "status": out.doc["status"], "revision": doc["revision"]}
    except errors.Conflict:
        pass
    answer: dict = {}

    def op(stored):
        if stored["author"] != author:   # another member's: nothing of it (its state, its revision) is told
            answer.clear()
            answer.update(client_id=cid, result="conflict", why="taken")
            raise NoChange
        answer.update(client_id=cid, status=stored["status"], revision=stored["revision"])
        if stored["content_hash"] == digest:
            answer.update(result="duplicate")
        elif stored["status"] != "submitted":
            answer.update(result="conflict", why="decided")
        elif item["revision"] <= stored["revision"]:
            answer.update(result="conflict", why="stale")
        else:
            for k in ("kind", "household_ref", "details", "happened_at", "photo", "note", "revision", "content_hash"):
                stored[k] = doc[k]
            answer.update(result="updated", revision=doc["revision"])
            return [MACHINE.apply(stored, "revise", teams.recorded(actor), details={"revision": doc["revision"]})]
        raise NoChange

    out = agg.mutate(cid, op)
    if answer["result"] == "duplicate" and int(out.item.version) == 1:
        # the member's own activity sent again, unchanged since its create: finish the create's
        # round (its queue entry, audit entry, event) if a crash or a store failure cut it off;
        # op judged the author and the content, so resend needs no stamp of its own
        agg.resend(cid, lambda _request: True)
    return answer


def sync(items: list[dict], actor: Actor, claim_photo) -> list[dict]:
    """Store a batch from the field app; one answer per item, in order."""
    from .models import Team

    seen: dict[str, dict | None] = {}
    results = []
    for i, item in enumerate(items):
        if item["team"] not in seen:
            try:
                seen[item["team"]] = Team.get(item["team"]).data
            except Team.DoesNotExist:
                seen[item["team"]] = None
        try:
            results.append(_one(i, item, actor, seen[item["team"]], claim_photo))
        except errors.DomainError as exc:
            results.append({"client_id": item["client_id"], "result": "rejected", "errors": exc.errors,
                            "message": exc.detail, "message_vi": exc.detail_vi})
    return results


def visible(doc: dict, actor: Actor) -> bool:
    if actor.kind == "commune-officer":
        return doc["commune"] == actor.unit
    if actor.kind in ("team-member", "team-leader"):
        mine = bool(actor.sub) and doc["author"] == teams.member_ref(actor.sub)
        return mine or (actor.kind == "team-leader" and actor.unit == doc["commune"])
    return actor.kind in ("operator", "auditor")


def decide(activity_id: str, action: str, actor: Actor, reason: str | None = None):
    """The commune officer verifies or rejects; a verified activity is counted (exactly once)."""
    from .models import Pending

    agg = records()
    agg.visible(activity_id, lambda doc: actor.kind == "commune-officer" and doc["commune"] == actor.unit)
    target = MACHINE[action].target

    def op(doc):
        if doc["status"] == target:
            raise NoChange       # a repeat of the same decision: the answer again
        return [MACHINE.apply(doc, action, teams.recorded(actor), reason=reason)]

    out = agg.mutate(activity_id, op)
    delete_quietly(Pending, out.doc["commune"], activity_id)
    progress = None
    if out.doc["status"] == "verified":
        # repeat-safe: a repeat (or a retry after a crash here) counts nothing twice, and the event's
        # id is the same, so JetStream keeps one
        progress, _ = tallies.count_in(out.doc)
        outbox.publish([agg.fact("progress.updated", {**tallies.view(progress), "activity_id": activity_id},
                                 subject=out.doc["commune"], id=f"{out.doc['commune']}.{activity_id}.progress")])
    return out, progress


def pending(commune: str, limit: int = 100) -> list[dict]:
    from .models import Activity, Pending

    out = []
    for row in Pending.query(commune, limit=limit):
        try:
            doc = Activity.get(row.activity_id).data
        except Activity.DoesNotExist:
            continue
        if doc["status"] == "submitted":
            out.append(doc)
    return out
