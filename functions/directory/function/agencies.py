"""The bodies that act in the system: curated provincial and border agencies, plus one
People's Committee per commune-level unit (derived from the units, never listed by hand).

An agency's ``code`` is what tokens carry in their ``agency`` claim.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path


from . import units
DATA = Path(__file__).parent / "data" / "agencies.yaml"

CODE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
KINDS = ("provincial-government", "department", "centre", "commune-committee", "border-agency")
ROLES = ("border_clearance", "traffic_coordination", "dossier_processing", "report_handling",
         "cash_services", "monitoring")
PROVINCIAL_COMMITTEE = "ubnd-tinh"


def valid_code(code: str) -> bool:
    return bool(CODE_RE.fullmatch(code or ""))


def committee_code(unit_code: str) -> str:
    return f"ubnd-{unit_code}"


def _roles(names) -> dict[str, bool]:
    unknown = set(names) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown agency roles {sorted(unknown)}; known: {ROLES}")
    return {role: role in names for role in ROLES}


def _agency(raw: dict) -> dict:
    unit_code = units.find_by_name(raw["unit"])["code"] if raw.get("unit") else None
    return {
        "code": raw["code"],
        "name": raw["name"],
        "name_en": raw["name_en"],
        "kind": raw["kind"],
        "parent": raw.get("parent"),
        "roles": _roles(raw.get("roles", [])),
        "unit_code": unit_code,
        "gates": list(raw.get("gates", [])),
    }


def _committee(unit: dict) -> dict:
    short = unit["short_name"]
    label = unit["type_label"].lower()
    label_en = unit["type_label_en"]
    return {
        "code": committee_code(unit["code"]),
        "name": f"Ủy ban nhân dân {label} {short}",
        "name_en": f"{short} {label_en} People's Committee",
        "kind": "commune-committee",
        "parent": PROVINCIAL_COMMITTEE,
        "roles": _roles(["dossier_processing", "report_handling", "cash_services"]),
        "unit_code": unit["code"],
        "gates": [],
    }


def check(items: list[dict], gate_codes: set[str] | None = None) -> None:
    """Raise ValueError unless codes are well formed and unique, kinds known, parents present."""
    codes = [a["code"] for a in items]
    bad = [c for c in codes if not valid_code(c)]
    if bad:
        raise ValueError(f"malformed agency codes {bad}")
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise ValueError(f"duplicate agency codes {dupes}")
    known = set(codes)
    for a in items:
        if a["kind"] not in KINDS:
            raise ValueError(f"agency {a['code']}: unknown kind {a['kind']!r}")
        if a["parent"] is not None and a["parent"] not in known:
            raise ValueError(f"agency {a['code']}: parent {a['parent']!r} is not an agency")
        if gate_codes is not None and not set(a["gates"]) <= gate_codes:
            raise ValueError(f"agency {a['code']}: unknown gates {sorted(set(a['gates']) - gate_codes)}")


@lru_cache(maxsize=1)
def _load() -> tuple[dict, ...]:
    import yaml  # only the seed reads the files: serving reads the store, and starts without PyYAML

    raw = yaml.safe_load(DATA.read_text(encoding="utf-8"))["agencies"]
    items = [_agency(r) for r in raw] + [_committee(u) for u in units.communes()]
    from .gates import all_gates  # gates and agencies refer to each other by code only

    check(items, {g["code"] for g in all_gates()})
    return tuple(items)


def all_agencies() -> list[dict]:
    """Curated agencies in file order, then the commune committees by unit code (fresh copies)."""
    return [{**a, "roles": dict(a["roles"]), "gates": list(a["gates"])} for a in _load()]


def with_role(items: list[dict], role: str) -> list[dict]:
    return [a for a in items if a["roles"].get(role)]


def search_texts(agency: dict) -> list[str]:
    return [agency["name"], agency["name_en"], agency["code"]]


__all__ = ["all_agencies", "check", "committee_code", "valid_code", "with_role", "search_texts", "KINDS", "ROLES"]


def filters():
    from lscloud.listing import Filter, code_filter, field_filter
    from .units import CODE_PATTERN as UNIT_PATTERN

    return (
        field_filter("kind", "kind", KINDS),
        Filter("role", lambda item, v: bool(item["roles"].get(v)), {"type": "string", "enum": list(ROLES)},
               "only agencies that play this role"),
        code_filter("unit", "unit_code", UNIT_PATTERN, "seated in this unit (\"20\" or a 5-digit unit code)"),
        Filter("gate", lambda item, v: v in item["gates"], {"type": "string", "pattern": CODE_RE.pattern, "maxLength": 64},
               "stationed at this border gate (a gate code)"),
        code_filter("parent", "parent", CODE_RE.pattern, "under this agency (an agency code)"),
    )
