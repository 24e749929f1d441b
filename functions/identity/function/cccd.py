"""Decoding a CCCD number (căn cước công dân): what its digits say, or the rule it breaks."""

from __future__ import annotations

from lscloud import errors
from lscloud.identifiers import InvalidIdentifier, parse_cccd

MAX_CHARS = 40  # a path segment longer than any spelling of a CCCD is cut before it is echoed


class InvalidCccd(errors.Invalid):
    type = "invalid-cccd"
    title, title_vi = "Invalid CCCD number", "Số CCCD không hợp lệ"


def decode(number: str) -> dict:
    """Province of birth registration, sex, century and birth year of ``number`` (422 naming the broken rule)."""
    number = number[:MAX_CHARS]
    try:
        c = parse_cccd(number)
    except InvalidIdentifier as exc:
        raise InvalidCccd(f"{number!r}: {exc}.", detail_vi=f"Số CCCD không hợp lệ: {exc}.",
                          errors=[errors.field("/number", str(exc))]) from None
    return {"number": c.number, "valid": True, "province_code": c.province_code, "province": c.province,
            "sex": c.sex, "century": c.century, "birth_year": c.birth_year}
