"""How the catalogue is kept in the document store.

One ``Procedure`` document per code (the ``/v1/procedures/{code}`` answer, kept whole in
``data``), and one ``CatalogueSnapshot`` holding every procedure, the folded search index and
the fields, so a search costs one GET. Form templates are blobs (content-addressed PDFs).
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class Procedure(Model):
    class Meta:
        table = "procedures"

    code = A.UnicodeAttribute(hash_key=True)
    name = A.UnicodeAttribute()
    field = A.UnicodeAttribute()
    data = A.JSONAttribute()
    seeded = A.UTCDateTimeAttribute(default=A.utcnow)


class CatalogueSnapshot(Model):
    class Meta:
        table = "procedures-snapshots"

    kind = A.UnicodeAttribute(hash_key=True)    # "catalogue"
    items = A.JSONAttribute()                   # every procedure, catalogue order
    index = A.JSONAttribute()                   # folded texts per procedure, same order
    fields = A.JSONAttribute()
    fingerprint = A.UnicodeAttribute()
    size = A.NumberAttribute()
    seeded = A.UTCDateTimeAttribute(default=A.utcnow)


SNAPSHOT = "catalogue"
TEMPLATE_PREFIX = "procedure-templates"
