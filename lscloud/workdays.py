"""Working time in public offices: which days they work, and deadlines counted in working days.

One calendar for every function that counts working days (dossiers' appointments, citizen reports'
deadlines): the mechanism lives here, each function keeps its own deadline rules.

Plain Python, no I/O beyond reading the calendar files under ``lscloud/data/calendar/``:
``holidays-<year>.yaml`` (one per year whose schedule has been announced) and
``holidays-fixed.yaml`` (the fixed solar-date holidays used for a year without its own file). Every
entry names its source; an entry whose source is not verified makes every deadline across it
provisional (:meth:`Calendar.certain`).

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
- A **pause** (waiting for the citizen) shifts a deadline by exactly the working time that passed
  while paused: ``shift(deadline, between(paused_at, resumed_at))``.
- **Same day** ("ngay trong ngày"): :meth:`Calendar.end_of_day` is the close of the working day
  something was received on, or of the next working day when it came after a given cut-off.

For a year without a calendar file the weekends and the fixed solar-date holidays of
``holidays-fixed.yaml`` are used and :meth:`Calendar.covers` answers False, so a receipt can say its
date is provisional instead of pretending to know next year's Tết.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
import yaml

from . import timestamps

TZ = timestamps.TZ
DATA = Path(__file__).parent / "data" / "calendar"
# office hours and the day's cut-off for receipts: unverified (no Lạng Sơn decision found), see the
# source "office-hours" in data/calendar/holidays-fixed.yaml
SESSIONS: tuple[tuple[time, time], ...] = ((time(7, 30), time(11, 30)), (time(13, 30), time(17, 30)))
CUTOFF = time(16, 0)
DAY_MINUTES = sum((e.hour * 60 + e.minute) - (s.hour * 60 + s.minute) for s, e in SESSIONS)   # 480
HALF_DAY_MINUTES = DAY_MINUTES // 2
FIXED_FILE = "holidays-fixed.yaml"
YEAR_FILE_GLOB = "holidays-[0-9][0-9][0-9][0-9].yaml"
_SOURCE_KEYS = {"document", "issuer", "date", "url", "verified", "note"}
MAX_DAYS = 400   # no deadline is longer; bounds every walk over the calendar


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
class FixedHoliday:
    """A holiday on the same solar date every year (from ``from_year`` on)."""
    month: int
    day: int
    from_year: int | None
    entry: dict   # name, name_en, source, verified

    def falls_on(self, d: date) -> bool:
        return (d.month, d.day) == (self.month, self.day) and (self.from_year is None or d.year >= self.from_year)


@dataclass(frozen=True)
class Calendar:
    holidays: frozenset[date] = frozenset()
    working_saturdays: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()
    names: dict = field(default_factory=dict, compare=False, hash=False)
    unverified: frozenset[date] = frozenset()          # entries whose source is not verified
    fixed: tuple[FixedHoliday, ...] = ()
    sources: dict = field(default_factory=dict, compare=False, hash=False)   # year -> {key: source}

    def covers(self, d: date) -> bool:
        """Whether ``d``'s year has a calendar file (else only the fixed holidays are known)."""
        return d.year in self.years

    def certain(self, first: date, last: date) -> bool:
        """Whether every day from ``first`` to ``last`` is known from verified sources: both years
        have a calendar file and no unverified entry lies in between."""
        if first > last:
            first, last = last, first
        if not all(self.covers(date(y, 1, 1)) for y in range(first.year, last.year + 1)):
            return False
        return not any(first <= d <= last for d in self.unverified)

    def is_holiday(self, d: date) -> bool:
        if d in self.holidays:
            return True
        return not self.covers(d) and any(f.falls_on(d) for f in self.fixed)

    def days(self, year: int) -> list[dict]:
        """The year's named days (holidays and make-up Saturdays), date order, each with its source
        and whether that source is verified; for a year without a file, the fixed holidays."""
        if year in self.years:
            items = sorted((k, v) for k, v in self.names.items() if k.startswith(f"{year}-"))
            return [{"date": k, **v} for k, v in items]
        out = []
        for f in self.fixed:
            d = date(year, f.month, f.day)
            if f.falls_on(d):
                out.append({"date": d.isoformat(), **f.entry, "working": False})
        return sorted(out, key=lambda e: e["date"])

    def describe(self, year: int) -> dict:
        """The calendar of ``year`` as the public may read it: whether a file covers it, office
        hours, the cut-off, and every named day with its source."""
        return {"year": year, "covered": year in self.years,
                "office_hours": [[s.strftime("%H:%M"), e.strftime("%H:%M")] for s, e in SESSIONS],
                "cutoff": CUTOFF.strftime("%H:%M"), "timezone": TZ.key,
                "days": self.days(year), "sources": self.sources.get(year, self.sources.get("fixed", {}))}

    def end_of_day(self, t: datetime, cutoff: time) -> datetime:
        """The close of the working day a same-day request received at ``t`` is due on: that day
        if ``t`` is a working day before ``cutoff``, else the next working day."""
        local = _local(t)
        d = local.date()
        if not (self.is_working_day(d) and local.time() < cutoff):
            d = self.next_working_day(d)
        return self._sessions(d)[-1][1]

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


