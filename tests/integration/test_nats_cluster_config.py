"""The cluster's NATS configuration, run by a real nats-server: the nats.conf the program renders
(TLS, users mapped from client certificates, the JetStream store) and the streams' limits.

- the store: JetStream refuses a stream whose reservation no longer fits ("insufficient storage
  resources": how prod's two 40 GB streams on a 45 GiB store stopped every event), the stack's
  settings refuse the same limits first, and limits the settings accept are all created;
- the users: a function publishes its own events through the runtime's own client (TLS, client
  certificate), and only its own; the clock its tick; the bridge reads and acks through a durable
  consumer and dead-letters; eventing makes its channels in its own account, never the platform's; a certificate nobody
  issued, or one no user maps to, gets no connection.
"""

from __future__ import annotations

import asyncio

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js import api as js_api

from lscloud import config, events, nonces
from lscloud.bus import Bus, BusError, BusUnavailable

from nats_cluster_support import Server, infra_bus, natsauth  # noqa: E402  (puts infra/ on the path)
from components.settings import NatsSettings, SettingsError  # noqa: E402
from tls_support import ThrowawayCA  # noqa: E402

pytestmark = pytest.mark.integration

FUNCTIONS = ("border", "dossiers", "ioc")
# small enough to fill in a test, with room for the six streams the settings accept below
SETTINGS = NatsSettings(replicas=1, streamReplicas=1, storageSize="64Mi", streamMaxBytes="23MB",
                        dlqMaxBytes="10MB", devicesMaxBytes="5MB", noncesMaxBytes="2MB", channelMaxBytes="10MB",
                        deadLetterChannelMaxBytes="10MB")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("nats-cluster-config"), SETTINGS, FUNCTIONS)
    yield s
    s.stop()


async def _admin(server: Server):
    bus = Bus(server.settings("admin"), name="admin", create_stream=False)
    await bus.connect()
    return bus


def _stream(name, subjects, max_bytes):
    return js_api.StreamConfig(name=name, subjects=subjects, storage=js_api.StorageType.FILE, max_bytes=max_bytes,
                               max_age=3600)


def test_the_store_refuses_what_over_reserves_and_the_settings_refuse_it_first(server):
    store = SETTINGS.store_bytes

    async def run():
        bus = await _admin(server)
        js = bus.js
        try:
            await js.add_stream(_stream("OVER_A", ["over-a.>"], int(store * 0.6)))
            with pytest.raises(nats.js.errors.APIError, match="insufficient storage"):
                await js.add_stream(_stream("OVER_B", ["over-b.>"], int(store * 0.6)))
        finally:
            for name in ("OVER_A", "OVER_B"):
                try:
                    await js.delete_stream(name)
                except nats.js.errors.NotFoundError:
                    pass
            await bus.close()

    asyncio.run(run())
    # the same two streams as the stack's limits: refused before anything is deployed
    with pytest.raises(SettingsError, match="insufficient storage resources"):
        NatsSettings(replicas=1, streamReplicas=1, storageSize="64Mi", streamMaxBytes=str(int(store * 0.6)),
                     dlqMaxBytes=str(int(store * 0.6)))


