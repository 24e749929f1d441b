"""Query parameters: declared once, documented in OpenAPI and parsed from the same declaration.

A :class:`Param` is a name, a description and a JSON Schema for the value (``{"type":
"integer", "minimum": 1, "maximum": 100, "default": 20}``). :func:`parse` turns the raw strings
of a query string into typed values — ``integer`` and ``number`` into ``int`` / ``float``,
``boolean`` from ``true`` / ``false``, ``format: date`` into :class:`datetime.date` (a real
calendar day: ``2026-02-30`` is refused), ``format: date-time`` into an aware
:class:`datetime.datetime` — then checks the schema's other keywords (``enum``, ``minimum``,
``maximum``, ``pattern``, ``maxLength`` …) and reports *every* bad parameter at once, each by
its name. Plain Python: :func:`lscloud.web.query_params` is the Flask side.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, Mapping, Sequence

from .timestamps import YEARS_MESSAGE as _YEARS_MESSAGE, rfc3339_date, rfc3339_date_time, year_in_range

__all__ = ["Param", "QueryError", "InvalidQuery", "as_param", "parse", "MAX_CHARS"]

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
    """One query parameter is wrong; ``field`` is the parameter's name."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidQuery(ValueError):
    """Several query parameters are wrong: ``errors`` is ``[{"field": name, "message": ...}]``."""

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

    def _convert(self, raw: str) -> tuple[Any, str | None]:
        kind, fmt = self.schema["type"], self.schema.get("format")
        if kind == "integer":
            if not _INTEGER.fullmatch(raw):
                return None, "must be a whole number"
            return int(raw), None
        if kind == "number":
            if not _NUMBER.fullmatch(raw) or not math.isfinite(value := float(raw)):
                return None, "must be a finite number"
            return value, None
        if kind == "boolean":
            if raw not in ("true", "false"):
                return None, "must be true or false"
            return raw == "true", None
        if fmt == "date":
            try:
                value = rfc3339_date(raw)
            except ValueError:
                return None, "must be a calendar date, YYYY-MM-DD"
            return (value, None) if year_in_range(value.year) else (None, _YEARS_MESSAGE)
        if fmt == "date-time":
            try:
                value = rfc3339_date_time(raw)
            except ValueError:
                return None, "must be a date and time with an offset (RFC 3339), e.g. 2026-03-01T08:00:00+07:00"
            return (value, None) if year_in_range(value.year) else (None, _YEARS_MESSAGE)
        return raw, None

    def _problems(self, value: Any) -> list[str]:
        checked = value.isoformat() if isinstance(value, (date, datetime)) else value
        return [_short(e.message) for e in self._validator.iter_errors(checked)]

    def parse(self, values: Sequence[str]) -> tuple[Any, list[str]]:
        """(typed value, problems) for the raw ``values`` given for this parameter."""
        if not values:
            if self.required:
                return None, ["is required"]
            if "default" in self.schema:
                return self._default()[0], []
            return None, []
        if len(values) > 1:
            return None, ["is given more than once"]
        raw = values[0]
        if _CONTROL.search(raw):
            # no parameter of ours carries them; refusing them also keeps Python's "$", which
            # matches before a final newline, from letting "20\n" through a pattern
            return None, ["must not contain control characters"]
        value, problem = self._convert(raw)
        if problem:
            return None, [problem]
        return value, self._problems(value)


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


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

    Raises :class:`InvalidQuery` listing every parameter that is wrong. Parameters that are
    not declared are ignored (caches and proxies add their own).
    """
    values, errors = {}, []
    for p in params:
        value, problems = p.parse(_getlist(args, p.name))
        values[p.name] = value
        errors += [{"field": p.name, "message": f"{p.name} {m}" if m.startswith(("is ", "must ")) else m}
                   for m in problems]
    if errors:
        raise InvalidQuery(errors)
    return values
