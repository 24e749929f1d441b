"""The dossiers' domain alone: deadlines on the working-day calendar (provisional receipts, same-day
procedures), the state machine, who applies and how, document checks and the figures. The calendar
itself is tested with the runtime (tests/unit/test_workdays.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from functions.dossiers.function import applicants, deadlines, stats, submission, workflow
from functions.dossiers.function.states import allowed_actions
from lscloud import errors, workdays
from lscloud.statemachine import Actor, IllegalTransition, NotPermitted, iso, parse_iso

TZ = workdays.TZ
CAL = workdays.load()
DAY = workdays.DAY_MINUTES


def local(y, m, d, hh=9, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def test_an_unverified_day_makes_a_receipt_provisional():
    doc = {"procedure": {"processing_days": 5}, "steps": [], "channel": "online"}
    workflow.receive(doc, Actor("citizen", "x"), local(2026, 11, 20, 9), CAL)
    assert doc["calendar_provisional"] is True
    workflow.receive(doc, Actor("citizen", "x"), local(2026, 2, 2, 9), CAL)
    assert doc["calendar_provisional"] is False


def test_a_pause_that_moves_the_deadline_into_an_unknown_year_makes_it_provisional():
    """A pause pushed the deadline into a year the calendar has no file for (its lunar holidays not
    known yet), and the receipt still said the date was certain."""
    doc = {"procedure": {"processing_days": 5}, "steps": [], "channel": "online", "paused_minutes": 0}
    workflow.receive(doc, Actor("citizen", "x"), local(2026, 12, 14, 9), CAL)
    assert doc["calendar_provisional"] is False and doc["appointment_date"] == "2026-12-21"
    pause = {"requested_at": iso(local(2026, 12, 15, 9)), "resumed_at": None}
    deadlines.resume(doc, pause, local(2026, 12, 29, 9), CAL)
    assert doc["appointment_date"] >= "2027-01-01" and doc["calendar_provisional"] is True


# -- same-day procedures (on-time birth registration, Law on Civil Status art. 16) ------------------

SAME_DAY = {"code": "HT-KS", "name": "Đăng ký khai sinh", "agency": "ubnd-xa", "processing_days": 0,
            "same_day_cutoff": "15:00", "documents": [{"code": "to-khai", "name": "Tờ khai", "required": True}],
            "steps": [{"code": "receive", "name": "Tiếp nhận", "agency": "ubnd-xa", "days": 0},
                      {"code": "sign", "name": "Ký", "agency": "ubnd-xa", "days": 0}]}


def test_a_same_day_dossier_and_its_steps_are_due_that_evening():
    officer = Actor("officer", "cb-1", "ubnd-06040", "06040")
    doc = {"id": "d2", "code": "LS-2", "procedure": SAME_DAY, "agency": "ubnd-06040", "unit": "06040",
           "channel": "counter", "owner": CITIZEN.sub, "documents": [],
           "steps": workflow.plan_steps(SAME_DAY, "06040", {})}
    workflow.receive(doc, officer, local(2026, 3, 2, 9), CAL)
    assert doc["deadline"] == iso(local(2026, 3, 2, 17, 30)) and doc["appointment_date"] == "2026-03-02"
    assert [s["planned_deadline"] for s in doc["steps"]] == [doc["deadline"]] * 2
    workflow.start(doc, officer, local(2026, 3, 2, 9, 5), CAL)
    assert doc["steps"][0]["deadline"] == doc["deadline"]
    assert deadlines.overdue_steps(doc, local(2026, 3, 2, 17, 0)) == []
    workflow.complete_step(doc, officer, local(2026, 3, 2, 10), CAL)
    assert doc["steps"][1]["deadline"] == doc["deadline"]
    workflow.finish(doc, officer, local(2026, 3, 2, 16), {"sha256": "c" * 64})
    assert doc["on_time"] is True
    late = dict(doc, steps=workflow.plan_steps(SAME_DAY, "06040", {}))
    workflow.receive(late, officer, local(2026, 3, 2, 15, 30), CAL)
    assert late["deadline"] == iso(local(2026, 3, 3, 17, 30))


# -- the state machine ----------------------------------------------------------------------------------

PROCEDURE = {"code": "XD-GPXD", "name": "Cấp giấy phép xây dựng", "agency": "so-xay-dung", "processing_days": 15,
             "documents": [{"code": "don", "name": "Đơn đề nghị", "required": True},
                           {"code": "ban-ve", "name": "Bản vẽ thiết kế", "required": True},
                           {"code": "khac", "name": "Khác", "required": False}],
             "steps": [{"code": "tiep-nhan", "name": "Tiếp nhận", "agency": "public-service-centre", "days": 0.5},
                       {"code": "tham-dinh", "name": "Thẩm định", "agency": "so-xay-dung", "days": 14},
                       {"code": "tra-kq", "name": "Trả kết quả", "agency": "public-service-centre", "days": 0.5}]}
CITIZEN = Actor("citizen", "020090001234")
PSC = Actor("officer", "can-bo-1", "public-service-centre", "05983")
SXD = Actor("officer", "can-bo-2", "so-xay-dung", None)
OTHER = Actor("officer", "can-bo-3", "so-y-te", "05983")


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
    assert doc["status"] == "received" and doc["deadline"] == iso(CAL.add_days(local(2025, 3, 3, 9), 15))
    assert doc["appointment_date"] == "2025-03-24" and not doc["calendar_provisional"]
    assert [s["planned_deadline"] is not None for s in doc["steps"]] == [True] * 3


def test_the_whole_path_with_hand_over_a_pause_and_the_result():
    doc = new_doc()
    with pytest.raises(NotPermitted):
        workflow.start(doc, SXD, local(2025, 3, 3, 10), CAL)
    workflow.start(doc, PSC, local(2025, 3, 3, 10), CAL)
    ts = workflow.complete_step(doc, PSC, local(2025, 3, 3, 11), CAL)
    assert [t.fact for t in ts] == ["step.completed", "dossier.handed-over"]
    assert doc["steps"][1]["status"] == "active" and doc["steps"][1]["agency"] == "so-xay-dung"
    with pytest.raises(NotPermitted):
        workflow.complete_step(doc, PSC, local(2025, 3, 4, 9), CAL)
    before = parse_iso(doc["deadline"])
    step_before = parse_iso(doc["steps"][1]["deadline"])
    workflow.request_supplement(doc, SXD, local(2025, 3, 5, 9), [{"name": "Bản vẽ mặt bằng"}], "Thiếu bản vẽ")
    assert doc["status"] == "waiting"
    with pytest.raises(IllegalTransition) as e:
        workflow.complete_step(doc, SXD, local(2025, 3, 6, 9), CAL)
    assert e.value.state == "waiting"
    with pytest.raises(NotPermitted):
        workflow.provide_supplement(doc, Actor("citizen", "001099000001"), local(2025, 3, 7, 9), CAL, [])
    workflow.provide_supplement(doc, CITIZEN, local(2025, 3, 7, 9), CAL, [{"code": "ban-ve", "sha256": "a" * 64}])
    assert doc["status"] == "processing" and doc["paused_minutes"] == 2 * DAY
    assert parse_iso(doc["deadline"]) == CAL.shift(before, 2 * DAY)
    assert parse_iso(doc["steps"][1]["deadline"]) == CAL.shift(step_before, 2 * DAY)
    workflow.complete_step(doc, SXD, local(2025, 3, 20, 9), CAL)
    with pytest.raises(IllegalTransition):
        workflow.complete_step(doc, PSC, local(2025, 3, 20, 10), CAL)     # last step: finish instead
    workflow.finish(doc, PSC, local(2025, 3, 20, 10), {"sha256": "b" * 64})
    assert doc["status"] == "done" and doc["on_time"] is True and not deadlines.is_overdue(doc, local(2026, 1, 1))


def test_cancel_only_by_the_owner_and_only_before_processing():
    doc = new_doc()
    with pytest.raises(NotPermitted):
        workflow.cancel(doc, Actor("citizen", "001099000001"), local(2025, 3, 3, 10), None)
    workflow.start(doc, PSC, local(2025, 3, 3, 10), CAL)
    with pytest.raises(IllegalTransition) as e:
        workflow.cancel(doc, CITIZEN, local(2025, 3, 3, 11), "đổi ý")
    assert e.value.state == "processing"
    doc2 = new_doc()
    workflow.cancel(doc2, CITIZEN, local(2025, 3, 3, 10), "đổi ý")
    assert doc2["status"] == "cancelled" and allowed_actions("cancelled") == []


def test_deny_needs_a_reason_and_overdue_is_tracked_per_step_and_dossier():
    doc = new_doc()
    workflow.start(doc, PSC, local(2025, 3, 3, 10), CAL)
    # the first step had half a day: at 15:30 it is overdue (deadline 15:00), the dossier is not
    assert [s["code"] for s in deadlines.overdue_steps(doc, local(2025, 3, 3, 15, 30))] == ["tiep-nhan"]
    assert not deadlines.is_overdue(doc, local(2025, 3, 3, 15, 30))
    assert deadlines.is_overdue(doc, local(2025, 4, 30, 9))
    with pytest.raises(errors.Invalid):
        workflow.deny(doc, PSC, local(2025, 3, 4, 9), " ")
    workflow.deny(doc, PSC, local(2025, 3, 4, 9), "Hồ sơ không thuộc thẩm quyền")
    assert doc["status"] == "denied" and doc["on_time"] is True and doc["steps"][0]["overdue"] is True


def test_the_clock_stops_while_waiting():
    doc = new_doc()
    workflow.request_supplement(doc, PSC, local(2025, 3, 3, 10), [{"name": "CCCD"}], "Thiếu bản sao CCCD")
    assert not deadlines.is_overdue(doc, local(2025, 12, 1, 9))     # waiting for months is not the office's delay


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


# -- who applies, and how (once inside the submission route, now plain rules) --------------------------

def test_a_citizen_submits_online_in_their_own_name():
    channel, applicant = applicants.resolve(CITIZEN, {"applicant": {"name": "Nguyễn Văn An"}})
    assert (channel, applicant) == ("online", {"name": "Nguyễn Văn An", "id_number": CITIZEN.sub, "kind": "citizen"})
    with pytest.raises(errors.Invalid) as e:
        applicants.resolve(CITIZEN, {"channel": "counter", "applicant": {"id_number": "001195005678"}})
    assert [f["field"] for f in e.value.errors] == ["/channel", "/applicant/id_number"]


def test_a_business_submits_online_under_its_tax_code():
    channel, applicant = applicants.resolve(Actor("enterprise", "0100109106"), {})
    assert (channel, applicant["tax_code"], applicant["kind"]) == ("online", "0100109106", "business")
    assert applicants.owner(applicant) == "0100109106"


def test_an_officer_records_counter_or_post_for_a_named_applicant():
    clerk = Actor("officer", "cb-1", "ubnd-06040", "06040")
    channel, applicant = applicants.resolve(clerk, {"channel": "post", "applicant": {"tax_code": "020 095 001 234"}})
    assert (channel, applicant["tax_code"], applicant["kind"]) == ("post", "020095001234", "business")
    with pytest.raises(errors.Invalid) as e:
        applicants.resolve(clerk, {"channel": "online", "applicant": {"id_number": "020095001234",
                                                                      "tax_code": "003095001234"}})
    assert [f["field"] for f in e.value.errors] == ["/channel", "/applicant/tax_code"]
    with pytest.raises(errors.Invalid) as e:
        applicants.resolve(clerk, {"channel": "counter"})
    assert [f["field"] for f in e.value.errors] == ["/applicant/id_number"]


def test_the_commune_decides_a_commune_procedure_and_fees_are_whole_dong():
    assert submission.deciding_agency({"agency": "ubnd-xa"}, "06040") == "ubnd-06040"
    assert submission.deciding_agency(PROCEDURE, "05983") == "so-xay-dung"
    assert submission.fees({"fees": [{"name": "Phí", "amount_vnd": "150000", "note": "x"}]}) == \
        [{"name": "Phí", "amount_vnd": 150000}]


def test_a_counter_takes_only_the_procedures_its_unit_receives():
    steps = workflow.plan_steps(PROCEDURE, "05983", {"public-service-centre": "05983"})
    submission.check_counter(steps, PSC)
    submission.check_counter(steps, CITIZEN)   # online: no counter
    with pytest.raises(submission.NotYourCounter) as e:
        submission.check_counter(steps, OTHER)
    assert e.value.to_problem().status == 403 and e.value.to_problem().type.endswith("/not-your-counter")
    with pytest.raises(submission.DocumentsMissing) as e:
        submission.check_documents(PROCEDURE, [{"code": "don", "sha256": "a" * 64}])
    assert [x.get("code") for x in e.value.errors] == ["ban-ve"] and "Bản vẽ thiết kế" in e.value.detail_vi


def test_who_sees_a_dossier():
    from functions.dossiers.function.registry import can_see

    doc = new_doc()
    assert can_see(doc, CITIZEN) and not can_see(doc, Actor("citizen", "001195005678"))
    assert can_see(doc, PSC) and can_see(doc, SXD) and not can_see(doc, OTHER)
    assert not can_see(doc, Actor("officer", "x", "public-service-centre", "06040"))   # another unit
    assert can_see(doc, Actor("supervisor", "s", "so-xay-dung")) and not can_see(doc, Actor("supervisor", "s", "so-y-te"))
    assert can_see(doc, Actor("auditor", "a")) and not can_see(doc, Actor("ioc", "i"))


def test_refusals_are_the_problems_callers_always_got():
    doc = new_doc()
    with pytest.raises(NotPermitted) as e:
        workflow.start(doc, SXD, local(2025, 3, 3, 10), CAL)
    p = e.value.to_problem()
    assert (p.status, p.type.rsplit("/", 1)[1]) == (403, "not-your-step")
    workflow.cancel(doc, CITIZEN, local(2025, 3, 3, 10), None)
    with pytest.raises(IllegalTransition) as e:
        workflow.start(doc, PSC, local(2025, 3, 3, 11), CAL)
    p = e.value.to_problem()
    assert (p.status, p.type.rsplit("/", 1)[1], p.extensions["current_state"], p.extensions["allowed_from"]) == \
        (409, "illegal-transition", "cancelled", ["received"])
    assert "hồ sơ đã hủy" in p.detail_vi
    assert allowed_actions("received") == ["cancel", "deny", "request_supplement", "start"]
    assert allowed_actions("waiting") == ["provide_supplement"] and allowed_actions("done") == []
