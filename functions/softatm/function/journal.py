"""The ledger's journals in the object store, and the movements the soft ATM makes on them.

:mod:`.ledger` is the mechanism (a gap-free journal per point, entries create-only, the head a
cache under If-Match); this module stores it (:class:`StoreJournal`) and moves money through it
(:func:`move`), raising ``float.low`` once per episode of a point's free cash below the threshold.
"""

from __future__ import annotations

import logging

from lscloud import store
from lscloud.aggregate import save_quietly, side_pool
from lscloud.store import ConditionalCheckFailed, DoesNotExist

from . import ledger, settings, telemetry as tm
from .documents import fact, publish
from .ledger import Head
from .models import JournalEntry, JournalHead, LedgerCheckpoint, PointSeen
from .transfers import iso, now

log = logging.getLogger("softatm.journal")


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
    """Append the movement ``<ref>:<kind>`` once (a repeat finds it); ``ledger.Insufficient`` if it cannot.

    A new movement that leaves the point's free cash below ``SOFTATM_FLOAT_LOW_VND`` raises
    ``float.low`` for the episode (:func:`low_episode`), and so does a hold refused for want of cash
    at a point below it: a point that never had cash crosses no threshold."""
    _note_point(point)
    m = ledger.movement(kind, point, amount, ref=ref, bank_code=bank, at=iso(now()))
    try:
        done = ledger.apply(JOURNAL, m, since_seq=since_seq)
    except ledger.Insufficient as exc:
        if kind == "hold" and exc.account == ledger.cash(point):
            _refused_hold(point)
        raise
    if done.new:
        tm.movement(kind)
        after = done.balances.get(ledger.cash(point), 0)
        tm.float_seen(point, after, done.balances.get(ledger.held(point), 0))
        low = settings.current().float_low_vnd
        before = done.before.get(ledger.cash(point), 0)
        if after >= low:
            _good[(JOURNAL.scope(point), low)] = (done.seq, done.seq)
        elif before >= low:   # crossed here (a hold or a collection): the episode starts at this entry
            _good[(JOURNAL.scope(point), low)] = (done.seq - 1, done.seq)
            _raise_low(point, after, low, done.seq)
        else:                 # below already (a delivery too small, a payout ...): the episode goes on
            _raise_low(point, after, low, low_episode(point, low, done.seq))
    return done


# Once per episode: an episode is the run of entries after which a point's free cash is below the
# threshold, named by its first entry (the one after the last entry that left the cash at least at
# the threshold; 1 for a point that never had that much). Every replica derives the same name from
# the journal, so the event id f"{point}.{episode}.float-low" is one per episode: JetStream drops a
# repeat and the IOC keys the alert by it. What this process computed is kept (per bucket, point
# and threshold), so the journal is read back once per point and process, not per movement.
_good: dict = {}     # (scope, low) -> (last entry at or above the threshold, the entry that was known at)
_raised: dict = {}   # scope -> the episode this process raised float.low for last


def low_episode(point: str, low: int, end_seq: int) -> int:
    """The first entry of the point's low-cash episode that entry ``end_seq`` is in (its cash below ``low``)."""
    key = (JOURNAL.scope(point), low)
    good, upto = _good.get(key, (None, 0))
    if good is not None and upto <= end_seq:
        # entry end_seq itself is below: only those between are read (none, for this process's own appends)
        for entry in ledger.entries(JOURNAL, point, upto, end_seq - 1) if upto < end_seq - 1 else ():
            if int(entry["seq"]) >= end_seq:
                break
            if _cash_after(point, entry) >= low:
                good = int(entry["seq"])
    else:   # nothing known: back from the end to the last entry at or above the threshold
        good, seq = 0, end_seq
        while seq > 0 and not good:
            first = max(1, seq - ledger.READ_AHEAD + 1)
            batch = JOURNAL.read_entries(point, first, seq - first + 1)
            good = next((int(e["seq"]) for e in reversed(batch) if e is not None and _cash_after(point, e) >= low), 0)
            seq = first - 1
    _good[key] = (good, end_seq)
    return good + 1


def _cash_after(point: str, entry: dict) -> int:
    return int(entry["balances"].get(ledger.cash(point), 0))


def _refused_hold(point: str) -> None:
    low = settings.current().float_low_vnd
    try:
        end = head(point)
        cash_vnd = end.balances.get(ledger.cash(point), 0)
        if cash_vnd < low:
            _raise_low(point, cash_vnd, low, low_episode(point, low, end.seq))
    except Exception:  # noqa: BLE001 - the refusal is the teller's answer; the next low movement or refusal raises it
        log.warning("float.low for %s after a refused withdrawal not raised", point, exc_info=True)


def _raise_low(point: str, cash_vnd: int, low: int, episode: int) -> None:
    """``float.low`` for the point's episode, once per process (a repeat's id is the same: dropped)."""
    scope = JOURNAL.scope(point)
    if _raised.get(scope) == episode:
        return
    try:
        publish([fact("float.low", {"point": point, "cash_vnd": cash_vnd, "threshold_vnd": low},
                      subject=point, id=f"{point}.{episode}.float-low")])
    except Exception:  # noqa: BLE001 - the movement is made; the episode's next movement or refusal raises it again
        log.warning("float.low for %s not published; raised again at its next movement", point, exc_info=True)
        return
    _raised[scope] = episode
