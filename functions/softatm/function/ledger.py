"""The double-entry ledger: append-only journals, one per post-office point.

Every movement is two entries that sum to zero (``+amount`` on one account, ``-amount`` on the
other). Every movement touches exactly one point, so the ledger is partitioned by point: a
point's journal is a gap-free sequence of create-only entries ``1, 2, 3 …``, each holding one
movement and the balances of the point's accounts after it. Appending entry ``n+1`` is a
create-only write: of two writers racing for the same sequence number exactly one wins, so the
balances an entry carries were checked against the true previous balances.

The *head* (last sequence number and balances) is a cache of the journal's end, saved after
each append; a reader rolls it forward through any later entries (a writer that crashed between
its append and its head update leaves exactly such an entry). Nothing is ever edited: a release
of held cash is a new movement, not the deletion of the hold.

A journal may carry :class:`Tails`, what its process already knows of each journal's end: the
head after the last entry it read or wrote, and every entry from some sequence number up to it.
A writer then computes its entry against that head and appends at once, without reading the
store first; the create-only append still decides (a head that another replica moved on makes the
append fail, and the writer reads the entries it missed). A movement id among the known entries
is found in memory; one older than them is searched in the store as before. With tails the
stored head is saved every :attr:`Tails.head_every` entries (it only shortens a cold reader's
roll-forward).

Accounts (amounts in đồng, integers; a positive balance is an asset of the post-office network):

- ``point:<code>:cash``  cash in the point's drawer, free to pay out (never negative);
- ``point:<code>:held``  cash set aside for withdrawals in flight (never negative);
- ``bank:<code>``        the bank's settlement position: positive = the bank owes the network
  (it paid out cash for the bank), negative = the network owes the bank (deposits);
- ``vnpost:vault``       VNPost's treasury, source of cash deliveries and sink of collections.

A point's journal carries the point's share of the bank and vault accounts; a bank's position is
the sum over all points.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Hashable, Iterable, Mapping, Protocol

from .journal_ends import STALE, Head, Tails, next_head as _next

VAULT = "vnpost:vault"


def cash(point: str) -> str:
    return f"point:{point}:cash"


def held(point: str) -> str:
    return f"point:{point}:held"


def bank(code: str) -> str:
    return f"bank:{code}"


def never_negative(account: str) -> bool:
    return account.startswith("point:")


# -- movements -------------------------------------------------------------------------------------

KINDS = {
    # kind: (debit account, credit account) as functions of (point, bank)
    "hold": (lambda p, b: held(p), lambda p, b: cash(p)),          # withdrawal created: set cash aside
    "release": (lambda p, b: cash(p), lambda p, b: held(p)),       # withdrawal aborted: back to the drawer
    "payout": (lambda p, b: bank(b), lambda p, b: held(p)),        # withdrawal committed: cash left for the bank
    "intake": (lambda p, b: cash(p), lambda p, b: bank(b)),        # deposit committed: cash in, owed to the bank
    "delivery": (lambda p, b: cash(p), lambda p, b: VAULT),        # the vault delivers cash to the point
    "collection": (lambda p, b: VAULT, lambda p, b: cash(p)),      # the vault collects cash from the point
}


class LedgerError(Exception):
    pass


class Insufficient(LedgerError):
    """The movement would make a point account negative: ``balance`` is the account's after entry
    ``seq``, the journal's end it was judged against (so a caller needs no read to know it)."""

    def __init__(self, account: str, balance: int, amount: int, seq: int = 0):
        super().__init__(f"{account} holds {balance} VND, {amount} VND needed")
        self.account, self.balance, self.amount, self.seq = account, balance, amount, seq


@dataclass(frozen=True)
class Movement:
    id: str                 # unique: "<transfer id>:<kind>" or "<operation id>:<kind>"
    kind: str
    point: str
    amount: int
    bank: str | None = None
    ref: str | None = None  # the transfer or operation it belongs to
    at: str | None = None

    def entries(self) -> list[tuple[str, int]]:
        debit, credit = KINDS[self.kind]
        return [(debit(self.point, self.bank), self.amount), (credit(self.point, self.bank), -self.amount)]

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "point": self.point, "amount": self.amount, "bank": self.bank,
                "ref": self.ref, "at": self.at,
                "entries": [{"account": a, "amount": v} for a, v in self.entries()]}


