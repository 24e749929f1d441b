"""A function with migration and seed hooks, and waiting for a ``python -m lscloud.serve`` process
started on it to be ready, as `lscloud up` starts one (tests/integration/test_function_start.py,
tests/integration/test_up_forks.py); the hooks' environment under a chosen pseudonym key
(``with_key``, a fixture: ``from serve_support import with_key  # noqa: F401``)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from waiting import wait_for

from lscloud import pseudonyms, runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def with_key(settings, monkeypatch):
    """``with_key(key, service="identity")``: the hooks' environment (what `lscloud up` gives a
    function) under pseudonym ``key``; the test's own key again afterwards."""
    def use(key: str, service: str = "identity") -> None:
        for k, v in settings.replace(pseudonym_key=key).env_vars().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("K_SERVICE", service)

    yield use
    runtime.uninstall()
    pseudonyms.configure(settings.pseudonym_key)


def hooked_function(tmp_path: Path, seed_body: str = "") -> Path:
    """benchmarks/hello with a migration (writes ``hooked/migrated.json``) and a seed (writes
    ``hooked/seeded.json``, or runs ``seed_body`` instead), under ``tmp_path/hooked``."""
    root = tmp_path / "hooked"
    package = root / "function"
    package.mkdir(parents=True)
    for f in ("__init__.py", "func.py"):
        (package / f).write_text((ROOT / "benchmarks" / "hello" / "function" / f).read_text())
    (package / "migrate.py").write_text(
        "def migrate(runtime):\n"
        "    runtime.objects.put(runtime.settings.bucket, 'hooked/migrated.json', b'{}')\n"
        "    return {'moved': 0}\n")
    (package / "seed.py").write_text(
        "def seed(runtime):\n" + (seed_body or
        "    runtime.objects.put(runtime.settings.bucket, 'hooked/seeded.json', b'{}')\n"
        "    return {'rows': 1}\n"))
    return root


def answers_ready(port: int) -> bool:
    """The function on ``port`` answers its readiness with 200."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/readiness", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def running(proc: subprocess.Popen, output: Callable[[], str]) -> Callable[[], bool]:
    """An ``alive`` for :func:`waiting.wait_for`: AssertionError with the tail of ``output()`` once
    ``proc`` has exited."""

    def alive() -> bool:
        assert proc.poll() is None, output()[-3000:]
        return True

    return alive


def wait_ready(port: int, proc: subprocess.Popen, output: Callable[[], str], deadline_s: float = 120.0) -> None:
    """Until the function ``proc`` serves on ``port`` is ready; AssertionError with the tail of
    ``output()`` as soon as it exits instead."""
    wait_for(lambda: answers_ready(port), f"readiness on port {port}", deadline_s, alive=running(proc, output))
