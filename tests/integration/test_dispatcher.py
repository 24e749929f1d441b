"""The local trigger dispatcher against real NATS and a real HTTP endpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lscloud import events, telemetry
from lscloud.auth import verify_delivery_token
from lscloud.bus import SyncBus, delete_consumer
from lscloud.config import Settings
from lscloud.delivery import Dispatcher, Subscription, read_dlq, tail
from lscloud.local.servers import free_port
from lscloud.problems import Problem
from waiting import wait_for

pytestmark = pytest.mark.integration

SUBMITTED = "vn.langson.border.declaration.submitted.v1"
CLEARED = "vn.langson.border.declaration.cleared.v1"
FAST = dict(backoff=(0.05, 0.1), timeout_s=5, pull_wait_s=0.5)


class Endpoint:
    """A tiny HTTP server that records deliveries and answers from a per-path script."""

    def __init__(self):
        self.deliveries: list[dict] = []
        self.scripts: dict[str, list[int]] = {}
        self.answers: dict[str, tuple[bytes, dict[str, str]]] = {}   # path -> (body, headers) of every answer
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.deliveries.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                             "body": body})
                    script = outer.scripts.get(self.path, [200])
                    status = script.pop(0) if len(script) > 1 else script[0]
                    answer, headers = outer.answers.get(self.path, (b"{}", {}))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[dict]:
        with self.lock:
            return [d for d in self.deliveries if d["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    ep = Endpoint()
    yield ep
    ep.close()


@pytest.fixture
def bus(settings):
    b = SyncBus(settings).start()
    yield b
    b.close()


@pytest.fixture(scope="module")
def tracing():
    telemetry.setup(Settings(service="dispatcher-test"))


@pytest.fixture
def dispatcher_for(settings):
    started = []

    def make(subscriptions, **kw):
        d = Dispatcher(settings, subscriptions, **{**FAST, **kw}).start()
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()
        assert not d.running


def test_delivers_in_binary_mode_continuing_the_trace(settings, endpoint, bus, dispatcher_for, tracing):
    sub = Subscription("border-yard", "on-submitted", [SUBMITTED], endpoint.url("/events"))
    other = Subscription("border-tax", "on-submitted", [SUBMITTED], endpoint.url("/tax/events"))
    d = dispatcher_for([sub, other])
    bus.publish(events.new_event(CLEARED, "/border", {"not": "subscribed"}))
    ev = events.new_event(SUBMITTED, "/border", {"plate": "12C-345.67", "cửa khẩu": "Hữu Nghị"}, subject="d-1")
    with telemetry.tracer().start_as_current_span("POST /v1/declarations"):
        trace_id = telemetry.current_trace_id()
        bus.publish(ev)
    (got,) = wait_for(lambda: endpoint.to("/events"), "delivery")
    wait_for(lambda: endpoint.to("/tax/events"), "fan-out to the second subscription")
    h = got["headers"]
    assert h["ce-id"] == ev["id"] and h["ce-type"] == SUBMITTED and h["ce-specversion"] == "1.0"
    assert h["ce-source"] == "/border" and h["ce-subject"] == "d-1"
    assert h["content-type"] == "application/json"
    assert json.loads(got["body"]) == ev["data"]
    assert events.from_http(h, got["body"]) == ev
    assert h["traceparent"].split("-")[1] == trace_id
    # the unsubscribed type was published first and never reached anyone
    assert all(d_["headers"]["ce-type"] == SUBMITTED for d_ in endpoint.deliveries)
    # each delivery presents the dispatcher's token, its audience the subscribing function
    for function, path in (("border-yard", "/events"), ("border-tax", "/tax/events")):
        token = endpoint.to(path)[0]["headers"]["authorization"].removeprefix("Bearer ")
        assert verify_delivery_token(token, settings.replace(service=function)).sub == settings.events_subjects[0]
        with pytest.raises(Problem) as wrong:
            verify_delivery_token(token, settings.replace(service="someone-else"))
        assert wrong.value.status == 401
    wait_for(lambda: d.stats.delivered == 2, "acks counted")
    assert read_dlq(settings) == []


def test_5xx_is_retried_with_backoff_until_delivered(settings, endpoint, bus, dispatcher_for):
    endpoint.scripts["/flaky"] = [503, 503, 200]
    d = dispatcher_for([Subscription("queue", "flaky", [SUBMITTED], endpoint.url("/flaky"))])
    ev = events.new_event(SUBMITTED, "/border", {"n": 1})
    bus.publish(ev)
    wait_for(lambda: d.stats.delivered == 1, "delivery after retries")
    attempts = endpoint.to("/flaky")
    assert len(attempts) == 3 and {a["headers"]["ce-id"] for a in attempts} == {ev["id"]}
    assert d.stats.retried == 2 and d.stats.dead_lettered == 0
    assert read_dlq(settings) == []


def test_4xx_goes_to_dead_letter_at_once(settings, endpoint, bus, dispatcher_for):
    endpoint.scripts["/strict"] = [400]
    d = dispatcher_for([Subscription("queue", "strict", [SUBMITTED], endpoint.url("/strict"))])
    ev = events.new_event(SUBMITTED, "/border", {"bad": True})
    bus.publish(ev)
    (letter,) = wait_for(lambda: read_dlq(settings), "dead letter")
    assert letter["event"] == ev
    assert letter["status"] == 400 and letter["deliveries"] == 1
    assert letter["subscription"]["function"] == "queue" and letter["subscription"]["name"] == "strict"
    assert letter["dlq_subject"] == "lscloud-dlq.queue.strict"
    assert len(endpoint.to("/strict")) == 1
    # counted once its publish is confirmed, a moment after the letter can be read
    wait_for(lambda: d.stats.dead_lettered == 1, "the dead letter counted")
    assert d.stats.retried == 0


def test_a_failed_delivery_says_what_failed_it_on_its_process_span(settings, endpoint, bus, dispatcher_for):
    """``error.type`` is Conditionally Required on a failed messaging span: the subscriber's status
    (not the ``_OTHER`` a bare ERROR status gets)."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    telemetry.setup(Settings(service="dispatcher-test"))
    spans = InMemorySpanExporter()
    telemetry.use_span_exporter(spans)
    endpoint.scripts["/refuses"] = [422]
    dispatcher_for([Subscription("queue", "refuses", [SUBMITTED], endpoint.url("/refuses"))])
    bus.publish(events.new_event(SUBMITTED, "/border", {"n": 1}))
    wait_for(lambda: read_dlq(settings), "dead letter")
    process = wait_for(lambda: [sp for sp in spans.get_finished_spans() if sp.name.startswith("process ")],
                       "the process span")
    assert process[0].attributes["error.type"] == "422"


