"""The bank's books: balances and holds, each change idempotent per transfer (a repeat changes nothing).

Each change is a read-modify-write of the account under If-Match, started from the account as
this process last wrote it (:class:`~lscloud.store.recent.RecentItems`): a change by anyone else
(another replica, a test) makes that write fail, and the change is made again on a fresh read.
"""

from __future__ import annotations

import re
from typing import Callable

from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.store.recent import RecentItems

from .models import Account

ACCOUNTS = [f"99{n:08d}" for n in range(1, 21)]
"""The customers the seed opens, so that a test can read a balance it knows the start of."""
OPENING_VND = 200_000_000
TEST_RANGE = re.compile(r"99\d{8}")
"""Every account number of the test range is a customer of the simulated bank: one not opened yet
is opened, with ``OPENING_VND``, by its first hold or credit. So a load test can give each of its
customers the few withdrawals a day a real one makes, instead of piling a day's load on 20
accounts (whose daily counters at the soft ATM then grow to hundreds of transfers each)."""


def open_accounts() -> None:
    """Open the test customers' accounts (create-only: an open account keeps its balance)."""
    for n in ACCOUNTS:
        try:
            Account(n, balance=OPENING_VND, holds={}).save()
        except ConditionalCheckFailed:
            pass


# the accounts as this process last wrote them (a change of an unknown account: Account.DoesNotExist)
_ACCOUNTS: RecentItems[Account] = RecentItems(Account, max_items=4096)


def _opening(account: str) -> Callable[[], Account] | None:
    """How a test-range account not opened yet starts (None: an account outside the range is unknown).

    Given to :meth:`RecentItems.update` as ``create``: an account this process has not seen is
    presumed new and written create-only, so a new customer's first hold costs one PUT, no read; an
    account opened already (by another replica, or before a restart) fails that write and is read."""
    if not TEST_RANGE.fullmatch(account):
        return None
    return lambda: Account(account, balance=OPENING_VND, holds={})


def hold(account: str, tid: str, amount: int) -> bool:
    """Put ``amount`` on hold for withdrawal ``tid``; False when the account cannot cover it (or is
    unknown). A test-range account not opened yet is opened by it."""
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
        _ACCOUNTS.update(account, None, fn, create=_opening(account))
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
        _ACCOUNTS.update(account, None, fn)
    except DoesNotExist:
        pass


def credit(account: str, tid: str, amount: int, undo: bool = False) -> None:
    """Credit deposit ``tid`` (or, ``undo``, take back a credit that was made). A test-range account
    not opened yet is opened by a credit."""
    mark = f"dep:{tid}" + (":undo" if undo else "")

    def fn(a):
        if undo and f"dep:{tid}" not in a.holds:
            return  # never credited (we never heard of the deposit before its abort): nothing to undo
        if mark not in a.holds:
            a.balance += amount
            a.holds = {**a.holds, mark: 0}
    try:
        _ACCOUNTS.update(account, None, fn, create=None if undo else _opening(account))
    except DoesNotExist:
        pass
