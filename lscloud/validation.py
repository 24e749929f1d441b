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
"""

from __future__ import annotations

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from .patterns import ecma_regex

__all__ = ["StrictValidator", "ecma_regex"]


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _is_integer(_checker, value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


StrictValidator = validators.extend(
    Draft202012Validator,
    validators={"pattern": _pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)
"""Draft 2020-12 with integer literals and ECMA-262 patterns (see the module docstring)."""