def test_limits_the_settings_accept_are_all_created_on_the_store(server):
    """The four streams as rendered, one channel stream per broker and the dead-letter channel's: the
    reservation the settings computed is the one JetStream applies."""
    reservations = dict(SETTINGS.reservations(["default"]))
    assert sum(reservations.values()) <= SETTINGS.store_bytes

    async def run():
        bus = await _admin(server)
        js = bus.js
        made = []
        try:
            for rendered in (infra_bus.render_stream(SETTINGS), infra_bus.render_dlq_stream(SETTINGS),
                             infra_bus.render_devices_stream(SETTINGS)):
                await js.add_stream(js_api.StreamConfig(
                    name=rendered["name"], subjects=rendered["subjects"], storage=js_api.StorageType.FILE,
                    max_bytes=rendered["max_bytes"], max_age=rendered["max_age"] / 1e9,
                    duplicate_window=rendered["duplicate_window"] / 1e9))
                made.append(rendered["name"])
            for i, what in enumerate(w for w in reservations if w.startswith(("channel", "dead-letter"))):
                await js.add_stream(_stream(f"KN_CHANNEL_{i}", [f"kn-{i}.>"], reservations[what]))
                made.append(f"KN_CHANNEL_{i}")
            # the nonces' bucket exactly as the setup Job creates it (nats stream add --config)
            nonces_stream = js_api.StreamConfig.from_response(infra_bus.render_nonces_stream(SETTINGS))
            await js.add_stream(nonces_stream)
            made.append(nonces_stream.name)
            info = await js.account_info()
            assert info.streams == 6
        finally:
            for name in made:
                await js.delete_stream(name)
            await bus.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def streams(server):
    async def make():
        bus = await _admin(server)
        for rendered in (infra_bus.render_stream(SETTINGS), infra_bus.render_dlq_stream(SETTINGS)):
            await bus.ensure_stream(rendered["name"], rendered["subjects"])
        await bus.js.add_stream(js_api.StreamConfig.from_response(infra_bus.render_nonces_stream(SETTINGS)))
        await bus.close()

    asyncio.run(make())
    yield SETTINGS.stream


async def _refused(server: Server, user: str, subject: str) -> str:
    """Publish on core NATS and wait for the server's permissions error (an observable fact)."""
    c = server.client(user)
    import ssl

    ctx = ssl.create_default_context(cafile=str(c.ca))
    ctx.load_cert_chain(str(c.cert), str(c.key))
    seen: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_error(exc):
        if not seen.done():
            seen.set_result(str(exc))

    nc = await nats.connect(server.url, tls=ctx, error_cb=on_error, allow_reconnect=False)
    try:
        await nc.publish(subject, b"{}")
        await nc.flush()
        return await asyncio.wait_for(seen, 20)
    finally:
        await nc.close()


def _event(domain: str) -> dict:
    return events.new_event(f"vn.langson.{domain}.thing.happened.v1", f"/test/{domain}", {"n": 1})


def test_a_function_publishes_its_own_events_and_no_one_elses(server, streams):
    async def run():
        bus = Bus(server.settings("fn-border", LSCLOUD_STREAM=streams), name="border", create_stream=False,
                  publish_timeout=10)
        try:
            await bus.ping()   # the readiness call: JetStream account info is allowed
            assert await bus.publish(_event("border")) >= 1
        finally:
            await bus.close()
        assert "permissions violation" in (await _refused(server, "fn-border", "lscloud.dossiers.thing.happened")).lower()
        # nor may it make a stream of its own (an unbounded R1 one, as the runtime would)
        assert "permissions violation" in (await _refused(server, "fn-border", "$JS.API.STREAM.CREATE.MINE")).lower()

    asyncio.run(run())


def test_a_function_remembers_its_own_partners_nonces_and_no_one_elses(server, streams):
    """The grant of :mod:`lscloud.nonces`: a function creates keys under its own name in the bucket
    the setup Job made (the second create of one key is refused: a replay), and none under another's."""
    async def run():
        bus = Bus(server.settings("fn-border", LSCLOUD_STREAM=streams), name="border", create_stream=False,
                  publish_timeout=10)
        key = f"{nonces.key_prefix('border')}bidv.n-0123456789abcdef"
        try:
            assert await bus.create_key(nonces.bucket(streams), key, b"{}") is True
            assert await bus.create_key(nonces.bucket(streams), key, b"{}") is False
            # read back when a create's answer was lost (Bus.create_key)
            held = await bus.js.get_msg(f"KV_{nonces.bucket(streams)}", subject=f"$KV.{nonces.bucket(streams)}.{key}",
                                        direct=True)
            assert held.data == b"{}"
        finally:
            await bus.close()
        other = f"$KV.{nonces.bucket(streams)}.{nonces.key_prefix('dossiers')}bidv.n-0123456789abcdef"
        assert "permissions violation" in (await _refused(server, "fn-border", other)).lower()
        get_other = f"$JS.API.DIRECT.GET.KV_{nonces.bucket(streams)}.{other}"
        assert "permissions violation" in (await _refused(server, "fn-border", get_other)).lower()

    asyncio.run(run())


