"""Citizen reports in the store.

A report is one document changed through :class:`lscloud.aggregate.Aggregate` (with its audit
trail). Indexes are create-only key objects, written after the report and repeat-safe:

- ``ReportByDay``: every report under its local day of receipt (Open311 ``GET requests`` reads the
  days of its window, newest last);
- ``OpenReport``: the reports not yet closed (deleted on closing);
- ``DueReport``: each open report not yet flagged overdue, under its deadline (``<deadline UTC>_<id>``):
  the minute's overdue sweep lists the entries whose deadline has passed and reads only those
  reports (it read every open report, every minute); deleted once flagged or closed;
- ``AgencyQueue``: each open report under the agency it is routed to and its deadline
  (``<deadline UTC>_<id>``): an officer's queue lists their agency's entries and reads only those
  reports (it read every open report of the province on every request); an entry a report left
  behind (closed, transferred, another deadline) is dropped when a queue read finds it so;
- ``UpdateIndex``: every move of a report that FixMyStreet's updates list, under the local day it
  was made (``<at UTC>|<report id>|<audit entry>|<state>``): ``GET servicerequestupdates`` lists the
  window's moves from it, of any report, and reads only the reports it answers with;
- ``NearbyOpen``: open reports by category and geohash cell (precision 7, ~150 m), for "me too":
  a lookup reads the caller's cell and its eight neighbours, never the whole table;
- ``ReportToken``: an Open311 token → the report's id;
- ``ApiKey``: a partner application's Open311 key, kept as a keyed hash only;
- ``RateWindow``: report creations counted per caller and per API key (:mod:`lscloud.ratelimit`,
  :mod:`.limits`); subjects are pseudonyms, the tick sweeps old windows;
- ``ReportTouched``: the change feed, one entry per committed write of a report (any move, a rating,
  the overdue flag, a hide, a "me too"), under the local day it was written (``<at UTC>|<report
  id>``): the stats learn from its keys which reports moved since a day's summary was kept; the
  tick sweeps entries older than :data:`TOUCHED_KEPT_S`;
- ``DayFigures``: a local day of receipt's summary for the stats: each report's part of the figures
  (its commune, category, agency, status, overdue flag and rating) by its ``ReportByDay`` entry, and
  up to when the feed's moves are in it (:mod:`.queries`);
- ``ReportOwner``: a reporter's reports, under a pseudonym of their phone, e-mail or CCCD
  (:mod:`.owners`): how an erasure request finds them (:mod:`.erase`); written with the report;
- ``ClosedReport``: each closed report whose reporter's contact is still there, under the time of its
  last move (``<updated_at UTC>_<id>``): the tick lists those past the keep period (:mod:`.retention`).

``ReportTouched`` and ``DayFigures`` are derived working objects (``Meta.working``): not kept with
the records under object lock (:mod:`lscloud.store.working`).
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A

PSEUDONYM_PURPOSE = "reports-reporters"
"""The purpose of every pseudonym of a reporter: a signed-in citizen's subject (the report's owner,
its actors in the audit trail and events) and the owner index's phone, e-mail and CCCD (:mod:`.owners`)."""
TOUCHED_KEPT_S = 14 * 86_400
"""How long a change-feed entry is kept: twice the age at which a day's summary is built again from
its reports (:data:`.queries.REBUILD_AFTER`), so no summary in use needs an entry already swept."""


class Report(Model):
    class Meta:
        table = "reports"

    id = A.UnicodeAttribute(hash_key=True)
    status = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()
    # what the request that sent it was (keyed digests only, lscloud.idempotency.first_request): its
    # id derives from it, so the retry of a run cut off after the create finds it and is answered
    request = A.JSONAttribute(null=True)
    # the receipt's transition: that retry finishes its audit entry, indexes and event (Aggregate.resend)
    created = A.JSONAttribute(null=True)
    # the last move's transitions: a refused retry of a move cut off after its write finishes its
    # audit, indexes and events (Aggregate._finish_moved)
    moved = A.JSONAttribute(null=True)


class ReportAudit(Model):
    class Meta:
        table = "reports-audit"

    report_id = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class ReportByDay(Model):
    class Meta:
        table = "reports-by-day"

    day = A.UnicodeAttribute(hash_key=True)          # 2026-12-03 (Asia/Ho_Chi_Minh)
    entry = A.UnicodeAttribute(range_key=True)       # <requested_at UTC>_<report id>


class OpenReport(Model):
    class Meta:
        table = "reports-open"

    bucket = A.UnicodeAttribute(hash_key=True)       # "open"
    report_id = A.UnicodeAttribute(range_key=True)


class DueReport(Model):
    class Meta:
        table = "reports-due"

    bucket = A.UnicodeAttribute(hash_key=True)       # "due"
    entry = A.UnicodeAttribute(range_key=True)       # <deadline UTC>_<report id>


class AgencyQueue(Model):
    class Meta:
        table = "reports-queue"

    agency = A.UnicodeAttribute(hash_key=True)       # the agency the report is routed to
    entry = A.UnicodeAttribute(range_key=True)       # <deadline UTC>_<report id>


class UpdateIndex(Model):
    class Meta:
        table = "reports-updates"

    day = A.UnicodeAttribute(hash_key=True)          # the update's local day (or "_since": when reads began)
    entry = A.UnicodeAttribute(range_key=True)       # <at UTC>|<report id>|<audit entry>|<state it moved to>


