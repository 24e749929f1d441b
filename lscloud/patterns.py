"""JSON Schema ``pattern`` read as ECMA-262 says, with Python's ``re``.

Python's ``re`` differs from ECMA-262 where it matters for identifiers: ``$`` also matches before
a final newline (``"020095001234\\n"`` matched ``^\\d{12}$``) and ``\\d`` / ``\\w`` match every
script's digits and letters. Kept apart from :mod:`lscloud.validation` (which needs ``jsonschema``)
so that routing by a pattern (:mod:`lscloud.web.pathparams`) costs a function's start no validator.
"""

from __future__ import annotations

import functools
import re

__all__ = ["ecma_regex"]


@functools.lru_cache(maxsize=1024)
def ecma_regex(pattern: str) -> re.Pattern:
    """``pattern`` compiled with ECMA-262 meanings for ``$`` and the ASCII classes."""
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
