"""Who sees which declaration and acts where, beyond the route's roles (``@allow``): ownership
(enterprises, drivers), the gate in a token's ``unit`` (yard and gate operators, devices, officers
posted at one gate) and the ``agency`` claim (an officer decides only their own agency's step).

Plain Python over an :class:`~lscloud.statemachine.Actor`; each refusal is a 403 of its own type,
never the door's ``forbidden``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lscloud import errors, rolematrix
from lscloud.identifiers import InvalidIdentifier, normalise_tax_code
from lscloud.statemachine import Actor, IllegalTransition, NotPermitted, now, parse_iso

from . import clearance, lifecycle, queue

GATE_BOUND = frozenset({"yard-operator", "gate-operator", "device"})
READERS = ("enterprise", "driver", "officer", "yard-operator", "gate-operator", "operator")


class WrongGate(errors.Forbidden):
    type = "wrong-gate"
    title, title_vi = "Not your gate", "Không phải cửa khẩu của bạn"


class NotYourStep(errors.Forbidden):
    type = "not-your-step"
    title, title_vi = "Not your agency's step", "Không phải bước của cơ quan bạn"


class CustomsOnly(errors.Forbidden):
    type = "customs-only"
    title, title_vi = "Customs only", "Chỉ hải quan"


class NoAgency(errors.Forbidden):
    type = "no-agency"
    title, title_vi = "No border agency", "Không có cơ quan"


class NotATaxCode(errors.Forbidden):
    type = "subject-not-a-tax-code"
    title, title_vi = "Token subject is not a tax code", "Chủ thể của mã xác thực không phải mã số thuế"


class TrafficPoliceOnly(errors.Forbidden):
    type = "traffic-police-only"
    title, title_vi = "Traffic police only", "Chỉ cảnh sát giao thông"


def at_gate(actor: Actor, gate_code: str) -> None:
    """Yard and gate operators and devices act only at the gate in their token's ``unit``; an
    officer posted at a gate (``unit`` set) only there."""
    bound = actor.kind in GATE_BOUND or actor.kind == "officer" and actor.unit
    if bound and actor.unit != gate_code:
        raise WrongGate(f"Your token is for gate {actor.unit!r}, not {gate_code!r}.",
                        detail_vi="Mã xác thực không dành cho cửa khẩu này.")


def can_see(actor: Actor, doc: dict) -> bool:
    """Whether ``actor`` may see the declaration ``doc`` (a declaration they may not see is a 404)."""
    if actor.kind == "enterprise":
        return doc["owner"] == actor.sub
    if actor.kind == "driver":
        return doc["driver"]["id_number"] == (actor.sub or "").upper()
    if actor.kind in ("yard-operator", "gate-operator"):
        return doc["gate"] == actor.unit
    if actor.kind == "officer":
        # a border agency's officer (at their gate, when posted at one); an officer of any other
        # agency (a commune's, a department's) holds the same role and saw every declaration
        return actor.agency in clearance.AGENCIES and (not actor.unit or doc["gate"] == actor.unit)
    return actor.kind in ("operator", "auditor")


def owner_key(actor: Actor) -> str:
    """The owner index an enterprise's or a driver's "my declarations" lists."""
    return f"ent:{actor.sub}" if actor.kind == "enterprise" else f"drv:{(actor.sub or '').upper()}"


def own_tax_code(actor: Actor) -> str | None:
    """An enterprise's tax code, canonical: its token's subject, under which it declares and owns
    declarations (None for any other role). A 403 when the subject is not a tax code: the owner rule
    would hold nothing, and such a token declared under any tax code (the market and dossiers refuse
    it too). The detail names the subject's kind, never its value."""
    if actor.kind != "enterprise":
        return None
    try:
        return normalise_tax_code(actor.sub or "")
    except InvalidIdentifier:
        raise NotATaxCode("An enterprise token's subject must be its tax code; this token's is not one, so it cannot "
                          "declare, read or act on declarations.",
                          detail_vi="Chủ thể của mã xác thực doanh nghiệp phải là mã số thuế của doanh nghiệp; mã này "
                                    "không phải, nên không thể khai báo, xem hay thao tác trên tờ khai.") from None


