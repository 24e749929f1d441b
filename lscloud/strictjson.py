"""Strict JSON for what callers send: bounded nesting, finite numbers, unique keys.

Python's ``json.loads`` accepts things no caller of ours means and no schema can see once the
text is parsed: ``NaN`` and ``Infinity`` (and ``1e400``, which becomes ``inf``), a key given twice
(the last one silently wins: ``{"amount_vnd": 1000, "amount_vnd": 2000}`` is 2000), integers of
thousands of digits (``int()`` refuses past 4,300 digits with a ``ValueError`` that is not a
``JSONDecodeError``), and nesting deep enough to raise ``RecursionError`` in the parser or in
everything that walks the value afterwards (schema validation, hashing, serialising).
RFC 8259 §4 says names within an object SHOULD be unique and leaves the rest to the receiver;
RFC 7493 (I-JSON) says a receiver MAY refuse duplicates and non-finite numbers. We refuse them.

:func:`loads` parses with hooks that leave a marker where something is wrong, then walks the
value once (iteratively) to find the first marker or the first level past :data:`MAX_DEPTH`,
so the refusal names the place as a JSON pointer (RFC 6901).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "JSONRejected", "loads", "pointer"]

#: Containers (objects and arrays) inside one another. Our deepest request schema nests 4
#: (a dossier's documents: body → documents[] → document → its fields); 32 leaves room for any
#: schema we would write while staying far below the interpreter's recursion limit in every walker.
MAX_DEPTH = 32
#: Characters of one number literal: more than any 64-bit integer or any float needs (``1e308``
#: is 5; ``-9223372036854775808`` is 20; a float's shortest repr is at most 24).
MAX_NUMBER_CHARS = 40


class JSONRejected(ValueError):
    """Well-formed JSON we do not accept; ``pointer`` is where (``""`` for the whole document)."""

    def __init__(self, pointer: str, message: str):
        super().__init__(f"{message} (at {pointer or 'the top level'})")
        self.pointer = pointer
        self.message = message


class _Marker:
    __slots__ = ("message", "key")

    def __init__(self, message: str, key: str | None = None):
        self.message = message
        self.key = key  # a duplicate key: the pointer names it inside its object


def pointer(parts) -> str:
    """A JSON pointer from path parts (``["a", 0, "b/c"]`` -> ``/a/0/b~1c``)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _pairs(items: list[tuple[str, Any]]) -> Any:
    out: dict[str, Any] = {}
    for key, value in items:
        if key in out:
            return _Marker("duplicate key: each name may appear once in an object", key)
        out[key] = value
    return out


def _constant(name: str) -> _Marker:
    return _Marker(f"{name} is not a JSON number: give a finite number")


def _float(text: str) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        return _Marker(f"number literal longer than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    return value if math.isfinite(value) else _Marker(f"{text} is out of range: give a finite number")


def _int(text: str) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        return _Marker(f"number literal longer than {MAX_NUMBER_CHARS} characters")
    return int(text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(text: str) -> str:
    """``text`` with its lone surrogates written as escapes (a pointer that can be answered)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``text`` strictly.

    Raises :class:`json.JSONDecodeError` (with line and column) for malformed JSON,
    ``UnicodeDecodeError`` for bytes that are not UTF-8, and :class:`JSONRejected` (with a JSON
    pointer) for nesting past ``max_depth``, ``NaN``/``Infinity``/overflowing numbers, overlong
    number literals, duplicate keys and strings or keys holding a lone UTF-16 surrogate (``"\\ud800"``
    is valid JSON but no character: it cannot be written back as UTF-8, and every answer, record
    or hash of it raised, a 500). Both are ``ValueError``.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float,
                           parse_int=_int)
    except RecursionError:
        raise JSONRejected("", f"nested deeper than {max_depth} levels") from None
    _check(value, max_depth)
    return value


def _check(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, tuple, int]] = [(value, (), 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, _Marker):
            raise JSONRejected(pointer(path + ((node.key,) if node.key is not None else ())), node.message)
        if isinstance(node, str) and _SURROGATE.search(node):
            raise JSONRejected(pointer(path), "holds a lone UTF-16 surrogate, which is not a character")
        if isinstance(node, dict):
            for key in node:
                if _SURROGATE.search(key):
                    raise JSONRejected(pointer(path + (_printable(key),)), "the name holds a lone UTF-16 surrogate")
        if isinstance(node, (dict, list)):
            if depth + 1 > max_depth:
                raise JSONRejected(pointer(path), f"nested deeper than {max_depth} levels")
            children = node.items() if isinstance(node, dict) else enumerate(node)
            # reversed: the first problem in document order is the one reported
            stack.extend((child, path + (key,), depth + 1) for key, child in reversed(list(children)))
