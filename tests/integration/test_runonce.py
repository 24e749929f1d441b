"""Run-once records end (lscloud/runonce.py) against the real object store (weed mini): each is
honoured until its own ``expires_at`` and deleted after it — by the runtime on the platform clock's
tick, never before the expiry, never once renewed since the sweep read it."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from flask import jsonify

from lscloud import clock, events, knative, nonces, runonce, web
from lscloud.auth import allow, delivery_headers, dev_keys, issue_token, sign_request
from lscloud.idempotency import idempotent
from lscloud.problems import TYPE_BASE
from lscloud.store import Model, attributes as A
from lscloud.store.objects import ObjectStore

pytestmark = pytest.mark.integration

BANK_KEY = "vcb-key-one-0123456789abcdef0123"


class Window(Model):
    """A counter that lives until its TTL, like identity's rate-limit windows."""

    class Meta:
        table = "t-runonce-windows"

    subject = A.UnicodeAttribute(hash_key=True)
    n = A.NumberAttribute(default=0)
    expires_at = A.TTLAttribute()


def records(store: ObjectStore, bucket: str, prefix: str) -> dict[str, dict]:
    return {i.key: json.loads(store.get(bucket, i.key).body) for i in store.list(bucket, prefix)}


def wait_until(check, what: str, deadline_s: float = 60.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def keys(tmp_path):
    return dev_keys(tmp_path)


@pytest.fixture
def fn_app(settings, keys):
    """A function as Knative runs it (its /events handles the tick), with an idempotent route and a
    partner route; run-once records last 2 s."""
    calls = []

    def create_app(s):
        app = web.create_app("ledger", settings=s)

        @app.post("/v1/payments")
        @allow("teller")
        @idempotent()
        def pay():
            """Take a payment."""
            calls.append(1)
            return jsonify(payment=len(calls)), 201

        @app.post("/v1/bank/confirmations")
        @allow(partner=True)
        def confirm():
            """A bank confirms."""
            return jsonify(ok=True), 200

        return app

    s = settings.replace(service="ledger", jwt_public_key=keys[1], idempotency_ttl_s=2,
                         partner_keys={"vcb": (BANK_KEY,)})
    settled = []
    fn = knative.function(create_app, events={SETTLED: lambda event: settled.append(event["id"])}, needs=("s3",))()
    fn.start(s.env_vars())   # as Knative starts it: settings from the environment, runtime installed
    app = fn.app
    app.testing = True
    app.calls, app.settled = calls, settled
    yield app
    fn.stop()


SETTLED = "vn.langson.ledger.settled.v1"   # an event the test function handles, not repeat-safe


def tick(client, at: datetime | None = None):
    return deliver(client, clock.tick_event(at or datetime.now(timezone.utc)))


def deliver(client, event: dict):
    h, b = events.to_binary_http(event)
    # delivered as the platform delivers: with the dispatcher's token for this function
    h.update(delivery_headers(client.application.extensions["lscloud"].settings))
    r = client.post("/events", data=b, headers=h)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r


def test_an_idempotency_record_is_honoured_until_it_expires_then_deleted_on_the_tick(fn_app, object_store, settings,
                                                                                      keys):
    client = fn_app.test_client()
    teller = {"Authorization": "Bearer " + issue_token(keys[0], "t-1", "teller"), "Idempotency-Key": "pay-1"}
    assert client.post("/v1/payments", json={"amount": 5}, headers=teller).status_code == 201
    (key, record), = records(object_store, settings.bucket, runonce.IDEMPOTENCY.prefix).items()
    expires = record["expires_at"]
    assert record["status"] == "COMPLETED"

    # a sweep just before the expiry (whatever the record's age) keeps it, and it is honoured
    report = runonce.sweep(object_store, settings.bucket, settings, kinds_=[runonce.IDEMPOTENCY], now=expires - 0.01)
    assert report.total("deleted") == 0 and key in records(object_store, settings.bucket, "idempotency/")
    again = client.post("/v1/payments", json={"amount": 5}, headers=teller)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true" and fn_app.calls == [1]

    # once it expired (and was last written longer ago than records of its kind live), the tick deletes it
    modified = object_store.head(settings.bucket, key).last_modified
    wait_until(lambda: time.time() > max(expires, modified + 2) + 0.1, "the record to expire")
    tick(client)
    assert key not in records(object_store, settings.bucket, "idempotency/")
    # the tick (housekeeping alone: repeat-safe) keeps no events-seen record of itself
    assert records(object_store, settings.bucket, "events-seen/") == {}
    fresh = client.post("/v1/payments", json={"amount": 5}, headers=teller)
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers and fn_app.calls == [1, 1]


def test_a_partner_nonce_is_kept_by_nats_for_its_lifetime_and_refuses_replays(fn_app, object_store, settings):
    client = fn_app.test_client()
    path = "/v1/bank/confirmations"
    h = sign_request("POST", path, b"", "vcb", "1", BANK_KEY)
    assert client.post(path, headers=h).status_code == 200
    replay = client.post(path, headers=h)
    assert replay.status_code == 401 and replay.get_json()["type"] == TYPE_BASE + "replayed-nonce"
    # nothing in the object store: the bucket's stream holds it, and drops it itself after its lifetime
    assert list(object_store.list(settings.bucket, runonce.LEFTOVER_NONCES.prefix)) == []
    kept = asyncio.run(kv_entry(settings, f"ledger.vcb.{h['X-LSCloud-Nonce']}"))
    assert json.loads(kept["value"]) == {"timestamp": int(h["X-LSCloud-Timestamp"])}
    assert kept["max_age_s"] == nonces.lifetime_s(settings.signature_window_s) == 2 * 300 + 60
    assert kept["discard"] == "new" and kept["history"] == 1


async def kv_entry(settings, key: str) -> dict:
    import nats

    nc = await nats.connect(settings.nats_url)
    try:
        kv = await nc.jetstream().key_value(nonces.bucket(settings.stream))
        status = await kv.status()
        entry = await kv.get(key)
        config = status.stream_info.config
        return {"value": entry.value, "max_age_s": config.max_age, "discard": config.discard,
                "history": config.max_msgs_per_subject}
    finally:
        await nc.close()


def test_nonce_records_left_in_the_object_store_are_swept_once_expired(object_store, settings):
    # written by runtimes before nonces moved to NATS: nothing reads them, the sweep removes them
    end = time.time() + 30
    object_store.put(settings.bucket, "nonces/vcb/n-leftover.json", json.dumps({"expires_at": end}).encode())
    modified = object_store.head(settings.bucket, "nonces/vcb/n-leftover.json").last_modified
    longest = runonce.LEFTOVER_NONCES.max_age_s(settings)
    kept = runonce.sweep(object_store, settings.bucket, settings, kinds_=[runonce.LEFTOVER_NONCES],
                         now=max(end, modified + longest) - 0.01)
    assert kept.total("deleted") == 0
    report = runonce.sweep(object_store, settings.bucket, settings, now=max(end, modified + longest) + 1)
    assert report.counts[runonce.LEFTOVER_NONCES.prefix]["deleted"] == 1
    assert list(object_store.list(settings.bucket, "nonces/")) == []


def test_an_event_is_a_duplicate_until_its_record_expires(fn_app, object_store, settings):
    client = fn_app.test_client()
    settled = events.new_event(SETTLED, "/ledger", {"n": 1}, id="settled-1")
    assert deliver(client, settled).get_json()["status"] == "done"
    assert deliver(client, settled).get_json()["status"] == "duplicate"
    assert fn_app.settled == ["settled-1"]
    (key, record), = records(object_store, settings.bucket, runonce.EVENTS_SEEN.prefix).items()
    runonce.sweep(object_store, settings.bucket, settings, now=record["expires_at"] - 0.01)
    assert deliver(client, settled).get_json()["status"] == "duplicate"
    modified = object_store.head(settings.bucket, key).last_modified
    longest = runonce.EVENTS_SEEN.max_age_s(settings)
    runonce.sweep(object_store, settings.bucket, settings, now=max(record["expires_at"], modified + longest) + 1)
    assert records(object_store, settings.bucket, runonce.EVENTS_SEEN.prefix) == {}


def test_a_ttl_model_item_is_read_until_its_ttl_then_deleted(rt_store, object_store, settings):
    ends = datetime.now(timezone.utc) + timedelta(hours=1)
    Window("caller-1", n=3, expires_at=ends).save()
    assert any(k.prefix == "t-runonce-windows/" and k.expiry_field == "expires_at" for k in runonce.kinds())
    runonce.sweep(object_store, settings.bucket, settings, now=ends.timestamp() - 0.001)
    assert Window.get("caller-1").n == 3
    report = runonce.sweep(object_store, settings.bucket, settings, now=ends.timestamp() + 0.001)
    assert report.counts["t-runonce-windows/"]["deleted"] == 1
    assert records(object_store, settings.bucket, "t-runonce-windows/") == {}


class RenewsAfterRead(ObjectStore):
    """Renews the record (a lease taken over, an outcome completed) right after the sweep read it."""

    def __init__(self, base: ObjectStore, renew_key: str):
        self.__dict__.update(base.__dict__)
        self.renew_key = renew_key

    def get(self, bucket, key):
        stored = super().get(bucket, key)
        if key == self.renew_key:
            self.put(bucket, key, json.dumps({"status": "INPROGRESS", "expires_at": time.time() + 3600}).encode(),
                     if_match=stored.etag)
        return stored


def test_the_sweep_never_deletes_a_record_renewed_after_it_read_it(object_store, settings):
    key = "idempotency/aa/renewed.json"
    object_store.put(settings.bucket, key, json.dumps({"status": "COMPLETED", "expires_at": time.time() - 60}).encode())
    object_store.put(settings.bucket, "idempotency/aa/expired.json",
                     json.dumps({"status": "COMPLETED", "expires_at": time.time() - 60}).encode())
    store = RenewsAfterRead(object_store, key)
    report = runonce.sweep(store, settings.bucket, settings, kinds_=[runonce.IDEMPOTENCY],
                           now=time.time() + settings.idempotency_ttl_s + 60)
    assert report.counts["idempotency/"] == {"listed": 2, "read": 2, "deleted": 1, "kept": 0, "changed": 1,
                                             "unreadable": 0}
    left = records(object_store, settings.bucket, "idempotency/")
    assert list(left) == [key] and left[key]["status"] == "INPROGRESS"


def test_a_backlog_drains_over_sweeps_and_unreadable_records_go_only_once_outlived(object_store, settings):
    past = time.time() - 60
    for i in range(5):
        object_store.put(settings.bucket, f"nonces/vcb/n{i}.json", json.dumps({"expires_at": past}).encode())
    object_store.put(settings.bucket, "nonces/vcb/broken.json", b"{not json")
    modified = object_store.head(settings.bucket, "nonces/vcb/broken.json").last_modified
    # a Kind that does not know how long its records live never deletes one it cannot read
    unknown_age = runonce.Kind("nonces/vcb/broken", "a nonce of unknown age", lambda s: 0)
    report = runonce.sweep(object_store, settings.bucket, settings, kinds_=[unknown_age], now=modified + 3600)
    assert report.total("unreadable") == 1 and report.total("deleted") == 0
    # once older than any nonce lives, an unreadable one goes too; four reads a sweep drain six in two
    later = modified + runonce.LEFTOVER_NONCES.max_age_s(settings) + 60
    first = runonce.sweep(object_store, settings.bucket, settings, kinds_=[runonce.LEFTOVER_NONCES], now=later, budget=4)
    assert first.exhausted and first.total("read") == 4
    second = runonce.sweep(object_store, settings.bucket, settings, kinds_=[runonce.LEFTOVER_NONCES], now=later, budget=4)
    assert not second.exhausted and first.total("deleted") + second.total("deleted") == 6
    assert list(object_store.list(settings.bucket, "nonces/")) == []


def test_a_tick_of_housekeeping_alone_keeps_no_record_of_itself(fn_app, object_store, settings):
    """The runtime's housekeeping (the sweep, the outbox) is repeat-safe, so a tick of a function
    with no tick handler of its own, or a repeat-safe one, takes no events-seen record: it took one
    a minute, created, completed and swept a day later."""
    client = fn_app.test_client()
    at = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    assert [tick(client, at).get_json()["status"] for _ in range(2)] == ["done", "done"]
    assert records(object_store, settings.bucket, runonce.EVENTS_SEEN.prefix) == {}


@pytest.fixture
def rt_store(object_store, settings):
    from lscloud import store

    store.configure(object_store, settings.bucket)
    yield


def test_the_next_minutes_tick_does_not_list_the_day_long_records_again(start_function, tokens):
    """A function's tick listed every run-once prefix in full, every minute; a prefix of records that
    live a day is listed once an hour now (runonce.due_kinds), short-lived ones still every tick."""
    from store_calls import counting

    fn = start_function("identity")
    client = fn.app.test_client()
    at = datetime.now(timezone.utc).replace(second=0, microsecond=0)

    def listed(minute: int) -> set[str]:
        with counting() as calls:
            assert tick(client, at + timedelta(minutes=minute)).get_json()["status"] == "done"
        return {k for k in calls.keys_of("list") if k in {kind.prefix for kind in runonce.kinds()}}

    first, second = listed(0), listed(1)
    assert {"idempotency/", "events-seen/", "identity-attempts/"} <= first
    assert "nonces/" in second and not {"idempotency/", "events-seen/"} & second


def test_an_events_seen_lease_is_renewed_while_its_run_goes_on_and_ends_after_it(object_store, settings):
    """A run holds its event for a short lease and renews it while it goes on (Lease.renewed): not taken
    over past its first end; once its block ends (the run done, or dead with its process) the lease
    ends too and is taken over. A run still going after ``at_most_s`` (hung) stops renewing."""
    from lscloud.store import leases
    from waiting import wait_for

    def take(key: str):
        now = time.time()
        return leases.acquire(object_store, settings.bucket, key, {"status": leases.IN_PROGRESS, "expires_at": now + 1.0})

    def renewed_past(key: str, when: float) -> bool:
        return json.loads(object_store.get(settings.bucket, key).body).get("renewed_at", 0) > when

    key, started = f"{runonce.EVENTS_SEEN.prefix}t/renewed.json", time.time()
    held = take(key)
    with held.renewed(1.0, 0.2):
        wait_for(lambda: renewed_past(key, started + 1.5), "the lease renewed past its first end")
        assert take(key)["status"] == leases.IN_PROGRESS   # still held: not taken over
    wait_for(lambda: isinstance(take(key), leases.Lease), "taken over once its run stopped renewing")
    assert held.complete({"status": leases.COMPLETED, "expires_at": time.time() + 60}) is False

    hung = f"{runonce.EVENTS_SEEN.prefix}t/hung.json"
    with take(hung).renewed(1.0, 0.2, at_most_s=0.5):
        wait_for(lambda: isinstance(take(hung), leases.Lease), "a hung run's lease left to end")
    with pytest.raises(ValueError):
        with take(f"{runonce.EVENTS_SEEN.prefix}t/never.json").renewed(1.0, 1.0):
            pass
