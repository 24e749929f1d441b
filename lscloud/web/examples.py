"""An example instance of a JSON Schema, for the OpenAPI documents' request bodies.

A schema's own ``examples`` (JSON Schema 2020-12) win: authors write them where a real-looking value
matters. Otherwise :func:`example` builds one from the schema — required members, the first ``enum``
value, ``const``, ``default``, the smallest number in range, a string matching its ``pattern``
(a small walker over Python's regex parser) or ``format`` — and :func:`valid_example` keeps it only if
it validates against the schema, so a document never shows an example its function would refuse.
"""

from __future__ import annotations

import re
from typing import Any

try:  # Python 3.11+: the parser moved
    from re import _constants as _c, _parser as _sre
except ImportError:  # pragma: no cover
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre  # type: ignore[no-redef]

__all__ = ["example", "valid_example"]

_FORMATS = {"date": "2026-03-15", "date-time": "2026-03-15T09:30:00+07:00", "uri": "https://example.vn/hook",
            "email": "nguyen.van.a@example.vn", "uuid": "0b6f7c7e-5d1a-4f3e-9a53-2b1f6f4f9c10",
            "time": "09:30:00+07:00", "ipv4": "192.0.2.10", "hostname": "example.vn"}
_MAX_DEPTH = 12


def _from_pattern(pattern: str, min_len: int = 0) -> str | None:
    """A short string matching ``pattern`` (``None`` when the walker cannot build one)."""
    try:
        parsed = _sre.parse(pattern)
    except re.error:
        return None
    out: list[str] = []

    def pick_in(items) -> str:
        for op, av in items:
            if op is _c.LITERAL:
                return chr(av)
            if op is _c.RANGE:
                lo, hi = av
                for ch in "a0A1":  # a readable character when the range has one
                    if lo <= ord(ch) <= hi:
                        return ch
                return chr(lo)
            if op is _c.CATEGORY:
                return {_c.CATEGORY_DIGIT: "1", _c.CATEGORY_SPACE: " ", _c.CATEGORY_WORD: "a"}.get(av, "a")
        return "a"

    def walk(items) -> None:
        for op, av in items:
            if op is _c.LITERAL:
                out.append(chr(av))
            elif op is _c.NOT_LITERAL or op is _c.ANY:
                out.append("a" if op is _c.ANY or av != ord("a") else "b")
            elif op is _c.IN:
                if av and av[0][0] is _c.NEGATE:
                    out.append("a" if not any(o is _c.LITERAL and a == ord("a") for o, a in av[1:]) else "b")
                else:
                    out.append(pick_in(av))
            elif op is _c.CATEGORY:
                out.append(pick_in([(op, av)]))
            elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
                lo, _hi, sub = av
                for _ in range(lo):
                    walk(sub)
            elif op is _c.SUBPATTERN:
                walk(av[-1])
            elif op is _c.BRANCH:
                walk(av[1][0])
            elif op is _c.AT:
                continue
            else:
                raise ValueError(op)

    try:
        walk(parsed)
    except (ValueError, TypeError):
        return None
    text = "".join(out)
    return text if re.search(pattern, text) and len(text) >= min_len else None


def example(schema: Any, resolver=None, depth: int = 0, root: dict | None = None) -> Any:
    """An instance built from ``schema``; may not validate. ``resolver``: a :mod:`referencing`
    resolver for the schema's ``$ref``s (without one, only local ``#/...`` refs are followed)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if schema.get("examples"):
        return schema["examples"][0]
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    ref = schema.get("$ref")
    if isinstance(ref, str) and resolver is not None:
        try:
            found = resolver.lookup(ref)
        except Exception:  # noqa: BLE001 - an unresolvable ref: no example
            return None
        return example(found.contents, found.resolver, depth + 1, found.contents)
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        return example(node, None, depth + 1, root)
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            return example(schema[key][0], resolver, depth + 1, root)
    if schema.get("allOf"):
        merged: dict = {}
        for part in schema["allOf"]:
            merged |= {k: v for k, v in part.items()}
        return example({**{k: v for k, v in schema.items() if k != "allOf"}, **merged}, resolver, depth + 1, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string" if "pattern" in schema else None
    if kind == "object":
        props = schema.get("properties", {})
        wanted = list(dict.fromkeys([*schema.get("required", []), *props]))
        out = {}
        for name in wanted:
            if name in props:
                out[name] = example(props[name], resolver, depth + 1, root)
        return out
    if kind == "array":
        n = max(int(schema.get("minItems", 1)), 1)
        item = example(schema.get("items", {}), resolver, depth + 1, root)
        if schema.get("uniqueItems") and n > 1:
            return [item]  # one is all we can promise unique; validation decides
        return [item] * n
    if kind in ("integer", "number"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in schema else 0))
        hi = schema.get("maximum")
        value = max(lo, 1) if hi is None or hi >= 1 else lo
        step = schema.get("multipleOf")
        if step:
            value = -(-value // step) * step
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "string":
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        min_len = int(schema.get("minLength", 0))
        if "pattern" in schema:
            found = _from_pattern(schema["pattern"], min_len)
            if found is not None:
                return found
        text = "Lạng Sơn"
        if min_len > len(text):
            text = (text + " ") * (min_len // len(text) + 1)
        return text[: schema.get("maxLength", len(text))]
    return None


def valid_example(schema: dict, errors, resolver=None) -> tuple[bool, Any]:
    """``(True, instance)`` when the example of ``schema`` passes ``errors(instance)`` (the
    function's own validator: a list of errors), else ``(False, the attempt)``."""
    candidate = example(schema, resolver)
    try:
        return not errors(candidate), candidate
    except Exception:  # noqa: BLE001 - an example we cannot check is not shown
        return False, candidate
