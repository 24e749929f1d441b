"""The simulated bank's books in the object store: its customers' accounts, its view of each soft ATM
transfer, and the webhooks it has seen."""

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


class Seen(Model):
    """A webhook already received (by event id): a redelivery is acknowledged and ignored."""

    class Meta:
        table = "bank-sim-events"

    id = A.UnicodeAttribute(hash_key=True)


class Nonce(Model):
    """A webhook signature's nonce already accepted: the same signed request again is a replay."""

    class Meta:
        table = "bank-sim-nonces"

    id = A.UnicodeAttribute(hash_key=True)
