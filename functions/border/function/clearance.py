"""Multi-agency clearance: which agencies a crossing needs, their decisions, customs' risk lane
and release (the final decision, possible only when every other required agency has passed).

Modelled on the national single window: agencies decide in parallel on one record; customs
releases. Risk lanes as in ASYCUDA World (green: documents accepted, yellow: documentary check,
red: physical inspection), re-routable with a reason that is audited.
"""

from __future__ import annotations

from .identifiers import hs_chapter

AGENCIES = ("customs", "border-guard", "health-quarantine", "animal-quarantine", "plant-quarantine",
            "traffic-police", "tax", "ezone-board")
DECISIONS = ("pass", "hold", "refuse")
LANES = ("green", "yellow", "red")

PLANT_CHAPTERS = frozenset(range(6, 15))           # live plants, vegetables, fruit, coffee/tea, cereals, seeds
ANIMAL_CHAPTERS = frozenset({1, 2, 3, 4, 5, 16})   # live animals, meat, fish, dairy, animal products, preparations

# direction -> flow through the gate: "in" = China → Vietnam, "out" = Vietnam → China
DIRECTIONS = {"import": "in", "temporary-import": "in", "transit-in": "in",
              "export": "out", "re-export": "out", "transit-out": "out"}
TAXED = frozenset({"import", "temporary-import"})


def flow_of(direction: str) -> str:
    return DIRECTIONS[direction]


def required_agencies(direction: str, goods: list[dict], tractor_country: str) -> list[dict]:
    """The agencies this crossing needs, each with why (shown to the enterprise and officers)."""
    flow = flow_of(direction)
    chapters = {hs_chapter(g["hs_code"]) for g in goods}
    out = [{"agency": "customs", "why": "every crossing: customs declaration and final release"},
           {"agency": "border-guard", "why": "every crossing: border control of the vehicle and driver"},
           {"agency": "ezone-board", "why": "every crossing: the economic zone board runs the gate yards"}]
    if flow == "in":
        out.append({"agency": "health-quarantine", "why": "people and vehicles entering Vietnam"})
    if chapters & ANIMAL_CHAPTERS:
        out.append({"agency": "animal-quarantine",
                    "why": "animal goods (HS chapters " + ", ".join(f"{c:02d}" for c in sorted(chapters & ANIMAL_CHAPTERS)) + ")"})
    if chapters & PLANT_CHAPTERS:
        out.append({"agency": "plant-quarantine",
                    "why": "plant goods (HS chapters " + ", ".join(f"{c:02d}" for c in sorted(chapters & PLANT_CHAPTERS)) + ")"})
    if flow == "in" and tractor_country != "VN":
        out.append({"agency": "traffic-police", "why": "a foreign-registered vehicle entering Vietnam"})
    if direction in TAXED:
        out.append({"agency": "tax", "why": "import duties and VAT on goods entering"})
    order = {a: i for i, a in enumerate(AGENCIES)}
    return sorted(out, key=lambda r: order[r["agency"]])


def initial_lane(goods: list[dict], direction: str) -> tuple[str, str]:
    """The selectivity's first lane and why (customs may re-route it)."""
    chapters = {hs_chapter(g["hs_code"]) for g in goods}
    if chapters & ANIMAL_CHAPTERS:
        return "red", "animal goods are inspected physically"
    if any(not g.get("value") for g in goods):
        return "red", "a goods line declares no value"
    if direction in TAXED or any(g.get("perishable") for g in goods):
        return "yellow", "documentary check of dutiable or perishable goods"
    return "green", "low-risk goods: documents accepted"


def record_decision(doc: dict, agency: str, decision: dict) -> bool:
    """Fold one agency decision (``{"decision", "seq", "at", ...}``) into the declaration's summary
    and holds. Returns False when a newer decision of that agency is already there (replays and
    out-of-order folds change nothing)."""
    current = doc.setdefault("decisions", {}).get(agency)
    if current is not None and current["seq"] >= decision["seq"]:
        return False
    doc["decisions"][agency] = decision
    holds = doc.setdefault("holds", {})
    key = f"agency:{agency}"
    if decision["decision"] == "hold":
        holds[key] = {"agency": agency, "since": decision["at"], "notes": decision.get("notes")}
    else:
        holds.pop(key, None)
    if agency == "customs" and decision["decision"] == "pass" and "weight" in holds:
        # customs accepts the weight after a re-weigh or a check: its pass lifts the weighbridge hold
        if decision.get("lifts_weight_hold"):
            holds.pop("weight", None)
    return True


def release_blockers(doc: dict) -> list[dict]:
    """Why customs cannot release now (empty: it can). Each item has a code and the agency/hold."""
    blockers = []
    decisions = doc.get("decisions", {})
    for req in doc.get("required_agencies", []):
        agency = req["agency"]
        if agency == "customs":
            continue
        d = decisions.get(agency)
        if d is None:
            blockers.append({"code": "decision-missing", "agency": agency})
        elif d["decision"] != "pass":
            blockers.append({"code": f"decision-{d['decision']}", "agency": agency})
    for key, hold in sorted(doc.get("holds", {}).items()):
        if not key.startswith("agency:"):
            blockers.append({"code": f"hold-{key}", "detail": hold})
    if not doc.get("risk_lane"):
        blockers.append({"code": "no-risk-lane"})
    return blockers


def pending_agencies(doc: dict) -> list[str]:
    """Required agencies with no final (pass/refuse) decision yet: the officers' work lists."""
    decisions = doc.get("decisions", {})
    return [r["agency"] for r in doc.get("required_agencies", [])
            if decisions.get(r["agency"], {}).get("decision") not in ("pass", "refuse")]
