"""Traffic coordination orders (lệnh điều tiết): traffic police tell the drivers concerned — named
declarations, or every truck waiting in a gate's yard queue — and notifiers take the event."""

from __future__ import annotations

from lscloud import errors, outbox
from lscloud.statemachine import Actor, iso, now
from lscloud.store import ConditionalCheckFailed

from . import ledger, lifecycle, queueing
from .models import TrafficOrder


class OrderExists(errors.Conflict):
    title, title_vi = "Order exists", "Lệnh đã tồn tại"


def answer(order: dict) -> dict:
    """The order as its officer is answered: the recipients without their phone numbers, which only
    the notifiers that text the drivers need (the stored order and its event keep them)."""
    return {**order, "recipients": [{k: v for k, v in r.items() if k != "driver_phone"} for r in order["recipients"]]}


def issue(body: dict, actor: Actor) -> dict:
    """Store the order with its recipients (create-only: the id is the client's) and publish it."""
    ids = body.get("declaration_ids") or queueing.waiting_declarations(
        body["gate"], [body["flow"]] if body.get("flow") else queueing.FLOWS)
    recipients = [{"declaration_id": doc["id"], "code": doc["code"], "plate": doc["vehicle"]["tractor_plate"],
                   "driver_phone": doc["driver"]["phone"],
                   "language": "vi" if doc["driver"]["nationality"] == "VN" else "zh"}
                  for doc in ledger.docs(ids)
                  if doc["gate"] == body["gate"] and doc["status"] not in lifecycle.TERMINAL]
    order = {**body, "by": actor.sub, "issued_at": iso(now()), "recipients": recipients}
    try:
        TrafficOrder(body["gate"], body["id"], data=order).save()
    except ConditionalCheckFailed:
        raise OrderExists(f"Traffic order {body['id']!r} already exists.",
                          detail_vi="Lệnh điều tiết này đã tồn tại.") from None
    outbox.publish([ledger.RECORDS.fact("traffic-order.issued", order, subject=body["id"],
                                           id=f"traffic-order.{body['id']}")])
    return order
