"""A function's migration runs again once its rollout is over (infra/components/hooks.py, rollout.py):
the older revision's replicas write the older layout while the new one rolls out, after the first
migration Job ran. And every hook Job gets the function's environment as its Service does."""

from __future__ import annotations

import pytest

from infra_support import REPO, RecordingMocks, egress_peers, normalize

pulumi = pytest.importorskip("pulumi")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from lscloud import manifest  # noqa: E402

from components import function as fn, hooks, rollout  # noqa: E402
from components.settings import FunctionOverride  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FUNCTIONS = manifest.discover(REPO / "functions")
BY_NAME = {m.name: m for m in FUNCTIONS}
MIGRATED = [m for m in FUNCTIONS if m.migrate_module is not None]
API = ("10.30.0.0/20",)
PLATFORM = fn.PlatformEndpoints(namespace="lscloud", s3_endpoint="https://minio.lscloud-data.svc:9000",
                                nats_url="tls://nats", stream="LSCLOUD", otlp_endpoint="http://o", bucket_prefix="lscloud",
                                jwt_issuer="i", jwt_audience="a", api_server_cidrs=API)
AFTER = hooks.AFTER_ROLLOUT


def after_job(m, image="r/x:1", **kw):
    return hooks.render_job(m, AFTER, PLATFORM, image=image, **kw)


def test_every_function_with_a_migration_migrates_again_after_it_serves():
    assert {"reports", "border", "dossiers", "community"} <= {m.name for m in MIGRATED}
    for m in FUNCTIONS:
        assert (AFTER in hooks.wanted(m)) == (m.migrate_module is not None), m.name
    assert AFTER in hooks.AFTER_SERVING and AFTER not in hooks.BEFORE_SERVING


