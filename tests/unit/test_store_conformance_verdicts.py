"""The store check's verdicts on stores that break a promise. The real weed mini keeps them all
(tests/integration/test_store_conformance.py), so the breaks come from a small in-memory S3 with the
faults of MinIO releases (minio/minio#21526, #21677) switched on one at a time: this shows the
check can fail, and names the right promise when it does."""

from __future__ import annotations

import hashlib
import threading

import pytest

from lscloud.store import conformance
from lscloud.store.s3http import Reply


class FaultyS3:
    """Just enough of S3's object calls for the check, with optional faults."""

    def __init__(self, *, if_match_on_missing_writes=False, delete_ignores_if_match=False, no_create_only=False,
                 no_conditional_get=False):
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.faults = dict(if_match_on_missing_writes=if_match_on_missing_writes,
                           delete_ignores_if_match=delete_ignores_if_match, no_create_only=no_create_only,
                           no_conditional_get=no_conditional_get)

    @staticmethod
    def etag(body: bytes) -> str:
        return f'"{hashlib.md5(body).hexdigest()}"'

    def request(self, operation, method, bucket, key="", *, headers=None, body=b"", conditional=False, params=()):
        h = headers or {}
        with self.lock:
            current = self.objects.get(key)
            if method == "PUT":
                if h.get("if-none-match") == "*" and current is not None and not self.faults["no_create_only"]:
                    return Reply(412, {}, b"")
                if "if-match" in h:
                    if current is None and not self.faults["if_match_on_missing_writes"]:
                        return Reply(404, {}, b"")
                    if current is not None and self.etag(current) != h["if-match"]:
                        return Reply(412, {}, b"")
                self.objects[key] = body
                return Reply(200, {"etag": self.etag(body)}, b"")
            if current is None:
                return Reply(404 if method != "DELETE" else 204, {}, b"")
            if method == "DELETE":
                if "if-match" in h and self.etag(current) != h["if-match"] and not self.faults["delete_ignores_if_match"]:
                    return Reply(412, {}, b"")
                del self.objects[key]
                return Reply(204, {}, b"")
            if h.get("if-none-match") == self.etag(current) and not self.faults["no_conditional_get"]:
                return Reply(304, {}, b"")
            return Reply(200, {"etag": self.etag(current)}, current if method == "GET" else b"")


def broken(store: FaultyS3, conditional_delete: bool = True) -> dict[str, conformance.Finding]:
    return {f.name: f for f in conformance.check(store, "b", conditional_delete=conditional_delete, writers=4)
            if f.required and not f.kept}


def test_a_faultless_store_keeps_every_promise_and_is_left_empty():
    store = FaultyS3()
    assert broken(store) == {}
    assert store.objects == {}


@pytest.mark.parametrize("fault, promise", [
    ("if_match_on_missing_writes", "PUT under If-Match on a missing key is refused"),
    ("no_conditional_get", "GET with If-None-Match answers 304 for the same version"),
])
def test_each_fault_is_named(fault, promise):
    found = broken(FaultyS3(**{fault: True}))
    assert list(found) == [promise]
    if fault == "if_match_on_missing_writes":
        assert "minio/minio#21526" in found[promise].detail


def test_a_store_without_create_only_fails_the_create_and_the_race():
    found = broken(FaultyS3(no_create_only=True))
    assert "create-only PUT (If-None-Match: *)" in found
    assert "4 racing creates: exactly one wins" in found


def test_a_delete_that_ignores_if_match_is_unsafe_only_where_the_runtime_relies_on_it():
    store = FaultyS3(delete_ignores_if_match=True)
    found = broken(store, conditional_delete=True)
    assert list(found) == ["DELETE under If-Match (configured: true)"]
    assert "LSCLOUD_S3_CONDITIONAL_DELETE=false" in found["DELETE under If-Match (configured: true)"].detail
    # configured for it (the tombstone write carries the condition): a note, nothing broken
    assert broken(store, conditional_delete=False) == {}
    note = conformance.check(store, "b", conditional_delete=False, writers=2)[-1]
    assert note.kept and not note.required and "needs LSCLOUD_S3_CONDITIONAL_DELETE=false" in note.detail
    assert "note" in conformance.format_findings([conformance.Finding("x", False, "y", required=False)])