def test_the_operations_centre_replays_the_stream_and_no_other_function_can(server, streams):
    """ioc's POST /v1/replay reads the stream through an ephemeral consumer of its own (the grant in
    natsauth.STREAM_READERS); a function without it gets no consumer."""
    tick = "vn.langson.platform.clock.ticked.v1"

    async def run():
        clock = Bus(server.settings("clock", LSCLOUD_STREAM=streams), name="clock", create_stream=False)
        try:
            sent = [await clock.publish(events.new_event(tick, "/clock", {"n": n})) for n in range(3)]
        finally:
            await clock.close()
        assert all(seq >= 1 for seq in sent)
        ioc = Bus(server.settings("fn-ioc", LSCLOUD_STREAM=streams), name="ioc", create_stream=False)
        try:
            replayed = await ioc.replay([tick], timeout=20)
            assert len(replayed) >= 3 and all(e["type"] == tick for e in replayed)
            # two types on two subjects: a consumer with several filters (no filter in its subject)
            both = await ioc.replay([tick, "vn.langson.border.thing.happened.v1"], timeout=20)
            assert len(both) >= len(replayed)
        finally:
            await ioc.close()
        # any other function: its request for a consumer is a permissions violation
        for subject in (f"$JS.API.CONSUMER.CREATE.{streams}.replay-x", f"$JS.API.CONSUMER.DURABLE.CREATE.{streams}.x"):
            assert "permissions violation" in (await _refused(server, "fn-border", subject)).lower()
        # and ioc's grant is consumers, not streams
        assert "permissions violation" in (await _refused(server, "fn-ioc", f"$JS.API.STREAM.DELETE.{streams}")).lower()

    asyncio.run(run())


def test_the_clock_ticks_and_the_bridge_reads_acks_and_dead_letters(server, streams):
    async def run():
        clock = Bus(server.settings("clock", LSCLOUD_STREAM=streams), name="clock", create_stream=False)
        try:
            seq = await clock.publish(events.new_event("vn.langson.platform.clock.ticked.v1", "/clock", {}))
        finally:
            await clock.close()
        bridge = Bus(server.settings("bridge", LSCLOUD_STREAM=streams), name="bridge", create_stream=False)
        await bridge.connect()
        try:
            js = bridge.js
            await js.add_consumer(streams, js_api.ConsumerConfig(
                durable_name="bridge-default", ack_policy=js_api.AckPolicy.EXPLICIT,
                deliver_policy=js_api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=seq,
                filter_subject="lscloud.platform.clock.ticked"))
            await js.consumer_info(streams, "bridge-default")
            psub = await js.pull_subscribe_bind(durable="bridge-default", stream=streams)
            (msg,) = await psub.fetch(1, timeout=10)
            await msg.ack_sync()
            ack = await bridge.publish_message("lscloud-dlq.bridge.default", msg.data, {"Nats-Msg-Id": "dl-1"},
                                               stream=f"{streams}_DLQ")
            assert ack.seq >= 1
        finally:
            await bridge.close(drain=False)
        assert "permissions violation" in (await _refused(server, "bridge", "lscloud.border.x")).lower()
        assert "permissions violation" in (await _refused(server, "clock", "lscloud.border.x")).lower()

    asyncio.run(run())


