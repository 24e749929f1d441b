"""Event data checked against its type's schema at the consumer, before the handler runs: through the
real dispatcher on real nats-server and weed mini, to a real function (the event sink of
``test_event_delivery``, subscribed here to a type ``schemas/events/`` describes).

A producer's bug or a version skew used to reach the handler, fail deep in it (a 5xx) and be retried
until dead-lettered; now it is refused at once (422), dead-lettered with the fields it breaks (never
their values), and the handler never runs. A field the schema does not list is not such a bug: it is
a producer one release ahead (a rolling deploy, a device's firmware), and its event is handled
(the consumer reads tolerantly)."""

from __future__ import annotations

import pytest

from lscloud import clock, deadletters, events, knative, metrics, runonce
from lscloud.delivery import Dispatcher, Subscription, read_dlq
from lscloud.problems import TYPE_BASE
from waiting import wait_for

import metrics_support
from store_calls import counting
from test_event_delivery import FAST, FUNCTION, FunctionServer, Processed, attempts, create_app, on_received, \
    seen_markers, tracing  # noqa: F401 - tracing: a fixture

pytestmark = pytest.mark.integration

COMMITTED = "vn.langson.softatm.transfer.committed.v1"   # listed by schemas/events/softatm/transfer.committed.json
RECORDED = "vn.langson.environment.observations.recorded.v1"   # closed objects nested in a list
PROGRESS = "vn.langson.community.progress.updated.v1"   # a map keyed by what may be a value
ACCOUNT = "001099012345"   # a value that must never come back in an answer, a dead letter or a log line


def transfer(n: int, **changes) -> dict:
    data = {"transfer_id": f"T-{n}", "kind": "withdrawal", "state": "COMMITTED", "bank": "MB", "point": "bd-06001",
            "unit_code": "06001", "amount_vnd": 500_000, "abort_reason": None}
    data.update(changes)
    return events.new_event(COMMITTED, "/softatm", {k: v for k, v in data.items() if v is not ...},
                            subject=f"T-{n}", id=f"T-{n}.COMMITTED")


HANDED: dict[str, dict] = {}   # event id -> the data its handler got (the function runs in this process)


def on_event(event: dict) -> None:
    HANDED[event["id"]] = event["data"]
    on_received(event)


def observations(n: int, **changes) -> dict:
    reading = {"observed_at": "2026-03-01T01:00:00Z", "values": {"pm25": 12.5}, "flags": {}}
    data = {"station": "lsn-air-1", "kind": "air", "unit": "06184", "channel": "mqtt",
            "received_at": "2026-03-01T01:00:05Z", "readings": [reading]}
    data.update(changes)
    return events.new_event(RECORDED, "/environment", data, subject="lsn-air-1", id=f"obs-{n}")


@pytest.fixture
def sink(settings, monkeypatch, tracing, keys):  # noqa: F811 - the imported fixture, used
    for name, value in settings.replace(service=FUNCTION, jwt_public_key=keys[1]).env_vars().items():
        monkeypatch.setenv(name, value)
    server = FunctionServer(knative.function(
        create_app, events={COMMITTED: on_event, RECORDED: on_event, PROGRESS: on_event})).start()
    try:
        yield server
    finally:
        server.stop()


def test_data_its_schema_refuses_is_dead_lettered_at_once_naming_the_fields_and_never_handled(
        settings, sink, object_store, monkeypatch, caplog):
    from lscloud.bus import SyncBus

    reader = metrics_support.own_meter(monkeypatch, metrics._instrument)
    d = Dispatcher(settings, [Subscription(FUNCTION, "on-committed", [COMMITTED], f"{sink.url}/events")], **FAST)
    bus = SyncBus(settings).start()
    d.start()
    try:
        # a producer's bug: no point, the amount as text (and a field its schema does not list: let through)
        bad = transfer(1, point=..., amount_vnd="500000", account=ACCOUNT)
        bus.publish(bad)
        wait_for(lambda: read_dlq(settings) or bad["id"] in sink.seen(), "the bad event dead-lettered (or handled)")
        assert bad["id"] not in sink.seen() and attempts(bad["id"]) == 0   # the handler never ran
        (letter,) = read_dlq(settings)
        assert letter["event"] == bad and letter["status"] == 422 and letter["deliveries"] == 1   # no retry
        assert TYPE_BASE + "invalid-event-data" in letter["error"]
        for field in ("/data/point", "/data/amount_vnd"):
            assert field in letter["error"], letter["error"]
        assert "/data/account" not in letter["error"]
        assert ACCOUNT not in letter["error"] and "500000" not in letter["error"]
        assert d.stats.retried == 0 and d.stats.dead_lettered == 1
        # the function keeps it for its operators, with the same reason; no events-seen record was written
        (kept,) = wait_for(lambda: list(deadletters.page(limit=10)), "the dead letter kept by the function")
        assert kept.data["status"] == 422 and "/data/point" in kept.data["error"]
        assert seen_markers(object_store, settings) == []

        # valid data goes through the same subscription as before
        fine = transfer(2)
        bus.publish(fine)
        wait_for(lambda: fine["id"] in sink.seen(), "the valid event handled")
        assert Processed.get(fine["id"]).attempt == 1 and len(read_dlq(settings)) == 1
    finally:
        d.stop()
        bus.close()
    assert ACCOUNT not in caplog.text
    # what an SRE finds the dead letter by: its id, type and status, with the fields
    assert any(bad["id"] in m and COMMITTED in m and "/data/point" in m and "(422)" in m for m in caplog.messages)
    # counted as the runtime counts a malformed event, with the type it claimed
    consumed = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == "messaging.client.consumed.messages":
                    for p in m.data.data_points:
                        a = p.attributes
                        consumed[(a.get("cloudevents.event_type"), a["lscloud.event.outcome"])] = p.value
    assert consumed.get((COMMITTED, "malformed")) == 1 and consumed.get((COMMITTED, "done")) == 1


