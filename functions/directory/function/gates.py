"""Lạng Sơn's border gates with China: curated in data/border_gates.yaml, each placed in a
commune-level unit that is resolved (and so verified) against the vietnam-provinces data.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from . import units

DATA = Path(__file__).parent / "data" / "border_gates.yaml"

CODE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
TYPES = ("international", "main", "secondary")
MODES = ("road", "rail")
TIMEZONE = "Asia/Ho_Chi_Minh"
_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


def valid_code(code: str) -> bool:
    return bool(CODE_RE.fullmatch(code or ""))


def _gate(raw: dict) -> dict:
    unit = units.find_by_name(raw["unit"])
    return {
        "code": raw["code"],
        "name": raw["name"],
        "name_en": raw["name_en"],
        "type": raw["type"],
        "mode": raw["mode"],
        "unit_code": unit["code"],
        "unit_name": unit["name"],
        "counterpart": dict(raw["counterpart"]),
        "hours": {**raw["hours"], "days": list(raw["hours"]["days"])},
        "capacity": dict(raw["capacity"]),
        "lanes": dict(raw["lanes"]),
        "coordinates": dict(raw["coordinates"]),
    }


def check(items: list[dict]) -> None:
    """Raise ValueError on data a careful reader would refuse (bad codes, hours, capacities)."""
    codes = [g["code"] for g in items]
    if len(set(codes)) != len(codes) or not all(valid_code(c) for c in codes):
        raise ValueError(f"gate codes must be unique and well formed: {codes}")
    for g in items:
        where = f"gate {g['code']}"
        if g["type"] not in TYPES or g["mode"] not in MODES:
            raise ValueError(f"{where}: type/mode must be one of {TYPES} / {MODES}")
        cap = g["capacity"]
        if not (isinstance(cap["export_per_hour"], int) and isinstance(cap["import_per_hour"], int)
                and cap["export_per_hour"] > 0 and cap["import_per_hour"] > 0):
            raise ValueError(f"{where}: capacities must be positive whole numbers")
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
    items = [_gate(r) for r in yaml.safe_load(DATA.read_text(encoding="utf-8"))["gates"]]
    check(items)
    return tuple(items)


def all_gates() -> list[dict]:
    """Every gate in file order (fresh copies)."""
    return [_gate_copy(g) for g in _load()]


def _gate_copy(g: dict) -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in g.items()} | {
        "hours": {**g["hours"], "days": list(g["hours"]["days"])}}


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
    )
