"""Event publish -> dispatcher -> a real function, end to end on real nats-server and weed mini.

The receiver is a real lscloud function (``knative.function(create_app, events=...)``) served the
way a function is served (func-python's app around ``new()``, :mod:`lscloud.function_server`), on a
loopback port, configured from the environment by the lifespan ``start(os.environ)``. Its handler writes
what it did to the object store, so "processed exactly once" is read back from S3:

* ``Attempt``   one document per handler run (event id / run id);
* ``Processed`` one create-only document per event id, with the trace id the handler saw;
* ``Duplicate`` written instead when ``Processed`` already existed: a second processing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from flask import jsonify
from opentelemetry.trace import SpanKind

from lscloud import delivery, errors, events, knative, runonce, telemetry, web
from lscloud.auth import allow, delivery_headers
from lscloud.bus import SyncBus
from lscloud.local.servers import free_port
from lscloud.store import leases
from lscloud.config import Settings
from lscloud.delivery import Dispatcher, Subscription, read_dlq, tail
from lscloud.problems import TYPE_BASE, Problem
from lscloud.store import ConditionalCheckFailed, DoesNotExist, Model, attributes as A
from waiting import wait_for

from asgi_support import Served  # tests/integration helper module

pytestmark = pytest.mark.integration

RECEIVED = "vn.langson.test.parcel.received.v1"
FAST = dict(backoff=(0.05, 0.1), timeout_s=5, pull_wait_s=0.5)
FUNCTION = "event-sink"
OTHER = "event-sink-b"   # a second function in the same bucket, as every function is in the local cloud
HERE = Path(__file__).resolve().parent


# --- the function under test -------------------------------------------------------------------


class Attempt(Model):
    class Meta:
        table = "sink-attempts"

    event_id = A.UnicodeAttribute(hash_key=True)
    run = A.UnicodeAttribute(range_key=True)


class Processed(Model):
    class Meta:
        table = "sink-processed"

    event_id = A.UnicodeAttribute(hash_key=True)
    n = A.NumberAttribute(null=True)
    trace_id = A.UnicodeAttribute(null=True)
    attempt = A.NumberAttribute()


class Permit(Model):
    """What a ``data.permit`` parcel needs before it can be processed (an operator's fix)."""

    class Meta:
        table = "sink-permits"

    id = A.UnicodeAttribute(hash_key=True)


class Duplicate(Model):
    class Meta:
        table = "sink-duplicates"

    run = A.UnicodeAttribute(hash_key=True)
    event_id = A.UnicodeAttribute()


class UnacceptableParcel(errors.Invalid):
    type, title, title_vi = "parcel-unacceptable", "Parcel not accepted", "Bưu kiện không được nhận"


def unacceptable(event: dict) -> UnacceptableParcel:
    """A refusal as functions answer one: bilingual, every field named, the detail naming the
    sender (what a reason must never show)."""
    fields = ("/data/recipient/name", "/data/recipient/phone", "/data/recipient/address",
              "/data/weight_g", "/data/contents")
    return UnacceptableParcel(
        f"Parcel {event['id']} from 0912 345 678 cannot be accepted: every field below is wrong.",
        detail_vi=f"Bưu kiện {event['id']} của người gửi 0912 345 678 không được nhận: các trường dưới đây sai.",
        errors=[errors.field(f, f"{f} is missing or not valid for a parcel", f"{f} bị thiếu hoặc không hợp lệ")
                for f in fields])


def on_received(event: dict) -> None:
    """``data.poison``: a 4xx no retry can fix (``data.unacceptable``: a long bilingual one);
    ``data.fail_first``: that many 5xx first; ``data.slow_fail_s``: the first run takes that long
    and then fails; ``data.slow_s``: the first run takes that long, then does its work."""
    data = event.get("data") or {}
    Attempt(event["id"], uuid.uuid4().hex).save()
    attempt = Attempt.count(event["id"])
    if data.get("unacceptable"):
        raise unacceptable(event)
    if data.get("poison"):
        raise Problem(422, "unprocessable-parcel", "Unprocessable parcel",
                      "The parcel has no valid destination; resending it cannot help.",
                      title_vi="Bưu kiện không xử lý được", detail_vi="Bưu kiện không có địa chỉ đích hợp lệ.")
    if data.get("permit") and not Permit.exists(data["permit"]):
        raise Problem(422, "no-permit", "No permit", "The parcel needs a permit that is not there.",
                      title_vi="Chưa có giấy phép", detail_vi="Bưu kiện cần giấy phép chưa có.")
    if data.get("always_fail"):
        raise RuntimeError("the downstream is gone")
    if attempt == 1 and data.get("slow_fail_s"):
        time.sleep(float(data["slow_fail_s"]))  # outlives the dispatcher's timeout, then fails
        raise RuntimeError("downstream timed out")
    if attempt == 1 and data.get("slow_s"):
        time.sleep(float(data["slow_s"]))  # outlives the dispatcher's timeout and the lease, then goes on
    if attempt <= int(data.get("fail_first", 0)):
        raise RuntimeError(f"downstream not ready (attempt {attempt})")
    try:
        Processed(event["id"], n=data.get("n"), trace_id=telemetry.current_trace_id(), attempt=attempt).save()
    except ConditionalCheckFailed:
        Duplicate(uuid.uuid4().hex, event_id=event["id"]).save()


def create_app(settings):
    app = web.create_app(FUNCTION, settings=settings)

    @app.get("/v1/seen")
    @allow("public")
    def seen():
        """The events this function has processed."""
        return jsonify(items=[p.to_dict() for p in Processed.scan()])

    return app


new = knative.function(create_app, events={RECEIVED: on_received})


def create_other_app(settings):
    return web.create_app(OTHER, settings=settings)


new_other = knative.function(create_other_app, events={RECEIVED: on_received})


class FunctionServer:
    """``new()`` served as a function is (:class:`lscloud.function_server.FunctionApp` on its
    server), in a thread."""

    def __init__(self, new_fn, port: int | None = None):
        from lscloud.function_server import FunctionApp

        self.instance = new_fn()
        self._served = Served(FunctionApp(self.instance), port)
        self.port, self.url = self._served.port, self._served.url
        self.started = False

    def start(self) -> "FunctionServer":
        self.started = True
        self._served.start()
        wait_for(self._ready, "the function's /health/readiness", 30, alive=lambda: self._served.error is None and not self._served.stopped)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health/readiness", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if not self.started:   # never served: nothing to stop
            return
        self._served.stop()
        assert self._served.error is None and self._served.stopped, "the function server did not stop"

    def seen(self) -> dict[str, dict]:
        resp = httpx.get(f"{self.url}/v1/seen", timeout=10)
        resp.raise_for_status()
        return {item["event_id"]: item for item in resp.json()["items"]}

    def post_event(self, event: dict, *, structured: bool = False) -> httpx.Response:
        if structured:
            headers, body = {"content-type": events.STRUCTURED_CONTENT_TYPE}, events.to_structured(event)
        else:
            headers, body = events.to_binary_http(event)
        # by hand, as the dispatcher does it: with its delivery token for this function
        headers.update(delivery_headers(self.instance.settings))
        return httpx.post(f"{self.url}/events", content=body, headers=headers, timeout=10)

    def dead_letters(self, operator: dict) -> list[dict]:
        """The function's own list of dead letters, as an operator sees it."""
        resp = httpx.get(f"{self.url}/platform/dead-letters", headers=operator, timeout=10)
        resp.raise_for_status()
        return resp.json()["items"]


# --- helpers and fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracing():
    telemetry.setup(Settings(service="event-delivery-test"))


@pytest.fixture
def sink(settings, monkeypatch, tracing, keys):
    """The function, configured the Knative way: from the environment, at lifespan start (its
    K_SERVICE is its name: the audience the dispatcher's tokens carry); operators' tokens are the test's."""
    for name, value in settings.replace(service=FUNCTION, jwt_public_key=keys[1]).env_vars().items():
        monkeypatch.setenv(name, value)
    server = FunctionServer(new).start()
    try:
        assert server.instance.settings.bucket == settings.bucket
        yield server
    finally:
        server.stop()


@pytest.fixture
def short_leases(monkeypatch) -> float:
    """An events-seen lease of 2 s renewed every 0.5 s (30 s and 10 s otherwise): a dead run frees its
    event, and a slow one keeps it, within a test's patience. The lease's length, returned."""
    monkeypatch.setattr(knative, "IN_PROGRESS_LEASE_S", 2.0)
    monkeypatch.setattr(knative, "IN_PROGRESS_RENEW_S", 0.5, raising=False)
    return 2.0


def configure(monkeypatch, settings, keys, service: str = FUNCTION) -> None:
    """The environment a function is started from, the Knative way (as :func:`sink` sets it)."""
    for name, value in settings.replace(service=service, jwt_public_key=keys[1]).env_vars().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bus(settings):
    b = SyncBus(settings).start()
    yield b
    b.close()


@pytest.fixture
def dispatch(settings, sink):
    """Start a dispatcher whose subscriptions POST to the function's /events."""
    started = []

    def make(*names: str, **kw) -> Dispatcher:
        subs = [Subscription(FUNCTION, name, [RECEIVED], f"{sink.url}/events") for name in names or ("on-received",)]
        d = Dispatcher(settings, subs, **{**FAST, **kw}).start()
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()
        assert not d.running


def attempts(event_id: str) -> int:
    return Attempt.count(event_id)


def duplicates() -> list[Duplicate]:
    return list(Duplicate.scan())


def parcel(n: int, **extra) -> dict:
    return events.new_event(RECEIVED, "/test/post-office", {"n": n, **extra}, subject=f"parcel-{n}")


def seen_markers(object_store, settings) -> list[str]:
    return [info.key for info in object_store.list(settings.bucket, "events-seen/")]


# --- scenarios -----------------------------------------------------------------------------------


def test_every_event_is_processed_once_and_continues_the_publishers_trace(settings, sink, bus, dispatch,
                                                                        object_store):
    d = dispatch()
    published: dict[str, str] = {}
    for n in range(8):
        ev = parcel(n)
        with telemetry.tracer().start_as_current_span("POST /v1/parcels"):
            published[ev["id"]] = telemetry.current_trace_id()
            bus.publish(ev)
    assert all(published.values()) and len(set(published.values())) == 8

    seen = wait_for(lambda: (lambda s: s if len(s) == 8 else None)(sink.seen()), "8 processed events")
    wait_for(lambda: d.stats.delivered == 8, "8 acks")
    assert set(seen) == set(published)
    for event_id, record in seen.items():
        # the function's handler ran in the trace of the request that published the event
        assert record["trace_id"] == published[event_id]
        assert record["attempt"] == 1 and attempts(event_id) == 1
    # the traceparent stored with each event in the stream is the one that reached the function
    from_stream = {e["event"]["id"]: e["traceparent"].split("-")[1] for e in tail(settings, 20)}
    assert from_stream == published
    assert duplicates() == []
    assert len(seen_markers(object_store, settings)) == 8
    assert d.stats.retried == 0 and d.stats.dead_lettered == 0
    assert read_dlq(settings) == []


def test_retryable_failure_is_redelivered_until_processed_once(settings, sink, bus, dispatch, object_store):
    d = dispatch()
    ev = parcel(1, fail_first=2)
    bus.publish(ev)
    wait_for(lambda: ev["id"] in sink.seen(), "processing after two 5xx")
    wait_for(lambda: d.stats.delivered == 1, "the ack")
    record = Processed.get(ev["id"])
    assert record.attempt == 3 and attempts(ev["id"]) == 3
    assert d.stats.retried == 2 and d.stats.dead_lettered == 0
    assert duplicates() == []
    # the failed runs released their dedupe marker (so the retries ran); the success kept one
    assert len(seen_markers(object_store, settings)) == 1
    assert read_dlq(settings) == []


def test_unfixable_event_is_dead_lettered_at_once_and_not_processed(settings, sink, bus, dispatch, object_store):
    d = dispatch()
    poison = parcel(1, poison=True)
    bus.publish(poison)
    (letter,) = wait_for(lambda: read_dlq(settings), "the dead letter")
    assert letter["event"] == poison
    assert letter["status"] == 422 and letter["deliveries"] == 1
    assert TYPE_BASE + "unprocessable-parcel" in letter["error"]
    assert letter["subscription"] == {"function": FUNCTION, "name": "on-received", "types": [RECEIVED],
                                      "url": f"{sink.url}/events"}
    assert letter["dlq_subject"] == f"lscloud-dlq.{FUNCTION}.on-received"
    # the subscription keeps going after the poison event
    fine = parcel(2)
    bus.publish(fine)
    wait_for(lambda: fine["id"] in sink.seen(), "the next event")
    assert poison["id"] not in sink.seen() and not Processed.exists(poison["id"])
    assert attempts(poison["id"]) == 1  # never retried
    assert d.stats.dead_lettered == 1 and d.stats.retried == 0
    assert len(seen_markers(object_store, settings)) == 1  # only the good event's
    assert len(read_dlq(settings)) == 1
    # the function was told of it at /events/dead-letters, and keeps it for its operators
    from lscloud import deadletters

    (kept,) = deadletters.page(limit=10)
    assert kept.state == deadletters.OPEN and kept.data["event"] == poison
    assert kept.data["status"] == 422 and TYPE_BASE + "unprocessable-parcel" in kept.data["error"]
    assert kept.data["destination"] == f"{sink.url}/events"


def test_a_long_bilingual_refusal_is_dead_lettered_with_its_problem_type_as_the_reason(settings, sink, bus,
                                                                                         dispatch):
    """The reason was parsed from the answer cut at 500 characters: a bilingual problem with its
    errors[] is longer, the cut document parsed as nothing, and span and log said only "HTTP 422".
    It is read from the whole answer now, and the dead letter carries it; it shows the problem's
    type and titles, never its detail (which names the sender here)."""
    spans = telemetry.spans_in_memory()
    dispatch()
    refused = parcel(1, unacceptable=True)
    assert len(unacceptable(refused).to_problem().body()) > 1000   # the answer is long indeed
    bus.publish(refused)
    (letter,) = wait_for(lambda: read_dlq(settings), "the dead letter")
    assert letter["status"] == 422 and letter["event"]["id"] == refused["id"]
    assert letter["reason"] == "HTTP 422 parcel-unacceptable (Parcel not accepted / Bưu kiện không được nhận)"
    assert len(letter["error"]) <= len("HTTP 422: ") + 500   # what is kept of the answer stays bounded

    def dead_lettered() -> list:
        return [s.status.description for s in spans.get_finished_spans()
                if s.kind == SpanKind.CONSUMER and s.resource.attributes.get("service.name") == delivery.SERVICE
                and s.attributes.get("messaging.message.id") == refused["id"]]

    assert wait_for(dead_lettered, "the delivery's span") == [f"dead-lettered: {letter['reason']}"]


def test_an_event_on_a_subject_its_type_does_not_map_to_is_dead_lettered_not_run(settings, sink, bus,
                                                                                   object_store):
    """NATS permissions bind a publisher to its own subjects: the subject says who sent an event. A
    type published on another type's subject (a function forging another's facts, as the cluster's
    one bridge subscription takes every subscribed subject) is dead-lettered, never run."""
    from lscloud import bus as bus_module

    collected = "vn.langson.test.parcel.collected.v1"
    sub = Subscription(FUNCTION, "on-both", [RECEIVED, collected], f"{sink.url}/events")
    d = Dispatcher(settings, [sub], **FAST).start()
    try:
        forged = parcel(1)
        _, body, headers = bus_module.prepare(forged)
        # published where the forger may publish (collected's subject), typed as another's fact
        bus._run(bus._bus.publish_message(events.subject_for(collected), body, headers), 10)
        (letter,) = wait_for(lambda: read_dlq(settings), "the dead letter")
        assert letter["event"]["id"] == forged["id"] and letter["subject"] == "lscloud.test.parcel.collected"
        assert "not published on" in letter["error"]
        fine = parcel(2)
        bus.publish(fine)
        wait_for(lambda: fine["id"] in sink.seen(), "the next event")
        assert forged["id"] not in sink.seen() and attempts(forged["id"]) == 0
    finally:
        d.stop()


def test_an_operator_retries_a_dead_letter_once_its_cause_is_fixed(settings, sink, bus, dispatch, tokens):
    from lscloud import deadletters

    dispatch()
    needs = parcel(1, permit="p-" + uuid.uuid4().hex)
    bus.publish(needs)
    (letter,) = wait_for(lambda: list(deadletters.page(limit=10)), "the dead letter kept by the function")
    retry = f"{sink.url}/platform/dead-letters/{letter.id}/retry"
    operator = tokens("operator", "op-lan")

    # the cause is not fixed yet: the handler's own refusal comes back, and the letter stays open
    r = httpx.post(retry, headers=operator, timeout=10)
    assert r.status_code == 422 and r.json()["type"].endswith("/no-permit")
    assert deadletters.find(letter.id).state == deadletters.OPEN
    for who in (tokens("auditor"), tokens("citizen"), {}):
        assert httpx.post(retry, headers=who, timeout=10).status_code in (401, 403)

    Permit(needs["data"]["permit"]).save()   # the fix
    # four operators at once: the event is processed once, the letter settled once
    with __import__("concurrent.futures").futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: httpx.post(retry, headers=operator, timeout=30), range(4)))
    # one runs it; the others are told it is in progress (409, Retry-After) or get the settlement
    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    assert sum(a.status_code == 200 and a.headers.get("Idempotent-Replayed") != "true" for a in answers) == 1
    assert all(a.headers["Retry-After"] == "2" for a in answers if a.status_code == 409)
    again = httpx.post(retry, headers=operator, timeout=10)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    settled = again.json()
    assert settled["id"] == letter.id and settled["state"] == deadletters.SETTLED
    assert settled["settled"]["action"] == "retried" and settled["settled"]["result"] == "done"
    assert settled["settled"]["by"] == "op-lan" and settled["settled"]["at"].endswith("Z")
    assert needs["id"] in sink.seen() and duplicates() == [] and Processed.count(needs["id"]) == 1
    # the list shows it settled; an unknown letter is a 404 naming it
    listed = httpx.get(f"{sink.url}/platform/dead-letters?state=settled", headers=operator, timeout=10).json()
    assert [i["id"] for i in listed["items"]] == [letter.id]
    assert httpx.post(f"{sink.url}/platform/dead-letters/nope/retry", headers=operator, timeout=10).status_code == 404


