"""lscloud.lean_imports: a library imported without an optional dependency, refused to that import
only. Each case runs in a fresh interpreter (what a process imported before decides what it gets),
on a library of its own that try-imports a standard module (colorsys: nothing imports it at start)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPTLIB = """
try:
    import colorsys
    HAVE_COLORSYS = True
except ImportError:
    HAVE_COLORSYS = False
"""


@pytest.fixture
def run(tmp_path):
    (tmp_path / "optlib.py").write_text(OPTLIB, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}

    def run(code: str) -> None:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]

    return run


def test_the_hidden_package_is_refused_to_that_import_and_found_afterwards(run):
    run("""
import sys
from lscloud.lean_imports import import_without
assert "colorsys" not in sys.modules
assert import_without("optlib", "colorsys").HAVE_COLORSYS is False
assert "colorsys" not in sys.modules
import colorsys                      # afterwards, the real module
assert colorsys.rgb_to_hsv
""")


def test_a_package_imported_before_is_the_librarys_as_it_was(run):
    run("""
import colorsys
from lscloud.lean_imports import import_without
assert import_without("optlib", "colorsys").HAVE_COLORSYS is True
""")


def test_only_the_importing_thread_is_refused(run):
    """While one thread imports with a package hidden, another importing it gets the real one: the
    finder refuses by a thread-local set, and passes every other import on."""
    run("""
import sys, threading
from lscloud import lean_imports
lean_imports.import_without("optlib", "colorsys")          # installs the finder
assert lean_imports._Refuser in sys.meta_path
assert lean_imports._Refuser.find_spec("colorsys") is None
seen = []
lean_imports._refused.names = frozenset({"colorsys"})
try:
    other = threading.Thread(target=lambda: seen.append(lean_imports._Refuser.find_spec("colorsys")))
    other.start(); other.join()
    try:
        lean_imports._Refuser.find_spec("colorsys")
        raise SystemExit("not refused in the importing thread")
    except ModuleNotFoundError:
        pass
finally:
    lean_imports._refused.names = frozenset()
assert seen == [None], seen
import colorsys
""")
