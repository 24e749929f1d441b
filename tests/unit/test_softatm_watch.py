"""The soft ATM's long-poll preferences and validators (RFC 7240 ``Prefer: wait``, RFC 9110 ``If-None-Match``)."""

from __future__ import annotations

import pytest

from functions.softatm.function import watch


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
    assert watch.matches(tag, tag) and watch.matches("W/" + tag, tag) and watch.matches(f'"x", {tag}', tag)
    assert watch.matches("*", tag)
    assert not watch.matches(None, tag) and not watch.matches('"x"', tag)
    assert watch.etag({"id": "w-1", "state": "RESERVED"}) != tag
