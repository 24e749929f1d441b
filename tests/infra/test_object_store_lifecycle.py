"""Run-once records in the cluster's buckets: a lifecycle rule per runtime prefix, in every bucket,
whose age outlives the longest of those records (lscloud/runonce.py) — else the stack refuses."""

from __future__ import annotations

import json

import pytest

from infra_support import REPO, k8s_objects

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

pytest.importorskip("pulumi")

from lscloud import runonce  # noqa: E402
from lscloud import manifest  # noqa: E402

from components import objectstore  # noqa: E402
from components.function import bucket_name  # noqa: E402
from components.settings import ObjectStoreSettings, SettingsError, StackSettings, check_run_once_expiry  # noqa: E402

FUNCTIONS = [m.name for m in manifest.discover(REPO / "functions")]


def rendered(days: int | None = None) -> tuple[str, dict]:
    s = ObjectStoreSettings() if days is None else ObjectStoreSettings(runOnceExpiryDays=days)
    objs = objectstore.render(s, "lscloud-data", FUNCTIONS, client_namespaces=("lscloud",),
                              root={"user": "u", "password": "p"}, user_secrets={f: "x" for f in FUNCTIONS},
                              functions_namespace="lscloud")
    (cm,) = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == objectstore.POLICIES]
    return cm["data"]["setup.sh"], json.loads(cm["data"][objectstore.LIFECYCLE])


