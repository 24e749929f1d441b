"""Request bodies: the size limit, strict JSON, JSON Schema validation, raw (non-JSON) bodies.

- :func:`json_body` parses strictly (:mod:`lscloud.strictjson`: bounded nesting, no ``NaN`` /
  ``Infinity``, no duplicate keys);
- :func:`validate_body` checks the body against a schema file (the dialect of
  :mod:`lscloud.validation`: ``integer`` is an integer literal, patterns are ECMA-262) and reports
  every error with a JSON pointer;
- :func:`raw_body` lets a view take another media type (uploads, CloudEvents in binary mode),
  :func:`body_limit` raises or lowers one view's size limit, :func:`before_body` refuses a
  request (a caller over its rate limit) before its body is read;
- ``validate_body(schema, files=True)`` also takes the JSON body with its files in one
  ``multipart/form-data`` request (:data:`JSON_PART` and file parts: :class:`FilePart` in
  ``flask.g.files``), so a client sends a record and its attachments in one round trip.
"""

from __future__ import annotations

import functools
import itertools
import io
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from flask import g, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import strictjson
from ..context import app_state
from ..patterns import ecma_regex
from ..problems import Problem

__all__ = ["SchemaSet", "json_body", "validate_body", "invalid_body", "raw_body", "body_limit", "before_body", "buffer_unsized_body", "FilePart",
           "JSON_PART", "MULTIPART", "files_limit"]

MULTIPART = "multipart/form-data"
JSON_PART = "body"  # the form field holding the JSON body in a multipart request


@dataclass(frozen=True)
class FilePart:
    """One file of a multipart request: its form field, file name, declared media type and bytes."""

    field: str
    filename: str | None
    media_type: str
    data: bytes


def _pointer(parts) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class SchemaSet:
    """Every ``*.json`` schema under a folder, loaded once, with ``$ref`` between files resolved.

    Validation uses ``jsonschema``'s draft 2020-12 validator rather than fastjsonschema because a
    caller fixing a form needs *all* errors at once, each with its JSON pointer
    (``iter_errors``); fastjsonschema stops at the first.

    The dialect is :class:`lscloud.validation.StrictValidator`: ``integer`` means an integer
    literal and ``pattern`` is ECMA-262 (``$`` is the end of the text, ``\\d`` is ASCII).
    """

    def __init__(self, root: Path):
        # jsonschema and referencing load with the first schema set (the first validated body),
        # not with the app: a function that only reads never needs them
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        from ..validation import StrictValidator

        self.root = root.resolve()
        self.documents: dict[str, dict] = {}
        resources = []
        for path in sorted(self.root.rglob("*.json")):
            rel = path.relative_to(self.root).as_posix()
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and "$id" not in doc:
                # relative $refs between files resolve against the file's own location
                doc = {"$id": path.as_uri(), **doc}
            self.documents[rel] = doc
            resource = Resource.from_contents(doc, default_specification=DRAFT202012)
            resources.append((doc.get("$id") if isinstance(doc, dict) else path.as_uri(), resource))
            if isinstance(doc, dict) and doc.get("$id") != path.as_uri():
                resources.append((path.as_uri(), resource))
        self.registry = Registry().with_resources(resources)
        self._validators: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._validator_cls = StrictValidator

    def validator(self, name: str):
        v = self._validators.get(name)
        if v is None:
            with self._lock:
                if name not in self.documents:
                    raise KeyError(f"no schema {name!r} under {self.root}")
                self._validator_cls.check_schema(self.documents[name])
                v = self._validators[name] = self._validator_cls(
                    self.documents[name], registry=self.registry,
                    format_checker=self._validator_cls.FORMAT_CHECKER)
        return v

    def errors(self, name: str, instance: Any) -> list[dict]:
        """Every validation error as ``{"field": pointer, "message": ..., "message_vi": ...}``, sorted
        by field: one short sentence in each language naming the field (:func:`_describe`)."""
        out: list[dict] = []
        # at most MAX_ERRORS: a 1 MiB array past its maxItems was walked item by item and every
        # item's error answered (524,268 of them: 12 s of CPU, a 79 MB answer)
        for err in itertools.islice(self.validator(name).iter_errors(instance), MAX_ERRORS):
            for parts, en, vi in _describe(err):
                out.append({"field": _pointer(parts), "message": _short(en), "message_vi": _short(vi)})
        seen, unique = set(), []
        for e in sorted(out, key=lambda e: (e["field"], e["message"])):
            if (e["field"], e["message"]) not in seen:
                seen.add((e["field"], e["message"]))
                unique.append(e)
        return unique


