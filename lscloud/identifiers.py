"""Vietnamese national identifiers every function meets: the citizen ID (CCCD) and tax codes (MST,
or since 1/7/2025 a person's 12-digit personal identification number).

Plain Python, no I/O. Each parser returns the canonical value or raises
:class:`InvalidIdentifier` whose message names the rule the value breaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from .timestamps import today_here


class InvalidIdentifier(ValueError):
    """The value is not a well-formed identifier of its kind; ``str(err)`` says why."""


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

    @property
    def province_code(self) -> str:
        """The three-digit code of the province of birth registration (Lạng Sơn: ``020``)."""
        return self.number[:3]

    @property
    def century(self) -> int:
        """The century of birth as Vietnamese counts it: 20 for 1900–1999, 21 for 2000–2099."""
        return self.birth_year // 100 + 1


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
    today = today or today_here()
    if year > today.year:
        raise InvalidIdentifier(f"CCCD century/sex digit {g} and year {digits[4:6]} give a birth year in the future")
    if today.year - year > 120:
        raise InvalidIdentifier(f"CCCD gives an implausible birth year {year}")
    return Cccd(digits, province, "female" if g % 2 else "male", year)


# --- tax codes (mã số thuế) ------------------------------------------------------------------------
# Since 1 July 2025 an individual's tax code is their 12-digit personal identification number (số
# định danh cá nhân, the CCCD number), and so is that of a household or household business: Circular
# 86/2024/TT-BTC on tax registration (dated 23/12/2024, as the official forms it issues say; "áp
# dụng từ 01/7/2025"). Checked Dec 2026 with the search tool: the date and the rule are confirmed by
# copies of the circular's forms and by several practitioners' notes; the article carrying the rule
# could not be read (the circular's text was not retrievable), and a later Circular 90/2026/TT-BTC is
# reported to replace it from 1/7/2026 - neither is verified. Enterprises and organisations keep the
# 10-digit MST (13 digits, "-NNN", for a dependent unit).
_MST_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
PERSONAL_TAX_CODE_LENGTH = 12


def mst_check_digit(first9: str) -> int | None:
    """The 10th digit of a tax code from its first nine, or None when no digit fits (invalid)."""
    total = sum(int(d) * w for d, w in zip(first9, _MST_WEIGHTS))
    check = 10 - total % 11
    return None if check == 10 else check  # a remainder of 0 would need a check "digit" of 10


def normalise_tax_code(value: str, today: date | None = None) -> str:
    """A tax code in its canonical spelling: ``0101234567``, ``0101234567-001`` (a dependent unit;
    ``0101234567001`` is accepted too), or a 12-digit personal identification number, which is an
    individual's or household business's tax code since 1/7/2025 and is checked as a CCCD."""
    raw = re.sub(r"[\s.]", "", value or "")
    if re.fullmatch(r"\d{12}", raw):
        try:
            return parse_cccd(raw, today).number
        except InvalidIdentifier as exc:
            raise InvalidIdentifier(f"a 12-digit tax code is a personal identification number: {exc}") from None
    m = re.fullmatch(r"(\d{10})(?:-?(\d{3}))?", raw)
    if not m:
        raise InvalidIdentifier("a tax code has 10 digits, 13 for a dependent unit (0101234567-001), "
                                "or 12 for a person or household business (their personal identification number)")
    base, branch = m.group(1), m.group(2)
    check = mst_check_digit(base[:9])
    if check is None or check != int(base[9]):
        raise InvalidIdentifier(f"tax code {base}: the check digit does not match")
    if branch == "000":
        raise InvalidIdentifier("a branch tax code ends in 001-999")
    return f"{base}-{branch}" if branch else base


def is_personal_tax_code(code: str) -> bool:
    """Whether a canonical tax code is a personal identification number (personal data: never in
    object keys, spans, metric labels or logs)."""
    return len(code) == PERSONAL_TAX_CODE_LENGTH and code.isdigit()


def with_check_digit(first9: str) -> str | None:
    """A valid 10-digit tax code from nine digits (None when those nine admit none): for tests and seeds."""
    check = mst_check_digit(first9)
    return None if check is None else first9 + str(check)
