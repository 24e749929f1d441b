"""The bank's books: balances and holds, each change idempotent per transfer (a repeat changes nothing)."""

from __future__ import annotations

from lscloud.store import ConditionalCheckFailed, DoesNotExist

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
        Account.update(account, None, fn)
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
        Account.update(account, None, fn)
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
        Account.update(account, None, fn)
    except DoesNotExist:
        pass
