"""Instants as every document and event writes them: ISO 8601 in UTC with a ``Z``.

A module of its own, below everything that stamps a time: :mod:`lscloud.events` stamps a
CloudEvent's ``time`` and is imported by the telemetry that :mod:`lscloud.statemachine` depends on
(through its errors), so neither can take these from the other. :mod:`lscloud.statemachine` names
them too (``from lscloud.statemachine import iso``), as the functions have always imported them.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

__all__ = ["TZ", "YEARS", "iso", "now", "parse_instant", "parse_iso", "rfc3339_date", "rfc3339_date_time",
           "today_here", "year_in_range"]

YEARS = (1900, 2999)
"""The years a date or an instant may name here (a birth, a deadline, a reading, a window): what
``date`` and ``date-time`` values are checked against in bodies (:mod:`lscloud.validation`) and
query parameters (:mod:`lscloud.query`). Year 1 and year 9999 passed as dates and overflowed the
arithmetic on them (a day before, an hour after, a conversion to UTC): a 500 in a dozen places,
public ones among them."""
YEARS_MESSAGE = f"must be a date between the years {YEARS[0]} and {YEARS[1]}"

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
"""The province's time zone (UTC+7, no daylight saving): its days, working hours and deadlines."""


def now() -> datetime:
    """The current instant, timezone-aware (UTC)."""
    return datetime.now(timezone.utc)


def iso(t: datetime, timespec: str = "milliseconds") -> str:
    """``t`` as an ISO 8601 UTC string with a ``Z`` (the form every document and event uses);
    ``timespec`` as :meth:`datetime.isoformat` takes it (``"auto"``: microseconds when there are any)."""
    return t.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    """The inverse of :func:`iso` (any ISO 8601 string with an offset or ``Z``)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def parse_instant(value) -> datetime | None:
    """An ISO 8601 instant with its offset (or ``Z``), or None: absent, not a string, malformed, or
    without an offset (a time a device or an event gives, where a bad one is skipped, not raised)."""
    try:
        t = parse_iso(value)
    except (TypeError, ValueError, AttributeError):
        return None
    return t if t.tzinfo is not None else None


def today_here(at: datetime | None = None) -> date:
    """The province's date now (or at ``at``): what "today", "in the future" and "this year" mean to
    people here. The machine's own date (``date.today()``: UTC in the cluster's images) is the day
    before from 00:00 to 07:00 here."""
    return (at or datetime.now(timezone.utc)).astimezone(TZ).date()


def year_in_range(year: int) -> bool:
    """Whether a date in ``year`` is one this system takes (:data:`YEARS`)."""
    return YEARS[0] <= year <= YEARS[1]


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


def rfc3339_date(text: str) -> date:
    """RFC 3339 ``full-date`` (``2026-03-01``): ValueError for anything else, a 30 February too."""
    if not _DATE.fullmatch(text):
        raise ValueError(f"not a date (YYYY-MM-DD): {text[:40]!r}")
    return date.fromisoformat(text)


def rfc3339_date_time(text: str) -> datetime:
    """RFC 3339 ``date-time``: a date, a time and its offset (``Z`` or ``±hh:mm``), all required;
    ValueError for anything else (a naive time, a 25th hour)."""
    if not _DATE_TIME.fullmatch(text):
        raise ValueError(f"not a date-time with its offset (RFC 3339): {text[:40]!r}")
    return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
