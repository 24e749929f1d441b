"""Moving a dossier along, as the callers ask: each service finds the dossier the caller may see
(else 404), then applies one :mod:`.workflow` move through the one write path
(:data:`.registry.RECORDS`), re-checked on the fresh document after a lost race.

A client may name the ``step`` it acts on; if another officer moved the dossier on meanwhile, the
answer is 409 instead of acting on a step the client never saw.
"""

from __future__ import annotations

from lscloud import errors, workdays
from lscloud.aggregate import Outcome, delete_quietly, save_quietly
from lscloud.statemachine import Actor, iso, now

from . import attachments, registry, workflow
from .models import Dossier, Rating
from .states import MACHINE


class NotYourDossier(errors.Forbidden):
    type = "not-your-dossier"
    title, title_vi = "Not your dossier", "Không phải hồ sơ của bạn"


class AlreadyRated(errors.Conflict):
    type = "already-rated"
    title, title_vi = "Already rated", "Đã đánh giá"


def _expect_step(doc: dict, body: dict, action: str) -> None:
    want = body.get("step")
    step = workflow.active_step(doc)
    if want and (step is None or step["code"] != want):
        raise MACHINE.illegal(action, doc["status"],
                              f"step {want!r} is not the active step (now: {step['code'] if step else 'none'})")


def _move(dossier_id: str, actor: Actor, op) -> Outcome[Dossier]:
    registry.visible(dossier_id, actor)
    return registry.RECORDS.mutate(dossier_id, op)


def start(dossier_id: str, actor: Actor) -> Outcome[Dossier]:
    at, cal = now(), workdays.load()
    return _move(dossier_id, actor, lambda doc: workflow.start(doc, actor, at, cal))


def complete_step(dossier_id: str, actor: Actor, body: dict) -> Outcome[Dossier]:
    at, cal = now(), workdays.load()

    def op(doc):
        _expect_step(doc, body, "complete_step")
        return workflow.complete_step(doc, actor, at, cal, body.get("note"))

    return _move(dossier_id, actor, op)


def request_supplement(dossier_id: str, actor: Actor, body: dict) -> Outcome[Dossier]:
    at = now()

    def op(doc):
        _expect_step(doc, body, "request_supplement")
        return workflow.request_supplement(doc, actor, at, body["missing"], body["message"])

    return _move(dossier_id, actor, op)


def provide_supplement(dossier_id: str, actor: Actor, body: dict) -> Outcome[Dossier]:
    doc = registry.visible(dossier_id, actor).data
    at, cal = now(), workdays.load()
    procedure = {"documents": [{"code": d["code"], "name": d.get("name")} for d in doc["documents"]]}
    documents = attachments.refs(body["documents"], "/documents", procedure, actor, at)
    return registry.RECORDS.mutate(dossier_id, lambda d: workflow.provide_supplement(d, actor, at, cal, documents))


def return_result(dossier_id: str, actor: Actor, body: dict) -> Outcome[Dossier]:
    registry.visible(dossier_id, actor)
    at = now()
    ref = attachments.refs([{"code": "result", "sha256": body["sha256"], "filename": body.get("filename")}],
                           "/result", None, actor, at)[0]
    result = {k: ref[k] for k in ("sha256", "size", "media_type", "filename")}

    def op(doc):
        _expect_step(doc, body, "finish")
        return workflow.finish(doc, actor, at, result, body.get("note"))

    return registry.RECORDS.mutate(dossier_id, op)


def deny(dossier_id: str, actor: Actor, body: dict) -> Outcome[Dossier]:
    at = now()

    def op(doc):
        _expect_step(doc, body, "deny")
        return workflow.deny(doc, actor, at, body["reason"])

    return _move(dossier_id, actor, op)


def cancel(dossier_id: str, actor: Actor, reason: str | None) -> Outcome[Dossier]:
    at = now()
    return _move(dossier_id, actor, lambda doc: workflow.cancel(doc, actor, at, reason))


def rate(dossier_id: str, actor: Actor, body: dict) -> dict:
    """The applicant rates a finished dossier, once: the rating is claimed first (create-only), and
    given back if the dossier's update then fails, so a retry can rate."""
    doc = registry.visible(dossier_id, actor).data
    if doc["owner"] != actor.sub:
        raise NotYourDossier("Only the applicant rates a dossier.", detail_vi="Chỉ người nộp hồ sơ được đánh giá.")
    workflow.rateable(doc)
    at = now()
    rating = {"dossier_id": doc["id"], "code": doc["code"], "score": body["score"], "comment": body.get("comment"),
              "aspects": body.get("aspects", {}), "at": iso(at), "procedure": doc["procedure"]["code"],
              "agency": doc["agency"]}
    if not save_quietly(Rating(doc["id"], data=rating)):
        raise AlreadyRated("This dossier has already been rated.", detail_vi="Hồ sơ này đã được đánh giá.")
    try:
        registry.RECORDS.mutate(doc["id"], lambda d: workflow.rate(d, actor, at, rating["score"]))
    except BaseException:
        delete_quietly(Rating, doc["id"])
        raise
    return rating
