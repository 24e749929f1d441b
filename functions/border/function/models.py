"""How the border function keeps crossings in its own bucket.

=====================  ========================================  =================================
model (table)          key (hash / range)                        written
=====================  ========================================  =================================
Declaration            id (client-chosen)                        create-only, then If-Match only;
                                                                 its own idempotency record
DeclarationCode        code -> id                                create-only (unique public code)
AuditEntry             declaration id / <µs time>_<seq>_<rand>   create-only, append-only
AgencyDecision         declaration id / <agency>_<seq 4 digits>  create-only (one per decision)
OwnerIndex             ~"ent:<tax code>"|~"drv:<id>" / <µs>_<id> written before OwnerRecent; read by the
                                                                 migration only
OwnerRecent            ~"ent:…"|~"drv:…" / <newest first µs>_<id>
                                                                 create-only ("my declarations", newest first)
WorkItem               <gate> / <submitted µs>_<id>              create-only; If-Match as agencies decide,
                                                                 deleted when none is left to decide
SlotSeat               <gate>_<flow>_<slot> / seat 0000..cap-1   create-only: capacity never exceeded
QueueEntry             <gate>_<flow> / <lane>_<slot>_<µs>_<code> create-only, deleted when called
QueueTally             <gate>_<flow>                             If-Match: waiting per <lane>_<slot>
CallEntry              <gate>_<flow> / <deadline µs>_<code>      create-only, deleted at gate/missed
PlateIndex             ~plate key / declaration id               create-only, deleted when done
DayIndex               local day / <gate>_<id>                   create-only (stats listing)
DayFigures             local day                                 create-only, then If-Match: the figures'
                                                                 parts of the day's finished declarations
HealthDue              local day ended / <ended µs>_<id>         create-only with the final move, deleted
                                                                 once its health data is minimised
DeviceReading          device id / reading id                    create-only: a reading counts once; kept 8 days
DeviceSent             device id / reading id                    create-only: what a device sent under a reading
                                                                 id (keyed digests), so a resend is told from a
                                                                 reuse; kept 8 days
CapacityOverride       gate / <flow>                             If-Match (operator's override), its version the ETag
TrafficOrder           gate / order id                           create-only; its own idempotency record (kept:
                                                                 the police's order as issued)
OpenTrafficOrder       gate / order id                           create-only, before its order: the gate's orders
                                                                 that still hold, for the driver's lookup (working)
StaleDue               local day / <look µs>_<id>                create-only: when the lapse sweep looks
                                                                 at a declaration that may lapse (working)
StaleCursor            "day-index"                               If-Match: how far the sweep read DayIndex
=====================  ========================================  =================================

Range keys that order things use only letters, digits and ``_`` so the store's key order is
their plain string order. ``~`` marks a key held as a pseudonym (a keyed hash,
:class:`~lscloud.store.attributes.PseudonymAttribute`): a driver's ID or passport number and an
individual's tax code (their CCCD since July 2025) and a vehicle's plate never appear in an object key.

DayFigures is a working object (``Meta.working``): derived from the declarations, so in a bucket
under object lock its versions are kept a day, not with the records (:mod:`lscloud.store.working`).
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class Declaration(Model):
    class Meta:
        table = "border-declarations"

    id = A.UnicodeAttribute(hash_key=True)
    code = A.UnicodeAttribute()
    status = A.UnicodeAttribute()
    owner = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()
    # what the create request was (keyed digests only, lscloud.idempotency.first_request): a
    # resend is answered from the declaration itself, no separate idempotency record
    request = A.JSONAttribute(null=True)
    # the create's transitions: a resend finishes its audit, indexes and events (Aggregate.resend)
    created = A.JSONAttribute(null=True)
    # the last move's transitions: a refused retry of a move cut off after its write finishes its
    # audit, indexes and events (Aggregate._finish_moved)
    moved = A.JSONAttribute(null=True)


class DeclarationCode(Model):
    class Meta:
        table = "border-codes"

    code = A.UnicodeAttribute(hash_key=True)
    declaration_id = A.UnicodeAttribute()


class AuditEntry(Model):
    class Meta:
        table = "border-audit"

    declaration_id = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class AgencyDecision(Model):
    class Meta:
        table = "border-decisions"

    declaration_id = A.UnicodeAttribute(hash_key=True)
    key = A.UnicodeAttribute(range_key=True)       # <agency>_<seq>
    agency = A.UnicodeAttribute()
    seq = A.NumberAttribute()
    data = A.JSONAttribute()


class OwnerIndex(Model):
    class Meta:
        table = "border-owners"

    owner = A.PseudonymAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    declaration_id = A.UnicodeAttribute()


class OwnerRecent(Model):
    """An enterprise's or a driver's declarations, newest first (:func:`lscloud.store.keys.newest_first`)."""

    class Meta:
        table = "border-owners-recent"

    owner = A.PseudonymAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    declaration_id = A.UnicodeAttribute()


class WorkItem(Model):
    """A submitted declaration on the agencies' work lists at its gate: one object for every agency
    that still has to decide (``agencies``), so a declaration costs one write, not one per agency."""

    class Meta:
        table = "border-worklist"

    gate = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)     # <submitted µs>_<declaration id>
    declaration_id = A.UnicodeAttribute()
    summary = A.JSONAttribute()
    agencies = A.JSONAttribute()                   # the agencies still to decide, in the declaration's order


class AgencyWorkItem(Model):
    """The older layout, one object per agency (``<gate>_<agency>``): read only by :mod:`.migrate`."""

    class Meta:
        table = "border-work"

    queue = A.UnicodeAttribute(hash_key=True)      # <gate>_<agency>
    entry = A.UnicodeAttribute(range_key=True)     # <submitted µs>_<declaration id>
    declaration_id = A.UnicodeAttribute()
    summary = A.JSONAttribute()


class SlotSeat(Model):
    class Meta:
        table = "border-seats"

    slot = A.UnicodeAttribute(hash_key=True)       # <gate>_<flow>_<YYYYMMDDHH>
    seat = A.UnicodeAttribute(range_key=True)
    declaration_id = A.UnicodeAttribute()


class QueueEntry(Model):
    class Meta:
        table = "border-queue"

    queue = A.UnicodeAttribute(hash_key=True)      # <gate>_<flow>
    key = A.UnicodeAttribute(range_key=True)       # queue.queue_key(...)
    declaration_id = A.UnicodeAttribute()


class QueueTally(Model):
    """How many trucks wait in each ``<lane>_<slot>`` part of one yard queue (see :mod:`.tally`)."""

    class Meta:
        table = "border-queue-tally"

    queue = A.UnicodeAttribute(hash_key=True)      # <gate>_<flow>
    counts = A.JSONAttribute()                     # {"<lane>_<slot>": n}, parts with none left out
    version = A.VersionAttribute()


class CallEntry(Model):
    class Meta:
        table = "border-calls"

    queue = A.UnicodeAttribute(hash_key=True)
    key = A.UnicodeAttribute(range_key=True)       # <deadline µs>_<code>
    declaration_id = A.UnicodeAttribute()


class PlateIndex(Model):
    class Meta:
        table = "border-plates"

    # a plate names its driver's truck: a pseudonym in the key (it was the plate itself, in every
    # object key, S3 access log and store span of a camera's reading)
    plate = A.PseudonymAttribute(hash_key=True)
    declaration_id = A.UnicodeAttribute(range_key=True)


class DayIndex(Model):
    class Meta:
        table = "border-days"

    day = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    declaration_id = A.UnicodeAttribute()


class DayFigures(Model):
    """What a local day's finished declarations add to the figures (:func:`.figures.figures`):
    ``finished`` maps a :class:`DayIndex` entry whose declaration is in a terminal state to its
    :func:`.stats.contribution`, which no later change can alter. Live declarations are not in it:
    they are read on every request."""

    class Meta:
        table = "border-day-figures"
        working = True   # derived, rewritten as the day's crossings finish: not kept with the records

    day = A.UnicodeAttribute(hash_key=True)
    finished = A.JSONAttribute(default=dict)
    version = A.VersionAttribute()


READING_KEPT_S = 8 * 86_400
"""How long a device reading's record is kept: past the devices stream's age (``devicesMaxAge``,
168 h in the cluster), within which the relay may bring the same reading again under a new
envelope. It held a plate number for good before."""


class HealthDue(Model):
    """A finished declaration whose health answers and driver's phone are still kept: listed in key
    order (the day, then the instant it ended), the clock's tick finds the ones past the keep period
    without reading any other (:mod:`.minimise`)."""

    class Meta:
        table = "border-health-due"

    day = A.UnicodeAttribute(hash_key=True)        # YYYYMMDD, local
    entry = A.UnicodeAttribute(range_key=True)     # <ended µs, 16 digits>_<declaration id>
    declaration_id = A.UnicodeAttribute()


class DeviceReading(Model):
    class Meta:
        table = "border-readings"
        ttl_max_s = READING_KEPT_S

    device = A.UnicodeAttribute(hash_key=True)
    reading_id = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()
    expires_at = A.TTLAttribute()


class DeviceSent(Model):
    """What a device sent under a reading id, as keyed digests per field (:func:`lscloud.resends.digests`):
    the same reading sent again is a resend, other data under its id a 409 naming the fields. Apart from
    :class:`DeviceReading`, which the delivery back writes: a reading accepted here may still be on its way."""

    class Meta:
        table = "border-device-sent"
        ttl_max_s = READING_KEPT_S

    device = A.UnicodeAttribute(hash_key=True)
    reading_id = A.UnicodeAttribute(range_key=True)
    fields = A.JSONAttribute()
    expires_at = A.TTLAttribute()


class CapacityOverride(Model):
    class Meta:
        table = "border-capacity"

    gate = A.UnicodeAttribute(hash_key=True)
    flow = A.UnicodeAttribute(range_key=True)
    per_hour = A.NumberAttribute()
    reason = A.UnicodeAttribute()
    by = A.UnicodeAttribute()
    # null for an override stored before it was kept
    updated_at = A.UnicodeAttribute(null=True)
    version = A.VersionAttribute()


ORDER_KEPT_S = 86_400
"""How long a traffic order holds when it names no end (``valid_until``): a day's traffic."""


