"""What the soft ATM refuses, as :mod:`lscloud.errors` subclasses: the app factory answers each as
problem+json with its status, type and titles; a domain module raises them without knowing HTTP."""

from __future__ import annotations

from typing import Any

from lscloud import errors

from . import ledger


class _Refusal(errors.DomainError):
    """A refusal whose Vietnamese detail is its title (the English detail says the particulars)."""

    def __init__(self, detail: str | None = None, **kwargs: Any):
        kwargs.setdefault("detail_vi", f"{self.title_vi}.")
        super().__init__(detail, **kwargs)


# -- transfers ---------------------------------------------------------------------------------------

class NotReady(_Refusal, errors.Conflict):
    type, title, title_vi = "not-ready", "Not ready", "Giao dịch đang được tiếp nhận"

    def __init__(self):
        super().__init__("The transfer is still being admitted; retry shortly.", headers={"Retry-After": "2"})


class Expired(_Refusal, errors.Conflict):
    type, title, title_vi = "expired", "Expired", "Giao dịch đã hết hạn"

    def __init__(self, state: str):
        super().__init__("The transfer expired before this request; it is aborted.", current_state=state)


class KeptChanging(_Refusal, errors.Conflict):
    type, title, title_vi = "concurrent-update", "Concurrent update", "Dữ liệu đang được cập nhật"

    def __init__(self):
        super().__init__("The transfer kept changing; retry.", headers={"Retry-After": "1"})


class CreateRefused(_Refusal, errors.Conflict):
    """A transfer that was created but refused at admission: the answer to its create (and to every
    resend of it) names why and carries the aborted transfer."""

    message = ""

    def __init__(self, transfer: dict, *, replayed: bool = False):
        super().__init__(self.message, transfer=transfer,
                         headers={"Idempotent-Replayed": "true"} if replayed else None)


class InsufficientFloat(CreateRefused):
    type, title, title_vi = "insufficient-float", "Not enough cash at the point", "Điểm không đủ tiền mặt"
    message = "The point does not hold enough cash for this withdrawal."


class DailyLimit(CreateRefused):
    type, title, title_vi = "daily-limit", "Daily limit reached", "Vượt hạn mức trong ngày"
    message = "The customer's daily limit with this bank would be exceeded."


class NotAdmitted(CreateRefused):
    type, title, title_vi = "not-admitted", "Not admitted", "Giao dịch không được tiếp nhận"
    message = "The transfer could not be admitted in time."


ADMISSION = {c.type: c for c in (InsufficientFloat, DailyLimit, NotAdmitted)}
"""Why a transfer was refused at admission (stored in the document) -> the refusal answered."""


class TransactionLimit(errors.Invalid):
    type, title, title_vi = "transaction-limit", "Above the per-transaction limit", "Vượt hạn mức mỗi giao dịch"

    def __init__(self, bank: str, limit: int):
        super().__init__(f"{bank} allows at most {limit} VND per transaction.",
                         detail_vi=f"Tối đa {limit} VND mỗi giao dịch.",
                         errors=[errors.field("/amount_vnd", f"at most {limit}")])


# -- points ------------------------------------------------------------------------------------------

class NoPoint(errors.Forbidden):
    type, title, title_vi = "no-point", "No soft ATM point", "Không có điểm giao dịch"

    def __init__(self):
        super().__init__("Your token names no post-office point (unit).",
                         detail_vi="Mã xác thực không gắn với điểm bưu điện.")


class WrongPoint(errors.Forbidden):
    type, title, title_vi = "wrong-point", "Not your point", "Không phải điểm của bạn"

    def __init__(self):
        super().__init__("Your token is for another point.", detail_vi="Mã xác thực dành cho điểm khác.")


class UnknownPoint(errors.NotFound):
    type, title, title_vi = "unknown-point", "Unknown point", "Không có điểm giao dịch này"


class NotASoftAtm(errors.Conflict):
    type, title, title_vi = "not-a-soft-atm", "Not a soft ATM point", "Điểm không cung cấp ATM mềm"

    def __init__(self, code: str):
        super().__init__(f"{code} does not offer the soft ATM.", detail_vi="Điểm bưu điện này không có ATM mềm.")


class DirectoryUnavailable(errors.Unavailable):
    type, title, title_vi = "directory-unavailable", "Directory unavailable", "Danh mục tạm thời không khả dụng"


# -- cash at a point ---------------------------------------------------------------------------------

class FloatLimit(_Refusal, errors.Conflict):
    type, title, title_vi = "float-limit", "Float limit", "Vượt hạn mức tiền mặt của điểm"


class CashInsufficient(_Refusal, errors.Conflict):
    type, title, title_vi = InsufficientFloat.type, InsufficientFloat.title, InsufficientFloat.title_vi


CASH = {c.type: c for c in (FloatLimit, CashInsufficient)}
"""Why a delivery or collection was refused (stored with the operation) -> the refusal answered."""


# -- banks -------------------------------------------------------------------------------------------

class UnknownBank(errors.NotFound):
    type, title, title_vi = "unknown-bank", "Unknown bank", "Ngân hàng chưa được đăng ký"


class KeySlotInUse(errors.Conflict):
    """A key slot the bank or our webhooks still need (the one that signs our webhooks, its only key)."""
    type, title, title_vi = "key-slot-in-use", "Key slot in use", "Khe khóa đang được dùng"


class KeySlotEmpty(errors.Conflict):
    type, title, title_vi = "key-slot-empty", "Key slot empty", "Khe khóa đang trống"


# -- settlement --------------------------------------------------------------------------------------

class BadDay(errors.DomainError):
    status, type, title, title_vi = 400, "bad-day", "Bad day", "Ngày không hợp lệ"

    def __init__(self):
        super().__init__("The day is a calendar date, YYYY-MM-DD, today or before.",
                         detail_vi="Ngày phải là ngày có thật, dạng YYYY-MM-DD, không sau hôm nay.",
                         errors=[errors.field("day", "a calendar date, YYYY-MM-DD, today or before")])


# -- webhooks to banks (answers to the event deliverer: 503 retries, 422 dead-letters) ---------------

class TransferUnreadable(errors.Unavailable):
    type, title = "transfer-unavailable", "Transfer not readable yet"


class NoSigningKey(errors.Invalid):
    type, title = "no-signing-key", "No key to sign with"


class BankUnreachable(errors.Unavailable):
    type, title = "bank-unreachable", "Bank unreachable"


class BankUnavailable(errors.Unavailable):
    type, title = "bank-unavailable", "Bank unavailable"


class BankRefused(errors.Invalid):
    type, title = "bank-refused", "Bank refused the webhook"


# a movement the ledger refuses where no caller turned it into one of the above
errors.register(ledger.Insufficient, lambda exc: CashInsufficient(str(exc), detail_vi="Điểm giao dịch không đủ tiền mặt.")
                .to_problem())
