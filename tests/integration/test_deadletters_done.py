"""Dead letters of events that were in fact processed: settled "done after all", not shown open.

A delivery the dispatcher (or a Knative broker) gave up on may still run to its end: a paused
function's backlog ran both its POST to /events and the one to its dead-letter sink once it resumed,
and 128 readings the border function had applied were listed as open dead letters (alerts, operators
looking at "failures" a retry would only settle "duplicate"). Simulated here without timing: the
event is delivered to /events and completed (its events-seen record), then its dead letter is
delivered to the sink, as the dispatcher does. Runs on the real nats-server and weed, with the
function of :mod:`test_event_delivery` served the way a function is.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from lscloud import deadletters, events, knative, runonce
from lscloud.auth import delivery_headers
from lscloud.store import leases
from test_event_delivery import (FUNCTION, RECEIVED, Attempt, FunctionServer, attempts, configure, create_app,
                                 parcel, seen_markers, sink, tracing)  # noqa: F401 - sink, tracing: fixtures

pytestmark = pytest.mark.integration


def give_up_on(server: FunctionServer, event: dict) -> httpx.Response:
    """The dispatcher's dead letter for ``event``: after its timeout, to the function's sink."""
    failure = events.DeliveryFailure(None, "no answer within 5 s", f"{server.url}/events")
    headers, body = events.to_binary_http({**event, **failure.extensions()})
    headers.update(delivery_headers(server.instance.settings))
    return httpx.post(f"{server.url}{events.DEAD_LETTER_PATH}", content=body, headers=headers, timeout=10)


def listed(server: FunctionServer, operator: dict, state: str | None = None) -> dict[str, dict]:
    """The function's /platform/dead-letters (of ``state``), by event id."""
    r = httpx.get(f"{server.url}/platform/dead-letters", params={"state": state} if state else {},
                  headers=operator, timeout=10)
    r.raise_for_status()
    return {item["event"]["id"]: item for item in r.json()["items"]}


def assert_done_after_all(item: dict) -> None:
    assert item["state"] == deadletters.SETTLED, item
    settled = item["settled"]
    assert settled["action"] == deadletters.DONE_AFTER_ALL and settled["result"] == "done"
    assert settled["by"] == "lscloud" and settled["at"].endswith("Z") and settled["done_at"].endswith("Z")
    assert "after all" in settled["reason"] and "đã xử lý xong" in settled["reason_vi"]


def test_a_letter_of_an_event_its_handler_finished_is_kept_settled_done(settings, sink, tokens,  # noqa: F811
                                                                        monkeypatch):
    from lscloud import metrics

    counted: list[tuple[str, str]] = []
    real = metrics.consumed
    monkeypatch.setattr(metrics, "consumed", lambda d, g, t, outcome: (counted.append((t, outcome)),
                                                                       real(d, g, t, outcome)))
    operator = tokens("operator", "op-lan")
    done, failed = parcel(1), parcel(2, poison=True)
    assert sink.post_event(done).json() == {"status": "done", "id": done["id"]}   # completed meanwhile
    assert sink.post_event(failed).status_code == 422                              # never done
    for event in (done, failed):
        counted.clear()
        r = give_up_on(sink, event)
        assert r.status_code == 200 and r.json()["status"] == "kept"
        # a letter kept settled is no failure for the EventDeadLettered alert; a refused event's is
        assert [o for _t, o in counted] == (["done_after_all"] if event is done else ["dead_letter"]), counted

    letters = listed(sink, operator)
    assert set(letters) == {done["id"], failed["id"]}
    assert_done_after_all(letters[done["id"]])
    assert letters[failed["id"]]["state"] == deadletters.OPEN and letters[failed["id"]]["settled"] is None
    # kept for the record, not counted open
    assert set(listed(sink, operator, "open")) == {failed["id"]}
    assert set(listed(sink, operator, "settled")) == {done["id"]}
    # the sink told again (Knative retries it) finds it as it was
    again = give_up_on(sink, done)
    assert again.json()["status"] == "duplicate"
    assert deadletters.find(again.json()["id"]).data["settled"] == letters[done["id"]]["settled"]
    # an operator's retry answers the settlement: the handler does not run again
    r = httpx.post(f"{sink.url}/platform/dead-letters/{letters[done['id']]['id']}/retry", headers=operator, timeout=10)
    assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
    assert r.json()["settled"]["action"] == deadletters.DONE_AFTER_ALL and attempts(done["id"]) == 1


