"""Gate devices' events: accepted from a device at ``POST /v1/device-events`` (checked, then
published to NATS), and delivered back by the trigger (Knative Eventing / the local dispatcher) to
``/events``: weighbridge readings and ANPR plate reads. A reading is recorded once (its id is a
create-only key), whatever the number of deliveries or envelopes; a run that failed is run again by
its redelivery, and each effect holds when applied twice (a weighbridge reading older than the one
applied is left out, whatever order deliveries come in).

- ``weight.measured``: compared with the declared gross weight; a mismatch holds the truck and
  raises ``weight.mismatched``.
- ``plate.read`` at the ``yard`` camera registers the arrival of a queued truck; at the ``gate``
  camera, a called truck's arrival at the gate; at the ``barrier``, the safety rule decides:
  ``barrier.opened`` (carrying the declaration) and the exit, or ``barrier.refused`` with why.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Callable, Mapping

from lscloud import errors, outbox, resends, runtime
from lscloud import events as ce
from lscloud.aggregate import NoChange
from lscloud.statemachine import Actor, IllegalTransition, NotPermitted, iso, now
from lscloud.store import ConditionalCheckFailed
from lscloud.timestamps import parse_instant

from . import barrier, crossing, devices, indexes, ledger, lifecycle, metrics, queueing, scopes, settings
from .identifiers import plate_key
from .models import READING_KEPT_S, DeviceReading, DeviceSent, PlateIndex

log = logging.getLogger("border.devices")

WEIGHT_MEASURED = "vn.langson.border.weight.measured.v1"
PLATE_READ = "vn.langson.border.plate.read.v1"
SCHEMAS = {WEIGHT_MEASURED: "events/border/weight.measured.json", PLATE_READ: "events/border/plate.read.json"}


# -- from a device ----------------------------------------------------------------------------------

class MalformedEvent(errors.DomainError):
    status, type = 400, "malformed-event"
    title, title_vi = "Malformed CloudEvent", "Sự kiện không hợp lệ"


class UnsupportedEventType(errors.Invalid):
    type = "unsupported-event-type"
    title, title_vi = "Unsupported event type", "Loại sự kiện không được hỗ trợ"


class NotTheDevicesGate(scopes.WrongGate):
    title_vi = "Không phải cửa khẩu của thiết bị"


def accept(headers: Mapping[str, str], body: bytes, device: Actor,
           problems_of: Callable[[str, Any], list[dict]]) -> dict:
    """A device's CloudEvent (binary or structured), checked against its schema (``problems_of(schema,
    data)`` lists what is wrong) and the device's gate, then published with the device named."""
    try:
        event = ce.from_http(dict(headers), body)
    except ValueError as exc:
        raise MalformedEvent(str(exc)[:300], detail_vi="Sự kiện CloudEvent không đúng định dạng.") from None
    schema = SCHEMAS.get(event["type"])
    if schema is None:
        raise UnsupportedEventType(f"Devices send {', '.join(SCHEMAS)}; got {event['type']!r}.",
                                   detail_vi="Thiết bị gửi loại sự kiện không được hỗ trợ.")
    data = event.get("data")
    wrong = problems_of(schema, data)
    if wrong:
        raise errors.Invalid(f"The event data does not match {schema}.", detail_vi="Dữ liệu sự kiện không hợp lệ.",
                             errors=[{**e, "field": "/data" + e["field"]} for e in wrong])
    if data["gate"] != device.unit:
        raise NotTheDevicesGate(f"This device belongs to gate {device.unit!r}.",
                                detail_vi="Thiết bị không thuộc cửa khẩu này.")
    out = ce.new_event(event["type"], f"/border/devices/{indexes.safe(device.sub)}", {**data, "device": device.sub},
                       id=f"{device.sub}.{data['reading_id']}", subject=data["reading_id"])
    _first_sent(device, event["type"], data)
    outbox.publish([out])
    return out


