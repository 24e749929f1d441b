"""Path parameters, matched and documented as exactly as the body fields they name.

A route names an id whose shape a body schema already states (a transfer's client-chosen id is
``^[A-Za-z0-9_-]{8,64}$`` in ``softatm/transfer-create.json``) with the ``schema`` converter::

    @bp.get('/v1/transfers/<schema("softatm/transfer-create.json#/properties/id"):tid>')

The route then matches only such ids (a segment of another shape is not this route: ``GET
/v1/activities/sync`` is a 405 naming the ``POST`` that is there, not a read of an activity called
"sync"), and ``/openapi.json`` documents the parameter with that schema, so clients and
validators see the same rule the body has. The pattern is matched with the body's ECMA-262 meaning
(:func:`lscloud.patterns.ecma_regex`). A value the view answers better than a route miss can (a
400 naming it, or its own not-found type) is documented the same way but routed whatever it holds
(``match=False``).

The runtime's own routes (dead letters, download links) name its schemas as ``lscloud/<file>``
(:data:`RUNTIME_SCHEMAS`), which every app can read whether or not it has schemas of its own.

Every other path parameter is documented with :data:`PATH_SEGMENT`: what the platform's gateway
lets through as one segment at all (:mod:`lscloud.local.paths`; a test holds the two together).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from werkzeug.routing import BaseConverter, IntegerConverter, ValidationError

from .. import rulesyntax
from ..patterns import ecma_regex

__all__ = ["PATH_SEGMENT", "converter_for", "parameter_schema", "query_schema", "route_template"]

_NOT_FIRST = r"\x00-\x20\x7f-\xa0/\\\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
PATH_SEGMENT = (rf"^(?![\s\S]*%[0-9A-Fa-f]{{2}})"
                rf"(?:[^{_NOT_FIRST}.]|[^{_NOT_FIRST}][^\x00-\x1f\x7f-\x9f/\\]*[^{_NOT_FIRST}.])$")
"""A decoded path segment the gateway forwards: no control character (C0, DEL, C1), no ``/`` or
``\\``, no whitespace at either end, no ``.`` at the end, no percent-escape left after decoding."""


@functools.lru_cache(maxsize=1024)
def route_template(rule: str) -> str:
    """``rule`` as spans and metrics name it: ``<schema("…"):tid>`` written ``<tid>``, as the route
    was written before it had a schema (``http.route`` stays short and the dashboards' names hold)."""
    return rulesyntax.PARAMETER.sub(
        lambda m: f"<{m.group('name')}>" if m.group("converter") == "schema" else m.group(0), rule)


@functools.lru_cache(maxsize=256)
def _document(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _pointer(doc: dict, pointer: str, where: str) -> Any:
    node: Any = doc
    for token in [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]:
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise ValueError(f"{where}: no {token!r} at {pointer!r}")
    return node


RUNTIME_SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "schemas"
"""The runtime's own path parameters' schemas (its platform routes'), named ``lscloud/<file>``."""
RUNTIME_PREFIX = "lscloud/"


def _subschema(schemas_dir: Path | None, ref: str) -> dict:
    file, _, pointer = ref.partition("#")
    if file.startswith(RUNTIME_PREFIX):
        base, file = RUNTIME_SCHEMAS, file[len(RUNTIME_PREFIX):]
    elif schemas_dir is None:
        raise ValueError(f"path parameter schema {ref!r}: the app has no schemas_dir")
    else:
        base = schemas_dir
    doc = _document(base / file)
    node = _pointer(doc, pointer, ref)
    if not isinstance(node, dict):
        raise ValueError(f"{ref}: not a schema")
    return node


def _inner_regex(schema: dict, ref: str) -> str:
    """The schema's rule as a regex for one path segment (no anchors)."""
    if "enum" in schema:
        if not all(isinstance(v, str) and v for v in schema["enum"]):
            raise ValueError(f"{ref}: a path parameter's enum holds non-empty strings only")
        return "|".join(re.escape(v) for v in schema["enum"])
    pattern = schema.get("pattern")
    if not isinstance(pattern, str) or not pattern.startswith("^") or not pattern.endswith("$") \
            or pattern.endswith("\\$"):
        raise ValueError(f"{ref}: a path parameter needs an anchored pattern (^…$) or an enum")
    return pattern[1:-1]


def converter_for(schemas_dir: Path | None) -> type[BaseConverter]:
    """The ``schema`` converter of an app whose schemas are under ``schemas_dir``."""

    class SchemaConverter(BaseConverter):
        """``<schema("file.json#/json/pointer"):name>``: a segment that the pointed-at schema accepts.

        ``match=False`` (``<schema("…", match=False):name>``) documents the schema but routes any
        segment: for a value the view answers itself, with a 400 naming it (a malformed code is the
        caller's mistake to be told of, not an address that does not exist) or its own not-found."""

        def __init__(self, map, ref: str, match: bool = True):
            super().__init__(map)
            self.schema = _subschema(schemas_dir, ref)
            inner = _inner_regex(self.schema, ref)
            self.match = match
            self._lengths = (self.schema.get("minLength", 0), self.schema.get("maxLength")) if match else (0, None)
            if match:
                # the pattern in the body's ECMA-262 reading (ecma_regex's source: $ is the end, \d
                # and \w ASCII under the scoped flag); Werkzeug anchors each segment's regex with \Z,
                # so a segment that matches here is one the body's pattern accepts
                self.regex = f"(?a:{ecma_regex(inner).pattern})"

        def to_python(self, value: str) -> str:
            low, high = self._lengths
            if len(value) < low or (high is not None and len(value) > high):
                raise ValidationError()
            return value

    return SchemaConverter


# a file's annotations, not rules: a parameter's document states only what is checked
_ANNOTATIONS = ("$schema", "$id", "$ref", "$comment", "title", "examples", "default")


def _rules(schema: dict) -> dict:
    return {k: v for k, v in schema.items() if k not in _ANNOTATIONS}


def query_schema(schemas_dir: Path | None, ref: str) -> dict:
    """The rule of the schema ``ref`` (``"file.json#/pointer"``, as the ``schema`` converter takes)
    for a query parameter of :func:`lscloud.web.query_params`: a code a body and a path already
    name is then checked by the same rule in a query string, not by a looser copy of it. Read when
    the route is declared (one small file, cached)."""
    return _rules(_subschema(schemas_dir, ref))


def parameter_schema(converter: BaseConverter | None, kind: str | None) -> dict:
    """The OpenAPI schema of a path parameter: its ``schema`` converter's, else by Werkzeug kind."""
    schema = getattr(converter, "schema", None)
    if isinstance(schema, dict):
        return _rules(schema)
    if kind == "int":
        bounds = {"minimum": getattr(converter, "min", None), "maximum": getattr(converter, "max", None)}
        return {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}
    if kind == "float":
        return {"type": "number"}
    if kind == "path":
        return {"type": "string"}   # more than one segment: the gateway's rule is per segment
    if kind == "uuid":
        return {"type": "string", "format": "uuid"}
    return {"type": "string", "pattern": PATH_SEGMENT}


class BoundedInt(IntegerConverter):
    """``<int:…>`` with at most :data:`MAX_INT_DIGITS` digits: Werkzeug's converter hands any run of
    digits to ``int()``, which refuses more than 4,300 (Python 3.11) with a ValueError raised while
    the route is matched, before any view or check: a 500 for anyone's URL (``/v1/registers/<4,301
    digits>``, the bounds survey). Longer runs are not this route (a 404)."""

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, *args, **kwargs)
        if not self.fixed_digits:
            self.regex = ("-?" if self.signed else "") + rf"\d{{1,{MAX_INT_DIGITS}}}"


MAX_INT_DIGITS = 18
"""The digits an ``int`` path parameter may have (any of them fits a signed 64-bit integer)."""
