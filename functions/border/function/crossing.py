"""What each operation does to one declaration document (plain dicts, no store).

The HTTP and event handlers load the document, call one of these inside a conditional-write loop
(``If-Match``: a lost race re-reads and runs it again, so each is safe to repeat on fresh data)
and then write the audit entries and publish the events of the transitions it returns. The
property tests drive random sequences of exactly these functions.
"""

from __future__ import annotations

from datetime import datetime

from lscloud import errors

from . import clearance, lifecycle
from .devices import WeightCheck
from .lifecycle import MACHINE, Actor, Transition, iso


class NotReleasable(errors.Conflict):
    """Customs cannot release yet; ``blockers`` says why (409)."""

    type = "not-releasable"
    title, title_vi = "Release not possible yet", "Chưa thể thông quan"

    def __init__(self, blockers: list[dict]):
        super().__init__("release is not possible yet: " + ", ".join(
            b["code"] + (f" ({b['agency']})" if b.get("agency") else "") for b in blockers),
            detail_vi="Chưa đủ điều kiện thông quan: còn cơ quan chưa đồng ý hoặc đang tạm giữ.", blockers=blockers)
        self.blockers = blockers


class LaneRefused(errors.Invalid, ValueError):
    """A risk lane customs cannot set: not a lane, or a re-route without a reason (422)."""


DECIDABLE = frozenset({"submitted", "queued", "in_yard", "called", "at_gate", "under_inspection", "held", "cleared"})


def _settle_holds(doc: dict, actor: Actor, at: datetime, reason: str) -> list[Transition]:
    """Held when a hold is open at the gate; back under inspection when none is left."""
    if doc.get("holds") and doc["status"] in ("at_gate", "under_inspection", "cleared"):
        if doc["status"] == "cleared":
            doc.pop("release", None)   # a hold after release revokes it: the barrier stays shut
        return [lifecycle.apply(doc, "hold", actor, at=at, reason=reason, details={"holds": sorted(doc["holds"])})]
    if not doc.get("holds") and doc["status"] == "held":
        return [lifecycle.apply(doc, "resume", actor, at=at, reason=reason)]
    return []


def decide(doc: dict, agency: str, decision: dict, actor: Actor, at: datetime) -> list[Transition]:
    """Fold one agency decision into the declaration; returns the transitions it caused."""
    if doc["status"] not in DECIDABLE:
        raise MACHINE.illegal("decide", doc["status"])
    if not clearance.record_decision(doc, agency, decision):
        return []
    out: list[Transition] = []
    if decision["decision"] == "refuse":
        if doc["status"] == "cleared":
            doc.pop("release", None)
            out.append(lifecycle.apply(doc, "hold", actor, at=at, reason=decision.get("notes")))
        out.append(lifecycle.apply(doc, "refuse", actor, at=at, reason=decision.get("notes"),
                                   details={"agency": agency}))
        return out
    if doc["status"] == "at_gate":
        out.append(lifecycle.apply(doc, "start_inspection", actor, at=at, details={"agency": agency}))
    out += _settle_holds(doc, actor, at, f"{agency}: {decision['decision']}")
    return out


def release(doc: dict, actor: Actor, at: datetime, notes: str | None = None) -> Transition:
    """Customs' final decision: only from under inspection with no blocker left."""
    lifecycle.check(doc, "release", actor)
    blockers = clearance.release_blockers(doc)
    if blockers:
        raise NotReleasable(blockers)
    t = lifecycle.apply(doc, "release", actor, at=at, reason=notes)
    doc["release"] = {"by": actor.as_dict(), "at": iso(at), "lane": doc.get("risk_lane")}
    clearance.record_decision(doc, "customs", {"decision": "pass", "seq": doc.get("decisions", {}).get(
        "customs", {}).get("seq", 0) + 1, "at": iso(at), "by": actor.sub, "notes": notes, "release": True})
    return t


def assign_lane(doc: dict, lane: str, reason: str | None, actor: Actor, at: datetime) -> dict:
    """Customs sets or re-routes the risk lane; a re-route needs a reason. Returns the audit details."""
    if lane not in clearance.LANES:
        raise LaneRefused.at("/lane", f"lane must be one of {clearance.LANES}",
                             "Luồng phải là green (luồng xanh), yellow (luồng vàng) hoặc red (luồng đỏ)")
    if doc["status"] in lifecycle.TERMINAL or doc["status"] in ("cleared", "draft"):
        raise MACHINE.illegal("reroute", doc["status"])
    previous = doc.get("risk_lane")
    if previous and previous != lane and not (reason or "").strip():
        raise LaneRefused.at("/reason", "re-routing a risk lane needs a reason", "Chuyển luồng phải ghi rõ lý do")
    entry = {"from": previous, "to": lane, "reason": reason, "by": actor.sub, "at": iso(at)}
    doc["risk_lane"] = lane
    doc.setdefault("risk_lane_history", []).append(entry)
    return entry


def weigh(doc: dict, check: WeightCheck, reading_id: str, actor: Actor, at: datetime,
          measured_at: str | None = None) -> list[Transition]:
    """Record a weighbridge reading: a mismatch opens the weight hold, a good reading lifts it.
    ``measured_at``: when the weighbridge measured it (kept, so an older reading delivered late is
    told apart)."""
    doc["weight"] = {**check.as_dict(), "reading_id": reading_id, "at": iso(at),
                     **({"measured_at": measured_at} if measured_at else {})}
    holds = doc.setdefault("holds", {})
    if not check.ok:
        doc["weight_mismatches"] = int(doc.get("weight_mismatches", 0)) + 1
        holds["weight"] = {"since": iso(at), "reading_id": reading_id, **check.as_dict()}
        return _settle_holds(doc, actor, at, "weighbridge mismatch")
    holds.pop("weight", None)
    return _settle_holds(doc, actor, at, "weighbridge reading within tolerance")
