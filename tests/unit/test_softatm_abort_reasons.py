"""The teller's text for a transfer's abort reason (functions/softatm/function/reasons.py)."""

from pathlib import Path

import pytest

from functions.softatm.function import reasons, transfers

DOC = Path(__file__).resolve().parents[2] / "docs" / "partner-banks.md"


@pytest.mark.parametrize("raw", ["insufficient-funds", "insufficient funds", "INSUFFICIENT_FUNDS",
                                 " Insufficient  Funds. "])
def test_a_known_reason_is_matched_whatever_its_spelling(raw):
    assert reasons.code_of(raw) == "insufficient-funds"
    assert reasons.explained(raw)["abort_message"] == {"vi": "Tài khoản của khách hàng không đủ số dư.",
                                                       "en": "The customer's account does not hold enough funds."}


def test_an_unknown_reason_gets_a_generic_text_and_none_gets_nothing():
    other = reasons.explained("customer left")
    assert other["abort_reason_code"] == "other"
    assert other["abort_message"]["vi"] and other["abort_message"]["en"]
    assert reasons.explained(None) == {"abort_reason_code": None, "abort_message": None}


def test_the_soft_atms_own_reasons_and_a_bare_reject_are_known():
    for own in ("expired", "daily-limit", "insufficient-float", "not-admitted", "abort"):
        assert reasons.code_of(own) == own
    assert reasons.code_of("reject") == "declined"


@pytest.mark.parametrize("raw", ["Expired", "EXPIRED.", "insufficient float", "Insufficient_Float", " abort "])
def test_a_banks_text_spelling_a_soft_atm_code_is_not_the_soft_atms_reason(raw):
    """The soft ATM records its own reasons exactly: a bank's "Expired" is not the teller/bank
    timeout, its "insufficient float" not the point's want of cash."""
    out = reasons.explained(raw)
    assert out["abort_reason_code"] == "other", raw
    assert "hết hạn" not in out["abort_message"]["vi"] and "tiền mặt" not in out["abort_message"]["vi"]


def test_the_view_keeps_the_raw_reason_beside_the_text():
    doc = {"id": "w-1", "kind": "withdrawal", "state": "ABORTED", "bank": "vcb", "point": "bd-06040",
           "amount_vnd": 1, "customer_id_number": "001099012345", "expires_at": "2026-01-01T00:00:00Z",
           "abort_reason": "Account_Closed"}
    out = transfers.view(doc)
    assert out["abort_reason"] == "Account_Closed" and out["abort_reason_code"] == "account-closed"
    assert out["abort_message"]["vi"] == "Tài khoản đã đóng."


def test_every_bank_code_is_documented_with_its_text():
    text = DOC.read_text(encoding="utf-8")
    for code, (vi, _) in reasons.BANK_CODES.items():
        assert f"`{code}`" in text and vi in text, code
