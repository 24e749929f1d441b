"""Domain errors: refusals a domain module can name without knowing about HTTP frameworks.

A domain module (plain Python, no Flask) raises one of these; the app factory answers every one
as ``application/problem+json`` through one registered handler (:mod:`lscloud.web`), so no
function maps its exceptions by hand. Each class carries its HTTP status, a stable problem
``type`` slug and bilingual titles (the model is AWS Powertools' ``event_handler/exceptions.py``:
a small error tree carrying the status)::

    class SlotFull(errors.Conflict):
        type = "slot-full"
        title, title_vi = "Booking not possible", "Không đặt được lượt"

    raise SlotFull("slot 2026120314 is full", detail_vi="Khung giờ đã đầy.",
                   errors=[errors.field("/booking/slot", "slot is full", "khung giờ đã đầy")], suggestions=[...])

Errors that are not ours (the store's ``DoesNotExist``, a peer that does not answer) are mapped
once, by :func:`register`; the runtime registers its own (see :data:`FOREIGN`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from .problems import Problem

__all__ = ["DomainError", "Invalid", "InvalidParameter", "Unauthenticated", "Forbidden", "NotFound", "Conflict", "Gone", "TooLarge",
           "TooManyRequests", "Unavailable", "field", "register", "retry_later", "to_problem", "FOREIGN"]


def field(pointer: str, message: str, message_vi: str | None = None) -> dict[str, str]:
    """One ``errors[]`` item: the offending field (a JSON pointer or a parameter name) and why, in
    English and, with ``message_vi``, in Vietnamese (``field`` is what a client keys on)."""
    item = {"field": pointer, "message": message}
    if message_vi:
        item["message_vi"] = message_vi
    return item


class DomainError(Exception):
    """A refusal with a status. Subclasses set ``status``, ``type``, ``title`` and ``title_vi``.

    ``detail`` / ``detail_vi`` say what happened in this case (English, Vietnamese); ``errors``
    name the fields; ``headers`` go on the response (``Retry-After``); any other keyword is an
    extension member of the problem body (``current_state=...``).
    """

    status: int = 400
    type: str = "bad-request"
    title: str | None = None
    title_vi: str | None = None

    def __init__(self, detail: str | None = None, *, detail_vi: str | None = None,
                 errors: Iterable[Mapping[str, str]] | None = None, headers: Mapping[str, str] | None = None,
                 **extensions: Any):
        super().__init__(detail or self.title or self.type)
        self.detail = detail
        self.detail_vi = detail_vi
        self.errors = [dict(e) for e in (errors or [])]
        self.headers = dict(headers or {})
        self.extensions = extensions

    def to_problem(self) -> Problem:
        """The problem this error is answered with."""
        return Problem(self.status, self.type, self.title, self.detail, title_vi=self.title_vi,
                       detail_vi=self.detail_vi, errors=self.errors, headers=self.headers, **self.extensions)


class Invalid(DomainError):
    """The request is well-formed but breaks a rule (422); ``errors`` name the fields."""

    status, type = 422, "validation-failed"
    title, title_vi = "Validation failed", "Dữ liệu không hợp lệ"

    @classmethod
    def at(cls, pointer: str, message: str, message_vi: str | None = None, **extensions: Any) -> "Invalid":
        """One offending field: ``raise Invalid.at("/booking", "a booking needs submit: true",
        "Đặt lượt cần có submit: true.")``. Without ``message_vi`` the Vietnamese detail is the
        status's own sentence: English is never put where a Vietnamese reader looks."""
        return cls(message, detail_vi=message_vi, errors=[field(pointer, message, message_vi)], **extensions)


class InvalidParameter(DomainError):
    """A path or query parameter is malformed (400, ``invalid-parameter``, as for a bad query
    parameter); ``errors`` name it (``/code``, ``limit``). Subclasses may give a title per case."""

    status, type = 400, "invalid-parameter"
    title, title_vi = "Invalid parameter", "Tham số không hợp lệ"


class Unauthenticated(DomainError):
    status, type = 401, "unauthenticated"
    title, title_vi = "Authentication required", "Cần xác thực"


class Forbidden(DomainError):
    status, type = 403, "forbidden"
    title, title_vi = "Forbidden", "Không có quyền truy cập"


class NotFound(DomainError):
    status, type = 404, "not-found"
    title, title_vi = "Not found", "Không tìm thấy"


class Conflict(DomainError):
    status, type = 409, "conflict"
    title, title_vi = "Conflict", "Xung đột dữ liệu"


