"""Working time: which days the one-stop shop works, and deadlines counted in working days.

Plain Python, no I/O beyond reading the yearly calendar files (``data/holidays-<year>.yaml``).

- A **working day** is Monday to Friday unless it is a public holiday of the year's calendar, plus
  the Saturdays the calendar lists as make-up working days (ngày làm bù).
- A working day has two **sessions** (half-days) of office hours, 07:30-11:30 and 13:30-17:30
  local time (Asia/Ho_Chi_Minh): one working day is 8 working hours, half a day one session.
- **Working time** is counted in minutes inside sessions only. A deadline of ``n`` working days
  (``n`` a multiple of 0.5) is the instant at which ``n * 480`` working minutes have elapsed
  since the clock started: received Monday 09:00 with 2 days -> Wednesday 09:00.
- The **clock starts** at receipt if that is inside office hours of a working day before the
  cut-off hour (16:00); otherwise at the start of the next session (lunch -> 13:30), and a receipt
  after the cut-off, on a weekend or a holiday starts at 07:30 of the next working day.
- A **pause** (waiting for supplements) shifts a deadline by exactly the working time that passed
  while paused: ``shift(deadline, between(paused_at, resumed_at))``.

For a year without a calendar file the weekends and the fixed solar-date holidays (1/1, 30/4, 1/5,
2/9) are used and :meth:`Calendar.covers` answers False, so a receipt can say its date is
provisional instead of pretending to know next year's Tết.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DATA = Path(__file__).parent / "data"
SESSIONS: tuple[tuple[time, time], ...] = ((time(7, 30), time(11, 30)), (time(13, 30), time(17, 30)))
CUTOFF = time(16, 0)
DAY_MINUTES = sum((e.hour * 60 + e.minute) - (s.hour * 60 + s.minute) for s, e in SESSIONS)   # 480
HALF_DAY_MINUTES = DAY_MINUTES // 2
FIXED_SOLAR = ((1, 1), (4, 30), (5, 1), (9, 2))
MAX_DAYS = 400   # no procedure takes longer; bounds every walk over the calendar


class CalendarError(ValueError):
    """A calendar file is malformed (the message names the file and the entry)."""


def days_to_minutes(days: float | int | str | Decimal) -> int:
    """Working days (a multiple of 0.5) as working minutes; ValueError otherwise."""
    d = Decimal(str(days))
    if d < 0 or (d * 2) % 1 != 0:
        raise ValueError(f"{days} working days: durations are whole or half days, not negative")
    if d > MAX_DAYS:
        raise ValueError(f"{days} working days is more than {MAX_DAYS}")
    return int(d * DAY_MINUTES)


def minutes_to_days(minutes: int) -> float:
    return round(minutes / DAY_MINUTES, 4)


@dataclass(frozen=True)
class Calendar:
    holidays: frozenset[date] = frozenset()
    working_saturdays: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()
    names: dict = field(default_factory=dict, compare=False, hash=False)

    def covers(self, d: date) -> bool:
        """Whether ``d``'s year has a calendar file (else only the fixed holidays are known)."""
        return d.year in self.years

    def is_holiday(self, d: date) -> bool:
        if d in self.holidays:
            return True
        return not self.covers(d) and (d.month, d.day) in FIXED_SOLAR

    def is_working_day(self, d: date) -> bool:
        if d in self.working_saturdays:
            return True
        return d.weekday() < 5 and not self.is_holiday(d)

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        for _ in range(MAX_DAYS * 2):
            d += timedelta(days=1)
            if self.is_working_day(d):
                return d
        raise ValueError("no working day within the calendar's reach")

    # -- instants ---------------------------------------------------------------------------------

    def _sessions(self, d: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(d):
            return []
        return [(datetime.combine(d, s, TZ), datetime.combine(d, e, TZ)) for s, e in SESSIONS]

    def clock_start(self, t: datetime, *, cutoff: bool = True) -> datetime:
        """When the clock starts for something received at ``t`` (see the module docstring)."""
        local = _local(t)
        d = local.date()
        if self.is_working_day(d) and not (cutoff and local.time() >= CUTOFF):
            for s, e in self._sessions(d):
                if local < e:
                    return max(local, s)
        d = self.next_working_day(d)
        return self._sessions(d)[0][0]

    def add(self, t: datetime, minutes: int) -> datetime:
        """The instant ``minutes`` of working time after ``t`` (``t`` outside office hours counts
        from the next session; no cut-off). Never on a non-working day."""
        if minutes < 0:
            raise ValueError("minutes must be >= 0")
        cur = self.clock_start(t, cutoff=False)
        left = minutes
        if left == 0:
            return cur
        d = cur.date()
        for _ in range(MAX_DAYS * 2):
            for s, e in self._sessions(d):
                if e <= cur:
                    continue
                start = max(s, cur)
                avail = int((e - start).total_seconds() // 60)
                if left <= avail:
                    return start + timedelta(minutes=left)
                left -= avail
            d = self.next_working_day(d)
        raise ValueError("deadline beyond the calendar's reach")

    def add_days(self, t: datetime, days) -> datetime:
        return self.add(t, days_to_minutes(days))

    def between(self, a: datetime, b: datetime) -> int:
        """Working minutes in ``[a, b)`` (0 if ``b <= a``)."""
        a, b = _local(a), _local(b)
        if b <= a:
            return 0
        total = 0
        d = a.date()
        end = b.date()
        while d <= end:
            for s, e in self._sessions(d):
                lo, hi = max(s, a), min(e, b)
                if hi > lo:
                    total += int((hi - lo).total_seconds() // 60)
            d += timedelta(days=1)
        return total

    def shift(self, deadline: datetime, paused_minutes: int) -> datetime:
        """A deadline moved later by ``paused_minutes`` of working time (a pause's length)."""
        return self.add(deadline, paused_minutes) if paused_minutes else deadline


def _local(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("instants must carry a time zone")
    return t.astimezone(TZ)


def load_file(path: Path) -> tuple[int, set[date], set[date], dict]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        year = int(doc["year"])
        holidays, saturdays, names = set(), set(), {}
        for key, into in (("holidays", holidays), ("working_saturdays", saturdays)):
            for entry in doc.get(key) or []:
                d = entry["date"]
                if not isinstance(d, date) or d.year != year:
                    raise CalendarError(f"{path.name}: {key} entry {entry!r} is not a date of {year}")
                if key == "working_saturdays" and d.weekday() != 5:
                    raise CalendarError(f"{path.name}: {d} is not a Saturday")
                into.add(d)
                names[d.isoformat()] = {"name": entry.get("name"), "name_en": entry.get("name_en"),
                                        "working": key == "working_saturdays"}
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        if isinstance(exc, CalendarError):
            raise
        raise CalendarError(f"{path.name}: {exc}") from None
    if holidays & saturdays:
        raise CalendarError(f"{path.name}: {sorted(holidays & saturdays)} both holiday and working day")
    return year, holidays, saturdays, names


@lru_cache(maxsize=4)
def load(data_dir: Path = DATA) -> Calendar:
    """Every ``holidays-<year>.yaml`` under ``data_dir``."""
    holidays: set[date] = set()
    saturdays: set[date] = set()
    names: dict = {}
    years: set[int] = set()
    for path in sorted(Path(data_dir).glob("holidays-*.yaml")):
        year, h, s, n = load_file(path)
        if year in years:
            raise CalendarError(f"{path.name}: year {year} defined twice")
        years.add(year)
        holidays |= h
        saturdays |= s
        names.update(n)
    return Calendar(frozenset(holidays), frozenset(saturdays), frozenset(years), names)


def utc(t: datetime) -> datetime:
    return t.astimezone(timezone.utc)
