"""JSON Schema ``pattern`` read as ECMA-262 says, with Python's ``re``.

Python's ``re`` differs from ECMA-262 where it matters for identifiers: ``$`` also matches before
a final newline (``"020095001234\\n"`` matched ``^\\d{12}$``) and ``\\d`` / ``\\w`` match every
script's digits and letters. Kept apart from :mod:`lscloud.validation` (which needs ``jsonschema``)
so that routing by a pattern (:mod:`lscloud.web.pathparams`) costs a function's start no validator.
"""

from __future__ import annotations

import functools
import re

__all__ = ["ecma_regex", "ecma_regex_uncached"]


def ecma_regex_uncached(pattern: str) -> re.Pattern:
    """``pattern`` compiled with ECMA-262 meanings for ``$`` and the ASCII classes, every time: for a
    pattern a caller sent (an NGSI-LD ``q``), which must not push the platform's own patterns out of
    :func:`ecma_regex`'s cache."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            ch = r"\Z"
        out.append(ch)
        i += 1
    return re.compile("".join(out), re.ASCII)


ecma_regex = functools.lru_cache(maxsize=1024)(ecma_regex_uncached)
ecma_regex.__doc__ = """``pattern`` compiled with ECMA-262 meanings (:func:`ecma_regex_uncached`), kept: for the
platform's own patterns (schemas, routes), a bounded set read on every request."""
