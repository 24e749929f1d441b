"""Lingering pulls (lscloud.pulls) and the devices relay that waits on them, against real NATS.

Each pull here lingers for two minutes, so that a pull which waited for its expiry (after a
restart, on stop) would fail the test rather than pass it slowly."""

from __future__ import annotations

import asyncio
import json

import pytest
from nats.js import api as js_api

from lscloud import devices, pulls
from lscloud.bus import Bus, delete_consumer, delete_streams
from lscloud.delivery import tail
from waiting import wait_for

pytestmark = pytest.mark.integration

LONG_S = 120.0


def _device_message(settings, station: str, n: int) -> None:
    async def go():
        bus = Bus(settings, name="test-station", create_stream=False)
        await bus.connect()
        try:
            await bus.js.publish(f"devices.environment.stations.{station}.observations",
                                 json.dumps({"n": n}).encode(), stream=devices.stream_name(settings))
        finally:
            await bus.close()

    asyncio.run(go())


def _relayed(settings, station: str) -> list[int]:
    return [e["event"]["data"]["n"] for e in tail(settings, 50)
            if e["event"].get("subject") == f"stations/{station}/observations"]


async def _consumer(bus: Bus, settings, name: str):
    """A pull subscription on a new consumer of ``lscloud.<name>.>`` in the test's stream."""
    await bus.connect()
    await bus.ensure_stream()
    await bus.js.add_consumer(settings.stream, js_api.ConsumerConfig(
        durable_name=name, ack_policy=js_api.AckPolicy.EXPLICIT, filter_subject=f"lscloud.{name}.>"))
    return await bus.js.pull_subscribe_bind(durable=name, stream=settings.stream)


@pytest.fixture
def devices_stream(settings):
    yield
    delete_streams(settings, [devices.stream_name(settings)])


def test_the_relay_relays_after_a_nats_restart_and_stops_without_waiting_for_its_pull(settings, nats_server,
                                                                                      devices_stream):
    relay = devices.Relay(settings.replace(service="devices-relay"), pull_wait_s=LONG_S).start()
    thread = relay._thread
    try:
        wait_for(lambda: relay.bound, "the relay bound to the devices stream", 20)
        _device_message(settings, "lsn-1", 1)
        wait_for(lambda: _relayed(settings, "lsn-1") == [1], "the first message relayed", 20)
        nats_server.restart()
        _device_message(settings, "lsn-1", 2)
        wait_for(lambda: _relayed(settings, "lsn-1") == [1, 2],
                 "a message after the restart, before the dead pull would have expired", 60)
        assert relay.relayed == 2 and relay.alive() == (True, "ok")
    finally:
        relay.stop(timeout=30)
    assert thread is not None and not thread.is_alive()
    assert relay.ready() == (False, "stopping")


def _make_devices_stream_again(settings) -> None:
    """Delete the devices stream (and so its consumers) and make it again at once, empty, as the
    cluster's setup Job would."""
    delete_streams(settings, [devices.stream_name(settings)])

    async def make():
        bus = Bus(settings, create_stream=False)
        await bus.connect()
        try:
            await bus.ensure_stream(devices.stream_name(settings), devices.SUBJECTS)
        finally:
            await bus.close()

    asyncio.run(make())


def test_the_relay_makes_its_consumer_again_when_it_is_deleted_from_after_what_it_relayed(settings, devices_stream):
    # a batch pull waiting when its consumer goes waits until it expires (nats-py 2.16 passes over the
    # server's 409), so this relay's pulls are short; the next pull finds no consumer
    relay = devices.Relay(settings.replace(service="devices-relay"), pull_wait_s=2.0, floor_every_s=0).start()
    try:
        wait_for(lambda: relay.bound, "the relay bound to the devices stream", 20)
        for n in (1, 2, 3):
            _device_message(settings, "lsn-3", n)
        wait_for(lambda: _relayed(settings, "lsn-3") == [1, 2, 3], "three messages relayed", 20)
        wait_for(lambda: relay._floors.floor(devices.stream_name(settings), relay.durable) == 3,
                 "the relay to know its ack floor", 20)
        delete_consumer(settings, devices.stream_name(settings), relay.durable)
        _device_message(settings, "lsn-3", 4)
        wait_for(lambda: _relayed(settings, "lsn-3") == [1, 2, 3, 4], "a message after the consumer was deleted", 30)
        # made again after its ack floor: the first three were not published again (the events
        # stream would have dropped them as repeats, so only the relay's own count can tell)
        assert relay.relayed == 4
    finally:
        relay.stop(timeout=30)


def test_a_consumer_made_again_after_its_last_message_waits_for_the_next(settings, devices_stream):
    """Nothing published while it was gone: made again to start past the stream's last message
    (its floor + 1), the consumer is accepted and relays what comes next."""
    relay = devices.Relay(settings.replace(service="devices-relay"), pull_wait_s=2.0, floor_every_s=0).start()
    try:
        wait_for(lambda: relay.bound, "the relay bound to the devices stream", 20)
        _device_message(settings, "lsn-4", 1)
        wait_for(lambda: relay._floors.floor(devices.stream_name(settings), relay.durable) == 1,
                 "the relay to know its ack floor", 20)
        delete_consumer(settings, devices.stream_name(settings), relay.durable)

        async def start_seq():
            bus = Bus(settings, create_stream=False)
            await bus.connect()
            try:
                return (await bus.js.consumer_info(devices.stream_name(settings), relay.durable)).config.opt_start_seq
            except Exception:  # noqa: BLE001 - not made again yet
                return None
            finally:
                await bus.close()

        wait_for(lambda: asyncio.run(start_seq()) == 2, "the consumer made again from sequence 2", 30)
        _device_message(settings, "lsn-4", 2)
        wait_for(lambda: _relayed(settings, "lsn-4") == [1, 2], "the next message", 30)
        assert relay.relayed == 2
    finally:
        relay.stop(timeout=30)


