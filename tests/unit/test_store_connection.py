"""The store's connection: installed once per process (store.configure), or given to one thread or
task for a block (store.using) without changing what the others use."""

from __future__ import annotations

import threading

import pytest

from lscloud import store


@pytest.fixture
def installed():
    before = store._default
    store.configure("process-store", "process-bucket")
    yield
    store._default = before


def test_using_gives_the_block_its_own_bucket_and_restores_the_installed_one(installed):
    assert store.connection() == ("process-store", "process-bucket")
    with store.using("other-store", "domain-a"):
        assert store.connection() == ("other-store", "domain-a")
        with store.using("other-store", "domain-b"):
            assert store.connection() == ("other-store", "domain-b")
        assert store.connection() == ("other-store", "domain-a")
    assert store.connection() == ("process-store", "process-bucket")


def test_using_in_one_thread_leaves_the_others_on_the_installed_connection(installed):
    inside, seen_elsewhere = threading.Event(), []
    done = threading.Event()

    def reader():
        with store.using("other-store", "domain-a"):
            inside.set()
            done.wait(10)

    t = threading.Thread(target=reader)
    t.start()
    inside.wait(10)
    seen_elsewhere.append(store.connection())
    done.set()
    t.join(10)
    assert seen_elsewhere == [("process-store", "process-bucket")]


def test_using_restores_after_a_failure(installed):
    with pytest.raises(RuntimeError):
        with store.using("other-store", "domain-a"):
            raise RuntimeError("the read failed")
    assert store.connection() == ("process-store", "process-bucket")


def test_a_scan_in_a_using_block_reads_its_items_from_that_bucket_in_every_pool_thread(monkeypatch):
    # a scan fetches its items from a thread pool: each thread must read where the block said
    from lscloud.store import Model, attributes as A

    class Thing(Model):
        class Meta:
            table = "things"

        id = A.UnicodeAttribute(hash_key=True)

    seen = []

    def load(key, *, reference=False, conn=None):
        seen.append(conn or Thing._conn())

    monkeypatch.setattr(Thing, "_load", staticmethod(load))
    before = store._default
    store._default = None   # as in the device-users sidecar: nothing installed for the process
    try:
        with store.using("other-store", "domain-a"):
            Thing._load_many([f"things/{i}" for i in range(8)])
    finally:
        store._default = before
    assert seen == [("other-store", "domain-a")] * 8


def test_a_refused_blob_says_why_in_vietnamese_once_for_every_function():
    """Border, dossiers and documents each kept their own table of the store's refusal causes in
    Vietnamese; the refusal carries it."""
    from lscloud.store import BlobRejected

    assert BlobRejected("x", cause="too_large").message_vi == "tệp vượt quá dung lượng cho phép"
    assert BlobRejected("x", cause="media_type_mismatch").message_vi.startswith("nội dung tệp")
    assert BlobRejected("x").message_vi == "tệp không hợp lệ"