def _first_sent(device: Actor, type_: str, data: dict) -> None:
    """Keep what the device sends under a reading id (keyed digests per field, create-only), or judge
    it against what it sent first: the same reading sent again passes (published again under its
    id: a run cut before the publish is finished, a repeat is dropped downstream); other data under
    the id (a weighbridge whose counter restarted) is the 409 naming the fields (``/data/gross_kg``),
    never their values. Without it the second reading was answered
    202 and then dropped as a duplicate of the first."""
    sent, salt = {"type": type_, "data": data}, f"border-device-sent\n{device.sub}\n{data['reading_id']}"
    try:
        DeviceSent(device.sub, data["reading_id"], fields=resends.digests(sent, salt),
                   expires_at=now() + timedelta(seconds=READING_KEPT_S)).save()
        return
    except ConditionalCheckFailed:
        first = DeviceSent.get(device.sub, data["reading_id"]).fields
    differ = resends.changed(first, sent, salt)
    if differ:
        raise resends.IdReused(differ)


# -- delivered back ---------------------------------------------------------------------------------

def tolerance() -> float:
    return settings.of(runtime.current().settings).weight_tolerance


def _claimed(event: dict, **facts: Any) -> dict | None:
    """The reading's record when this run applies it, else None. The first event that brings a
    reading makes its record (device, reading id; with ``facts``), so the same reading under another
    envelope is a duplicate. A later run of that same event applies it again: the runtime's
    events-seen lease lets a redelivery through only when an earlier run did not finish, and one
    that failed after making the record (a store read, the declaration's write) would otherwise have
    been answered 200 with nothing done. Each effect below holds when applied twice."""
    d = event["data"]
    record = {**d, "event_id": event["id"], **facts}
    try:
        DeviceReading(d["device"], d["reading_id"], data=record,
                      expires_at=now() + timedelta(seconds=READING_KEPT_S)).save()
        return record
    except ConditionalCheckFailed:
        held = DeviceReading.get(d["device"], d["reading_id"]).data
        return held if held.get("event_id") == event["id"] else None


def candidates(plate: str, gate: str) -> list[dict]:
    """Live declarations of this plate at this gate, most advanced first. A plate read as only
    separators ("?", "·") names no truck: none (its empty key raised InvalidKey, a 404 that
    dead-lettered the reading and left the barrier without a decision)."""
    if not plate_key(plate):
        return []
    docs = [doc for doc in ledger.docs([p.declaration_id for p in PlateIndex.query(plate_key(plate), limit=50)])
            if doc["gate"] == gate and doc["status"] not in lifecycle.TERMINAL]
    order = {s: i for i, s in enumerate(lifecycle.STATES)}
    return sorted(docs, key=lambda d: -order[d["status"]])


WEIGHABLE = ("called", "at_gate", "under_inspection", "held", "cleared")
"""The states a weighbridge reading applies in: from the call to the gate until the exit."""


def on_weight(event: dict) -> None:
    if _claimed(event) is None:
        return
    d = event["data"]
    actor = Actor("device", d["device"], unit=d["gate"])
    docs = [x for x in candidates(d["plate"], d["gate"]) if x["status"] in WEIGHABLE]
    if not docs:
        log.info("weighbridge reading %s at %s: no declaration at the gate for its plate", d["reading_id"], d["gate"])
        metrics.weighed(d["gate"], None, "no-declaration")
        return
    at = now()
    allowed = tolerance()

    measured = parse_instant(d.get("measured_at"))

    def op(doc):
        if doc["status"] not in WEIGHABLE:
            # it left the gate (exited, refused) since the candidates were read: the reading is not its
            raise NoChange()
        last = doc.get("weight") or {}
        applied = parse_instant(last.get("measured_at"))
        if last.get("reading_id") == d["reading_id"] or (measured and applied and applied > measured):
            # applied already (an earlier run's write landed), or a later measurement is in: the
            # weighbridge's latest reading decides the hold, whatever order deliveries come in
            raise NoChange()
        check = devices.check_weight(doc, d["gross_kg"], allowed)
        return crossing.weigh(doc, check, d["reading_id"], actor, at,
                              measured_at=iso(measured) if measured else None), check

    def after(doc, check):
        if check.ok:
            return []
        return [ledger.fact("weight.mismatched", doc, {**check.as_dict(), "reading_id": d["reading_id"],
                                                          "device": d["device"]},
                               id=f"{doc['id']}.weight.{d['reading_id']}")]

    out = ledger.RECORDS.mutate(docs[0]["id"], op, events_after=after)
    if out.result is None:
        log.info("weighbridge reading %s: applied already, or older than the one applied", d["reading_id"])
        return
    metrics.weighed(out.doc["gate"], out.doc["flow"], "ok" if out.result.ok else "mismatch")


