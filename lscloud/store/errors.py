"""The store's exception tree (PynamoDB-style: errors carry a cause code)."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every store error. ``cause`` is a stable machine-readable code."""

    cause = "store_error"

    def __init__(self, message: str = "", *, cause: str | None = None, key: str | None = None):
        super().__init__(message or self.__class__.__doc__ or self.cause)
        if cause:
            self.cause = cause
        self.key = key


class DoesNotExist(StoreError):
    """No object at that key."""

    cause = "not_found"


class ConditionalCheckFailed(StoreError):
    """A conditional write lost: the object exists already (create-only) or changed since it was read."""

    cause = "conditional_check_failed"


class InvalidKey(StoreError, ValueError):
    """A key part is empty, too long, or could walk the key space."""

    cause = "invalid_key"


class StoreUnavailable(StoreError):
    """The object store did not answer (network, 5xx after retries)."""

    cause = "unavailable"


class BlobRejected(StoreError):
    """A blob was refused on the way in (cause: too_large, unsupported_media_type, media_type_mismatch, empty).
    ``message_vi``: why, in Vietnamese, for the person whose file it was."""

    cause = "blob_rejected"
    _VI = {"too_large": "tệp vượt quá dung lượng cho phép", "empty": "tệp rỗng",
           "unsupported_media_type": "loại tệp này không được nhận",
           "media_type_mismatch": "nội dung tệp không khớp với loại tệp đã khai"}

    @property
    def message_vi(self) -> str:
        return self._VI.get(self.cause, "tệp không hợp lệ")


class IntegrityError(StoreError):
    """What the store returned does not match what was written (a blob whose bytes fail their sha256)."""

    cause = "integrity"