def test_a_devices_stream_made_again_is_relayed_from_its_first_message(settings, devices_stream):
    relay = devices.Relay(settings.replace(service="devices-relay"), pull_wait_s=2.0, floor_every_s=0).start()
    try:
        wait_for(lambda: relay.bound, "the relay bound to the devices stream", 20)
        for n in (1, 2):
            _device_message(settings, "lsn-5", n)
        wait_for(lambda: relay._floors.floor(devices.stream_name(settings), relay.durable) == 2,
                 "the relay to know its ack floor", 20)
        _make_devices_stream_again(settings)
        _device_message(settings, "lsn-5", 3)   # sequence 1 of the new stream, below the old floor
        wait_for(lambda: _relayed(settings, "lsn-5") == [1, 2, 3], "the new stream's first message", 30)
        assert relay.relayed == 3
    finally:
        relay.stop(timeout=30)


def test_a_relay_asked_to_stop_before_its_loop_runs_stops(settings, devices_stream):
    relay = devices.Relay(settings.replace(service="devices-relay"), pull_wait_s=LONG_S)
    relay.request_stop()
    asyncio.run(asyncio.wait_for(relay.run(), 30))
    assert not relay.bound


def test_pulls_end_for_a_reconnect_or_a_stop_and_leave_other_cancels_to_their_caller(settings):
    """Against a real consumer: a reconnect or a stop ends a waiting pull with None (the task is not
    left cancelled); a cancel from anyone else still cancels; after stop, no pull is made."""

    async def scenario():
        bus = Bus(settings, name="test-pulls")
        try:
            psub = await _consumer(bus, settings, "pulls")
            p = pulls.Pulls(LONG_S)

            async def waits():
                got = await p.next(psub)
                return got, asyncio.current_task().cancelling()

            task = asyncio.create_task(waits())
            await asyncio.sleep(0.3)
            await p.reconnected()
            assert await asyncio.wait_for(task, 10) == (None, 0)

            # the pull ended above is still open on this server (it did not restart), so the message
            # may come for that pull: the new one takes it all the same, at once
            task = asyncio.create_task(p.next(psub))
            await asyncio.sleep(0.3)
            await bus.js.publish("lscloud.pulls.one", b"1", stream=settings.stream)
            msg = await asyncio.wait_for(task, 10)
            assert msg.data == b"1"
            await msg.ack()

            task = asyncio.create_task(p.next(psub))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

            task = asyncio.create_task(waits())
            await asyncio.sleep(0.3)
            p.stop()
            assert await asyncio.wait_for(task, 10) == (None, 0)
            await p.reconnected()   # after stop: nothing to make again
            assert await asyncio.wait_for(p.next(psub), 1) is None
        finally:
            await bus.close()

    asyncio.run(scenario())


def test_take_brings_what_waits_in_one_pull_and_at_once_after_a_pull_ended_early(settings):
    """A batch pull takes every waiting message at once. After batch pulls ended early (here by a
    reconnect, on a server that stayed up, so each ended pull is still open there), the next one
    still brings a new message at once, not when its two-minute pull expires."""

    async def scenario():
        bus = Bus(settings, name="test-take")
        try:
            psub = await _consumer(bus, settings, "take")
            p = pulls.Pulls(LONG_S)
            for n in range(3):
                await bus.js.publish(f"lscloud.take.{n}", str(n).encode(), stream=settings.stream)
            got = await asyncio.wait_for(p.take(psub, 10), 10)
            assert [m.data for m in got] == [b"0", b"1", b"2"]
            for m in got:
                await m.ack()

            for n in range(3, 6):
                task = asyncio.create_task(p.take(psub, 10))
                await asyncio.sleep(0.3)
                await p.reconnected()
                assert await asyncio.wait_for(task, 10) == []
                task = asyncio.create_task(p.take(psub, 10))
                await asyncio.sleep(0.3)
                await bus.js.publish(f"lscloud.take.{n}", str(n).encode(), stream=settings.stream)
                got = await asyncio.wait_for(task, 10)
                assert [m.data for m in got] == [str(n).encode()]
                await got[0].ack()
        finally:
            await bus.close()

    asyncio.run(scenario())


def test_ack_floors_ask_the_stream_once_for_consumers_made_new_and_again_for_one_made_again(settings):
    """Against real JetStream, its calls counted: a set of new consumers costs one stream info (not
    one each); a consumer with a floor asks again, to check the stream is still the same one."""

    class Counted:
        def __init__(self, js):
            self.js, self.asked = js, 0

        async def stream_info(self, name):
            self.asked += 1
            return await self.js.stream_info(name)

    async def scenario():
        bus = Bus(settings, name="test-floors")
        try:
            psub = await _consumer(bus, settings, "floors")
            await bus.js.publish("lscloud.floors.x", b"{}", stream=settings.stream)
            js = Counted(bus.js)
            floors = pulls.AckFloors(every_s=0)
            await floors.know(js, settings.stream)
            assert [await floors.start(js, settings.stream, f"new-{i}") for i in range(5)] == [{}] * 5
            assert js.asked == 1
            (msg,) = await psub.fetch(1, timeout=5)
            await msg.ack_sync()
            await floors.note(psub, settings.stream, "floors", got=True)
            assert floors.floor(settings.stream, "floors") >= 1
            after = await floors.start(js, settings.stream, "floors")
            assert after["opt_start_seq"] == floors.floor(settings.stream, "floors") + 1 and js.asked == 2
        finally:
            await bus.close()

    asyncio.run(scenario())