def test_a_retry_that_fails_again_is_a_409_and_one_already_processed_is_settled_duplicate(
        settings, sink, bus, dispatch, tokens):
    from lscloud import deadletters

    dispatch(max_deliveries=2)
    broken = parcel(1, always_fail=True)
    bus.publish(broken)
    (letter,) = wait_for(lambda: list(deadletters.page(limit=10)), "the dead letter", 60)
    operator = tokens("operator")
    r = httpx.post(f"{sink.url}/platform/dead-letters/{letter.id}/retry", headers=operator, timeout=10)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/dead-letter-retry-failed") and "RuntimeError" in problem["detail"]
    assert "downstream" not in r.text   # the exception's class, never its message
    assert deadletters.find(letter.id).state == deadletters.OPEN

    # an event the handler completed since (a redelivery went through) is settled without a second run
    # (one completed before its letter was kept is kept settled: test_deadletters_done.py)
    done = parcel(2)
    late, _ = deadletters.keep({**done, "knativeerrorcode": "503"})
    assert sink.post_event(done).status_code == 200
    before = attempts(done["id"])
    r = httpx.post(f"{sink.url}/platform/dead-letters/{late.id}/retry", headers=operator, timeout=10)
    assert r.status_code == 200 and r.json()["settled"]["result"] == "duplicate"
    assert attempts(done["id"]) == before