def test_a_letter_kept_before_its_event_finished_is_settled_done_when_listed(settings, sink, tokens,  # noqa: F811
                                                                             object_store):
    """The sink's request may run before the run it gave up on has finished (both waited in the
    paused function's backlog): the letter is kept open, and the listing settles it once the
    events-seen record says the event was done; one still running, or never run, stays open."""
    from store_calls import counting

    operator = tokens("operator")
    late, running, never = parcel(1), parcel(2), parcel(3)
    # another run holds ``running`` (its record in progress, renewed): nothing says it was done
    now = time.time()
    object_store.put(settings.bucket, runonce.events_seen_key(FUNCTION, running), json.dumps(
        {"id": running["id"], "source": running["source"], "type": running["type"], "status": leases.IN_PROGRESS,
         "received_at": now, "expires_at": now + 3600}).encode())
    for event in (late, running, never):
        assert give_up_on(sink, event).json()["status"] == "kept"
    assert {i: item["state"] for i, item in listed(sink, operator).items()} == dict.fromkeys(
        (late["id"], running["id"], never["id"]), deadletters.OPEN)

    assert sink.post_event(late).json()["status"] == "done"
    assert set(listed(sink, operator, "open")) == {running["id"], never["id"]}
    assert_done_after_all(listed(sink, operator, "settled")[late["id"]])
    (letter,) = [x for x in deadletters.page(limit=10) if x.data["event"]["id"] == late["id"]]
    assert letter.state == deadletters.SETTLED   # kept so, not worked out again at each listing
    # the check costs one read per open letter on the page, none for a settled one
    with counting() as calls:
        assert len(deadletters.page(limit=10)) == 3
    seen = [k for k in calls.keys_of("get") if k.startswith("events-seen/")]
    assert sorted(seen) == sorted(runonce.events_seen_key(FUNCTION, e) for e in (running, never))
    assert calls["put"] == 0


def test_a_repeat_safe_handlers_letter_stays_open(settings, keys, monkeypatch, tracing, tokens,  # noqa: F811
                                                  object_store):
    """A ``repeat_safe`` handler keeps no events-seen record: nothing says its event was done (its
    effects dedupe by themselves), so its letter is left as it is."""
    def record(event: dict) -> None:
        Attempt(event["id"], uuid.uuid4().hex).save()

    configure(monkeypatch, settings, keys)
    server = FunctionServer(knative.function(create_app, events={RECEIVED: knative.repeat_safe(record)})).start()
    try:
        ev = parcel(1)
        assert server.post_event(ev).json() == {"status": "done", "id": ev["id"]}
        assert seen_markers(object_store, settings) == [] and attempts(ev["id"]) == 1
        assert give_up_on(server, ev).json()["status"] == "kept"
        operator = tokens("operator")
        (item,) = listed(server, operator).values()
        assert item["state"] == deadletters.OPEN and item["settled"] is None
        assert set(listed(server, operator, "open")) == {ev["id"]}
    finally:
        server.stop()


def past_its_end(object_store, settings, key: str) -> float:
    """A time at which the sweep deletes the events-seen record at ``key`` (its TTL and the sweep's
    narrowing by last write both passed): the sweep's ``now``, instead of a day's wait."""
    record = json.loads(object_store.get(settings.bucket, key).body)
    modified = object_store.head(settings.bucket, key).last_modified
    return max(record["expires_at"], modified + runonce.EVENTS_SEEN.max_age_s(settings)) + 1


def retry(server: FunctionServer, operator: dict, event: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/platform/dead-letters/{deadletters.letter_id(event)}/retry", headers=operator,
                      timeout=10)


