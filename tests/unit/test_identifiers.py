"""National identifiers (lscloud.identifiers): CCCD format and decoding, tax-code check digits."""

from datetime import date

import pytest
from hypothesis import given, strategies as st

from lscloud import identifiers as ids


def test_cccd():
    c = ids.parse_cccd("020095001234", today=date(2025, 1, 1))
    assert (c.province, c.sex, c.birth_year) == ("Lạng Sơn", "male", 1995)
    assert ids.parse_cccd("001305001234", today=date(2025, 1, 1)).sex == "female"
    assert ids.parse_cccd("001204001234", today=date(2025, 1, 1)).birth_year == 2004
    for bad in ("02009500123", "003095001234", "020230001234", "02009500123a"):
        with pytest.raises(ids.InvalidIdentifier):
            ids.parse_cccd(bad, today=date(2025, 1, 1))


def test_tax_codes():
    assert ids.normalise_tax_code("0100109106") == "0100109106"        # Viettel
    assert ids.normalise_tax_code("0100109106-001") == "0100109106-001"
    assert ids.normalise_tax_code("0100109106001") == "0100109106-001"
    for bad in ("0100109107", "010010910", "0100109106-000", "01001091061"):
        with pytest.raises(ids.InvalidIdentifier):
            ids.normalise_tax_code(bad)


def test_a_personal_identification_number_is_a_tax_code_since_july_2025():
    # Circular 86/2024/TT-BTC: individuals and household businesses use their 12-digit personal ID
    assert ids.normalise_tax_code("020095001234", today=date(2026, 1, 1)) == "020095001234"
    assert ids.normalise_tax_code("020 095 001 234", today=date(2026, 1, 1)) == "020095001234"
    assert ids.is_personal_tax_code("020095001234") and not ids.is_personal_tax_code("0100109106")
    # checked as a CCCD: an unknown province, or a birth year in the future, is refused
    for bad in ("003095001234", "020230001234", "02009500123a"):
        with pytest.raises(ids.InvalidIdentifier, match="personal identification number|tax code has"):
            ids.normalise_tax_code(bad, today=date(2026, 1, 1))
    # 10- and 13-digit codes keep their check digit
    assert ids.normalise_tax_code("0100109106") == "0100109106"
    assert ids.normalise_tax_code("0100109106001") == "0100109106-001"
    for bad in ("0100109107", "01001091061", "0100109106-000", "01001091060011"):
        with pytest.raises(ids.InvalidIdentifier):
            ids.normalise_tax_code(bad)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_tax_code_check_digit_property(first9):
    code = ids.with_check_digit(first9)
    if code is None:   # a remainder of 0 admits no check digit: every 10th digit is refused
        for d in "0123456789":
            with pytest.raises(ids.InvalidIdentifier):
                ids.normalise_tax_code(first9 + d)
    else:
        assert ids.normalise_tax_code(code) == code
        wrong = first9 + str((int(code[-1]) + 1) % 10)
        with pytest.raises(ids.InvalidIdentifier):
            ids.normalise_tax_code(wrong)