def test_delivery_survives_a_nats_restart_in_the_middle(settings, sink, bus, dispatch, nats_server):
    d = dispatch()
    first = [parcel(n) for n in range(6)]
    second = [parcel(n) for n in range(6, 12)]
    try:
        for ev in first:
            bus.publish(ev)
        wait_for(lambda: d.stats.delivered >= 1, "the first delivery")
        nats_server.restart()  # same port, same JetStream store
        for ev in second:
            bus.publish(ev, timeout=30)  # SyncBus reconnects and retries with the same Nats-Msg-Id
    finally:
        if not nats_server.running():
            nats_server.start()
    ids = {ev["id"] for ev in first + second}
    seen = wait_for(lambda: (lambda s: s if set(s) == ids else None)(sink.seen()), "all 12 events processed", 60)
    assert sorted(r["n"] for r in seen.values()) == list(range(12))
    # a redelivery (an ack lost in the restart) reached the function's dedupe, not the handler
    assert duplicates() == []
    assert all(attempts(i) == 1 for i in ids)
    # each event is stored once in the stream: no publish was duplicated across the restart
    assert sorted(e["event"]["data"]["n"] for e in tail(settings, 50)) == list(range(12))
    assert read_dlq(settings) == []


def test_same_event_twice_is_processed_once_and_answered_2xx_each_time(settings, sink, bus, dispatch,
                                                                      object_store):
    # two triggers on the same function: every event reaches /events twice through the dispatcher
    d = dispatch("on-received", "replay")
    ev = parcel(7)
    first_seq = bus.publish(ev)
    assert bus.publish(ev) == first_seq  # JetStream dedupe on Nats-Msg-Id
    wait_for(lambda: ev["id"] in sink.seen(), "processing")
    wait_for(lambda: d.stats.delivered == 2, "both deliveries answered 2xx")
    # and a late redelivery straight to the function, in binary and in structured mode
    again = sink.post_event(ev)
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "id": ev["id"]}
    structured = sink.post_event(ev, structured=True)
    assert structured.status_code == 200 and structured.json()["status"] == "duplicate"
    assert attempts(ev["id"]) == 1 and Processed.get(ev["id"]).attempt == 1
    assert duplicates() == []
    assert len(seen_markers(object_store, settings)) == 1
    assert [e["event"]["id"] for e in tail(settings, 10)] == [ev["id"]]
    assert d.stats.retried == 0 and d.stats.dead_lettered == 0 and read_dlq(settings) == []


