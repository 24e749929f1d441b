"""lscloud.freshness.Revalidating: reference data held in memory, and this replica's own writes."""

from __future__ import annotations

import threading

from lscloud import freshness


def test_a_load_overtaken_by_a_write_here_does_not_undo_it():
    """A revalidation answered before this replica's write, and stored after it, put the old value
    back for its whole bound: an operator's capacity override not shown by the replica that made
    it, a signing certificate just recorded replaced by the one before."""
    held = freshness.Revalidating(16)
    source = {"etag": "e1", "body": "old"}
    held.get("k", lambda etag: (source["etag"], source["body"], 0.0))   # held; the next read revalidates
    answered, written = threading.Event(), threading.Event()

    def slow(etag):
        snapshot = (source["etag"], source["body"])   # the GET answered before the write below
        answered.set()
        written.wait(5)
        return snapshot[0], snapshot[1], 30.0

    reader = threading.Thread(target=lambda: held.get("k", slow))
    reader.start()
    answered.wait(5)
    source.update(etag="e2", body="new")
    held.replace("k", "e2", "new")   # this replica's own write
    written.set()
    reader.join(5)

    def must_not_ask(etag):
        raise AssertionError("asked the source: the write's value should be held")

    assert held.get("k", lambda etag: (source["etag"], source["body"], 30.0)) == "new"
    assert held.get("k", must_not_ask) == "new"


def test_a_load_overtaken_by_a_drop_is_not_kept():
    """Deleted here while another thread was asking: what it read before the delete is not kept."""
    held = freshness.Revalidating(16)
    source: dict = {"k": ("e1", "old")}
    answered, dropped = threading.Event(), threading.Event()
    calls = []

    def load(etag):
        calls.append(etag)
        snapshot = source.get("k")
        if len(calls) == 1:   # the first ask answers before the delete, and returns after it
            answered.set()
            dropped.wait(5)
        return (None, "gone", 0.0) if snapshot is None else (*snapshot, 30.0)

    reader = threading.Thread(target=lambda: held.get("k", load))
    reader.start()
    answered.wait(5)
    source.pop("k")
    held.drop("k")
    dropped.set()
    reader.join(5)
    assert "k" not in held and held.get("k", load) == "gone"
