"""Run-once records that end (lscloud/runonce.py), without servers: how a record's end is read, the
lifecycle rule's age against the longest lifetime, and that every function keeping such records
receives the platform clock's tick the runtime sweeps them on. The sweep itself runs against weed
mini in tests/integration/test_runonce.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from lscloud import config, knative, runonce, runtime
from lscloud.clock import TICKED
from lscloud.loading import load_function
from lscloud import manifest
from lscloud.store import Model

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(d.name for d in (ROOT / "functions").iterdir() if (d / "function" / "__init__.py").exists())


def test_a_records_end_is_read_from_its_own_field():
    k = runonce.IDEMPOTENCY
    assert k.expires_at(b'{"status":"COMPLETED","expires_at":1767225600.5}') == 1767225600.5
    assert runonce.Kind("t/", "t", lambda s: 0, "until").expires_at(b'{"until":"2026-01-01T00:00:00.000000Z"}') == \
        1767225600.0
    for broken in (b"{not json", b"{}", b'{"expires_at":null}', b'{"expires_at":true}', b'{"expires_at":"soon"}',
                   b'{"expires_at":"2026-01-01T00:00:00"}', b"[]"):
        assert k.expires_at(broken) is None, broken


def test_the_runtime_prefixes_are_the_ones_its_records_are_written_under():
    from lscloud.idempotency import record_key
    from lscloud.runonce import events_seen_key as _events_seen_key

    assert record_key("f", "sub:x", "POST", "/v1/x", "k").startswith(runonce.IDEMPOTENCY.prefix)
    assert _events_seen_key("border", {"source": "/s", "id": "1"}).startswith(runonce.EVENTS_SEEN.prefix)
    assert {k.prefix for k in runonce.RUNTIME_KINDS} == {"nonces/", "idempotency/", "events-seen/"}


def test_a_model_with_a_ttl_registers_its_table():
    from lscloud.store import attributes as A

    class Hold(Model):
        class Meta:
            table = "t-unit-holds"
            ttl_max_s = 900

        id = A.UnicodeAttribute(hash_key=True)
        until = A.TTLAttribute()

    (kind,) = [k for k in runonce.kinds() if k.prefix == "t-unit-holds/"]
    assert kind.expiry_field == "until" and kind.max_age_s(None) == 900


def test_the_lifecycle_rule_must_outlive_every_record():
    defaults = config.Settings()
    assert runonce.longest_lifetime(defaults) == defaults.idempotency_ttl_s == 86_400
    rules = runonce.lifecycle_configuration(2)["Rules"]
    assert {r["Filter"]["Prefix"] for r in rules} == {k.prefix for k in runonce.RUNTIME_KINDS}
    assert all(r["Status"] == "Enabled" and r["Expiration"] == {"Days": 2} for r in rules)
    runonce.check_lifecycle_days(2, [defaults])
    for days in (1, 0, True, 1.5):
        with pytest.raises(ValueError, match="before they expire"):
            runonce.check_lifecycle_days(days, [defaults])
    with pytest.raises(ValueError, match="before they expire"):   # one function keeps its records for a week
        runonce.check_lifecycle_days(3, [defaults, defaults.replace(idempotency_ttl_s=7 * 86_400)])


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = config.load({"LSCLOUD_S3_ENDPOINT": "http://127.0.0.1:9", "LSCLOUD_NATS_URL": "nats://127.0.0.1:9",
                     "LSCLOUD_STATE_DIR": str(tmp_path_factory.mktemp("state"))})
    runtime.install(runtime.Runtime(s))
    yield s
    runtime.uninstall()


def keeps_run_once_records(name: str, settings) -> tuple[list[str], bool]:
    """What the runtime finds the function keeps, and whether its /events then handles the tick."""
    fn = load_function(ROOT / "functions" / name)
    instance = fn.new()
    app = instance._build(settings.replace(service=name))
    why = knative.run_once_records(app, instance.events, fn.__name__)
    if knative.uses_outbox(fn.__name__):
        why.append("the outbox (events NATS did not confirm, published again on the tick)")
    ticks = "/events" in {r.rule for r in app.url_map.iter_rules()} and (
        TICKED in instance.events or bool(why))
    return why, ticks


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_keeping_run_once_records_receives_the_tick_they_are_swept_on(name, settings):
    why, ticks = keeps_run_once_records(name, settings)
    types = {s.type for s in manifest.parse((ROOT / "functions" / name / "func.yaml").read_text(),
                                            ROOT / "functions" / name / "func.yaml").subscriptions}
    if why:
        assert ticks and TICKED in types, f"{name} keeps {', '.join(why)}: subscribe to {TICKED} in its func.yaml"
    expected = {"border": "idempotency", "dossiers": "idempotency", "softatm": "partner nonces",
                "identity": "AttemptWindow items", "environment": "idempotency",
                "community": "idempotency", "market": "events-seen", "documents": "idempotency",
                "assistant": "Conversation items",
                "reports": "idempotency", "ioc": "dead letters"}
    if name in expected:
        assert any(expected[name] in w for w in why), (name, why)
    else:
        # directory, procedures: reference data only, no /events
        assert why == [], (name, why)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_subscribes_to_exactly_the_events_it_handles(name, settings):
    """In the cluster a Trigger exists per func.yaml subscription: a type subscribed with no handler
    is answered 400 and dead-lettered at every event; a handler whose type is not subscribed never
    runs. The tick counts as handled when the runtime sweeps the function's records on it."""
    fn = load_function(ROOT / "functions" / name)
    instance = fn.new()
    app = instance._build(settings.replace(service=name))
    handled = set(instance.events) | ({TICKED} if knative.run_once_records(app, instance.events, fn.__name__) else set())
    path = ROOT / "functions" / name / "func.yaml"
    subscribed = {s.type for s in manifest.parse(path.read_text(), path).subscriptions}
    assert handled == subscribed, f"{name}: handled, not subscribed {sorted(handled - subscribed)}; " \
                                  f"subscribed, not handled {sorted(subscribed - handled)}"


