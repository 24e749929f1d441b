"""Query parameters: declared once, documented in OpenAPI and parsed from the same declaration.

A :class:`Param` is a name, a description and a JSON Schema for the value (``{"type":
"integer", "minimum": 1, "maximum": 100, "default": 20}``). :func:`parse` turns the raw strings
of a query string into typed values — ``integer`` and ``number`` into ``int`` / ``float``,
``boolean`` from ``true`` / ``false``, ``format: date`` into :class:`datetime.date` (a real
calendar day: ``2026-02-30`` is refused), ``format: date-time`` into an aware
:class:`datetime.datetime` — then checks the schema's other keywords (``enum``, ``minimum``,
``maximum``, ``pattern``, ``maxLength`` …) and reports *every* bad parameter at once, each by
its name, in English and Vietnamese (``errors[]`` items of :func:`lscloud.errors.field`: citizens
and tellers read them). Plain Python: :func:`lscloud.web.query_params` is the Flask side.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, Mapping, Sequence

from .errors import field as _item
from .timestamps import YEARS, YEARS_MESSAGE as _YEARS_MESSAGE, rfc3339_date, rfc3339_date_time, year_in_range

__all__ = ["Param", "QueryError", "InvalidQuery", "unissued_page_token", "as_param", "parse", "MAX_CHARS"]

#: The longest string value a parameter takes unless its schema says otherwise (a search phrase,
#: a page token, a code): long enough for any of them, short enough that nobody sends a novel.
MAX_CHARS = 200

_TYPES = ("string", "integer", "number", "boolean")
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,29})(?:\.[0-9]{1,30})?(?:[eE][+-]?[0-9]{1,3})?")
#: What a free-text string parameter may hold: anything but control characters (C0, DEL, C1).
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_VALIDATED = ("format", "default", "description", "example", "examples", "title")


class QueryError(ValueError):
    """One query parameter is wrong; ``field`` is the parameter's name, ``message`` / ``message_vi``
    why, in English and Vietnamese; ``errors`` is the ``errors[]`` of the problem answering it."""

    def __init__(self, field: str, message: str, message_vi: str | None = None):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        # a raiser without a sentence of its own still leaves a Vietnamese reader one naming the parameter
        self.message_vi = message_vi or f"Tham số '{field}' không hợp lệ."
        self.errors = [_item(field, message, self.message_vi)]


def unissued_page_token(why: str = "", why_vi: str = "") -> QueryError:
    """A ``page_token`` the list did not issue (made up, cut, from another list or an older
    version): the caller starts the listing again without it."""
    return QueryError("page_token", f"page_token is not one this list issued{why}; start again without it",
                      f"Tham số 'page_token' không phải mã trang do danh sách này cấp{why_vi}; hãy tải lại "
                      "danh sách từ đầu (bỏ page_token).")


class InvalidQuery(ValueError):
    """Several query parameters are wrong: ``errors`` is ``[{"field": name, "message": ...,
    "message_vi": ...}]``."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Param:
    """One query parameter: ``name``, ``description``, the value's JSON ``schema``, ``required``.

    A string without ``maxLength`` (and without ``enum``) gets :data:`MAX_CHARS`, and a free-text
    one the :data:`NO_CONTROL` pattern, so the OpenAPI document states what the parser applies.
    """

    name: str
    description: str = ""
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", self.name):
            raise TypeError(f"bad query parameter name {self.name!r}")
        schema = dict(self.schema)
        schema.setdefault("type", "string")
        if schema["type"] not in _TYPES:
            raise TypeError(f"query parameter {self.name!r}: type must be one of {', '.join(_TYPES)}")
        if schema.get("format") in ("date", "date-time") and schema["type"] != "string":
            raise TypeError(f"query parameter {self.name!r}: format {schema['format']} is for strings")
        if schema["type"] == "string" and "maxLength" not in schema and "enum" not in schema:
            schema["maxLength"] = MAX_CHARS
        if schema["type"] == "string" and "pattern" not in schema and "enum" not in schema and "format" not in schema:
            schema["pattern"] = NO_CONTROL  # the parser refuses them: say so in the document
        object.__setattr__(self, "schema", schema)
        if "default" in schema and self._default()[1]:
            raise TypeError(f"query parameter {self.name!r}: default {schema['default']!r} is not valid")

    def _default(self) -> tuple[Any, str | None]:
        default = self.schema["default"]
        return self._convert(str(default).lower() if self.schema["type"] == "boolean" else str(default))

    def check(self) -> Any:
        """Check the schema against the JSON Schema metaschema and the default against the schema
        (``TypeError`` if either is wrong); return the validator of values.

        Run on the parameter's first value, not where it is declared: declarations are module
        constants of every function, and jsonschema plus a metaschema check per parameter was
        ~90 ms of CPU in the directory's ~500 ms start. Every declared parameter of every function is checked by the
        unit tests (``tests/unit/test_openapi_documents.py``), and :func:`lscloud.web.preload`
        checks a function's own in its background warm-up."""
        return self._validator

    @functools.cached_property
    def _validator(self) -> Any:
        from jsonschema.exceptions import SchemaError

        from .validation import StrictValidator

        checked = {k: v for k, v in self.schema.items() if k not in _NOT_VALIDATED}
        try:
            StrictValidator.check_schema(checked)
        except SchemaError as exc:
            raise TypeError(f"query parameter {self.name!r}: {exc.message}") from None
        validator = StrictValidator(checked)
        if "default" in self.schema:
            value = self._default()[0]
            if any(True for _ in validator.iter_errors(value.isoformat() if isinstance(value, (date, datetime)) else value)):
                raise TypeError(f"query parameter {self.name!r}: default {self.schema['default']!r} is not valid")
        return validator

    def openapi(self) -> dict:
        out = {"name": self.name, "in": "query", "required": self.required}
        if self.description:
            out["description"] = self.description
        out["schema"] = dict(self.schema)
        return out

    # -- parsing --------------------------------------------------------------------------------

    def _convert(self, raw: str) -> tuple[Any, tuple[str, str] | None]:
        kind, fmt = self.schema["type"], self.schema.get("format")
        if kind == "integer":
            if not _INTEGER.fullmatch(raw):
                return None, ("must be a whole number", f"{{P}} phải là số nguyên{_range_vi(self.schema)}.")
            return int(raw), None
        if kind == "number":
            if not _NUMBER.fullmatch(raw) or not math.isfinite(value := float(raw)):
                return None, ("must be a finite number", f"{{P}} phải là một số{_range_vi(self.schema)}.")
            return value, None
        if kind == "boolean":
            if raw not in ("true", "false"):
                return None, ("must be true or false", "{P} phải là true hoặc false.")
            return raw == "true", None
        if fmt == "date":
            try:
                value = rfc3339_date(raw)
            except ValueError:
                return None, ("must be a calendar date, YYYY-MM-DD",
                              "{P} phải là một ngày có thật, dạng năm-tháng-ngày (YYYY-MM-DD), ví dụ 2026-03-01.")
            return (value, None) if year_in_range(value.year) else (None, _YEARS)
        if fmt == "date-time":
            try:
                value = rfc3339_date_time(raw)
            except ValueError:
                return None, ("must be a date and time with an offset (RFC 3339), e.g. 2026-03-01T08:00:00+07:00",
                              "{P} phải là ngày giờ kèm múi giờ (RFC 3339), ví dụ 2026-03-01T08:00:00+07:00.")
            return (value, None) if year_in_range(value.year) else (None, _YEARS)
        return raw, None

    def _problems(self, value: Any) -> list[tuple[str, str]]:
        checked = value.isoformat() if isinstance(value, (date, datetime)) else value
        return [(_short(e.message), _keyword_vi(e.validator, e.validator_value, self.schema))
                for e in self._validator.iter_errors(checked)]

    def parse(self, values: Sequence[str]) -> tuple[Any, list[tuple[str, str]]]:
        """(typed value, problems) for the raw ``values`` given for this parameter; a problem is
        ``(English, Vietnamese)``, the Vietnamese with ``{P}`` where the parameter is named."""
        if not values:
            if self.required:
                return None, [("is required", "Thiếu tham số bắt buộc '{name}'.")]
            if "default" in self.schema:
                return self._default()[0], []
            return None, []
        if len(values) > 1:
            return None, [("is given more than once", "{P} chỉ được truyền một lần.")]
        raw = values[0]
        if _CONTROL.search(raw):
            # no parameter of ours carries them; refusing them also keeps Python's "$", which
            # matches before a final newline, from letting "20\n" through a pattern
            return None, [("must not contain control characters", _NO_CONTROL_VI)]
        value, problem = self._convert(raw)
        if problem:
            return None, [problem]
        return value, self._problems(value)


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


