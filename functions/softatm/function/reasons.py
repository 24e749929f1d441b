"""Why a transfer was aborted, in words a teller can read out: Vietnamese and English texts for the
known abort reasons (the banks' documented reason codes, docs/partner-banks.md, and the soft ATM's
own), next to the reason as it was given, which the answer keeps unchanged in ``abort_reason``.

A bank's ``reason`` is free text up to 200 characters; banks' cores send their codes in many
spellings ("insufficient funds", "INSUFFICIENT_FUNDS"), so a reason is matched against the bank
codes by its normal form (:func:`code_of`). The soft ATM records its own reasons exactly as spelt
here, so they are matched exactly: a bank's "Expired" or "insufficient float" is the bank's text,
not the soft ATM's expiry or the point's want of cash. A reason matching none is ``other``: a
generic text, the raw reason beside it.
"""

from __future__ import annotations

import re

from .refusals import DailyLimit, Expired, InsufficientFloat, NotAdmitted

OTHER = "other"

BANK_CODES: dict[str, tuple[str, str]] = {
    "insufficient-funds": ("Tài khoản của khách hàng không đủ số dư.",
                           "The customer's account does not hold enough funds."),
    "account-not-found": ("Ngân hàng không tìm thấy tài khoản.", "The bank found no such account."),
    "account-closed": ("Tài khoản đã đóng.", "The account is closed."),
    "account-blocked": ("Tài khoản đang bị phong tỏa hoặc tạm khóa.", "The account is blocked or frozen."),
    "customer-mismatch": ("Giấy tờ tùy thân không khớp với chủ tài khoản.",
                          "The ID number does not match the account holder."),
    "limit-exceeded": ("Vượt hạn mức giao dịch của ngân hàng.", "Above the bank's limit for this account."),
    "declined": ("Ngân hàng từ chối giao dịch.", "The bank declined the transfer."),
    "technical-error": ("Ngân hàng gặp lỗi kỹ thuật; khách hàng có thể thử lại sau.",
                        "The bank had a technical error; the customer may try again later."),
}
"""The reason codes a bank may send with a reject or an abort (docs/partner-banks.md)."""

_OWN: dict[str, tuple[str, str]] = {
    # the soft ATM's own reasons (expiry, refusals at admission) and the bare action when none was given
    Expired.type: ("Giao dịch đã hết hạn: ngân hàng hoặc giao dịch viên không trả lời kịp.",
                   "The transfer expired: the bank or the teller did not answer in time."),
    DailyLimit.type: (f"{DailyLimit.title_vi}.", DailyLimit.message),
    InsufficientFloat.type: (f"{InsufficientFloat.title_vi}.", InsufficientFloat.message),
    NotAdmitted.type: (f"{NotAdmitted.title_vi}.", NotAdmitted.message),
    "abort": ("Giao dịch đã bị hủy.", "The transfer was aborted."),
}

_KNOWN = {**BANK_CODES, **_OWN}
_ALIASES = {"reject": "declined"}   # a bank's reject without a reason is recorded as the bare action (exactly)
_GENERIC = ("Giao dịch đã bị hủy; lý do được ghi kèm theo (abort_reason).",
            "The transfer was aborted; the reason given is attached (abort_reason).")

_SEPARATORS = re.compile(r"[\s_\-]+")


def code_of(reason: str | None) -> str | None:
    """The soft ATM's own code ``reason`` is, exactly; else the bank code it spells (case, spaces,
    underscores and a final full stop aside); :data:`OTHER` for any other reason, None for none."""
    if reason is None:
        return None
    if reason in _OWN:
        return reason
    if reason in _ALIASES:
        return _ALIASES[reason]
    normal = _SEPARATORS.sub("-", reason.strip().rstrip(".").casefold()).strip("-")
    return normal if normal in BANK_CODES else OTHER


def explained(reason: str | None) -> dict:
    """The fields a transfer's answer gains for its ``abort_reason``: ``abort_reason_code`` and
    ``abort_message`` (``{"vi", "en"}``), both None when it has none."""
    code = code_of(reason)
    if code is None:
        return {"abort_reason_code": None, "abort_message": None}
    vi, en = _KNOWN.get(code, _GENERIC)
    return {"abort_reason_code": code, "abort_message": {"vi": vi, "en": en}}
