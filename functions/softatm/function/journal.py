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
            _refused_hold(point, exc)
        raise
    if done.new:
        tm.movement(kind)
        after = done.balances.get(ledger.cash(point), 0)
        tm.float_seen(point, after, done.balances.get(ledger.held(point), 0))
        low = settings.current().float_low_vnd
        before = done.before.get(ledger.cash(point), 0)
        if after < low:
            # crossed here (a hold or a collection): the episode starts at this entry; else it goes on
            # (a delivery too small, a payout ...) and began where low_episode finds
            _alert(point, after, low, done.seq, done.seq if before >= low else None)
    return done


# Once per episode: an episode is the run of entries after which a point's free cash is below the
# threshold, named by its first entry (the one after the last entry that left the cash at least at
# the threshold; 1 for a point that never had that much). The event id f"{point}.{episode}.float-low"
# is one per episode: JetStream drops a repeat and the IOC keys the alert by it.
#
# A teller waits on this, so the start is looked for among the last LOOK_BACK entries only (this
# process's tail first, then one batch from the store), never the whole journal of a point that has
# been low for long. Found, it is the exact start, the same on every replica and after a restart;
# not found, nothing is raised: the episode's own first movement (or refusal) saw its start within
# the bound and raised it then. A name derived from the window instead (its first entry, say) would
# move as the journal grows, so a replica or a restart would raise the same episode again.
LOOK_BACK = ledger.READ_AHEAD
_raised: dict = {}   # scope -> the episode this process raised float.low for last


def low_episode(point: str, low: int, end_seq: int) -> int | None:
    """The first entry of the low-cash episode that entry ``end_seq`` is in (its cash below ``low``),
    if it began within the last :data:`LOOK_BACK` entries (else None); at most one batch of reads."""
    known = JOURNAL.tails.upto(JOURNAL.scope(point), end_seq)
    # memory first: the tail may reach further back than the window; what it finds is exact all the same
    for entry in reversed(known):
        if _cash_after(point, entry) >= low:
            return int(entry["seq"]) + 1
    first_known = int(known[0]["seq"]) if known else end_seq + 1
    first = max(1, end_seq - LOOK_BACK + 1)
    if first < first_known:
        batch = JOURNAL.read_entries(point, first, first_known - first)
        if any(e is None for e in batch):
            return None   # the store lags what was read of it: the next movement or refusal names it
        for entry in reversed(batch):
            if _cash_after(point, entry) >= low:
                return int(entry["seq"]) + 1
    return 1 if min(first, first_known) <= 1 else None


def _cash_after(point: str, entry: dict) -> int:
    return int(entry["balances"].get(ledger.cash(point), 0))


def _refused_hold(point: str, refused: ledger.Insufficient) -> None:
    """``float.low`` for a hold refused for want of cash at a point below the threshold, judged on the
    journal end the refusal read (``refused.seq``, ``refused.balance``): no read of its own."""
    low = settings.current().float_low_vnd
    if refused.balance < low:
        _alert(point, refused.balance, low, refused.seq)


def _alert(point: str, cash_vnd: int, low: int, end_seq: int, start: int | None = None) -> None:
    try:
        _raise_low(point, cash_vnd, low, start if start is not None else low_episode(point, low, end_seq))
    except Exception:  # noqa: BLE001 - the movement is made (or refused): the episode's next one raises it
        log.warning("float.low for %s not raised", point, exc_info=True)


def _raise_low(point: str, cash_vnd: int, low: int, episode: int | None) -> None:
    """``float.low`` for the point's episode, once per process (a repeat's id is the same: dropped);
    nothing for an episode whose start was not found (None, see :func:`low_episode`)."""
    scope = JOURNAL.scope(point)
    if episode is None or _raised.get(scope) == episode:
        return
    try:
        publish([fact("float.low", {"point": point, "cash_vnd": cash_vnd, "threshold_vnd": low},
                      subject=point, id=f"{point}.{episode}.float-low")])
    except Exception:  # noqa: BLE001 - the movement is made; the episode's next movement or refusal raises it again
        log.warning("float.low for %s not published; raised again at its next movement", point, exc_info=True)
        return
    _raised[scope] = episode
