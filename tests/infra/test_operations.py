"""What an operator relies on after the first deploy: reference data seeded in the cluster, every
config and secret made by the program (and a rotation rolling out), Eventing's sender identity and
tracing switched on, backups, and scale chosen knowingly."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from cryptography.fernet import Fernet

from infra_support import JWT_PUBLIC_KEY, MARKET_STAMP_KEY, REPO, k8s_objects, normalize, run_program

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from lscloud import manifest  # noqa: E402

from components import appconfig, hooks  # noqa: E402
from components.function import CONFIG_DIGEST, PlatformEndpoints  # noqa: E402
from components.settings import BackupSettings, SettingsError  # noqa: E402

FUNCTIONS = manifest.discover(REPO / "functions")
BY_NAME = {m.name: m for m in FUNCTIONS}
STACKS = ("dev", "prod")
TICK = "vn.langson.platform.clock.ticked.v1"


@pytest.fixture(params=STACKS)
def objs(request, program):
    return k8s_objects(program(request.param))


def of_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def jobs(objs, component=hooks.COMPONENT):
    return [j for j in of_kind(objs, "Job") if j["metadata"]["labels"].get("app.kubernetes.io/component") == component]


# --- seeds and migrations -----------------------------------------------------------------------

def test_every_seeded_function_gets_a_seed_job_in_the_cluster_but_identity(objs):
    seeds = {j["metadata"]["labels"]["lscloud.langson.gov.vn/function"]: j for j in jobs(objs)
             if j["spec"]["template"]["spec"]["containers"][0]["name"] == "seed"}
    expected = {m.name for m in FUNCTIONS if m.seed_module is not None and m.seeds_in_cluster}
    assert {"directory", "procedures"} <= expected and "identity" not in expected  # the national registry
    assert set(seeds) == expected
    for name, job in seeds.items():
        (c,) = job["spec"]["template"]["spec"]["containers"]
        assert c["command"] == ["python", "-m", "lscloud.serve", "--seed", f"/app/functions/{name}"]
        env = {e["name"]: e for e in c["env"]}
        # the function's own bucket and credentials, over TLS with its certificate
        assert env["LSCLOUD_BUCKET"]["value"].endswith(f"-{name}")
        assert env["LSCLOUD_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == f"lscloud-s3-{name}"
        assert env["LSCLOUD_S3_CA_FILE"]["value"]
        assert c["image"] == next(s for s in of_kind(objs, "Service") if s["metadata"]["name"] == name
                                  and s["apiVersion"] == "serving.knative.dev/v1")["spec"]["template"]["spec"]["containers"][0]["image"]


def test_migrations_run_as_jobs_for_the_functions_that_have_one(objs):
    migrations = {j["metadata"]["labels"]["lscloud.langson.gov.vn/function"] for j in jobs(objs)
                  if j["spec"]["template"]["spec"]["containers"][0]["name"] == "migrate"}
    assert migrations == {m.name for m in FUNCTIONS if m.migrate_module is not None}


def test_every_function_checks_its_store_before_it_serves(objs):
    """`lscloud store-check --from-env` with the function's own bucket and credentials: a store that
    breaks a conditional write the runtime rests on fails the Job, so the function never serves on it."""
    checks = {j["metadata"]["labels"]["lscloud.langson.gov.vn/function"]: j for j in jobs(objs)
              if j["spec"]["template"]["spec"]["containers"][0]["name"] == "store-check"}
    assert set(checks) == {m.name for m in FUNCTIONS}
    for name, job in checks.items():
        (c,) = job["spec"]["template"]["spec"]["containers"]
        assert c["command"] == ["python", "-m", "lscloud.cli", "store-check", "--from-env"]
        env = {e["name"]: e for e in c["env"]}
        assert env["LSCLOUD_BUCKET"]["value"].endswith(f"-{name}")
        assert env["LSCLOUD_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == f"lscloud-s3-{name}"
        # not set: the cluster's default (false: MinIO ignored If-Match on DELETE, minio/minio#21677) is what
        # the check holds the store to, as the function runs with it
        assert "LSCLOUD_S3_CONDITIONAL_DELETE" not in env


def test_a_new_store_image_runs_the_store_check_again_and_new_data_does_not():
    m = BY_NAME["directory"]
    p = PlatformEndpoints(namespace="lscloud", s3_endpoint="https://m", nats_url="tls://n", stream="LSCLOUD",
                          otlp_endpoint="http://o", bucket_prefix="lscloud", jwt_issuer="i", jwt_audience="a")

    def name(image, store):
        return hooks.render_job(m, "store-check", p, image=image, store_image=store)["metadata"]["name"]

    a = name("r/directory:1", "minio:1")
    assert a == name("r/directory:1", "minio:1") and len(a) <= 63
    assert a != name("r/directory:1", "minio:2") and a != name("r/directory:2", "minio:1")
    assert hooks.wanted(m)[0] == "store-check"


def test_hook_jobs_reach_minio_and_nothing_else(objs):
    (pol,) = [p for p in of_kind(objs, "NetworkPolicy") if p["metadata"]["name"] == hooks.POLICY]
    assert pol["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": hooks.COMPONENT}
    assert pol["spec"]["ingress"] == []
    ports = sorted(p["port"] for rule in pol["spec"]["egress"] for p in rule["ports"])
    assert ports == [53, 53, 9000]
    (minio,) = [p for p in of_kind(objs, "NetworkPolicy") if p["metadata"]["name"] == "minio"]
    admitted = {f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for r in minio["spec"]["ingress"] for f in r["from"] if "namespaceSelector" in f}
    assert "lscloud" in admitted


def test_a_new_image_or_new_data_makes_a_new_seed_job():
    m = BY_NAME["directory"]
    p = PlatformEndpoints(namespace="lscloud", s3_endpoint="https://m", nats_url="tls://n", stream="LSCLOUD",
                          otlp_endpoint="http://o", bucket_prefix="lscloud", jwt_issuer="i", jwt_audience="a")
    a = hooks.render_job(m, "seed", p, image="r/directory:1")["metadata"]["name"]
    assert a == hooks.render_job(m, "seed", p, image="r/directory:1")["metadata"]["name"]  # same: no new Job
    assert a != hooks.render_job(m, "seed", p, image="r/directory:2")["metadata"]["name"]
    assert len(a) <= 63


# --- the functions' config and secrets ------------------------------------------------------------

def test_function_config_maps_and_secrets_are_made_by_the_program(program):
    objs = k8s_objects(program("dev"))
    maps = {o["metadata"]["name"]: o for o in of_kind(objs, "ConfigMap")}
    assert maps["identity-registry"]["data"]["url"].startswith("https://")
    raw = {r.inputs["metadata"]["name"]: r.inputs.get("stringData") for r in program("dev").resources
           if r.typ == "kubernetes:core/v1:Secret"}
    kek = normalize(raw["softatm-kek"])["key"]
    Fernet(kek.encode())  # a key softatm can use (URL-safe base64 of 32 bytes)
    assert "token" in normalize(raw["identity-registry"])  # created (empty) until an operator sets it


def test_the_plan_refuses_what_no_function_reads_and_names_what_is_missing():
    identity = BY_NAME["identity"]
    with pytest.raises(SettingsError, match=r"configMap:identity-registry:url"):
        appconfig.plan([identity], {}, {}, {})
    with pytest.raises(SettingsError, match="a typo"):
        appconfig.plan([identity], {"identity-registry": {"url": "u"}, "identity-regsitry": {"url": "u"}}, {}, {})
    with pytest.raises(SettingsError, match="kind must be one of"):
        appconfig.plan([BY_NAME["softatm"]], {}, {"softatm-kek": {"key": "rot13"}}, {})
    plan = appconfig.plan([identity], {"identity-registry": {"url": "u"}}, {}, {})
    assert plan.missing_operator == ["identity-registry.token (identity)"]


def test_a_changed_secret_rolls_out_a_new_revision_of_the_functions_that_read_it(program):
    def digests(mocks):
        return {o["metadata"]["name"]: o["spec"]["template"]["metadata"]["annotations"][CONFIG_DIGEST]
                for o in k8s_objects(mocks) if o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1"}

    secrets = {"lscloud:jwtPublicKey": JWT_PUBLIC_KEY}
    stamp = {"market-stamp-key": {"private-key": MARKET_STAMP_KEY}}
    before = digests(run_program("dev", secrets={**secrets, "lscloud:secrets": json.dumps(
        {"identity-registry": {"token": "first-token-0123456789"}, **stamp})}))
    after = digests(run_program("dev", secrets={**secrets, "lscloud:secrets": json.dumps(
        {"identity-registry": {"token": "rotated-token-9876543210"}, **stamp})}))
    assert before["identity"] != after["identity"]
    assert all(before[n] == after[n] for n in before if n != "identity")


# --- eventing, tracing ------------------------------------------------------------------------------

def test_sender_identity_and_tracing_are_switched_on(program):
    for stack in STACKS:
        patches = {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): normalize(r.inputs["data"])
                   for r in program(stack).resources if r.typ == "kubernetes:core/v1:ConfigMapPatch"}
        assert patches[("knative-eventing", "config-features")]["authentication-oidc"] == "enabled"
        # the Triggers' retryAfterMax is refused by Eventing's webhook while this is off
        assert patches[("knative-eventing", "config-features")]["delivery-retryafter"] == "enabled"
        for ns in ("knative-serving", "knative-eventing"):
            obs = patches[(ns, "config-observability")]
            assert obs["tracing-protocol"] == "http/protobuf"
            assert obs["tracing-endpoint"] == "http://otel-collector.lscloud-telemetry.svc.cluster.local:4318/v1/traces"
            assert 0 < float(obs["tracing-sampling-rate"]) <= 1
        # Kourier logs every request: never its path (a download link's token) nor its query
        kourier = patches[("knative-serving", "config-kourier")]
        template = kourier["service-access-log-template"]
        assert kourier["enable-service-access-logging"] == "true" and template.endswith("\n")
        assert "PATH" not in template and "%REQ(:PATH)" not in template and "QUERY" not in template
        assert "%REQ(TRACEPARENT)%" in template and "%RESPONSE_CODE%" in template
        nats = yaml.safe_load(patches[("knative-eventing", "config-nats")]["eventing-nats"])
        assert nats["url"].startswith("tls://") and nats["auth"]["tls"]["secret"]["name"] == "nats-eventing"
        objs = k8s_objects(program(stack))
        (crb,) = [o for o in objs if o["kind"] == "ClusterRoleBinding"]
        assert crb["roleRef"]["name"] == "system:service-account-issuer-discovery"
        assert any(c["kind"] == "Certificate" and c["metadata"]["namespace"] == "knative-eventing"
                   and c["spec"]["secretName"] == "nats-eventing" for c in objs)


def test_functions_read_the_api_servers_keys_with_its_ca(objs):
    for svc in (o for o in objs if o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1"):
        spec = svc["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["LSCLOUD_EVENTS_JWKS_CA_FILE"] == "/var/run/lscloud/kube-ca/ca.crt"
        assert {"name": "kube-ca", "configMap": {"name": "kube-root-ca.crt"}} in spec["volumes"]


# --- backups --------------------------------------------------------------------------------------

def test_prod_backs_up_buckets_and_streams_off_the_cluster_dev_warns(program):
    prod = k8s_objects(program("prod"))
    crons = {o["metadata"]["name"]: o for o in of_kind(prod, "CronJob")}
    assert {"backup-objects", "backup-streams"} <= set(crons)
    scripts = next(o for o in of_kind(prod, "ConfigMap") if o["metadata"]["name"] == "backup-scripts")["data"]
    for m in FUNCTIONS:
        assert f"src/lscloud-{m.name} dst/lscloud-prod-backup/objects/lscloud-{m.name}" in scripts["objects.sh"]
    assert "stream backup LSCLOUD " in scripts["snapshot.sh"] and "stream backup LSCLOUD_DLQ " in scripts["snapshot.sh"]
    assert all("--remove" in line for line in scripts["objects.sh"].splitlines() if line.startswith("mc mirror"))
    policies = {p["metadata"]["name"]: p for p in of_kind(prod, "NetworkPolicy")}
    for server in ("nats", "minio"):
        admitted = [f.get("podSelector") for r in policies[server]["spec"]["ingress"] for f in r["from"]]
        assert {"matchLabels": {"app.kubernetes.io/name": "backup-streams"}} in admitted
    assert not [o for o in of_kind(k8s_objects(program("dev")), "CronJob") if o["metadata"]["name"].startswith("backup")]


def backup_scripts(mocks) -> dict[str, str]:
    return next(o for o in of_kind(k8s_objects(mocks), "ConfigMap") if o["metadata"]["name"] == "backup-scripts")["data"]


def target_steps(script: str, bucket: str) -> tuple[list[str], int, dict]:
    """(the script's lines, where the versioning check stops the job, the lifecycle it imports)."""
    lines = script.splitlines()
    enable = lines.index(f"mc version enable dst/{bucket}")
    (check,) = [i for i, line in enumerate(lines) if line.startswith("case ") and "versioning is enabled" in line]
    assert lines[check - 1] == f"versioning=$(mc --no-color version info dst/{bucket})" and enable < check - 1
    # anything but "enabled" (un-versioned, suspended) ends the job before a mirror, loudly
    assert "*) echo" in lines[check] and ">&2" in lines[check] and lines[check].endswith("exit 1 ;; esac")
    (ilm,) = [i for i, line in enumerate(lines) if line.endswith(f"| mc ilm rule import dst/{bucket}")]
    rules = json.loads(lines[ilm].removeprefix("echo '").removesuffix(f"' | mc ilm rule import dst/{bucket}"))
    mirrors = [i for i, line in enumerate(lines) if line.startswith("mc mirror ")]
    assert mirrors and min(mirrors) > max(check, ilm)
    return lines, check, rules


def grace_days(rules: dict) -> int:
    (rule,) = [r for r in rules["Rules"] if "NoncurrentVersionExpiration" in r]
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": ""}  # the whole target bucket
    return rule["NoncurrentVersionExpiration"]["NoncurrentDays"]


def test_deletions_reach_the_copy_only_into_a_versioned_target_that_forgets_them_after_a_grace(program):
    """Mirrored with --remove, so what the platform deletes (erased personal data included) leaves
    the copy too; into a bucket the job made versioned and gave the lifecycle first, so a deletion
    by mistake stays recoverable there ``backup.keepDeletedDays`` (30) and no longer."""
    script = backup_scripts(program("prod"))["objects.sh"]
    lines, _, rules = target_steps(script, "lscloud-prod-backup")
    assert grace_days(rules) == 30
    assert {"ID": "expired-delete-markers", "Status": "Enabled", "Filter": {"Prefix": ""},
            "Expiration": {"ExpiredObjectDeleteMarker": True}} in rules["Rules"]
    mirrors = [line.split() for line in lines if line.startswith("mc mirror ")]
    assert len(mirrors) == len(FUNCTIONS)
    for words in mirrors:
        assert {"--overwrite", "--remove"} <= set(words) and words[-1].startswith("dst/lscloud-prod-backup/objects/")
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)  # the shell reads it (no run)