class TrafficOrder(Model):
    class Meta:
        table = "border-traffic-orders"

    gate = A.UnicodeAttribute(hash_key=True)
    id = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()
    # what the issuing request was (keyed digests only, lscloud.idempotency.first_request): the order
    # is its own idempotency record; null for an order stored before
    request = A.JSONAttribute(null=True)


class OpenTrafficOrder(Model):
    """A traffic order that still holds, listed per gate by the driver's lookup (:mod:`.traffic`):
    gone, by its lifetime, when the order stops holding; the order itself stays a record."""

    class Meta:
        table = "border-open-traffic-orders"
        ttl_max_s = 31 * 86_400   # an order's valid_until is at most a month ahead (its schema)

    gate = A.UnicodeAttribute(hash_key=True)
    id = A.UnicodeAttribute(range_key=True)
    expires_at = A.TTLAttribute()


class StaleDue(Model):
    """A declaration that may lapse (draft, submitted, queued), under the instant the lapse sweep
    looks at it again; listed in key order, the due ones come first (:mod:`.lapse`)."""

    class Meta:
        table = "border-stale-due"
        working = True   # an index of live work: not kept with the records under object lock

    day = A.UnicodeAttribute(hash_key=True)        # YYYYMMDD, local
    entry = A.UnicodeAttribute(range_key=True)     # <look µs, 16 digits>_<declaration id>
    declaration_id = A.UnicodeAttribute()


class StaleCursor(Model):
    """How far the lapse sweep has read the day index (the last of its object keys it took in)."""

    class Meta:
        table = "border-stale-cursor"
        working = True

    name = A.UnicodeAttribute(hash_key=True)
    after = A.UnicodeAttribute()
    version = A.VersionAttribute()
