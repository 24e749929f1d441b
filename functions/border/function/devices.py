"""Gate devices: weighbridge readings against the declared gross weight, ANPR plate reads.

The declared gross weight of the truck is the empty weight of tractor (and trailer) plus the
gross weight of every goods line; a reading outside the tolerance (default 5 %) is a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .identifiers import same_plate

DEFAULT_TOLERANCE = 0.05
MIN_PLATE_CONFIDENCE = 0.8
CAMERAS = ("yard", "gate", "barrier")


def declared_gross_kg(doc: dict) -> float:
    return float(doc["vehicle"]["empty_weight_kg"]) + sum(float(g["gross_weight_kg"]) for g in doc["goods"])


@dataclass(frozen=True)
class WeightCheck:
    declared_kg: float
    measured_kg: float
    deviation: float      # (measured - declared) / declared
    tolerance: float

    @property
    def ok(self) -> bool:
        return abs(self.deviation) <= self.tolerance

    def as_dict(self) -> dict:
        return {"declared_kg": self.declared_kg, "measured_kg": self.measured_kg,
                "deviation": round(self.deviation, 4), "tolerance": self.tolerance, "ok": self.ok}


def check_weight(doc: dict, measured_kg: float, tolerance: float = DEFAULT_TOLERANCE) -> WeightCheck:
    declared = declared_gross_kg(doc)
    deviation = (measured_kg - declared) / declared if declared else float("inf")
    return WeightCheck(declared, float(measured_kg), deviation, tolerance)


def plate_matches(doc: dict, read: str) -> bool:
    """A camera read names the declared tractor or trailer plate."""
    v = doc["vehicle"]
    return same_plate(read, v["tractor_plate"]) or bool(v.get("trailer_plate")) and same_plate(read, v["trailer_plate"])
