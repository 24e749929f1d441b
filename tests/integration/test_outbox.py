"""The runtime's outbox against real NATS and weed mini: unconfirmed events are kept, then flushed once."""

import pytest

from opentelemetry.trace import SpanKind, StatusCode

from lscloud import events, outbox, runtime, telemetry
from lscloud.delivery import tail
from lscloud.local.servers import free_port

pytestmark = pytest.mark.integration

TYPE = "vn.langson.test.parcel.sent.v1"


@pytest.fixture
def installed(settings):
    def install(s):
        runtime.uninstall()
        return runtime.install(runtime.Runtime(s.replace(service="outbox-test")))
    yield install
    runtime.uninstall()


def test_an_event_nats_does_not_confirm_waits_and_is_flushed_once(settings, installed):
    down = installed(settings.replace(nats_url=f"nats://127.0.0.1:{free_port()}"))
    down.bus.publish_timeout = 0.5  # fail fast: nothing listens there
    first, second = (events.new_event(TYPE, "/test", {"n": n}) for n in (1, 2))
    outbox.publish([first, second])
    assert sorted(e["id"] for e in outbox.pending()) == sorted([first["id"], second["id"]])

    installed(settings)  # NATS is back
    assert outbox.flush() == {"sent": 2, "failed": 0}
    assert outbox.pending() == []
    assert outbox.flush() == {"sent": 0, "failed": 0}
    ids = [m["event"]["id"] for m in tail(settings, 10)]
    assert sorted(ids) == sorted([first["id"], second["id"]])


def test_events_of_two_sources_sharing_an_id_are_both_kept_and_flushed(settings, installed):
    """The outbox keyed a kept event by its id alone, but JetStream and consumers tell events apart by
    source and id: a function publishing two sources' events (market's shops and teams) whose ids
    coincide kept the first and dropped the second as "kept already". Entries kept the old way
    (under the event's id) are still flushed and deleted."""
    down = installed(settings.replace(nats_url=f"nats://127.0.0.1:{free_port()}"))
    down.bus.publish_timeout = 0.5
    shop, team = (events.new_event(TYPE, source, {"n": 7}, id="7.1.0") for source in ("/test/shops", "/test/teams"))
    outbox.publish([shop, team])
    assert sorted(e["source"] for e in outbox.pending()) == ["/test/shops", "/test/teams"]
    earlier = events.new_event(TYPE, "/test", {"n": 8})
    outbox.PendingEvent("outbox-test", earlier["id"], event=earlier).save()   # as kept before
    assert len(outbox.pending()) == 3

    installed(settings)  # NATS is back
    assert outbox.flush() == {"sent": 3, "failed": 0}
    assert outbox.pending() == []
    published = [(m["event"]["source"], m["event"]["id"]) for m in tail(settings, 10)]
    assert sorted(published) == sorted([("/test/shops", "7.1.0"), ("/test/teams", "7.1.0"), ("/test", earlier["id"])])


def test_the_events_of_one_write_are_flushed_in_their_order(settings, installed):
    """Kept under a digest of source and id, the events of one write (one time, ids
    ``<record>.<version>.<i>``) are still published again in the order of their ids."""
    from datetime import datetime, timezone

    down = installed(settings.replace(nats_url=f"nats://127.0.0.1:{free_port()}"))
    down.bus.publish_timeout = 0.5
    at = datetime.now(timezone.utc)
    moves = [events.new_event(TYPE, "/test", {"n": i}, id=f"parcel-9.3.{i}", time=at) for i in range(4)]
    outbox.publish(moves)

    installed(settings)
    assert outbox.flush() == {"sent": 4, "failed": 0}
    assert [m["event"]["id"] for m in tail(settings, 10)] == [e["id"] for e in moves]


