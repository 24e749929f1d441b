"""What is known of a point journal's end (:mod:`.ledger`): its head — the last sequence number,
the balances after it, the last movement ids — and a process's memory of those ends (:class:`Tails`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Hashable

RECENT = 64  # movement ids the head remembers, so a retry rarely needs to read old entries
KEEP = 128
"""Entries a process keeps of each journal's end. A transfer's movements look back to the entry its
journal was at when it was created (``since_seq``), seconds to hours before: 128 entries is hours
of a busy point (a withdrawal makes two or three). It was 1,024: an entry as held costs about
2.8 KB (measured), so 200 points filled ~580 MB, past a replica's 384 MiB, after a few weeks up. A
transfer older than what is kept reads its journal's entries from the store, as before."""


@dataclass
class Head:
    seq: int = 0
    balances: dict[str, int] = field(default_factory=dict)
    recent: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"seq": self.seq, "balances": dict(self.balances), "recent": list(self.recent)}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Head":
        d = d or {}
        return cls(int(d.get("seq", 0)), {k: int(v) for k, v in (d.get("balances") or {}).items()},
                   list(d.get("recent") or []))


def next_head(head: Head, entry: dict) -> Head:
    balances = dict(entry["balances"])
    recent = (head.recent + [entry["movement"]["id"]])[-RECENT:]
    return Head(int(entry["seq"]), balances, recent)


STALE = object()   # a tail's head token that a save found out of date: read the stored head again


@dataclass
class _Tail:
    head: Head
    token: object
    saved: int                     # the sequence number of the stored head, as far as we know
    entries: OrderedDict           # seq -> entry: every entry from the first key up to head.seq
    ids: dict[str, int]            # movement id -> seq, for those entries


class Tails:
    """What one process knows of its journals' ends (see the module docstring): a cache only —
    every append it leads to is create-only, so a stale tail costs a failed append and a read."""

    def __init__(self, keep: int = KEEP, head_every: int = 8):
        self.keep, self.head_every = keep, head_every
        self._tails: dict[Hashable, _Tail] = {}
        self._lock = threading.Lock()

    def head(self, key: Hashable) -> tuple[Head, object] | None:
        with self._lock:
            t = self._tails.get(key)
            return None if t is None else (t.head, t.token)

    def start(self, key: Hashable, head: Head, token: object, later: list[dict]) -> None:
        """Remember a journal read from the store: its stored head, then ``later`` entries."""
        end = head
        for e in later:
            end = next_head(end, e)
        with self._lock:
            t = self._tails.get(key)
            if t is not None and t.head.seq >= end.seq:
                return  # another thread knows more already
            kept = later[-self.keep:] if self.keep else []
            entries = OrderedDict((int(e["seq"]), e) for e in kept)
            self._tails[key] = _Tail(end, token, head.seq, entries,
                                     {e["movement"]["id"]: int(e["seq"]) for e in kept})

    def extend(self, key: Hashable, entries: list[dict]) -> None:
        """Add entries read or written after the tail's head (those it already knows are skipped;
        a gap — entries that do not follow it — forgets the tail)."""
        with self._lock:
            t = self._tails.get(key)
            if t is None:
                return
            for e in entries:
                seq = int(e["seq"])
                if seq <= t.head.seq:
                    continue
                if seq != t.head.seq + 1:
                    del self._tails[key]
                    return
                t.head = next_head(t.head, e)
                t.entries[seq] = e
                t.ids[e["movement"]["id"]] = seq
            while len(t.entries) > self.keep:
                _, old = t.entries.popitem(last=False)
                t.ids.pop(old["movement"]["id"], None)

    def entry_of(self, key: Hashable, movement_id: str) -> dict | None:
        with self._lock:
            t = self._tails.get(key)
            if t is None or movement_id not in t.ids:
                return None
            return t.entries[t.ids[movement_id]]

    def upto(self, key: Hashable, seq: int) -> list[dict]:
        """The entries known up to entry ``seq``, in order, ending with it ([] if it is not known)."""
        with self._lock:
            t = self._tails.get(key)
            if t is None or seq not in t.entries:
                return []
            return [e for s, e in t.entries.items() if s <= seq]

    def covers(self, key: Hashable, since_seq: int) -> bool:
        """Whether every entry after ``since_seq`` up to the tail's head is known."""
        with self._lock:
            t = self._tails.get(key)
            if t is None:
                return False
            first = next(iter(t.entries), t.head.seq + 1)
            return since_seq + 1 >= first

    def due(self, key: Hashable) -> tuple[Head, object] | None:
        """The head to save, and its token, if the stored one is :attr:`head_every` entries behind."""
        with self._lock:
            t = self._tails.get(key)
            if t is None or t.head.seq - t.saved < self.head_every:
                return None
            return t.head, t.token

    def saved(self, key: Hashable, head: Head, token: object, ok: bool) -> None:
        with self._lock:
            t = self._tails.get(key)
            if t is None:
                return
            if ok:
                t.saved, t.token = max(t.saved, head.seq), token
            else:
                t.token = STALE

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._tails.pop(key, None)