def test_redelivery_during_a_slow_run_that_then_fails_is_not_lost(settings, sink, bus, dispatch, object_store,
                                                                   short_leases):
    # the dispatcher gives up on the first run after 1 s and redelivers while that run goes on;
    # the run then fails: the redelivery must not have been acked as a "duplicate" meanwhile
    d = dispatch(timeout_s=1, backoff=(0.5,), max_deliveries=12)
    ev = parcel(1, slow_fail_s=2.5)
    bus.publish(ev)
    wait_for(lambda: ev["id"] in sink.seen() or read_dlq(settings), "processing or a dead letter")
    assert read_dlq(settings) == []
    wait_for(lambda: d.stats.delivered == 1, "the ack")
    assert Processed.get(ev["id"]).attempt == 2 and attempts(ev["id"]) == 2
    assert d.stats.retried >= 2  # the timeout, then at least one "still in progress"
    assert duplicates() == []
    assert len(seen_markers(object_store, settings)) == 1


def test_a_run_that_died_holds_its_event_only_until_the_lease_ends(settings, sink, object_store):
    # a run that crashed mid-handler left its record "in-progress": redeliveries wait, not drop
    ev = parcel(3)
    key = runonce.events_seen_key(FUNCTION, ev)
    claim = {"id": ev["id"], "source": ev["source"], "type": ev["type"], "status": leases.IN_PROGRESS}
    now = time.time()
    object_store.put(settings.bucket, key, json.dumps(
        {**claim, "received_at": now, "expires_at": now + knative.IN_PROGRESS_LEASE_S}).encode())
    held = sink.post_event(ev)
    assert held.status_code == 503 and held.json()["type"] == TYPE_BASE + "event-in-progress"
    assert attempts(ev["id"]) == 0
    # when to ask again: what is left of the hold (a fixed 2 s before, with 300 s left)
    assert knative.IN_PROGRESS_LEASE_S - 2 <= int(held.headers["Retry-After"]) <= knative.IN_PROGRESS_LEASE_S
    stale = time.time() - knative.IN_PROGRESS_LEASE_S - 1
    object_store.put(settings.bucket, key, json.dumps(
        {**claim, "received_at": stale, "expires_at": stale + knative.IN_PROGRESS_LEASE_S}).encode())
    taken = sink.post_event(ev)
    assert taken.status_code == 200 and taken.json()["status"] == "done"
    assert attempts(ev["id"]) == 1 and Processed.exists(ev["id"])
    assert json.loads(object_store.get(settings.bucket, key).body)["status"] == leases.COMPLETED
    assert sink.post_event(ev).json()["status"] == "duplicate"