def test_a_dead_letter_is_told_to_the_subscribers_sink_as_knative_does(settings, endpoint, bus, dispatcher_for):
    """After the record in <stream>_DLQ, the subscriber's /events/dead-letters gets the event in binary
    mode with Knative's knativeerrorcode / knativeerrordata (base64) / knativeerrordest, and the same
    delivery token; a subscriber that is not a function's /events has no sink."""
    import base64

    endpoint.scripts["/fn/events"] = [422]
    endpoint.scripts["/fn/events/dead-letters"] = [503, 200]   # restarting: asked again (the whole delivery)
    endpoint.scripts["/other"] = [400]
    d = dispatcher_for([Subscription("fn", "strict", [SUBMITTED], endpoint.url("/fn/events")),
                        Subscription("other", "plain", [SUBMITTED], endpoint.url("/other"))],
                       credentials=lambda sub: f"token-for-{sub.token_audience}")
    ev = events.new_event(SUBMITTED, "/border", {"bad": True})
    bus.publish(ev)
    first, told = wait_for(lambda: (lambda t: t if len(t) == 2 else None)(endpoint.to("/fn/events/dead-letters")),
                           "the sink told, then told again")
    assert first["headers"]["ce-id"] == told["headers"]["ce-id"]
    assert len(endpoint.to("/fn/events")) == 2        # the subscriber was tried again before its sink
    h = told["headers"]
    assert (h["ce-id"], h["ce-type"], h["ce-source"]) == (ev["id"], SUBMITTED, "/border")
    assert json.loads(told["body"]) == ev["data"]
    assert h["ce-knativeerrorcode"] == "422"
    assert base64.b64decode(h["ce-knativeerrordata"]).decode().startswith("HTTP 422")
    assert h["ce-knativeerrordest"] == endpoint.url("/fn/events")
    assert h["authorization"] == "Bearer token-for-fn"
    wait_for(lambda: d.stats.dead_lettered == 2, "both dead letters counted")
    assert len(read_dlq(settings)) == 2                     # the platform's record as well, once each
    assert len(endpoint.to("/fn/events/dead-letters")) == 2   # taken the second time: not told again
    assert not [x for x in endpoint.deliveries if x["path"].startswith("/other/")]