def test_the_after_rollout_job_waits_for_the_older_revision_then_runs_the_second_phase():
    for m in MIGRATED:
        job = after_job(m)
        pod = job["spec"]["template"]["spec"]
        (wait,) = pod["initContainers"]
        assert wait["name"] == hooks.WAIT_STEP and wait["image"] == "r/x:1"
        assert wait["command"] == ["python", "-m", "lscloud.rollout", "wait", m.name, "--namespace", "lscloud",
                                   "--timeout-s", str(hooks.ROLLOUT_WAIT_S)]
        (main,) = pod["containers"]
        assert main["command"] == ["python", "-m", "lscloud.serve", "--migrate", "--after-rollout",
                                   f"/app/functions/{m.name}"]
        # the function's own bucket and credentials, as the first phase
        env = {e["name"]: e for e in main["env"]}
        assert env["LSCLOUD_BUCKET"]["value"] == f"lscloud-{m.name}"
        assert env["LSCLOUD_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == f"lscloud-s3-{m.name}"
        assert pod["serviceAccountName"] == rollout.account_name(m.name)
        assert job["metadata"]["labels"]["app.kubernetes.io/component"] == rollout.COMPONENT
        assert len(job["metadata"]["name"]) <= 63


def test_only_the_waiting_step_holds_an_api_token():
    pod = after_job(BY_NAME["reports"])["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (wait,), (main,) = pod["initContainers"], pod["containers"]
    token_volumes = {v["name"] for v in pod["volumes"]
                     if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", []))}
    assert token_volumes == {"kube-api"}
    assert {v["name"] for v in wait["volumeMounts"]} == {"kube-api"}
    assert "kube-api" not in {v["name"] for v in main["volumeMounts"]}
    assert wait["volumeMounts"][0]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"


def test_a_wait_that_times_out_fails_the_job_loudly_and_pulumi_waits_long_enough():
    job = after_job(BY_NAME["reports"])
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"   # what podFailurePolicy needs
    assert job["spec"]["podFailurePolicy"] == {"rules": [{"action": "FailJob", "onExitCodes": {
        "containerName": hooks.WAIT_STEP, "operator": "In", "values": [3]}}]}
    from lscloud import rollout as waiting

    assert waiting.EXIT_TIMED_OUT == hooks.WAIT_TIMED_OUT
    # the wait, then the migration's own time
    assert job["spec"]["activeDeadlineSeconds"] == hooks.ROLLOUT_WAIT_S + hooks.HOOK_DEADLINE_S == 3600
    for kind in hooks.KINDS:
        assert int(hooks.await_timeout(kind)[:-1]) * 60 > hooks.job_deadline_s(kind)


def test_a_new_image_makes_a_new_after_rollout_job():
    m = BY_NAME["reports"]
    assert after_job(m)["metadata"]["name"] == after_job(m)["metadata"]["name"]
    assert after_job(m)["metadata"]["name"] != after_job(m, image="r/x:2")["metadata"]["name"]
    assert after_job(m)["metadata"]["name"] != hooks.render_job(m, "migrate", PLATFORM, image="r/x:1")["metadata"]["name"]


def test_the_role_gets_the_functions_service_and_lists_pods_and_nothing_else():
    role = rollout.render_role("reports", PLATFORM)
    assert role["metadata"]["namespace"] == "lscloud"
    assert role["rules"] == [
        {"apiGroups": ["serving.knative.dev"], "resources": ["services"], "resourceNames": ["reports"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    binding = rollout.render_role_binding("reports", PLATFORM)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rollout-reports"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rollout-reports", "namespace": "lscloud"}]
    assert rollout.render_service_account("reports", PLATFORM)["automountServiceAccountToken"] is False


def test_after_rollout_jobs_reach_the_api_server_minio_and_dns_only():
    pol = rollout.render_network_policy(PLATFORM)
    labels = after_job(BY_NAME["reports"])["spec"]["template"]["metadata"]["labels"]
    assert pol["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert pol["spec"]["ingress"] == [] and set(pol["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    by_address = [r for r in pol["spec"]["egress"] if any("ipBlock" in t for t in r["to"])]
    assert by_address == [{"to": [{"ipBlock": {"cidr": API[0]}}],
                           "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}]
    rest = {**pol, "spec": {**pol["spec"], "egress": [r for r in pol["spec"]["egress"] if r not in by_address]}}
    assert egress_peers(rest) == {
        ("lscloud-data", '{"app.kubernetes.io/name": "minio"}'): {9000},
        ("kube-system", '{"k8s-app": "kube-dns"}'): {53}}
    # the other hooks' policy does not select it: they keep reaching MinIO and DNS only
    other = hooks.render_network_policy(PLATFORM)["spec"]["podSelector"]["matchLabels"]
    assert not other.items() <= labels.items()


def test_hook_jobs_get_the_functions_environment_as_its_service_does():
    """dossiers' bucket is under object lock: its Service is told so (LSCLOUD_S3_OBJECT_LOCK), and its
    store check and migrations ran without it (the retention, not a day, on their working objects)."""
    m = BY_NAME["dossiers"]
    override = FunctionOverride(retention={"mode": "governance", "days": 3650})
    service_env = fn.render_service(m, PLATFORM, image="r/x:1", override=override)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "LSCLOUD_S3_OBJECT_LOCK", "value": "governance"} in service_env
    for kind in hooks.wanted(m):
        job = hooks.render_job(m, kind, PLATFORM, image="r/x:1", store_image="minio:1", override=override)
        assert job["spec"]["template"]["spec"]["containers"][0]["env"] == service_env, kind
    assert "LSCLOUD_S3_OBJECT_LOCK" not in {e["name"] for e in hooks.render_job(
        m, "migrate", PLATFORM, image="r/x:1")["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_what_the_hooks_create_validates():
    m = BY_NAME["reports"]
    for obj in (after_job(m), rollout.render_service_account("reports", PLATFORM), rollout.render_role("reports", PLATFORM),
                rollout.render_role_binding("reports", PLATFORM), rollout.render_network_policy(PLATFORM)):
        kubernetes_validate.validate(obj, "1.30.0", strict=True)


def test_the_component_creates_its_account_role_binding_and_job_after_the_service():
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="lscloud", stack="unit", preview=False)
    m = BY_NAME["reports"]

    @pulumi.runtime.test
    def run():
        policy = hooks.HookPolicy("lscloud-hooks", PLATFORM)
        service = fn.Function(m.name, m, PLATFORM, image="r/reports:1")
        hook = hooks.FunctionHook(f"lscloud-{AFTER}-{m.name}", m, AFTER, PLATFORM, image="r/reports:1",
                                  opts=pulumi.ResourceOptions(depends_on=[service, policy]))
        return pulumi.Output.from_input(hook.object["metadata"]["name"])

    run()
    made = [(r.typ, normalize(r.inputs)) for r in mocks.resources if "kind" in r.inputs]
    kinds = [(o["kind"], o["metadata"]["name"]) for _, o in made]
    job = next(i for i, (kind, _) in enumerate(kinds) if kind == "Job")
    for needed in (("Service", "reports"), ("ServiceAccount", "rollout-reports"), ("Role", "rollout-reports"),
                   ("RoleBinding", "rollout-reports"), ("NetworkPolicy", rollout.POLICY)):
        assert kinds.index(needed) < job, needed
    (role,) = [o for _, o in made if o["kind"] == "Role"]
    assert role["rules"] == rollout.render_role("reports", PLATFORM)["rules"]
    assert made[job][1]["spec"]["template"]["spec"]["initContainers"][0]["name"] == hooks.WAIT_STEP
