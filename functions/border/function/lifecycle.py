"""The crossing's state machine: which action moves a declaration from which states to which,
who may do it, and the event fact it publishes — a table on :mod:`lscloud.statemachine`.

    draft → submitted → queued (slot) → in_yard → called (deadline) → at_gate → under_inspection
          → cleared | held | refused → exited;   cancelled;   a missed call → in_yard once, then expired;
    draft | submitted | queued → expired (``lapse``, the platform's: a crossing that can no longer happen)

``lapse`` is the system's only: a draft or a submitted declaration untouched for
``BORDER_STALE_DRAFT_DAYS``, or a booking whose slot passed ``BORDER_STALE_SLOT_HOURS`` ago with no
truck in the yard (:mod:`.lapse`). Without it such a declaration never ended, so it kept the driver's
health answers and phone for good (they go a keep period after the end) and was counted waiting.

Plain Python over the declaration dict; the HTTP layer maps a token to an :class:`Actor`.
"""

from __future__ import annotations

from lscloud.statemachine import Action, Actor, IllegalTransition, NotPermitted, StateMachine, Transition, iso

__all__ = ["MACHINE", "STATES", "TERMINAL", "ACTIVE_AT_GATE", "STATE_VI", "ACTIONS", "SYSTEM", "apply", "check",
           "allowed_actions", "Actor", "IllegalTransition", "NotPermitted", "Transition", "iso"]

STATES = ("draft", "submitted", "queued", "in_yard", "called", "at_gate", "under_inspection", "held",
          "cleared", "refused", "exited", "cancelled", "expired")
TERMINAL = frozenset({"refused", "exited", "cancelled", "expired"})
ACTIVE_AT_GATE = frozenset({"at_gate", "under_inspection", "held", "cleared"})

# Vietnamese names of the states, for problems and the driver's lookup (i18n has zh/en)
STATE_VI = {"draft": "bản nháp", "submitted": "đã nộp", "queued": "đã xếp lượt", "in_yard": "đang ở bãi chờ",
            "called": "đã được gọi vào cửa khẩu", "at_gate": "đã đến cửa khẩu", "under_inspection": "đang kiểm tra",
            "held": "đang bị tạm giữ", "cleared": "đã được thông quan", "refused": "bị từ chối", "exited": "đã xuất cảnh/nhập cảnh",
            "cancelled": "đã hủy", "expired": "đã hết hiệu lực"}

MACHINE = StateMachine("border", [
    Action("create", {"new"}, "draft", "declaration.drafted", actors={"enterprise"}),
    Action("submit", {"draft"}, "submitted", "declaration.submitted", actors={"enterprise"}),
    Action("book", {"submitted"}, "queued", "declaration.queued", actors={"enterprise", "operator"}),
    Action("arrive", {"queued"}, "in_yard", "truck.arrived", actors={"yard-operator", "device"}),
    Action("call", {"in_yard"}, "called", "truck.called", actors={"gate-operator"}),
    Action("miss_call", {"called"}, "in_yard", "call.missed", actors={"gate-operator", "system"}),
    Action("expire", {"called"}, "expired", "declaration.expired", actors={"gate-operator", "system"}),
    Action("reach_gate", {"called"}, "at_gate", "truck.reached-gate", actors={"gate-operator", "device"}),
    Action("start_inspection", {"at_gate"}, "under_inspection", "inspection.started", actors={"officer"}),
    Action("hold", {"at_gate", "under_inspection", "cleared"}, "held", "declaration.held", actors={"officer", "device"}),
    Action("resume", {"held"}, "under_inspection", "inspection.resumed", actors={"officer", "device"}),
    Action("refuse", {"submitted", "queued", "in_yard", "called", "at_gate", "under_inspection", "held"}, "refused",
           "declaration.refused", actors={"officer"}),
    Action("release", {"under_inspection"}, "cleared", "declaration.cleared", actors={"officer"}, agency="customs"),
    Action("exit", {"cleared"}, "exited", "truck.exited", actors={"device", "gate-operator"}),
    Action("cancel", {"draft", "submitted", "queued", "in_yard"}, "cancelled", "declaration.cancelled",
           actors={"enterprise", "operator"}),
    Action("lapse", {"draft", "submitted", "queued"}, "expired", "declaration.expired", actors={"system"}),
], states=STATES, terminal=TERMINAL, noun=("declaration", "tờ khai"), state_names_vi=STATE_VI)

ACTIONS = MACHINE.actions
SYSTEM = MACHINE.system          # the platform's own moves: the clock's sweeps of missed calls and lapses
apply = MACHINE.apply
check = MACHINE.check
allowed_actions = MACHINE.allowed_actions
