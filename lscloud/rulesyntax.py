"""Werkzeug's route syntax, read in one place: ``<converter(arguments):name>``.

The OpenAPI document (``{name}`` paths and each parameter's schema), the route spans and metrics
name (``http.route``) and the access tables (:mod:`lscloud.rolematrix`) all read a rule's
parameters. They read them with this one expression, Werkzeug's own (``_part_re`` in
``werkzeug.routing.rules``, which is private), so an argument holding ``)`` or ``:`` — a schema
pointer, a quoted default — is read as the router reads it. A converter instance is built from the
rule's text with Werkzeug's public pieces (:func:`converter`), not taken from the rule's internals.
"""

from __future__ import annotations

import re
from typing import Iterator

from werkzeug.routing import BaseConverter, Map, parse_converter_args

__all__ = ["PARAMETER", "converter", "openapi_path", "parameters"]

PARAMETER = re.compile(r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<arguments>.*?)\))?:)?"
                       r"(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
"""One parameter of a rule: its converter (absent: ``default``), the converter's arguments as
written, and its name."""


def parameters(rule: str) -> Iterator[re.Match]:
    """The parameters of ``rule``, in order (:data:`PARAMETER` matches)."""
    return PARAMETER.finditer(rule)


def openapi_path(rule: str) -> str:
    """``rule`` as an OpenAPI path: each parameter written ``{name}``."""
    return PARAMETER.sub(lambda m: "{" + m.group("name") + "}", rule)


def converter(url_map: Map, parameter: re.Match) -> BaseConverter:
    """The converter ``url_map`` makes of one parameter (:data:`PARAMETER` match), as the router does."""
    kind = parameter.group("converter") or "default"
    args, kwargs = parse_converter_args(parameter.group("arguments")) if parameter.group("arguments") else ((), {})
    return url_map.converters[kind](url_map, *args, **kwargs)
