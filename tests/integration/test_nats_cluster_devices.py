"""Field devices on the cluster's NATS, run by a real nats-server with the nats.conf the program
renders for a device domain, and a real object store holding the credentials:

- the accounts file the device-users init container writes before the server starts holds the
  platform's users only, and the server starts with it even when the store does not answer;
- a credential the domain's function issues reaches the server through the sidecar's sync (file
  rewritten, SIGHUP): the device then logs in over MQTT with TLS and its password, and what it
  publishes on its own topic lands in ``<stream>_DEVICES``; a wrong password, no credentials, or
  another device's topic get nothing in;
- a rotated password replaces the old one at the next sync, and revoked credentials are refused and
  their open connection closed;
- the devices relay, as its own certificate-mapped user, moves the message onto the platform's
  stream as the domain's device event (its trace starting at the relay's CONSUMER span), and may
  publish nothing else; its probes say when it is bound to the devices stream and when it stops.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import nats
import nats.errors
import nats.js.errors
import pytest

from lscloud import devices, events, store, telemetry
from lscloud.bus import Bus, BusError
from lscloud.health import HealthServer
from lscloud.local.servers import free_port
from lscloud.store import StoreUnavailable
from lscloud.store.objects import ObjectStore

from nats_cluster_support import (DOMAINS, FUNCTIONS, Server, infra_bus,  # noqa: E402  (puts infra/ on the path)
                                  mqtt_client, small_settings)
from waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.integration

SETTINGS = small_settings(1)
TOPIC = "devices/environment/stations/lsn-1/observations"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("nats-cluster-devices"), SETTINGS, FUNCTIONS, DOMAINS)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def streams(server):
    """The stream Job's three streams, as rendered."""
    async def make():
        bus = Bus(server.settings("admin"), name="admin", create_stream=False)
        await bus.connect()
        for rendered in (infra_bus.render_stream(SETTINGS), infra_bus.render_dlq_stream(SETTINGS),
                         infra_bus.render_devices_stream(SETTINGS)):
            await bus.ensure_stream(rendered["name"], rendered["subjects"], max_msg_size=rendered["max_msg_size"])
        await bus.close()

    asyncio.run(make())
    return SETTINGS.stream


@pytest.fixture
def issued(object_store, bucket):
    """The environment function's bucket, where it issues its stations' credentials."""
    store.configure(object_store, bucket)
    yield bucket
    store.configure(None)


def _publish(c, topic: str, payload: dict) -> None:
    info = c.publish(topic, json.dumps(payload), qos=1)
    info.wait_for_publish(10)


def _stored(server: Server, stream: str) -> list[tuple[str, dict]]:
    async def read():
        bus = Bus(server.settings("admin"), name="admin", create_stream=False)
        await bus.connect()
        try:
            info = await bus.js.stream_info(stream)
            out = []
            if not info.state.messages:
                return out
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    m = await bus.js.get_msg(stream, seq)
                except nats.js.errors.NotFoundError:
                    continue
                out.append((m.subject, json.loads(m.data)))
            return out
        finally:
            await bus.close()

    return asyncio.run(read())


def _headers(server: Server, stream: str, event_id: str) -> dict:
    """The NATS headers of the stored event ``event_id``."""
    async def read():
        bus = Bus(server.settings("admin"), name="admin", create_stream=False)
        await bus.connect()
        try:
            info = await bus.js.stream_info(stream)
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                m = await bus.js.get_msg(stream, seq)
                if (m.headers or {}).get("ce-id") == event_id:
                    return dict(m.headers)
            raise AssertionError(f"no stored event {event_id}")
        finally:
            await bus.close()

    return asyncio.run(read())


def _devices_stream_holds(server: Server, count: int, what: str) -> list[tuple[str, dict]]:
    """The devices stream's messages once it holds ``count`` of them."""
    def enough():
        found = _stored(server, devices.stream_name(SETTINGS))
        return found if len(found) >= count else None

    return wait_for(enough, f"{what} in the devices stream", 15, every_s=0.2)


def _probe(port: int, which: str) -> tuple[int, str | None]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/{which}", timeout=5) as r:
            return r.status, json.loads(r.read()).get("detail")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()).get("detail")


def test_the_first_file_holds_the_platform_users_even_when_the_store_does_not_answer(server, tmp_path):
    dead = ObjectStore(f"http://127.0.0.1:{free_port()}", "k", "s", "us-east-1", timeout_s=1.0)
    out = tmp_path / "accounts.conf"
    users_of = devices.UsersReader(["nowhere"], dead, devices.CLUSTER_CONNECTIONS)
    assert devices.sync_users(server.template, out, None, users_of)
    text = out.read_text()
    assert text == devices.render_users(server.template.read_text(), [])
    assert "devices-relay@nats.lscloud" in text and "fn-environment@nats.lscloud" in text
    # once written, a failed read keeps the last users rather than dropping every device
    with pytest.raises(StoreUnavailable):
        devices.sync_users(server.template, out, None, users_of)
    assert out.read_text() == text