def test_a_repeat_safe_handler_runs_on_every_delivery_without_an_events_seen_record(settings, monkeypatch,
                                                                                      tracing, object_store):
    """``knative.repeat_safe``: a handler whose effects dedupe on the event id by themselves (a
    partner's webhook) runs on each delivery, answered 2xx each time, and ``/events`` writes no
    events-seen record for it (the lease's two PUTs); a failing run is still a 5xx to retry."""
    def record(event: dict) -> None:
        Attempt(event["id"], uuid.uuid4().hex).save()
        if (event.get("data") or {}).get("fail"):
            raise RuntimeError("downstream not ready")

    for name, value in settings.replace(service=FUNCTION).env_vars().items():
        monkeypatch.setenv(name, value)
    server = FunctionServer(knative.function(create_app, events={RECEIVED: knative.repeat_safe(record)})).start()
    try:
        ev, bad = parcel(11), parcel(12, fail=True)
        answers = [server.post_event(ev), server.post_event(ev, structured=True)]
        assert [(a.status_code, a.json()) for a in answers] == [(200, {"status": "done", "id": ev["id"]})] * 2
        assert server.post_event(bad).status_code >= 500
        assert attempts(ev["id"]) == 2 and attempts(bad["id"]) == 1
        assert seen_markers(object_store, settings) == []
    finally:
        server.stop()