class PreconditionFailed(DomainError):
    """``If-Match`` named another version than the stored one (412): the caller read a record that
    has changed since; it reads it again and decides again."""

    status, type = 412, "precondition-failed"
    title, title_vi = "Precondition failed", "Điều kiện không thỏa"


class PreconditionRequired(DomainError):
    """A change that must name the version it was read at came without ``If-Match`` (RFC 6585 §3,
    428): without it a stale writer would silently undo a concurrent change."""

    status, type = 428, "precondition-required"
    title, title_vi = "If-Match required", "Cần gửi If-Match"


def if_match_required() -> PreconditionRequired:
    """The 428 for a change made without ``If-Match`` where one is required (a
    ``takes_if_match(required=True)`` view, or :func:`hold_to_version` on a record that exists)."""
    return PreconditionRequired(
        "This change names the version it was read at: send the record's ETag (from reading it) as If-Match.",
        detail_vi="Thay đổi này phải nêu phiên bản đã đọc: gửi ETag của bản ghi (khi đọc) trong If-Match.",
        errors=[field("If-Match", "required: the ETag the record was read with",
                      "bắt buộc: ETag của lần đọc bản ghi")])


def changed_since(current: int | None = None) -> PreconditionFailed:
    """The 412 for a change made to a version that is no longer the stored one (``current``, when
    known, is answered as ``current_version``): someone changed the record since it was read."""
    return PreconditionFailed(
        "The record has changed since it was read (If-Match): read it again and decide again.",
        detail_vi="Bản ghi đã thay đổi kể từ lần đọc (If-Match): hãy đọc lại rồi quyết định.",
        errors=[field("If-Match", "not the record's current version", "không phải phiên bản hiện tại")],
        **({} if current is None else {"current_version": current}))


def hold_to_version(read: int | None, current: int, *, exists: bool) -> None:
    """Hold a change to the version its caller read (``If-Match``; None: not sent) when ``current``
    is stored. Once the record ``exists`` the header is required (428), so that a second writer who
    read it earlier cannot silently undo the first; the first write of a record that does not exist
    yet replaces nobody's (made create-only by the caller) and needs none. Another version than
    ``current`` is a 412."""
    if read is None:
        if exists:
            raise if_match_required()
    elif read != current:
        raise changed_since(current)


class Gone(DomainError):
    status, type = 410, "gone"
    title, title_vi = "Gone", "Không còn tồn tại"


class TooLarge(DomainError):
    status, type = 413, "payload-too-large"
    title, title_vi = "Request body too large", "Nội dung yêu cầu quá lớn"


class TooManyRequests(DomainError):
    status, type = 429, "too-many-requests"
    title, title_vi = "Too many requests", "Quá nhiều yêu cầu"


class Unavailable(DomainError):
    """A dependency (a peer function, the store) does not answer: retry later (503, Retry-After)."""

    status, type = 503, "unavailable"
    title, title_vi = "Service unavailable", "Dịch vụ tạm thời không khả dụng"

    def __init__(self, detail: str | None = None, *, retry_after_s: int = 5, **kwargs: Any):
        headers = {"Retry-After": str(int(retry_after_s)), **dict(kwargs.pop("headers", None) or {})}
        super().__init__(detail, headers=headers, **kwargs)


# -- errors that are not ours ------------------------------------------------------------------------

FOREIGN: dict[type[BaseException], Callable[[BaseException], Problem]] = {}
"""Exception type -> problem factory, for exceptions raised by code that cannot subclass
:class:`DomainError` (the store, peers). Looked up by the exception's MRO, nearest first."""


def retry_later(exc: BaseException) -> Problem:
    """The answer to a platform dependency that did not answer (the object store, NATS): 503 with
    ``Retry-After``, nothing of the cause (the app logs it with the trace id)."""
    return Problem(503, headers={"Retry-After": "5"})


def register(exc_type: type[BaseException], factory: Callable[[BaseException], Problem]) -> None:
    """Answer every ``exc_type`` raised by a view with ``factory(exc)``: once, for every app."""
    FOREIGN[exc_type] = factory


def to_problem(exc: BaseException) -> Problem | None:
    """The problem for ``exc`` (a :class:`DomainError`, a :class:`Problem` or a registered type), else None."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, DomainError):
        return exc.to_problem()
    for klass in type(exc).__mro__:
        factory = FOREIGN.get(klass)
        if factory is not None:
            return factory(exc)
    return None

