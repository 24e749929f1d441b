"""Run-once records that end (lscloud/runonce.py), without servers: how a record's end is read, the
lifecycle rule's age against the longest lifetime, and that every function keeping such records
receives the platform clock's tick the runtime sweeps them on. The sweep itself runs against weed
mini in tests/integration/test_runonce.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lscloud import config, runonce, runtime
from lscloud.auth import access_of
from lscloud.clock import TICKED
from lscloud.knative import load_function
from lscloud.local import manifest
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
    from lscloud.knative import _events_seen_key

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


def keeps_run_once_records(name: str, settings) -> list[str]:
    """Why a function writes records that expire: idempotent or partner routes, events, TTL models."""
    fn = load_function(ROOT / "functions" / name)
    instance = fn.new()
    app = instance._build(settings.replace(service=name))
    why = []
    views = [app.view_functions[r.endpoint] for r in app.url_map.iter_rules() if r.endpoint != "static"]
    if any(getattr(v, "__lscloud_idempotent__", False) for v in views):
        why.append("idempotent routes")
    if any((a := access_of(v)) is not None and a.partner for v in views):
        why.append("partner routes (nonces)")
    if set(instance.events) - {TICKED}:
        why.append("events (events-seen)")
    models = [v for m in list(sys.modules.values()) if getattr(m, "__name__", "").startswith(fn.__name__ + ".")
              for v in vars(m).values() if isinstance(v, type) and issubclass(v, Model) and v._ttl_attr is not None]
    if models:
        why.append("TTL models " + ", ".join(sorted({m.__name__ for m in models})))
    return why


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_keeping_run_once_records_receives_the_tick_they_are_swept_on(name, settings):
    why = keeps_run_once_records(name, settings)
    types = {s.type for s in manifest.parse((ROOT / "functions" / name / "func.yaml").read_text(),
                                            ROOT / "functions" / name / "func.yaml").subscriptions}
    if why:
        assert TICKED in types, f"{name} keeps {', '.join(why)}: subscribe to {TICKED} in its func.yaml"
    assert name not in ("border", "dossiers", "softatm", "identity") or why, name
