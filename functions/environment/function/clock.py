"""Local hours and days as the decision labels them: Asia/Ho_Chi_Minh, an hour named by its end,
a day from its 01:00 to its 24:00."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from lscloud import statemachine
from lscloud.workdays import TZ


def hour_end(t: datetime) -> datetime:
    """The local end of the hour holding instant ``t``: (07:00, 08:00] → 08:00."""
    local = t.astimezone(TZ)
    floor = local.replace(minute=0, second=0, microsecond=0)
    return floor if floor == local else floor + timedelta(hours=1)


def hour_key(end: datetime) -> str:
    """The store's key of an hour: its local end, ``2026-12-03T08``."""
    return end.astimezone(TZ).strftime("%Y-%m-%dT%H")


def parse_hour_key(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=TZ)


def day_of(end: datetime) -> date:
    """The day an hour belongs to: the hour ending at 00:00 is its previous day's 24:00."""
    return (end.astimezone(TZ) - timedelta(hours=1)).date()


def slot(end: datetime) -> str:
    """The hour's place in its day, ``01`` … ``24``."""
    h = end.astimezone(TZ).hour
    return f"{h or 24:02d}"


def day_hours(d: date) -> list[datetime]:
    """The 24 hour ends of day ``d``: 01:00 … 24:00."""
    start = datetime(d.year, d.month, d.day, tzinfo=TZ)
    return [start + timedelta(hours=i) for i in range(1, 25)]


def iso(t: datetime) -> str:
    """Local ISO 8601 with its offset (+07:00): how answers show hours."""
    return t.astimezone(TZ).isoformat()


def utc(t: datetime) -> str:
    return statemachine.iso(t, "seconds")
