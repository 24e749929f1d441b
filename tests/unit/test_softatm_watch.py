"""The soft ATM's long-poll preferences and validators (RFC 7240 ``Prefer: wait``, RFC 9110 ``If-None-Match``)."""

from __future__ import annotations

import pytest

from werkzeug.http import parse_etags

from functions.softatm.function import watch
from functions.softatm.function.routes.tellers import held_tags


@pytest.mark.parametrize("headers, seconds", [
    ([], 0), (["wait=5"], 5), (["respond-async, wait=10"], 10), (['wait="7"'], 7), (["Wait = 3"], 3),
    (["wait=3600"], watch.MAX_WAIT_S), (["wait=soon"], 0), (["handling=lenient"], 0), (["nowait=5"], 0),
    (["handling=strict", "wait=2"], 2),
])
def test_the_wait_preference_is_read_or_ignored_never_refused(headers, seconds):
    assert watch.requested_wait(headers) == seconds


def test_if_none_match_compares_weakly_and_takes_lists_and_star():
    tag = watch.etag({"id": "w-1", "state": "RECEIVED"})
    assert tag.startswith('"') and tag == watch.etag({"state": "RECEIVED", "id": "w-1"})

    def matches(header):
        return held_tags(parse_etags(header))(tag)
    assert matches(tag) and matches("W/" + tag) and matches(f'"x", {tag}')
    assert matches("*")
    assert not matches(None) and not matches('"x"')
    assert watch.etag({"id": "w-1", "state": "RESERVED"}) != tag


def test_a_wait_whose_bound_passes_on_a_wake_up_answers_what_the_store_says(monkeypatch):
    """At the bound a long-poll answers what the store says: a wake-up by a write whose
    consequences are still running, when the bound has passed meanwhile, is followed by a read
    (it answered None — a 304 — for a transfer that had changed)."""
    from types import SimpleNamespace

    clock = iter([0.0, 0.0, 100.0, 100.0, 100.0])
    monkeypatch.setattr(watch, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    held = held_tags(parse_etags(watch.etag({"id": "w-1", "state": "RECEIVED"})))
    w = watch._Waiter()
    w.doc = {"id": "w-1", "state": "RESERVED", "notified": "RECEIVED"}   # its consequences still running
    w.woken.set()
    stored = {"id": "w-1", "state": "RESERVED", "notified": "RECEIVED"}
    view = lambda d: {"id": d["id"], "state": d["state"]}   # noqa: E731
    assert watch.wait(w, held, 5, lambda: stored, view) == stored
    unchanged = {"id": "w-1", "state": "RECEIVED", "notified": "RECEIVED"}
    clock = iter([0.0, 0.0, 100.0, 100.0, 100.0])
    w.doc = dict(unchanged)
    w.woken.set()
    reads = []
    assert watch.wait(w, held, 5, lambda: reads.append(1) or unchanged, view) is None
    assert reads == [1]   # read once at the bound
    # a wait nobody wakes reads the store once, at the bound
    clock = iter([0.0, 0.0, 0.01])
    reads.clear()
    assert watch.wait(watch._Waiter(), held, 0.01, lambda: reads.append(1) or unchanged, view) is None
    assert reads == [1]
