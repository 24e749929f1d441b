"""The event bus as the cluster runs it: three nats-servers, each with the nats.conf the program
renders for ``nats.replicas: 3`` (TLS routes, peers verified by the internal CA, JetStream
clustered, the MQTT listener), the stream Job's streams at three replicas, and one server lost:

- the three form one JetStream cluster over their TLS routes, and the streams the Job creates get
  three replicas (one leader, two followers current);
- a station logs in over MQTT on any server: each server has its own accounts file, which its
  sidecar writes from the same store;
- with one server gone (killed, as a node is lost), every message acknowledged before stays and the
  streams take new ones from a quorum of two: the station connects to another server and publishes
  again, and the platform reads its reading back (at least once: QoS 1);
- the lost server comes back and catches up: it is current again on the devices stream.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request

import nats.errors
import pytest

from lscloud import devices
from lscloud.bus import Bus
from nats.js import api as js_api
from lscloud.local.servers import free_port

from nats_cluster_support import (DOMAINS, FUNCTIONS, Server, infra_bus,  # noqa: E402  (puts infra/ on the path)
                                  mqtt_client, small_settings)
from waiting import wait_for  # noqa: E402
from tls_support import ThrowawayCA  # noqa: E402

pytestmark = pytest.mark.integration

SETTINGS = small_settings(3)
TOPIC = "devices/environment/stations/lsn-9/observations"


def _jsz(server: Server) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor}/jsz", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return {}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("nats-three")
    ca = ThrowawayCA(root / "ca")
    ports = [free_port() for _ in range(SETTINGS.replicas)]
    servers = []
    try:
        for i, port in enumerate(ports):
            (root / f"nats-{i}").mkdir()
            servers.append(Server(root / f"nats-{i}", SETTINGS, FUNCTIONS, DOMAINS, ca=ca, name=f"nats-{i}",
                                  cluster=(port, ports), wait=False))
        for s in servers:
            s.wait_healthy()
        # one JetStream cluster of three, with a meta leader: only then can R3 streams be placed
        def formed():
            metas = [_jsz(s).get("meta_cluster", {}) for s in servers]
            return all(m.get("leader") and m.get("cluster_size") == 3 for m in metas)

        wait_for(formed, "the three servers to form one JetStream cluster", 60, every_s=0.2)
        yield servers
    finally:
        for s in servers:
            s.stop()


def _admin(cluster: list[Server]):
    """An admin connection that may reach any live server (the client's own server list)."""
    live = [s for s in cluster if s.proc.poll() is None]
    settings = live[0].settings("admin")
    return Bus(settings.replace(nats_url=",".join(s.url for s in live)), name="admin", create_stream=False)


@pytest.fixture(scope="module")
def streams(cluster):
    """The stream Job's four streams, as rendered (three replicas each)."""
    async def make():
        bus = _admin(cluster)
        await bus.connect()
        try:
            for rendered in (infra_bus.render_stream(SETTINGS), infra_bus.render_dlq_stream(SETTINGS),
                             infra_bus.render_devices_stream(SETTINGS), infra_bus.render_nonces_stream(SETTINGS)):
                assert rendered["num_replicas"] == 3
                # what the Job's `nats stream add --config` sends: the rendered API config as it is.
                # Placing an R3 stream just after the meta leader's election can outlast a request
                # (CI at 64d30c5): the Job is retried (backoffLimit), and so is this, as the same
                # idempotent add
                config = js_api.StreamConfig.from_response(dict(rendered))
                deadline = asyncio.get_running_loop().time() + 60
                while True:
                    try:
                        await bus.js.add_stream(config)
                        break
                    except nats.errors.TimeoutError:
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                        await asyncio.sleep(0.5)
        finally:
            await bus.close()

    asyncio.run(make())
    return [SETTINGS.stream, devices.stream_name(SETTINGS)]


def _stream_state(cluster: list[Server], stream: str) -> tuple[list[dict], object]:
    """The stored messages of ``stream`` and its cluster info, read through the live servers."""
    async def read():
        bus = _admin(cluster)
        await bus.connect()
        try:
            info = await bus.js.stream_info(stream)
            out = []
            if info.state.messages:
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    m = await bus.js.get_msg(stream, seq)
                    out.append(json.loads(m.data))
            return out, info.cluster
        finally:
            await bus.close()

    return asyncio.run(read())


def _holding(cluster: list[Server], stream: str, count: int) -> list[dict] | None:
    """The messages of ``stream`` once it holds at least ``count``."""
    got = _stream_state(cluster, stream)[0]
    return got if len(got) >= count else None


def _mqtt_publish(server: Server, user: str, password: str, payload: dict) -> bool:
    """Connect over MQTT with TLS to ``server``, publish ``payload`` at QoS 1 and wait for its PUBACK;
    whether the server accepted the login."""
    c, accepted = mqtt_client(server, user, password)
    try:
        if not accepted:
            return False
        info = c.publish(TOPIC, json.dumps(payload), qos=1)
        info.wait_for_publish(15)
        assert info.is_published(), "no PUBACK"
        return True
    finally:
        c.disconnect()
        c.loop_stop()


def test_three_servers_keep_the_streams_and_the_stations_through_the_loss_of_one(cluster, streams, object_store,
                                                                                  bucket):
    from lscloud import store

    # every stream the Job created is placed on all three servers. A follower is current once it has
    # applied the stream's first entries, which can be a moment after the add returns (CI at 1fd2f09
    # saw one follower at lag 1 just after): waited for, as an operator reading `nats stream info` would
    def placed_on_three(stream):
        try:
            _, placed = _stream_state(cluster, stream)
        except nats.errors.TimeoutError:
            return None
        return placed if len(placed.replicas) == 2 and all(r.current for r in placed.replicas) else None

    for stream in streams:
        placed = wait_for(lambda: placed_on_three(stream), f"{stream} current on three servers", 30, every_s=0.2)
        assert placed.leader, stream

    # a station's credentials reach every server through its own sidecar's sync
    store.configure(object_store, bucket)
    try:
        cred = devices.issue("environment", "env-lsn-9", [TOPIC], issued_by="operator")
    finally:
        store.configure(None)
    for s in cluster:
        s.load_users(bucket, object_store)
    for i, s in enumerate(cluster):
        assert _mqtt_publish(s, "env-lsn-9", cred.password, {"pm25": 10.0 + i}), s.name

    stream = devices.stream_name(SETTINGS)
    before_loss = wait_for(lambda: _holding(cluster, stream, 3), "three readings in the devices stream", 15,
                           every_s=0.2)
    assert before_loss[-3:] == [{"pm25": 10.0}, {"pm25": 11.0}, {"pm25": 12.0}]

    # the devices stream's leader is lost, as a node is: no goodbye
    _, placed = _stream_state(cluster, stream)
    lost = next(s for s in cluster if s.name == placed.leader)
    lost.proc.send_signal(signal.SIGKILL)
    lost.proc.wait(10)
    survivors = [s for s in cluster if s is not lost]

    # a new leader from the two left, holding everything acknowledged before
    def new_leader():
        try:
            got, info = _stream_state(cluster, stream)
        except nats.errors.TimeoutError:   # no leader to answer yet: the election is still on
            return None
        return (got, info) if info.leader and info.leader != lost.name else None

    got, info = wait_for(new_leader, "a new leader of the devices stream", 30, every_s=0.2)
    assert got == before_loss

    # the station's server went away: it connects to another one and publishes again
    assert _mqtt_publish(survivors[0], "env-lsn-9", cred.password, {"pm25": 20.0})
    got = wait_for(lambda: _holding(cluster, stream, len(before_loss) + 1), "the reading published after the loss",
                   15, every_s=0.2)
    # at least once, as MQTT's QoS 1 promises: once in eight runs here it was stored twice (a PUBACK lost while
    # the stream's new leader settled). A repeat is harmless downstream: the environment function keeps
    # a station's reading once per observed_at, the same values again being a duplicate (storage.py)
    assert got[:len(before_loss)] == before_loss and 1 <= len(got) - len(before_loss) <= 2, got
    assert all(body == {"pm25": 20.0} for body in got[len(before_loss):]), got

    # the platform's own stream takes events with one server down too, published as the runtime
    # publishes: the lost server may have led this stream as well (four R3 streams spread their
    # leaders), and until the two left have elected a new one JetStream has no responder for it, so
    # the publish is retried (the same Nats-Msg-Id: stored once) until its timeout
    async def publish_event():
        bus = _admin(cluster)
        await bus.connect()
        try:
            ack = await bus.publish_message("lscloud.environment.test", b'{"n": 1}', {"Nats-Msg-Id": "after-loss"},
                                            timeout=30)
            return ack.seq
        finally:
            await bus.close()

    assert asyncio.run(publish_event()) >= 1

    # the lost server comes back with its store and catches up
    lost.restart()

    def current_again():
        try:
            _, info = _stream_state(cluster, stream)
        except nats.errors.TimeoutError:
            return None
        peers = {r.name: r.current for r in info.replicas} | {info.leader: True}
        return peers.get(lost.name)

    assert wait_for(current_again, f"{lost.name} to catch up on the devices stream", 60, every_s=0.2)
