"""How the directory keeps its reference data in the document store.

One document per item (``Unit``, ``Agency``, ``BorderGate``, ``PostOffice``, hash key
``code``) for the ``/{code}`` routes, plus one ``DirectorySnapshot`` per kind holding the
whole list, so a list or search request costs one GET instead of one per item. The item's
API representation is kept whole in ``data``; the typed attributes beside it are for
people browsing the bucket and for future queries.
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class Unit(Model):
    class Meta:
        table = "directory-units"
        reference = True  # read on every request, changed by a re-seed only (lscloud.freshness)

    code = A.UnicodeAttribute(hash_key=True)
    name = A.UnicodeAttribute()
    type = A.UnicodeAttribute()
    data = A.JSONAttribute()
    seeded = A.UTCDateTimeAttribute(default=A.utcnow)


class Agency(Model):
    class Meta:
        table = "directory-agencies"
        reference = True

    code = A.UnicodeAttribute(hash_key=True)
    name = A.UnicodeAttribute()
    kind = A.UnicodeAttribute()
    data = A.JSONAttribute()
    seeded = A.UTCDateTimeAttribute(default=A.utcnow)


class BorderGate(Model):
    class Meta:
        table = "directory-border-gates"
        reference = True

    code = A.UnicodeAttribute(hash_key=True)
    name = A.UnicodeAttribute()
    unit_code = A.UnicodeAttribute()
    data = A.JSONAttribute()
    seeded = A.UTCDateTimeAttribute(default=A.utcnow)


class PostOffice(Model):
    class Meta:
        table = "directory-post-offices"
        reference = True

    code = A.UnicodeAttribute(hash_key=True)
    name = A.UnicodeAttribute()
    unit_code = A.UnicodeAttribute()
    soft_atm = A.BooleanAttribute()
    data = A.JSONAttribute()
    seeded = A.UTCDateTimeAttribute(default=A.utcnow)


class DirectorySnapshot(Model):
    """The whole list of one kind (``units``, ``agencies``, ``border-gates``, ``post-offices``)."""

    class Meta:
        table = "directory-snapshots"
        reference = True

    kind = A.UnicodeAttribute(hash_key=True)
    items = A.JSONAttribute()
    fingerprint = A.UnicodeAttribute()       # sha256 of the whole seed this list came from
    digest = A.UnicodeAttribute()            # sha256 of this list alone
    size = A.NumberAttribute()
    seeded = A.UTCDateTimeAttribute(default=A.utcnow)


# kind -> (item model, the typed attributes copied from an item)
ITEM_MODELS: dict[str, tuple[type[Model], tuple[str, ...]]] = {
    "units": (Unit, ("name", "type")),
    "agencies": (Agency, ("name", "kind")),
    "border-gates": (BorderGate, ("name", "unit_code")),
    "post-offices": (PostOffice, ("name", "unit_code", "soft_atm")),
}