def test_always_failing_goes_to_dead_letter_after_max_deliveries(settings, endpoint, bus, dispatcher_for):
    endpoint.scripts["/down"] = [500]
    refused = f"http://127.0.0.1:{free_port()}/events"  # nothing listens: connection errors
    # unreachable_s=0: no answer counts at once (by default it is waited on for 15 minutes first)
    dispatcher_for([Subscription("queue", "down", [SUBMITTED], endpoint.url("/down")),
                    Subscription("ghost", "gone", [SUBMITTED], refused)], max_deliveries=3, unreachable_s=0)
    ev = events.new_event(SUBMITTED, "/border", {"n": 1})
    bus.publish(ev)
    letters = wait_for(lambda: (lambda l: l if len(l) == 2 else None)(read_dlq(settings)), "two dead letters")
    by_fn = {l["subscription"]["function"]: l for l in letters}
    assert by_fn["queue"]["status"] == 500 and by_fn["queue"]["deliveries"] == 3
    assert by_fn["ghost"]["status"] is None and "connection error" in by_fn["ghost"]["error"]
    # a function's /events whose sink does not answer either (the function is down): the whole
    # delivery is tried again, up to twice max_deliveries, before the platform's record alone keeps it
    assert by_fn["ghost"]["deliveries"] == 6
    # its sink is still owed it (handed over once it answers); the other one's was none to tell
    assert by_fn["ghost"]["sink"] == "pending" and "sink" not in by_fn["queue"]
    assert all(l["event"]["id"] == ev["id"] for l in letters)
    assert len(endpoint.to("/down")) == 3
    assert read_dlq(settings, limit=1) == [letters[-1]]


def test_event_in_progress_is_waited_on_uncounted_until_its_cap_then_dead_lettered(settings, endpoint, bus,
                                                                                   dispatcher_for):
    """A function's 503 event-in-progress (another run holds the event) is a wait, not a failure: not
    counted toward max_deliveries while the event has been told so for less than in_progress_max_s.
    A hold that never ends (a hung run's) is counted past that, so it still ends in a dead letter."""
    from lscloud.problems import TYPE_BASE

    endpoint.scripts["/held/events"] = [503]
    endpoint.answers["/held/events"] = (json.dumps({"type": TYPE_BASE + "event-in-progress",
                                                    "title": "Event in progress"}).encode(), {"Retry-After": "0"})
    d = dispatcher_for([Subscription("held", "all", [SUBMITTED], endpoint.url("/held/events"))], max_deliveries=2,
                       in_progress_max_s=1.0)
    bus.publish(events.new_event(SUBMITTED, "/border", {"n": 1}))
    (letter,) = wait_for(lambda: read_dlq(settings), "the dead letter once the cap is past")
    assert letter["deliveries"] > 2 * 2   # more than max_deliveries, and than its sink's retries
    assert letter["reason"].startswith("HTTP 503 event-in-progress")
    assert d.stats.dead_lettered == 1 and len(endpoint.to("/held/events/dead-letters")) == 1


def test_delivery_resumes_after_nats_restart(settings, endpoint, bus, dispatcher_for, nats_server):
    d = dispatcher_for([Subscription("queue", "durable", [SUBMITTED], endpoint.url("/durable"))])
    bus.publish(events.new_event(SUBMITTED, "/border", {"n": 1}))
    wait_for(lambda: d.stats.delivered == 1, "first delivery")
    nats_server.restart()
    ev = events.new_event(SUBMITTED, "/border", {"n": 2})
    bus.publish(ev, timeout=30)
    wait_for(lambda: any(x["headers"]["ce-id"] == ev["id"] for x in endpoint.to("/durable")), "delivery after restart")
    assert [json.loads(x["body"])["n"] for x in endpoint.to("/durable")][-1] == 2
    assert [e["event"]["data"]["n"] for e in tail(settings, 5)] == [1, 2]


