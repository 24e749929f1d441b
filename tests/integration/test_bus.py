"""The bus against a real nats-server: dedupe, stream set-up, trace headers, NATS restarts."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lscloud import events, telemetry
from lscloud.bus import Bus, BusUnavailable, SyncBus
from lscloud.delivery import tail

pytestmark = pytest.mark.integration

TYPE = "vn.langson.border.declaration.submitted.v1"


@pytest.fixture
def bus(settings):
    b = SyncBus(settings, publish_timeout=15).start()
    yield b
    b.close()


@pytest.fixture(scope="module")
def spans():
    return telemetry.spans_in_memory("bus-test")


def _stream_info(settings):
    async def run():
        b = Bus(settings, create_stream=False)
        await b.connect()
        try:
            return await b.js.stream_info(settings.stream)
        finally:
            await b.close()

    return asyncio.run(run())


def test_same_event_id_is_stored_once(bus, settings):
    bus.ensure_stream()
    ev = events.new_event(TYPE, "/border", {"plate": "12C-345.67"})
    first = bus.publish(ev)
    again = bus.publish(ev)
    other = bus.publish(events.new_event(TYPE, "/border", {"plate": "12C-999.99"}))
    assert again == first and other == first + 1
    assert _stream_info(settings).state.messages == 2
    stored = tail(settings, 10)
    assert [m["event"]["id"] for m in stored] == [ev["id"], stored[1]["event"]["id"]]
    assert stored[0]["subject"] == "lscloud.border.declaration.submitted"
    assert stored[0]["event"] == ev


def test_two_sources_events_sharing_an_id_are_both_stored(bus, settings):
    """CloudEvents makes source + id unique, not the id: two producers may choose the same id (a
    market lot's and a community activity's ids are their clients'). JetStream dedupes on
    Nats-Msg-Id, across the stream: the id alone dropped the second, and publish said it was stored."""
    bus.ensure_stream()
    market = events.new_event(TYPE, "/market", {"n": 1}, id="abcd1234.1.0")
    community = events.new_event(TYPE, "/community", {"n": 2}, id="abcd1234.1.0")
    first, second = bus.publish(market), bus.publish(community)
    assert second == first + 1 and bus.publish(market) == first   # a repeat of one is still dropped
    assert [m["event"]["source"] for m in tail(settings, 10)] == ["/market", "/community"]


def test_stream_created_idempotently_even_when_racing(settings):
    buses = [SyncBus(settings).start() for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda b: b.ensure_stream(), buses))  # raises if any racer failed
        buses[0].ensure_stream()
        info = _stream_info(settings)
        assert info.config.subjects == ["lscloud.>"]
        assert info.config.duplicate_window == 120
        assert info.config.storage == "file"
    finally:
        for b in buses:
            b.close()


def test_existing_stream_with_other_config_is_updated(settings, bus):
    async def precreate():
        b = Bus(settings, create_stream=False)
        await b.connect()
        try:
            await b.js.add_stream(name=settings.stream, subjects=["lscloud.>"], duplicate_window=5)
        finally:
            await b.close()

    asyncio.run(precreate())
    assert _stream_info(settings).config.duplicate_window == 5
    bus.ensure_stream()
    assert _stream_info(settings).config.duplicate_window == 120


def test_publish_creates_the_stream_when_missing(bus, settings):
    seq = bus.publish(events.new_event(TYPE, "/border", {}))
    assert seq == 1 and _stream_info(settings).state.messages == 1


def test_traceparent_and_event_headers_travel_with_the_message(bus, settings, spans):
    bus.ensure_stream()
    spans.clear()
    ev = events.new_event(TYPE, "/border", {"n": 1})
    with telemetry.tracer().start_as_current_span("POST /v1/declarations"):
        trace_id = telemetry.current_trace_id()
        bus.publish(ev)
    (stored,) = tail(settings, 5)
    assert stored["traceparent"].split("-")[1] == trace_id

    async def headers():
        b = Bus(settings, create_stream=False)
        await b.connect()
        try:
            return (await b.js.get_msg(settings.stream, 1)).headers
        finally:
            await b.close()

    h = asyncio.run(headers())
    assert h["Nats-Msg-Id"] == f"{ev['source']} {ev['id']}" and h["ce-type"] == TYPE
    assert h["content-type"] == "application/cloudevents+json"
    send = [s for s in spans.get_finished_spans() if s.name == "publish lscloud.border.declaration.submitted"]
    assert len(send) == 1
    span = send[0]
    assert span.kind.name == "PRODUCER"
    assert span.attributes["messaging.system"] == "nats"
    assert span.attributes["messaging.destination.name"] == "lscloud.border.declaration.submitted"
    assert span.attributes["messaging.operation.type"] == "send"
    assert span.attributes["messaging.message.id"] == ev["id"]
    assert h["traceparent"].split("-")[2] == format(span.context.span_id, "016x")


def test_replay_of_a_stream_nothing_was_published_to_is_empty(bus):
    # the IOC's rebuild on a fresh cloud: no stream yet (it is made by the first publish), no event
    assert bus.replay([TYPE]) == []


def test_replay_reads_the_stream_from_its_beginning_for_the_given_types(bus):
    wanted = [events.new_event(TYPE, "/t", {"n": i}, id=f"r-{i}") for i in range(3)]
    other = events.new_event("vn.langson.dossiers.dossier.received.v1", "/t", {"n": 9}, id="other")
    bus.publish(wanted[0])
    bus.publish(other)
    bus.publish(wanted[1])
    bus.publish(wanted[1])  # a duplicate: stored once
    bus.publish(wanted[2])
    got = bus.replay([TYPE])
    assert [e["id"] for e in got] == ["r-0", "r-1", "r-2"]
    assert [e["data"]["n"] for e in got] == [0, 1, 2]
    both = bus.replay([TYPE, "vn.langson.dossiers.dossier.received.v1"])
    assert [e["id"] for e in both] == ["r-0", "other", "r-1", "r-2"]
    assert bus.replay(["vn.langson.market.shop.opened.v1"]) == []


def test_malformed_events_are_refused_before_sending(bus):
    with pytest.raises(ValueError):
        bus.publish({"specversion": "1.0", "id": "x", "source": "/x", "type": "not.ours"})
    with pytest.raises(ValueError):
        bus.publish({"id": "x", "type": TYPE})


def test_ping(bus):
    bus.ping()


def test_nats_restart_publish_resumes_and_outage_is_bounded(bus, settings, nats_server):
    bus.ensure_stream()
    before = bus.publish(events.new_event(TYPE, "/border", {"n": 1}))
    nats_server.restart()
    after = bus.publish(events.new_event(TYPE, "/border", {"n": 2}))
    assert after == before + 1  # file storage: the stream and its first message survived

    # a publish issued while NATS is down completes once it is back
    nats_server.stop()
    try:
        with pytest.raises(BusUnavailable):
            bus.ping()
        with pytest.raises(BusUnavailable):  # bounded by its timeout, never a hang
            bus.publish(events.new_event(TYPE, "/border", {"n": "lost"}), timeout=1)
        result: dict = {}
        ev = events.new_event(TYPE, "/border", {"n": 3})

        def publish_during_outage():
            try:
                result["seq"] = bus.publish(ev, timeout=60)
            except Exception as exc:  # reported below
                result["error"] = exc

        t = threading.Thread(target=publish_during_outage)
        t.start()
    finally:
        nats_server.start()
    t.join(90)
    assert "error" not in result, result.get("error")
    assert result["seq"] > after
    bus.ping()
    assert tail(settings, 1)[0]["event"]["id"] == ev["id"]


def test_publish_to_unreachable_nats_raises_quickly(settings):
    from lscloud.local.servers import free_port

    dead = settings.replace(nats_url=f"nats://127.0.0.1:{free_port()}")
    b = SyncBus(dead, publish_timeout=1, connect_timeout=1).start()
    try:
        with pytest.raises(BusUnavailable, match="not"):
            b.publish(events.new_event(TYPE, "/x", {}))
        with pytest.raises(BusUnavailable):
            b.ping()
    finally:
        b.close()


class _AnswerLost:
    """The JetStream context of a real connection whose first publish gets no answer: the server
    stored it (``stored``: the connection dropped right after the server took it) or never saw it."""

    def __init__(self, js, *, stored: bool):
        self._js, self.stored, self.lost = js, stored, 0

    def __getattr__(self, name):
        return getattr(self._js, name)

    async def publish(self, *args, **kwargs):
        if self.lost:
            return await self._js.publish(*args, **kwargs)
        self.lost += 1
        if self.stored:
            await self._js.publish(*args, **kwargs)
        raise asyncio.TimeoutError


def test_a_key_created_by_an_attempt_whose_answer_was_lost_is_this_calls(settings):
    """JetStream checks a create's expected sequence before its message id: the retry of a create
    that was stored is refused like a replay. The create reads the key back and knows its own write
    from someone else's."""
    from lscloud import nonces

    bucket, config = nonces.bucket(settings.stream), nonces.bucket_config(settings.stream, 120)

    async def run():
        b = Bus(settings, publish_timeout=10)
        other = Bus(settings, publish_timeout=10)
        await b.connect()
        real = b.js
        try:
            b._js = lossy = _AnswerLost(real, stored=True)
            assert await b.create_key(bucket, "fn.bank.n-lost-answer", b"{}", create=config) is True
            assert lossy.lost == 1
            # the first attempt never arrived, and meanwhile another replica created the key: a replay
            b._js = lossy = _AnswerLost(real, stored=False)
            assert await other.create_key(bucket, "fn.bank.n-raced", b"{}") is True
            assert await b.create_key(bucket, "fn.bank.n-raced", b"{}") is False
            assert lossy.lost == 1
            # and with every answer, the second create of a key is refused at once
            b._js = real
            assert await b.create_key(bucket, "fn.bank.n-lost-answer", b"{}") is False
        finally:
            await b.close()
            await other.close()

    asyncio.run(run())