def movement(kind: str, point: str, amount: int, *, ref: str, bank_code: str | None = None, at: str | None = None,
             id: str | None = None) -> Movement:
    if kind not in KINDS:
        raise ValueError(f"unknown movement kind {kind!r}")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError("a movement moves a positive whole number of đồng")
    if kind in ("hold", "release", "payout", "intake") and not bank_code:
        raise ValueError(f"a {kind} movement names its bank")
    return Movement(id or f"{ref}:{kind}", kind, point, amount, bank_code, ref, at)


# -- journals ---------------------------------------------------------------------------------------

class Journal(Protocol):
    """Where a point's entries live (the object store in production, a dict in property tests).

    It may also have a ``tails`` attribute (:class:`Tails`) and a ``scope(point)`` naming the
    journal across stores (a bucket and a point), to remember its ends in memory."""

    def read_head(self, point: str) -> tuple[Head, object]: ...
    def save_head(self, point: str, head: Head, token: object) -> object: ...  # conditional: new token, None if taken
    def read_entry(self, point: str, seq: int) -> dict | None: ...
    def append(self, point: str, seq: int, entry: dict) -> bool: ...          # create-only: False if taken


@dataclass
class Applied:
    seq: int
    balances: dict[str, int]
    new: bool  # False: the movement was already in the journal (a retry)
    before: dict[str, int] | None = None  # the balances just before it (when ``new``)


def _tails(journal: Journal, point: str) -> tuple[Tails | None, Hashable]:
    tails = getattr(journal, "tails", None)
    if tails is None:
        return None, point
    scope = getattr(journal, "scope", None)
    return tails, scope(point) if scope is not None else point


def _read_forward(journal: Journal, point: str, head: Head) -> tuple[Head, list[dict]]:
    later = []
    while (entry := journal.read_entry(point, head.seq + 1)) is not None:
        later.append(entry)
        head = _next(head, entry)
    return head, later


def roll_forward(journal: Journal, point: str) -> tuple[Head, object, list[dict]]:
    """The true head: the cached head (the process's tail, else the stored head) plus any entries
    written after it."""
    tails, key = _tails(journal, point)
    known = tails.head(key) if tails is not None else None
    if known is not None:
        head, token = known
        head, later = _read_forward(journal, point, head)
        tails.extend(key, later)
        return head, token, later
    head, token = journal.read_head(point)
    end, later = _read_forward(journal, point, head)
    if tails is not None:
        tails.start(key, head, token, later)
    return end, token, later


def known_end(journal: Journal, point: str) -> Head:
    """A head no later than the journal's end, without reading the store if this process knows one
    (a lower bound is all a transfer's ``journal_from`` needs)."""
    tails, key = _tails(journal, point)
    known = tails.head(key) if tails is not None else None
    return known[0] if known is not None else roll_forward(journal, point)[0]


def find(journal: Journal, point: str, movement_id: str, since_seq: int, head: Head) -> dict | None:
    """The entry holding ``movement_id`` among ``since_seq + 1 .. head.seq``, if any."""
    if movement_id in head.recent:
        first = head.seq - len(head.recent) + 1 + head.recent.index(movement_id)
        return journal.read_entry(point, first)
    start = max(since_seq + 1, 1)
    stop = head.seq - len(head.recent)  # the recent ones were checked above
    for seq in range(start, stop + 1):
        entry = journal.read_entry(point, seq)
        if entry is not None and entry["movement"]["id"] == movement_id:
            return entry
    return None


