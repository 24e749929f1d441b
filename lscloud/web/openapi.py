"""The OpenAPI 3.1 document of a function, built from its routes and their declarations.

Views declare what they answer with :func:`responds` and which query parameters they take with
:func:`query_params` (which also parses and validates them); ``@allow`` gives the security,
:func:`lscloud.web.bodies.validate_body` the request body (:func:`~lscloud.web.bodies.raw_body` and
:func:`~lscloud.web.bodies.body_limit` an upload's media types and size), and ``@idempotent`` /
:func:`lscloud.web.caching.takes_if_match` the request headers the runtime reads (``Idempotency-Key``,
``If-Match``). :func:`build_openapi` reads it all.
"""

from __future__ import annotations

import copy
import functools
import http
import inspect
import posixpath
import re
from typing import Any, Callable, Iterable, Mapping

from flask import Flask, g, request

from .. import auth, query, rulesyntax
from .. import roles as _roles
from ..context import AppState, app_state
from ..problems import MEDIA_TYPE, PROBLEM_SCHEMA, Problem
from ..errors import if_match_required
from .caching import IF_MATCH_ONCE_SET_PARAMETER, IF_MATCH_PARAMETER, IF_MATCH_REQUIRED_PARAMETER, not_a_version
from .pathparams import parameter_schema

__all__ = ["PAGE_SCHEMA", "OPENAPI_DOCUMENT_SCHEMA", "binary_schema", "responds",
           "query_params", "page_params", "invalid_query", "build_openapi"]

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
FORM = "application/x-www-form-urlencoded"


PAGE_SCHEMA: dict[str, Any] = {
    "title": "Page",
    "description": "One page of a list. Pass next_page_token back as page_token (with the same filters) "
                   "for the next page; null on the last page.",
    "type": "object",
    "additionalProperties": False,
    "required": ["items", "total", "next_page_token"],
    "properties": {
        "items": {"type": "array", "items": {}},
        "total": {"type": "integer", "minimum": 0, "description": "Items matching the filters, over all pages."},
        "next_page_token": {"type": ["string", "null"]},
    },
}
"""The runtime's list envelope ``{"items": [...], "total": n, "next_page_token": str | null}``;
``components/schemas/Page`` in every OpenAPI document that has a ``@responds(..., page=True)``."""


def _declare_once(view, attr: str, value, decorator: str):
    if getattr(view, attr, None) is not None:
        raise TypeError(f"{getattr(view, '__name__', view)!r} already has a @{decorator} declaration; use exactly one")
    setattr(view, attr, value)
    return view


