"""Lạng Sơn's administrative units, from the `vietnam-provinces` package (never typed by hand).

Since 1 July 2025 local government has two levels: the province (code 20) and its
commune-level units (xã / phường). Ward codes are the national 5-digit codes, zero-padded.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lscloud.listing import fold

PROVINCE_CODE = "20"
PROVINCE_NUMBER = 20

CODE_PATTERN = r"^(?:[0-9]{2}|[0-9]{5})$"
_CODE_RE = re.compile(CODE_PATTERN)

# the package's division types -> (our type code, Vietnamese label, English label)
_TYPES = {
    "tỉnh": ("tinh", "Tỉnh", "Province"),
    "thành phố trung ương": ("thanh-pho", "Thành phố", "Centrally governed city"),
    "xã": ("xa", "Xã", "Commune"),
    "phường": ("phuong", "Phường", "Ward"),
    "đặc khu": ("dac-khu", "Đặc khu", "Special zone"),
}

UNIT_TYPES = ("tinh", "xa", "phuong")


def valid_code(code: str) -> bool:
    """A well-formed unit code: "20" (the province) or a 5-digit ward code."""
    return bool(_CODE_RE.fullmatch(code or ""))


def ward_code(number: int) -> str:
    return f"{int(number):05d}"


def _type(division_type) -> tuple[str, str, str]:
    value = getattr(division_type, "value", division_type)
    try:
        return _TYPES[value]
    except KeyError:
        raise ValueError(f"unknown division type {value!r} in vietnam-provinces") from None


def _short_name(name: str, label: str) -> str:
    return name[len(label):].strip() if name.startswith(label + " ") else name


def _unit(code: str, name: str, division_type, codename: str, level: str, parent: str | None) -> dict:
    type_code, label, label_en = _type(division_type)
    short = _short_name(name, label)
    return {
        "code": code,
        "name": name,
        "short_name": short,
        "name_ascii": " ".join(w.capitalize() for w in fold(name).split(" ")),
        "codename": codename,
        "type": type_code,
        "type_label": label,
        "type_label_en": label_en,
        "level": level,
        "parent_code": parent,
    }


@lru_cache(maxsize=1)
def _load() -> tuple[dict, ...]:
    # imported here: the package's national tables cost a tenth of the function's cold start, and
    # only the seed (and the rare request that rebuilds from source) reads them
    from vietnam_provinces import Province, ProvinceCode, Ward

    province = Province.from_code(ProvinceCode(PROVINCE_NUMBER))
    out = [_unit(PROVINCE_CODE, f"Tỉnh {province.name}", province.division_type, province.codename,
                 "province", None)]
    wards = sorted((w for w in Ward.iter_all() if int(w.province_code) == PROVINCE_NUMBER), key=lambda w: int(w.code))
    out += [_unit(ward_code(w.code), w.name, w.division_type, w.codename, "commune", PROVINCE_CODE) for w in wards]
    return tuple(out)


def all_units() -> list[dict]:
    """The province first, then its commune-level units by code (fresh copies)."""
    return [dict(u) for u in _load()]


def communes() -> list[dict]:
    """The commune-level units (xã and phường) only."""
    return [u for u in all_units() if u["level"] == "commune"]


def by_code() -> dict[str, dict]:
    return {u["code"]: u for u in all_units()}


def find_by_name(name: str) -> dict:
    """The one commune-level unit whose name (full or short) folds to ``name``'s folding.

    Curated data names units ("Xã Đồng Đăng") rather than hard-coding codes; this
    resolves the name against the package so a renamed or missing unit fails loudly.
    """
    key = fold(name)
    hits = [u for u in communes() if key in (fold(u["name"]), fold(u["short_name"]))]
    if len(hits) != 1:
        raise LookupError(f"{name!r} matches {len(hits)} commune-level units of Lạng Sơn, expected exactly one")
    return hits[0]


def search_texts(unit: dict) -> list[str]:
    return [unit["name"], unit["short_name"], unit["code"]]


def filters():
    from lscloud.listing import code_filter, field_filter

    return (
        field_filter("type", "type", UNIT_TYPES, "xa (commune), phuong (ward) or tinh (the province)"),
        field_filter("level", "level", ("province", "commune")),
        code_filter("parent", "parent_code", CODE_PATTERN, "the unit above: \"20\" (the province)"),
    )
