"""The crossing's state machine: which action moves a declaration from which states to which,
who may do it, the event fact it publishes and the audit entry it leaves.

    draft → submitted → queued (slot) → in_yard → called (deadline) → at_gate → under_inspection
          → cleared | held | refused → exited;   cancelled;   a missed call → in_yard once, then expired

Plain Python over the declaration dict; the HTTP layer maps a token to an :class:`Actor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

STATES = ("draft", "submitted", "queued", "in_yard", "called", "at_gate", "under_inspection", "held",
          "cleared", "refused", "exited", "cancelled", "expired")
TERMINAL = frozenset({"refused", "exited", "cancelled", "expired"})
ACTIVE_AT_GATE = frozenset({"at_gate", "under_inspection", "held", "cleared"})

# Vietnamese names of the states, for problems and the driver's lookup (i18n has zh/en)
STATE_VI = {"draft": "bản nháp", "submitted": "đã nộp", "queued": "đã xếp lượt", "in_yard": "đang ở bãi chờ",
            "called": "đã được gọi vào cửa khẩu", "at_gate": "đã đến cửa khẩu", "under_inspection": "đang kiểm tra",
            "held": "đang bị tạm giữ", "cleared": "đã được thông quan", "refused": "bị từ chối", "exited": "đã xuất cảnh/nhập cảnh",
            "cancelled": "đã hủy", "expired": "đã hết hiệu lực"}


@dataclass(frozen=True)
class Actor:
    """Who acts: ``kind`` is the role as the state machine sees it."""

    kind: str                 # enterprise | driver | yard-operator | gate-operator | officer | device | operator | system
    sub: str | None = None
    agency: str | None = None
    unit: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in (("kind", self.kind), ("sub", self.sub), ("agency", self.agency),
                                  ("unit", self.unit)) if v is not None}


SYSTEM = Actor("system", "border")


@dataclass(frozen=True)
class Action:
    name: str
    sources: frozenset[str]
    target: str
    actors: frozenset[str]
    fact: str                         # the event is vn.langson.border.<fact>.v1
    agency: str | None = None         # only this agency (customs' release)


def _a(name, sources, target, actors, fact, agency=None) -> Action:
    return Action(name, frozenset(sources), target, frozenset(actors), fact, agency)


ACTIONS: dict[str, Action] = {a.name: a for a in (
    _a("submit", {"draft"}, "submitted", {"enterprise"}, "declaration.submitted"),
    _a("book", {"submitted"}, "queued", {"enterprise", "operator"}, "declaration.queued"),
    _a("arrive", {"queued"}, "in_yard", {"yard-operator", "device"}, "truck.arrived"),
    _a("call", {"in_yard"}, "called", {"gate-operator"}, "truck.called"),
    _a("miss_call", {"called"}, "in_yard", {"gate-operator", "system"}, "call.missed"),
    _a("expire", {"called"}, "expired", {"gate-operator", "system"}, "declaration.expired"),
    _a("reach_gate", {"called"}, "at_gate", {"gate-operator", "device"}, "truck.reached-gate"),
    _a("start_inspection", {"at_gate"}, "under_inspection", {"officer"}, "inspection.started"),
    _a("hold", {"at_gate", "under_inspection", "cleared"}, "held", {"officer", "device"}, "declaration.held"),
    _a("resume", {"held"}, "under_inspection", {"officer", "device"}, "inspection.resumed"),
    _a("refuse", {"submitted", "queued", "in_yard", "called", "at_gate", "under_inspection", "held"}, "refused",
       {"officer"}, "declaration.refused"),
    _a("release", {"under_inspection"}, "cleared", {"officer"}, "declaration.cleared", agency="customs"),
    _a("exit", {"cleared"}, "exited", {"device", "gate-operator"}, "truck.exited"),
    _a("cancel", {"draft", "submitted", "queued", "in_yard"}, "cancelled", {"enterprise", "operator"},
       "declaration.cancelled"),
)}


class IllegalTransition(Exception):
    """The action is not allowed from the declaration's current state (HTTP 409)."""

    def __init__(self, action: str, state: str):
        super().__init__(f"cannot {action.replace('_', ' ')} a declaration that is {state}")
        self.action, self.state = action, state
        self.allowed_from = sorted(ACTIONS[action].sources) if action in ACTIONS else []


class NotPermitted(Exception):
    """This actor may not take this action (HTTP 403)."""

    def __init__(self, action: str, actor: Actor):
        agency = f" of {actor.agency}" if actor.agency else ""
        super().__init__(f"a {actor.kind}{agency} may not {action.replace('_', ' ')} a declaration")
        self.action, self.actor = action, actor


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Transition:
    """What one applied action did: for the audit trail and the event."""

    action: str
    source: str
    target: str
    fact: str
    actor: Actor
    at: str
    reason: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        return f"vn.langson.border.{self.fact}.v1"

    def audit(self) -> dict:
        return {"action": self.action, "from": self.source, "to": self.target, "at": self.at,
                "actor": self.actor.as_dict(), "reason": self.reason, "details": self.details}


def check(doc: dict, action: str, actor: Actor) -> Action:
    """The action if ``actor`` may take it now; else NotPermitted / IllegalTransition."""
    a = ACTIONS[action]
    if actor.kind not in a.actors and actor.kind != "system":
        raise NotPermitted(action, actor)
    if a.agency and actor.kind == "officer" and actor.agency != a.agency:
        raise NotPermitted(action, actor)
    if doc["status"] not in a.sources:
        raise IllegalTransition(action, doc["status"])
    return a


def apply(doc: dict, action: str, actor: Actor, *, at: datetime | None = None, reason: str | None = None,
          details: dict | None = None) -> Transition:
    """Move ``doc`` (mutated in place) by ``action``; returns the transition for audit and event."""
    a = check(doc, action, actor)
    when = iso(at or now_utc())
    t = Transition(action, doc["status"], a.target, a.fact, actor, when, reason, dict(details or {}))
    doc["status"] = a.target
    doc.setdefault("timestamps", {}).setdefault(a.target, when)
    doc["updated_at"] = when
    return t


def allowed_actions(state: str) -> list[str]:
    return sorted(name for name, a in ACTIONS.items() if state in a.sources)
