"""The ledger's journals in the object store, and the movements the soft ATM makes on them.

:mod:`.ledger` is the mechanism (a gap-free journal per point, entries create-only, the head a
cache under If-Match); this module stores it (:class:`StoreJournal`) and moves money through it
(:func:`move`), raising ``float.low`` when a point's free cash falls below the threshold.
"""

from __future__ import annotations

from lscloud import store
from lscloud.aggregate import save_quietly, side_pool
from lscloud.store import ConditionalCheckFailed, DoesNotExist

from . import ledger, settings, telemetry as tm
from .documents import fact, publish
from .ledger import Head
from .models import JournalEntry, JournalHead, LedgerCheckpoint, PointSeen
from .transfers import iso, now


class StoreJournal:
    """:class:`ledger.Journal` over the object store: entries create-only, the head under If-Match,
    and what this process knows of each journal's end (:class:`ledger.Tails`, per bucket and point)."""

    def __init__(self):
        self.tails = ledger.Tails()

    def scope(self, point):
        objects, bucket = store.connection()
        return id(objects), bucket, point

    def read_head(self, point):
        try:
            item = JournalHead.get(point)
        except DoesNotExist:
            return Head(), None
        return Head.from_dict(item.head), item

    def save_head(self, point, head, token):
        item = token if token is not None else JournalHead(point)
        item.head = head.as_dict()
        try:
            item.save()
        except ConditionalCheckFailed:
            return None  # someone saved a later head (or will): readers roll forward anyway
        return item

    def read_entry(self, point, seq):
        try:
            return JournalEntry.get(point, f"{seq:012d}").entry
        except DoesNotExist:
            return None

    def read_entries(self, point, first, n):
        """Entries ``first`` to ``first + n - 1`` (None where there is none), read at once."""
        return list(side_pool().map(lambda seq: self.read_entry(point, seq), range(first, first + n)))

    def append(self, point, seq, entry):
        return save_quietly(JournalEntry(point, f"{seq:012d}", entry=entry))


JOURNAL = StoreJournal()


def points() -> list[str]:
    """Every point that has a journal."""
    return [p.point for p in PointSeen.query_all("points")]


def verify(full: bool = False) -> dict:
    """:func:`.ledger.verify` of every point's journal, from each point's checkpoint (``full``: from
    its first entry); a verification that found nothing wrong keeps the checkpoints it reached.
    Checking from a checkpoint trusts the entries before it, verified then and written create-only;
    ``full`` replays them all again (an audit)."""
    everything = points()
    held = {c.point: c for c in side_pool().map(_checkpoint, everything) if c is not None}
    since = {} if full else {p: {"seq": int(c.seq), "balances": c.balances} for p, c in held.items()}
    report = ledger.verify(JOURNAL, everything, since)
    if report["ok"]:
        at = iso(now())
        for point, c in report["checkpoints"].items():
            item = held.get(point) or LedgerCheckpoint(point)
            if item.seq is not None and int(item.seq) >= c["seq"]:
                continue   # as far already
            item.seq, item.balances, item.at = c["seq"], c["balances"], at
            try:
                item.save()   # create-only, or If-Match the one read: a checkpoint only moves forward
            except ConditionalCheckFailed:
                pass          # another verification moved it meanwhile
    return report


def _checkpoint(point: str) -> "LedgerCheckpoint | None":
    try:
        return LedgerCheckpoint.get(point)
    except DoesNotExist:
        return None


def head(point: str) -> Head:
    """The true end of a point's journal (the cached head rolled forward)."""
    return ledger.roll_forward(JOURNAL, point)[0]


def known_end(point: str) -> Head:
    """A head no later than the point's journal end, from memory when this process knows one."""
    return ledger.known_end(JOURNAL, point)


def float_of(point: str) -> dict:
    b = ledger.balances(JOURNAL, point)
    return {"point": point, "cash_vnd": b.get(ledger.cash(point), 0), "held_vnd": b.get(ledger.held(point), 0)}


def holds(point: str, movement_id: str, since_seq: int) -> bool:
    """Whether the movement is in the point's journal (from memory when this process appended it)."""
    found = ledger.lookup(JOURNAL, point, movement_id, since_seq)
    return found is not None


_seen: set = set()   # (bucket, point) whose PointSeen this process wrote (create-only: once is enough)


def _note_point(point: str) -> None:
    key = JOURNAL.scope(point)
    if key not in _seen:
        save_quietly(PointSeen("points", point))
        _seen.add(key)


def move(kind: str, point: str, amount: int, *, ref: str, bank: str | None = None,
         since_seq: int = 0) -> ledger.Applied:
    """Append the movement ``<ref>:<kind>`` once (a repeat finds it); ``ledger.Insufficient`` if it cannot."""
    _note_point(point)
    m = ledger.movement(kind, point, amount, ref=ref, bank_code=bank, at=iso(now()))
    done = ledger.apply(JOURNAL, m, since_seq=since_seq)
    if done.new:
        tm.movement(kind)
        after = done.balances.get(ledger.cash(point), 0)
        tm.float_seen(point, after, done.balances.get(ledger.held(point), 0))
        low = settings.current().float_low_vnd
        before = done.before.get(ledger.cash(point), 0) if kind in ("hold", "collection") else None
        if before is not None and before >= low > after:
            publish([fact("float.low", {"point": point, "cash_vnd": after, "threshold_vnd": low},
                          subject=point, id=f"{point}.{done.seq}.float-low")])
    return done
