"""Conditional deletes on a store that ignores If-Match on DELETE (MinIO, minio/minio#21677), against
a real weed mini.

weed honours If-Match on DELETE; MinIO deletes whatever is there. To hold the runtime to MinIO's
behaviour, ``s3_faults.IgnoresIfMatchOnDelete`` drops the header from each DELETE before it is sent, so the
real store deletes unconditionally, exactly as MinIO would. Trusting such a store
(``conditional_delete=True``) loses a version written since the read; the tombstone path
(``conditional_delete=False``, the cluster's default) does not.
"""

from __future__ import annotations

import threading

import pytest

from lscloud.config import ConfigError, load
from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.store import leases, objects as objects_mod
from s3_faults import store_like_minio

pytestmark = pytest.mark.integration


def test_trusting_a_store_that_ignores_if_match_on_delete_loses_the_newer_version(base_settings, bucket):
    """The defect the tombstone path exists for: read v1, someone writes v2, delete 'if still v1'."""
    objects, _ = store_like_minio(base_settings, trusted=True)
    v1 = objects.put(bucket, "k", b"v1")
    objects.put(bucket, "k", b"v2", if_match=v1)
    objects.delete(bucket, "k", if_match=v1)          # no error: the store ignored the condition
    with pytest.raises(DoesNotExist):
        objects.get(bucket, "k")                        # v2 is gone


def test_through_a_tombstone_a_stale_delete_fails_and_the_newer_version_stays(base_settings, bucket):
    objects, wire = store_like_minio(base_settings, trusted=False)
    v1 = objects.put(bucket, "k", b"v1")
    v2 = objects.put(bucket, "k", b"v2", if_match=v1)
    with pytest.raises(ConditionalCheckFailed):
        objects.delete(bucket, "k", if_match=v1)
    assert objects.get(bucket, "k").body == b"v2" and wire.deletes == []   # nothing was even sent
    objects.delete(bucket, "k", if_match=v2)
    for read in (objects.get, objects.head):
        with pytest.raises(DoesNotExist):
            read(bucket, "k")
    assert [o.key for o in objects.list(bucket, "")] == []
    assert wire.deletes == [("k", False)]               # the tombstone's delete, which holds no condition
    with pytest.raises(DoesNotExist):
        objects.delete(bucket, "k", if_match=v2)        # gone: as a conditional delete of nothing


def test_a_tombstone_reads_as_missing_and_a_create_takes_its_place(base_settings, bucket):
    """A tombstone left behind (its DELETE failed) is no object to any reader, and a create-only
    write replaces exactly it; an update holding another version is refused."""
    objects, _ = store_like_minio(base_settings, trusted=False)
    old = objects.put(bucket, "notes/a.json", b"{}")
    stone = objects.put(bucket, "notes/a.json", b"", if_match=old, metadata={objects_mod.TOMBSTONE: "1"})
    for read in (objects.get, objects.head):
        with pytest.raises(DoesNotExist):
            read(bucket, "notes/a.json")
    with pytest.raises(ConditionalCheckFailed):
        objects.put(bucket, "notes/a.json", b"stale", if_match=old)   # a writer that read the old version
    fresh = objects.put(bucket, "notes/a.json", b'{"n": 1}', if_none_match=True)
    assert fresh != stone and objects.get(bucket, "notes/a.json").body == b'{"n": 1}'
    with pytest.raises(ConditionalCheckFailed):
        objects.put(bucket, "notes/a.json", b"again", if_none_match=True)   # a real object: the create loses


def test_a_lease_taken_over_is_not_released_by_the_run_that_lost_it(base_settings, bucket):
    """(A model's stale delete on such a store: test_store_model.test_delete_is_conditional_on_the_read_version.)"""
    objects, _ = store_like_minio(base_settings, trusted=False)
    held = leases.acquire(objects, bucket, "leases/x.json", {"expires_at": 0})
    assert isinstance(held, leases.Lease)
    taken = leases.acquire(objects, bucket, "leases/x.json", {"expires_at": 9e9})
    assert isinstance(taken, leases.Lease)
    held.release()
    assert objects.get(bucket, "leases/x.json")   # the new holder's lease is still there


def test_concurrent_deleters_of_one_version_one_wins(base_settings, bucket):
    objects, _ = store_like_minio(base_settings, trusted=False)
    v1 = objects.put(bucket, "k", b"v1")
    outcomes: list[str] = []
    gate = threading.Barrier(4)

    def delete():
        gate.wait()
        try:
            objects.delete(bucket, "k", if_match=v1)
            outcomes.append("deleted")
        except (ConditionalCheckFailed, DoesNotExist) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=delete) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("deleted") == 1, outcomes
    with pytest.raises(DoesNotExist):
        objects.get(bucket, "k")


def test_the_cluster_does_not_trust_the_store_with_conditional_deletes_and_the_local_cloud_does():
    cluster = load({"LSCLOUD_ENV": "cluster", "LSCLOUD_JWT_JWKS_URL": "https://idp/jwks", "K_SERVICE": "border",
                    "LSCLOUD_PSEUDONYM_KEY": "p" * 40})
    assert cluster.s3_conditional_delete is False
    assert load({}).s3_conditional_delete is True       # SeaweedFS honours If-Match on DELETE
    assert load({"LSCLOUD_S3_CONDITIONAL_DELETE": "yes"}).s3_conditional_delete is True
    with pytest.raises(ConfigError, match="LSCLOUD_S3_CONDITIONAL_DELETE"):
        load({"LSCLOUD_S3_CONDITIONAL_DELETE": "maybe"})
