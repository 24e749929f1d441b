"""How the dossiers function keeps its records in its bucket.

=================  ==========================================  ====================================
model (table)      key (hash / range)                          written
=================  ==========================================  ====================================
Dossier            id (client-chosen)                          create-only, then If-Match only;
                                                               its own idempotency record
DossierCode        public code -> id                           create-only (unique receipt code)
AuditEntry         dossier id / <µs>_<version>_<n>             create-only, append-only
OwnerIndex         ~applicant id / <µs received>_<id>          written before OwnerRecent; read by
                                                               the migration only
OwnerRecent        ~applicant id / <newest first µs>_<id>      create-only ("my dossiers", newest first)
WorkIndex          agency / <unit or _>_<µs received>_<id>     create-only, one per assigned agency+unit
DayIndex           local day / r_<id> (received), f_<id>       create-only (stats by period)
OpenIndex          "open" / <id>                               create-only, deleted when finished
DossierClock       "clock" / <id>|<agency>|<status>|<deadline>  create-only with every write; the
                   |<paused at>|<step>|<step deadline>|<flag>  overdue sweep deletes the old ones
Rating             dossier id                                  create-only: one rating per dossier
DayFigures         local day                                   If-Match: the day's figures so far
=================  ==========================================  ====================================

OpenIndex and DossierClock are working objects (``Meta.working``): in the bucket under object lock
their versions are kept a day, not with the records (:mod:`lscloud.store.working`).

Attachments and result documents are blobs (content-addressed, sha256) under ``dossiers-files/``.
``~`` marks a key held as a pseudonym (a keyed hash,
:class:`~lscloud.store.attributes.PseudonymAttribute`): an applicant's CCCD never appears in an
object key.
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class Dossier(Model):
    class Meta:
        table = "dossiers"

    id = A.UnicodeAttribute(hash_key=True)
    code = A.UnicodeAttribute()
    status = A.UnicodeAttribute()
    owner = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()
    # what the submission's request was (keyed digests only, lscloud.idempotency.first_request):
    # a resend is answered from the dossier itself, no separate idempotency record
    request = A.JSONAttribute(null=True)
    # the receipt's transition: a resend finishes its audit, indexes and event (Aggregate.resend)
    created = A.JSONAttribute(null=True)
    # the last move's transitions: a refused retry of a move cut off after its write finishes its
    # audit, indexes and events (Aggregate._finish_moved)
    moved = A.JSONAttribute(null=True)


class DossierCode(Model):
    class Meta:
        table = "dossiers-codes"

    code = A.UnicodeAttribute(hash_key=True)
    dossier_id = A.UnicodeAttribute()


class AuditEntry(Model):
    class Meta:
        table = "dossiers-audit"

    dossier_id = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class OwnerIndex(Model):
    class Meta:
        table = "dossiers-owners"

    owner = A.PseudonymAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    dossier_id = A.UnicodeAttribute()


class OwnerRecent(Model):
    """An applicant's dossiers, newest first (:func:`lscloud.store.keys.newest_first`)."""

    class Meta:
        table = "dossiers-owners-recent"

    owner = A.PseudonymAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    dossier_id = A.UnicodeAttribute()


class WorkIndex(Model):
    class Meta:
        table = "dossiers-work"

    agency = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    dossier_id = A.UnicodeAttribute()


class DayIndex(Model):
    class Meta:
        table = "dossiers-days"

    day = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    dossier_id = A.UnicodeAttribute()


class DayFigures(Model):
    """A local day's figures as its index entries so far add them up (:func:`.stats.day_cells`):
    ``seen`` the entries taken in, ``cells`` ``[agency, unit, procedure, received, received_online,
    resolved, on_time, late, cancelled]``. Derived from the records, so a working object."""

    class Meta:
        table = "dossiers-day-figures"
        working = True   # derived, rewritten as the day goes: not kept with the records under object lock

    day = A.UnicodeAttribute(hash_key=True)
    seen = A.JSONAttribute(default=list)
    cells = A.JSONAttribute(default=list)
    version = A.VersionAttribute()


class OpenIndex(Model):
    class Meta:
        table = "dossiers-open"
        working = True   # live work only: not kept with the records under object lock

    box = A.UnicodeAttribute(hash_key=True)
    dossier_id = A.UnicodeAttribute(range_key=True)


class DossierClock(Model):
    class Meta:
        table = "dossiers-clock"
        working = True   # live work only: not kept with the records under object lock

    box = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)   # .clocks.key: what the overdue sweep needs


class Rating(Model):
    class Meta:
        table = "dossiers-ratings"

    dossier_id = A.UnicodeAttribute(hash_key=True)
    data = A.JSONAttribute()