def test_eventing_makes_its_channels_in_an_account_of_its_own_and_never_reaches_the_platforms(server, streams):
    """eventing-natss names a channel's stream KN_<NAMESPACE>__<NAME> and publishes on
    <namespace>.<name>._knative (its utils/naming.go). In the functions' namespace, lscloud, that
    subject is inside the platform stream's lscloud.>: in the platform's account JetStream refuses
    the channel's stream (overlapping subjects), so no broker could become ready. In eventing's own
    account the channel is made and used, and the platform's streams are not there to touch."""
    channel = js_api.StreamConfig(name="KN_LSCLOUD__DEFAULT_KNE_TRIGGER",
                                  subjects=["lscloud.default-kne-trigger._knative"],
                                  storage=js_api.StorageType.FILE, max_bytes=1_000_000, max_age=3600)

    async def run():
        admin = await _admin(server)
        try:
            with pytest.raises(nats.js.errors.APIError, match="overlap"):
                await admin.js.add_stream(channel)        # what one shared account did
            before = (await admin.js.stream_info(streams)).state.messages
        finally:
            await admin.close()
        eventing = Bus(server.settings("eventing"), name="eventing", create_stream=False)
        await eventing.connect()
        try:
            js = eventing.js
            await js.add_stream(channel)
            try:
                ack = await js.publish("lscloud.default-kne-trigger._knative", b"{}")
                assert ack.stream == channel.name
                with pytest.raises(nats.js.errors.NotFoundError):
                    await js.stream_info(streams)
                with pytest.raises(nats.js.errors.NoStreamResponseError):
                    await js.publish("lscloud.border.forged", b"{}", timeout=2)
            finally:
                await js.delete_stream(channel.name)
        finally:
            await eventing.close()
        admin = await _admin(server)
        try:
            assert (await admin.js.stream_info(streams)).state.messages == before   # nothing forged arrived
        finally:
            await admin.close()

    asyncio.run(run())


def test_unknown_certificates_get_no_connection(server, tmp_path):
    stranger = server.client("nobody")                           # our CA, but no such user
    other_ca = ThrowawayCA(tmp_path / "other").issue("x", email="admin@" + natsauth.EMAIL_DOMAIN)

    async def attempt(issued, ca_file):
        s = config.load({"LSCLOUD_NATS_URL": server.url, "LSCLOUD_NATS_CA_FILE": str(ca_file),
                         "LSCLOUD_NATS_CERT_FILE": str(issued.cert), "LSCLOUD_NATS_KEY_FILE": str(issued.key)})
        bus = Bus(s, name="intruder", create_stream=False, connect_timeout=3)
        with pytest.raises(BusUnavailable):
            await bus.connect()

    asyncio.run(attempt(stranger, stranger.ca))
    asyncio.run(attempt(other_ca, server.ca.path))  # an admin name signed by a CA the server does not trust


def test_without_a_client_certificate_nothing_connects(server):
    s = config.load({"LSCLOUD_NATS_URL": server.url, "LSCLOUD_NATS_CA_FILE": str(server.ca.path)})

    async def run():
        bus = Bus(s, name="anonymous", create_stream=False, connect_timeout=3)
        with pytest.raises((BusUnavailable, BusError)):
            await bus.connect()

    asyncio.run(run())


def test_a_certificate_renewed_in_place_is_presented_from_the_next_connection(server, streams, tmp_path):
    """cert-manager rewrites the mounted files; the runtime loads them again (here the new certificate
    maps to another user, so which one was presented is observable in what may be published)."""
    import os
    import shutil

    first = server.client("fn-border")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(first.cert, cert)
    shutil.copy(first.key, key)
    s = config.load({"LSCLOUD_NATS_URL": server.url, "LSCLOUD_NATS_CA_FILE": str(first.ca),
                     "LSCLOUD_NATS_CERT_FILE": str(cert), "LSCLOUD_NATS_KEY_FILE": str(key), "LSCLOUD_STREAM": streams})

    async def run():
        bus = Bus(s, name="renewing", create_stream=False, publish_timeout=10)
        try:
            await bus.publish(_event("border"))
            await bus.close()
            renewed = server.client("fn-dossiers")
            shutil.copy(renewed.cert, cert)
            shutil.copy(renewed.key, key)
            later = os.stat(cert).st_mtime + 10
            os.utime(cert, (later, later))
            os.utime(key, (later, later))
            await bus.publish(_event("dossiers"))   # reconnects with the renewed certificate
        finally:
            await bus.close()

    asyncio.run(run())
