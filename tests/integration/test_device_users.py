"""The device users nats-server admits, as the cluster's sidecar (and the local cloud) reads them
again and again from a real weed mini: every turn lists the credentials, and only one issued,
rotated or revoked since the last turn costs a GET; what a turn answers is always what is stored."""

from __future__ import annotations

import pytest

from lscloud import devices, store
from store_calls import counting

pytestmark = pytest.mark.integration


@pytest.fixture
def issued(object_store, bucket):
    """A device domain's bucket, configured as the function that issues its credentials has it."""
    store.configure(object_store, bucket)
    yield bucket
    store.configure(None)


def _topic(n: int) -> str:
    return f"devices/environment/stations/lsn-{n}/observations"


def _hashes(users: list[dict]) -> dict[str, str]:
    return {u["user"]: u["password"] for u in users}


def test_a_turn_reads_only_the_credentials_that_changed_since_the_last(issued, object_store):
    for n in range(1, 6):
        devices.issue("environment", f"env-lsn-{n}", [_topic(n)], issued_by="operator")
    users_of = devices.UsersReader([issued], object_store, devices.CLUSTER_CONNECTIONS)

    with counting() as calls:
        first = users_of.read()
    assert sorted(_hashes(first)) == [f"env-lsn-{n}" for n in range(1, 6)] and calls["get"] == 5

    with counting() as calls:
        again = users_of.read()
    assert again == first and calls["get"] == 0 and calls["list"] >= 1   # listed, nothing fetched

    # a rotation elsewhere (the function's replica), a new station, a revocation: each one seen
    devices.issue("environment", "env-lsn-2", [_topic(2)], issued_by="operator")
    devices.issue("environment", "env-lsn-6", [_topic(6)], issued_by="operator")
    assert devices.revoke("environment", "env-lsn-4")
    with counting() as calls:
        after = users_of.read()
    hashes, before = _hashes(after), _hashes(first)
    assert sorted(hashes) == ["env-lsn-1", "env-lsn-2", "env-lsn-3", "env-lsn-5", "env-lsn-6"]
    assert hashes["env-lsn-2"] != before["env-lsn-2"] and hashes["env-lsn-1"] == before["env-lsn-1"]
    assert calls["get"] == 2   # the rotated one and the new one

    # what a turn answers is what a reader with nothing held reads
    assert after == devices.UsersReader([issued], object_store, devices.CLUSTER_CONNECTIONS).read()