def test_every_bucket_expires_the_runtime_records_after_the_configured_days():
    script, lifecycle = rendered()
    assert lifecycle == objectstore.lifecycle(3, ObjectStoreSettings().noncurrentVersionDays)
    expiring = [r for r in lifecycle["Rules"] if "Days" in r.get("Expiration", {})]
    assert {(r["Filter"]["Prefix"], r["Expiration"]["Days"], r["Status"]) for r in expiring} == {
        ("nonces/", 3, "Enabled"), ("idempotency/", 3, "Enabled"), ("events-seen/", 3, "Enabled")}
    assert {r["ID"] for r in lifecycle["Rules"]} >= {f"expire-{k.prefix.strip('/')}" for k in runonce.RUNTIME_KINDS}
    # versioned buckets: a run-once record's old versions go a day after, any other after the configured days
    assert all(r["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1} for r in expiring)
    (other,) = [r for r in lifecycle["Rules"] if r["ID"] == "noncurrent-versions"]
    assert other["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30} and other["Filter"] == {"Prefix": ""}
    for fn in FUNCTIONS:
        # `mc ilm rule import` replaces the bucket's rules: the Job may run again and again
        assert f"mc ilm rule import lscloud/{bucket_name('lscloud', fn)} < /policies/{objectstore.LIFECYCLE}" in script
    assert "mc ilm rule add" not in script


def test_a_changed_age_reruns_the_setup_job():
    def job(days):
        objs = objectstore.render(ObjectStoreSettings(runOnceExpiryDays=days), "d", FUNCTIONS, client_namespaces=(),
                                  root={"user": "u", "password": "p"}, user_secrets={f: "x" for f in FUNCTIONS},
                                  functions_namespace="lscloud")
        return next(o["metadata"]["name"] for o in objs if o["kind"] == "Job")

    assert job(3) != job(4)


def test_a_new_function_key_replaces_the_setup_job_and_shows_no_key():
    """A rotated key (`pulumi up --replace` of a function's password) must reach MinIO before the
    function rolls out with it: the Job's pod template carries a digest of the keys, so a new key
    changes the template, which Kubernetes cannot change in place: the Job is replaced and runs."""
    def template(keys):
        objs = objectstore.render(ObjectStoreSettings(), "d", FUNCTIONS, client_namespaces=(),
                                  root={"user": "u", "password": "p"}, user_secrets=keys, functions_namespace="lscloud")
        return next(o["spec"]["template"] for o in objs if o["kind"] == "Job")

    keys = {f: f"key-of-{f}-0123456789abcdef" for f in FUNCTIONS}
    rotated = {**keys, FUNCTIONS[0]: "a-new-key-0123456789abcdef"}
    a, b = template(keys), template(rotated)
    assert a == template(dict(keys)) and a != b
    digest = b["metadata"]["annotations"][objectstore.CREDENTIALS_DIGEST]
    assert all(k not in json.dumps(b) for k in rotated.values()) and len(digest) == 16


def test_an_age_shorter_than_the_longest_record_stops_the_stack():
    base = {"domain": "d", "imageRegistry": "r", "imageTag": "t", "cluster": {"mode": "existing"},
            "apiServerCidrs": ["10.0.0.0/24"]}
    assert StackSettings.from_values({**base, "objectStore": {"runOnceExpiryDays": 2}}.get).objectStore.runOnceExpiryDays == 2
    for days in (1, 0):   # idempotency records live a day by default
        with pytest.raises(SettingsError, match="runOnceExpiryDays"):
            StackSettings.from_values({**base, "objectStore": {"runOnceExpiryDays": days}}.get)
    # a function that keeps its idempotency records for a week needs a longer rule
    check_run_once_expiry(8, [{}, {"LSCLOUD_IDEMPOTENCY_TTL_S": str(7 * 86_400)}])
    with pytest.raises(SettingsError, match="before they expire"):
        check_run_once_expiry(3, [{}, {"LSCLOUD_IDEMPOTENCY_TTL_S": str(7 * 86_400)}])


def test_the_program_renders_the_rule_for_each_stack(program):
    for stack in ("dev", "prod"):
        (cm,) = [o for o in k8s_objects(program(stack))
                 if o["kind"] == "ConfigMap" and o["metadata"]["name"] == objectstore.POLICIES]
        assert json.loads(cm["data"][objectstore.LIFECYCLE])["Rules"]
        assert cm["data"]["setup.sh"].count("mc ilm rule import") == len(FUNCTIONS)


def test_a_locked_bucket_and_its_function_are_told_of_the_lock():
    """A function given a retention gets a bucket under object lock, the right to give its working
    objects their own short retention (lscloud.store.working), and its mode in its env; no other
    function gets either."""
    from lscloud import config

    from components import function as fn
    from components.settings import FunctionOverride, Retention

    objs = objectstore.render(ObjectStoreSettings(), "lscloud-data", FUNCTIONS, client_namespaces=("lscloud",),
                              root={"user": "u", "password": "p"}, user_secrets={f: "x" for f in FUNCTIONS},
                              functions_namespace="lscloud", retention={"dossiers": Retention()})
    (cm,) = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == objectstore.POLICIES]
    assert f"mc mb --ignore-existing --with-lock lscloud/{bucket_name('lscloud', 'dossiers')}" in cm["data"]["setup.sh"]
    for f in FUNCTIONS:
        (own,) = [s for s in json.loads(cm["data"][f"{f}.json"])["Statement"] if s["Sid"] == "OwnObjects"]
        assert ("s3:PutObjectRetention" in own["Action"]) == (f == "dossiers"), f
        assert not any("Bypass" in a for a in own["Action"])
        # a claimed upload gets the bucket's default retention, read from the bucket
        (bucket_rights,) = [s for s in json.loads(cm["data"][f"{f}.json"])["Statement"] if s["Sid"] == "OwnBucket"]
        assert ("s3:GetBucketObjectLockConfiguration" in bucket_rights["Action"]) == (f == "dossiers"), f

    m = manifest.load(REPO / "functions" / "dossiers")
    p = fn.PlatformEndpoints(**{k: "x" for k in fn.PlatformEndpoints.__dataclass_fields__})
    locked = {e["name"]: e.get("value") for e in fn.render_env(m, p, FunctionOverride(retention={"mode": "governance"}))}
    assert locked["LSCLOUD_S3_OBJECT_LOCK"] == "governance"
    assert config.load({"LSCLOUD_S3_OBJECT_LOCK": locked["LSCLOUD_S3_OBJECT_LOCK"]}).s3_object_lock == "governance"
    assert "LSCLOUD_S3_OBJECT_LOCK" not in {e["name"] for e in fn.render_env(m, p, FunctionOverride())}
    assert "LSCLOUD_S3_OBJECT_LOCK" in fn.PLATFORM_ENV   # a func.yaml may not say otherwise
