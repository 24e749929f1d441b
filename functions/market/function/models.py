"""The market's records in the store.

Shops and lots are documents changed through :class:`lscloud.aggregate.Aggregate`; a stamp batch is
one create-only record however many stamps it holds, its codes — signed once — kept beside it in
create-only parts; a stamp gets a scan record only once it is scanned. Indexes by owner are keyed by the
owner's pseudonym: a household's owner is a person (CCCD) and since 1 July 2025 a household
business's tax code is its owner's personal number.
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class Shop(Model):
    class Meta:
        table = "market-shops"

    id = A.UnicodeAttribute(hash_key=True)
    status = A.UnicodeAttribute()
    commune = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()
    # what the open request was (keyed digests only, lscloud.idempotency.first_request): the shop is
    # its own idempotency record, so a resend is answered from it; a shop opened before has none
    request = A.JSONAttribute(null=True)
    # the open's transition: a resend finishes its audit entry, its indexes and its event
    # (Aggregate.resend); none on a shop opened before it
    created = A.JSONAttribute(null=True)


class ShopAudit(Model):
    class Meta:
        table = "market-shops-audit"

    shop_id = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class ShopByOwner(Model):
    class Meta:
        table = "market-shops-by-owner"

    owner = A.PseudonymAttribute(hash_key=True)
    shop_id = A.UnicodeAttribute(range_key=True)


class Product(Model):
    class Meta:
        table = "market-products"

    shop_id = A.UnicodeAttribute(hash_key=True)
    id = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()
    # what the add request was (keyed digests only, lscloud.idempotency.first_request): the product
    # is its own idempotency record, so a resend is answered from it; a product added before has none
    request = A.JSONAttribute(null=True)


class Lot(Model):
    class Meta:
        table = "market-lots"

    id = A.UnicodeAttribute(hash_key=True)
    status = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()
    # what the register request was (keyed digests only, lscloud.idempotency.first_request): a
    # resend is answered from the lot itself; a lot stored before it has none (its resend is a 409)
    request = A.JSONAttribute(null=True)
    # the register's transition: a resend finishes its audit, its producer's index and its event
    # (Aggregate.resend); none on a lot stored before it
    created = A.JSONAttribute(null=True)
    # the last move's transitions: a refused retry of a move cut off after its write finishes its
    # audit, indexes and events (Aggregate._finish_moved)
    moved = A.JSONAttribute(null=True)


class LotAudit(Model):
    class Meta:
        table = "market-lots-audit"

    lot_id = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class LotByProducer(Model):
    class Meta:
        table = "market-lots-by-producer"

    producer = A.PseudonymAttribute(hash_key=True)
    lot_id = A.UnicodeAttribute(range_key=True)


class StampBatch(Model):
    """One issue of stamps: serials 0 … stamps-1 of ``batch``, for ``lot``, signed with key ``key_index``."""

    class Meta:
        table = "market-stamp-batches"

    batch = A.UnicodeAttribute(hash_key=True)
    lot_id = A.UnicodeAttribute()
    stamps = A.NumberAttribute()
    key_index = A.NumberAttribute()
    issued_at = A.UnicodeAttribute()
    # the idempotency identity of the request that issued it (its id derives from it): a retry of
    # that request finds this batch instead of issuing another; none on a batch stored before it
    request = A.UnicodeAttribute(null=True)


class StampCodes(Model):
    """Part of a batch's codes, signed once and kept so every download serves the same bytes: the
    codes of serials ``first`` … (:data:`.stamps.PART_CODES` of them, the last part fewer), each
    followed by a newline, as the codes file holds them. Written create-only, never changed."""

    class Meta:
        table = "market-stamp-codes"

    batch = A.UnicodeAttribute(hash_key=True)
    first = A.UnicodeAttribute(range_key=True)      # the part's first serial, zero-padded: parts in order
    codes = A.UnicodeAttribute()


class StampScans(Model):
    """The scans of one stamp (written on its first scan): how many, when, roughly where."""

    class Meta:
        table = "market-stamp-scans"

    batch = A.UnicodeAttribute(hash_key=True)
    serial = A.UnicodeAttribute(range_key=True)     # zero-padded: listings in serial order
    data = A.JSONAttribute()


class ShopByCommune(Model):
    class Meta:
        table = "market-shops-by-commune"

    commune = A.UnicodeAttribute(hash_key=True)
    shop_id = A.UnicodeAttribute(range_key=True)


class ExportLink(Model):
    """Which lots a border declaration was linked to (so border's ``truck.exited`` finds them)."""

    class Meta:
        table = "market-export-links"

    declaration = A.UnicodeAttribute(hash_key=True)
    lot_id = A.UnicodeAttribute(range_key=True)


class ScanRate(Model):
    """Scans counted per caller and window (:mod:`lscloud.ratelimit`): a subject is a pseudonym,
    the clock's tick sweeps old windows."""

    class Meta:
        table = "market-scan-rate"
        ttl_max_s = 2 * 3_600       # a window lives two of its length; windows are at most an hour

    subject = A.UnicodeAttribute(hash_key=True)
    window = A.UnicodeAttribute(range_key=True)
    hits = A.NumberAttribute(default=0)
    expires_at = A.TTLAttribute()