def responds(schema: str | None, *, status: int = 200, page: bool = False, description: str | None = None,
             headers: Mapping[str, str] | None = None,
             also: Mapping[int, str] | Iterable[int] = (),
             errors_as: Mapping[str, str | None] | None = None,
             media: Mapping[str, str | Mapping | None] | None = None,
             binary: Iterable[str] = ()) -> Callable:
    """Document a view's success answer in ``/openapi.json`` (documentation: answers are not validated).

    - ``schema``: a file under ``schemas_dir`` (``"directory/unit.json"``), published under
      ``components/schemas`` with the same name as request schemas (``directory.unit``);
      ``None`` for an answer without a body (``204``).
    - ``status``: the success status (``200``, ``201``, ``202`` …).
    - ``page``: the body is the runtime's page envelope (:data:`PAGE_SCHEMA`) whose ``items``
      are ``schema``.
    - ``headers``: response headers sent with the answer, ``{"ETag": "what it is", ...}``.
    - ``also``: other bodiless statuses the view answers, ``{304: "Not modified"}`` (or just
      ``(304,)`` for the standard phrase). Errors need nothing here: every operation already
      documents ``default`` as ``application/problem+json``.
    - ``errors_as``: for a path whose errors follow another standard's format (Open311's
      ``errors`` list), its media types and their schema files (``None``: no schema), e.g.
      ``{"application/json": "reports/open311/errors.json", "text/xml": None}``; every error
      status of the operation is then documented so instead of as problem+json.
    - ``media``: more media types the success answer comes in, with their schema files (``None``:
      no schema), e.g. ``{"text/xml": None}`` beside ``schema``'s JSON (Open311's ``.xml`` paths);
      with ``schema=None``, every media type the answer may have. A value may also be the schema
      itself (a dict) for an answer whose shape is the runtime's own (the OpenAPI document).
    - ``binary``: media types the answer is a file in, its raw bytes (a photo, a PDF, a download),
      e.g. ``("image/jpeg", "image/png")``, ``("*/*",)`` for a file of any type: each documented as
      :func:`binary_schema`, which generators and explorers read as a file to save, not JSON.

    One ``@responds`` per view; the schema's existence is checked at start (:func:`check_access`).
    Example::

        @app.get("/v1/units")
        @allow("public")
        @responds("directory/unit.json", page=True, headers={"ETag": "Strong validator"}, also={304: "Not modified"})
        @query_params(("q", "Search names"), ("limit", "Page size", {"type": "integer"}))
        def list_units(): ...
    """
    if page and schema is None:
        raise TypeError("responds(page=True) needs the item schema")
    if not 100 <= int(status) <= 599:
        raise ValueError(f"bad status {status!r}")
    extra = dict(also) if isinstance(also, Mapping) else {int(code): "" for code in also}
    if status in extra:
        raise ValueError(f"status {status} is both the answer and in also=")
    declared = {
        "schema": schema, "status": int(status), "page": bool(page),
        "description": description or http.HTTPStatus(int(status)).phrase,
        "headers": dict(headers or {}),
        "also": {int(code): (text or http.HTTPStatus(int(code)).phrase) for code, text in extra.items()},
        "errors_as": dict(errors_as) if errors_as else None,
        "media": dict(media or {}),
        "binary": tuple(binary),
    }
    if set(declared["binary"]) & set(declared["media"]) or (schema and "application/json" in declared["binary"]):
        raise ValueError("a media type is both binary and described by a schema")

    def decorate(view):
        return _declare_once(view, "__lscloud_response__", declared, "responds")

    return decorate


def query_params(*params: "query.Param | tuple") -> Callable:
    """Declare a view's query parameters: documented in ``/openapi.json`` *and* parsed and
    validated from the same declaration before the view runs (:mod:`lscloud.query`).

    Each parameter is a :class:`lscloud.query.Param` or ``(name, description[, json_schema])``;
    the schema defaults to a string of at most :data:`lscloud.query.MAX_CHARS` characters.
    ``type`` (``string``, ``integer``, ``number``, ``boolean``), ``enum``, ``minimum`` /
    ``maximum``, ``pattern``, ``maxLength``, ``format: date`` / ``date-time`` and ``default`` are
    honoured. The typed values land in ``flask.g.query`` (``None`` for an absent parameter
    without a default); any bad one answers 400 ``invalid-parameter`` with ``errors[].field`` =
    the parameter's name. Put it under ``@allow`` (so callers are authenticated first) and above
    ``@idempotent`` (so a bad query never claims a key). One ``@query_params`` per view::

        @query_params(("q", "Search names"),
                      ("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}))
    """
    declared = tuple(query.as_param(p) for p in params)
    names = [p.name for p in declared]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"query parameter {name!r} declared twice")

    def decorate(view):
        if getattr(view, "__lscloud_query_params__", None) is not None:
            raise TypeError(f"{getattr(view, '__name__', view)!r} already has a @query_params declaration; use exactly one")

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            g.query = query.parse(declared, request.args)
            return view(*args, **kwargs)

        wrapper.__lscloud_query_params__ = tuple(p.openapi() for p in declared)
        wrapper.__lscloud_query__ = declared  # checked on first use (query.Param.check), by tests and preload
        return wrapper

    return decorate


