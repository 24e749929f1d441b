"""Shared fixtures: real nats-server and weed mini on free loopback ports, once per session."""

from __future__ import annotations

import uuid

import pytest

from lscloud import config
from lscloud.local.servers import NatsServer, WeedMini
from lscloud.store.objects import ObjectStore


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory):
    server = NatsServer(data_dir=tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server = WeedMini(data_dir=tmp_path_factory.mktemp("weed")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_settings(s3_server, nats_server, tmp_path_factory):
    """Settings pointing at the session's servers (bucket chosen per test by ``settings``)."""
    return config.load({
        "LSCLOUD_S3_ENDPOINT": s3_server.endpoint,
        "LSCLOUD_S3_ACCESS_KEY": s3_server.access_key,
        "LSCLOUD_S3_SECRET_KEY": s3_server.secret_key,
        "LSCLOUD_NATS_URL": nats_server.url,
        "LSCLOUD_STATE_DIR": str(tmp_path_factory.mktemp("state")),
    })


@pytest.fixture(scope="session")
def object_store(base_settings) -> ObjectStore:
    return ObjectStore.from_settings(base_settings)


@pytest.fixture
def bucket(object_store) -> str:
    """A fresh bucket per test, so tests never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    object_store.ensure_bucket(name)
    return name


@pytest.fixture
def settings(base_settings, bucket):
    """Settings for one test: the session's servers, the test's own bucket and stream."""
    test_settings = base_settings.replace(bucket=bucket, stream=f"T{uuid.uuid4().hex[:12].upper()}")
    yield test_settings
    # every events stream takes `lscloud.>`: a stream left behind would refuse the next test's
    from lscloud import nonces
    from lscloud.bus import BusUnavailable, delete_streams

    try:
        delete_streams(test_settings, [test_settings.stream, test_settings.stream + "_DLQ",
                                       "KV_" + nonces.bucket(test_settings.stream)])
    except BusUnavailable:
        pass
