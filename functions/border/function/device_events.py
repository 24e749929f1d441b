"""Gate devices' events, delivered by the trigger (Knative Eventing / the local dispatcher) to
``/events``: weighbridge readings and ANPR plate reads. A reading is recorded once (its id is a
create-only key), whatever the number of deliveries.

- ``weight.measured``: compared with the declared gross weight; a mismatch holds the truck and
  raises ``weight.mismatched``.
- ``plate.read`` at the ``yard`` camera registers the arrival of a queued truck; at the ``gate``
  camera, a called truck's arrival at the gate; at the ``barrier``, the safety rule decides:
  ``barrier.opened`` (carrying the declaration) and the exit, or ``barrier.refused`` with why.
"""

from __future__ import annotations

import logging
import os

from lscloud import outbox
from lscloud.store import ConditionalCheckFailed, DoesNotExist

from . import barrier, crossing, devices, lifecycle, metrics, records
from .identifiers import plate_key
from .lifecycle import Actor
from .models import Declaration, DeviceReading, PlateIndex

log = logging.getLogger("border.devices")

WEIGHT_MEASURED = "vn.langson.border.weight.measured.v1"
PLATE_READ = "vn.langson.border.plate.read.v1"


def tolerance() -> float:
    return float(os.environ.get("BORDER_WEIGHT_TOLERANCE", devices.DEFAULT_TOLERANCE))


def _first_time(event: dict) -> bool:
    d = event["data"]
    try:
        DeviceReading(d["device"], d["reading_id"], data={**d, "event_id": event["id"]}).save()
        return True
    except ConditionalCheckFailed:
        return False


def candidates(plate: str, gate: str) -> list[dict]:
    """Live declarations of this plate at this gate, most advanced first."""
    ids = [p.declaration_id for p in PlateIndex.query(plate_key(plate), limit=50)]
    docs = []
    for i in ids:
        try:
            doc = Declaration.get(i).data
        except DoesNotExist:
            continue
        if doc["gate"] == gate and doc["status"] not in lifecycle.TERMINAL:
            docs.append(doc)
    order = {s: i for i, s in enumerate(lifecycle.STATES)}
    return sorted(docs, key=lambda d: -order[d["status"]])


def on_weight(event: dict) -> None:
    if not _first_time(event):
        return
    d = event["data"]
    actor = Actor("device", d["device"], unit=d["gate"])
    docs = [x for x in candidates(d["plate"], d["gate"]) if x["status"] in
            ("called", "at_gate", "under_inspection", "held", "cleared")]
    if not docs:
        log.info("weighbridge reading %s: no declaration at the gate for %s", d["reading_id"], d["plate"])
        metrics.weighed(d["gate"], None, "no-declaration")
        return
    at = records.now()

    def op(doc):
        check = devices.check_weight(doc, d["gross_kg"], tolerance())
        return crossing.weigh(doc, check, d["reading_id"], actor, at), check

    def after(doc, check):
        if check.ok:
            return []
        return [records.event("weight.mismatched", {**records.summary(doc), **check.as_dict(),
                                                    "reading_id": d["reading_id"], "device": d["device"]},
                              subject=doc["id"], id=f"{doc['id']}.weight.{d['reading_id']}")]

    out = records.mutate(docs[0]["id"], op, events_after=after)
    metrics.weighed(out.doc["gate"], out.doc["flow"], "ok" if out.result.ok else "mismatch")


def on_plate(event: dict) -> None:
    if not _first_time(event):
        return
    d = event["data"]
    actor = Actor("device", d["device"], unit=d["gate"])
    docs = candidates(d["plate"], d["gate"])
    camera = d["camera"]
    try:
        if camera == "yard":
            queued = [x for x in docs if x["status"] == "queued"]
            if queued:
                records.arrive(queued[0]["id"], actor, d["gate"])
        elif camera == "gate":
            called = [x for x in docs if x["status"] == "called"]
            if called:
                records.reach_gate(called[0]["id"], actor, d["gate"])
        elif camera == "barrier":
            open_barrier(docs[0]["id"] if docs else None, d, actor)
    except (lifecycle.IllegalTransition, lifecycle.NotPermitted) as exc:
        log.info("plate read %s ignored: %s", d["reading_id"], exc)


def open_barrier(declaration_id: str | None, d: dict, actor: Actor) -> barrier.BarrierDecision:
    """Decide on the fresh document inside the conditional write: the barrier opens only if the
    exit of a cleared truck commits."""
    read = {"gate": d["gate"], "flow": d["flow"], "plate_read": d["plate"], "confidence": d.get("confidence", 1.0)}
    base = {"gate": d["gate"], "flow": d["flow"], "plate": d["plate"], "reading_id": d["reading_id"],
            "device": d["device"]}
    if declaration_id is None:
        decision = barrier.decide(None, **read)
        metrics.barrier_decided(d["gate"], d["flow"], False, decision.reasons)
        outbox.publish([records.event("barrier.refused", {**base, **decision.as_dict()},
                                       id=f"barrier.{d['device']}.{d['reading_id']}")])
        return decision
    at = records.now()

    def op(doc):
        decision = barrier.decide(doc, **read)
        if not decision.open:
            raise records.NoChange()
        doc["exit"] = {"reading_id": d["reading_id"], "device": d["device"], "at": lifecycle.iso(at)}
        return [lifecycle.apply(doc, "exit", actor, at=at, details={"barrier": d["device"]})], decision

    out = records.mutate(declaration_id, op)
    if out.result is not None:   # the exit committed: only now does the barrier open
        metrics.barrier_decided(d["gate"], d["flow"], True, [])
        outbox.publish([records.event("barrier.opened", {**base, "declaration": records.summary(out.doc),
                                                          "release": out.doc.get("release")},
                                       subject=declaration_id, id=f"barrier.{d['device']}.{d['reading_id']}")])
        return out.result
    decision = barrier.decide(out.doc, **read)
    metrics.barrier_decided(d["gate"], d["flow"], False, decision.reasons)
    outbox.publish([records.event("barrier.refused", {**base, "declaration_id": declaration_id, **decision.as_dict()},
                                   subject=declaration_id, id=f"barrier.{d['device']}.{d['reading_id']}")])
    return decision