class NearbyOpen(Model):
    class Meta:
        table = "reports-nearby"

    cell = A.UnicodeAttribute(hash_key=True)         # <category>:<geohash7>
    entry = A.UnicodeAttribute(range_key=True)       # <requested_at UTC>_<report id>


class ReportToken(Model):
    class Meta:
        table = "reports-tokens"

    token = A.UnicodeAttribute(hash_key=True)
    report_id = A.UnicodeAttribute()


class ApiKey(Model):
    class Meta:
        table = "reports-api-keys"

    id = A.UnicodeAttribute(hash_key=True)
    data = A.JSONAttribute()
    version = A.VersionAttribute()


class RateWindow(Model):
    class Meta:
        table = "reports-rate"
        ttl_max_s = 2 * 86_400      # a window lives two of its length; windows are at most a day

    subject = A.UnicodeAttribute(hash_key=True)      # pseudonym of "<scope>:<caller or key id>"
    window = A.UnicodeAttribute(range_key=True)
    hits = A.NumberAttribute(default=0)
    expires_at = A.TTLAttribute()


class ReportTouched(Model):
    """A committed write of a report, listed by its keys alone (never read: ``query_keys(...,
    expired_too=True)``; an entry past its end only makes the stats read one report more)."""

    class Meta:
        table = "reports-touched"
        ttl_max_s = TOUCHED_KEPT_S   # swept by the tick, as every TTL model (working under object lock)

    day = A.UnicodeAttribute(hash_key=True)          # the local day the write was made (Asia/Ho_Chi_Minh)
    entry = A.UnicodeAttribute(range_key=True)       # <at UTC>|<report id>
    expires_at = A.TTLAttribute()


class ReportOwner(Model):
    """One report of one reporter, by a pseudonym of an identifier they gave (:func:`.owners.key`):
    no clear value in the key or the body."""

    class Meta:
        table = "reports-owners"

    owner = A.UnicodeAttribute(hash_key=True)
    report_id = A.UnicodeAttribute(range_key=True)


class ClosedReport(Model):
    class Meta:
        table = "reports-closed"

    bucket = A.UnicodeAttribute(hash_key=True)       # "closed"
    entry = A.UnicodeAttribute(range_key=True)       # <updated_at UTC>_<report id>


class DayFigures(Model):
    """A local day of receipt's part of the stats (:func:`.queries.stats`): ``rows`` maps each
    ``ReportByDay`` entry to its report's ``[commune, category, agency or "-", status, overdue,
    rating]`` (null: no such report); every move made before ``as_of`` is in it, and of the feed's
    entries from ``as_of`` minus the margin, those in ``seen``; ``built``: when it was last built from
    every report of the day."""

    class Meta:
        table = "reports-day-figures"
        working = True   # derived, rewritten as reports move: not kept with the records under object lock

    day = A.UnicodeAttribute(hash_key=True)          # 2026-12-03 (Asia/Ho_Chi_Minh)
    as_of = A.UnicodeAttribute()                     # ISO UTC
    built = A.UnicodeAttribute()                     # ISO UTC
    rows = A.JSONAttribute(default=dict)
    seen = A.JSONAttribute(default=list)
    version = A.VersionAttribute()


def nearby_entry(doc: dict) -> str:
    """The "me too" index's range key: when, where (so a lookup measures distances from the keys
    alone) and which report."""
    return f"{doc['requested_at']}_{doc['lat']:.6f}_{doc['long']:.6f}_{doc['id']}"


def due_entry(doc: dict) -> str:
    """The overdue sweep's index key: the report's deadline (UTC, so keys sort by it), then its id."""
    return f"{doc['deadline']}_{doc['id']}"


def update_entry(at: str, report_id: str, audit_entry: str, to: str) -> str:
    """The updates index's range key of a move (:class:`UpdateIndex`)."""
    return f"{at}|{report_id}|{audit_entry}|{to}"


def created_indexes(doc: dict) -> list[Model]:
    """A received report's indexes, from its document alone (no clock, no request): written beside
    its audit entry by its create, and where missing by a retry that finds it (``Aggregate.resend``)."""
    from lscloud.aggregate import audit_key
    from lscloud.workdays import local_day

    at, rid = doc["requested_at"], doc["id"]
    cell = f"{doc['category']}:{doc['geohash']}" if doc.get("geohash") else None
    # the receipt is an update too, keyed by its audit entry: the record's first version, first entry
    return [ReportByDay(doc["day"], f"{at}_{rid}"), ReportToken(doc["token"], report_id=rid), OpenReport("open", rid),
            *([NearbyOpen(cell, nearby_entry(doc))] if cell else []), DueReport("due", due_entry(doc)),
            UpdateIndex(local_day(at), update_entry(at, rid, audit_key(at, 1, 0), doc["status"])),
            *([AgencyQueue(doc["agency"], due_entry(doc))] if doc.get("agency") else [])]


def closed_entries(doc: dict) -> list[Model]:
    """The keep period's index entry of a closed report still holding its reporter's contact, from
    its document alone: kept by every write of the report (the aggregate's ``side``), so one closed
    again later has an entry under its new time, and the tick drops an entry its report left."""
    from .states import CLOSED

    if doc["status"] not in CLOSED or doc.get("contact_erased") or not doc.get("updated_at"):
        return []
    return [ClosedReport("closed", f"{doc['updated_at']}_{doc['id']}")]
