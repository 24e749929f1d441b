"""The declarations' ledger: one document per crossing, changed only through the kernel's aggregate
write (:class:`lscloud.aggregate.Aggregate`: read, apply one operation of :mod:`.crossing` /
:mod:`.lifecycle` to the fresh document, write it back under ``If-Match``, retried on a lost race),
which then writes the audit trail and publishes each transition's event with the declaration's
:func:`summary`. A finished crossing drops the indexes that served live work.
"""

from __future__ import annotations

import copy

from lscloud.aggregate import Aggregate, Outcome, side_pool
from lscloud.query import unissued_page_token
from lscloud.statemachine import Actor
from lscloud.store import DoesNotExist, InvalidKey

from . import clearance, declarations, indexes, lifecycle, metrics, scopes
from .models import AuditEntry, AgencyDecision, Declaration, OwnerRecent

SOURCE = "/border"


def summary(doc: dict) -> dict:
    """The declaration as events carry it: no personal data beyond the enterprise's tax code, which
    the market matches against an export lot's producer. Never the plates, the health answers nor
    the driver's phone: no consumer (the IOC, the market) needs them, and the stream keeps an event
    for its whole age, past a minimised declaration. (A plate read is in the device's own
    ``plate.read`` and the barrier's answer to it.)"""
    return {"declaration_id": doc["id"], "code": doc["code"], "status": doc["status"], "gate": doc["gate"],
            "direction": doc["direction"], "flow": doc["flow"], "enterprise_tax_code": doc["enterprise"]["tax_code"]}


ACTORS_PURPOSE = "border-actors"
PERSONAL_ACTORS = frozenset({"enterprise", "driver"})
"""The actor kinds whose subject names a person: a household business's tax code is its owner's
personal number, a driver's subject their ID card or passport number. The machine lets only
enterprises move a declaration today; a driver is here so that a step given to them stays covered."""


def event_actor(actor: Actor) -> Actor:
    """The actor as a transition's event names it: a pseudonym for :data:`PERSONAL_ACTORS`, the
    others (officers, gate staff, devices, the platform) in clear. The audit entry keeps the clear
    subject: the declaration's own record, in border's bucket."""
    return actor.pseudonymous(ACTORS_PURPOSE) if actor.kind in PERSONAL_ACTORS else actor


def _committed(out: Outcome) -> None:
    metrics.transitions(out.doc, out.transitions)


def _finished(doc: dict) -> None:
    side_pool().submit(indexes.drop_finished, doc)   # the answer does not wait for the cleanup


RECORDS: Aggregate[Declaration] = Aggregate(Declaration, machine=lifecycle.MACHINE, source=SOURCE, audit=AuditEntry,
                                            summary=summary, after_commit=_committed, on_terminal=_finished,
                                            created_side=indexes.created, side=indexes.every_write,
                                            event_actor=event_actor)


def fact(fact_: str, doc: dict, data: dict, *, id: str) -> dict:
    """An event of this declaration that is not a transition: its summary and ``data``."""
    return RECORDS.fact(fact_, {**summary(doc), **data}, subject=doc["id"], id=id)


# -- reading ----------------------------------------------------------------------------------------

def view(doc: dict, actor: Actor) -> dict:
    """The declaration as answered to ``actor``: with what it may do next (:func:`.scopes.offered`)
    and who still has to decide."""
    out = copy.deepcopy(doc)
    # an earlier release wrote traffic orders onto their recipients' declarations; not the record's
    # (schemas/border/declaration.json): the driver's lookup reads them from the orders
    out.pop("traffic_orders", None)
    out["allowed_actions"] = scopes.offered(actor, doc)
    out["pending_agencies"] = clearance.pending_agencies(doc)
    out["release_blockers"] = clearance.release_blockers(doc) if doc["status"] == "under_inspection" else []
    if declarations.minimised(doc):
        out["health"] = {**doc["health"], **declarations.minimised_note(doc)}
    return out


def visible(declaration_id: str, actor: Actor) -> Declaration:
    """The declaration if ``actor`` may see it, else the same 404 as for none."""
    return RECORDS.visible(declaration_id, lambda doc: scopes.can_see(actor, doc))


def get_or_none(declaration_id: str) -> Declaration | None:
    try:
        return Declaration.get(declaration_id)
    except (DoesNotExist, InvalidKey):
        return None


def docs(ids: list[str]) -> list[dict]:
    """The declarations of ``ids`` that exist, read in parallel, in the order of ``ids``."""
    return [d.data for d in side_pool().map(get_or_none, ids) if d is not None]


def of_owner(actor: Actor, limit: int, page_token: str | None) -> tuple[list[dict], str | None]:
    """An enterprise's or a driver's own declarations (the owner index), newest first (this week's
    crossing, not the first of years of pages), and the next page."""
    try:
        page = OwnerRecent.query(scopes.owner_key(actor), limit=limit, page_token=page_token)
    except InvalidKey:
        raise unissued_page_token() from None
    items = []
    for entry in page:
        d = get_or_none(entry.declaration_id)
        if d is not None and scopes.can_see(actor, d.data):
            items.append(view(d.data, actor))
    return items, page.page_token


def trail(declaration_id: str) -> list[dict]:
    return RECORDS.trail(declaration_id)


def decisions_of(declaration_id: str) -> list[dict]:
    """Every agency decision on the declaration, each its own create-only record."""
    return [d.data for d in AgencyDecision.query(declaration_id)]
