"""Blobs against a real weed mini: content addressing, checks on the way in, reads with their type."""

import hashlib

import pytest

from lscloud.store import BlobRef, BlobRejected, BlobStore, DoesNotExist, InvalidKey
from lscloud.store.errors import IntegrityError

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32)


@pytest.fixture
def blobs(object_store, bucket):
    return BlobStore(object_store, bucket, max_bytes=1024)


def test_put_get_content_addressed(blobs, object_store, bucket):
    ref = blobs.put(PDF, "application/pdf", filename="tờ khai.pdf")
    digest = hashlib.sha256(PDF).hexdigest()
    assert ref == BlobRef(digest, len(PDF), "application/pdf", f"blobs/{digest[:2]}/{digest}", "tờ khai.pdf")
    assert ref.to_dict() == {"sha256": digest, "size": len(PDF), "media_type": "application/pdf",
                             "key": ref.key, "filename": "tờ khai.pdf"}
    assert blobs.get(digest) == PDF and blobs.get(digest.upper()) == PDF
    stored = object_store.get(bucket, ref.key)
    assert stored.content_type == "application/pdf" and stored.body == PDF
    assert blobs.exists(digest) and not blobs.exists("0" * 64)


def test_same_bytes_twice_is_idempotent(blobs, object_store, bucket):
    first = blobs.put(PNG, "image/png")
    second = blobs.put(PNG, "IMAGE/PNG; charset=binary", filename="../../etc/x.png")
    assert (second.sha256, second.key, second.media_type) == (first.sha256, first.key, "image/png")
    assert second.filename == "x.png"  # only the last path component is kept
    assert [o.key for o in object_store.list(bucket, "blobs/")] == [first.key]


def test_damaged_copy_is_detected(blobs, object_store, bucket):
    ref = blobs.put(JPEG, "image/jpeg")
    object_store.put(bucket, ref.key, JPEG + b"tampered")  # someone bypassed the blob store
    with pytest.raises(IntegrityError) as err:
        blobs.get(ref.sha256)
    assert err.value.cause == "integrity"
    with pytest.raises(IntegrityError):
        blobs.put(JPEG, "image/jpeg")


@pytest.mark.parametrize("data,media_type,cause", [
    (b"x" * 1025, "text/plain", "too_large"),
    (b"", "text/plain", "empty"),
    (b"<html></html>", "text/html", "unsupported_media_type"),
    (b"MZ\x90\x00", "application/x-msdownload", "unsupported_media_type"),
    (b"<script>alert(1)</script>", "application/pdf", "media_type_mismatch"),
    (PNG, "image/jpeg", "media_type_mismatch"),
    (JPEG, "image/png", "media_type_mismatch"),
    (PDF, "text/csv", "media_type_mismatch"),
    (PNG, "application/json", "media_type_mismatch"),
    (b"{not json", "application/json", "media_type_mismatch"),
    (b"a,b\n\xff\xfe,1\n", "text/csv", "media_type_mismatch"),
])
def test_rejected_on_the_way_in(blobs, object_store, bucket, data, media_type, cause):
    with pytest.raises(BlobRejected) as err:
        blobs.put(data, media_type)
    assert err.value.cause == cause
    assert list(object_store.list(bucket, "blobs/")) == []


def test_accepted_types(blobs):
    assert blobs.put(b'{"a": [1, 2]}', "application/json").media_type == "application/json"
    assert blobs.put("mã,tên\n20,Lạng Sơn\n".encode(), "text/csv").media_type == "text/csv"
    narrow = BlobStore(blobs.objects, blobs.bucket, max_bytes=1024, allowed_types=("application/pdf",))
    with pytest.raises(BlobRejected) as err:
        narrow.put(PNG, "image/png")
    assert err.value.cause == "unsupported_media_type"


@pytest.mark.parametrize("bad", ["", "abc", "../" + "a" * 61, "g" * 64, "a" * 63, "a" * 65, None])
def test_digests_are_validated(blobs, bad):
    with pytest.raises(InvalidKey):
        blobs.get(bad)
    with pytest.raises(InvalidKey):
        blobs.read(bad)


def test_missing_blob(blobs):
    with pytest.raises(DoesNotExist):
        blobs.get("a" * 64)
    with pytest.raises(DoesNotExist):
        blobs.read("a" * 64)


def test_a_read_answers_the_stored_media_type(blobs):
    pdf, png = blobs.put(PDF, "application/pdf"), blobs.put(PNG, "image/png")
    assert blobs.read(pdf.sha256) == (PDF, "application/pdf")
    assert blobs.read(png.sha256.upper()) == (PNG, "image/png")