def on_plate(event: dict) -> None:
    d = event["data"]
    camera = d["camera"]
    docs = candidates(d["plate"], d["gate"])
    # a barrier read names in its record the declaration it decides on: a later run of it, after the
    # exit committed, no longer finds that declaration among the live ones
    target = docs[0]["id"] if camera == "barrier" and docs else None
    record = _claimed(event, declaration_id=target)
    if record is None:
        return
    actor = Actor("device", d["device"], unit=d["gate"])
    try:
        if camera == "yard":
            queued = [x for x in docs if x["status"] == "queued"]
            if queued:
                queueing.arrive(queued[0]["id"], actor, d["gate"])
        elif camera == "gate":
            called = [x for x in docs if x["status"] == "called"]
            if called:
                queueing.reach_gate(called[0]["id"], actor, d["gate"])
        elif camera == "barrier":
            open_barrier(target or record.get("declaration_id"), d, actor)
    except (IllegalTransition, NotPermitted) as exc:
        log.info("plate read %s ignored: %s", d["reading_id"], exc)


def open_barrier(declaration_id: str | None, d: dict, actor: Actor) -> barrier.BarrierDecision:
    """Decide on the fresh document inside the conditional write: the barrier opens only if the
    exit of a cleared truck commits."""
    read = {"gate": d["gate"], "flow": d["flow"], "plate_read": d["plate"], "confidence": d.get("confidence", 1.0)}
    base = {"gate": d["gate"], "flow": d["flow"], "plate": d["plate"], "reading_id": d["reading_id"],
            "device": d["device"]}
    event_id = f"barrier.{d['device']}.{d['reading_id']}"
    if declaration_id is None:
        decision = barrier.decide(None, **read)
        metrics.barrier_decided(d["gate"], d["flow"], False, decision.reasons)
        outbox.publish([ledger.RECORDS.fact("barrier.refused", {**base, **decision.as_dict()}, id=event_id)])
        return decision
    at = now()

    def op(doc):
        if (doc.get("exit") or {}).get("reading_id") == d["reading_id"]:
            raise NoChange()   # this read's exit committed in an earlier run: it opens again, below
        decision = barrier.decide(doc, **read)
        if not decision.open:
            raise NoChange()
        doc["exit"] = {"reading_id": d["reading_id"], "device": d["device"], "at": iso(at)}
        return [lifecycle.apply(doc, "exit", actor, at=at, details={"barrier": d["device"]})], decision

    out = ledger.RECORDS.mutate(declaration_id, op)
    opened = out.result
    if opened is None and (out.doc.get("exit") or {}).get("reading_id") == d["reading_id"]:
        opened = barrier.BarrierDecision(True)   # the same opening, announced again under its own id
    if opened is not None:   # the exit committed: only now does the barrier open
        metrics.barrier_decided(d["gate"], d["flow"], True, [])
        outbox.publish([ledger.RECORDS.fact("barrier.opened", {**base, "declaration": ledger.summary(out.doc),
                                                                  "release": out.doc.get("release")},
                                               subject=declaration_id, id=event_id)])
        return opened
    decision = barrier.decide(out.doc, **read)
    metrics.barrier_decided(d["gate"], d["flow"], False, decision.reasons)
    outbox.publish([ledger.RECORDS.fact("barrier.refused", {**base, "declaration_id": declaration_id,
                                                               **decision.as_dict()},
                                           subject=declaration_id, id=event_id)])
    return decision