def test_an_issued_device_publishes_its_own_topic_over_mqtt_and_nothing_else(server, streams, issued, object_store):
    before = len(_stored(server, devices.stream_name(SETTINGS)))
    anonymous, ok = mqtt_client(server, None, None)
    anonymous.loop_stop()
    assert not ok   # no credentials, no MQTT

    first = devices.issue("environment", "env-lsn-1", [TOPIC], issued_by="operator")
    other = devices.issue("environment", "env-lsn-2", ["devices/environment/stations/lsn-2/observations"],
                          issued_by="operator")
    server.load_users(issued, object_store)
    assert not server.sync_users(issued, object_store)   # nothing changed: no rewrite, no reload
    text = server.accounts.read_text()
    assert first.password not in text and "$2b$" in text   # the bcrypt hash only

    wrong, ok = mqtt_client(server, "env-lsn-1", "not-the-password")
    wrong.loop_stop()
    assert not ok
    c, ok = mqtt_client(server, "env-lsn-1", first.password)
    assert ok
    try:
        _publish(c, TOPIC, {"pm25": 12.5})
        _publish(c, other.topics[0], {"pm25": 999})   # another station's topic: refused by its permissions
        _publish(c, TOPIC, {"pm25": 13.0})
    finally:
        c.disconnect()
        c.loop_stop()
    stored = _devices_stream_holds(server, before + 2, "the device's messages")
    mine = stored[before:]
    assert [(subject, body) for subject, body in mine] == [
        (devices.subject(TOPIC), {"pm25": 12.5}), (devices.subject(TOPIC), {"pm25": 13.0})]

    # a message larger than the devices stream takes never lands there (a broken or hostile device
    # cannot fill the stream the other stations share); the next normal one does
    c, ok = mqtt_client(server, "env-lsn-1", first.password)
    assert ok
    try:
        _publish(c, TOPIC, {"pm25": 1.0, "junk": "x" * devices.MAX_MESSAGE_BYTES})
        _publish(c, TOPIC, {"pm25": 14.0})
    finally:
        c.disconnect()
        c.loop_stop()
    stored = _devices_stream_holds(server, before + 3, "the next normal message")
    assert [body for _, body in stored[before + 2:]] == [{"pm25": 14.0}]

    # the device cannot use the platform's standard port: that one admits certificates only
    async def standard():
        ctx = ssl.create_default_context(cafile=str(server.ca.path))
        # no client certificate: the TLS handshake is refused (the connection reset; ssl errors are OSErrors too)
        with pytest.raises((OSError, nats.errors.NoServersError)):
            nc = await nats.connect(server.url, tls=ctx, user="env-lsn-1", password=first.password,
                                    allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=0)
            await nc.close()

    asyncio.run(standard())


def test_a_rotated_password_replaces_the_old_one_at_the_next_sync(server, streams, issued, object_store):
    old = devices.issue("environment", "env-lsn-3", ["devices/environment/stations/lsn-3/observations"],
                        issued_by="operator")
    server.load_users(issued, object_store)
    c, ok = mqtt_client(server, "env-lsn-3", old.password)
    c.disconnect()
    c.loop_stop()
    assert ok

    new = devices.issue("environment", "env-lsn-3", list(old.topics), issued_by="operator")
    server.load_users(issued, object_store)
    stale, ok = mqtt_client(server, "env-lsn-3", old.password)
    stale.loop_stop()
    assert not ok
    c, ok = mqtt_client(server, "env-lsn-3", new.password)
    c.disconnect()
    c.loop_stop()
    assert ok


@pytest.fixture(scope="module")
def spans():
    return telemetry.spans_in_memory("devices-relay")


def _process_durations(group: str) -> list:
    data = telemetry.collect_metrics()
    if data is None:
        pytest.skip("another harness owns the process meter provider")
    return [point for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
            if metric.name == "messaging.process.duration" for point in metric.data.data_points
            if point.attributes.get("messaging.consumer.group.name") == group]


