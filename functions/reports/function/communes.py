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
# the converter's name normalizers: pure functions of one string, called about a million times on
# about 85,000 distinct names while the converter builds its index
_NORMALIZERS = ("normalize_vietnamese_name", "normalize_address_text")
_BUILD_WITH = "thôn Pò Mỏ, xã Hoàng Đồng, thành phố Lạng Sơn, tỉnh Lạng Sơn"
_built: list[Callable[[str], dict]] = []
memo_sizes: dict[str, int] = {}   # distinct names each memo held when the index was built


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


def _memoized(fn: Callable[[Any], str], memo: dict[str, str]) -> Callable[[Any], str]:
    def normalized(value: Any) -> str:
        if type(value) is not str:
            return fn(value)
        out = memo.get(value)
        if out is None:
            out = memo[value] = fn(value)
        return out

    return normalized


def converter() -> Callable[[str], dict]:
    """``vietnam_address_converter.convert_address_text``, its index built (once a process).

    On first use the converter builds an index of every old and new unit of the country (about
    37,000 candidates), normalizing the same province and district names again for each of their
    wards: 8.4 s of CPU here, which each reports replica spent as it started (and a report with an
    address waited for). Its two name normalizers are pure functions of one string, so the build
    runs with them memoized: 1.8-2.5 s, 4 MB more at the peak, and every answer the same (stop 38). The memo is
    dropped once the index is built (the library's own functions are put back), so it holds nothing
    afterwards. Version 1.0.5, the latest, does not memoize them: drop this once it does. Each
    module of the package that imported a normalizer gets the memoized one for the build
    (``sys.modules``, under the names it imported them as); a version that renames them builds
    slowly, and the test that counts the memo's use fails."""
    if _built:
        return _built[0]
    with _warming:
        if not _built:
            from vietnam_address_converter import convert_address_text, normalize

            swapped, memos = [], {}
            for name in _NORMALIZERS:
                original = getattr(normalize, name, None)
                if original is None:
                    continue
                memo = _memoized(original, memos.setdefault(name, {}))
                for module_name, module in list(sys.modules.items()):
                    if module_name.startswith("vietnam_address_converter") and getattr(module, name, None) is original:
                        setattr(module, name, memo)
                        swapped.append((module, name, original))
            try:
                convert_address_text(_BUILD_WITH)
            finally:
                for module, name, original in swapped:
                    setattr(module, name, original)
                memo_sizes.update({name: len(m) for name, m in memos.items()})
            _built.append(convert_address_text)
    return _built[0]


def warm() -> None:
    """Build the converter's index (two seconds of CPU, longer on a busy machine) before the first
    report with an address needs it; the app has it run once the replica serves
    (:data:`lscloud.knative.AFTER_READY`), and a report with an address before that builds it itself."""
    converter()


ADDRESS_PARTS = 6
"""The comma-separated parts of an address read for its units: house, street, hamlet, commune,
district and province at most."""


def from_address(text: str) -> dict | None:
    """The 2025 commune of an address written the old way or the new way, if it is in Lạng Sơn and
    the converter is sure of exactly one unit; otherwise None."""
    if not text or not text.strip():
        return None
    # the units are the address's last parts (…, phường, thành phố, tỉnh); the converter costs ~2 ms
    # a comma-separated part, and 20,000 characters of them held a request for 38 s
    text = ",".join(text.split(",")[-ADDRESS_PARTS:])
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