def test_a_long_lingering_pull_delays_neither_a_delivery_after_a_restart_nor_a_stop(settings, endpoint, bus,
                                                                                     nats_server):
    """An idle subscription asks again only when its pull expires (here after two minutes). A pull
    that died with its server is made again once the client has reconnected, and stop() does not
    wait for a pull to expire: both would otherwise take the two minutes."""
    sub = Subscription("queue", "lingering", [SUBMITTED], endpoint.url("/lingering"))
    d = Dispatcher(settings, [sub], **{**FAST, "pull_wait_s": 120}).start()
    thread = d._thread
    try:
        bus.publish(events.new_event(SUBMITTED, "/border", {"n": 1}))
        wait_for(lambda: d.stats.delivered == 1, "first delivery")
        nats_server.restart()
        ev = events.new_event(SUBMITTED, "/border", {"n": 2})
        bus.publish(ev, timeout=30)
        wait_for(lambda: any(x["headers"]["ce-id"] == ev["id"] for x in endpoint.to("/lingering")),
                 "delivery after the restart, before the dead pull would have expired", deadline_s=60)
        assert d.stats.delivered == 2
    finally:
        d.stop(timeout=30)
    assert thread is not None and not thread.is_alive()


def test_restarted_dispatcher_resumes_its_durable_consumer(settings, endpoint, bus):
    sub = Subscription("queue", "resume", [SUBMITTED], endpoint.url("/resume"))
    first = Dispatcher(settings, [sub], **FAST).start()
    first.stop()
    assert not first.running
    ev = events.new_event(SUBMITTED, "/border", {"while": "stopped"})
    bus.publish(ev)  # published while no dispatcher runs
    second = Dispatcher(settings, [sub], **FAST).start()
    try:
        wait_for(lambda: endpoint.to("/resume"), "delivery of the event published while stopped")
    finally:
        second.stop()
    assert endpoint.to("/resume")[0]["headers"]["ce-id"] == ev["id"]


def test_subscription_validation():
    with pytest.raises(ValueError):
        Subscription("f", "s", ["not.a.type"], "http://x/")
    with pytest.raises(ValueError):
        Subscription("f", "s", [SUBMITTED], "ftp://x/")
    with pytest.raises(ValueError):
        Subscription("f", "s", [], "http://x/")
    assert Subscription("my fn", "on.x", [SUBMITTED, CLEARED], "http://x/").durable == "my_fn-on_x"


class HoldingEndpoint:
    """Records each delivery's subject on arrival and holds the ones named in ``hold`` until released."""

    def __init__(self, hold: set[str]):
        self.arrived: list[str] = []
        self.hold = hold
        self.release = threading.Event()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                subject = self.headers.get("ce-subject", "")
                with outer.lock:
                    outer.arrived.append(subject)
                if subject in outer.hold:
                    outer.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/events") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def seen(self) -> list[str]:
        with self.lock:
            return list(self.arrived)

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_slow_delivery_holds_up_only_later_events_of_its_own_record(settings, bus, dispatcher_for):
    """Events are delivered as they come, in parallel: a delivery that hangs (a bank that takes its
    time over one transfer) does not hold up the events of other records published after it — the
    old dispatcher waited for its whole batch before fetching again — while a later event of the
    same record still waits for it (per-record order)."""
    ep = HoldingEndpoint(hold={"rec-a"})
    try:
        sub = Subscription("holding", "all", [SUBMITTED], ep.url())
        dispatcher_for([sub], timeout_s=60)
        bus.publish(events.new_event(SUBMITTED, "/border", {"n": 1}, subject="rec-a"))
        wait_for(lambda: "rec-a" in ep.seen(), "the first event of rec-a to arrive (and hang)")
        bus.publish(events.new_event(SUBMITTED, "/border", {"n": 2}, subject="rec-a"))
        bus.publish(events.new_event(SUBMITTED, "/border", {"n": 3}, subject="rec-b"))
        wait_for(lambda: "rec-b" in ep.seen(), "rec-b delivered while rec-a's delivery hangs", deadline_s=30)
        # rec-a's second event was fetched before rec-b's (stream order), and waits for the first
        assert ep.seen() == ["rec-a", "rec-b"]
        ep.release.set()
        wait_for(lambda: ep.seen().count("rec-a") == 2, "rec-a's second event after its first")
        assert ep.seen() == ["rec-a", "rec-b", "rec-a"]
    finally:
        ep.close()


