"""The working-day calendar of the runtime (lscloud.workdays): the holiday files and their sources,
the New Year and National Day swaps, the cut-off, half days and pauses, with property tests. Every
function that counts working days uses this one calendar (dossiers today, citizen reports next)."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta, timezone
from fnmatch import fnmatch
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from lscloud import workdays

ROOT = Path(__file__).resolve().parents[2]
TZ = workdays.TZ
CAL = workdays.load()
DAY = workdays.DAY_MINUTES


def local(y, m, d, hh=9, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


# -- the runtime ships its calendar -----------------------------------------------------------------

def test_the_calendar_files_are_package_data_of_the_runtime():
    """The cluster installs lscloud from a wheel: the yearly files must travel with it."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["lscloud"]
    files = sorted(p.relative_to(ROOT / "lscloud").as_posix() for p in workdays.DATA.glob("*.yaml"))
    assert workdays.DATA == ROOT / "lscloud" / "data" / "calendar"
    assert {"data/calendar/holidays-fixed.yaml", "data/calendar/holidays-2026.yaml"} <= set(files)
    assert all(any(fnmatch(f, g) for g in globs) for f in files), (files, globs)


def test_a_year_is_described_with_office_hours_cut_off_and_sources():
    year = CAL.describe(2026)
    assert (year["year"], year["covered"], year["timezone"]) == (2026, True, "Asia/Ho_Chi_Minh")
    assert year["office_hours"] == [["07:30", "11:30"], ["13:30", "17:30"]] and year["cutoff"] == "16:00"
    assert {d["source"] for d in year["days"]} <= set(year["sources"])
    later = CAL.describe(2031)
    assert later["covered"] is False and later["sources"] is CAL.sources["fixed"]


def test_an_unverified_day_makes_a_span_uncertain():
    assert CAL.certain(date(2026, 2, 2), date(2026, 2, 27))
    assert date(2026, 11, 24) in CAL.unverified and CAL.is_holiday(date(2026, 11, 24))
    assert not CAL.certain(date(2026, 11, 20), date(2026, 11, 30))


# -- the calendar files ----------------------------------------------------------------------------

def test_calendar_files_hold_the_real_holidays():
    assert {2025, 2026} <= CAL.years
    tet_2025 = [date(2025, 1, 25) + timedelta(days=i) for i in range(9)]          # 25/1 .. 2/2
    tet_2026 = [date(2026, 2, 14) + timedelta(days=i) for i in range(9)]          # 14/2 .. 22/2
    for d in tet_2025 + tet_2026:
        assert not CAL.is_working_day(d), d
    assert CAL.is_working_day(date(2025, 2, 3)) and CAL.is_working_day(date(2026, 2, 23))
    for d in (date(2025, 1, 1), date(2025, 4, 7), date(2025, 4, 30), date(2025, 5, 1), date(2025, 5, 2),
              date(2025, 9, 1), date(2025, 9, 2), date(2026, 1, 1), date(2026, 1, 2), date(2026, 4, 27),
              date(2026, 4, 30), date(2026, 5, 1), date(2026, 8, 31), date(2026, 9, 1), date(2026, 9, 2)):
        assert CAL.is_holiday(d) and not CAL.is_working_day(d), d
    # make-up Saturdays are working days (2/1/2026 -> 10/1, 31/8/2026 -> 22/8, 2/5/2025 -> 26/4)
    for d in (date(2025, 4, 26), date(2026, 1, 10), date(2026, 8, 22)):
        assert d.weekday() == 5 and CAL.is_working_day(d), d
    # Tết 2025 had no swap: Saturday 8/2/2025 was an ordinary weekend day (the old file said otherwise)
    assert not CAL.is_working_day(date(2025, 2, 8)) and not CAL.is_working_day(date(2025, 2, 15))
    # 2/9/2026 is a Wednesday; the day joined to it is Tuesday 1/9, not Thursday 3/9
    assert CAL.is_working_day(date(2026, 9, 3))


def test_every_calendar_day_names_a_source():
    for year in sorted(CAL.years):
        sources = CAL.sources[year]
        for day in CAL.days(year):
            assert day["source"] in sources, day
            assert set(sources[day["source"]]) >= {"document", "url", "verified"}
    assert all(src["url"].startswith("https://") for y in CAL.sources for src in CAL.sources[y].values())


def test_a_year_without_a_file_knows_only_weekends_and_fixed_days():
    assert not CAL.covers(date(2031, 3, 3))
    assert CAL.is_holiday(date(2031, 4, 30)) and CAL.is_holiday(date(2031, 9, 2))
    assert CAL.is_working_day(date(2031, 3, 3))
    # the fixed days come from holidays-fixed.yaml, each with its source
    days = CAL.days(2027)
    assert [d["date"] for d in days] == ["2027-01-01", "2027-04-30", "2027-05-01", "2027-09-02", "2027-11-24"]
    assert all(d["source"] in CAL.sources["fixed"] for d in days)
    assert not CAL.is_holiday(date(2025, 11, 24))        # Vietnam Culture Day from 2026 on only
    assert not CAL.certain(date(2027, 3, 1), date(2027, 3, 5))


