"""The environment function's documents in the store.

A year of one reading a minute per station is 525,600 readings: they are kept as one document per
station and hour (``environment-hours``, about 60 readings each, 8,760 a year) and one summary per
station and local day (``environment-days``: each hour's count, mean, min, max and flags per
parameter), which is what the AQI, the alerts, NGSI-LD and the temporal queries read (a 30-day query
is 30 GETs). Both are written read-modify-write under ``If-Match`` (``version``).
"""

from lscloud.store import Model, attributes as A


class Station(Model):
    """A monitoring station (air, noise or water) registered by an operator."""

    class Meta:
        table = "environment-stations"

    id = A.UnicodeAttribute(hash_key=True)
    kind = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()
    # what the register request was (keyed digests only, lscloud.idempotency.first_request): the
    # station is its own idempotency record, so a resend is answered from it; one registered before has none
    request = A.JSONAttribute(null=True)
    # the register's transition: a resend finishes its event (Aggregate.resend); none on a station
    # registered before it
    created = A.JSONAttribute(null=True)


class Hour(Model):
    """The readings of one station in one hour: ``readings[observed_at] = {"v": values, "f": flags,
    "via": channel, "at": received}``; ``hour`` is the local label of the hour's end (2026-12-03T08)."""

    class Meta:
        table = "environment-hours"

    station = A.UnicodeAttribute(hash_key=True)
    hour = A.UnicodeAttribute(range_key=True)
    readings = A.JSONAttribute()
    version = A.VersionAttribute()


class Day(Model):
    """Hourly summaries of one station for one local day (hours labelled 01 … 24)."""

    class Meta:
        table = "environment-days"

    station = A.UnicodeAttribute(hash_key=True)
    day = A.UnicodeAttribute(range_key=True)
    hours = A.JSONAttribute()
    version = A.VersionAttribute()


class AlertState(Model):
    """Where a station's alert of one kind (``aqi`` or ``noise``) stands, for hysteresis."""

    class Meta:
        table = "environment-alerts"

    station = A.UnicodeAttribute(hash_key=True)
    alert = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()
    version = A.VersionAttribute()
