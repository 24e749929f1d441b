"""A module of a test peer (``peers/softatm-bank-sim``): its folder's name is no identifier, so its
package has no importable real name; :func:`lscloud.loading.load_function` gives it a unique one,
and its modules are found under that."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from lscloud.loading import load_function

PEERS = Path(__file__).resolve().parents[2] / "peers"


def peer_module(peer: str, module: str) -> ModuleType:
    """``peer_module("softatm-bank-sim", "books")``: that module of the peer's function package."""
    return importlib.import_module(f"{load_function(PEERS / peer).__name__}.{module}")
