"""Functions and the gateway run on uvloop when it is installed (lscloud.loops), asyncio's loop when not."""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path

import pytest

from lscloud import loops, serve

uvloop = pytest.importorskip("uvloop")
HELLO = Path(__file__).resolve().parents[2] / "benchmarks" / "hello"


@pytest.fixture
def policy():
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


async def _loop_type():
    return type(asyncio.get_running_loop())


def test_the_factory_makes_uvloop_loops_when_installed():
    loop = loops.loop_factory()()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_without_uvloop_the_factory_and_install_fall_back_to_asyncio(monkeypatch, policy):
    monkeypatch.setitem(sys.modules, "uvloop", None)   # import uvloop now raises ImportError
    assert loops.loop_factory() is asyncio.new_event_loop
    assert loops.install() is False
    assert not issubclass(asyncio.run(_loop_type()), uvloop.Loop)


def test_install_puts_every_asyncio_run_on_uvloop(policy):
    assert loops.install() is True
    assert issubclass(asyncio.run(_loop_type()), uvloop.Loop)


def test_a_served_function_runs_on_uvloop(monkeypatch, policy):
    """``python -m lscloud.serve`` (the container's entry and the local cloud's) hands new() to the
    function server; any loop made after (the bus's thread) is uvloop's."""
    from lscloud import function_server

    seen = {}

    def fake_serve(new):
        seen["new"] = new.__name__
        seen["loop"] = asyncio.run(_loop_type())

    monkeypatch.setattr(function_server, "serve", fake_serve)
    try:
        assert serve.main([str(HELLO)]) == 0
    finally:
        gc.unfreeze()   # serve() freezes what its import made: give this test process its collector back
    assert seen == {"new": "new", "loop": uvloop.Loop}
