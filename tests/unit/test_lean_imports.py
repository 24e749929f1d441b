"""lscloud.lean_imports: a library imported without an optional dependency, refused to that import
only; and the libraries the runtime imports so (nats-py without aiohttp, the OpenTelemetry SDK
without psutil), each lscloud module importing one importing its guard first. Each case runs in a
fresh interpreter: what a process imported before decides what it gets. The mechanism is tried on a
library of the test's own that try-imports a standard module (colorsys: nothing imports it at start)."""

from __future__ import annotations

import ast
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


GUARDED = {   # the library (a top-level import of it, or of a module under it) -> (its guard, what it goes without)
    "nats": ("lscloud.nats_import", "aiohttp"),
    "opentelemetry.sdk": ("lscloud.otel_import", "psutil"),
}


def _imported(tree: ast.Module, library: str) -> bool:
    for node in tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        if any(n == library or n.startswith(library + ".") for n in names):
            return True
    return False


USERS = sorted(
    (library, ".".join(p.relative_to(ROOT).with_suffix("").parts))
    for p in (ROOT / "lscloud").rglob("*.py")
    for library in GUARDED
    if _imported(ast.parse(p.read_text(encoding="utf-8")), library))


def test_the_modules_importing_a_guarded_library_are_found():
    found = {(lib, m) for lib, m in USERS}
    assert {("nats", "lscloud.bus"), ("nats", "lscloud.pulls"), ("nats", "lscloud.delivery"),
            ("opentelemetry.sdk", "lscloud.telemetry"), ("opentelemetry.sdk", "lscloud.otlp")} <= found, USERS


@pytest.mark.parametrize("library, module", USERS)
def test_a_module_imports_its_library_without_the_package_it_goes_without(library, module):
    """Imported first in a fresh interpreter, the module brings in its library without the hidden
    package (nats-py's aiohttp: about 115 ms of a function's first publish; the SDK's psutil: not in
    the cluster's images), and the package is still there for whoever imports it."""
    guard, hidden = GUARDED[library]
    done = subprocess.run([sys.executable, "-c", f"""
import sys, importlib.util, importlib, {module}
assert "{guard}" in sys.modules, "{module} imports {library} without {guard}"
assert "{hidden}" not in sys.modules, "{hidden} imported with {library}"
if importlib.util.find_spec("{hidden}") is not None:
    importlib.import_module("{hidden}")    # still importable afterwards
"""], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_aiohttp_imported_before_is_nats_pys_as_it_was():
    done = subprocess.run([sys.executable, "-c", """
import aiohttp, lscloud.bus
import nats.aio.transport as transport
assert transport.aiohttp is aiohttp
"""], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
