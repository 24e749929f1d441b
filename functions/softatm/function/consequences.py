"""What a transfer's state implies, brought into being after the decision: the seam between the
document that decides and everything that follows it.

The document is written first (under If-Match, so a transition happens once); then
:func:`settle` makes the ledger, the daily counters, the indexes and the events match its state,
and records ``notified = state``. Each consequence is repeat-safe (movements and index entries
are create-only with ids derived from the transfer, events have per-state ids), so settle may run
any number of times: after every transition, on a read that finds it undone (a crash, the store
failing), and from the sweep. The event is published after the movements, so a bank never hears of a
withdrawal whose cash is not yet set aside; while NATS is down it waits in the runtime's outbox
(:func:`.documents.publish`), and the consequence counts as done: the tick's flush publishes it,
and no settle of the same request or a later one publishes it again.

Everything that follows a decision goes through :func:`settle` (and :func:`settle_quietly` after a
committed decision); the one other writer of ``notified`` is the admission, which brings RECEIVED's
consequences about (:func:`bring_about`) before it writes ``admitted`` and ``notified`` in one write
(:mod:`.admission`). A read or the sweep settles a state only after :data:`SETTLE_GRACE_S`, so the
run that decided it does the work alone.
"""

from __future__ import annotations

import logging

from lscloud import errors
from lscloud.aggregate import NoChange, delete_quietly, save_quietly, together
from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.store.retry import DEFAULT, Backoff

from . import journal, limits
from .documents import TRANSFERS, fact, index_day, open_key, publish
from .models import BankSettled, OpenTransfer, Transfer
from .refusals import KeptChanging
from .transfers import ABORTED, COMMITTED, DEPOSIT, FINAL, RECEIVED, RESERVED, WITHDRAWAL, event_data, local_day, \
    parse_iso

log = logging.getLogger("softatm.consequences")

MARK = Backoff(2, DEFAULT.base_s, DEFAULT.cap_s)
"""Recording ``notified`` tries briefly: a transfer that moved on meanwhile is settled again anyway."""


SETTLE_GRACE_S = 5.0
"""How long the run that decided a state has to settle it before a read or the sweep does it for
it: a teller polling a transfer the bank just reserved must not race that run for the same work."""

_DECIDED_AT = {RECEIVED: "created_at", RESERVED: "reserved_at", COMMITTED: "committed_at", ABORTED: "aborted_at"}


def unsettled(doc: dict, at) -> bool:
    """Whether ``doc``'s state still lacks its consequences past :data:`SETTLE_GRACE_S` (a crash, the
    store failing): a read or the sweep then settles it."""
    if doc["notified"] == doc["state"]:
        return False
    decided = doc.get(_DECIDED_AT[doc["state"]]) or doc["created_at"]
    return (at - parse_iso(decided)).total_seconds() >= SETTLE_GRACE_S


def settle(tid: str, item: Transfer | None = None) -> dict:
    """Make the ledger, counters, indexes and events match the transfer's state; then record ``notified``.

    ``item``: the transfer as its decision just wrote it (saves reading it again; its ETag guards
    the ``notified`` write, so a stale one is read again)."""
    for attempt in range(DEFAULT.retries):
        item = item if attempt == 0 and item is not None else Transfer.get(tid)
        doc = item.data
        if doc["notified"] == doc["state"] and (doc["state"] in FINAL or doc["admitted"]):
            return doc
        if not doc["admitted"] and doc["state"] == RECEIVED:
            return doc  # admission (or the sweep, after the fence) moves it on
        bring_about(doc)   # writes other records only: ``item`` is still the transfer as stored
        state = doc["state"]

        def mark(d, state=state):
            if d["state"] != state or d["notified"] == state:
                raise NoChange
            d["notified"] = state
            return [], state

        def record(mark=mark, item=item):
            return TRANSFERS.mutate(tid, mark, backoff=MARK, item=item)

        entry = open_key(doc)

        def unindex(entry=entry):
            delete_quietly(OpenTransfer, "open", entry)

        # a final transfer leaves the sweep's index at the same time: everything the mark records is
        # done already, so a crash between the two only leaves a mark for a read to write again
        try:
            out = together(record, unindex)[0] if state in FINAL else record()
        except ConditionalCheckFailed:
            continue
        if out.doc["state"] != state:
            continue  # it moved on meanwhile: settle the new state too
        return out.doc
    raise KeptChanging()


def bring_about(doc: dict) -> None:
    """The consequences of ``doc``'s state, each repeat-safe, the event last.

    The ledger movements and the other records (settlement, the bank's day index, the daily
    counter) are independent and written at once; the event follows all of them. The day index is
    written by the first settle (``notified`` still None): a later state's settle finds it there."""
    tid, amount, point, bank, since = doc["id"], doc["amount_vnd"], doc["point"], doc["bank"], doc["journal_from"]

    def movements():
        if doc["kind"] == WITHDRAWAL and not doc["no_hold"]:
            journal.move("hold", point, amount, ref=tid, bank=bank, since_seq=since)
            if doc["state"] == COMMITTED:
                journal.move("payout", point, amount, ref=tid, bank=bank, since_seq=since)
            elif doc["state"] == ABORTED:
                journal.move("release", point, amount, ref=tid, bank=bank, since_seq=since)
        elif doc["kind"] == DEPOSIT and doc["state"] == COMMITTED:
            journal.move("intake", point, amount, ref=tid, bank=bank, since_seq=since)

    side = [movements]
    if doc["state"] == ABORTED:
        side.append(lambda: limits.uncount(doc))
    if doc["state"] == COMMITTED:
        side.append(lambda: save_quietly(BankSettled(f"{bank}_{local_day(parse_iso(doc['committed_at']))}", tid)))
    if not doc["no_hold"] and doc["notified"] is None:
        side.append(lambda: index_day(doc))
    together(*side)
    if not doc["no_hold"]:
        publish([fact(f"transfer.{doc['state'].lower()}", event_data(doc), subject=tid, id=f"{tid}.{doc['state']}")])
    else:  # refused at admission: the bank never heard of it; the IOC counts it
        publish([fact("transfer.aborted", event_data(doc), subject=tid, id=f"{tid}.{doc['state']}")])


def settle_quietly(tid: str, item: Transfer | None = None) -> dict:
    """:func:`settle` after a committed decision: a failure (the store; NATS down is the outbox's) is
    left to the sweep."""
    try:
        return settle(tid, item)
    except (errors.DomainError, DoesNotExist):
        raise
    except Exception:  # noqa: BLE001
        log.warning("settle of %s failed; the sweep will finish it", tid, exc_info=True)
        return Transfer.get(tid).data