def test_a_calendar_entry_without_a_source_is_refused(tmp_path):
    (tmp_path / "holidays-2030.yaml").write_text(
        "year: 2030\nsources:\n  law: {document: Luật, url: 'https://x', verified: true}\n"
        "holidays:\n  - {date: 2030-01-01, name: Tết}\n")
    with pytest.raises(workdays.CalendarError, match="names no source"):
        workdays.load(tmp_path)
    (tmp_path / "holidays-2030.yaml").write_text("year: 2030\nholidays:\n  - {date: 2030-01-01, source: law}\n")
    with pytest.raises(workdays.CalendarError, match="sources"):
        workdays.load(tmp_path)


def test_malformed_calendar_file_names_the_problem(tmp_path):
    head = "year: 2030\nsources:\n  law: {document: Luật, url: 'https://x', verified: true}\n"
    (tmp_path / "holidays-2030.yaml").write_text(head + "holidays:\n  - {date: 2029-01-01, source: law}\n")
    with pytest.raises(workdays.CalendarError, match="not a date of 2030"):
        workdays.load(tmp_path)
    (tmp_path / "holidays-2030.yaml").write_text(head + "working_saturdays:\n  - {date: 2030-01-07, source: law}\n")
    with pytest.raises(workdays.CalendarError, match="not a Saturday"):
        workdays.load(tmp_path)


# -- the 2026 New Year swap (Official Letter 12729/VPCP-KGVX) ---------------------------------------

def test_a_deadline_skips_friday_2_january_2026_and_counts_saturday_10_january():
    # received Wed 31/12/2025 09:00, 1 working day: 1/1 and 2/1 are off, 3-4/1 the weekend -> Mon 5/1
    assert CAL.add_days(local(2025, 12, 31, 9), 1) == local(2026, 1, 5, 9)
    # received Fri 9/1/2026 09:00, 1 working day: Saturday 10/1 is a working day
    assert CAL.add_days(local(2026, 1, 9, 9), 1) == local(2026, 1, 10, 9)
    # across both: Wed 31/12 + 5 days = 5, 6, 7, 8, 9/1 -> Fri 9/1; + 6 days -> Sat 10/1
    assert CAL.add_days(local(2025, 12, 31, 9), 6) == local(2026, 1, 10, 9)
    # something received on Saturday 10/1 starts its clock at once; Friday 2/1 waits for Monday 5/1
    assert CAL.clock_start(local(2026, 1, 10, 10)) == local(2026, 1, 10, 10)
    assert CAL.clock_start(local(2026, 1, 2, 10)) == local(2026, 1, 5, 7, 30)
    # a pause over the swap costs Saturday's office hours, not Friday's
    assert CAL.between(local(2026, 1, 1, 0), local(2026, 1, 11, 0)) == 6 * DAY   # 5-9/1 and 10/1


def test_the_national_day_swap_of_2026():
    # Fri 28/8/2026 09:00 + 1 day: 29-30/8 weekend, 31/8, 1/9, 2/9 off -> Thu 3/9 09:00
    assert CAL.add_days(local(2026, 8, 28, 9), 1) == local(2026, 9, 3, 9)
    # Fri 21/8 09:00 + 1 day: Saturday 22/8 is worked
    assert CAL.add_days(local(2026, 8, 21, 9), 1) == local(2026, 8, 22, 9)


# -- same day --------------------------------------------------------------------------------------

def test_a_same_day_request_is_due_at_the_close_of_the_day_or_of_the_next_after_the_cut_off():
    three = datetime.strptime("15:00", "%H:%M").time()
    assert CAL.end_of_day(local(2026, 3, 2, 9), three) == local(2026, 3, 2, 17, 30)
    assert CAL.end_of_day(local(2026, 3, 2, 6, 45), three) == local(2026, 3, 2, 17, 30)
    assert CAL.end_of_day(local(2026, 3, 2, 15, 0), three) == local(2026, 3, 3, 17, 30)
    assert CAL.end_of_day(local(2026, 3, 6, 16, 0), three) == local(2026, 3, 9, 17, 30)   # Friday -> Monday
    assert CAL.end_of_day(local(2026, 1, 9, 15, 30), three) == local(2026, 1, 10, 17, 30)  # make-up Saturday
    assert CAL.end_of_day(local(2026, 2, 13, 10), three) == local(2026, 2, 13, 17, 30)


# -- examples ---------------------------------------------------------------------------------------

def test_two_days_from_monday_morning_is_wednesday_morning():
    assert CAL.add_days(local(2025, 3, 3, 9), 2) == local(2025, 3, 5, 9)


def test_half_days_count_office_hours_only():
    # 09:00 + 4 working hours: 2h30 to 11:30, lunch, 1h30 from 13:30
    assert CAL.add_days(local(2025, 3, 3, 9), 0.5) == local(2025, 3, 3, 15)
    with pytest.raises(ValueError):
        workdays.days_to_minutes(0.3)


