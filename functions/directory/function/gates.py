"""Lạng Sơn's border gates with China: curated in data/border_gates.yaml, each placed in a
commune-level unit that is resolved (and so verified) against the vietnam-provinces data.

A clearance route (lối thông quan) is a crossing that belongs to another gate: Tân Thanh - Pò Chài
and Cốc Nam - Lũng Nghịu clear under the Hữu Nghị international gate. It keeps its own code,
counterpart, hours and capacity (trucks queue for it as for any gate) and names its ``parent_gate``;
the parent's ``clearance_routes`` are derived from those, so the relation is written once. Each
gate's facts cite their source (``sources``, references resolved): every gate says how its hours,
capacity and type were checked, and its ``hours.verified`` is true only when a source of its hours is.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path


from . import units

DATA = Path(__file__).parent / "data" / "border_gates.yaml"

CODE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
TYPES = ("international", "main", "secondary", "clearance-route")
CLEARANCE_ROUTE = "clearance-route"
REFERENCE_KINDS = ("official", "press", "third-party")
MODES = ("road", "rail")
TIMEZONE = "Asia/Ho_Chi_Minh"
REQUIRED_FACTS = ("hours", "capacity", "type")   # served as facts; unchecked ones say verified: false
_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


def valid_code(code: str) -> bool:
    return bool(CODE_RE.fullmatch(code or ""))


def _references(raw) -> dict:
    out = {}
    for key, ref in (raw or {}).items():
        if not valid_code(str(key)) or not isinstance(ref, dict) or not ref.get("document") or not ref.get("url") \
                or ref.get("kind") not in REFERENCE_KINDS:
            raise ValueError(f"reference {key!r}: needs document, url and kind ({', '.join(REFERENCE_KINDS)})")
        out[key] = {"document": ref["document"], "issuer": ref.get("issuer"), "date": ref.get("date"),
                    "url": ref["url"], "kind": ref["kind"], "reference_note": ref.get("note")}
    return out


def _sources(code: str, raw, references: dict) -> list[dict]:
    out = []
    for src in raw or []:
        ref = src.get("ref")
        if ref not in references or not isinstance(src.get("verified"), bool) or not src.get("fact"):
            raise ValueError(f"gate {code}: source {src!r} needs fact, verified and a ref of references")
        if not src["verified"] and not src.get("note"):
            raise ValueError(f"gate {code}: an unverified source says what was tried")
        out.append({"fact": src["fact"], "verified": src["verified"], "note": src.get("note"), "ref": ref,
                    **references[ref]})
    missing = [f for f in REQUIRED_FACTS if f not in {s["fact"] for s in out}]
    if missing:
        raise ValueError(f"gate {code}: sources must say how its {', '.join(missing)} were checked")
    return out


def verified(sources: list[dict], fact: str) -> bool:
    return any(s["fact"] == fact and s["verified"] for s in sources)


def _gate(raw: dict, references: dict) -> dict:
    unit = units.find_by_name(raw["unit"])
    sources = _sources(raw["code"], raw.get("sources"), references)
    return {
        "code": raw["code"],
        "name": raw["name"],
        "name_en": raw["name_en"],
        "type": raw["type"],
        "mode": raw["mode"],
        "parent_gate": raw.get("parent_gate"),
        "clearance_routes": [],
        "unit_code": unit["code"],
        "unit_name": unit["name"],
        "counterpart": dict(raw["counterpart"]),
        "hours": {**raw["hours"], "days": list(raw["hours"]["days"]), "verified": verified(sources, "hours")},
        "capacity": dict(raw["capacity"]),
        "lanes": dict(raw["lanes"]),
        "coordinates": dict(raw["coordinates"]),
        "sources": sources,
    }


def link_routes(items: list[dict]) -> list[dict]:
    """Fill each gate's ``clearance_routes`` from the routes that name it as ``parent_gate``."""
    for g in items:
        g["clearance_routes"] = [r["code"] for r in items if r.get("parent_gate") == g["code"]]
    return items


