"""Run-once records on a real weed mini: one winner, outcomes kept, expired leases taken over once."""

import threading
import time

import pytest

from lscloud.store import leases

pytestmark = pytest.mark.integration


def in_progress(ttl: float) -> dict:
    now = time.time()
    return {"status": leases.IN_PROGRESS, "expires_at": now + ttl}


def test_first_run_owns_the_record_and_others_see_it(object_store, bucket):
    mine = leases.acquire(object_store, bucket, "r/1.json", in_progress(60))
    assert isinstance(mine, leases.Lease)
    theirs = leases.acquire(object_store, bucket, "r/1.json", in_progress(60))
    assert theirs["status"] == leases.IN_PROGRESS
    assert mine.complete({"status": leases.COMPLETED, "expires_at": time.time() + 60, "answer": 42})
    assert leases.acquire(object_store, bucket, "r/1.json", in_progress(60))["answer"] == 42


def test_released_record_lets_the_retry_run(object_store, bucket):
    leases.acquire(object_store, bucket, "r/2.json", in_progress(60)).release()
    assert isinstance(leases.acquire(object_store, bucket, "r/2.json", in_progress(60)), leases.Lease)


def test_expired_lease_is_taken_over_by_exactly_one(object_store, bucket):
    crashed = leases.acquire(object_store, bucket, "r/3.json", in_progress(-1))
    assert isinstance(crashed, leases.Lease)
    results = []

    def take():
        try:
            results.append(leases.acquire(object_store, bucket, "r/3.json", in_progress(60)))
        except leases.LeaseContended:
            results.append("contended")

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, leases.Lease) for r in results) == 1
    # the crashed run cannot complete over the new owner's record
    assert crashed.complete({"status": leases.COMPLETED, "expires_at": time.time() + 60}) is False


def test_unreadable_record_is_taken_over(object_store, bucket):
    object_store.put(bucket, "r/4.json", b"not json")
    assert isinstance(leases.acquire(object_store, bucket, "r/4.json", in_progress(60)), leases.Lease)
