"""The commune of a report: a directory unit code (the national 5-digit ward code, as the directory
serves it from the same `vietnam-provinces` data), given directly or resolved from an address.

People still write pre-2025 addresses (thôn, xã, huyện). ``vietnam-address-converter`` maps an old
or new address text to the 2025 commune-level unit; its own codes are not the national ones, so the
unit is then found by name among Lạng Sơn's units.
"""

from __future__ import annotations

import re
import sys
import threading
from functools import lru_cache
from typing import Any, Callable

from unidecode import unidecode
from vietnam_provinces import Ward

PROVINCE_NUMBER = 20           # Lạng Sơn in the 2025 national codes
_CODE = re.compile(r"\d{5}")
_warming = threading.Lock()
_warm: list[bool] = []
# the converter's name normalizers: pure functions of a string, called ~900,000 times on ~85,000
# distinct names while it builds its index
_NORMALIZERS = ("normalize_vietnamese_name", "normalize_address_text")
_NORMALIZED_MAX = 1 << 17


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


def _memoized(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    cached = lru_cache(maxsize=_NORMALIZED_MAX)(fn)

    def normalized(value: Any) -> str:
        return cached(value) if type(value) is str else fn(value)

    normalized.cache_info = cached.cache_info      # type: ignore[attr-defined]
    return normalized


@lru_cache(maxsize=1)
def converter() -> Callable[[str], dict]:
    """``vietnam_address_converter.convert_address_text``, with its name normalizers memoized.

    On first use the converter builds an index of every old and new unit of the country (about
    37,000 candidates), normalizing the same province and district names again for each of their
    wards: 8.4 s of CPU here, which each reports replica spent in the background as it started
    (and a report with an address waited for). The normalizers are pure functions of one string;
    memoized (bounded), the build takes 1.9 s and every answer is the same. Version 1.0.5, the
    latest, does not memoize them: this is the place to drop once it does. Each module of the
    package that imported a normalizer gets the memoized one (``sys.modules``: the names it
    imported them under); a version that renames them is left as it is, and the test that counts
    the memo's hits fails."""
    from vietnam_address_converter import convert_address_text, normalize

    for name in _NORMALIZERS:
        original = getattr(normalize, name, None)
        if original is None or hasattr(original, "cache_info"):
            continue    # renamed in this version, or memoized by a thread that got here first
        memo = _memoized(original)
        for module_name, module in list(sys.modules.items()):
            if module_name.startswith("vietnam_address_converter") and getattr(module, name, None) is original:
                setattr(module, name, memo)
    return convert_address_text


def warm() -> None:
    """Load the converter's tables (two seconds of CPU, longer on a busy machine) before the first
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
    try:
        out = converter()(text)
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
