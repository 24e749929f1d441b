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
# an agency's system posting an update with a FixMyStreet status (the statuses of its Open311
# extension; REOPEN is ours): the action that ends the moves it means
FMS_ACTION = {"OPEN": "acknowledge", "INVESTIGATING": "investigate", "ACTION_SCHEDULED": "schedule",
              "IN_PROGRESS": "start", "FIXED": "fix", "CLOSED": "close", "DUPLICATE": "mark_duplicate",
              "NOT_COUNCILS_RESPONSIBILITY": "not_responsible", "NO_FURTHER_ACTION": "unable_to_fix",
              "INTERNAL_REFERRAL": "transfer", "REOPEN": "reopen"}
# the moves an update may make on the way to that action: an agency's, needing no reason and no data
_STEPS = ("acknowledge", "investigate", "schedule", "start", "fix", "close")


def fms_path(state: str, status: str) -> list[str] | None:
    """The shortest list of actions an agency takes from ``state`` to do what ``status`` says (its
    action last, the others :data:`_STEPS`, closing the report only when the status closes it):
    CLOSED on an in-progress report fixes then closes it. ``[]`` when the report is already where
    the status puts it — for Open311's own OPEN and CLOSED, any state open (closed) that the action
    does not start from; None when no path leads there."""
    final = MACHINE[FMS_ACTION[status]]
    if state == final.target and final.name != "transfer":   # a referral is always a new transfer
        return []
    if status in ("OPEN", "CLOSED") and open311_status(state) == status.lower() and state not in final.sources:
        return []
    level, seen = [(state, [])], {state}
    while level:
        if any(s in final.sources for s, _ in level):
            return next(path for s, path in level if s in final.sources) + [final.name]
        level = [(MACHINE[a].target, path + [a]) for s, path in level for a in _STEPS
                 if s in MACHINE[a].sources and MACHINE[a].target not in seen
                 and (MACHINE[a].target not in CLOSED or final.target in CLOSED)]
        seen.update(s for s, _ in level)
    return None


def open311_status(state: str) -> str:
    """Open311's ``status``: ``open`` while someone still has to act, ``closed`` after."""
    return "closed" if state in CLOSED else "open"