def test_the_grace_period_is_the_stacks_setting_in_dev_and_prod():
    prod = run_program("prod", backup={"endpoint": "https://s3.backup.langson.gov.vn", "targetCidrs": ["10.40.0.0/24"],
                                       "bucket": "lscloud-prod-backup", "keepDeletedDays": 7})
    assert grace_days(target_steps(backup_scripts(prod)["objects.sh"], "lscloud-prod-backup")[2]) == 7
    dev = run_program("dev", backup={"endpoint": "https://s3.dev.example", "targetCidrs": ["10.50.0.0/24"],
                                     "bucket": "lscloud-dev-backup", "keepDeletedDays": 90})
    assert grace_days(target_steps(backup_scripts(dev)["objects.sh"], "lscloud-dev-backup")[2]) == 90


@pytest.mark.parametrize("days", [0, -1, "30", 2.5, True])
def test_a_grace_period_that_is_not_whole_days_is_refused(days):
    with pytest.raises(SettingsError, match=r"lscloud:backup.keepDeletedDays must be a whole number >= 1"):
        BackupSettings(endpoint="https://s3.x", targetCidrs=("10.0.0.0/24",), keepDeletedDays=days)


# --- scale ------------------------------------------------------------------------------------------

def test_no_function_woken_by_the_clock_is_set_to_scale_to_zero(objs):
    """The tick wakes its subscribers every minute: at min-scale 0 they would pay a cold start a minute
    and never stay down (infra/README.md, Scale). Only functions nothing wakes may scale to zero."""
    for svc in (o for o in objs if o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1"):
        m = BY_NAME[svc["metadata"]["name"]]
        lo = int(svc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"])
        if any(sub.type == TICK for sub in m.subscriptions):
            assert lo >= 1, m.name