def check(items: list[dict]) -> None:
    """Raise ValueError on data a careful reader would refuse (bad codes, hours, capacities)."""
    codes = [g["code"] for g in items]
    if len(set(codes)) != len(codes) or not all(valid_code(c) for c in codes):
        raise ValueError(f"gate codes must be unique and well formed: {codes}")
    by_code = {g["code"]: g for g in items}
    for g in items:
        where = f"gate {g['code']}"
        if g["type"] not in TYPES or g["mode"] not in MODES:
            raise ValueError(f"{where}: type/mode must be one of {TYPES} / {MODES}")
        parent = by_code.get(g.get("parent_gate")) if g.get("parent_gate") else None
        if (g["type"] == CLEARANCE_ROUTE) != (g.get("parent_gate") is not None):
            raise ValueError(f"{where}: a clearance route, and only one, names its parent_gate")
        if g.get("parent_gate") is not None and (parent is None or parent["type"] == CLEARANCE_ROUTE
                                                 or parent["mode"] != g["mode"]):
            raise ValueError(f"{where}: parent_gate {g.get('parent_gate')!r} must be a gate of the same mode, "
                             "not itself a clearance route")
        cap = [g["capacity"]["export_per_hour"], g["capacity"]["import_per_hour"]]
        # 0 both ways: no source gives a capacity the queue may schedule against (the gate clears no
        # goods, or nobody published a figure); the border function seats no truck there until an
        # operator sets one. A single 0 beside a figure is a typo, not a closed gate.
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in cap) \
                or not (min(cap) > 0 or cap == [0, 0]):
            raise ValueError(f"{where}: capacities must be positive whole numbers, or 0 both ways for a gate "
                             "the queue cannot book")
        if g["lanes"]["export"] < 1 or g["lanes"]["import"] < 1:
            raise ValueError(f"{where}: needs at least one lane each way")
        hours = g["hours"]
        if hours["timezone"] != TIMEZONE or not (_HHMM.match(hours["open"]) and _HHMM.match(hours["close"])):
            raise ValueError(f"{where}: hours must be HH:MM in {TIMEZONE}")
        if hours["open"] >= hours["close"] or not set(hours["days"]) <= set(range(1, 8)):
            raise ValueError(f"{where}: opening must come before closing on ISO weekdays 1..7")
        lat, lon = g["coordinates"]["lat"], g["coordinates"]["lon"]
        # Lạng Sơn's bounding box, with a margin: catches swapped or mistyped coordinates
        if not (21.3 <= lat <= 22.5 and 106.0 <= lon <= 107.4):
            raise ValueError(f"{where}: coordinates {lat},{lon} are outside Lạng Sơn")
        if not g["counterpart"].get("name_zh") or not g["counterpart"].get("pinyin"):
            raise ValueError(f"{where}: counterpart needs name_zh and pinyin")


@lru_cache(maxsize=1)
def _load() -> tuple[dict, ...]:
    import yaml  # only the seed reads the files: serving reads the store, and starts without PyYAML

    doc = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    references = _references(doc.get("references"))
    items = link_routes([_gate(r, references) for r in doc["gates"]])
    check(items)
    return tuple(items)


def all_gates() -> list[dict]:
    """Every gate in file order (fresh copies)."""
    return [_gate_copy(g) for g in _load()]


def _gate_copy(g: dict) -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in g.items()} | {
        "hours": {**g["hours"], "days": list(g["hours"]["days"])}, "clearance_routes": list(g["clearance_routes"]),
        "sources": [dict(s) for s in g["sources"]]}


def daily_capacity(gate: dict) -> dict[str, int]:
    """Trucks (or wagons) per day each way over the opening hours."""
    h = gate["hours"]
    minutes = _minutes(h["close"]) - _minutes(h["open"])
    return {d: gate["capacity"][f"{d}_per_hour"] * minutes // 60 for d in ("export", "import")}


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def search_texts(gate: dict) -> list[str]:
    c = gate["counterpart"]
    return [gate["name"], gate["name_en"], gate["code"], c["name_zh"], c["pinyin"], c["name_en"]]


def filters():
    from lscloud.listing import code_filter, field_filter
    from .units import CODE_PATTERN as UNIT_PATTERN

    return (
        field_filter("type", "type", TYPES),
        field_filter("mode", "mode", MODES),
        code_filter("unit", "unit_code", UNIT_PATTERN, "gates in this commune (a 5-digit unit code)"),
        code_filter("parent_gate", "parent_gate", CODE_RE.pattern, "The clearance routes (lối thông quan) of this gate."),
    )