def page_params(*, default_limit: int = 50, max_limit: int = 100, offset: bool = False) -> tuple["query.Param", ...]:
    """The paging parameters of a list route: ``limit`` (1 to ``max_limit``, default
    ``default_limit``), ``page_token`` and, for lists served from a snapshot, ``offset``."""
    out = [query.Param("limit", f"Page size, 1 to {max_limit} (default {default_limit}).",
                       {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit}),
           query.Param("page_token", "The next_page_token of the previous page (same filters).",
                       {"type": "string", "maxLength": query.MAX_CHARS})]
    if offset:
        out.append(query.Param("offset", "Start at this position instead of a page_token.",
                               {"type": "integer", "minimum": 0, "maximum": 1_000_000}))
    return tuple(out)


def invalid_query(errors: list[dict]) -> Problem:
    """The 400 problem for bad query parameters (``errors[].field`` = each parameter's name)."""
    names = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return Problem(400, "invalid-parameter", "Invalid query parameter",
                   "; ".join(e["message"] for e in errors) + ".",
                   title_vi="Tham số truy vấn không hợp lệ", detail_vi=f"Tham số truy vấn không hợp lệ: {names}.",
                   errors=errors)


def _component_name(file: str) -> str:
    stem = file[:-5] if file.endswith(".json") else file
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem.replace("/", "."))


_DEFS = re.compile(r"^/\$defs/([^/]+)")


def _defs_component(component: str, fragment: str) -> str:
    """A file's ``$defs/NAME`` becomes its own component ``<file's component>.defs.NAME``: client
    generators resolve ``#/components/schemas/X`` but not a pointer into one."""
    m = _DEFS.match(fragment)
    if not m:
        return "#/components/schemas/" + component + fragment
    return "#/components/schemas/" + component + ".defs." + m.group(1) + fragment[m.end():]