def test_an_action_holds_its_dead_letter_while_it_runs(settings, sink, monkeypatch):
    """Two operators at once: the second is told the letter is in progress (409, Retry-After) and
    acts on nothing, so the settlement is the action that ran (before, a second retry that found the
    first one's work done could settle first as "duplicate"). A failed action releases its hold, and
    a hold whose holder died ends at its bound."""
    from lscloud import deadletters

    letter, _ = deadletters.keep(parcel(7))
    told = []

    def action(held):
        assert held.data["acting"]["by"] == "op-a"
        with pytest.raises(deadletters.ActionInProgress) as second:
            deadletters.act(letter.id, lambda _: pytest.fail("a second action ran"), by="op-b", at="t")
        told.append((second.value.status, second.value.headers["Retry-After"]))
        return {"action": "retried", "result": "done"}

    settled, replayed = deadletters.act(letter.id, action, by="op-a", at="t")
    assert told == [(409, "2")] and not replayed
    assert settled.state == deadletters.SETTLED and settled.data["settled"]["by"] == "op-a"
    assert "acting" not in settled.data

    other, _ = deadletters.keep(parcel(8))

    def fails(_):
        raise RuntimeError("still broken")

    with pytest.raises(RuntimeError):
        deadletters.act(other.id, fails, by="op-a", at="t")
    kept = deadletters.find(other.id)
    assert kept.state == deadletters.OPEN and "acting" not in kept.data
    # the holder died: its hold is there, and ends at ACTION_HOLD_S
    monkeypatch.setattr(deadletters, "_release", lambda letter_id: None)
    with pytest.raises(RuntimeError):
        deadletters.act(other.id, fails, by="op-a", at="t")
    with pytest.raises(deadletters.ActionInProgress):
        deadletters.act(other.id, fails, by="op-b", at="t")
    from types import SimpleNamespace

    # the dead letters' clock only, past any hold set before
    monkeypatch.setattr(deadletters, "time", SimpleNamespace(time=lambda: 4_000_000_000.0))
    settled, _ = deadletters.act(other.id, lambda _: {"action": "retried", "result": "done"}, by="op-b", at="t")
    assert settled.data["settled"]["by"] == "op-b"


# --- a run that dies, a slow run, a function that is down: waits, not failures -----------------------