# -- the Vietnamese of a refusal -----------------------------------------------------------------------
# jsonschema says it in English only, and quotes the regex; a citizen reads which parameter and
# what it should be instead ({P}: "Tham số 'limit'", at the start of the sentence).

_YEARS = (_YEARS_MESSAGE, f"{{P}} phải là ngày trong khoảng từ năm {YEARS[0]} đến năm {YEARS[1]}.")
_NO_CONTROL_VI = "{P} không được chứa ký tự điều khiển."


def _num_vi(n: Any) -> str:
    """A number as Vietnamese writes it: 1.000.000 and 0,5."""
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        return str(n)
    text = f"{n:,}" if abs(n) >= 10_000 else str(n)
    return text.translate(str.maketrans(",.", ".,"))


def _value(v: Any) -> str:
    """A schema's value as it is written in a query string (``true``, not ``True``)."""
    return str(v).lower() if isinstance(v, bool) or v is None else str(v)


def _range_vi(schema: Mapping[str, Any]) -> str:
    """`` từ 1 đến 100``, `` từ 0 trở lên``, `` lớn hơn 0 và nhỏ hơn 1``: the bounds of a number, or ''."""
    low = ("from", schema["minimum"]) if "minimum" in schema else (
        ("above", schema["exclusiveMinimum"]) if "exclusiveMinimum" in schema else None)
    high = ("to", schema["maximum"]) if "maximum" in schema else (
        ("below", schema["exclusiveMaximum"]) if "exclusiveMaximum" in schema else None)
    if low and high and low[0] == "from" and high[0] == "to":
        return f" từ {_num_vi(low[1])} đến {_num_vi(high[1])}"
    words = {"from": "từ {} trở lên", "above": "lớn hơn {}", "to": "không vượt quá {}", "below": "nhỏ hơn {}"}
    parts = [words[b[0]].format(_num_vi(b[1])) for b in (low, high) if b]
    return (" " + " và ".join(parts)) if parts else ""


