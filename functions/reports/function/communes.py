"""The commune of a report: a directory unit code (the national 5-digit ward code, as the directory
serves it from the same `vietnam-provinces` data), given directly or resolved from an address.

People still write pre-2025 addresses (thôn, xã, huyện). ``vietnam-address-converter`` maps an old
or new address text to the 2025 commune-level unit; its own codes are not the national ones, so the
unit is then found by name among Lạng Sơn's units.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from unidecode import unidecode
from vietnam_provinces import Ward

PROVINCE_NUMBER = 20           # Lạng Sơn in the 2025 national codes
_CODE = re.compile(r"\d{5}")
_warming = threading.Lock()
_warm: list[bool] = []


def _fold(text: str) -> str:
    return " ".join(unidecode(text or "").lower().replace("-", " ").split())


@lru_cache(maxsize=1)
def all_communes() -> tuple[dict, ...]:
    """Lạng Sơn's commune-level units ``{"code", "name"}``, by code."""
    wards = sorted((w for w in Ward.iter_all() if int(w.province_code) == PROVINCE_NUMBER), key=lambda w: int(w.code))
    return tuple({"code": f"{int(w.code):05d}", "name": w.name} for w in wards)


@lru_cache(maxsize=1)
def _by_code() -> dict[str, dict]:
    return {c["code"]: c for c in all_communes()}


@lru_cache(maxsize=1)
def _by_name() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in all_communes():
        out.setdefault(_fold(c["name"]), []).append(c)
    return out


def get(code: str) -> dict | None:
    """The unit ``code`` if it is one of Lạng Sơn's communes or wards."""
    return _by_code().get(code) if _CODE.fullmatch(code or "") else None


def warm() -> None:
    """Load the converter's tables (seconds of CPU, longer on a busy machine) before the first
    report with an address needs them; the app starts this in the background, once a process."""
    with _warming:
        if not _warm:
            from_address("thôn Pò Mỏ, xã Hoàng Đồng, thành phố Lạng Sơn, tỉnh Lạng Sơn")
            _warm.append(True)


def from_address(text: str) -> dict | None:
    """The 2025 commune of an address written the old way or the new way, if it is in Lạng Sơn and
    the converter is sure of exactly one unit; otherwise None."""
    if not text or not text.strip():
        return None
    from vietnam_address_converter import convert_address_text

    try:
        out = convert_address_text(text)
    except Exception:            # the converter parses free text: an address it cannot read is not ours
        return None
    converted = out.get("converted") or {}
    province, ward = converted.get("province") or {}, converted.get("ward") or {}
    if _fold(province.get("name", "")) != "lang son" or not ward.get("name_with_type"):
        return None
    hits = _by_name().get(_fold(ward["name_with_type"]), [])
    if len(hits) != 1:
        return None
    return {**hits[0], "converted_from": out.get("input_type"), "address_2025": out.get("converted_text")}