def test_the_relay_moves_device_messages_onto_the_stream_as_the_domains_events(server, streams, issued, object_store,
                                                                              spans):
    cred = devices.issue("environment", "env-lsn-4", ["devices/environment/stations/lsn-4/observations"],
                         issued_by="operator")
    server.load_users(issued, object_store)
    c, ok = mqtt_client(server, "env-lsn-4", cred.password)
    assert ok
    try:
        _publish(c, cred.topics[0], {"pm25": 41.5})
    finally:
        c.disconnect()
        c.loop_stop()

    relay = devices.Relay(server.settings("devices-relay", LSCLOUD_STREAM=SETTINGS.stream,
                                          OTEL_SERVICE_NAME="devices-relay"), create_streams=False)
    probes = HealthServer(relay.alive, relay.ready, host="127.0.0.1", port=0).start()
    assert _probe(probes.port, "readiness") == (503, "not bound to the devices stream yet")
    relay.start()
    try:
        def relayed():
            found = [body for subject, body in _stored(server, SETTINGS.stream)
                     if subject == events.subject_for(devices.event_type("environment"))
                     and body.get("subject") == "stations/lsn-4/observations"]
            return found or None

        event = wait_for(relayed, "the relayed event on the platform's stream", 20, every_s=0.2)[0]
        assert _probe(probes.port, "readiness") == (200, None) and _probe(probes.port, "liveness") == (200, None)
    finally:
        relay.stop()
    assert _probe(probes.port, "readiness") == (503, "stopping")
    probes.stop()
    assert event["type"] == "vn.langson.environment.device.message.received.v1"
    assert event["data"] == {"pm25": 41.5} and event["devicechannel"] == "mqtt"

    # its trace starts at the relay: a CONSUMER span named by the domain's subjects (one series per
    # domain, never per device), the event's PRODUCER span under it, and traceparent on the event
    finished = spans.get_finished_spans()
    (process,) = [sp for sp in finished if sp.name == "process devices.environment.>"
                  and sp.attributes.get("cloudevents.event_id") == event["id"]]
    assert process.kind.name == "CONSUMER"
    assert process.attributes["messaging.consumer.group.name"] == "devices-relay"
    (send,) = [sp for sp in finished if sp.name == "publish lscloud.environment.device.message.received"
               and sp.attributes.get("cloudevents.event_id") == event["id"]]
    assert send.kind.name == "PRODUCER" and send.parent.span_id == process.context.span_id
    headers = _headers(server, SETTINGS.stream, event["id"])
    assert headers["traceparent"].split("-")[1] == format(process.context.trace_id, "032x")
    durations = _process_durations("devices-relay")
    assert sum(pt.count for pt in durations) >= 1
    assert {pt.attributes["messaging.destination.name"] for pt in durations} == {"devices.environment.>"}

    # the relay's user may publish the device domains' events and nothing else
    async def forged():
        bus = Bus(server.settings("devices-relay"), name="devices-relay", create_stream=False)
        await bus.connect()
        try:
            with pytest.raises(BusError):   # the server drops it (permissions): never confirmed
                await bus.publish(events.new_event("vn.langson.ioc.alert.raised.v1", "/devices/x", {"n": 1}),
                                  timeout=3)
        finally:
            await bus.close()

    asyncio.run(forged())


def test_revoked_credentials_are_refused_and_their_connection_closed_at_the_next_sync(server, streams, issued,
                                                                                      object_store):
    cred = devices.issue("environment", "env-lsn-5", ["devices/environment/stations/lsn-5/observations"],
                         issued_by="operator")
    server.load_users(issued, object_store)
    connected, ok = mqtt_client(server, "env-lsn-5", cred.password)
    assert ok and connected.is_connected()
    dropped = threading.Event()
    connected.on_disconnect = lambda *args: dropped.set()

    with pytest.raises(ValueError, match="belongs to environment"):
        devices.revoke("border", "env-lsn-5")                # another domain's device is not its to revoke
    assert devices.revoke("environment", "env-lsn-5")
    assert not devices.revoke("environment", "env-lsn-5")   # a repeat changes nothing
    server.load_users(issued, object_store)
    assert dropped.wait(15), "the revoked device's connection stayed open"
    connected.loop_stop()
    again, ok = mqtt_client(server, "env-lsn-5", cred.password)
    again.loop_stop()
    assert not ok
    assert "env-lsn-5" not in server.accounts.read_text()


def test_the_sidecar_process_loads_issued_users_into_the_server_and_answers_its_probes(server, streams, issued,
                                                                                       base_settings):
    """``python -m lscloud.devices sync-users`` as the pod runs it (every few seconds, the pid file,
    its probes): an issued credential logs in without anyone syncing by hand; SIGTERM ends it."""
    cred = devices.issue("environment", "env-lsn-6", ["devices/environment/stations/lsn-6/observations"],
                         issued_by="operator")
    port = free_port()
    env = {**os.environ, "LSCLOUD_S3_ENDPOINT": base_settings.s3_endpoint,
           "LSCLOUD_S3_ACCESS_KEY": base_settings.s3_access_key, "LSCLOUD_S3_SECRET_KEY": base_settings.s3_secret_key,
           "LSCLOUD_S3_REGION": base_settings.s3_region}
    proc = subprocess.Popen([sys.executable, "-m", "lscloud.devices", "sync-users", "--template", str(server.template),
                             "--out", str(server.accounts), "--bucket", issued, "--pid-file", str(server.pid_file),
                             "--every", "0.5", "--health-port", str(port)], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def logged_in():
            c, ok = mqtt_client(server, "env-lsn-6", cred.password)
            c.disconnect()
            c.loop_stop()
            return ok or None

        wait_for(logged_in, "the sidecar to load the issued user into nats-server", 30, every_s=0.2)
        assert _probe(port, "readiness") == (200, None) and _probe(port, "liveness") == (200, None)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0, out
    assert cred.password not in out and "$2b$" not in out   # neither the password nor its hash is logged
