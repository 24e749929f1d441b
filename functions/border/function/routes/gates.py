"""A gate's queue at work: calls, the sweep of missed calls, capacity overrides, traffic orders and
the recipients the notification gateway texts them to, and a called driver's notice for it."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from lscloud import idempotency
from lscloud.auth import allow
from lscloud.idempotency import idempotent
from lscloud.query import Param
from lscloud.web import if_match_version, query_params, responds, takes_if_match, validate_body, versioned_json

from .. import called, capacity, queueing, scopes, traffic
from .common import DECLARATION_ID, FLOW, GATE_CODE, actor, gate, own

bp = Blueprint("gates", __name__)
ORDER_ID = 'schema("border/traffic-order.json#/properties/id"):order_id'
"""The route argument of a traffic order's client-chosen id, as its issue names it."""


def _id_of(body):
    return body.get("id") if isinstance(body, dict) else None


def _missed(outcomes) -> list[dict]:
    return [{"declaration_id": o.doc["id"], "status": o.doc["status"]} for o in outcomes]


@bp.post(f"/v1/gates/<{GATE_CODE}>/calls")
@allow("gate-operator")
@validate_body("border/calls.json")
@idempotent()
@responds("border/calls-result.json")
def call_trucks(gate_code: str):
    """Call the next trucks of the yard queue (slot, then arrival); each gets a deadline."""
    who, flow = actor(), g.body["flow"]
    scopes.at_gate(who, gate_code)
    gate(gate_code)
    expired = queueing.sweep_calls(gate_code, flow, who)
    called = queueing.call_next(gate_code, flow, g.body.get("count", 1), who, own().call_minutes)
    return jsonify({"called": [{"declaration_id": o.doc["id"], "code": o.doc["code"],
                                "plate": o.doc["vehicle"]["tractor_plate"], "deadline": o.doc["call"]["deadline"]}
                               for o in called], "missed": _missed(expired)})


@bp.post(f"/v1/gates/<{GATE_CODE}>/sweep")
@allow("gate-operator", "operator")
@idempotent(required=False)
@responds("border/calls-result.json")
def sweep_missed_calls(gate_code: str):
    """Apply missed call deadlines now (the platform clock's tick does it for every gate each minute)."""
    who = actor()
    scopes.at_gate(who, gate_code)
    # the deadlines are the platform's rule, applied as the clock's tick applies them whoever asks
    # (an operator may ask; the state machine lets no operator expire a call by hand): the audit
    # names the system as the mover and who asked in its details
    return jsonify({"called": [], "missed": _missed(queueing.sweep_gate(gate_code, asked_by=who))})


CAPACITY_VERSIONED = {"ETag": 'The override\'s version ("0": none yet): send it in If-Match to change it'}


@bp.get(f"/v1/gates/<{GATE_CODE}>/capacity/<{FLOW}>")
@allow("gate-operator", "operator")
@responds("border/capacity-result.json", headers=CAPACITY_VERSIONED)
def read_capacity(gate_code: str, flow: str):
    """The hourly capacity of one direction: the operators' override, else the directory's figure."""
    capacity.check_flow(flow)
    scopes.at_gate(actor(), gate_code)
    return versioned_json(*capacity.shown(gate_code, gate(gate_code), flow))


@bp.put(f"/v1/gates/<{GATE_CODE}>/capacity/<{FLOW}>")
@allow("gate-operator", "operator")
@takes_if_match(required="once-set")   # the first override replaces nobody's (created only if none is there)
@validate_body("border/capacity.json")
@responds("border/capacity-result.json", headers=CAPACITY_VERSIONED)
def override_capacity(gate_code: str, flow: str):
    """Override the hourly capacity of one direction (the directory's figure otherwise). Once there
    is an override, ``If-Match`` (the ETag it was read with) is required: 412 when another operator
    changed it since, 428 without it; the same override again is answered as it stands."""
    capacity.check_flow(flow)
    who = actor()
    scopes.at_gate(who, gate_code)
    directory_gate = gate(gate_code)
    version = if_match_version()
    return versioned_json(*capacity.set_override(gate_code, directory_gate, flow, g.body["per_hour"],
                                                 g.body["reason"], who.sub or "unknown", version))


@bp.post("/v1/traffic-orders")
@allow("officer")
@validate_body("border/traffic-order.json")
# the order is its own idempotency record: its create-only write issues it once
@idempotent(key_from=_id_of, in_record=True)
@responds("border/traffic-order-result.json", status=201)
def issue_traffic_order():
    """Traffic police issue a coordination order (lệnh điều tiết) to the drivers concerned; an
    officer posted at a gate (``unit``) orders only there, one without a post at any gate. The same
    request again (same officer, id and body) is answered with the order it issued."""
    who = actor()
    scopes.traffic_police(who)
    scopes.at_gate(who, g.body["gate"])
    gate(g.body["gate"])
    # refused (the order there already, a recipient's language since): a resend still gets the first
    # answer (its announcement finished if a cut run left it out), another body the 409 naming its fields
    order, replayed = idempotency.created_or_resent(
        lambda: traffic.issue(g.body, who, request=idempotency.first_request()),
        lambda judge: traffic.resend(g.body, who, judge))
    resp = jsonify(traffic.answer(order))
    resp.status_code = 201
    return idempotency.mark_replayed(resp) if replayed else resp


@bp.get(f"/v1/traffic-orders/<{GATE_CODE}>/<{ORDER_ID}>/recipients")
@allow("notifier", "operator")
@responds("border/traffic-order-recipients.json",
          headers={"Cache-Control": "no-store (drivers' phones: no cache keeps them)"})
def traffic_order_recipients(gate_code: str, order_id: str):
    """The drivers an order goes to, with their phones as their declarations hold them now (null once
    minimised), for the SMS/Zalo gateway that texts them; the order's event carries no phone."""
    resp = jsonify(traffic.recipients(gate_code, order_id))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get(f"/v1/calls/<{GATE_CODE}>/<{DECLARATION_ID}>/recipient")
@allow("notifier")
@responds("border/call-recipient.json",
          headers={"Cache-Control": "no-store (a driver's phone: no cache keeps it)"})
@query_params(Param("deadline", "The call's deadline as its truck.called event gives it (details.deadline): "
                    "another call of the truck since is a 410.", {"type": "string", "format": "date-time"}))
def call_recipient(gate_code: str, declaration_id: str):
    """The called driver's phone, language and notice (vi / zh / en: go to the gate before its
    deadline), for the SMS/Zalo gateway, only while the call stands (404 no such call, 410 over or
    superseded); the ``truck.called`` event carries no phone."""
    resp = jsonify(called.recipient(gate_code, declaration_id, lambda: gate(gate_code), g.query["deadline"]))
    resp.headers["Cache-Control"] = "no-store"
    return resp