def agency_step(actor: Actor, doc: dict) -> str:
    """The officer's agency, if the declaration needs its decision."""
    required = [r["agency"] for r in doc.get("required_agencies", [])]
    if actor.agency not in required:
        raise NotYourStep(f"Agency {actor.agency!r} has no step on this declaration (required: {', '.join(required)}).",
                          detail_vi="Cơ quan của bạn không tham gia kiểm tra tờ khai này.")
    return actor.agency


def customs_only(actor: Actor, what: str) -> None:
    if actor.agency != "customs":
        raise CustomsOnly(f"Only customs may {what}.", detail_vi="Chỉ cơ quan hải quan được thực hiện thao tác này.")


def border_agency(actor: Actor) -> str:
    """The officer's border clearance agency (their work list is that agency's)."""
    if actor.agency not in clearance.AGENCIES:
        raise NoAgency("Your token names no border clearance agency.",
                       detail_vi="Mã xác thực không gắn với cơ quan kiểm soát cửa khẩu.")
    return actor.agency


def traffic_police(actor: Actor) -> None:
    if actor.agency != "traffic-police":
        raise TrafficPoliceOnly("Only traffic police issue these orders.",
                                detail_vi="Chỉ cảnh sát giao thông được ra lệnh điều tiết.")


DECISIONS = ("POST", "/v1/declarations/{id}/decisions")
ACTION_ROUTES = {
    "submit": ("POST", "/v1/declarations/{id}/submit"),
    "book": ("POST", "/v1/declarations/{id}/booking"),
    "cancel": ("POST", "/v1/declarations/{id}/cancel"),
    "arrive": ("POST", "/v1/declarations/{id}/arrival"),
    "call": ("POST", "/v1/gates/{gate}/calls"),
    "miss_call": ("POST", "/v1/gates/{gate}/sweep"),
    "expire": ("POST", "/v1/gates/{gate}/sweep"),
    "reach_gate": ("POST", "/v1/declarations/{id}/at-gate"),
    "start_inspection": DECISIONS, "hold": DECISIONS, "resume": DECISIONS, "refuse": DECISIONS,
    "release": ("POST", "/v1/declarations/{id}/release"),
    "exit": ("POST", "/v1/device-events"),
}
"""The endpoint through which each of the machine's actions is taken. An action not here (``create``,
from no declaration; ``lapse``, the platform's clock) is offered to no caller."""
SWEPT = frozenset({"miss_call", "expire"})
"""The actions the sweep takes (``POST /v1/gates/{gate}/sweep``): as the platform's, for whoever asks."""


@functools.cache
def _access() -> rolematrix.Matrix:
    # the table the role-matrix tests hold every route's door to: offered and admitted read one rule
    return rolematrix.load(Path(__file__).resolve().parents[1])


def _swept(doc: dict) -> str | None:
    """The one missed-call action the sweep would apply to ``doc`` now (None before the deadline)."""
    call = doc.get("call") or {}
    if not call.get("deadline") or parse_iso(call["deadline"]) > now():
        return None
    return queue.after_missed_call(call.get("misses", 0))


def may_take(actor: Actor, doc: dict, action: str) -> bool:
    """Whether ``actor`` gets past every check the route taking ``action`` makes on ``doc``: its door
    (access.yaml), the machine's actors and agency, the gate in a gate-bound token, an officer's own
    agency's step; the missed-call moves only when the sweep would make them, and then to anyone its
    route admits (it applies them as the platform's, :data:`.lifecycle.SYSTEM`, whoever asks)."""
    route = ACTION_ROUTES.get(action)
    row = _access().row(*route) if route else None
    if row is None or not row.admits(actor.kind):
        return False
    try:
        lifecycle.check(doc, action, lifecycle.SYSTEM if action in SWEPT else actor)
        at_gate(actor, doc["gate"])
        if route == DECISIONS:
            agency_step(actor, doc)
    except (NotPermitted, IllegalTransition, WrongGate, NotYourStep):
        return False
    return action not in SWEPT or _swept(doc) == action


def offered(actor: Actor, doc: dict) -> list[str]:
    """The actions ``actor`` may take on ``doc`` now (the declaration's ``allowed_actions``): what
    the machine allows from its state, narrowed to what this caller's routes would accept."""
    return [a for a in lifecycle.allowed_actions(doc["status"]) if may_take(actor, doc, a)]