def _rewrite_refs(node: Any, here: str, state: AppState, wanted: set[str]) -> Any:
    """Turn file ``$ref``s into ``#/components/schemas/...`` refs (and note which files are needed);
    an array without ``items`` says so explicitly (``items: {}``, the same meaning) for generators."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("$id", "$schema"):
                continue
            if k == "$ref" and isinstance(v, str) and not v.startswith("#"):
                target, _, fragment = v.partition("#")
                name = posixpath.normpath(posixpath.join(posixpath.dirname(here), target)) if target else here
                if name in state.schemas.documents:
                    wanted.add(name)
                    out[k] = _defs_component(_component_name(name), fragment)
                    continue
            if k == "$ref" and isinstance(v, str) and v.startswith("#"):
                out[k] = _defs_component(_component_name(here), v[1:])
                continue
            out[k] = _rewrite_refs(v, here, state, wanted)
        if out.get("type") == "array" and "items" not in out and "prefixItems" not in out:
            out["items"] = {}
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, here, state, wanted) for v in node]
    return node


def _ref(file: str) -> dict:
    return {"$ref": "#/components/schemas/" + _component_name(file)}


# status -> (slug of the example, when the runtime answers it: en / vi)
_PROBLEMS: dict[int, tuple[str, str, str]] = {
    400: ("invalid-parameter", "a malformed body or query or path parameter (errors[] names each field), "
                               "or a missing or malformed Idempotency-Key",
          "nội dung, tham số truy vấn hoặc đường dẫn không hợp lệ (errors[] nêu từng trường), "
          "hoặc thiếu hay sai Idempotency-Key"),
    401: ("unauthenticated", "no valid credential (bearer token or partner signature)",
          "thiếu thông tin xác thực hợp lệ (mã truy cập hoặc chữ ký đối tác)"),
    403: ("forbidden", "the caller's role or scope may not do this", "vai trò hoặc phạm vi của người gọi không được phép"),
    404: ("not-found", "nothing exists at this address (or the caller may not know it exists)",
          "không tìm thấy (hoặc người gọi không được biết nó tồn tại)"),
    409: ("conflict", "conflicts with the current state, or an idempotency key reused with another body",
          "xung đột với trạng thái hiện tại, hoặc khóa chống lặp dùng lại với nội dung khác"),
    412: ("precondition-failed", "If-Match names no version, or not the stored one (read the record again)",
          "If-Match không chỉ một phiên bản, hoặc không phải phiên bản đang lưu (hãy đọc lại bản ghi)"),
    413: ("payload-too-large", "the request body is over the size limit", "nội dung yêu cầu vượt quá giới hạn"),
    415: ("unsupported-media-type", "the body is not application/json", "nội dung không phải application/json"),
    422: ("validation-failed", "the body does not match its schema (errors[] names each field by JSON pointer)",
          "nội dung không đúng lược đồ (errors[] nêu từng trường theo JSON pointer)"),
    428: ("precondition-required", "If-Match is missing: this change names the version it was read at",
          "thiếu If-Match: thay đổi này phải nêu phiên bản đã đọc"),
    503: ("unavailable", "a dependency is unavailable; retry after Retry-After",
          "một thành phần phụ thuộc tạm thời không khả dụng; thử lại sau Retry-After"),
}


def _problem_response(status: int | None) -> dict:
    """A documented problem+json answer with a bilingual description and an example body."""
    schema = {"$ref": "#/components/schemas/Problem"}
    if status is None:
        return {"description": "Any other error, as problem details (RFC 9457) / Lỗi khác, theo RFC 9457",
                "content": {MEDIA_TYPE: {"schema": schema}}}
    slug, en, vi = _PROBLEMS[status]
    if status in (412, 428):  # what if_match_version answers: the status has no runtime-wide default title
        said = not_a_version() if status == 412 else if_match_required()
        sample = said.to_problem().to_dict(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    else:
        sample = Problem(status, slug).to_dict(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    if status in (400, 422):
        sample["errors"] = [{"field": "/amount_vnd" if status == 422 else "limit",
                             "message": "must be at least 1" if status == 400 else "1 is less than the minimum of 50000"}]
    return {"description": f"{en} / {vi}", "content": {MEDIA_TYPE: {"schema": schema, "example": sample}}}


def _problems(*, public: bool, has_params: bool, has_body: bool, idempotent: bool, if_match: bool | str = False,
              raw: tuple[str, ...] | None = None, limit: int = 0) -> dict:
    """The problem statuses the runtime itself may answer for an operation of this shape (a
    function's own refusals add 404/409/… of their kind: always under these statuses or ``default``).
    ``has_params``: a path or query parameter (a bad one is a 400); ``idempotent``: the view is
    ``@idempotent`` (a missing or malformed key is a 400, a key reused or in progress a 409);
    ``if_match``: the view reads ``If-Match`` (a bad or stale one is a 412, never a 400; a missing
    one a 428 when ``"required"``, or ``"once-set"`` and the record exists); ``raw``:
    the media types of a :func:`~lscloud.web.bodies.raw_body` view (``()``: any, so never a 415),
    whose 413/415/422 then say what its body is refused for, ``limit`` its size limit in bytes."""
    codes = [404, 503]
    if if_match:
        codes.append(412)
    if if_match in ("required", "once-set"):
        codes.append(428)
    if has_params or has_body or idempotent:
        codes.append(400)
    if not public:
        codes += [401, 403]
    if has_body:
        codes += [413, 422] + ([] if raw == () else [415])
    if has_body or idempotent:
        codes.append(409)
    out = {str(c): _problem_response(c) for c in sorted(set(codes))}
    if has_body and raw is not None:
        for code, (en, vi) in _raw_refusals(raw, limit).items():
            if code in out:
                out[code]["description"] = f"{en} / {vi}"
    return out


def _size(n: int) -> tuple[str, str]:
    """``n`` bytes as people read it, in English and Vietnamese (``8 MiB (8388608 bytes)``)."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit} ({n} bytes)", f"{n // size} {unit} ({n} byte)"
    return f"{n} bytes", f"{n} byte"


def _raw_refusals(raw: tuple[str, ...], limit: int) -> dict[str, tuple[str, str]]:
    """What a raw body's 413/415/422 mean for this operation (the JSON wording would mislead)."""
    if _a_form(raw):
        refused = "a field of the form is not valid", "một trường của biểu mẫu không hợp lệ"
    elif raw:
        refused = ("the body is not an acceptable file of its Content-Type (errors[] names the field, e.g. `body`)",
                   "nội dung không phải tệp hợp lệ đúng kiểu Content-Type đã khai (errors[] nêu trường, ví dụ `body`)")
    else:
        refused = "the body is not acceptable (errors[] names the field)", "nội dung không hợp lệ (errors[] nêu trường)"
    en, vi = _size(limit)
    out = {"422": refused, "413": (f"the request body is over {en}", f"nội dung yêu cầu vượt quá {vi}")}
    if raw:
        types = ", ".join(raw)
        out["415"] = (f"the body's Content-Type is not one of {types} (multipart/form-data is not taken)",
                      f"kiểu nội dung (Content-Type) không thuộc {types} (không nhận multipart/form-data)")
    return out


def _a_form(raw: tuple[str, ...]) -> bool:
    return bool(raw) and set(raw) <= {FORM}


def _raw_request_body(raw: tuple[str, ...], limit: int) -> dict:
    """The ``requestBody`` of a :func:`~lscloud.web.bodies.raw_body` view: the body is the file itself,
    one entry per media type it takes (``*/*`` for any). As OpenAPI 3.1 describes raw binary data, its
    schema has no ``type`` (raw bytes are outside JSON's types) nor ``contentEncoding`` (nothing is
    base64-encoded); ``contentMediaType`` repeats the key for tools that read the schema alone, and
    ``maxLength`` counts the octets the runtime takes (the view's ``body_limit``, else the app's)."""
    content: dict[str, Any] = {}
    for media_type in raw or ("*/*",):
        if media_type == FORM:
            # the view reads its fields itself (none is declared): any name, a repeated one as a list
            content[media_type] = {"schema": {
                "type": "object",
                "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                "description": "Form fields (UTF-8); a repeated field as a list / Các trường biểu mẫu (UTF-8); "
                               "trường lặp lại là một danh sách"}}
        elif media_type == "*/*":
            content[media_type] = {"schema": {"maxLength": limit}}
        else:
            content[media_type] = {"schema": {"contentMediaType": media_type, "maxLength": limit}}
    en, vi = _size(limit)
    if _a_form(raw):
        what = f"A form ({FORM})", f"Biểu mẫu ({FORM})"
    elif raw:
        what = (f"The file itself as the body, sent with its Content-Type ({', '.join(raw)}), not multipart/form-data",
                f"Nội dung là chính tệp, gửi kèm Content-Type của tệp ({', '.join(raw)}), không dùng multipart/form-data")
    else:
        what = "The body as is, of any media type", "Nội dung giữ nguyên, kiểu bất kỳ"
    return {"description": f"{what[0]}, at most {en}. / {what[1]}, tối đa {vi}.", "required": True,
            "content": content}


def binary_schema(media_type: str) -> dict:
    """The schema of an answer that is a file's raw bytes: ``{"type": "string", "format": "binary"}``,
    what client generators (a ``File``, bytes) and API explorers (a download) recognise, with
    OpenAPI 3.1's ``contentMediaType`` naming the file's type (none for ``*/*``: any type). Unlike an
    upload's body (:func:`_raw_request_body`) it keeps the JSON ``type``: generators type an answer
    from it, and without one they hand the caller nothing (an untyped ``None``)."""
    schema = {"type": "string", "format": "binary"}
    if "*" not in media_type:
        schema["contentMediaType"] = media_type
    return schema


OPENAPI_DOCUMENT_SCHEMA: dict[str, Any] = {
    "title": "OpenAPIDocument",
    "description": "An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0; its JSON Schema: "
                   "https://spec.openapis.org/oas/3.1/schema/2022-10-07): this function's own description.",
    "type": "object",
    "required": ["openapi", "info", "paths"],
    "properties": {"openapi": {"type": "string", "pattern": "^3\\.1\\.[0-9]+$"},
                   "info": {"type": "object"}, "paths": {"type": "object"}},
}
"""The answer of every function's ``GET /openapi.json`` (an inline schema: what the document is, is
the OpenAPI specification's, not one of the function's schema files)."""


def _body_limit(view, settings) -> int:
    """The body size limit the runtime applies to ``view`` (as :func:`lscloud.web.create_app` reads it)."""
    limit = getattr(view, "__lscloud_max_body__", None)
    if isinstance(limit, str):  # a setting's name (body_limit("blob_max_bytes"))
        limit = getattr(settings, limit)
    return int(settings.max_body_bytes if limit is None else limit)


def _responses(declared: dict | None, wanted: set[str]) -> dict:
    """The operation's ``responses``: the ``@responds`` declaration (else a bare ``2XX``) and the
    runtime's problem+json ``default``."""
    problem = _problem_response(None)
    if declared is None:
        return {"2XX": {"description": "Success"}, "default": problem}
    answer: dict[str, Any] = {"description": declared["description"]}
    if declared["headers"]:
        answer["headers"] = {name: ({"description": text} if text else {}) | {"schema": {"type": "string"}}
                             for name, text in declared["headers"].items()}
    if declared["schema"]:
        wanted.add(declared["schema"])
        schema = _ref(declared["schema"])
        if declared["page"]:
            schema = {"allOf": [{"$ref": "#/components/schemas/Page"},
                                {"properties": {"items": {"type": "array", "items": schema}}}]}
        answer["content"] = {"application/json": {"schema": schema}}
    for media_type, schema_file in declared["media"].items():
        if isinstance(schema_file, Mapping):
            answer.setdefault("content", {})[media_type] = {"schema": copy.deepcopy(dict(schema_file))}
            continue
        if schema_file:
            wanted.add(schema_file)
        answer.setdefault("content", {})[media_type] = {"schema": _ref(schema_file)} if schema_file else {}
    for media_type in declared.get("binary", ()):
        answer.setdefault("content", {})[media_type] = {"schema": binary_schema(media_type)}
    out = {str(declared["status"]): answer}
    for code, text in sorted(declared["also"].items()):
        out[str(code)] = {"description": text}
        if code >= 400:  # an error is a problem body, whatever the view declared
            out[str(code)]["content"] = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"},
                                                      "example": Problem(code).to_dict(trace_id=None)}}
    out["default"] = problem
    return out


