"""A report's states, FixMyStreet's richer set, and what Open311 and FixMyStreet clients see of them.

    (new) ─submit─▶ submitted ─acknowledge─▶ acknowledged ─investigate─▶ investigating
                       │  ▲ transfer (another agency, with a reason) ─▶ assigned ─acknowledge─▶ …
                       ▼  … schedule ─▶ action_scheduled ─start─▶ in_progress ─fix─▶ fixed ─close─▶ closed
    any open state ─mark_duplicate─▶ duplicate · ─not_responsible─▶ not_responsible
                   ─unable_to_fix─▶ unable_to_fix · ─hide─▶ hidden (moderation: abusive, with a reason)
    fixed | closed | unable_to_fix ─reopen─▶ reopened (the reporter disagrees, or the agency)

Every move publishes ``vn.langson.reports.report.<fact>.v1`` (the contract in
``schemas/events/reports/report.v1.json``); ``overdue`` and ``rated`` are facts inside a state.
"""

from __future__ import annotations

from lscloud.statemachine import Action, StateMachine

OPEN = ("submitted", "assigned", "acknowledged", "investigating", "action_scheduled", "in_progress", "reopened")
CLOSED = ("fixed", "closed", "duplicate", "not_responsible", "unable_to_fix", "hidden")
STATES = OPEN + CLOSED
HANDLERS = ("officer", "commune-officer")
_WORKING = ("acknowledged", "investigating", "action_scheduled", "in_progress", "reopened")

STATE_VI = {
    "submitted": "đã gửi", "assigned": "đã chuyển xử lý", "acknowledged": "đã tiếp nhận",
    "investigating": "đang xác minh", "action_scheduled": "đã lên kế hoạch xử lý", "in_progress": "đang xử lý",
    "reopened": "mở lại", "fixed": "đã xử lý xong", "closed": "đã đóng", "duplicate": "trùng phản ánh khác",
    "not_responsible": "không thuộc thẩm quyền", "unable_to_fix": "không thể xử lý", "hidden": "đã ẩn (vi phạm)",
}

MACHINE = StateMachine("reports", [
    Action("submit", {"new"}, "submitted", "report.submitted", actors={"citizen", "anonymous", "partner"}),
    Action("acknowledge", {"submitted", "assigned", "reopened"}, "acknowledged", "report.acknowledged",
           actors=HANDLERS),
    Action("transfer", {"submitted", "assigned", "acknowledged", "investigating", "reopened"}, "assigned",
           "report.assigned", actors=HANDLERS + ("operator",)),
    Action("investigate", {"acknowledged", "reopened"}, "investigating", "report.started", actors=HANDLERS),
    Action("schedule", {"acknowledged", "investigating", "reopened"}, "action_scheduled", "report.started",
           actors=HANDLERS),
    Action("start", _WORKING[:-1] + ("reopened",), "in_progress", "report.started", actors=HANDLERS),
    Action("fix", _WORKING, "fixed", "report.resolved", actors=HANDLERS),
    Action("close", {"fixed"}, "closed", "report.closed", actors=HANDLERS + ("citizen",)),
    Action("unable_to_fix", _WORKING, "unable_to_fix", "report.closed", actors=HANDLERS),
    Action("mark_duplicate", OPEN, "duplicate", "report.rejected", actors=HANDLERS),
    Action("not_responsible", OPEN, "not_responsible", "report.rejected", actors=HANDLERS),
    Action("hide", tuple(s for s in STATES if s != "hidden"), "hidden", "report.rejected", actors={"operator"}),
    Action("reopen", {"fixed", "closed", "unable_to_fix"}, "reopened", "report.reopened",
           actors=HANDLERS + ("citizen",)),
], states=STATES, terminal=(), noun=("report", "phản ánh"), state_names_vi=STATE_VI)

AGENCY_ACTIONS = ("acknowledge", "transfer", "investigate", "schedule", "start", "fix", "close", "unable_to_fix",
                  "mark_duplicate", "not_responsible", "reopen")
NEEDS_REASON = ("transfer", "not_responsible", "unable_to_fix", "hide", "reopen")

# FixMyStreet's Open311 update statuses (its servicerequestupdates extension)
FMS_STATUS = {
    "submitted": "OPEN", "assigned": "INTERNAL_REFERRAL", "acknowledged": "OPEN", "investigating": "INVESTIGATING",
    "action_scheduled": "ACTION_SCHEDULED", "in_progress": "IN_PROGRESS", "reopened": "REOPEN", "fixed": "FIXED",
    "closed": "CLOSED", "duplicate": "DUPLICATE", "not_responsible": "NOT_COUNCILS_RESPONSIBILITY",
    "unable_to_fix": "NO_FURTHER_ACTION", "hidden": "CLOSED",
}
# an agency's system posting an update with a FixMyStreet status: the action it means
FMS_ACTION = {"INVESTIGATING": "investigate", "ACTION_SCHEDULED": "schedule", "IN_PROGRESS": "start",
              "FIXED": "fix", "CLOSED": "close", "DUPLICATE": "mark_duplicate",
              "NOT_COUNCILS_RESPONSIBILITY": "not_responsible", "NO_FURTHER_ACTION": "unable_to_fix",
              "REOPEN": "reopen"}


def open311_status(state: str) -> str:
    """Open311's ``status``: ``open`` while someone still has to act, ``closed`` after."""
    return "closed" if state in CLOSED else "open"
