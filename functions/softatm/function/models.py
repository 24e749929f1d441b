"""How the soft ATM keeps its records (its own tables in its bucket).

=====================  ========================================  =====================================
model (table)          key (hash / range)                        written
=====================  ========================================  =====================================
Bank                   code                                      create-only, then If-Match (keys)
Transfer               id (client-chosen)                        create-only, then If-Match only
JournalEntry           point / <seq 12 digits>                   create-only, append-only (the ledger)
JournalHead            point                                     If-Match (a cache of the journal end)
CustomerDay            <bank>_<kind>_<customer pseudonym>_<day>  If-Match (daily limit, per transfer)
BankDay                <bank>_<created day> / <µs>_<id>          create-only (list by period)
BankSettled            <bank>_<committed day> / <id>             create-only (settlement report)
OpenTransfer           "open" / <bank's deadline µs>_<id>       create-only, deleted when settled
PointSeen              "points" / <point>                        create-only (points with a journal)
CashOperation          id (client-chosen)                        create-only (deliveries, collections)
Reconciliation         bank / id (client-chosen)                 create-only (the bank's view + result)
=====================  ========================================  =====================================

Settlement reports are blobs (JSON and CSV, content-addressed) named by ``SettlementReport``
(bank / day). HMAC secrets are stored encrypted (:mod:`.banks`).
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class Bank(Model):
    class Meta:
        table = "softatm-banks"
        reference = True   # read by every transfer, webhook and signed request; a change here is read at once

    code = A.UnicodeAttribute(hash_key=True)
    data = A.JSONAttribute()
    version = A.VersionAttribute()


class Transfer(Model):
    class Meta:
        table = "softatm-transfers"

    id = A.UnicodeAttribute(hash_key=True)
    state = A.UnicodeAttribute()
    bank = A.UnicodeAttribute()
    point = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()


class JournalEntry(Model):
    class Meta:
        table = "softatm-journal"

    point = A.UnicodeAttribute(hash_key=True)
    seq = A.UnicodeAttribute(range_key=True)
    entry = A.JSONAttribute()


class LedgerCheckpoint(Model):
    """How far a point's journal was last verified whole: its seq and the balances replayed to it."""

    class Meta:
        table = "softatm-ledger-checkpoints"

    point = A.UnicodeAttribute(hash_key=True)
    seq = A.NumberAttribute()
    balances = A.JSONAttribute()
    at = A.UnicodeAttribute()


class JournalHead(Model):
    class Meta:
        table = "softatm-journal-heads"

    point = A.UnicodeAttribute(hash_key=True)
    head = A.JSONAttribute()
    version = A.VersionAttribute()


COUNTER_KEPT_DAYS = 3
"""A customer's day counter is kept until this many days after its day began: its day, and two
more for a late admission or abort to find it. It was never deleted: one per customer, bank, kind
and day, for good."""


class CustomerDay(Model):
    class Meta:
        table = "softatm-customer-days"
        ttl_max_s = COUNTER_KEPT_DAYS * 86_400

    key = A.UnicodeAttribute(hash_key=True)
    used = A.JSONAttribute()   # {transfer id: amount} of the day's transfers that are not aborted
    version = A.VersionAttribute()
    expires_at = A.TTLAttribute(null=True)   # none on an older counter: the sweep deletes it once outlived


class BankDay(Model):
    class Meta:
        table = "softatm-bank-days"

    key = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    transfer_id = A.UnicodeAttribute()


class BankSettled(Model):
    class Meta:
        table = "softatm-bank-settled"

    key = A.UnicodeAttribute(hash_key=True)
    transfer_id = A.UnicodeAttribute(range_key=True)


class OpenTransfer(Model):
    class Meta:
        table = "softatm-open"

    box = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    transfer_id = A.UnicodeAttribute()


class PointSeen(Model):
    class Meta:
        table = "softatm-points"

    box = A.UnicodeAttribute(hash_key=True)
    point = A.UnicodeAttribute(range_key=True)


class CashOperation(Model):
    class Meta:
        table = "softatm-cash-operations"

    id = A.UnicodeAttribute(hash_key=True)
    data = A.JSONAttribute()


class Reconciliation(Model):
    class Meta:
        table = "softatm-reconciliations"

    bank = A.UnicodeAttribute(hash_key=True)
    id = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class SettlementReport(Model):
    class Meta:
        table = "softatm-settlements"

    bank = A.UnicodeAttribute(hash_key=True)
    day = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()
