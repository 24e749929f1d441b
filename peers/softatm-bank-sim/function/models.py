"""The simulated bank's books in the object store: its customers' accounts, its view of each soft ATM
transfer (with the ids of the webhooks it was written for)."""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class Account(Model):
    """One customer account; keyed by the account number's pseudonym (no account number in a key)."""

    class Meta:
        table = "bank-sim-accounts"

    number = A.PseudonymAttribute(hash_key=True)
    balance = A.NumberAttribute()
    holds = A.JSONAttribute()
    version = A.VersionAttribute()


class Record(Model):
    """The bank's view of one soft ATM transfer (``todo``: the work still owed on it)."""

    class Meta:
        table = "bank-sim-records"

    id = A.UnicodeAttribute(hash_key=True)
    data = A.JSONAttribute()
    version = A.VersionAttribute()

