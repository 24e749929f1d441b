"""A shop's payment QR in the national VietQR format (NAPAS, on EMVCo's merchant-presented QR).

Built with the ``vietnam-qr-pay`` library (the Python port of the widely used ``vietnam-qr-pay``
package): a static QR (no amount: the buyer types it) for an inter-bank transfer to an account
(service ``QRIBFTTA``), the beneficiary bank named by its BIN. The bank list is the library's too,
so a bank that cannot receive a VietQR transfer is refused here rather than failing in a buyer's app.

Source of the bank list: ``vietnam-qr-pay`` 1.0.0 (PyPI; github.com/bangprovn/vietnam-qr-pay-python),
``vietnam_qr_pay/constants/banks.py``: each bank's ``viet_qr_status`` is a ``VietQRStatus`` —
``NOT_SUPPORTED = -1``, ``RECEIVE_ONLY = 0``, ``TRANSFER_SUPPORTED = 1``. A shop's QR only needs its
bank to *receive* (the buyer's bank sends), so receive-only banks (CB Bank, HSBC, Woori … 17 in
1.0.0) are accepted. Not checked against NAPAS's own member list: the library's is what we have.
"""

from __future__ import annotations

import io
import re

import segno
from unidecode import unidecode
from vietnam_qr_pay import BanksObject, QRPay

from lscloud import errors

PURPOSE_CHARS = 25       # what banking apps show of the transfer's content without cutting it
_ACCOUNT = re.compile(r"\d{6,19}")
RECEIVES = {0, 1}   # VietQRStatus.RECEIVE_ONLY, TRANSFER_SUPPORTED: a beneficiary bank need only receive


def banks() -> dict[str, dict]:
    """Banks that can receive a VietQR transfer (the shop's side of the payment), by BIN."""
    out = {}
    for bank in BanksObject.values():
        status = getattr(bank.viet_qr_status, "value", bank.viet_qr_status)
        if bank.bin and status in RECEIVES and not bank.deprecated:
            out[bank.bin] = {"bin": bank.bin, "code": getattr(bank.code, "value", bank.code),
                             "short_name": bank.short_name, "name": bank.name}
    return out


def bank(bin_: str, pointer: str) -> dict:
    found = banks().get(bin_)
    if found is None:
        raise errors.Invalid.at(pointer, f"{bin_!r} is not the BIN of a bank that can receive VietQR transfers",
                                f"{bin_!r} không phải mã BIN của ngân hàng nhận chuyển khoản VietQR.")
    return found


def purpose(text: str) -> str:
    """The transfer content: ASCII letters, digits and spaces (what every bank accepts)."""
    clean = re.sub(r"[^A-Za-z0-9 ]+", " ", unidecode(text or ""))
    return re.sub(r"\s+", " ", clean).strip()[:PURPOSE_CHARS].strip()


def payload(bank_bin: str, account: str, memo: str) -> str:
    """The VietQR string (EMVCo TLV with its CRC) for a transfer to ``account`` at ``bank_bin``."""
    if not _ACCOUNT.fullmatch(account or ""):
        raise errors.Invalid.at("/payment/account_number", "an account number is 6-19 digits",
                                "Số tài khoản gồm 6-19 chữ số.")
    bank(bank_bin, "/payment/bank_bin")
    return QRPay.init_viet_qr(bank_bin=bank_bin, bank_number=account, purpose=purpose(memo) or None).build()


def png(text: str, scale: int = 6) -> bytes:
    """The QR image (error correction M, a 4-module quiet zone) as PNG."""
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