def _keyword_vi(keyword: str, want: Any, schema: Mapping[str, Any]) -> str:
    """The Vietnamese sentence for one failed schema keyword of a parameter's ``schema``."""
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        kind = "số nguyên" if schema.get("type") == "integer" else "một số"
        return f"{{P}} phải là {kind}{_range_vi(schema)}."
    if keyword == "multipleOf":
        return f"{{P}} phải là bội số của {_num_vi(want)}."
    if keyword == "enum":
        values = ", ".join(_value(v) for v in want)
        if len(want) > 12 or len(values) > 160:
            return "{P} không thuộc các giá trị được chấp nhận."
        return f"{{P}} phải là một trong các giá trị: {values}."
    if keyword == "const":
        return f"{{P}} phải là {_value(want)}."
    if keyword == "minLength":
        return "{P} không được để trống." if want == 1 else f"{{P}} cần có ít nhất {_num_vi(want)} ký tự."
    if keyword == "maxLength":
        return f"{{P}} chỉ được có tối đa {_num_vi(want)} ký tự."
    if keyword == "pattern":
        if want == NO_CONTROL:
            return _NO_CONTROL_VI
        example = next((x for x in [schema.get("example"), *(schema.get("examples") or [])]
                        if isinstance(x, str) and 0 < len(x) <= 40), None)
        return "{P} không đúng định dạng" + (f" (ví dụ: {example})." if example else ".")
    return "{P} không hợp lệ."


def _say_vi(template: str, name: str) -> str:
    # str.replace, not format: an enum value or an example may hold braces of its own
    return template.replace("{P}", f"Tham số '{name}'").replace("{name}", name)


def as_param(p: Param | tuple) -> Param:
    """A :class:`Param` from itself or from ``(name, description[, schema])``."""
    if isinstance(p, Param):
        return p
    if not isinstance(p, tuple) or len(p) not in (2, 3) or not isinstance(p[0], str) or not p[0]:
        raise TypeError(f"query parameter {p!r}: expected Param or (name, description[, schema])")
    return Param(p[0], p[1] or "", dict(p[2]) if len(p) == 3 else {"type": "string"})


def _getlist(args: Any, name: str) -> list[str]:
    if hasattr(args, "getlist"):
        return list(args.getlist(name))
    value = args.get(name)
    return [] if value is None else (list(value) if isinstance(value, (list, tuple)) else [value])


def parse(params: Iterable[Param], args: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter's typed value (``None`` when absent without a default).

    Raises :class:`InvalidQuery` listing every parameter that is wrong, in English and
    Vietnamese. Parameters that are not declared are ignored (caches and proxies add their own).
    """
    values, errors = {}, []
    for p in params:
        value, problems = p.parse(_getlist(args, p.name))
        values[p.name] = value
        errors += [_item(p.name, f"{p.name} {m}" if m.startswith(("is ", "must ")) else m, _say_vi(vi, p.name))
                   for m, vi in problems]
    if errors:
        raise InvalidQuery(errors)
    return values