CHILD = """
import sys, threading
lease, renew, port = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
sys.path[:0] = sys.argv[4:]
from lscloud import knative
knative.IN_PROGRESS_LEASE_S, knative.IN_PROGRESS_RENEW_S = lease, renew
import test_event_delivery as here
from asgi_support import Served
from lscloud.function_server import FunctionApp
Served(FunctionApp(here.new()), port=port).start()
threading.Event().wait()
"""


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/readiness", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_run_killed_mid_event_frees_it_within_a_lease_and_it_is_done_not_dead_lettered(
        settings, keys, monkeypatch, tracing, bus, object_store, short_leases, tmp_path, rt):
    """The function is killed (SIGKILL, as the OOM killer does) while its handler runs. While it ran, its
    run renewed its hold on the event, and the redeliveries were told "in progress" and waited, none
    counted; killed, its hold ends within a lease; the function back, a redelivery takes the event
    over and does it. Before, the hold was 300 s unrenewed: five 503s dead-lettered the event 4 s
    after it was published (the survey's plate read), and an operator's retry was refused meanwhile."""
    configure(monkeypatch, settings, keys)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "child.log", "wb") as out:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(short_leases), "0.5", str(port), str(HERE),
                                  str(HERE.parents[1])], stdout=out, stderr=subprocess.STDOUT)
    d = back = None
    try:
        wait_for(lambda: answers(url), "the function in its own process", 60, alive=lambda: child.poll() is None)
        d = Dispatcher(settings, [Subscription(FUNCTION, "on-received", [RECEIVED], f"{url}/events")],
                       **{**FAST, "timeout_s": 1, "max_deliveries": 3}).start()
        ev = parcel(1, slow_s=3600)   # the first run would go on for an hour
        bus.publish(ev)
        key = runonce.events_seen_key(FUNCTION, ev)

        def held_past_two_leases() -> bool:
            assert read_dlq(settings) == [], "dead-lettered while its run went on"
            try:
                record = json.loads(object_store.get(settings.bucket, key).body)
            except DoesNotExist:
                return False
            renewed = record.get("renewed_at", record.get("received_at", 0)) - record.get("received_at", 0)
            return renewed > 2 * short_leases and d.stats.retried >= 3

        wait_for(held_past_two_leases, "the run renewing its hold past two leases, redeliveries told to wait", 60)
        assert attempts(ev["id"]) == 1   # none of the redeliveries ran it again meanwhile
        child.kill()
        child.wait(30)
        back = FunctionServer(new, port=port).start()
        wait_for(lambda: d.stats.delivered == 1 or read_dlq(settings), "the event done (or dead-lettered)", 60)
        assert read_dlq(settings) == [] and d.stats.dead_lettered == 0
        assert Processed.get(ev["id"]).attempt == 2 and attempts(ev["id"]) == 2 and duplicates() == []
        assert json.loads(object_store.get(settings.bucket, key).body)["status"] == leases.COMPLETED
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        if d is not None:
            d.stop()
        if back is not None:
            back.stop()


def test_a_handler_slower_than_its_lease_runs_once_and_is_not_dead_lettered(settings, sink, bus, dispatch,
                                                                           object_store, short_leases):
    """A run longer than the dispatcher's timeout and than its lease renews its hold while it goes on:
    the redeliveries meanwhile are told "in progress" (Retry-After) and wait, uncounted; once it is
    done the next one is a duplicate, acked. Before, five 503s dead-lettered it even though the run
    then succeeded (and a run longer than the lease was taken over: run twice)."""
    d = dispatch(timeout_s=1, max_deliveries=3)
    ev = parcel(1, slow_s=4 * short_leases)
    bus.publish(ev)
    wait_for(lambda: d.stats.delivered == 1 or read_dlq(settings), "the ack (or a dead letter)", 60)
    assert read_dlq(settings) == [] and d.stats.dead_lettered == 0
    assert attempts(ev["id"]) == 1 and Processed.get(ev["id"]).attempt == 1 and duplicates() == []
    assert d.stats.retried >= 3   # the timeout, then redeliveries told to wait
    record = json.loads(object_store.get(settings.bucket, runonce.events_seen_key(FUNCTION, ev)).body)
    assert record["status"] == leases.COMPLETED


def test_a_function_down_longer_than_the_old_give_up_gets_its_event_once_it_is_back(settings, keys, monkeypatch,
                                                                                   tracing, bus):
    """No answer at all (a function in a crash loop) is waited on with a growing back-off, for 15
    minutes by default, not counted: before, ten refused connections (about 30 s under `lscloud up`)
    dead-lettered the event into the platform's stream alone."""
    configure(monkeypatch, settings, keys)
    down = FunctionServer(new)   # its port is chosen; nothing listens there yet
    d = Dispatcher(settings, [Subscription(FUNCTION, "on-received", [RECEIVED], f"{down.url}/events")],
                   **{**FAST, "backoff": (0.005, 0.05)}).start()
    try:
        ev = parcel(1)
        bus.publish(ev)

        def refused_ten_times() -> bool:
            assert read_dlq(settings) == [], "dead-lettered while its function was down"
            return d.stats.retried >= 10   # the old give-up: 5 deliveries, then 5 more for its sink

        wait_for(refused_ten_times, "ten deliveries without an answer", 60)
        down.start()
        wait_for(lambda: d.stats.delivered == 1, "the event once its function is back", 60)
        assert ev["id"] in down.seen() and attempts(ev["id"]) == 1
        assert read_dlq(settings) == [] and d.stats.dead_lettered == 0
    finally:
        d.stop()
        down.stop()


