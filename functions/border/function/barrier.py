"""The barrier's safety rule.

The barrier opens only for a truck that is **cleared**, at **this gate**, in **this direction**,
with a **matching plate read** of sufficient confidence, with customs' release on record and no
open hold. Anything else keeps it closed, and the refusal lists every reason. This is the only
function that answers "open"; the property tests drive random event sequences through the domain
and check it never says so for a truck that is not cleared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .devices import MIN_PLATE_CONFIDENCE, plate_matches

REASONS = {
    "no-declaration": "no active declaration for this plate at this gate",
    "not-cleared": "the declaration is not cleared",
    "no-release": "customs has not released the truck",
    "open-hold": "a hold is open on the declaration",
    "wrong-gate": "the declaration is for another gate",
    "wrong-direction": "the declaration crosses in the other direction",
    "plate-mismatch": "the plate read does not match the declared tractor or trailer plate",
    "low-confidence": "the plate read is not confident enough",
}


@dataclass(frozen=True)
class BarrierDecision:
    open: bool
    reasons: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"open": self.open, "reasons": self.reasons}


def decide(doc: dict | None, *, gate: str, flow: str, plate_read: str, confidence: float = 1.0) -> BarrierDecision:
    """Open or not, and why not."""
    reasons: list[dict] = []

    def no(code: str, **extra):
        reasons.append({"code": code, "message": REASONS[code], **extra})

    if doc is None:
        no("no-declaration")
        return BarrierDecision(False, reasons)
    if doc.get("status") != "cleared":
        no("not-cleared", state=doc.get("status"))
    if not doc.get("release"):
        no("no-release")
    if doc.get("holds"):
        no("open-hold", holds=sorted(doc["holds"]))
    if doc.get("gate") != gate:
        no("wrong-gate", declared_gate=doc.get("gate"))
    if doc.get("flow") != flow:
        no("wrong-direction", declared_flow=doc.get("flow"))
    if not plate_read or not plate_matches(doc, plate_read):
        no("plate-mismatch")
    if confidence < MIN_PLATE_CONFIDENCE:
        no("low-confidence", confidence=confidence)
    return BarrierDecision(not reasons, reasons)
