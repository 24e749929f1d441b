"""The dossiers' domain alone: working-day arithmetic (holidays, Tết, make-up Saturdays, cut-off,
half days, pauses) with property tests, the state machine, document checks and the figures."""

from __future__ import annotations

import importlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from lscloud import workdays
from lscloud.knative import load_function

ROOT = Path(__file__).resolve().parents[2]
pkg = load_function(ROOT / "functions" / "dossiers").__name__
workflow = importlib.import_module(pkg + ".workflow")
stats = importlib.import_module(pkg + ".stats")

TZ = workdays.TZ
CAL = workdays.load()
DAY = workdays.DAY_MINUTES


def local(y, m, d, hh=9, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def test_an_unverified_day_makes_a_receipt_provisional():
    doc = {"procedure": {"processing_days": 5}, "steps": [], "channel": "online"}
    workflow.receive(doc, workflow.Actor("citizen", "x"), local(2026, 11, 20, 9), CAL)
    assert doc["calendar_provisional"] is True
    workflow.receive(doc, workflow.Actor("citizen", "x"), local(2026, 2, 2, 9), CAL)
    assert doc["calendar_provisional"] is False


# -- same-day procedures (on-time birth registration, Law on Civil Status art. 16) ------------------

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