def _errors_as(responses: dict, media: Mapping[str, str | None], wanted: set[str]) -> None:
    """Re-document every error answer (and ``default``) in the operation's own error format."""
    content: dict[str, Any] = {}
    for media_type, schema_file in media.items():
        if schema_file:
            wanted.add(schema_file)
        content[media_type] = {"schema": _ref(schema_file)} if schema_file else {}
    for code, answer in responses.items():
        if code == "default" or code[0] in "45":
            answer["content"] = content


_NO_EXAMPLE = object()


def _example(state: AppState, name: str) -> Any:
    """The request body example of schema file ``name``: its own ``examples`` or one built from it,
    shown only when the function's validator accepts it (:mod:`lscloud.web.examples`)."""
    from .examples import valid_example

    cache = state.__dict__.setdefault("_openapi_examples", {}) if hasattr(state, "__dict__") else {}
    if name not in cache:
        doc = state.schemas.documents[name]
        resolver = state.schemas.registry.resolver(base_uri=doc.get("$id", ""))
        ok, value = valid_example(doc, lambda instance: state.schemas.errors(name, instance), resolver)
        cache[name] = value if ok else _NO_EXAMPLE
    return cache[name]


_SUMMARY_MAX = 120
_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)(?<!\bvs)[.?!](?=\s|$)")   # not "e.g." nor "i.e."


