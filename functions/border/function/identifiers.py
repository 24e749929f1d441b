"""Identifiers on a crossing: vehicle plates (Vietnam, China), CCCD, tax codes (MST), HS codes.

Every ``normalise_*`` returns the canonical spelling or raises :class:`InvalidIdentifier`
with a message a person can act on. Plain Python: no Flask, no store.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date


class InvalidIdentifier(ValueError):
    """The value is not a well-formed identifier of its kind; ``str(err)`` says why."""


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


# --- CCCD (Vietnamese citizen ID, 12 digits PPP G YY NNNNNN) -------------------------------------
CCCD_PROVINCES = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn", "008": "Tuyên Quang",
    "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu", "014": "Sơn La", "015": "Yên Bái",
    "017": "Hòa Bình", "019": "Thái Nguyên", "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang",
    "025": "Phú Thọ", "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định", "037": "Ninh Bình",
    "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh", "044": "Quảng Bình", "045": "Quảng Trị",
    "046": "Thừa Thiên Huế", "048": "Đà Nẵng", "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định",
    "054": "Phú Yên", "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng", "070": "Bình Phước",
    "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai", "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh",
    "086": "Vĩnh Long", "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ",
    "093": "Hậu Giang", "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}


@dataclass(frozen=True)
class Cccd:
    number: str
    province: str
    sex: str          # "male" | "female"
    birth_year: int


def parse_cccd(value: str, today: date | None = None) -> Cccd:
    """Check a CCCD's format: province of birth registration, century/sex digit, birth year."""
    digits = re.sub(r"\s", "", value or "")
    if not re.fullmatch(r"\d{12}", digits):
        raise InvalidIdentifier("a CCCD has exactly 12 digits")
    province = CCCD_PROVINCES.get(digits[:3])
    if province is None:
        raise InvalidIdentifier(f"CCCD province code {digits[:3]} does not exist")
    g = int(digits[3])
    year = 1900 + (g // 2) * 100 + int(digits[4:6])
    today = today or date.today()
    if year > today.year:
        raise InvalidIdentifier(f"CCCD century/sex digit {g} and year {digits[4:6]} give a birth year in the future")
    if today.year - year > 120:
        raise InvalidIdentifier(f"CCCD gives an implausible birth year {year}")
    return Cccd(digits, province, "female" if g % 2 else "male", year)


# --- tax codes (mã số thuế) ------------------------------------------------------------------------
_MST_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)


def mst_check_digit(first9: str) -> int | None:
    """The 10th digit of a tax code from its first nine, or None when no digit fits (invalid)."""
    total = sum(int(d) * w for d, w in zip(first9, _MST_WEIGHTS))
    check = 10 - total % 11
    return None if check == 10 else check  # a remainder of 0 would need a check "digit" of 10


def normalise_tax_code(value: str) -> str:
    """``0101234567`` or ``0101234567-001`` (a branch; ``0101234567001`` is accepted too)."""
    raw = re.sub(r"[\s.]", "", value or "")
    m = re.fullmatch(r"(\d{10})(?:-?(\d{3}))?", raw)
    if not m:
        raise InvalidIdentifier("a tax code has 10 digits, or 13 for a branch (0101234567-001)")
    base, branch = m.group(1), m.group(2)
    check = mst_check_digit(base[:9])
    if check is None or check != int(base[9]):
        raise InvalidIdentifier(f"tax code {base}: the check digit does not match")
    if branch == "000":
        raise InvalidIdentifier("a branch tax code ends in 001-999")
    return f"{base}-{branch}" if branch else base


def with_check_digit(first9: str) -> str | None:
    """A valid 10-digit tax code from nine digits (None when those nine admit none): for tests and seeds."""
    check = mst_check_digit(first9)
    return None if check is None else first9 + str(check)


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
