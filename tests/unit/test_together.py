"""lscloud.aggregate.together: independent writes at once, in the caller's context, all finished
before the first error is raised."""

from __future__ import annotations

import contextvars
import threading

import pytest

from lscloud.aggregate import together

who = contextvars.ContextVar("who", default=None)


def test_results_in_call_order_each_call_in_the_callers_context():
    who.set("caller")
    gate = threading.Barrier(3, timeout=10)   # all three run at once, or this never passes

    def one(n):
        def call():
            gate.wait()
            return n, who.get(), threading.current_thread().name
        return call

    results = together(one(1), one(2), one(3))
    assert [r[:2] for r in results] == [(1, "caller"), (2, "caller"), (3, "caller")]
    assert results[0][2] == threading.current_thread().name
    assert together() == []


def test_the_first_error_is_raised_once_every_call_has_finished():
    finished = []
    release = threading.Event()

    def slow():
        release.wait(10)
        finished.append("slow")

    def fails():
        release.set()
        raise KeyError("first")

    def fails_too():
        raise ValueError("second")

    with pytest.raises(KeyError):
        together(fails, slow, fails_too)
    assert finished == ["slow"]


def test_the_side_pool_runs_every_call_in_the_callers_context():
    """submit and map alike (dossiers' and reports' reads of many records go through map): a side
    call that lost the caller's context would put its S3 span outside the request's trace."""
    from lscloud.aggregate import side_pool

    who.set("request")
    assert side_pool().submit(who.get).result(10) == "request"
    assert list(side_pool().map(lambda _: who.get(), range(3))) == ["request"] * 3