def _summarize(doc: str) -> tuple[str, str]:
    """``(summary, rest)`` of a view's docstring. The summary is the first sentence of its first
    paragraph, joined across wrapped lines (a first line alone is cut mid-phrase), at most
    ``_SUMMARY_MAX`` characters on a word boundary; ``rest`` is what the summary does not say
    whole (the whole docstring when the summary is shortened), for the description."""
    blocks = re.split(r"\n\s*\n", doc)
    first = " ".join(line.strip() for line in blocks[0].splitlines())
    end = _SENTENCE_END.search(first)
    summary = first[:end.end()] if end else first
    if len(summary) > _SUMMARY_MAX:
        summary = summary[:_SUMMARY_MAX].rsplit(" ", 1)[0].rstrip(",;:(") + " …"
    return (summary, "\n\n".join(blocks[1:]).strip()) if summary == first else (summary, doc)


def _describe(rest: str, access) -> str:
    """The operation's description: what the summary leaves out of the docstring, then who may call
    it in English and Vietnamese (from the role registry)."""
    who = ""
    if access is not None:
        if access.public:
            who = "**Who may call / Ai được gọi:** anyone / mọi người"
        elif access.eventing:
            who = "**Who may call / Ai được gọi:** the platform's event delivery / bộ chuyển sự kiện của nền tảng"
        else:
            lines = []
            for name in access.roles:
                role = _roles.REGISTRY.get(name)
                lines.append(f"- `{name}`: {role.en} / {role.vi}" if role else f"- `{name}`")
            if access.partner:
                role = _roles.REGISTRY.get(_roles.PARTNER)
                lines.append(f"- `{_roles.PARTNER}` (signed request / yêu cầu có chữ ký)"
                             + (f": {role.en} / {role.vi}" if role else ""))
            who = "**Who may call / Ai được gọi:**\n\n" + "\n".join(lines)
    return "\n\n".join(part for part in (rest, who) if part)


