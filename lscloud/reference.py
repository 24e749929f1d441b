"""Reference data looked up by a code (units, agencies, procedures): the answers every such lookup gives.

A code comes from the caller's URL, so it is checked before the store is asked: a malformed one is
a 400 naming ``/code``, one that names nothing is a 404 naming it, and data that was never seeded
is a 503 to retry later — each in both languages, by the noun of what is looked up::

    UNIT = reference.Code("unit", "đơn vị hành chính", units.valid_code, '"20" or a 5-digit ward code')
    doc = UNIT.get(Unit, code).data        # MalformedCode (400) or UnknownCode (404)

How the data is read (a document per item, a snapshot per list, a cache in front) stays with the
function that serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

from . import errors

__all__ = ["Code", "MalformedCode", "UnknownCode", "NotSeeded"]

M = TypeVar("M")


class MalformedCode(errors.InvalidParameter):
    """400: the code cannot be one of these (``expected`` says what one looks like)."""

    def __init__(self, noun: str, noun_vi: str, code: str, expected: str, *, field: str = "/code"):
        self.title = f"Malformed {noun} code"
        self.title_vi = f"Mã {noun_vi} không đúng định dạng"
        super().__init__(f"{code[:40]!r} is not a {noun} code: expected {expected}.",
                         detail_vi=f"Mã {noun_vi} không đúng định dạng.",
                         errors=[errors.field(field, f"expected {expected}")])


class UnknownCode(errors.NotFound):
    """404: a well-formed code that names nothing."""

    def __init__(self, noun: str, noun_vi: str, code: str, *, field: str = "/code"):
        self.title = f"{noun.capitalize()} not found"
        self.title_vi = f"Không tìm thấy {noun_vi}"
        super().__init__(f"No {noun} has code {code!r}.", detail_vi=f"Không có {noun_vi} nào mang mã {code!r}.",
                         errors=[errors.field(field, f"no {noun} with this code")])


class NotSeeded(errors.Unavailable):
    """503 (Retry-After 30): the reference data has not been loaded into the store yet (``lscloud seed``).
    A function subclasses it with its own ``title`` / ``title_vi``."""

    type = "not-seeded"
    title, title_vi = "Reference data not loaded", "Chưa nạp dữ liệu danh mục"

    def __init__(self, detail: str, *, detail_vi: str):
        super().__init__(detail, detail_vi=detail_vi, retry_after_s=30)


@dataclass(frozen=True)
class Code:
    """How one kind of reference item is coded and named (English, Vietnamese)."""

    noun: str
    noun_vi: str
    valid: Callable[[str], bool]
    expected: str  # what a code looks like, for the 400: 'upper-case letters, digits and dashes, e.g. HT-KS'

    def check(self, code: str, *, field: str = "/code") -> str:
        """``code`` if well formed, else :class:`MalformedCode`."""
        if not self.valid(code):
            raise MalformedCode(self.noun, self.noun_vi, code, self.expected, field=field)
        return code

    def get(self, model: type[M], code: str, *, field: str = "/code") -> M:
        """The item ``model.get(code)``, after :meth:`check`; :class:`UnknownCode` if there is none."""
        self.check(code, field=field)
        try:
            return model.get(code)  # type: ignore[attr-defined]
        except model.DoesNotExist:  # type: ignore[attr-defined]
            raise UnknownCode(self.noun, self.noun_vi, code, field=field) from None