def apply(journal: Journal, m: Movement, *, since_seq: int = 0, attempts: int = 200) -> Applied:
    """Append ``m`` to its point's journal exactly once.

    ``since_seq``: no entry at or before it can hold ``m`` (the journal's head when the transfer
    was created), so only later entries are searched for a previous run of the same movement.
    Raises :class:`Insufficient` if a point account would go negative.
    """
    tails, key = _tails(journal, m.point)
    for _ in range(attempts):
        known = tails.head(key) if tails is not None else None
        if known is None:
            head, token, _later = roll_forward(journal, m.point)
        else:
            head, token = known   # appended to at once: the create-only append checks it is the end
        done = tails.entry_of(key, m.id) if tails is not None else None
        if done is None and not (tails is not None and known is not None and tails.covers(key, since_seq)):
            done = find(journal, m.point, m.id, since_seq, head)
        if done is not None:
            return Applied(int(done["seq"]), dict(done["balances"]), False)
        balances = dict(head.balances)
        for account, amount in m.entries():
            after = balances.get(account, 0) + amount
            if after < 0 and never_negative(account):
                if known is not None:
                    break   # judged on what this process knew: read the true end before refusing
                raise Insufficient(account, balances.get(account, 0), -amount, head.seq)
            balances[account] = after
        else:
            entry = {"seq": head.seq + 1, "movement": m.as_dict(), "balances": balances}
            if journal.append(m.point, head.seq + 1, entry):
                new_head = _next(head, entry)
                if tails is None:
                    try:
                        journal.save_head(m.point, new_head, token)
                    except Exception:  # noqa: BLE001 - the head is a cache; the next reader rolls forward
                        pass
                else:
                    tails.extend(key, [entry])
                    _save_due_head(journal, m.point, tails, key)
                return Applied(new_head.seq, balances, True, dict(head.balances))
        # lost the race for head.seq + 1 (or judged on a stale tail): read again, search the new entries
        if tails is not None and known is not None:
            before = head.seq
            head, _, _ = roll_forward(journal, m.point)
            if head.seq == before:
                tails.forget(key)   # the tail says more than the store has: start again from the store
    raise LedgerError(f"journal of {m.point} kept moving: {attempts} attempts")


def lookup(journal: Journal, point: str, movement_id: str, since_seq: int = 0) -> dict | None:
    """The entry holding ``movement_id`` after ``since_seq``, if any (from memory when it can)."""
    tails, key = _tails(journal, point)
    if tails is not None and (done := tails.entry_of(key, movement_id)) is not None:
        return done
    head, _, _ = roll_forward(journal, point)
    if tails is not None and (done := tails.entry_of(key, movement_id)) is not None:
        return done
    return find(journal, point, movement_id, since_seq, head)


def _save_due_head(journal: Journal, point: str, tails: Tails, key: Hashable) -> None:
    due = tails.due(key)
    if due is None:
        return
    head, token = due
    try:
        if token is STALE:
            stored, token = journal.read_head(point)
            if stored.seq >= head.seq:
                tails.saved(key, stored, token, True)
                return
        token = journal.save_head(point, head, token)
    except Exception:  # noqa: BLE001 - the head is a cache; the next reader rolls forward
        token = None
    tails.saved(key, head, token, token is not None)


def balances(journal: Journal, point: str) -> dict[str, int]:
    return roll_forward(journal, point)[0].balances


READ_AHEAD = 32
"""Entries a replay asks for at once (where the journal can: :meth:`StoreJournal.read_entries`)."""


def entries(journal: Journal, point: str, after: int = 0, upto: int = 0) -> Iterable[dict]:
    """The point's journal entries after seq ``after``, in order. Up to ``upto`` (the end a head
    says is there) they are read :data:`READ_AHEAD` at a time where the journal reads several at
    once (one after another, a year of a point was minutes); past it one at a time, so a batch never
    asks for entries that are not there."""
    seq = after + 1
    many = getattr(journal, "read_entries", None)
    while True:
        n = min(READ_AHEAD, upto - seq + 1)
        batch = many(point, seq, n) if many and n > 1 else [journal.read_entry(point, seq)]
        for entry in batch:
            if entry is None:
                return
            yield entry
            seq += 1