def test_a_kept_event_keeps_its_creation_context_and_its_consumers_link_back_to_it(settings, installed):
    """The trace broke at the outbox: a kept event was stored without trace context, and the tick's
    flush published it in the tick's trace with no way back to the request that made it. It now
    keeps the context of the PRODUCER span that first tried (semconv: the message creation
    context), carries it as the CloudEvents traceparent/tracestate, and the flush's PRODUCER span
    and the consumer's span link to it."""
    spans = telemetry.spans_in_memory()
    tracer = telemetry.tracer()
    down = installed(settings.replace(nats_url=f"nats://127.0.0.1:{free_port()}"))
    down.bus.publish_timeout = 0.5
    event = events.new_event(TYPE, "/test", {"n": 6})
    with tracer.start_as_current_span("POST /v1/parcels", kind=SpanKind.SERVER) as request:
        outbox.publish([event])

    def producers():
        return [s for s in spans.get_finished_spans()
                if s.kind == SpanKind.PRODUCER and s.attributes.get("messaging.message.id") == event["id"]]

    (first,) = producers()
    assert first.context.trace_id == request.get_span_context().trace_id
    assert first.status.status_code == StatusCode.ERROR and first.attributes["error.type"] == "BusUnavailable"
    (kept,) = outbox.pending()
    assert kept["traceparent"].split("-")[1:3] == [f"{first.context.trace_id:032x}", f"{first.context.span_id:016x}"]
    assert "traceparent" not in event   # the caller's event is left as it was

    installed(settings)  # NATS is back: the tick flushes in a trace of its own
    with tracer.start_as_current_span("POST /events (tick)", kind=SpanKind.SERVER) as tick:
        assert outbox.flush() == {"sent": 1, "failed": 0}
    again = producers()[-1]
    created = (first.context.trace_id, first.context.span_id)
    assert again.context.trace_id == tick.get_span_context().trace_id
    assert [(link.context.trace_id, link.context.span_id) for link in again.links] == [created]

    (message,) = [m for m in tail(settings, 10) if m["event"]["id"] == event["id"]]
    assert message["event"]["traceparent"] == kept["traceparent"]             # the creation context travels
    assert message["traceparent"].split("-")[2] == f"{again.context.span_id:016x}"   # the transport's: the flush
    # the consumer, as the dispatcher opens its span for a message it pulled
    with telemetry.process_span(message["event"], {"traceparent": message["traceparent"]},
                                destination=message["subject"], consumer_group="outbox-consumer"):
        pass
    consumed = spans.get_finished_spans()[-1]
    assert consumed.kind == SpanKind.CONSUMER and consumed.parent.span_id == again.context.span_id
    assert [(link.context.trace_id, link.context.span_id) for link in consumed.links] == [created]


def test_confirmed_events_never_touch_the_outbox(settings, installed):
    installed(settings)
    outbox.publish([events.new_event(TYPE, "/test", {"n": 3})])
    assert outbox.pending() == []


def test_a_function_mounts_the_operators_flush_route(settings, installed, keys, tokens):
    from lscloud.web import create_app
    from lscloud.web.housekeeping import outbox_routes

    down = installed(settings.replace(nats_url=f"nats://127.0.0.1:{free_port()}"))
    down.bus.publish_timeout = 0.5
    outbox.publish([events.new_event(TYPE, "/test", {"n": 4})])
    up = installed(settings.replace(jwt_public_key=keys[1]))
    app = create_app("outbox-test", settings=up.settings)
    app.register_blueprint(outbox_routes())
    client = app.test_client()
    assert client.post("/v1/outbox/flush", headers=tokens("citizen")).status_code == 403
    r = client.post("/v1/outbox/flush", headers=tokens("operator"))
    assert r.status_code == 200 and r.get_json() == {"sent": 1, "failed": 0}
    assert outbox.pending() == []


def _app(settings):
    from flask import Flask

    from lscloud.web import create_app

    app: Flask = create_app("outbox-test", settings=settings)
    app.config["publish"] = lambda evts: outbox.publish(evts)   # what a function's domain code does
    return app


def test_the_tick_publishes_again_what_any_functions_outbox_keeps(settings, installed):
    """The outbox was flushed by the ticks of border, dossiers and reports only: the events environment,
    community, market, documents and the soft ATM kept while NATS was away waited for ever. The
    runtime now flushes it on every tick of every function that publishes through it."""
    from datetime import datetime, timezone

    from lscloud import clock, knative
    from lscloud.auth import delivery_headers

    down = installed(settings.replace(nats_url=f"nats://127.0.0.1:{free_port()}"))
    down.bus.publish_timeout = 0.5
    kept = events.new_event(TYPE, "/test", {"n": 5})
    outbox.publish([kept])
    assert [e["id"] for e in outbox.pending()] == [kept["id"]]
    runtime.uninstall()

    assert knative.uses_outbox(_app.__module__)
    fn = knative.function(_app)()
    fn.start(settings.replace(service="outbox-test").env_vars())
    try:
        client = fn.app.test_client()
        h, b = events.to_binary_http(clock.tick_event(datetime.now(timezone.utc)))
        h.update(delivery_headers(fn.app.extensions["lscloud"].settings))
        assert client.post("/events", data=b, headers=h).status_code == 200
        assert outbox.pending() == []
        assert kept["id"] in [m["event"]["id"] for m in tail(settings, 10)]
    finally:
        fn.stop()