def test_cut_off_and_closed_days_start_the_clock_next_working_day():
    assert CAL.clock_start(local(2025, 3, 3, 15, 59)) == local(2025, 3, 3, 15, 59)
    assert CAL.clock_start(local(2025, 3, 3, 16, 0)) == local(2025, 3, 4, 7, 30)      # cut-off
    assert CAL.clock_start(local(2025, 3, 3, 12, 10)) == local(2025, 3, 3, 13, 30)    # lunch
    assert CAL.clock_start(local(2025, 3, 3, 6, 0)) == local(2025, 3, 3, 7, 30)
    assert CAL.clock_start(local(2025, 3, 8, 10, 0)) == local(2025, 3, 10, 7, 30)    # Saturday
    assert CAL.clock_start(local(2025, 4, 26, 10, 0)) == local(2025, 4, 26, 10, 0)   # make-up Saturday works


def test_tet_is_skipped():
    # Friday 24/1/2025 afternoon, 2 days: Tết runs 25/1..2/2, so Tuesday 4/2
    assert CAL.add_days(local(2025, 1, 24, 14), 2) == local(2025, 2, 4, 14)
    # received on the eve of Tết 2026 after the cut-off: the clock starts Monday 23/2
    assert CAL.clock_start(local(2026, 2, 13, 16, 30)) == local(2026, 2, 23, 7, 30)
    assert CAL.add_days(CAL.clock_start(local(2026, 2, 13, 16, 30)), 3) == local(2026, 2, 25, 17, 30)


def test_a_pause_over_a_holiday_costs_only_its_working_time():
    paused, resumed = local(2025, 4, 29, 15), local(2025, 5, 5, 9)   # 30/4..4/5 off
    assert CAL.between(paused, resumed) == 150 + 90                # 15:00-17:30 + 07:30-09:00
    deadline = local(2025, 5, 6, 10)
    assert CAL.shift(deadline, CAL.between(paused, resumed)) == local(2025, 5, 6, 16, 0)   # 90 min before lunch + 150 after


# -- properties ----------------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 11, 30),
                        timezones=st.just(timezone.utc))
half_days = st.integers(min_value=0, max_value=60).map(lambda n: n * workdays.HALF_DAY_MINUTES)


@settings(max_examples=150, deadline=None)
@given(t=instants, minutes=half_days)
def test_adding_then_counting_back_gives_the_same_working_time(t, minutes):
    start = CAL.clock_start(t)
    end = CAL.add(start, minutes)
    assert CAL.between(start, end) == minutes
    assert end >= start


@settings(max_examples=150, deadline=None)
@given(t=instants, minutes=half_days.filter(lambda m: m > 0))
def test_a_deadline_never_falls_on_a_weekend_or_holiday_nor_outside_office_hours(t, minutes):
    end = CAL.add(CAL.clock_start(t), minutes).astimezone(TZ)
    assert CAL.is_working_day(end.date())
    assert any(s < end.time() <= e for s, e in workdays.SESSIONS)


@settings(max_examples=150, deadline=None)
@given(t=instants)
def test_the_clock_starts_inside_office_hours_of_a_working_day_never_before_receipt(t):
    s = CAL.clock_start(t).astimezone(TZ)
    assert s >= t and CAL.is_working_day(s.date())
    assert any(a <= s.time() < b for a, b in workdays.SESSIONS)
    if s.date() == t.astimezone(TZ).date():
        assert t.astimezone(TZ).time() < workdays.CUTOFF


@settings(max_examples=150, deadline=None)
@given(t=instants, minutes=half_days, pause_start=instants, pause_hours=st.integers(min_value=0, max_value=24 * 40))
def test_a_pause_shifts_the_deadline_by_exactly_the_paused_working_time(t, minutes, pause_start, pause_hours):
    deadline = CAL.add(CAL.clock_start(t), minutes)
    paused = CAL.between(pause_start, pause_start + timedelta(hours=pause_hours))
    moved = CAL.shift(deadline, paused)
    assert CAL.between(deadline, moved) == paused
    assert moved >= deadline


@settings(max_examples=100, deadline=None)
@given(t=instants, a=half_days, b=half_days)
def test_working_time_adds_up(t, a, b):
    start = CAL.clock_start(t)
    assert CAL.between(start, CAL.add(CAL.add(start, a), b)) == a + b




def test_the_local_day_of_an_instant_is_the_provinces():
    """From 00:00 to 07:00 here it is still yesterday in UTC: a harvest registered this morning
    was "in the future" and stamps issued then showed the day before (market)."""
    from datetime import datetime, timezone

    from lscloud import timestamps, workdays

    evening_utc = datetime(2026, 3, 10, 18, 0, tzinfo=timezone.utc)   # 01:00 on 11 March here
    assert workdays.local_day(evening_utc) == "2026-03-11" == workdays.local_day("2026-03-10T18:00:00Z")
    assert workdays.local_day("2026-03-10T16:59:59.999Z") == "2026-03-10"
    assert timestamps.today_here(evening_utc).isoformat() == "2026-03-11"
    with pytest.raises(ValueError):
        workdays.local_day(datetime(2026, 3, 10, 18, 0))