def test_a_letter_kept_before_its_event_finished_is_settled_before_the_record_of_it_is_swept(
        settings, sink, tokens, object_store):  # noqa: F811
    """The letter is kept a year, the events-seen record a day: a letter nobody listed while the
    record was there looked open after it was swept, and an operator's retry ran the event twice."""
    operator = tokens("operator")
    late = parcel(1)
    assert give_up_on(sink, late).json()["status"] == "kept"        # given up on while the run went on
    assert sink.post_event(late).json()["status"] == "done"         # which then finished
    key = runonce.events_seen_key(FUNCTION, late)
    report = runonce.sweep(object_store, settings.bucket, settings, kinds_=[runonce.EVENTS_SEEN],
                           now=past_its_end(object_store, settings, key))
    assert report.counts[runonce.EVENTS_SEEN.prefix]["deleted"] >= 1
    assert seen_markers(object_store, settings) == []   # the record expired as any other, its watch with it
    r = retry(sink, operator, late)
    assert attempts(late["id"]) == 1                    # the handler did not run again
    assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
    assert_done_after_all(r.json())


def test_a_retry_after_the_records_end_but_before_its_sweep_does_not_run_the_event_again(
        settings, sink, tokens, object_store):  # noqa: F811
    """Past its end and not swept yet (the sweep lists a day's records once an hour), the record is
    one a delivery takes over: the retry goes by what it says, the event was done."""
    operator = tokens("operator")
    late = parcel(1)
    assert give_up_on(sink, late).json()["status"] == "kept"
    assert sink.post_event(late).json()["status"] == "done"
    key = runonce.events_seen_key(FUNCTION, late)
    record = json.loads(object_store.get(settings.bucket, key).body)
    # its day has passed (written as the clock would find it, instead of a day's wait)
    object_store.put(settings.bucket, key, json.dumps({**record, "expires_at": time.time() - 1}).encode())
    r = retry(sink, operator, late)
    assert attempts(late["id"]) == 1
    assert r.status_code == 200 and r.json()["state"] == deadletters.SETTLED
    assert r.json()["settled"]["result"] == "duplicate" and "Idempotent-Replayed" not in r.headers
    # settled, the letter no longer holds its record back: it is swept, the watch with it
    runonce.sweep(object_store, settings.bucket, settings, kinds_=[runonce.EVENTS_SEEN],
                  now=past_its_end(object_store, settings, key))
    assert seen_markers(object_store, settings) == []
    assert listed(sink, operator)[late["id"]]["settled"]["result"] == "duplicate"


def test_a_letter_of_an_event_never_finished_stays_open_past_the_sweep_and_is_retried_once(
        settings, sink, tokens, object_store):  # noqa: F811
    """Never run (its delivery lost in a backlog), or its run died (an in-progress record past its
    lease): the sweep deletes the record and the watches, the letters stay open, and a retry runs
    each event once."""
    operator = tokens("operator")
    never, died = parcel(1), parcel(2)
    now = time.time()
    object_store.put(settings.bucket, runonce.events_seen_key(FUNCTION, died), json.dumps(
        {"id": died["id"], "source": died["source"], "type": died["type"], "status": leases.IN_PROGRESS,
         "received_at": now, "expires_at": now + 30}).encode())
    for event in (never, died):
        assert give_up_on(sink, event).json()["status"] == "kept"
    watches = {runonce.watch_key(runonce.events_seen_key(FUNCTION, e)) for e in (never, died)}
    assert watches <= set(seen_markers(object_store, settings))
    far = now + runonce.EVENTS_SEEN.max_age_s(settings) + 3600
    runonce.sweep(object_store, settings.bucket, settings, kinds_=[runonce.EVENTS_SEEN], now=far)
    assert seen_markers(object_store, settings) == []
    assert set(listed(sink, operator, "open")) == {never["id"], died["id"]}
    for event in (never, died):
        r = retry(sink, operator, event)
        assert r.status_code == 200 and r.json()["settled"]["result"] == "done", r.text
        assert attempts(event["id"]) == 1
    assert set(listed(sink, operator, "settled")) == {never["id"], died["id"]}
