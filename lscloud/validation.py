"""The runtime's JSON Schema dialect: draft 2020-12, read the way a JSON client means it.

Two places where the Python ``jsonschema`` validator reads a schema differently from what the
schema says to every other client (and to the OpenAPI documents built from it):

- ``"type": "integer"``: draft 2020-12 counts any number with a zero fractional part as an
  integer, so ``5000000.0`` and ``5e6`` passed and reached code that works in whole đồng as a
  Python ``float`` (the soft ATM's ledger refused it, after the operation id was claimed). Every
  integer field we have is an amount, a count or a score that clients write as an integer literal;
  accepting floats would mean converting them at every boundary and losing exactness above
  2**53. Here ``integer`` is an integer literal, for every function at once.
- ``"pattern"``: JSON Schema says ECMA-262 regular expressions. Python's ``re`` differs where it
  matters for identifiers: ``$`` also matches before a final newline (``"020095001234\\n"``
  matched ``^\\d{12}$``) and ``\\d`` / ``\\w`` match every script's digits and letters. Patterns
  here are compiled with :func:`lscloud.patterns.ecma_regex`: ``$`` outside a character class means the end of
  the text and ``\\d``, ``\\w``, ``\\s`` are ASCII, as in ECMA-262 without the ``u`` flag.

And one place where it reads a schema differently from one installation to the next: ``format``.
``jsonschema`` checks ``date-time`` only when the optional ``rfc3339-validator`` is installed,
which only the test tools pulled in. In the functions' images ``"2026-03-10T09:00:00"`` (no offset)
and ``"soon"`` passed as ``date-time`` and reached code comparing them with aware instants (a 500,
for good for a value stored so). The formats our schemas use are checked here, by the standard
library, the same everywhere (:data:`FORMATS`).
"""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

from .patterns import ecma_regex
from .timestamps import rfc3339_date, rfc3339_date_time, year_in_range

__all__ = ["FORMATS", "StrictValidator", "ecma_regex"]

FORMATS = FormatChecker(formats=())
"""The ``format`` values our schemas use, checked the same wherever the runtime is installed."""


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:
    """RFC 3339 ``date-time``: a date, a time and an offset, all required (a ValueError: invalid)."""
    return not isinstance(value, str) or year_in_range(rfc3339_date_time(value).year)


@FORMATS.checks("date", raises=ValueError)
def _date(value) -> bool:
    """RFC 3339 ``full-date``."""
    return not isinstance(value, str) or year_in_range(rfc3339_date(value).year)


@FORMATS.checks("email")
def _email(value) -> bool:
    """What ``jsonschema`` checks of an e-mail address, and no more: an ``@``."""
    return not isinstance(value, str) or "@" in value


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _unique_items(validator, unique, instance, schema):
    """``uniqueItems`` in one pass: jsonschema compares every pair when the items do not sort (a
    mix of numbers and strings), quadratic in a caller's array (16,000 items: 15 s of CPU). Items
    are told apart by their canonical JSON, as the keyword means (1 and 1.0 alike, true not 1).
    An array already over its maxItems is refused for that: not walked here."""
    if not unique or not validator.is_type(instance, "array"):
        return
    if isinstance(schema.get("maxItems"), int) and len(instance) > schema["maxItems"]:
        return
    seen = set()
    for item in instance:
        key = json.dumps(_canonical(item), sort_keys=True, separators=(",", ":"))
        if key in seen:
            yield ValidationError(f"{instance!r:.200} has non-unique elements")
            return
        seen.add(key)


_ITEMS = Draft202012Validator.VALIDATORS["items"]


def _items(validator, items, instance, schema):
    """``items``, not walked for an array already over its ``maxItems`` (which says what is wrong):
    a 1 MiB array of small items cost seconds of CPU to check item by item before it was refused."""
    if validator.is_type(instance, "array") and isinstance(schema.get("maxItems"), int) \
            and len(instance) > schema["maxItems"]:
        return
    yield from _ITEMS(validator, items, instance, schema)


def _canonical(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) and not value.is_integer() else int(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def _is_integer(_checker, value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


StrictValidator = validators.extend(
    Draft202012Validator,
    validators={"pattern": _pattern, "uniqueItems": _unique_items, "items": _items},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
    format_checker=FORMATS,
)
"""Draft 2020-12 with integer literals and ECMA-262 patterns (see the module docstring)."""
