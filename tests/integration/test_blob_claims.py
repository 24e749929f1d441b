"""Uploads a record names later (photos): kept only once claimed. An upload nobody claimed within its
time is deleted by the runtime's sweep; one a record claimed is kept for good; a claim and the
sweep's delete exclude each other. These uploads (public ones too) were kept for good."""

from __future__ import annotations

import dataclasses
import importlib
import time

import pytest

from lscloud import runonce, runtime, store

blobs_mod = importlib.import_module("lscloud.store.blobs")   # the module (store.blobs is the function)

pytestmark = pytest.mark.integration

PREFIX = "t-claimed-photos"
store.claimed_only(PREFIX, __name__, unclaimed_s=60)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)


def png(n: int) -> bytes:
    return PNG + n.to_bytes(4, "big")


@pytest.fixture
def photos(install):
    install()
    return store.blobs(PREFIX, allowed_types=("image/png",))


def sweep_past_their_time() -> runonce.Report:
    rt = runtime.current()
    return runonce.sweep(rt.objects, rt.settings.bucket, rt.settings, now=time.time() + 61)


def test_an_unclaimed_upload_is_deleted_and_a_claimed_one_kept(photos):
    named, forgotten = photos.put(png(1), "image/png"), photos.put(png(2), "image/png")
    assert photos.claim(named.sha256)
    report = sweep_past_their_time()
    assert report.counts[PREFIX + "-unclaimed/"]["deleted"] == 2   # both markers done with
    assert photos.exists(named.sha256) and not photos.exists(forgotten.sha256)
    assert photos.claim(named.sha256)                 # claimed again (another record): still there
    assert not photos.claim(forgotten.sha256)         # asked for again: upload it anew
    again = photos.put(png(2), "image/png")
    assert photos.claim(again.sha256) and photos.exists(again.sha256)
    objects, bucket = runtime.current().objects, runtime.current().settings.bucket
    assert [o.key for o in objects.list(bucket, PREFIX + "-claims/")] == [
        f"{PREFIX}-claims/{s}" for s in sorted((named.sha256, again.sha256))]


def test_a_claim_after_the_sweep_took_it_finds_it_gone_and_one_before_keeps_it(photos):
    early, late = photos.put(png(3), "image/png"), photos.put(png(4), "image/png")
    reclaim = blobs_mod._reclaim
    seen: list[tuple[str, bool]] = []

    def racing(objects, bucket, marker):
        # a record claims one of them as the sweep gets to it: before the sweep's own claim for
        # `early`, after it (between the sweep's claim and its delete) for `late`
        digest = marker.rpartition("-unclaimed/")[2]
        if digest == early.sha256:
            seen.append(("early", photos.claim(digest)))
            return reclaim(objects, bucket, marker)
        objects.put(bucket, f"{PREFIX}-claims/{digest}", blobs_mod._DELETING, if_none_match=True)
        seen.append(("late", photos.claim(digest)))
        return reclaim(objects, bucket, marker)

    kind = next(k for k in runonce.kinds() if k.prefix == PREFIX + "-unclaimed/")
    runonce.register(dataclasses.replace(kind, on_expiry=racing))
    try:
        sweep_past_their_time()
    finally:
        runonce.register(kind)
    assert sorted(seen) == [("early", True), ("late", False)]
    assert photos.exists(early.sha256) and not photos.exists(late.sha256)


def test_a_claim_given_back_while_the_upload_landed_is_taken_back(photos):
    """R1 claims bytes not uploaded yet (its HEAD: 404); the upload lands; R2 claims them (finding
    R1's claim there, and the blob); R1 gives its claim back. R2's record names a blob no claim
    holds, and the sweep deleted it (the lost-updates survey forced this interleaving)."""
    import threading

    data = png(9)
    digest = __import__("hashlib").sha256(data).hexdigest()
    objects = runtime.current().objects
    key, real_head = photos.key_for(digest), objects.head
    looked, go_on = threading.Event(), threading.Event()

    def head(bucket, k):
        try:
            return real_head(bucket, k)
        finally:
            if threading.current_thread().name == "R1" and k == key and not looked.is_set():
                looked.set()
                go_on.wait(10)

    objects.head = head
    try:
        out = {}
        r1 = threading.Thread(target=lambda: out.__setitem__("R1", photos.claimed(digest)), name="R1")
        r1.start()
        assert looked.wait(10)
        ref = photos.put(data, "image/png")          # the upload lands
        out["R2"] = photos.claimed(digest)            # another record names the bytes
        go_on.set()
        r1.join(10)
    finally:
        objects.head = real_head
    assert out["R2"] is not None
    sweep_past_their_time()
    assert photos.exists(ref.sha256)


def test_a_claim_of_what_was_never_uploaded_leaves_nothing(photos):
    never = "ab" * 32
    assert not photos.claim(never)
    objects, bucket = runtime.current().objects, runtime.current().settings.bucket
    assert list(objects.list(bucket, PREFIX + "-claims/")) == []


def test_a_store_without_claims_keeps_every_blob_and_claim_is_exists(install):
    install()
    kept = store.blobs("t-kept-files", allowed_types=("image/png",))
    ref = kept.put(png(5), "image/png")
    assert kept.claim(ref.sha256) and not kept.claim("cd" * 32)
    objects, bucket = runtime.current().objects, runtime.current().settings.bucket
    assert list(objects.list(bucket, "t-kept-files-unclaimed/")) == []