def _sources(path: Path, doc: dict) -> dict:
    raw = doc.get("sources")
    if not isinstance(raw, dict) or not raw:
        raise CalendarError(f"{path.name}: needs a `sources` map (every date names its source)")
    out = {}
    for key, src in raw.items():
        if not isinstance(src, dict) or set(src) - _SOURCE_KEYS or not isinstance(src.get("verified"), bool) \
                or not src.get("document") or not src.get("url"):
            raise CalendarError(f"{path.name}: source {key!r} needs document, url and verified (true/false)")
        out[key] = dict(src, date=src["date"].isoformat() if isinstance(src.get("date"), date) else src.get("date"))
    return out


def _entry(path: Path, entry: dict, sources: dict) -> dict:
    src = entry.get("source")
    if src not in sources:
        raise CalendarError(f"{path.name}: entry {entry!r} names no source of this file")
    verified = sources[src]["verified"] and entry.get("verified", True) is True
    return {"name": entry.get("name"), "name_en": entry.get("name_en"), "source": src, "verified": verified}


def load_file(path: Path) -> tuple[int, set[date], set[date], dict, set[date], dict]:
    """One year's file: (year, holidays, working Saturdays, names, unverified dates, sources)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        year = int(doc["year"])
        sources = _sources(path, doc)
        holidays, saturdays, names, unverified = set(), set(), {}, set()
        for key, into in (("holidays", holidays), ("working_saturdays", saturdays)):
            for entry in doc.get(key) or []:
                d = entry["date"]
                if not isinstance(d, date) or d.year != year:
                    raise CalendarError(f"{path.name}: {key} entry {entry!r} is not a date of {year}")
                if key == "working_saturdays" and d.weekday() != 5:
                    raise CalendarError(f"{path.name}: {d} is not a Saturday")
                if d.isoformat() in names:
                    raise CalendarError(f"{path.name}: {d} is listed twice")
                into.add(d)
                names[d.isoformat()] = {**_entry(path, entry, sources), "working": key == "working_saturdays"}
                if not names[d.isoformat()]["verified"]:
                    unverified.add(d)
    except (OSError, KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        if isinstance(exc, CalendarError):
            raise
        raise CalendarError(f"{path.name}: {exc}") from None
    return year, holidays, saturdays, names, unverified, sources


def load_fixed(path: Path) -> tuple[tuple[FixedHoliday, ...], dict]:
    """The fixed solar-date holidays (none when the file is absent)."""
    if not path.exists():
        return (), {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        sources = _sources(path, doc)
        out = []
        for entry in doc.get("holidays") or []:
            month, day = int(entry["month"]), int(entry["day"])
            date(2000, month, day)   # a real day of a leap year
            start = entry.get("from_year")
            out.append(FixedHoliday(month, day, int(start) if start is not None else None,
                                    _entry(path, entry, sources)))
    except (OSError, KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        if isinstance(exc, CalendarError):
            raise
        raise CalendarError(f"{path.name}: {exc}") from None
    return tuple(out), sources


@lru_cache(maxsize=4)
def load(data_dir: Path = DATA) -> Calendar:
    """Every ``holidays-<year>.yaml`` under ``data_dir``, and its ``holidays-fixed.yaml``."""
    holidays: set[date] = set()
    saturdays: set[date] = set()
    unverified: set[date] = set()
    names: dict = {}
    years: set[int] = set()
    sources: dict = {}
    for path in sorted(Path(data_dir).glob(YEAR_FILE_GLOB)):
        year, h, s, n, u, src = load_file(path)
        if year in years:
            raise CalendarError(f"{path.name}: year {year} defined twice")
        years.add(year)
        holidays |= h
        saturdays |= s
        unverified |= u
        names.update(n)
        sources[year] = src
    fixed, fixed_sources = load_fixed(Path(data_dir) / FIXED_FILE)
    sources["fixed"] = fixed_sources
    return Calendar(frozenset(holidays), frozenset(saturdays), frozenset(years), names, frozenset(unverified),
                    fixed, sources)


def utc(t: datetime) -> datetime:
    return t.astimezone(timezone.utc)


def local_day(at: datetime | str) -> str:
    """The province's calendar day (Asia/Ho_Chi_Minh) of an instant, ``YYYY-MM-DD``: what day
    indexes, daily limits and the dates people read go by. A UTC date (``iso[:10]``, ``.date()`` of
    a UTC time) is the day before from 00:00 to 07:00 here. ``at``: aware, or an ISO 8601 string with
    its offset; a naive time is refused (ValueError)."""
    t = timestamps.parse_iso(at) if isinstance(at, str) else at
    if t.tzinfo is None:
        raise ValueError("a naive time has no day here")
    return timestamps.today_here(t).isoformat()