MAX_ERRORS = 50
"""The validation errors a refused body is told at most (the first found)."""


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


# -- what a person reads of a validation error ---------------------------------------------------------
# jsonschema's own messages quote the regex and the schema ("'09l2' does not match '^\\+?[0-9 .-]{8,20}$'"):
# a citizen fixing a form reads which field and what it should be instead, in both languages.

_TYPES = {"string": ("text", "chuỗi ký tự"), "integer": ("a whole number", "số nguyên"), "number": ("a number", "số"),
          "boolean": ("true or false", "true hoặc false"), "array": ("a list", "danh sách"),
          "object": ("an object", "đối tượng"), "null": ("null", "null")}
_FORMATS = {
    "date": ("must be a date such as 2026-03-01", "phải là một ngày có thật, dạng năm-tháng-ngày, ví dụ 2026-03-01"),
    "date-time": ("must be a date and time with its offset, such as 2026-03-01T08:00:00+07:00",
                  "phải là ngày giờ kèm múi giờ, ví dụ 2026-03-01T08:00:00+07:00"),
    "email": ("must be an e-mail address", "phải là một địa chỉ email"),
    "uri": ("must be a web address (URI)", "phải là một địa chỉ web (URI)"),
}
_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,40}")


def _name(key) -> str:
    key = str(key)
    return key if _NAME.fullmatch(key) else json.dumps(key[:40], ensure_ascii=False)


def _subject(parts) -> tuple[str, str]:
    """How the sentences name the field at ``parts``: ``("phone", "trường phone")``, ``("item 2 of
    tags", "mục 2 của tags")``, ``("the request body", "nội dung yêu cầu")``."""
    parts = list(parts)
    if not parts:
        return "the request body", "nội dung yêu cầu"
    last = parts[-1]
    if isinstance(last, int):
        keys = [p for p in parts[:-1] if not isinstance(p, int)]
        if keys:
            return f"item {last + 1} of {_name(keys[-1])}", f"mục {last + 1} của {_name(keys[-1])}"
        return f"item {last + 1}", f"mục {last + 1}"
    items = [p for p in parts if isinstance(p, int)]
    where_en, where_vi = (f" (item {items[-1] + 1})", f" (mục {items[-1] + 1})") if items else ("", "")
    return f"{_name(last)}{where_en}", f"trường {_name(last)}{where_vi}"


