"""The table-driven state machine and the domain error tree (plain Python, no servers)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lscloud import errors
from lscloud.statemachine import Action, Actor, IllegalTransition, NotPermitted, StateMachine

STATES = ("draft", "submitted", "cleared", "cancelled")
MACHINE = StateMachine("border", [
    Action("submit", {"draft"}, "submitted", "declaration.submitted", actors={"enterprise"}),
    Action("release", {"submitted"}, "cleared", "declaration.cleared", actors={"officer"}, agency="customs"),
    Action("cancel", {"draft", "submitted"}, "cancelled", "declaration.cancelled", actors={"enterprise", "operator"}),
    Action("resume", {"submitted"}, None, "inspection.resumed"),
    Action("commit", {"submitted"}, "cleared", "transfer.committed", kinds={"withdrawal"}),
], states=STATES, terminal={"cancelled"}, noun=("declaration", "tờ khai"), state_names_vi={"cleared": "đã thông quan"})

ENTERPRISE = Actor("enterprise", "0100109106")
CUSTOMS = Actor("officer", "o1", agency="customs")


def test_apply_moves_the_state_and_returns_the_transition():
    doc = {"status": "draft"}
    at = datetime(2026, 12, 3, 1, 2, 3, tzinfo=timezone.utc)
    t = MACHINE.apply(doc, "submit", ENTERPRISE, at=at, reason="ready")
    assert doc["status"] == "submitted" and doc["timestamps"] == {"submitted": "2026-12-03T01:02:03.000Z"}
    assert doc["updated_at"] == "2026-12-03T01:02:03.000Z"
    assert (t.source, t.target, t.type) == ("draft", "submitted", "vn.langson.border.declaration.submitted.v1")
    assert t.audit()["actor"] == {"kind": "enterprise", "sub": "0100109106"}
    assert t.event_data()["reason"] == "ready"


def test_a_move_from_a_state_not_in_its_sources_is_a_409_naming_the_states():
    doc = {"status": "cleared"}
    with pytest.raises(IllegalTransition) as caught:
        MACHINE.apply(doc, "cancel", ENTERPRISE)
    p = caught.value.to_problem()
    assert p.status == 409 and p.type.endswith("/illegal-transition")
    assert p.extensions == {"current_state": "cleared", "action": "cancel", "allowed_from": ["draft", "submitted"]}
    assert "đã thông quan" in p.detail_vi
    assert doc == {"status": "cleared"}  # nothing changed


def test_actor_rules_role_and_agency_and_system_may_always_act():
    with pytest.raises(NotPermitted):
        MACHINE.check({"status": "draft"}, "submit", Actor("driver", "x"))
    with pytest.raises(NotPermitted):
        MACHINE.check({"status": "submitted"}, "release", Actor("officer", "o2", agency="border-guard"))
    assert MACHINE.check({"status": "submitted"}, "release", CUSTOMS).name == "release"
    assert MACHINE.check({"status": "draft"}, "submit", MACHINE.system).name == "submit"
    # permission is checked before the state: a driver learns nothing about the record's state
    with pytest.raises(NotPermitted):
        MACHINE.check({"status": "cleared"}, "submit", Actor("driver", "x"))


def test_a_refused_actor_is_a_403_of_its_own_type_not_the_doors():
    # the door's 403 (a role the route does not admit) is "forbidden"; the role-matrix tests tell
    # the two apart by type, so a domain refusal must not borrow it
    with pytest.raises(NotPermitted) as caught:
        MACHINE.check({"status": "submitted"}, "release", Actor("officer", "o2", agency="border-guard"))
    p = caught.value.to_problem()
    assert p.status == 403 and p.type.endswith("/action-not-permitted")
    assert p.detail == "a officer of border-guard may not release a declaration" and "tờ khai" in p.detail_vi
    same = MACHINE.not_permitted("release", Actor("officer", "o2", agency="border-guard")).to_problem()
    assert (same.type, same.detail, same.extensions) == (p.type, p.detail, {"action": "release"})


def test_an_open_target_must_be_named_and_kinds_restrict_an_action():
    doc = {"status": "submitted"}
    with pytest.raises(ValueError):
        MACHINE.apply(doc, "resume", CUSTOMS)
    assert MACHINE.apply(doc, "resume", CUSTOMS, target="draft").target == "draft"
    with pytest.raises(IllegalTransition):
        MACHINE.check({"status": "submitted", "kind": "deposit"}, "commit")
    assert MACHINE.check({"status": "submitted", "kind": "withdrawal"}, "commit").target == "cleared"
    assert MACHINE.allowed_actions("submitted", kind="deposit") == ["cancel", "release", "resume"]


def test_a_table_naming_an_unknown_state_or_a_duplicate_action_is_refused_at_import():
    with pytest.raises(ValueError):
        StateMachine("x", [Action("a", {"nowhere"}, "draft", "a.done")], states=STATES)
    with pytest.raises(ValueError):
        StateMachine("x", [Action("a", {"draft"}, "draft", "a"), Action("a", {"draft"}, "draft", "a")], states=STATES)


def test_domain_errors_carry_their_problem_and_foreign_errors_map_by_registration():
    class SlotFull(errors.Conflict):
        type = "slot-full"
        title, title_vi = "Booking not possible", "Không đặt được lượt"

    p = errors.to_problem(SlotFull("full", errors=[errors.field("/slot", "full")], suggestions=["a"]))
    assert (p.status, p.type.rsplit("/", 1)[-1], p.title_vi, p.errors, p.extensions) == \
        (409, "slot-full", "Không đặt được lượt", [{"field": "/slot", "message": "full"}], {"suggestions": ["a"]})
    assert errors.to_problem(errors.Unavailable("peer down", retry_after_s=7)).headers == {"Retry-After": "7"}
    assert errors.to_problem(errors.Invalid.at("/a", "bad")).errors == [{"field": "/a", "message": "bad"}]
    bad_code = errors.to_problem(errors.InvalidParameter("no code", errors=[errors.field("/code", "digits")]))
    assert (bad_code.status, bad_code.type.rsplit("/", 1)[-1], bad_code.errors[0]["field"]) == \
        (400, "invalid-parameter", "/code")

    class Foreign(Exception):
        pass

    class Sub(Foreign):
        pass

    assert errors.to_problem(Sub()) is None
    errors.register(Foreign, lambda exc: errors.NotFound("gone").to_problem())
    try:
        assert errors.to_problem(Sub()).status == 404
    finally:
        errors.FOREIGN.pop(Foreign)


def test_a_pseudonymous_actor_keeps_its_role_and_scopes_but_not_its_subject():
    citizen = Actor("citizen", "020095001234", unit="06184")
    p = citizen.pseudonymous("shop-owners")
    assert (p.kind, p.unit) == ("citizen", "06184") and "020095001234" not in repr(p)
    assert p == citizen.pseudonymous("shop-owners") and p.sub != citizen.pseudonymous("members").sub
    assert Actor("system").pseudonymous("x").sub is None
