"""VNPost service points: the provincial main post office plus one point per commune-level
unit (Bưu điện văn hóa xã in a xã, a bưu cục in a phường), derived from the units.

Soft ATM (ATM mềm): staffed cash deposit/withdrawal for bank accounts. It exists to bring
cash services where there is no hardware ATM, so every xã point and the main office (which
supplies the others' cash) offer it; ward offices in the city sit among bank ATMs and do not.
"""

from __future__ import annotations

import re

from . import units

MAIN_CODE = "bd-20"
MAIN_UNIT = "Phường Lương Văn Tri"
MAIN_ADDRESS = "49 Lê Lợi"
CODE_RE = re.compile(r"^bd-(?:[0-9]{2}|[0-9]{5})$")

# cash a point may hold at once for the soft ATM, in VND
MAIN_FLOAT_LIMIT_VND = 2_000_000_000
COMMUNE_FLOAT_LIMIT_VND = 200_000_000
WARD_FLOAT_LIMIT_VND = 100_000_000

_COMMUNE_HOURS = {"timezone": "Asia/Ho_Chi_Minh", "periods": [
    {"days": [1, 2, 3, 4, 5, 6], "open": "07:30", "close": "11:30"},
    {"days": [1, 2, 3, 4, 5, 6], "open": "13:30", "close": "17:00"},
]}
_MAIN_HOURS = {"timezone": "Asia/Ho_Chi_Minh", "periods": [
    {"days": [1, 2, 3, 4, 5, 6, 7], "open": "07:00", "close": "19:00"},
]}


def valid_code(code: str) -> bool:
    return bool(CODE_RE.fullmatch(code or ""))


def office_code(unit_code: str) -> str:
    return f"bd-{unit_code}"


def _hours(template: dict) -> dict:
    return {"timezone": template["timezone"],
            "periods": [{**p, "days": list(p["days"])} for p in template["periods"]]}


def _place(unit: dict) -> str:
    return f"{unit['type_label'].lower()} {unit['short_name']}"


def _main() -> dict:
    unit = units.find_by_name(MAIN_UNIT)
    return {
        "code": MAIN_CODE,
        "name": "Bưu điện tỉnh Lạng Sơn",
        "name_en": "Lạng Sơn Provincial Post Office",
        "kind": "provincial",
        "unit_code": unit["code"],
        "address": f"{MAIN_ADDRESS}, {_place(unit)}, tỉnh Lạng Sơn",
        "hours": _hours(_MAIN_HOURS),
        "soft_atm": True,
        "cash_float_limit_vnd": MAIN_FLOAT_LIMIT_VND,
    }


def _point(unit: dict) -> dict:
    is_xa = unit["type"] == "xa"
    short = unit["short_name"]
    return {
        "code": office_code(unit["code"]),
        "name": f"Bưu điện văn hóa xã {short}" if is_xa else f"Bưu cục phường {short}",
        "name_en": f"{short} Commune Cultural Post Office" if is_xa else f"{short} Ward Post Office",
        "kind": "commune" if is_xa else "ward",
        "unit_code": unit["code"],
        "address": f"{_place(unit)}, tỉnh Lạng Sơn",
        "hours": _hours(_COMMUNE_HOURS),
        "soft_atm": is_xa,
        "cash_float_limit_vnd": COMMUNE_FLOAT_LIMIT_VND if is_xa else WARD_FLOAT_LIMIT_VND,
    }


def all_post_offices() -> list[dict]:
    """The main office first, then one point per commune-level unit by unit code."""
    return [_main()] + [_point(u) for u in units.communes()]


def in_unit(items: list[dict], unit_code: str) -> list[dict]:
    return [p for p in items if p["unit_code"] == unit_code]


def search_texts(office: dict) -> list[str]:
    return [office["name"], office["name_en"], office["code"], office["address"]]


def filters():
    from lscloud.listing import bool_filter, code_filter, field_filter

    return (
        code_filter("unit", "unit_code", units.CODE_PATTERN, "points in this commune or ward (a 5-digit unit code)"),
        field_filter("kind", "kind", ("provincial", "commune", "ward")),
        bool_filter("soft_atm", "soft_atm", "only points with (true) or without (false) a soft ATM"),
    )
