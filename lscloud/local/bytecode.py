"""The bytecode of the runtime and the functions, compiled once per `lscloud up`, as ``pip install``
compiles an installed package's.

Every function process imports most of ``lscloud`` and its own package. Where the environment
says ``PYTHONDONTWRITEBYTECODE`` (as the Containerfile and many shells do) no process keeps what it
compiled, so each of the fourteen processes of `lscloud up`, and every cold start after it,
compiled the same 15,000 lines again (about a tenth of a function's start). The container image
has the runtime's bytecode from ``pip install``; here the supervisor writes the bytecode of the
sources it runs where the interpreter looks for it (``__pycache__`` beside each file, ignored by
git; under ``PYTHONPYCACHEPREFIX`` when that is set, which the functions inherit). The function
processes still never write. A file whose bytecode is stale or missing is compiled in memory as
before: the cache only ever saves time.

Why not a cache dir of the cloud's own (``PYTHONPYCACHEPREFIX`` set for the functions only): the
prefix applies to every module, so the standard library's and the installed packages' own
bytecode would no longer be found, and each process would compile all of them instead.
"""

from __future__ import annotations

import importlib.util
import py_compile
from pathlib import Path
from typing import Iterable


def _fresh(source: Path, cfile: Path) -> bool:
    try:
        head = cfile.read_bytes()[:16]
        st = source.stat()
    except OSError:
        return False
    return (len(head) == 16 and head[:4] == importlib.util.MAGIC_NUMBER
            and int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF)


def compile_tree(roots: Iterable[Path]) -> int:
    """Compile every ``*.py`` under ``roots`` (folders or files) where the interpreter reads its
    bytecode, unless that bytecode is fresh; returns how many files were compiled. A file that
    does not compile, or a folder that is not writable, is skipped (the import then compiles in
    memory, and reports any error, as without the cache)."""
    compiled = 0
    seen: set[Path] = set()
    for root in roots:
        root = Path(root).resolve()
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for source in files:
            if source in seen or "__pycache__" in source.parts:
                continue
            seen.add(source)
            cfile = Path(importlib.util.cache_from_source(str(source)))
            if _fresh(source, cfile):
                continue
            try:
                py_compile.compile(str(source), cfile=str(cfile), doraise=True)
                compiled += 1
            except (py_compile.PyCompileError, OSError):
                continue
    return compiled
