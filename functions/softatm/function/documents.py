"""The transfer documents in the store, their indexes, and the soft ATM's facts on the bus.

A transfer document changes only through :data:`TRANSFERS` (read-modify-write under If-Match,
the project's one retry policy). Its events are not the write's: they follow the consequences of
a state (the ledger first, see :mod:`.consequences`), so the aggregate publishes nothing and
:func:`publish` sends what :mod:`.consequences`, :mod:`.journal` and :mod:`.cash` decide.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from lscloud import outbox
from lscloud.aggregate import Aggregate, save_quietly, side_pool
from lscloud.store import DoesNotExist
from lscloud.store.recent import RecentItems

from . import watch
from .models import BankDay, Transfer
from .transfers import MACHINE, micros, parse_iso

WRITTEN: RecentItems[Transfer] = RecentItems(Transfer, max_items=4096)
"""The transfers as this replica last wrote them, with their ETags: what the next step starts from
instead of reading (its If-Match write still says whether the copy was current)."""


def _committed(out) -> None:
    WRITTEN.keep(out.item)
    watch.changed(out.doc)   # ends the long-polls waiting on the transfer in this replica (:mod:`.watch`)


TRANSFERS = Aggregate(Transfer, machine=MACHINE, source="/softatm", mirror=("bank", "point"), publish=False,
                      after_commit=_committed)


def written(tid: str, state: str | None = None) -> Transfer | None:
    """A copy of transfer ``tid`` as this replica last wrote it (in ``state``, if given); None if
    this replica has not written it (or not lately). Only a guess at the stored version."""
    item = WRITTEN.lookup(tid)
    if item is None or (state is not None and item.data["state"] != state):
        return None
    return item


def fact(name: str, data: dict, *, subject: str, id: str) -> dict:
    """A soft ATM event, ``vn.langson.softatm.<name>.v1``, with a stable id (JetStream drops a repeat)."""
    return TRANSFERS.fact(name, data, subject=subject, id=id)


def publish(evts: list[dict]) -> None:
    """Publish through the runtime's outbox: what NATS does not confirm is kept and published again
    by the tick's flush (in its order with the request's other kept events). A consequence counts as
    done once its event is out or kept, so a settle never publishes it twice; this raises only if
    the event could be neither published nor kept (the store down too), leaving the settle undone."""
    outbox.publish(evts)


def open_key(doc: dict) -> str:
    """The transfer's entry in the sweep's index of open transfers, by the bank's deadline: the
    entry is written once, before the transfer, and deleted once, with its final settle; the sweep
    judges expiry by the document (:func:`.transfers.deadline`).

    Every revision must compute the same key for the same document, or its sweep deletes the
    entry as a resend's orphan and the transfer is never expired: so it is the stored
    ``expires_at``, which a reservation leaves alone (:func:`.transfers.reserve_until`), or, for a
    withdrawal reserved by the code that moved ``expires_at`` to the teller's deadline, the bank's
    deadline it kept as ``answer_by`` (those entries were keyed by it)."""
    return f"{micros(parse_iso(doc.get('answer_by') or doc['expires_at'])):016d}_{doc['id']}"


def index_day(doc: dict) -> None:
    """The bank's listing of its transfers by the local day they were created (create-only)."""
    save_quietly(BankDay(f"{doc['bank']}_{doc['day']}", f"{micros(parse_iso(doc['created_at'])):016d}_{doc['id']}",
                         transfer_id=doc["id"]))


_POSITION = re.compile(r"(\d{4}-\d{2}-\d{2})~(\d{16}_[A-Za-z0-9_-]{8,64})")   # a page token: <day>~<entry>


def created_page(bank: str, first: date, last: date, limit: int,
                 token: str | None = None) -> tuple[list[dict], str | None]:
    """One page of the bank's transfers created on the local days ``first`` to ``last``, in creation
    order, from ``token`` (the last entry of the page before: ``<day>~<entry>``) on, and the next
    page's token. The day indexes are listed (their keys name the transfers), one page's worth, and
    that page's transfers read at once: it read every entry of every day, then each transfer, one
    after another, a month of a bank's transfers in one answer. ValueError for a token it never gave."""
    after_day, after = None, None
    if token:
        m = _POSITION.fullmatch(token)
        if not m:
            raise ValueError("not a page token of this list")
        after_day, after = date.fromisoformat(m.group(1)), m.group(2)
    picked: list[tuple[date, str]] = []
    day = max(first, after_day) if after_day else first
    while day <= last and len(picked) <= limit:
        lo = after if day == after_day else None
        keys = BankDay.query_keys(f"{bank}_{day.isoformat()}", range_between=(lo, None), limit=limit + 2)
        picked += [(day, k) for k in keys if k != lo]   # the lower bound is inclusive: not the token's own
        day += timedelta(days=1)
    more, picked = len(picked) > limit, picked[:limit]

    def one(entry: str) -> dict | None:
        try:
            return Transfer.get(entry.partition("_")[2]).data
        except DoesNotExist:
            return None

    docs = [d for d in side_pool().map(one, [k for _, k in picked]) if d is not None]
    return docs, (f"{picked[-1][0].isoformat()}~{picked[-1][1]}" if more else None)
