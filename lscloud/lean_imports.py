"""Importing a library without an optional dependency it would load for a feature we never use.

A library may import a heavy package at its top only for one feature, inside ``try: import x
except ImportError``: nats-py's transport imports aiohttp for WebSocket servers
(:mod:`lscloud.nats_import`); bm25s imports scipy for a sparse-matrix backend the assistant does not
choose. :func:`import_without` imports such a library with ``import x`` refused, which the library
takes as "x is not installed".

The refusal holds in the importing thread and during that import only: a finder at the head of
``sys.meta_path`` raises ModuleNotFoundError for the hidden names while a thread-local set names
them. Any other import of them — in another thread meanwhile, or in this one afterwards — finds the
real package; a process that imported one before hands it to the library as it always did.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

_refused = threading.local()   # .names: the top-level packages refused to this thread's current import
_installing = threading.Lock()   # one thread at a time puts the finder in place


class _Refuser:
    """The meta path finder: refuses the names :func:`import_without` hides, passes on the rest."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in getattr(_refused, "names", ()):
            raise ModuleNotFoundError(f"{name} is not imported here (lscloud.lean_imports)", name=name)
        return None


def import_without(module: str, *hidden: str) -> ModuleType:
    """``importlib.import_module(module)``, with the top-level packages ``hidden`` refused to it if
    it is not imported yet (see the module's docstring)."""
    if module in sys.modules:
        return sys.modules[module]
    with _installing:
        # installed once, for good: taken out again, an import iterating sys.meta_path in another
        # thread at that moment could skip the finder after it
        if _Refuser not in sys.meta_path:
            sys.meta_path.insert(0, _Refuser)
    before = getattr(_refused, "names", frozenset())
    _refused.names = before | frozenset(hidden)
    try:
        return importlib.import_module(module)
    finally:
        _refused.names = before