def test_a_delivery_unanswered_within_the_timeout_is_retried_then_dead_lettered(settings, bus, dispatcher_for):
    ep = HoldingEndpoint(hold={"mute"})
    try:
        # not a function's /events, so no sink to try (a mute function's sink: the ghost test above)
        dispatcher_for([Subscription("mute", "all", [SUBMITTED], ep.url("/mute"))], timeout_s=1, max_deliveries=2)
        bus.publish(events.new_event(SUBMITTED, "/border", {"n": 1}, subject="mute"))
        (letter,) = wait_for(lambda: read_dlq(settings) or None, "the dead letter", deadline_s=30)
        assert letter["status"] is None and letter["error"] == "no answer within 1s"
        assert letter["deliveries"] == 2 and ep.seen() == ["mute", "mute"]
    finally:
        ep.release.set()
        ep.close()


def test_deliveries_in_flight_are_bounded_per_subscription(settings, bus, dispatcher_for):
    """At most ``max_in_flight`` deliveries of one subscription are under way at once."""
    ep = HoldingEndpoint(hold={f"r{i}" for i in range(5)})
    try:
        sub = Subscription("bounded", "all", [SUBMITTED], ep.url())
        dispatcher_for([sub], timeout_s=60, max_in_flight=3)
        for i in range(5):
            bus.publish(events.new_event(SUBMITTED, "/border", {"n": i}, subject=f"r{i}"))
        wait_for(lambda: len(ep.seen()) >= 3, "three deliveries under way")
        d_seen = ep.seen()
        assert sorted(d_seen) == ["r0", "r1", "r2"], d_seen   # the fourth waits for a free slot
        ep.release.set()
        wait_for(lambda: len(ep.seen()) == 5, "the rest once slots free up")
    finally:
        ep.close()


def test_every_consumer_that_cannot_be_set_up_is_named_and_waited_for(settings, endpoint):
    """The consumers are set up together; when some fail, start() waits for every one of them and
    its error names each that failed. (The old plain ``gather`` raised the first failure at once:
    the other set-ups ran on against a bus being closed, and their errors were lost.)"""
    import asyncio

    from lscloud.bus import BusError

    ended = []

    class Refusing(Dispatcher):
        async def _ensure_consumer(self, sub):
            try:
                await asyncio.sleep(0)
                if sub.name.startswith("refused"):
                    raise BusError(f"consumer {sub.durable} refused")
                await super()._ensure_consumer(sub)
            finally:
                ended.append(sub.name)

    subs = [Subscription("queue", name, [SUBMITTED], endpoint.url(f"/{name}"))
            for name in ("refused-a", "fine", "refused-b")]
    d = Refusing(settings, subs, **FAST)
    with pytest.raises(BusError) as refused:
        d.start()
    assert "queue-refused-a" in str(refused.value) and "queue-refused-b" in str(refused.value), refused.value
    assert sorted(ended) == ["fine", "refused-a", "refused-b"]
    assert not d.running


def test_a_deleted_consumer_is_made_again_after_its_ack_floor(settings, endpoint, bus, dispatcher_for):
    """Events published while the consumer is gone are delivered once it is made again (a new
    consumer, DeliverPolicy.NEW, would never see them), and those delivered before are not sent again."""
    sub = Subscription("border-yard", "on-submitted", [SUBMITTED], endpoint.url("/events"))
    # pulls of 2 s: a batch pull waiting when its consumer goes ends only when it expires
    d = dispatcher_for([sub], pull_wait_s=2.0, floor_every_s=0)
    for n in (1, 2, 3):
        bus.publish(events.new_event(SUBMITTED, "/border", {"n": n}))
    wait_for(lambda: d._floors.floor(settings.stream, sub.durable) >= 3 and len(endpoint.to("/events")) == 3,
             "three deliveries and the consumer's ack floor after them", 20)

    delete_consumer(settings, settings.stream, sub.durable)
    bus.publish(events.new_event(SUBMITTED, "/border", {"n": 4}))   # while no consumer exists
    wait_for(lambda: len(endpoint.to("/events")) >= 4, "the event published while the consumer was gone", 30)
    bus.publish(events.new_event(SUBMITTED, "/border", {"n": 5}))
    wait_for(lambda: len(endpoint.to("/events")) >= 5, "an event after it", 30)
    # each once; events about no record (no CloudEvents subject) are delivered in parallel, in any order
    assert sorted(json.loads(x["body"])["n"] for x in endpoint.to("/events")) == [1, 2, 3, 4, 5]
