"""The simulated bank's books in the object store: its customers' accounts, its view of each soft ATM
transfer (with the ids of the webhooks it was written for)."""

from __future__ import annotations

from lscloud.store import Model, attributes as A
from lscloud.store.recent import RecentItems


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


RECORDS: RecentItems[Record] = RecentItems(Record, max_items=20_000)
"""The records as this process last wrote or read them: a webhook's change starts from one instead
of a read, and a rescan reads only the records whose ETag is not the one held here. Bounded to a busy
day's records, so that the rescan of a ten-minute soak reads what changed, not all 6,000: about
1.25 KB each as held (tracemalloc, stop 37), 25 MB at the bound."""
