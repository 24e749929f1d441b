"""While NATS is down a request does not wait for it event by event: it took 10 s per event (each
publish retried for the bus's whole publish_timeout, the client knowing all along it was
disconnected). Inside a request a publish waits nats_request_publish_timeout_s; while the client is
reconnecting, and once one event of the request was kept, the request's events go straight to the
outbox, which the tick flushes: none lost, and published in their order.

Real nats-server (one of the test's own, stopped and started again on its port) and weed; the
publishes are counted on the runtime's own bus, no time is asserted."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from opentelemetry import trace

from lscloud import config, events, outbox, runtime, telemetry
from lscloud.auth import allow
from lscloud.delivery import tail
from lscloud.local.servers import NatsServer, free_port
from lscloud.web import create_app

pytestmark = pytest.mark.integration

TYPE = "vn.langson.test.parcel.sent.v1"


@pytest.fixture
def nats(tmp_path):
    server = NatsServer(data_dir=tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
def installed():
    def install(s: config.Settings) -> runtime.Runtime:
        runtime.uninstall()
        return runtime.install(runtime.Runtime(s.replace(service="outbox-test")))

    yield install
    runtime.uninstall()


def count_publishes(rt: runtime.Runtime) -> list[float | None]:
    """The timeout of every publish the runtime's bus is asked for from now (the real bus, wrapped)."""
    seen: list[float | None] = []
    bus = rt.bus
    real = bus.publish

    def counted(event, *, timeout=None):
        seen.append(timeout)
        return real(event, timeout=timeout)

    bus.publish = counted
    return seen


def parcels_app(rt: runtime.Runtime, sent: list[list[dict]]):
    """An app whose one route publishes ``sent``'s batches, one outbox.publish each, as a write
    publishes its events (and a later step of the same request its own)."""
    app = create_app("outbox-test", settings=rt.settings)

    @app.post("/v1/parcels")
    @allow("public")
    def send_parcels():
        """Send parcels."""
        for batch in sent:
            outbox.publish(batch)
        return {"sent": True}, 201

    return app.test_client()


def moves(n: int, record: str) -> list[dict]:
    """The events of one write: one time, ids in their order."""
    at = datetime.now(timezone.utc)
    return [events.new_event(TYPE, "/test", {"n": i}, id=f"{record}.{i}", time=at) for i in range(n)]


def test_while_nats_is_down_a_request_keeps_its_events_without_trying_them(settings, installed, nats):
    rt = installed(settings.replace(nats_url=nats.url))
    rt.bus.ping()   # connected, the stream made by the first publish below
    first, later = moves(1, "parcel-1.1"), moves(3, "parcel-1.2")
    client = parcels_app(rt, [first])
    assert client.post("/v1/parcels").status_code == 201
    assert outbox.pending() == []

    nats.stop()
    for _ in range(200):   # the client notices the closed connection, and reconnects from then on
        if rt.bus.disconnected:
            break
        time.sleep(0.05)
    assert rt.bus.disconnected
    publishes = count_publishes(rt)
    spans = telemetry.spans_in_memory(rt.settings.service)
    client = parcels_app(rt, [later[:2], later[2:]])
    assert client.post("/v1/parcels").status_code == 201   # the write is done; its events are kept
    assert publishes == []
    assert [e["id"] for e in outbox.pending()] == [e["id"] for e in later]
    # each kept event has its PRODUCER span all the same, failed: the later publish links to it
    kept = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.PRODUCER]
    assert len(kept) == 3 and all(s.status.status_code == trace.StatusCode.ERROR
                                  and s.attributes["error.type"] == "BusUnavailable" for s in kept)

    nats.start()
    for _ in range(200):
        if not rt.bus.disconnected:
            break
        time.sleep(0.05)
    assert outbox.flush() == {"sent": 3, "failed": 0}
    assert outbox.pending() == []
    assert [m["event"]["id"] for m in tail(rt.settings, 10)] == [e["id"] for e in first + later]


def test_once_an_event_of_a_request_is_kept_the_rest_of_the_request_follows_it(settings, installed):
    """NATS never reached (nothing listens): the first event is tried, with the request's short
    publish timeout; the others, in this call and the request's next, are kept behind it untried."""
    rt = installed(settings.replace(nats_url=f"nats://127.0.0.1:{free_port()}"))
    publishes = count_publishes(rt)
    batches = [moves(2, "parcel-2.1"), moves(1, "parcel-2.2")]
    client = parcels_app(rt, batches)
    assert client.post("/v1/parcels").status_code == 201
    assert len(publishes) == 1
    assert publishes == [rt.settings.nats_request_publish_timeout_s]
    assert [e["id"] for e in outbox.pending()] == [e["id"] for e in batches[0] + batches[1]]

    # a publish outside any request (a tick's handler run by hand, a migration) waits as it did
    rt.bus.publish_timeout = 0.5
    outbox.publish(moves(1, "parcel-2.3"))
    assert publishes[1:] == [None]
