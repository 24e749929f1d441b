"""Loading a function's package by its folder, with no runtime around it.

:func:`load_function` is what ``python -m lscloud.serve`` uses to import the ``function`` package it
serves. It lives apart from :mod:`lscloud.knative` (Flask, the object store, telemetry) so that
serving a function that does not use the runtime — the bare ``hello`` the benchmarks compare
against — does not import it: the baseline measures func-python alone.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType


def load_function(path: str | Path) -> ModuleType:
    """Import ``<path>/function``, the function's package.

    Under a ``functions/`` folder that is itself a package (this repository's), the function is
    imported by its real name, ``functions.<name>.function``, so tests and tools import its modules
    by that name too. Elsewhere (test peers such as ``peers/softatm-bank-sim``, a function in a
    temporary folder) it gets a unique name, ``lscloud_fn_<name>``. Several functions load side by
    side in one process; their relative imports work.
    """
    root = Path(path).resolve()
    init = root / "function" / "__init__.py"
    if not init.exists():
        raise FileNotFoundError(f"{init} does not exist: a function needs function/__init__.py")
    parent = root.parent
    if (parent / "__init__.py").exists() and parent.name.isidentifier() and root.name.isidentifier() \
            and (root / "__init__.py").exists():
        home = str(parent.parent)
        if home not in sys.path:
            sys.path.insert(0, home)
        real = f"{parent.name}.{root.name}.function"
        existing = sys.modules.get(real)
        if existing is None or Path(getattr(existing, "__file__", "") or "").resolve() == init:
            module = importlib.import_module(real)
            if Path(module.__file__ or "").resolve() == init:
                return module
        # another checkout's package holds that name in this process: fall back to a unique one
    base = "lscloud_fn_" + re.sub(r"\W", "_", root.name)
    name = base
    existing = sys.modules.get(name)
    if existing is not None:
        if Path(getattr(existing, "__file__", "") or "").resolve() == init:
            return existing
        name = f"{base}_{hashlib.sha256(str(root).encode()).hexdigest()[:8]}"
        if name in sys.modules:
            return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {init}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