def build_openapi(app: Flask) -> dict:
    """An OpenAPI 3.1 document from the app's routes and their declarations: ``@allow``,
    :func:`validate_body`, :func:`responds`, :func:`query_params`, the path's own parameters, and
    the headers ``@idempotent`` and :func:`takes_if_match` read (with ``If-Match``'s 412)."""
    state = app_state(app)
    info = {"title": state.openapi_info.get("title", f"lscloud {state.name}"),
            "version": state.openapi_info.get("version", "1.0.0")}
    own = state.openapi_info.get("description")
    info["description"] = (own + "\n\n" if own else "") + (
        f"The `{state.name}` function of Lạng Sơn Cloud. Errors are `application/problem+json` (RFC 9457) "
        "with `title`/`detail` in English and `title_vi`/`detail_vi` in Vietnamese, and `errors[]` naming each "
        f"bad field.\n\nHàm `{state.name}` của Lạng Sơn Cloud. Lỗi trả về theo `application/problem+json` "
        "(RFC 9457), có `title_vi`/`detail_vi` tiếng Việt và `errors[]` nêu từng trường sai.")
    paths: dict[str, dict] = {}
    wanted: set[str] = set()
    page_used = False
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        access = auth.access_of(view)
        path = rulesyntax.openapi_path(rule.rule)
        params = [{"name": m.group("name"), "in": "path", "required": True,
                   "schema": parameter_schema(rulesyntax.converter(app.url_map, m), m.group("converter"))}
                  for m in rulesyntax.parameters(rule.rule)]
        doc = inspect.cleandoc(view.__doc__ or "")
        summary, rest = _summarize(doc) if doc else (rule.endpoint, "")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {"operationId": f"{rule.endpoint}_{method.lower()}".replace(".", "_"),
                                  "summary": summary}
            description = _describe(rest, access)
            if description:
                op["description"] = description
            parameters = params + [dict(q) for q in getattr(view, "__lscloud_query_params__", ())]
            has_params = bool(parameters)
            if_match = getattr(view, "__lscloud_if_match__", False)
            # header parameters last: path, query, header; copies, as a consumer may edit the document
            headers = (getattr(view, "__lscloud_idempotency_header__", None),
                       {"required": IF_MATCH_REQUIRED_PARAMETER, "once-set": IF_MATCH_ONCE_SET_PARAMETER}.get(
                           if_match, IF_MATCH_PARAMETER) if if_match else None)
            parameters += [copy.deepcopy(h) for h in headers if h is not None]
            if parameters:
                op["parameters"] = parameters
            if access is not None:
                op["x-lscloud-access"] = access.as_dict()
                if access.public:
                    op["security"] = []
                elif access.eventing:
                    op["security"] = [{"eventDelivery": []}]
                else:
                    op["security"] = ([{"bearer": []}] if access.roles else []) + \
                                     ([{"partnerSignature": []}] if access.partner else [])
            schema = getattr(view, "__lscloud_body_schema__", None)
            if schema and method in _BODY_METHODS:
                wanted.add(schema)
                media: dict[str, Any] = {"schema": _ref(schema)}
                found = _example(state, schema)
                if found is not _NO_EXAMPLE:
                    media["example"] = found
                content = {"application/json": media}
                if getattr(view, "__lscloud_files__", False):
                    from .bodies import JSON_PART, MULTIPART

                    content[MULTIPART] = {
                        "schema": {"type": "object", "required": [JSON_PART],
                                   "properties": {JSON_PART: _ref(schema)},
                                   "additionalProperties": {"type": "string", "format": "binary"},
                                   "description": f"The JSON body in the field {JSON_PART!r}, its files beside it."},
                        "encoding": {JSON_PART: {"contentType": "application/json"}}}
                op["requestBody"] = {"required": not getattr(view, "__lscloud_body_optional__", False),
                                     "content": content}
            raw = getattr(view, "__lscloud_raw_body__", None)
            raw = tuple(raw) if raw is not None and "requestBody" not in op and method in _BODY_METHODS else None
            limit = _body_limit(view, state.settings)
            if raw is not None:
                op["requestBody"] = _raw_request_body(raw, limit)
            declared = getattr(view, "__lscloud_response__", None)
            op["responses"] = _responses(declared, wanted)
            if not (access is not None and access.eventing):
                problems = _problems(public=access is None or access.public, has_params=has_params,
                                     has_body="requestBody" in op,
                                     idempotent=bool(getattr(view, "__lscloud_idempotent__", False)),
                                     if_match=if_match, raw=raw, limit=limit)
                mine = op["responses"]
                default = mine.pop("default")
                op["responses"] = {**mine, **{k: v for k, v in problems.items() if k not in mine}, "default": default}
            if declared and declared.get("errors_as"):
                _errors_as(op["responses"], declared["errors_as"], wanted)
            page_used = page_used or bool(declared and declared["page"])
            paths.setdefault(path, {})[method.lower()] = op
    components: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    if page_used:
        components["Page"] = PAGE_SCHEMA
    done: set[str] = set()
    while wanted - done:
        name = sorted(wanted - done)[0]
        done.add(name)
        schema = _rewrite_refs(state.schemas.documents[name], name, state, wanted)
        for def_name, definition in (schema.pop("$defs", None) or {}).items():
            components[f"{_component_name(name)}.defs.{def_name}"] = definition
        components[_component_name(name)] = schema
    return {
        "openapi": "3.1.0",
        "info": info,
        "x-lscloud-roles": {name: role.as_dict() for name, role in _roles.REGISTRY.items()},
        # no jsonSchemaDialect: OpenAPI 3.1's default (its base dialect, JSON Schema 2020-12 plus the OAS
        # vocabulary) is what the schemas are; explorers such as Swagger UI support only the default
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "A JWT whose `role` claim is one of the platform's roles "
                                          "(lscloud/roles.py); each operation's `x-lscloud-access` "
                                          "names the roles it admits.\n\n" + "\n".join(
                                              f"- `{r.name}`: {r.en} / {r.vi}" for r in _roles.REGISTRY.values()
                                              if r.credential == "token")},
                "eventDelivery": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                  "description": "Event deliveries only: the OIDC token Knative Eventing presents "
                                                 "(authentication-oidc), or the local dispatcher's token; audience = "
                                                 "this function (see lscloud.auth.verify_event_sender)"},
                "partnerSignature": {"type": "apiKey", "in": "header", "name": auth.SIGNATURE_HEADER,
                                     "description": "HMAC-SHA256 partner signature over method, path, timestamp, "
                                                    "nonce and body hash (see lscloud.auth.canonical)"},
            },
        },
    }