def test_a_dead_letter_its_function_was_down_for_reaches_its_own_list_once_it_is_back(settings, keys, monkeypatch,
                                                                                     tracing, bus, tokens):
    """Dead-lettered while its function did not answer (here at once: ``unreachable_s=0``), the event
    reached only the platform's stream, which the function's operators are not told to look at. The
    original is kept, and handed to the function's sink once it answers: it is in the function's own
    /platform/dead-letters, and an operator's retry runs it."""
    configure(monkeypatch, settings, keys)
    down = FunctionServer(new)
    d = Dispatcher(settings, [Subscription(FUNCTION, "on-received", [RECEIVED], f"{down.url}/events")],
                   **{**FAST, "max_deliveries": 2, "unreachable_s": 0}).start()
    try:
        ev = parcel(1)
        bus.publish(ev)
        (record,) = wait_for(lambda: read_dlq(settings), "the platform's record")
        assert record["event"]["id"] == ev["id"] and record["sink"] == "pending"
        assert record["error"].startswith("connection error")
        down.start()
        operator = tokens("operator")
        (letter,) = wait_for(lambda: down.dead_letters(operator), "the letter in the function's own list", 60)
        assert letter["event"]["id"] == ev["id"] and letter["state"] == "open" and attempts(ev["id"]) == 0
        r = httpx.post(f"{down.url}/platform/dead-letters/{letter['id']}/retry", headers=operator, timeout=30)
        assert r.status_code == 200 and r.json()["settled"]["result"] == "done"
        assert Processed.get(ev["id"]).attempt == 1 and len(read_dlq(settings)) == 1
    finally:
        d.stop()
        down.stop()


def test_each_function_lists_and_retries_only_its_own_dead_letters(settings, keys, monkeypatch, sink, bus, tokens):
    """Every function of the local cloud keeps its letters in the one bucket: each one's
    /platform/dead-letters listed every function's, and an operator could retry a letter through a
    function that never failed it (two that gave up on one event shared one letter). Each keeps its
    own now; a letter kept the old way (one shelf for all) is listed by the function it was meant for
    (its destination), and acted on there only."""
    from lscloud import deadletters

    configure(monkeypatch, settings, keys, service=OTHER)
    other = FunctionServer(new_other).start()
    d = Dispatcher(settings, [Subscription(FUNCTION, "on-received", [RECEIVED], f"{sink.url}/events"),
                              Subscription(OTHER, "on-received", [RECEIVED], f"{other.url}/events")], **FAST).start()
    operator = tokens("operator")
    try:
        both = parcel(1, poison=True)   # refused by both: each keeps a letter of its own
        bus.publish(both)
        wait_for(lambda: len(read_dlq(settings)) == 2, "both functions' dead letters")
        wait_for(lambda: sink.dead_letters(operator) and other.dead_letters(operator), "a letter in each list")
        # a letter only the first function was given (its sink, as the dispatcher tells it)
        only = parcel(2, poison=True)
        headers, body = events.to_binary_http({**only, "knativeerrorcode": "422"})
        headers.update(delivery_headers(sink.instance.settings))
        assert httpx.post(f"{sink.url}/events/dead-letters", content=body, headers=headers, timeout=10).status_code == 200
        assert sorted(i["event"]["id"] for i in sink.dead_letters(operator)) == sorted([both["id"], only["id"]])
        assert [i["event"]["id"] for i in other.dead_letters(operator)] == [both["id"]]
        its = next(i["id"] for i in sink.dead_letters(operator) if i["event"]["id"] == only["id"])
        refused = httpx.post(f"{other.url}/platform/dead-letters/{its}/retry", headers=operator, timeout=10)
        assert refused.status_code == 404 and refused.json()["type"].endswith("/unknown-dead-letter")

        # kept the old way: on the shelf every function shared, its destination the first function's /events
        old = parcel(3)
        kept = deadletters.DeadLetter(
            shelf=deadletters.LEGACY_SHELF, id=deadletters.letter_id(old), state=deadletters.OPEN,
            expires_at=datetime.now(timezone.utc) + timedelta(hours=1), data={"event": old, "status": 503, "error": "HTTP 503",
                                                 "destination": f"{sink.url}/events",
                                                 "dead_lettered_at": "2026-01-02T03:04:05Z"}).save()
        assert sink.dead_letters(operator)[0]["id"] == kept.id   # the old shelf's first: they are older
        assert kept.id not in [i["id"] for i in other.dead_letters(operator)]
        assert httpx.post(f"{other.url}/platform/dead-letters/{kept.id}/retry", headers=operator,
                          timeout=10).status_code == 404
        r = httpx.post(f"{sink.url}/platform/dead-letters/{kept.id}/retry", headers=operator, timeout=30)
        assert r.status_code == 200 and r.json()["settled"]["result"] == "done"
        assert deadletters.DeadLetter.get(deadletters.LEGACY_SHELF, kept.id).state == deadletters.SETTLED
        # pages: one letter a page, across the old shelf and the function's own, each once
        seen, token = [], None
        while True:
            page = httpx.get(f"{sink.url}/platform/dead-letters", params={"limit": 1, **({"page_token": token}
                             if token else {})}, headers=operator, timeout=10).json()
            seen += [i["id"] for i in page["items"]]
            token = page["next_page_token"]
            if not token:
                break
        assert len(seen) == 3 and seen[0] == kept.id and len(set(seen)) == 3
    finally:
        d.stop()
        other.stop()
