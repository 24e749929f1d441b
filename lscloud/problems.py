"""Problem details (RFC 9457): the one shape every HTTP error of every function takes.

A handler raises :class:`Problem`; the app factory turns it (and every other error, including
Werkzeug's 404/405/413 and unexpected exceptions) into ``application/problem+json`` with a
stable ``type`` URI, English ``title``/``detail``, Vietnamese ``title_vi``/``detail_vi``,
``errors[]`` pointing at offending fields, and the trace id so a caller's report finds the trace.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

TYPE_BASE = "https://errors.lscloud.langson.gov.vn/"
MEDIA_TYPE = "application/problem+json"

# status -> (slug, title, title_vi, detail, detail_vi): the defaults when a raiser gives less
_DEFAULTS: dict[int, tuple[str, str, str, str, str]] = {
    400: ("bad-request", "Bad request", "Yêu cầu không hợp lệ",
          "The request could not be understood.", "Không thể hiểu được yêu cầu."),
    401: ("unauthenticated", "Authentication required", "Cần xác thực",
          "A valid credential is required.", "Cần thông tin xác thực hợp lệ."),
    403: ("forbidden", "Forbidden", "Không có quyền truy cập",
          "Your role may not use this endpoint.", "Vai trò của bạn không được phép dùng chức năng này."),
    404: ("not-found", "Not found", "Không tìm thấy",
          "Nothing exists at this address.", "Không có tài nguyên nào tại địa chỉ này."),
    405: ("method-not-allowed", "Method not allowed", "Phương thức không được hỗ trợ",
          "This address does not accept that method.", "Địa chỉ này không chấp nhận phương thức đó."),
    409: ("conflict", "Conflict", "Xung đột dữ liệu",
          "The request conflicts with the current state.", "Yêu cầu xung đột với trạng thái hiện tại."),
    413: ("payload-too-large", "Request body too large", "Nội dung yêu cầu quá lớn",
          "The request body exceeds the size limit.", "Nội dung yêu cầu vượt quá giới hạn cho phép."),
    415: ("unsupported-media-type", "Unsupported media type", "Kiểu nội dung không được hỗ trợ",
          "This endpoint expects application/json.", "Chức năng này yêu cầu nội dung application/json."),
    422: ("validation-failed", "Validation failed", "Dữ liệu không hợp lệ",
          "Some of the request is not valid; errors[] names each field.",
          "Một số thông tin gửi lên chưa hợp lệ; vui lòng xem lại các trường được nêu."),
    429: ("too-many-requests", "Too many requests", "Quá nhiều yêu cầu",
          "Slow down and retry later.", "Vui lòng thử lại sau."),
    500: ("internal-error", "Internal error", "Lỗi hệ thống",
          "internal error", "Lỗi hệ thống nội bộ."),
    503: ("unavailable", "Service unavailable", "Dịch vụ tạm thời không khả dụng",
          "A dependency is unavailable; retry later.", "Một thành phần phụ thuộc đang không khả dụng; vui lòng thử lại sau."),
}


def type_uri(slug_or_uri: str) -> str:
    """``"not-found"`` -> the stable URI; a full URI is kept as given."""
    if "://" in slug_or_uri or slug_or_uri == "about:blank":
        return slug_or_uri
    return TYPE_BASE + slug_or_uri.lstrip("/")


def default_slug(status: int) -> str:
    return _DEFAULTS.get(status, ("error", "", "", "", ""))[0]


class Problem(Exception):
    """An HTTP error answered as problem+json.

    ``type`` is a slug (``"not-found"``) or a full URI; missing titles/details fall back to the
    status's defaults in both languages. ``errors`` is ``[{"field": "/json/pointer", "message": ...,
    "message_vi": ...}]`` (``message_vi`` where the raiser gave one: every body validation does).
    ``headers`` are added to the response (``Retry-After``, ``WWW-Authenticate``, ``Allow``);
    ``extensions`` become extra members of the body.
    """

    def __init__(self, status: int = 400, type: str | None = None, title: str | None = None,
                 detail: str | None = None, *, title_vi: str | None = None, detail_vi: str | None = None,
                 errors: Iterable[Mapping[str, str]] | None = None, headers: Mapping[str, str] | None = None,
                 **extensions: Any):
        slug, d_title, d_title_vi, d_detail, d_detail_vi = _DEFAULTS.get(
            status, ("error", "Error", "Lỗi", "The request failed.", "Yêu cầu không thành công."))
        self.status = int(status)
        self.type = type_uri(type or slug)
        self.title = title or d_title
        self.detail = detail or d_detail
        self.title_vi = title_vi or d_title_vi
        # a specific English detail without a Vietnamese one falls back to the status's sentence
        self.detail_vi = detail_vi or d_detail_vi
        self.errors = [dict(e) for e in (errors or [])]
        self.headers = dict(headers or {})
        self.extensions = extensions
        super().__init__(f"{self.status} {self.title}: {self.detail}")

    def to_dict(self, *, instance: str | None = None, trace_id: str | None = None) -> dict:
        body = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "title_vi": self.title_vi,
            "detail_vi": self.detail_vi,
            "errors": self.errors,
        }
        if instance is not None:
            body["instance"] = instance
        body["trace_id"] = trace_id
        for k, v in self.extensions.items():
            body.setdefault(k, v)
        return body

    def body(self, *, instance: str | None = None, trace_id: str | None = None) -> bytes:
        """:meth:`to_dict` as the body of an ``application/problem+json`` answer (UTF-8 JSON)."""
        # what a caller sent may come back in it (a field's name): a lone surrogate is escaped, not a 500
        return json.dumps(self.to_dict(instance=instance, trace_id=trace_id), ensure_ascii=False).encode(
            "utf-8", "backslashreplace")


def problem_response(problem: Problem | None = None, /, *, instance: str | None = None,
                     trace_id: str | None = None, **fields: Any):
    """A Flask response for ``problem`` (or for ``Problem(**fields)``).

    ``instance`` defaults to the request path as the caller addressed it (below the ingress's
    prefix: ``/directory/v1/units/99999`` through the local gateway, not the function's own
    ``/v1/units/99999``) and ``trace_id`` to the current trace, when a request / trace is active.
    """
    from flask import Response, has_request_context, request

    if problem is None:
        problem = Problem(**fields)
    if instance is None and has_request_context():
        from .web.origin import public_path

        instance = public_path(request.path)
    if trace_id is None:
        trace_id = current_trace_id()
    resp = Response(problem.body(instance=instance, trace_id=trace_id), status=problem.status, mimetype=MEDIA_TYPE)
    for k, v in problem.headers.items():
        resp.headers[k] = v
    return resp


def current_trace_id() -> str | None:
    """The active trace id (hex) from lscloud.telemetry when present, else from the OTel API."""
    try:
        from . import telemetry  # written by the bus/telemetry owner

        fn = getattr(telemetry, "current_trace_id", None)
        if fn is not None:
            return fn()
    except ImportError:
        pass
    try:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            return format(ctx.trace_id, "032x")
    except Exception:  # noqa: BLE001 - a trace id is a courtesy, never a failure
        pass
    return None


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details with Vietnamese title/detail extensions",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "title_vi": {"type": "string"},
        "detail_vi": {"type": "string"},
        "trace_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"},
                               "message_vi": {"type": "string"}},
            },
        },
    },
}
