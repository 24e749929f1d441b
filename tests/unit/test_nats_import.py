"""nats-py is imported without aiohttp (lscloud.nats_import): every lscloud module importing nats-py
imports that module first, and aiohttp stays importable for whoever needs it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports_nats(tree: ast.Module) -> bool:
    for node in tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        if any(n == "nats" or n.startswith("nats.") for n in names):
            return True
    return False


NATS_USERS = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for p in (ROOT / "lscloud").rglob("*.py")
    if _imports_nats(ast.parse(p.read_text(encoding="utf-8"))))


def test_the_modules_importing_nats_are_found():
    assert {"lscloud.bus", "lscloud.pulls", "lscloud.nonces", "lscloud.delivery"} <= set(NATS_USERS), NATS_USERS


@pytest.mark.parametrize("module", NATS_USERS)
def test_a_module_importing_nats_loads_no_aiohttp(module):
    """Imported first in a fresh interpreter, the module brings in nats-py without aiohttp (its
    WebSocket transport's, about 140 ms of CPU), and aiohttp is still there for those who import it."""
    code = (f"import sys, {module}\n"
            "import nats.aio.transport as transport\n"
            "assert 'aiohttp' not in sys.modules, 'aiohttp imported with nats-py'\n"
            "assert transport.aiohttp is None\n"
            "import aiohttp\n"
            "assert aiohttp.ClientSession\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_aiohttp_imported_before_is_nats_pys_as_it_was():
    code = ("import aiohttp, lscloud.bus\n"
            "import nats.aio.transport as transport\n"
            "assert transport.aiohttp is aiohttp\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
