"""The bytecode of the runtime and the functions, compiled once per local cloud under its state dir.

Every function process imports most of ``lscloud`` and its own package. Where the environment
says ``PYTHONDONTWRITEBYTECODE`` (as the Containerfile and many shells do) no process keeps what it
compiled, so each of the fourteen processes of `lscloud up` compiled the same 15,000 lines again,
and so did every cold start. The container image has the runtime's bytecode from ``pip install``;
here the supervisor writes it once, into ``<state dir>/pycache`` (never into the source tree), and
every function process reads it from there (``PYTHONPYCACHEPREFIX``, :func:`function_env
<lscloud.local.supervisor.function_env>`). A file whose bytecode is stale or missing is compiled
in memory as before: the cache only ever saves time.
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
import sys
from pathlib import Path
from typing import Iterable


def pycache_dir(state_dir: str | os.PathLike) -> Path:
    """Where a local cloud keeps its bytecode (``PYTHONPYCACHEPREFIX`` of its functions)."""
    return Path(state_dir).resolve() / "pycache"


def cache_path(prefix: Path, source: Path) -> Path:
    """The file the interpreter reads for ``source`` under ``PYTHONPYCACHEPREFIX=prefix``
    (what :func:`importlib.util.cache_from_source` answers with that prefix)."""
    source = Path(source).resolve()
    tag = sys.implementation.cache_tag
    return Path(prefix) / source.parent.relative_to(source.anchor) / f"{source.stem}.{tag}.pyc"


def _fresh(source: Path, cfile: Path) -> bool:
    try:
        head = cfile.read_bytes()[:16]
        st = source.stat()
    except OSError:
        return False
    return (len(head) == 16 and head[:4] == importlib.util.MAGIC_NUMBER
            and int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF)


def compile_tree(prefix: Path, roots: Iterable[Path]) -> int:
    """Compile every ``*.py`` under ``roots`` into ``prefix`` unless its bytecode there is fresh;
    returns how many files were compiled. A file that does not compile is skipped (its import
    reports the error, as without the cache)."""
    compiled = 0
    seen: set[Path] = set()
    for root in roots:
        root = Path(root).resolve()
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for source in files:
            if source in seen or "__pycache__" in source.parts:
                continue
            seen.add(source)
            cfile = cache_path(prefix, source)
            if _fresh(source, cfile):
                continue
            try:
                py_compile.compile(str(source), cfile=str(cfile), doraise=True)
                compiled += 1
            except (py_compile.PyCompileError, OSError):
                continue
    return compiled
