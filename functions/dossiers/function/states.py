"""The dossier's states and what moves it between them (OpenCPS's statuses), as one table on the
runtime's state machine (:mod:`lscloud.statemachine`)::

    received ──start──▶ processing ──complete_step──▶ processing (next step; liên thông when the
        │                  │  │                        agency changes) ──finish──▶ done (result)
        │                  │  └──deny──▶ denied (reason)
        │                  └──request_supplement──▶ waiting ──provide_supplement──▶ processing
        ├──request_supplement──▶ waiting ──provide_supplement──▶ received
        ├──deny──▶ denied
        └──cancel (the owner, before processing)──▶ cancelled

Which officer may move a step (its agency and unit) is checked by :mod:`.workflow`; the table
holds which kinds of caller may take each action at all.
"""

from __future__ import annotations

from lscloud.statemachine import Action, NotPermitted, StateMachine

STATES = ("received", "processing", "waiting", "done", "denied", "cancelled")
TERMINAL = frozenset({"done", "denied", "cancelled"})
OPEN = frozenset({"received", "processing", "waiting"})
STATE_VI = {"received": "đã tiếp nhận", "processing": "đang xử lý", "waiting": "đang chờ bổ sung",
            "done": "đã có kết quả", "denied": "bị từ chối", "cancelled": "đã hủy"}
# the states as an English-reading applicant is told them (the Vietnamese ones are the state machine's)
STATE_EN = {"received": "received", "processing": "being processed", "waiting": "waiting for documents",
            "done": "result ready", "denied": "refused", "cancelled": "cancelled"}
APPLICANTS = frozenset({"citizen", "enterprise"})
OFFICER = frozenset({"officer"})

MACHINE = StateMachine("dossiers", [
    Action("receive", {"new"}, "received", "dossier.received", actors=APPLICANTS | OFFICER),
    Action("start", {"received"}, "processing", "processing.started", actors=OFFICER),
    Action("complete_step", {"processing"}, "processing", "step.completed", actors=OFFICER),
    Action("request_supplement", {"received", "processing"}, "waiting", "supplement.requested", actors=OFFICER),
    # back to where the dossier was when the supplement was asked for
    Action("provide_supplement", {"waiting"}, None, "supplement.provided", actors=APPLICANTS | OFFICER),
    Action("finish", {"processing"}, "done", "dossier.done", actors=OFFICER),
    Action("deny", {"received", "processing"}, "denied", "dossier.denied", actors=OFFICER),
    Action("cancel", {"received"}, "cancelled", "dossier.cancelled", actors=APPLICANTS),
], states=STATES, terminal=TERMINAL, noun=("dossier", "hồ sơ"), state_names_vi=STATE_VI)


class NotYourStep(NotPermitted):
    """The step (or the dossier) is not this caller's to move (403)."""

    type = "not-your-step"

    def __init__(self, detail: str):
        super().__init__(detail, detail_vi="Bước xử lý này không được giao cho cơ quan/đơn vị của bạn.")


def allowed_actions(state: str) -> list[str]:
    """What may happen next to a dossier in ``state``."""
    return MACHINE.allowed_actions(state)
