"""What tellers, operators and banks do to a transfer once it exists: reserve, confirm, commit,
reject, abort — each checked by the state machine, written once under If-Match, resend-safe —
and reading it, with the lazy checks (expiry, consequences a crash left undone)."""

from __future__ import annotations

import logging
from typing import Callable

from lscloud.aggregate import NoChange
from lscloud.statemachine import Actor

from . import settings, telemetry as tm
from .admission import admitted_by_records, resend
from .consequences import settle, settle_quietly, unsettled
from .documents import TRANSFERS, written
from .refusals import Expired, NotReady
from .transfers import ABORTED, COMMITTED, FINAL, MACHINE, RECEIVED, RESERVED, expired, expired_already, iso, now, \
    reserve_until

log = logging.getLogger("softatm.actions")


def act(tid: str, action: str, req: dict, actor: Actor, *, visible: Callable[[dict], bool],
        reason: str | None = None, bank_reference: str | None = None) -> tuple[dict, bool]:
    """Apply ``action`` (reserve, reject, confirm, commit, abort) with resend detection; (doc, replayed).

    A transfer ``visible`` does not admit is the same 404 as none at all."""
    # the copy this replica last wrote saves the read: the decision's If-Match says whether it is
    # current (a transfer's bank and point never change, so it is visible as the stored one is)
    seen = written(tid)
    if seen is None or not visible(seen.data):
        seen = TRANSFERS.visible(tid, visible)
    doc = seen.data
    if action in doc["requests"]:
        if doc["admitted"] and expired(doc, now()):
            expire(tid)   # a bank resending its reservation past the deadline is answered as aborted
        return resend(TRANSFERS.visible(tid, visible).data, action, req), True   # as it is now
    # the admitting run announces the transfer, then writes the admission: a bank that heard of it
    # first finds it admitted by its records (the hold, the daily count) and admits it here
    admitted = doc["admitted"] or doc["state"] != RECEIVED or admitted_by_records(doc)
    if not admitted:
        raise NotReady()
    if expired(doc, now()):
        expire(tid)
        seen = None   # changed meanwhile: read again

    def change(d):
        if action in d["requests"]:
            raise NoChange  # a resend that raced the first request
        # past the deadline, or aborted by it first (the expiry won the race for this If-Match):
        # a teller told "expired" does not hand over the cash, and a bank's late step revives nothing
        if expired(d, now()) or expired_already(d):
            raise Expired(d["state"])
        at = now()
        t = MACHINE.apply(d, action, actor, at=at, reason=reason)
        d["admitted"] = True
        d["requests"][action] = req
        if t.target == RESERVED:
            d["reserved_at"] = iso(at)
            d["bank_reference"] = bank_reference
            reserve_until(d, at, settings.current().reserved_expiry_s)
        elif t.target == COMMITTED:
            d["committed_at"] = iso(at)
            if bank_reference:
                d["bank_reference"] = bank_reference
        elif t.target == ABORTED:
            d["aborted_at"], d["abort_reason"] = iso(at), reason or action
        return [t]

    out = TRANSFERS.mutate(tid, change, item=seen)
    if not out.changed:
        return resend(out.doc, action, req), True
    tm.transfer(out.doc["kind"], out.doc["state"])
    return settle_quietly(tid, out.item), False


def expire(tid: str) -> dict:
    """Abort an admitted transfer past its deadline (the bank never answered, or no teller finished
    a reservation), then settle it: the same consequences as a teller's abort (the hold released,
    the daily limit given back, ``transfer.aborted`` and so the bank's webhook, out of the open index).
    A commit that won the race leaves nothing to do but settle."""
    def change(d):
        if not (expired(d, now()) and d["admitted"]):
            raise NoChange
        at = now()
        t = MACHINE.apply(d, "expire", MACHINE.system, at=at, reason="expired")
        d.update(aborted_at=iso(at), abort_reason="expired")
        return [t]

    out = TRANSFERS.mutate(tid, change)
    if out.changed:
        tm.transfer(out.doc["kind"], "expired")
    return settle(tid)


def read(tid: str, visible: Callable[[dict], bool]) -> dict:
    """The transfer if ``visible`` admits it (else 404), after the lazy checks."""
    doc = TRANSFERS.visible(tid, visible).data
    if doc["admitted"] and expired(doc, now()):
        return expire(tid)
    if (doc["admitted"] or doc["state"] in FINAL) and unsettled(doc, now()):
        try:
            return settle(tid)
        except Exception:  # noqa: BLE001 - a read never fails on a repair; the sweep retries
            log.warning("settle of %s on read failed", tid, exc_info=True)
    return doc