def verify(journal: Journal, points: Iterable[str], since: Mapping[str, Mapping] | None = None) -> dict:
    """Replay the journals and check the ledger's invariants: from each point's first entry, or from
    its checkpoint in ``since`` (``{point: {"seq", "balances"}}``, what an earlier verification
    returned in ``checkpoints``), so that a verification costs what the journals grew since.

    Returns ``{"ok", "movements", "problems", "balances", "checkpoints"}``: each movement's entries
    sum to zero and carry the right accounts, every balance equals the sum of the entries before it,
    no point account was ever negative, no movement id appears twice (among the entries replayed),
    and every head agrees with its journal.
    """
    problems: list[str] = []
    seen: dict[str, str] = {}
    totals: dict[str, int] = {}
    checkpoints: dict[str, dict] = {}
    count = 0
    for point in sorted(set(points)):
        start = (since or {}).get(point) or {}
        running: dict[str, int] = {k: int(v) for k, v in (start.get("balances") or {}).items()}
        last = int(start.get("seq") or 0)
        head, _ = journal.read_head(point)
        for entry in entries(journal, point, last, head.seq):
            count += 1
            mv = entry["movement"]
            where = f"{point}#{entry['seq']}"
            if int(entry["seq"]) != last + 1:
                problems.append(f"{where}: sequence gap after {last}")
            last = int(entry["seq"])
            amounts = [e["amount"] for e in mv["entries"]]
            if len(amounts) != 2 or sum(amounts) != 0 or any(not isinstance(a, int) for a in amounts):
                problems.append(f"{where}: entries {mv['entries']} do not sum to zero in two legs")
            expected = movement(mv["kind"], mv["point"], mv["amount"], ref=mv["ref"], bank_code=mv["bank"],
                                id=mv["id"]).entries()
            if [(e["account"], e["amount"]) for e in mv["entries"]] != expected or mv["point"] != point:
                problems.append(f"{where}: entries do not match a {mv['kind']} movement at {point}")
            if mv["id"] in seen:
                problems.append(f"{where}: movement {mv['id']} already at {seen[mv['id']]}")
            seen[mv["id"]] = where
            for e in mv["entries"]:
                running[e["account"]] = running.get(e["account"], 0) + e["amount"]
                if running[e["account"]] < 0 and never_negative(e["account"]):
                    problems.append(f"{where}: {e['account']} negative ({running[e['account']]})")
            if {k: v for k, v in running.items()} != {k: int(v) for k, v in entry["balances"].items()}:
                problems.append(f"{where}: stored balances differ from the replayed ones")
        if head.seq > last or (head.seq == last and head.seq and head.balances != running):
            problems.append(f"{point}: head (seq {head.seq}) disagrees with the journal (seq {last})")
        for k, v in running.items():
            totals[k] = totals.get(k, 0) + v
        checkpoints[point] = {"seq": last, "balances": dict(running)}
    if sum(totals.values()) != 0:
        problems.append(f"the balances sum to {sum(totals.values())}, not 0")
    return {"ok": not problems, "movements": count, "problems": problems, "balances": totals,
            "checkpoints": checkpoints}


class MemoryJournal:
    """A journal in a dict, with the same create-only / conditional semantics (property tests)."""

    def __init__(self):
        self.heads: dict[str, tuple[dict, int]] = {}
        self.rows: dict[tuple[str, int], dict] = {}
        self.lock = threading.Lock()

    def read_head(self, point):
        with self.lock:
            doc, version = self.heads.get(point, (None, 0))
            return Head.from_dict(doc), version

    def save_head(self, point, head, token):
        with self.lock:
            if self.heads.get(point, (None, 0))[1] == token:
                self.heads[point] = (head.as_dict(), token + 1)
                return token + 1
            return None

    def read_entry(self, point, seq):
        with self.lock:
            return self.rows.get((point, seq))

    def append(self, point, seq, entry):
        with self.lock:
            if (point, seq) in self.rows:
                return False
            self.rows[(point, seq)] = entry
            return True
