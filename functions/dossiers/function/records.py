"""Dossiers in the store: conditional writes, indexes, the audit trail and the events.

Every change goes through :func:`mutate`: read, apply one :mod:`.workflow` operation to the fresh
document, write it back with ``If-Match``; a lost race reads again and re-applies, so two officers
acting at once never overwrite each other (the second one's action is re-checked against what the
first did, and answers 409 if it no longer applies). Audit entries (create-only, keyed by time and
the document's version) and events (ids derived from the same version, so NATS dedupes a repeat)
follow the committed write; an event NATS does not confirm waits in the outbox.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from lscloud import events as ce
from lscloud import outbox
from lscloud.store import ConditionalCheckFailed, DoesNotExist

from . import metrics, workflow
from .models import AuditEntry, DayIndex, Dossier, DossierCode, OpenIndex, OwnerIndex, WorkIndex
from lscloud.workdays import TZ
from .workflow import Transition

log = logging.getLogger("dossiers.records")
SOURCE = "/dossiers"
RETRIES = 30
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dossiers-side")
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def now() -> datetime:
    return datetime.now(timezone.utc)


def micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def safe(part: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in part or "_")


class Conflict(Exception):
    pass


@dataclass
class Outcome:
    dossier: Dossier
    transitions: list[Transition] = field(default_factory=list)

    @property
    def doc(self) -> dict:
        return self.dossier.data


# -- events ------------------------------------------------------------------------------------------

def summary(doc: dict) -> dict:
    """What events carry: no personal data beyond the applicant's id for notifiers."""
    step = workflow.active_step(doc)
    return {"dossier_id": doc["id"], "code": doc["code"], "status": doc["status"],
            "procedure": doc["procedure"]["code"], "agency": doc["agency"], "unit": doc["unit"],
            "channel": doc["channel"], "owner": doc["owner"], "deadline": doc["deadline"],
            "current_step": step["code"] if step else None, "current_agency": step["agency"] if step else None}


def event(fact: str, data: dict, *, subject: str | None = None, id: str | None = None) -> dict:
    return ce.new_event(f"vn.langson.dossiers.{fact}.v1", SOURCE, data, subject=subject, id=id)


def _save_quietly(item) -> None:
    try:
        item.save()
    except ConditionalCheckFailed:
        pass   # a repeat of a committed write: already there


def _trail(dossier: Dossier, transitions: list[Transition], extra: list[dict] | None = None) -> None:
    doc = dossier.data
    entries, evts = [], []
    for i, t in enumerate(transitions):
        at = workflow.parse(t.at)
        entries.append(AuditEntry(doc["id"], f"{micros(at):016d}_{dossier.version:06d}_{i:02d}", data=t.audit()))
        evts.append(ce.new_event(t.event_type, SOURCE, {**summary(doc), "from": t.source, "to": t.target,
                                                        "action": t.action, "at": t.at, "actor": t.actor.as_dict(),
                                                        "reason": t.reason, "details": t.details},
                                 subject=doc["id"], id=f"{doc['id']}.{dossier.version}.{i}"))
        metrics.transition(t.fact, doc)
    done = [_pool.submit(_save_quietly, e) for e in entries]
    outbox.publish(evts + (extra or []))
    for f in done:
        f.result()


def audit_only(dossier: Dossier, action: str, actor: workflow.Actor, at: datetime, details: dict, seq: int = 50) -> None:
    entry = {"action": action, "from": dossier.data["status"], "to": dossier.data["status"], "fact": None,
             "at": workflow.iso(at), "actor": actor.as_dict(), "reason": None, "details": details}
    _save_quietly(AuditEntry(dossier.id, f"{micros(at):016d}_{dossier.version:06d}_{seq:02d}", data=entry))


def audit_trail(dossier_id: str) -> list[dict]:
    return [{"entry": a.entry, **a.data} for a in AuditEntry.query(dossier_id)]


# -- writes -------------------------------------------------------------------------------------------

def mutate(dossier_id: str, op: Callable[[dict], list[Transition]], retries: int = RETRIES) -> Outcome:
    """Read-modify-write under If-Match; ``op`` runs again on the fresh document after a lost race."""
    for attempt in range(retries + 1):
        dossier = Dossier.get(dossier_id)
        doc = dossier.data
        transitions = op(doc)
        if not transitions:
            return Outcome(dossier, [])
        dossier.data = doc
        dossier.status = doc["status"]
        try:
            dossier.save()
        except ConditionalCheckFailed:
            time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))
            continue
        _trail(dossier, transitions)
        if doc["status"] in workflow.TERMINAL:
            _finished(doc)   # the stats read these indexes right after: written before answering
        return Outcome(dossier, transitions)
    raise ConditionalCheckFailed(f"dossier {dossier_id} kept changing: {retries} retries")