def test_a_direct_delivery_is_refused_with_a_problem_naming_each_field(sink):
    """What the dispatcher dead-letters: a 422 problem whose ``errors[]`` point at the fields, in
    both languages, without their values."""
    # fields the schema does not list (one keyed by an ID number) are not what is wrong: never named
    r = sink.post_event(transfer(3, kind="loan", bank=None, account=ACCOUNT, **{ACCOUNT: 1}))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"] == TYPE_BASE + "invalid-event-data"
    assert problem["title_vi"] and "/data/kind" in problem["detail_vi"]
    assert sorted(e["field"] for e in problem["errors"]) == ["/data/bank", "/data/kind"]
    assert all(e["message"] and e["message_vi"] for e in problem["errors"])
    assert ACCOUNT not in r.text and "loan" not in r.text
    assert attempts("T-3.COMMITTED") == 0
    # a key shaped like an ID number is a value too: the map holding it is named instead
    progress = events.new_event(PROGRESS, "/community", {
        "commune": "06184", "households": 40, "indicators": {}, "activities": {ACCOUNT: -1},
        "updated_at": None, "activity_id": "a-1"}, id="progress-1")
    r = sink.post_event(progress)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["/data/activities"]
    assert ACCOUNT not in r.text and attempts("progress-1") == 0
    ok = sink.post_event(transfer(4))
    assert ok.status_code == 200 and ok.json()["status"] == "done"


def test_a_field_its_schema_does_not_list_reaches_the_handler_and_every_other_rule_still_holds(settings, sink):
    """A producer one release ahead adds a field (the schemas say ``additionalProperties: false``:
    the producers' contract): consumers still on the older revision handle its events, with the
    field, instead of dead-lettering every one of them."""
    from lscloud.bus import SyncBus

    d = Dispatcher(settings, [Subscription(FUNCTION, "on-committed", [COMMITTED], f"{sink.url}/events")], **FAST)
    bus = SyncBus(settings).start()
    d.start()
    try:
        newer = transfer(5, settled_at="2026-03-01T08:00:00+07:00")
        bus.publish(newer)
        wait_for(lambda: read_dlq(settings) or newer["id"] in sink.seen(), "the newer event handled (or dead-lettered)")
        assert read_dlq(settings) == [] and attempts(newer["id"]) == 1
        assert HANDED[newer["id"]] == newer["data"] and HANDED[newer["id"]]["settled_at"]   # passed on, unchanged
    finally:
        d.stop()
        bus.close()

    # closed objects nested in a list too
    nested = observations(1, firmware="2.1")
    nested["data"]["readings"][0]["quality"] = "calibrated"
    r = sink.post_event(nested)
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    assert HANDED["obs-1"]["readings"][0]["quality"] == "calibrated"

    # what the consumer needs still holds: a field missing, one of the wrong type, a rule of a map's values
    for event, fields in ((transfer(6, point=..., settled_at="2026-03-01T08:00:00+07:00"), ["/data/point"]),
                          (transfer(7, amount_vnd="500000", settled_at=1), ["/data/amount_vnd"]),
                          (observations(2, kind="soil", firmware="2.1"), ["/data/kind"])):
        r = sink.post_event(event)
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == fields, r.text
        assert event["id"] not in HANDED and attempts(event["id"]) == 0
    bad_value = observations(3)
    bad_value["data"]["readings"][0]["values"]["pm25"] = "high"
    r = sink.post_event(bad_value)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["/data/readings/0/values/pm25"]


def test_a_tick_with_a_field_its_schema_does_not_list_still_runs_the_sweeps(sink):
    """Every function handles the platform's tick (its run-once records are swept then): a clock
    one release ahead must not stop that in every function at once."""
    tick = clock.tick_event()
    tick["data"]["zone"] = "Asia/Ho_Chi_Minh"
    with counting() as calls:
        r = sink.post_event(tick)
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    assert runonce.EVENTS_SEEN.prefix in calls.keys_of("list")   # the sweep looked for expired records
