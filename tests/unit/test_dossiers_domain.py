"""The dossiers' domain alone: working-day arithmetic (holidays, Tết, make-up Saturdays, cut-off,
half days, pauses) with property tests, the state machine, document checks and the figures."""

from __future__ import annotations

import importlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from lscloud.knative import load_function

ROOT = Path(__file__).resolve().parents[2]
pkg = load_function(ROOT / "functions" / "dossiers").__name__
workdays = importlib.import_module(pkg + ".workdays")
workflow = importlib.import_module(pkg + ".workflow")
stats = importlib.import_module(pkg + ".stats")

TZ = workdays.TZ
CAL = workdays.load()
DAY = workdays.DAY_MINUTES


def local(y, m, d, hh=9, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


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


def test_an_unverified_day_makes_a_deadline_provisional():
    assert CAL.certain(date(2026, 2, 2), date(2026, 2, 27))
    assert date(2026, 11, 24) in CAL.unverified and CAL.is_holiday(date(2026, 11, 24))
    assert not CAL.certain(date(2026, 11, 20), date(2026, 11, 30))
    doc = {"procedure": {"processing_days": 5}, "steps": [], "channel": "online"}
    workflow.receive(doc, workflow.Actor("citizen", "x"), local(2026, 11, 20, 9), CAL)
    assert doc["calendar_provisional"] is True
    workflow.receive(doc, workflow.Actor("citizen", "x"), local(2026, 2, 2, 9), CAL)
    assert doc["calendar_provisional"] is False


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


# -- same-day procedures (on-time birth registration, Law on Civil Status art. 16) ------------------

def test_a_same_day_request_is_due_at_the_close_of_the_day_or_of_the_next_after_the_cut_off():
    three = datetime.strptime("15:00", "%H:%M").time()
    assert CAL.end_of_day(local(2026, 3, 2, 9), three) == local(2026, 3, 2, 17, 30)
    assert CAL.end_of_day(local(2026, 3, 2, 6, 45), three) == local(2026, 3, 2, 17, 30)
    assert CAL.end_of_day(local(2026, 3, 2, 15, 0), three) == local(2026, 3, 3, 17, 30)
    assert CAL.end_of_day(local(2026, 3, 6, 16, 0), three) == local(2026, 3, 9, 17, 30)   # Friday -> Monday
    assert CAL.end_of_day(local(2026, 1, 9, 15, 30), three) == local(2026, 1, 10, 17, 30)  # make-up Saturday
    assert CAL.end_of_day(local(2026, 2, 13, 10), three) == local(2026, 2, 13, 17, 30)


SAME_DAY = {"code": "HT-KS", "name": "Đăng ký khai sinh", "agency": "ubnd-xa", "processing_days": 0,
            "same_day_cutoff": "15:00", "documents": [{"code": "to-khai", "name": "Tờ khai", "required": True}],
            "steps": [{"code": "receive", "name": "Tiếp nhận", "agency": "ubnd-xa", "days": 0},
                      {"code": "sign", "name": "Ký", "agency": "ubnd-xa", "days": 0}]}


def test_a_same_day_dossier_and_its_steps_are_due_that_evening():
    officer = workflow.Actor("officer", "cb-1", "ubnd-06040", "06040")
    doc = {"id": "d2", "code": "LS-2", "procedure": SAME_DAY, "agency": "ubnd-06040", "unit": "06040",
           "channel": "counter", "owner": CITIZEN.sub, "documents": [],
           "steps": workflow.plan_steps(SAME_DAY, "06040", {})}
    workflow.receive(doc, officer, local(2026, 3, 2, 9), CAL)
    assert doc["deadline"] == workflow.iso(local(2026, 3, 2, 17, 30)) and doc["appointment_date"] == "2026-03-02"
    assert [s["planned_deadline"] for s in doc["steps"]] == [doc["deadline"]] * 2
    workflow.start(doc, officer, local(2026, 3, 2, 9, 5), CAL)
    assert doc["steps"][0]["deadline"] == doc["deadline"]
    assert workflow.overdue_steps(doc, local(2026, 3, 2, 17, 0)) == []
    workflow.complete_step(doc, officer, local(2026, 3, 2, 10), CAL)
    assert doc["steps"][1]["deadline"] == doc["deadline"]
    workflow.finish(doc, officer, local(2026, 3, 2, 16), {"sha256": "c" * 64})
    assert doc["on_time"] is True
    late = dict(doc, steps=workflow.plan_steps(SAME_DAY, "06040", {}))
    workflow.receive(late, officer, local(2026, 3, 2, 15, 30), CAL)
    assert late["deadline"] == workflow.iso(local(2026, 3, 3, 17, 30))


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


# -- the state machine ----------------------------------------------------------------------------------

PROCEDURE = {"code": "XD-GPXD", "name": "Cấp giấy phép xây dựng", "agency": "so-xay-dung", "processing_days": 15,
             "documents": [{"code": "don", "name": "Đơn đề nghị", "required": True},
                           {"code": "ban-ve", "name": "Bản vẽ thiết kế", "required": True},
                           {"code": "khac", "name": "Khác", "required": False}],
             "steps": [{"code": "tiep-nhan", "name": "Tiếp nhận", "agency": "public-service-centre", "days": 0.5},
                       {"code": "tham-dinh", "name": "Thẩm định", "agency": "so-xay-dung", "days": 14},
                       {"code": "tra-kq", "name": "Trả kết quả", "agency": "public-service-centre", "days": 0.5}]}
CITIZEN = workflow.Actor("citizen", "020090001234")
PSC = workflow.Actor("officer", "can-bo-1", "public-service-centre", "05983")
SXD = workflow.Actor("officer", "can-bo-2", "so-xay-dung", None)
OTHER = workflow.Actor("officer", "can-bo-3", "so-y-te", "05983")


def new_doc(at=local(2025, 3, 3, 9)) -> dict:
    steps = workflow.plan_steps(PROCEDURE, "05983", {"public-service-centre": "05983", "so-xay-dung": None})
    doc = {"id": "d1", "code": "LS-1", "procedure": PROCEDURE, "agency": "so-xay-dung", "unit": "05983",
           "channel": "online", "owner": CITIZEN.sub, "documents": [], "steps": steps}
    workflow.receive(doc, CITIZEN, at, CAL)
    return doc


def test_commune_steps_go_to_the_dossiers_commune():
    proc = {"steps": [{"code": "a", "name": "A", "agency": "ubnd-xa", "days": 1}]}
    s = workflow.plan_steps(proc, "06040", {})[0]
    assert (s["agency"], s["unit"]) == ("ubnd-06040", "06040")


def test_receipt_stamps_the_appointment_in_working_days():
    doc = new_doc()
    assert doc["status"] == "received" and doc["deadline"] == workflow.iso(CAL.add_days(local(2025, 3, 3, 9), 15))
    assert doc["appointment_date"] == "2025-03-24" and not doc["calendar_provisional"]
    assert [s["planned_deadline"] is not None for s in doc["steps"]] == [True] * 3


def test_the_whole_path_with_hand_over_a_pause_and_the_result():
    doc = new_doc()
    with pytest.raises(workflow.NotPermitted):
        workflow.start(doc, SXD, local(2025, 3, 3, 10), CAL)
    workflow.start(doc, PSC, local(2025, 3, 3, 10), CAL)
    ts = workflow.complete_step(doc, PSC, local(2025, 3, 3, 11), CAL)
    assert [t.fact for t in ts] == ["step.completed", "dossier.handed-over"]
    assert doc["steps"][1]["status"] == "active" and doc["steps"][1]["agency"] == "so-xay-dung"
    with pytest.raises(workflow.NotPermitted):
        workflow.complete_step(doc, PSC, local(2025, 3, 4, 9), CAL)
    before = workflow.parse(doc["deadline"])
    step_before = workflow.parse(doc["steps"][1]["deadline"])
    workflow.request_supplement(doc, SXD, local(2025, 3, 5, 9), [{"name": "Bản vẽ mặt bằng"}], "Thiếu bản vẽ")
    assert doc["status"] == "waiting"
    with pytest.raises(workflow.IllegalTransition) as e:
        workflow.complete_step(doc, SXD, local(2025, 3, 6, 9), CAL)
    assert e.value.state == "waiting"
    with pytest.raises(workflow.NotPermitted):
        workflow.provide_supplement(doc, workflow.Actor("citizen", "001099000001"), local(2025, 3, 7, 9), CAL, [])
    workflow.provide_supplement(doc, CITIZEN, local(2025, 3, 7, 9), CAL, [{"code": "ban-ve", "sha256": "a" * 64}])
    assert doc["status"] == "processing" and doc["paused_minutes"] == 2 * DAY
    assert workflow.parse(doc["deadline"]) == CAL.shift(before, 2 * DAY)
    assert workflow.parse(doc["steps"][1]["deadline"]) == CAL.shift(step_before, 2 * DAY)
    workflow.complete_step(doc, SXD, local(2025, 3, 20, 9), CAL)
    with pytest.raises(workflow.IllegalTransition):
        workflow.complete_step(doc, PSC, local(2025, 3, 20, 10), CAL)     # last step: finish instead
    workflow.finish(doc, PSC, local(2025, 3, 20, 10), {"sha256": "b" * 64})
    assert doc["status"] == "done" and doc["on_time"] is True and not workflow.is_overdue(doc, local(2026, 1, 1))


def test_cancel_only_by_the_owner_and_only_before_processing():
    doc = new_doc()
    with pytest.raises(workflow.NotPermitted):
        workflow.cancel(doc, workflow.Actor("citizen", "001099000001"), local(2025, 3, 3, 10), None)
    workflow.start(doc, PSC, local(2025, 3, 3, 10), CAL)
    with pytest.raises(workflow.IllegalTransition) as e:
        workflow.cancel(doc, CITIZEN, local(2025, 3, 3, 11), "đổi ý")
    assert e.value.state == "processing"
    doc2 = new_doc()
    workflow.cancel(doc2, CITIZEN, local(2025, 3, 3, 10), "đổi ý")
    assert doc2["status"] == "cancelled" and workflow.allowed_actions("cancelled") == []


def test_deny_needs_a_reason_and_overdue_is_tracked_per_step_and_dossier():
    doc = new_doc()
    workflow.start(doc, PSC, local(2025, 3, 3, 10), CAL)
    # the first step had half a day: at 15:30 it is overdue (deadline 15:00), the dossier is not
    assert [s["code"] for s in workflow.overdue_steps(doc, local(2025, 3, 3, 15, 30))] == ["tiep-nhan"]
    assert not workflow.is_overdue(doc, local(2025, 3, 3, 15, 30))
    assert workflow.is_overdue(doc, local(2025, 4, 30, 9))
    with pytest.raises(ValueError):
        workflow.deny(doc, PSC, local(2025, 3, 4, 9), " ")
    workflow.deny(doc, PSC, local(2025, 3, 4, 9), "Hồ sơ không thuộc thẩm quyền")
    assert doc["status"] == "denied" and doc["on_time"] is True and doc["steps"][0]["overdue"] is True


def test_the_clock_stops_while_waiting():
    doc = new_doc()
    workflow.request_supplement(doc, PSC, local(2025, 3, 3, 10), [{"name": "CCCD"}], "Thiếu bản sao CCCD")
    assert not workflow.is_overdue(doc, local(2025, 12, 1, 9))     # waiting for months is not the office's delay


def test_required_documents_are_named_when_missing():
    errs = workflow.check_documents(PROCEDURE, [{"code": "don", "sha256": "a" * 64}, {"code": "zzz", "sha256": "a" * 64}])
    assert {e["field"] for e in errs} == {"/documents/1/code", "/documents"}
    assert any(e.get("code") == "ban-ve" and e["name"] == "Bản vẽ thiết kế" for e in errs)


def test_figures_split_on_time_late_and_online_share():
    a, b = new_doc(), new_doc()
    b["channel"] = "counter"
    for d in (a, b):
        workflow.start(d, PSC, local(2025, 3, 3, 10), CAL)
        workflow.complete_step(d, PSC, local(2025, 3, 3, 11), CAL)
        workflow.complete_step(d, SXD, local(2025, 3, 4, 11), CAL)
    workflow.finish(a, PSC, local(2025, 3, 5, 9), {"sha256": "b" * 64})
    workflow.finish(b, PSC, local(2025, 5, 5, 9), {"sha256": "b" * 64})
    f = stats.compute([a, b], [a, b], [], local(2025, 6, 1))
    t = f["total"]
    assert (t["received"], t["resolved"], t["on_time"], t["late"], t["online_share"]) == (2, 2, 1, 1, 0.5)
    assert f["by_agency"][0]["agency"] == "so-xay-dung" and f["by_procedure"][0]["procedure"] == "XD-GPXD"
