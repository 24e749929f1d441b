"""The bank's books: balances and holds, each change idempotent per transfer (a repeat changes nothing).

Each change is a read-modify-write of the account under If-Match. The process keeps the accounts
as it last wrote them and starts the next change from there: a change by anyone else (another
replica, a test) makes that write fail, and the change is made again on a fresh read.
"""

from __future__ import annotations

import threading

from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.store.retry import DEFAULT

from .models import Account

ACCOUNTS = [f"99{n:08d}" for n in range(1, 21)]
OPENING_VND = 200_000_000


def open_accounts() -> None:
    """Open the test customers' accounts (create-only: an open account keeps its balance)."""
    for n in ACCOUNTS:
        try:
            Account(n, balance=OPENING_VND, holds={}).save()
        except ConditionalCheckFailed:
            pass


_written: dict[str, Account] = {}
_lock = threading.Lock()


def _change(account: str, fn) -> None:
    """``fn(item)`` on the account, saved under If-Match (``Account.DoesNotExist`` if there is none)."""
    def once():
        with _lock:
            item = _written.pop(account, None)   # a concurrent change of the same account reads it
        item = item if item is not None else Account.get(account)
        fn(item)
        item.save()
        with _lock:
            _written[account] = item

    DEFAULT.run(once)


def hold(account: str, tid: str, amount: int) -> bool:
    """Put ``amount`` on hold for withdrawal ``tid``; False when the account cannot cover it (or is unknown)."""
    result = []

    def fn(a):
        result.clear()
        if tid in a.holds:
            result.append(True)
        elif a.balance >= amount:
            a.balance -= amount
            a.holds = {**a.holds, tid: amount}
            result.append(True)
        else:
            result.append(False)
    try:
        _change(account, fn)
    except DoesNotExist:
        return False
    return result[0]


def settle_hold(account: str, tid: str, paid: bool) -> None:
    """Spend (``paid``) or release the hold of withdrawal ``tid``."""
    def fn(a):
        if tid in a.holds:
            amount = a.holds[tid]
            a.holds = {k: v for k, v in a.holds.items() if k != tid}
            if not paid:
                a.balance += amount
    try:
        _change(account, fn)
    except DoesNotExist:
        pass


def credit(account: str, tid: str, amount: int, undo: bool = False) -> None:
    """Credit deposit ``tid`` (or, ``undo``, take back a credit that was made)."""
    mark = f"dep:{tid}" + (":undo" if undo else "")

    def fn(a):
        if undo and f"dep:{tid}" not in a.holds:
            return  # never credited (we never heard of the deposit before its abort): nothing to undo
        if mark not in a.holds:
            a.balance += amount
            a.holds = {**a.holds, mark: 0}
    try:
        _change(account, fn)
    except DoesNotExist:
        pass