def _field_label(pointer: str) -> tuple[str, str]:
    """:func:`_subject` of a JSON pointer (for a summary naming the fields), in English and Vietnamese."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []
    en, vi = _subject([int(p) if p.isascii() and p.isdigit() else p for p in parts])
    return en, vi.removeprefix("trường ")


def _num(n, vi: bool) -> str:
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        return json.dumps(n, ensure_ascii=False)
    text = f"{n:,}" if abs(n) >= 10_000 else str(n)
    return text.translate(str.maketrans(",.", ".,")) if vi else text


def _value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _describe(err) -> list[tuple[list, str, str]]:
    """``[(path, English, Vietnamese)]`` for one jsonschema error: one item per field it names."""
    base, kind, want = list(err.absolute_path), err.validator, err.validator_value
    schema = err.schema if isinstance(err.schema, dict) else {}
    if kind == "required" and isinstance(err.instance, dict):
        return [_say(base + [k], "{s} is required.", "Chưa điền {s}.")
                for k in want if k not in err.instance] or [_say(base, "{s} is missing a field.", "{S} thiếu trường bắt buộc.")]
    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(err.instance, dict):
        known, patterns = set(schema.get("properties", {})), list(schema.get("patternProperties", {}))
        extras = [k for k in err.instance if k not in known and not any(ecma_regex(p).search(k) for p in patterns)]
        return [_say(base + [k], "{s} is not an accepted field.", "{S} không được chấp nhận ở đây.")
                for k in extras] or [_say(base, "{s} has a field that is not accepted.", "{S} có trường không được chấp nhận.")]
    keywords = list(err.absolute_schema_path)
    if isinstance(err.instance, str) and any(k == "propertyNames" and (i == 0 or keywords[i - 1] != "properties")
                                             for i, k in enumerate(keywords)):
        return [_say(base + [err.instance], "{s} is not an accepted field.", "{S} không được chấp nhận ở đây.")]
    if kind in ("oneOf", "anyOf") and err.context:
        return _describe_alternatives(err)
    return [_say(base, *_sentence(kind, want, schema))]


def _describe_alternatives(err) -> list[tuple[list, str, str]]:
    """The branch that came closest (jsonschema's ``best_match``); a value of the wrong type names
    every type the alternatives take (``text or null``)."""
    from jsonschema.exceptions import best_match

    types = [e.validator_value for e in err.context if e.validator == "type" and list(e.absolute_path) == list(err.absolute_path)]
    if len(types) == len(err.context) and types:
        flat = list(dict.fromkeys(t for v in types for t in ([v] if isinstance(v, str) else v)))
        return [_say(list(err.absolute_path), *_sentence("type", flat, {}))]
    rest = [e for e in err.context if not (e.validator == "type" and e.validator_value == "null")]
    return _describe(best_match(rest or err.context))


# a pattern that is one character class repeated, the shape of most of ours (^[0-9]{5}$, a phone's
# ^\\+?[0-9 .-]{8,20}$, a code's ^[A-Z0-9]+(?:-[A-Z0-9]+)*$), is said in words; any other is not quoted
_SIMPLE = re.compile(r"\^(?P<plus>\\\+\?)?(?P<cls>\[[^\]^]+\]|\\d)(?P<q>\{\d+\}|\{\d+,\d+\}|\+)"
                     r"(?:\(\?:(?P<sep>[-._ ])(?P=cls)\+\)\*)?\$")
_RANGES = {"a-z": ("lowercase letters", "chữ thường"), "A-Z": ("capital letters", "chữ in hoa"),
           "0-9": ("digits", "chữ số"), "a-f": ("letters a-f", "chữ cái a-f"), "A-F": ("letters A-F", "chữ cái A-F")}
_CHARS = {" ": ("spaces", "dấu cách")}
_KNOWN = {
    r"^https?://": ("must start with http:// or https://", "phải bắt đầu bằng http:// hoặc https://"),
    r"\S": ("must not be blank", "không được để trống"),
    r"^\d{2}:\d{2}$": ("must be a time written HH:MM, such as 07:30", "phải là giờ dạng giờ:phút, ví dụ 07:30"),
    r"^\d{4}-\d{2}-\d{2}$": ("must be a date such as 2026-03-01", "phải là ngày dạng năm-tháng-ngày, ví dụ 2026-03-01"),
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$": ("must be a date such as 2026-03-01",
                                      "phải là ngày dạng năm-tháng-ngày, ví dụ 2026-03-01"),
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$": ("may only hold lowercase letters, digits and '-' (not first or last)",
                                                "chỉ được gồm chữ thường, chữ số và dấu '-' (không ở đầu hay cuối)"),
}


def _pattern_words(pattern: str) -> tuple[str, str] | None:
    """``must be exactly 5 digits`` / ``phải gồm đúng 5 chữ số`` for a simple pattern, else None."""
    m = _SIMPLE.fullmatch(pattern)
    if not m:
        return _KNOWN.get(pattern)
    body = "0-9" if m["cls"] == "\\d" else m["cls"][1:-1]
    ranges = re.findall(r"[a-zA-Z0-9]-[a-zA-Z0-9]", body)
    singles = re.sub(r"[a-zA-Z0-9]-[a-zA-Z0-9]", "", body).replace("\\", "")
    named = {}
    if "a-z" in ranges and "A-Z" in ranges:
        ranges.remove("A-Z")
        named["a-z"] = ("letters (without accents)", "chữ cái không dấu")
    if any(r not in _RANGES for r in ranges) or any(not (c in _CHARS or c in "-_.:+@") for c in singles):
        return None
    words = [named.get(r) or _RANGES[r] for r in ranges] + [_CHARS.get(c, (f"'{c}'", f"'{c}'")) for c in singles]
    listed = (", ".join(w for w, _ in words[:-1]) + " or " + words[-1][0] if len(words) > 1 else words[0][0],
              ", ".join(v for _, v in words[:-1]) + " hoặc " + words[-1][1] if len(words) > 1 else words[0][1])
    q = m["q"]
    if q == "+":
        en, vi = f"may only hold {listed[0]}", f"chỉ được gồm {listed[1]}"
    else:
        lo, _, hi = q[1:-1].partition(",")
        count = (f"{lo} to {hi}", f"từ {lo} đến {hi}") if hi else (f"exactly {lo}", f"đúng {lo}")
        what = listed if len(words) == 1 else (f"characters: {listed[0]}", f"ký tự: {listed[1]}")
        en, vi = f"must be {count[0]} {what[0]}", f"phải gồm {count[1]} {what[1]}"
    if m["sep"]:
        en, vi = en + f", in groups joined by '{m['sep']}'", vi + f", thành từng nhóm nối bằng dấu '{m['sep']}'"
    if m["plus"]:
        en, vi = en + ", optionally after a '+'", vi + ", có thể bắt đầu bằng dấu '+'"
    return en, vi


def _sentence(kind, want, schema: dict) -> tuple[str, str]:
    """The English and Vietnamese sentence for one failed keyword (``{s}``/``{S}``: the field)."""
    n_en, n_vi = _num(want, False), _num(want, True)
    if kind == "type":
        names = [_TYPES.get(t, (t, t)) for t in ([want] if isinstance(want, str) else want)]
        return (f"{{s}} must be {' or '.join(e for e, _ in names)}.",
                f"{{S}} phải là {' hoặc '.join(v for _, v in names)}.")
    if kind == "pattern":
        ex = next((x for x in schema.get("examples") or [] if isinstance(x, str) and len(x) <= 40), None)
        en, vi = (isinstance(want, str) and _pattern_words(want)) or ("is not in the expected form", "không đúng định dạng")
        return (f"{{s}} {en}" + (f" (e.g. {ex})." if ex else "."), f"{{S}} {vi}" + (f" (ví dụ: {ex})." if ex else "."))
    if kind == "format":
        en, vi = _FORMATS.get(want, (f"is not a valid {want}", f"không đúng định dạng {want}"))
        return f"{{s}} {en}.", f"{{S}} {vi}."
    if kind == "enum":
        vals = ", ".join(_value(v) for v in want)
        if len(want) > 12 or len(vals) > 160:
            return "{s} is not one of the accepted values.", "{S} không thuộc các giá trị được chấp nhận."
        return f"{{s}} must be one of: {vals}.", f"{{S}} phải là một trong các giá trị: {vals}."
    if kind == "const":
        return f"{{s}} must be {_value(want)}.", f"{{S}} phải là {_value(want)}."
    if kind in ("minLength", "minItems", "minProperties") and want == 1:
        return "{s} must not be empty.", "{S} không được để trống."
    unit = {"minLength": ("character", "ký tự"), "maxLength": ("character", "ký tự"), "minItems": ("item", "mục"),
            "maxItems": ("item", "mục"), "minProperties": ("field", "trường"), "maxProperties": ("field", "trường")}
    if kind in unit:
        en, vi = unit[kind]
        en += "" if want == 1 else "s"
        if kind.startswith("min"):
            return f"{{s}} needs at least {n_en} {en}.", f"{{S}} cần có ít nhất {n_vi} {vi}."
        return f"{{s}} may have at most {n_en} {en}.", f"{{S}} chỉ được có tối đa {n_vi} {vi}."
    bounds = {"minimum": ("must be at least {n}", "phải từ {n} trở lên"),
              "maximum": ("must be at most {n}", "không được vượt quá {n}"),
              "exclusiveMinimum": ("must be greater than {n}", "phải lớn hơn {n}"),
              "exclusiveMaximum": ("must be less than {n}", "phải nhỏ hơn {n}"),
              "multipleOf": ("must be a multiple of {n}", "phải là bội số của {n}")}
    if kind in bounds:
        en, vi = bounds[kind]
        return "{s} " + en.format(n=n_en) + ".", "{S} " + vi.format(n=n_vi) + "."
    if kind == "uniqueItems":
        return "{s} lists the same item more than once.", "{S} có mục bị lặp lại."
    if kind == "oneOf":   # valid under more than one alternative
        return "{s} fits more than one accepted form.", "{S} khớp với nhiều dạng được chấp nhận cùng lúc."
    if kind in (None, "not", "additionalProperties", "unevaluatedProperties", "unevaluatedItems", "items"):
        return "{s} is not accepted here.", "{S} không được chấp nhận ở đây."
    return "{s} is not valid.", "{S} không hợp lệ."


def _say(parts: list, en: str, vi: str) -> tuple[list, str, str]:
    s, s_vi = _subject(parts)
    # a sentence starts with a capital, unless it starts with the field's own name (``phone``)
    if en.startswith("{s}") and not (parts and isinstance(parts[-1], str)):
        s = s[0].upper() + s[1:]
    # one pass: a field's own name (a caller's extra member "{s}") is not read as a placeholder
    vi_subjects = {"{S}": s_vi[0].upper() + s_vi[1:], "{s}": s_vi}
    return parts, en.replace("{s}", s), re.sub(r"\{[sS]\}", lambda m: vi_subjects[m.group()], vi)


def files_limit(view, settings) -> int | None:
    """The body limit of a multipart request to ``view`` (its JSON and its files together: the blob
    limit), or None when the view takes no files or the request is not multipart."""
    if getattr(view, "__lscloud_files__", False) and request.mimetype == MULTIPART:
        return settings.blob_max_bytes
    return None


def _multipart() -> tuple[bytes, list[FilePart]]:
    """The JSON part's bytes and the file parts of a multipart request (400 naming what is wrong)."""
    from werkzeug.formparser import parse_form_data

    env = dict(request.environ)
    raw = request.get_data(cache=True)
    env["wsgi.input"], env["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
    # the body is read whole already: parse those bytes by their length (a terminated input would
    # be read to its end against the limit, and a body of exactly that length refused)
    env.pop("wsgi.input_terminated", None)
    _, form, files = parse_form_data(env, max_form_memory_size=app_state().settings.max_body_bytes,
                                     max_content_length=len(raw))
    # the JSON part as a plain field, or as a part with a file name (some clients send a Blob)
    texts = [t.encode("utf-8") for t in form.getlist(JSON_PART)] + [f.read() for f in files.getlist(JSON_PART)]
    parts = [FilePart(field, f.filename or None, f.mimetype or "application/octet-stream", f.read())
             for field, f in files.items(multi=True) if field != JSON_PART]
    if len(texts) != 1 or set(form) - {JSON_PART}:
        raise Problem(400, "malformed-multipart", "Malformed multipart body",
                      f"A multipart body holds one form field {JSON_PART!r} (the JSON body) and files.",
                      title_vi="Nội dung multipart không hợp lệ",
                      detail_vi=f"Nội dung multipart gồm đúng một trường {JSON_PART!r} (JSON) và các tệp.",
                      errors=[{"field": JSON_PART, "message": "exactly one JSON form field, then files"}])
    return texts[0], parts


def json_body() -> Any:
    """The request body parsed as strict JSON (:mod:`lscloud.strictjson`); cached on ``g``.

    Malformed JSON answers 400 ``malformed-json``; JSON we refuse (nesting past
    :data:`~lscloud.strictjson.MAX_DEPTH`, ``NaN``/``Infinity``, duplicate keys) answers 400
    ``json-rejected`` naming the place as a JSON pointer in ``errors[]``. In a multipart request
    to a view that takes files, the JSON is the :data:`JSON_PART` field (the files land in
    ``g.files``).
    """
    if "lscloud_json" in g:
        return g.lscloud_json
    if request.mimetype == MULTIPART and "lscloud_files" in g:
        raw = g.lscloud_multipart_json
    else:
        raw = request.get_data(cache=True)
    if not raw.strip():
        raise Problem(400, "missing-body", "Missing request body", "This endpoint needs a JSON body.",
                      title_vi="Thiếu nội dung yêu cầu", detail_vi="Chức năng này yêu cầu nội dung JSON.")
    try:
        value = strictjson.loads(raw)
    except strictjson.JSONRejected as exc:
        raise Problem(400, "json-rejected", "JSON not accepted", f"The request body is refused: {exc}.",
                      title_vi="JSON không được chấp nhận",
                      detail_vi="Nội dung yêu cầu bị từ chối: lồng quá sâu, số không hữu hạn (NaN, Infinity) "
                                "hoặc khóa bị lặp lại.",
                      errors=[{"field": exc.pointer, "message": exc.message}]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise Problem(400, "malformed-json", "Malformed JSON", f"The request body is not valid UTF-8 JSON{where}.",
                      title_vi="JSON không hợp lệ", detail_vi=f"Nội dung yêu cầu không phải JSON UTF-8 hợp lệ{where}.") from None
    g.lscloud_json = value
    return value


def validate_body(schema: str, *, optional: bool = False, files: bool = False) -> Callable:
    """Validate the JSON body against ``<schemas_dir>/<schema>`` before the view runs.

    The parsed body lands in ``flask.g.body``; a mismatch answers 422 listing every error.
    ``optional=True`` is for a body whose members are all optional (a cancellation's reason): no
    body at all stands for ``{}``, validated like any other.

    ``files=True``: the view also takes ``multipart/form-data``, the JSON body in the form field
    :data:`JSON_PART` and any number of files beside it (up to the blob limit together), which
    land in ``flask.g.files`` (:class:`FilePart`, in order; ``[]`` for a JSON request). What a
    file may be is the view's to check.
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            state = app_state()
            g.files = []
            if files and request.mimetype == MULTIPART:
                g.lscloud_multipart_json, g.files = _multipart()
                g.lscloud_files = True
            body = {} if optional and not request.get_data(cache=True).strip() else json_body()
            errors = state.schemas.errors(schema, body)
            if errors:
                raise invalid_body(errors)
            g.body = body
            return view(*args, **kwargs)

        wrapper.__lscloud_body_schema__ = schema
        wrapper.__lscloud_body_optional__ = optional
        wrapper.__lscloud_files__ = files
        return wrapper

    return decorate


def invalid_body(errors: list[dict]) -> Problem:
    """The 422 for a body with ``errors`` (:meth:`SchemaSet.errors`): how many fields are wrong and
    which, in both languages (the schema's file name is the developer's, not the reader's)."""
    labels = [_field_label(f) for f in dict.fromkeys(e["field"] for e in errors)]
    n, shown = len(labels), labels[:5]
    more = (f" and {n - 5} more", f" và {n - 5} trường khác") if n > 5 else ("", "")
    return Problem(422, "validation-failed", "Validation failed",
                   f"{n} field{' is' if n == 1 else 's are'} not valid: {', '.join(en for en, _ in shown)}{more[0]}.",
                   title_vi="Dữ liệu không hợp lệ",
                   detail_vi=f"{n} trường chưa hợp lệ: {', '.join(vi for _, vi in shown)}{more[1]}.", errors=errors)


def raw_body(*media_types: str) -> Callable:
    """Let a view take a non-JSON body (uploads, CloudEvents in binary mode).

    With ``media_types`` given, other types still answer 415.
    """

    def decorate(view):
        view.__lscloud_raw_body__ = tuple(media_types)
        return view

    return decorate


def body_limit(max_bytes: int | str) -> Callable:
    """Raise (or lower) the body size limit for one view (e.g. blob uploads).

    ``max_bytes`` is a number of bytes, or the name of a setting (``"blob_max_bytes"``) read from
    the serving app's settings: a blueprint declared at import follows each app's configuration.
    """
    from ..config import Settings

    if isinstance(max_bytes, str) and max_bytes not in Settings.__dataclass_fields__:
        raise ValueError(f"body_limit({max_bytes!r}): no such setting")

    def decorate(view):
        view.__lscloud_max_body__ = max_bytes if isinstance(max_bytes, str) else int(max_bytes)
        return view

    return decorate


def before_body(check: Callable[[], None]) -> Callable:
    """Run ``check()`` on a request to this view before its body is read (e.g. a rate limit).

    The runtime reads a body whole before the view runs, so a refusal decided in the view comes
    only after up to the view's :func:`body_limit` was received and held: a caller over its limit
    made a public upload endpoint read 20 MiB per refused request. ``check`` runs in the request
    context after what the headers alone refuse (413 for a Content-Length past the limit, 415 for
    another media type) and after the caller is authenticated (:func:`lscloud.auth.principal` is
    the view's caller); it refuses by raising (a :class:`~lscloud.errors.DomainError`, a
    :class:`~lscloud.problems.Problem`). That answer is given with the body unread, so the
    connection is closed after it (:class:`lscloud.asgi.BodyGuard`), never reused.

    Not for a view that takes signed partner requests or events: their signature covers the body
    and its nonce is spent once (:func:`lscloud.web.check_access` refuses to serve such a view).
    """

    def decorate(view):
        view.__lscloud_before_body__ = check
        return view

    return decorate


def buffer_unsized_body(limit: int) -> None:
    """Read a body sent without Content-Length (chunked) up to ``limit`` + 1 bytes.

    Werkzeug would silently cut such a body at the limit; reading one byte more tells a
    too-large body (413) from one that just fits. The buffered body then stands in for the
    stream, with its length, before anything has read the request.
    """
    env = request.environ
    if env.get("CONTENT_LENGTH") or not env.get("wsgi.input_terminated"):
        return
    raw = env["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    env["wsgi.input"] = io.BytesIO(raw)
    env["CONTENT_LENGTH"] = str(len(raw))


