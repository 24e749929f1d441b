"""Identifiers on a crossing: vehicle plates (Vietnam, China) and HS codes.

The national identifiers a crossing also carries (CCCD, tax codes) are the runtime's
(:mod:`lscloud.identifiers`), shared with the other functions. Every ``normalise_*`` returns
the canonical spelling or raises :class:`InvalidIdentifier` with a message a person can act
on. Plain Python: no Flask, no store.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


from lscloud.identifiers import InvalidIdentifier


def _fold(value: str) -> str:
    # full-width letters/digits (ＡＢ１２) and compatibility forms -> ASCII where they have one
    return unicodedata.normalize("NFKC", value or "").strip().upper()


# --- Vietnamese plates --------------------------------------------------------------------------
# NN + series (1-2 letters) + 4 digits (old) or 5 digits (NNN.NN).
# e.g. 12C-123.45, 51F-123.45, 29LD-123.45, 29R-012.34 (trailer), 20C-1234 (old four digits)
_VN_RE = re.compile(r"^(?P<prov>\d{2})(?P<series>[A-Z]{1,2})(?P<num>\d{4,5})$")
_VN_SEPARATORS = re.compile(r"[\s.\-·•_]")


def normalise_vn_plate(value: str) -> str:
    raw = _VN_SEPARATORS.sub("", _fold(value))
    m = _VN_RE.match(raw)
    if not m:
        raise InvalidIdentifier(f"{value!r} is not a Vietnamese plate (expected like 12C-123.45 or 29LD-123.45)")
    prov = int(m["prov"])
    if not 11 <= prov <= 99:
        raise InvalidIdentifier(f"{value!r}: plate province code {m['prov']} does not exist (11-99)")
    num = m["num"]
    tail = f"{num[:3]}.{num[3:]}" if len(num) == 5 else num
    return f"{m['prov']}{m['series']}-{tail}"


# --- Chinese plates -----------------------------------------------------------------------------
CN_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# abbreviation + authority letter + 5 characters (letters except I/O, digits); new-energy plates
# have 6; trailer plates 4 characters and 挂. Separators written as a middle dot, a bullet, a
# full stop, a dash or a space are all the same plate.
_CN_RE = re.compile(rf"^(?P<prov>[{CN_PROVINCES}])(?P<auth>[A-HJ-NP-Z])(?P<rest>[A-HJ-NP-Z0-9]{{5,6}}|[A-HJ-NP-Z0-9]{{4}}挂)$")
_CN_SEPARATORS = re.compile(r"[\s.\-·•・･_]")


def normalise_cn_plate(value: str) -> str:
    raw = _CN_SEPARATORS.sub("", _fold(value))
    m = _CN_RE.match(raw)
    if not m:
        raise InvalidIdentifier(f"{value!r} is not a Chinese plate (expected like 桂A·12345)")
    return f"{m['prov']}{m['auth']}·{m['rest']}"


@dataclass(frozen=True)
class Plate:
    country: str   # "VN" | "CN"
    text: str      # canonical spelling

    @property
    def key(self) -> str:
        """A key-safe form (letters and digits only) for indexes and matching reads."""
        return plate_key(self.text)


def normalise_plate(value: str) -> Plate:
    """A Vietnamese or Chinese plate in its canonical spelling (country told by its shape)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidIdentifier("a plate is required")
    if len(value) > 20:
        raise InvalidIdentifier("a plate has at most 20 characters")
    folded = _fold(value)
    if folded[:1] in CN_PROVINCES:
        return Plate("CN", normalise_cn_plate(value))
    return Plate("VN", normalise_vn_plate(value))


def plate_key(text: str) -> str:
    """Letters and digits only, upper case: what an ANPR camera's read is compared on."""
    folded = _fold(text)
    return "".join(ch for ch in folded if ch.isalnum())


def same_plate(read: str, declared: str) -> bool:
    """Whether a camera read names the declared plate (separators and case do not matter)."""
    try:
        return normalise_plate(read).key == normalise_plate(declared).key
    except InvalidIdentifier:
        return bool(read) and plate_key(read) == plate_key(declared)


# --- HS codes -------------------------------------------------------------------------------------

def normalise_hs(value: str) -> str:
    """4 to 10 digits (dots and spaces dropped: ``0810.90`` -> ``081090``) of an existing chapter."""
    raw = re.sub(r"[\s.]", "", value or "")
    if not re.fullmatch(r"\d{4,10}", raw):
        raise InvalidIdentifier("an HS code has 4 to 10 digits")
    chapter = int(raw[:2])
    if not 1 <= chapter <= 97 or chapter == 77:
        raise InvalidIdentifier(f"HS chapter {raw[:2]} does not exist")
    return raw


def hs_chapter(code: str) -> int:
    return int(code[:2])