def test_only_handlers_that_are_not_repeat_safe_keep_events_seen_records():
    """A repeat-safe handler runs on every delivery without an events-seen lease, so a function
    whose every handler is one keeps no such records (and needs no tick for them)."""
    from flask import Flask

    def safe(event):
        pass

    def leased(event):
        pass

    app = Flask("t")
    letters = "dead letters (lscloud-dead-letters/)"   # any handler's: its subscriptions' dead letters come back to it
    assert knative.run_once_records(app, {"t.a": knative.repeat_safe(safe)}, "no_such_package") == [letters]
    assert knative.run_once_records(app, {"t.a": safe, "t.b": leased}, "no_such_package") == \
        ["events-seen records", letters]
    assert knative.run_once_records(app, {}, "no_such_package") == []


def test_every_model_with_a_ttl_says_how_long_its_items_live(settings):
    """A kind whose lifetime is unknown has every item read by every sweep, every minute, not only
    the items old enough to have expired (identity's attempt windows were read about 30 times each)."""
    for name in FUNCTIONS:
        keeps_run_once_records(name, settings)   # loads the function: its models register their kinds
    # the functions' and the runtime's (a test module's own models, registered as pytest collects it, are not)
    models = [k for k in runonce.kinds() if k not in runonce.RUNTIME_KINDS and k.owner.startswith(("functions.", "lscloud."))]
    assert {"identity-attempts/", "reports-rate/"} <= {k.prefix for k in models}
    assert [k.prefix for k in models if not k.max_age_s(settings) > 0] == []


def test_the_functions_that_publish_through_the_outbox_are_known(settings):
    """Their outbox is flushed on the tick by the runtime (lscloud.knative.flush_outbox), not by each
    function's own tick handler (three did; five kept events NATS had not confirmed for ever)."""
    found = {name for name in FUNCTIONS if any("outbox" in why for why in keeps_run_once_records(name, settings)[0])}
    assert found == {"border", "community", "documents", "dossiers", "environment", "market", "reports", "softatm"}


def test_a_tick_lists_a_kind_once_in_a_twenty_fourth_of_its_records_life(settings):
    """Every tick listed every prefix in full, in every function, to find the few records a day past
    their end; a kind is listed every 1/24 of its records' longest life now (at least every minute)."""
    import uuid

    bucket, now = f"b-{uuid.uuid4().hex[:8]}", 1_000_000.0
    every = runonce.sweep_every_s(runonce.IDEMPOTENCY, settings)
    assert settings.idempotency_ttl_s == 86_400 and every == 3_600
    assert runonce.sweep_every_s(runonce.LEFTOVER_NONCES, settings) == 60   # short-lived: every tick
    due = runonce.due_kinds(bucket, settings, now)
    assert set(runonce.RUNTIME_KINDS) <= set(due)                           # never listed by this process
    runonce.listed(due, bucket, now)
    a_minute_on = runonce.due_kinds(bucket, settings, now + 60)
    assert runonce.LEFTOVER_NONCES in a_minute_on and runonce.IDEMPOTENCY not in a_minute_on
    assert runonce.EVENTS_SEEN not in a_minute_on
    assert runonce.IDEMPOTENCY in runonce.due_kinds(bucket, settings, now + every)
    assert runonce.IDEMPOTENCY in runonce.due_kinds(f"{bucket}-other", settings, now + 60)   # per bucket
