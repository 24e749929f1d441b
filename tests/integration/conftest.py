"""Fixtures every integration test shares: dev keys and tokens, an installed runtime, and a
function started the way Knative starts it (``new()`` then ``start(cfg)``).

Like flaskr's ``conftest.py``: a test asks for ``rt`` (the runtime on the test's own bucket and
stream), ``tokens`` (bearer headers for any role) or ``start_function`` (a real function app on
those settings) instead of building them again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from lscloud import runtime
from lscloud.auth import dev_keys, issue_token
from lscloud.loading import load_function

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def keys(tmp_path) -> tuple[str, str]:
    """A dev signing pair ``(private PEM, public PEM)`` for this test's bearer tokens."""
    return dev_keys(tmp_path / "keys")


class Tokens:
    """Bearer tokens signed with the test's dev key: ``tokens.header("officer", agency="customs")``."""

    def __init__(self, private_pem: str):
        self.private_pem = private_pem

    def token(self, role: str, sub: str | None = None, *, agency: str | None = None, unit: str | None = None,
              ttl_s: int = 3600) -> str:
        return issue_token(self.private_pem, sub or f"{role}-1", role, agency=agency, unit=unit, ttl_s=ttl_s)

    def header(self, role: str, sub: str | None = None, **claims) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, sub, **claims)}"}

    __call__ = header


@pytest.fixture
def tokens(keys) -> Tokens:
    return Tokens(keys[0])


@pytest.fixture
def install(settings, keys) -> Callable[..., runtime.Runtime]:
    """``install(**changes)``: install a runtime on the test's settings (its bucket and stream, the
    test's dev public key) with ``changes``; uninstalled when the test ends."""

    def _install(**changes) -> runtime.Runtime:
        runtime.uninstall()
        return runtime.install(runtime.Runtime(settings.replace(**{"jwt_public_key": keys[1], **changes})))

    yield _install
    runtime.uninstall()


@pytest.fixture
def rt(install) -> runtime.Runtime:
    """The runtime on the test's settings."""
    return install()


@pytest.fixture
def start_function(settings, keys):
    """``start_function("border", **settings_changes)``: the function's ``new()`` started as Knative
    starts it (``start(cfg)`` with the settings' environment), its app ready for a test client;
    stopped when the test ends."""
    started = []

    def _start(name: str, *, functions_dir: Path = ROOT / "functions", **changes):
        module = load_function(functions_dir / name)
        instance = module.new()
        s = settings.replace(**{"service": name, "jwt_public_key": keys[1], **changes})
        started.append(instance)  # stopped at the end even if its start fails half-way (a runtime installed)
        instance.start(s.env_vars())
        instance.app.testing = True
        return instance

    yield _start
    for instance in reversed(started):
        instance.stop()


@pytest.fixture
def peers():
    """The directory (and the other peers) as the digital-society functions ask them over HTTP
    (``digital_support.Peers``); a test module may define its own ``peers`` instead."""
    from digital_support import Peers

    p = Peers()
    yield p
    p.stop()


@pytest.fixture
def serve():
    """``serve(answer, host=...)`` -> a started ``loopback_http.LoopbackServer`` answering the bytes
    ``answer`` scripts (the runtime's HTTP clients' tests), stopped after the test."""
    from loopback_http import LoopbackServer

    servers: list[LoopbackServer] = []

    def start(answer, host: str = "127.0.0.1") -> LoopbackServer:
        servers.append(LoopbackServer(answer, host))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()
