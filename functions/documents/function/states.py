"""An official document's life, as one table (:mod:`lscloud.statemachine`)::

    outgoing (văn bản đi):  draft ──sign──▶ signing ──sign (the last planned signer)──▶ signed
                                     └────────sign (no plan: one signature)──────────▶ signed
                            signed ──register (số đi + the agency's seal)──▶ issued
    incoming (văn bản đến): received ──register (số đến)──▶ registered ──assign──▶ assigned
"""

from __future__ import annotations

from lscloud.statemachine import Action, StateMachine

STATES = ("draft", "signing", "signed", "issued", "received", "registered", "assigned")
STAFF = frozenset({"officer", "supervisor"})
STATE_VI = {"draft": "dự thảo", "signing": "đang ký", "signed": "đã ký", "issued": "đã ban hành",
            "received": "đã tiếp nhận", "registered": "đã vào sổ", "assigned": "đã giao xử lý"}

MACHINE = StateMachine("documents", [
    Action("draft", {"new"}, "draft", "document.drafted", actors=STAFF),
    Action("receive", {"new"}, "received", "document.received", actors=STAFF),
    Action("sign", {"draft", "signing"}, None, "document.signed", actors=STAFF),
    Action("issue", {"signed"}, "issued", "document.issued", actors=STAFF),
    Action("register", {"received"}, "registered", "document.registered", actors=STAFF),
    Action("assign", {"registered", "assigned"}, "assigned", "document.assigned", actors=frozenset({"supervisor"})),
], states=STATES, terminal={"issued"}, noun=("document", "văn bản"), state_names_vi=STATE_VI)
