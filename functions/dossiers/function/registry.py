"""The dossiers in the store: one write path, the receipt codes, the indexes, and who sees what.

Every change goes through :data:`RECORDS` (:class:`lscloud.aggregate.Aggregate`): read, apply one
:mod:`.workflow` move to the fresh document, write it back under ``If-Match``; a lost race reads
again and re-applies, so two officers acting at once never overwrite each other (the second one's
action is re-checked against what the first did, and answers 409 if it no longer applies). Audit
entries and events follow the committed write; the transitions counter and, once a dossier is
finished, its indexes (:mod:`.models`) follow them.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from concurrent.futures import Future
from datetime import datetime

from lscloud import errors
from lscloud.aggregate import Aggregate, Outcome, delete_quietly, give_back, micros, save_quietly, side_pool
from lscloud.query import unissued_page_token
from lscloud.statemachine import Actor, parse_iso
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey, keys
from lscloud.workdays import TZ, Calendar

from . import clocks, metrics, workflow
from .models import AuditEntry, DayIndex, Dossier, DossierCode, OpenIndex, OwnerRecent, WorkIndex
from .states import APPLICANTS, MACHINE

log = logging.getLogger("dossiers.registry")
SOURCE = "/dossiers"
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_POSITION_RE = re.compile(r"[0-9]{16}_[A-Za-z0-9_]{1,200}")   # an entry's "<µs received>_<id>", ASCII only


def safe(part: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in part or "_")


def summary(doc: dict) -> dict:
    """What events carry of the dossier: no personal data. The applicant's CCCD or tax code is not
    in them (the stream keeps an event 30 days and its dead letter a year, for every function that
    reads it): a notifier that must reach the applicant reads the dossier by its ``dossier_id``."""
    step = workflow.active_step(doc)
    return {"dossier_id": doc["id"], "code": doc["code"], "status": doc["status"],
            "procedure": doc["procedure"]["code"], "agency": doc["agency"], "unit": doc["unit"],
            "channel": doc["channel"], "deadline": doc["deadline"],
            "current_step": step["code"] if step else None, "current_agency": step["agency"] if step else None}


ACTORS_PURPOSE = "dossiers-actors"


def event_actor(actor: Actor) -> Actor:
    """An applicant as a transition's event names them: by pseudonym, since a citizen's subject is
    their CCCD and a household business's tax code its owner's. The audit entry keeps the clear
    subject (the dossier's own record). An officer stays in clear: a civil servant acts in office,
    and consumers match officers by subject (as :mod:`.signed_results` does with the documents
    function's events)."""
    return actor.pseudonymous(ACTORS_PURPOSE) if actor.kind in APPLICANTS else actor


def _counted(outcome: Outcome) -> None:
    for t in outcome.transitions:
        metrics.transition(t.fact, outcome.doc)


def _finished(doc: dict) -> None:
    """The stats read these indexes right after the answer: written before it."""
    try:
        day = parse_iso(doc["finished_at"]).astimezone(TZ).date().isoformat()
        save_quietly(DayIndex(day, f"f_{safe(doc['id'])}", dossier_id=doc["id"]))
        delete_quietly(OpenIndex, "open", doc["id"])
    except Exception:  # noqa: BLE001 - indexes; stats re-check the document's state anyway
        log.exception("finishing indexes of %s failed", doc.get("id"))


# -- a new dossier --------------------------------------------------------------------------------

def new_code(at: datetime) -> str:
    """The receipt code: LS-<local yymmdd>-<6 characters>, unambiguous letters and digits."""
    return f"LS-{at.astimezone(TZ):%y%m%d}-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


def reserve_code(dossier_id: str, at: datetime) -> str:
    for _ in range(8):
        code = new_code(at)
        if save_quietly(DossierCode(code, dossier_id=dossier_id)):
            return code
    raise ConditionalCheckFailed("no free dossier code after 8 tries")


def work_keys(doc: dict) -> set[tuple[str, str]]:
    return {(s["agency"], s.get("unit") or "_") for s in doc["steps"]}


def already_there(dossier_id: str) -> errors.Conflict:
    return errors.Conflict(f"a dossier with id {dossier_id!r} already exists",
                           detail_vi=f"Đã có hồ sơ với mã {dossier_id!r}.")


def new_indexes(doc: dict) -> list:
    """The indexes of a received dossier, from its document alone (a resend writes what is
    missing again): its applicant's, its day's, the open box and each assigned agency+unit's."""
    at = parse_iso(doc["received_at"])
    entry = f"{micros(at):016d}_{safe(doc['id'])}"
    day = at.astimezone(TZ).date().isoformat()
    side = [OwnerRecent(doc["owner"], f"{keys.newest_first(micros(at))}_{safe(doc['id'])}", dossier_id=doc["id"]),
            DayIndex(day, f"r_{safe(doc['id'])}", dossier_id=doc["id"]), OpenIndex("open", doc["id"])]
    return side + [WorkIndex(agency, f"{safe(unit)}_{entry}", dossier_id=doc["id"])
                   for agency, unit in sorted(work_keys(doc))]


RECORDS: Aggregate[Dossier] = Aggregate(Dossier, machine=MACHINE, source=SOURCE, audit=AuditEntry, summary=summary,
                                        mirror=("code", "owner"), after_commit=_counted, on_terminal=_finished,
                                        created_side=new_indexes, side=clocks.entries, event_actor=event_actor)


def create(doc: dict, actor: Actor, at: datetime, cal: Calendar, *, code: Future,
           request: dict | None = None) -> Outcome[Dossier]:
    """Store a new dossier as received, then its indexes (:func:`new_indexes`), audit entry and
    event, all in one round after the dossier's own write.

    ``code``: its receipt code being reserved (:func:`reserve_code` on the side pool, beside the
    caller's file checks). ``request``: what the dossier keeps of the request that created it
    (the idempotency stamp). A dossier already at that id raises the 409 of :func:`already_there`
    (a resend is answered by ``RECORDS.resend``, which also finishes a create cut off before its
    audit entry, indexes and event were all stored).
    """
    doc["code"] = code.result()  # no code (8 taken in a row): nothing to give back
    dossier = None
    try:  # until the dossier is saved, any failure gives the claimed code back
        t = workflow.receive(doc, actor, at, cal)
        dossier = Dossier(doc["id"], code=doc["code"], status=doc["status"], owner=doc["owner"], data=doc,
                          request=request)
        return RECORDS.create(dossier, [t], conflict=already_there(doc["id"]))
    except BaseException:
        if dossier is None or not dossier.version:
            give_back(DossierCode, code)
        raise


# -- who sees what -------------------------------------------------------------------------------------

def can_see(doc: dict, actor: Actor) -> bool:
    """Applicants their own dossiers; officers those with a step of their agency and unit;
    supervisors their agency's; operators and auditors all."""
    if actor.kind in APPLICANTS:
        return doc["owner"] == actor.sub
    if actor.kind == "officer":
        return any(s["agency"] == actor.agency and (s.get("unit") is None or s["unit"] == actor.unit)
                   for s in doc["steps"])
    if actor.kind == "supervisor":
        return doc["agency"] == actor.agency or any(s["agency"] == actor.agency for s in doc["steps"])
    return actor.kind in ("operator", "auditor")


def visible(dossier_id: str, actor: Actor) -> Dossier:
    """The dossier if ``actor`` may see it, else the same 404 as for no dossier."""
    return RECORDS.visible(dossier_id, lambda doc: can_see(doc, actor))


def by_code(code: str, actor: Actor) -> Dossier | None:
    """The dossier with receipt ``code`` if ``actor`` may see it (the rule of :func:`visible`); None
    for a code nobody was given and for one that is not theirs alike."""
    code = code.strip().upper()
    try:
        dossier_id = DossierCode.get(code).dossier_id
    except (DoesNotExist, InvalidKey):
        return None
    try:
        return visible(dossier_id, actor)
    except errors.NotFound:
        return None


def tracked(code: str, secret: str) -> dict:
    """The dossier with receipt ``code`` if ``secret`` is its tracking secret; a wrong code and a
    wrong secret answer the same 404."""
    code, secret = code.strip().upper(), secret.strip().upper()
    doc = None
    try:
        if len(code) <= 32:
            doc = Dossier.get(DossierCode.get(code).dossier_id).data
    except (DoesNotExist, InvalidKey):
        doc = None
    if doc is None or not hmac.compare_digest(doc.get("tracking_secret", "").encode(), secret.encode()):
        raise errors.NotFound("No dossier with this code and secret.",
                              detail_vi="Không có hồ sơ với mã và mã tra cứu này.")
    return doc


# -- reading many ----------------------------------------------------------------------------------------

def get_many(ids: list[str]) -> list[dict]:
    def one(i):
        try:
            return Dossier.get(i).data
        except DoesNotExist:
            return None

    return [d for d in side_pool().map(one, ids) if d is not None]


def open_ids() -> list[str]:
    """Every dossier not finished yet, from the open index's listing alone: its key is the dossier's
    id, so no entry is read (the overdue sweep asks every minute; reading each entry doubled its GETs)."""
    return OpenIndex.query_keys("open")


def listing(actor: Actor, limit: int, token: str | None, status: str | None) -> tuple[list[dict], str | None]:
    """One page of the dossiers ``actor`` works with (applicants: their own; officers: their unit's,
    oldest first; supervisors: their agency's) and the next page's token. An applicant's come
    newest first: this year's application, not the first of years of pages."""
    try:
        if actor.kind in APPLICANTS:
            page = OwnerRecent.query(actor.sub, limit=limit, page_token=token)
        elif actor.kind == "officer":
            return _officer_page(actor, limit, token, status)
        else:
            page = WorkIndex.query(actor.agency or "-", limit=limit, page_token=token)
    except InvalidKey:
        raise unissued_page_token() from None
    return _docs(list(page), actor, status), page.page_token


def _officer_page(actor: Actor, limit: int, token: str | None, status: str | None):
    # the unit's entries and the agency-wide ones (steps without a unit), merged by receipt time. The
    # page token is the last entry's position in that merge ("<µs received>_<id>", what follows each
    # prefix), so every page is two listings that start there, however deep: the index keeps every
    # dossier the unit ever had, and a merge of the first hundred of each hid the newer ones for good
    if token and not _POSITION_RE.fullmatch(token):
        raise unissued_page_token()
    merged: list[tuple[str, WorkIndex]] = []
    for prefix in dict.fromkeys((f"{safe(actor.unit or '-')}_", "__")):
        # from the token on, inclusive (the listing's lower bound is), so one more than a page and the token
        page = WorkIndex.query(actor.agency or "-", range_prefix=prefix,
                               range_between=(prefix + token if token else None, None), limit=limit + 2)
        merged += [(e.entry[len(prefix):], e) for e in page if not token or e.entry[len(prefix):] > token]
    merged.sort(key=lambda pe: pe[0])
    chosen = merged[:limit]
    more = len(merged) > limit
    return _docs([e for _, e in chosen], actor, status), (chosen[-1][0] if more else None)


def _docs(entries: list, actor: Actor, status: str | None) -> list[dict]:
    ids = list(dict.fromkeys(e.dossier_id for e in entries))
    return [d for d in get_many(ids) if can_see(d, actor) and (not status or d["status"] == status)]