def _finished(doc: dict) -> None:
    try:
        day = workflow.parse(doc["finished_at"]).astimezone(TZ).date().isoformat()
        _save_quietly(DayIndex(day, f"f_{safe(doc['id'])}", dossier_id=doc["id"]))
        try:
            OpenIndex("open", doc["id"]).delete()
        except DoesNotExist:
            pass
    except Exception:  # noqa: BLE001 - indexes; stats re-check the document's state anyway
        log.exception("finishing indexes of %s failed", doc.get("id"))


def new_code(at: datetime) -> str:
    """The receipt code: LS-<local yymmdd>-<6 characters>, unambiguous letters and digits."""
    return f"LS-{at.astimezone(TZ):%y%m%d}-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


def reserve_code(dossier_id: str, at: datetime) -> str:
    for _ in range(8):
        code = new_code(at)
        try:
            DossierCode(code, dossier_id=dossier_id).save()
            return code
        except ConditionalCheckFailed:
            continue
    raise ConditionalCheckFailed("no free dossier code after 8 tries")


def work_keys(doc: dict) -> set[tuple[str, str]]:
    return {(s["agency"], s.get("unit") or "_") for s in doc["steps"]}


def create(doc: dict, actor: workflow.Actor, at: datetime, cal) -> Outcome:
    """Store a new dossier as received, then its indexes, audit entry and event."""
    doc["code"] = reserve_code(doc["id"], at)
    try:  # until the dossier is saved, any failure gives the claimed code back
        t = workflow.receive(doc, actor, at, cal)
        dossier = Dossier(doc["id"], code=doc["code"], status=doc["status"], owner=doc["owner"], data=doc)
        dossier.save()
    except BaseException as exc:
        try:
            DossierCode(doc["code"]).delete()
        except (DoesNotExist, ConditionalCheckFailed):
            pass
        if isinstance(exc, ConditionalCheckFailed):
            raise Conflict(f"a dossier with id {doc['id']!r} already exists") from None
        raise
    entry = f"{micros(at):016d}_{safe(doc['id'])}"
    day = at.astimezone(TZ).date().isoformat()
    side = [OwnerIndex(doc["owner"], entry, dossier_id=doc["id"]), DayIndex(day, f"r_{safe(doc['id'])}", dossier_id=doc["id"]),
            OpenIndex("open", doc["id"])]
    side += [WorkIndex(agency, f"{safe(unit)}_{entry}", dossier_id=doc["id"]) for agency, unit in sorted(work_keys(doc))]
    list(_pool.map(_save_quietly, side))
    _trail(dossier, [t])
    return Outcome(dossier, [t])


def get_many(ids: list[str]) -> list[dict]:
    def one(i):
        try:
            return Dossier.get(i).data
        except DoesNotExist:
            return None

    return [d for d in _pool.map(one, ids) if d is not None]


def open_ids() -> list[str]:
    out, token = [], None
    while True:
        page = OpenIndex.query("open", limit=1000, page_token=token)
        out += [p.dossier_id for p in page]
        token = page.page_token
        if not token:
            return out


def sweep_overdue(at: datetime) -> dict:
    """Mark active steps past their deadline (one ``step.overdue`` event per step, ever) and
    return the overdue figures per agency for the gauge."""
    per_agency: dict[str, int] = {}
    marked = 0
    for doc in get_many(open_ids()):
        if doc["status"] not in workflow.OPEN:
            continue
        per_agency.setdefault(doc["agency"], 0)
        if workflow.is_overdue(doc, at):
            per_agency[doc["agency"]] += 1
        for s in workflow.overdue_steps(doc, at):
            if s["status"] != "active" or s.get("overdue_flagged"):
                continue

            def op(d, i=s["index"]):
                st = d["steps"][i]
                if st["status"] != "active" or st.get("overdue_flagged") or not workflow.is_overdue_step(d, st, at):
                    return []
                st["overdue_flagged"] = workflow.iso(at)
                return [Transition("flag_overdue", d["status"], d["status"], "step.overdue", workflow.SYSTEM,
                                   workflow.iso(at), details={"step": st["code"], "agency": st["agency"],
                                                              "unit": st.get("unit"), "deadline": st["deadline"]})]

            if mutate(doc["id"], op).transitions:
                marked += 1
    metrics.set_overdue(per_agency)
    return {"overdue_dossiers": sum(per_agency.values()), "by_agency": per_agency, "steps_flagged": marked,
            "at": workflow.iso(at)}
