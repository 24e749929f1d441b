"""Rendering func.yaml into Knative objects: plain functions, checked on manifests with subscriptions."""

from __future__ import annotations

import dataclasses

import pytest

from infra_support import RecordingMocks, normalize

pulumi = pytest.importorskip("pulumi")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from lscloud import manifest  # noqa: E402

from components import function as fn  # noqa: E402
from components.cluster import tier_rules  # noqa: E402
from components.secrets import partner_keys_json  # noqa: E402
from components.settings import ClusterSettings, SettingsError, StackSettings  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FUNC_YAML = """
specVersion: 0.36.0
name: clearance
runtime: python
run:
  envs:
    - name: CLEARANCE_MODE
      value: strict
    - name: LSCLOUD_S3_ACCESS_KEY
      value: '{{ secret:lscloud-s3:access-key }}'
    - name: LSCLOUD_S3_SECRET_KEY
      value: '{{ secret:lscloud-s3:secret-key }}'
    - name: LSCLOUD_PARTNER_KEYS
      value: '{{ secret:lscloud-partners:partner-keys }}'
    - name: GATE_HOURS
      value: '{{ configMap:border-gates:hours }}'
deploy:
  options:
    scale: {min: 2, max: 8, metric: rps, target: 30}
    resources:
      requests: {cpu: 200m, memory: 256Mi}
      limits: {cpu: "1", memory: 512Mi, concurrency: 20}
  subscriptions:
    - source: default
      filters: {type: vn.langson.border.declaration.submitted.v1}
    - source: border
      filters: {type: vn.langson.border.truck.arrived.v1}
"""

PLATFORM = fn.PlatformEndpoints(
    namespace="lscloud", s3_endpoint="http://minio.lscloud-data.svc.cluster.local:9000",
    nats_url="nats://nats.lscloud-data.svc.cluster.local:4222", stream="LSCLOUD",
    otlp_endpoint="http://otel-collector.lscloud-telemetry.svc.cluster.local:4318", bucket_prefix="lscloud",
    jwt_issuer="https://id.example", jwt_audience="lscloud", public_url_template="https://{name}.lscloud.example.vn")


def parse(text=FUNC_YAML, name="clearance"):
    return manifest.parse(text, f"/x/functions/{name}/func.yaml")


def env_of(svc):
    return {e["name"]: e for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_env_templates_become_refs_and_s3_credentials_are_the_functions_own():
    env = env_of(fn.render_service(parse(), PLATFORM, image="r/clearance:1"))
    assert env["CLEARANCE_MODE"] == {"name": "CLEARANCE_MODE", "value": "strict"}
    assert env["LSCLOUD_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "lscloud-s3-clearance", "key": "access-key"}
    assert env["LSCLOUD_PARTNER_KEYS"]["valueFrom"]["secretKeyRef"] == {"name": "lscloud-partners", "key": "partner-keys"}
    assert env["GATE_HOURS"]["valueFrom"]["configMapKeyRef"] == {"name": "border-gates", "key": "hours"}
    assert env["LSCLOUD_BUCKET"]["value"] == "lscloud-clearance"
    assert env["LSCLOUD_JWT_PUBLIC_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "lscloud-jwt"
    assert env["OTEL_SERVICE_NAME"]["value"] == "clearance"
    # who may deliver to /events: the Triggers' OIDC identities, verified with the API server's keys
    assert env["LSCLOUD_EVENTS_AUDIENCE"]["value"] == "serving.knative.dev/service/lscloud/clearance"
    assert env["LSCLOUD_EVENTS_JWKS_URL"]["value"] == "https://kubernetes.default.svc/openid/v1/jwks"
    assert env["LSCLOUD_EVENTS_SUBJECTS"]["value"] == "system:serviceaccount:lscloud:*"


def test_a_function_with_events_starts_with_the_rendered_env(tmp_path):
    """The rendered env is enough for /events to verify its sender (else the function would not start)."""
    from lscloud import config
    from lscloud.auth import check_eventing_settings

    env = {name: e.get("value", "x") for name, e in env_of(fn.render_service(parse(), PLATFORM, image="i")).items()}
    for name, value in list(env.items()):  # the mounted certificate files (a volume in the cluster)
        if name.endswith("_FILE") and value.startswith("/var/run/lscloud/"):
            local = tmp_path / value.strip("/").replace("/", "_")
            local.write_text("x")
            env[name] = str(local)
    env["LSCLOUD_JWT_JWKS_URL"] = "https://idp.example/jwks"  # a secretKeyRef in the cluster
    env["LSCLOUD_PSEUDONYM_KEY"] = "k" * 40  # a secretKeyRef to lscloud-pseudonym in the cluster
    env.pop("LSCLOUD_JWT_PUBLIC_KEY", None)
    env.pop("LSCLOUD_PARTNER_KEYS", None)
    settings = config.load({**env, "K_SERVICE": "clearance"})
    check_eventing_settings(settings)
    # the API server's issuer as the stack says (rendered, not the runtime's fallback)
    assert env["LSCLOUD_EVENTS_ISSUER"] == PLATFORM.events_issuer == settings.events_issuer
    other = dataclasses.replace(PLATFORM, events_issuer="https://oidc.example/cluster-1")
    assert env_of(fn.render_service(parse(), other, image="i"))["LSCLOUD_EVENTS_ISSUER"]["value"] == \
        "https://oidc.example/cluster-1"


def test_functions_are_told_the_proxies_network_and_kourier_keeps_the_clients_address():
    """The pod network's proxies (Kourier, activator, queue-proxy) append to X-Forwarded-For: a
    function takes the last address outside it as the client's; Kourier's Service keeps the
    client's source address (externalTrafficPolicy Local)."""
    from lscloud import config

    from components import knative
    from components.settings import KnativeSettings

    s = KnativeSettings()
    platform = dataclasses.replace(PLATFORM, trusted_proxies=s.podCidrs)
    env = env_of(fn.render_service(parse(), platform, image="i"))
    assert env["LSCLOUD_TRUSTED_PROXIES"]["value"] == "10.100.0.0/16"
    assert config.load({"LSCLOUD_TRUSTED_PROXIES": env["LSCLOUD_TRUSTED_PROXIES"]["value"]}).trusted_proxies == \
        ("10.100.0.0/16",)
    assert "LSCLOUD_TRUSTED_PROXIES" in fn.PLATFORM_ENV   # a func.yaml cannot set it
    patch = knative.ingress_service_patch(s)
    assert (patch["metadata"], patch["spec"]) == (
        {"name": "kourier", "namespace": "kourier-system",
         "annotations": {"loadbalancer.openstack.org/proxy-protocol": "false"}},   # knative.proxyProtocol off
        {"externalTrafficPolicy": "Local"})
    with pytest.raises(SettingsError):
        KnativeSettings(podCidrs=("10.100.0.0/33",))


def test_scale_concurrency_and_resources():
    svc = fn.render_service(parse(), PLATFORM, image="r/clearance:1")
    ann = svc["spec"]["template"]["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/min-scale"] == "2" and ann["autoscaling.knative.dev/max-scale"] == "8"
    assert ann["autoscaling.knative.dev/metric"] == "rps" and ann["autoscaling.knative.dev/target"] == "30"
    spec = svc["spec"]["template"]["spec"]
    assert spec["containerConcurrency"] == 20
    assert spec["containers"][0]["resources"] == {"requests": {"cpu": "200m", "memory": "256Mi"},
                                                  "limits": {"cpu": "1", "memory": "512Mi"}}
    override = fn.FunctionOverride(minScale=0, maxScale=3)
    ann = fn.render_service(parse(), PLATFORM, image="i", override=override)["spec"]["template"]["metadata"]["annotations"]
    assert (ann["autoscaling.knative.dev/min-scale"], ann["autoscaling.knative.dev/max-scale"]) == ("0", "3")


def test_a_bare_func_yaml_still_gets_limits_bounds_and_probes():
    bare = parse("name: tiny\nruntime: python\n", name="tiny")
    c = fn.render_service(bare, PLATFORM, image="i")["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/readiness"


def test_one_trigger_per_subscription_with_dead_letter_sink():
    triggers = fn.render_triggers(parse(), PLATFORM)
    assert [(t["spec"]["broker"], t["spec"]["filter"]["attributes"]["type"]) for t in triggers] == [
        ("default", "vn.langson.border.declaration.submitted.v1"), ("border", "vn.langson.border.truck.arrived.v1")]
    for t in triggers:
        assert t["apiVersion"] == "eventing.knative.dev/v1" and t["kind"] == "Trigger"
        assert t["spec"]["subscriber"]["ref"] == {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                                  "name": "clearance", "namespace": "lscloud"}
        # authentication-oidc: the broker's token for the function carries the audience the function expects
        assert t["spec"]["subscriber"]["audience"] == "serving.knative.dev/service/lscloud/clearance"
        # relative to the Service's address: the routes the runtime serves them at (not the function's /)
        assert t["spec"]["subscriber"]["uri"] == "/events"
        sink = t["spec"]["delivery"]["deadLetterSink"]
        assert sink == {"ref": t["spec"]["subscriber"]["ref"], "uri": "/events/dead-letters",
                        "audience": "serving.knative.dev/service/lscloud/clearance"}
        assert len(t["metadata"]["name"]) <= 63


def test_a_triggers_retries_outlast_an_events_seen_lease_and_honour_retry_after():
    """A run killed mid-event holds its event one lease at most (lscloud.runonce.EVENT_LEASE_S; it renews
    it while alive): a Trigger's retries must go on past that and the redelivery that takes it over,
    or the event is dead-lettered while nobody may run it (5 from 0.5 s spanned 15.5 s). A function's
    "event in progress" answer says how long is left (Retry-After), honoured up to retryAfterMax."""
    from lscloud.delivery import UNREACHABLE_S
    from lscloud.runonce import EVENT_LEASE_S

    for platform in (PLATFORM, dataclasses.replace(PLATFORM, delivery_retry=9)):
        for t in fn.render_triggers(parse(), platform):
            d = t["spec"]["delivery"]
            assert d["backoffPolicy"] == "exponential" and d["backoffDelay"] == "PT0.5S"
            assert d["retry"] >= platform.delivery_retry   # a stack's own count is never lowered
            assert 0.5 * (2 ** d["retry"] - 1) >= 2 * EVENT_LEASE_S   # one lease, and a margin as long
            # and an outage of the function, its own dead-letter sink: a delivery never runs out of
            # retries into a sink that is down with it
            assert 0.5 * (2 ** d["retry"] - 1) >= UNREACHABLE_S
            assert d["retryAfterMax"] == f"PT{int(2 * EVENT_LEASE_S)}S"
    assert fn.trigger_retries(5) == 11 and fn.trigger_retries(13) == 13


def test_rendered_objects_validate():
    objs = fn.render_all(parse(), PLATFORM, image="r/clearance:1")
    kinds = [o["kind"] for o in objs]
    assert kinds.count("Trigger") == 2 and "PodDisruptionBudget" in kinds  # min-scale 2
    for o in objs:
        if o["apiVersion"] in ("v1", "networking.k8s.io/v1", "policy/v1"):
            kubernetes_validate.validate(o, "1.30.0", strict=True)
    svc = next(o for o in objs if o["kind"] == "Service")
    spec = {k: v for k, v in svc["spec"]["template"]["spec"].items() if k not in ("containerConcurrency", "timeoutSeconds")}
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": spec}, "1.30.0", strict=True)


@pytest.mark.parametrize("env, message", [
    ("- {name: DB_PASSWORD, value: hunter2hunter2}", "looks secret"),
    ("- {name: LSCLOUD_PARTNER_KEYS, value: '{\"b\": [\"k\"]}'}", "looks secret"),
    ("- {name: LSCLOUD_BUCKET, value: other-bucket}", "set by the platform"),
    ("- {name: TOKEN_FILE, value: '{{ env:HOME }}'}", "deployer's shell"),
])
def test_render_refuses_what_the_cluster_must_not_do(env, message):
    m = parse(f"name: bad\nruntime: python\nrun:\n  envs:\n    {env}\n", name="bad")
    with pytest.raises(fn.RenderError, match=message):
        fn.render_service(m, PLATFORM, image="i")


def test_function_component_creates_service_triggers_and_policy():
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="lscloud", stack="unit", preview=False)

    @pulumi.runtime.test
    def run():
        f = fn.Function("clearance", parse(), PLATFORM, image="r/clearance:1")

        def check(url):
            assert url == "https://clearance.lscloud.example.vn"

        return f.url.apply(check)   # the test fails when the check does

    run()
    by_kind = {}
    for r in mocks.resources:
        if "kind" in r.inputs:
            by_kind.setdefault(r.inputs["kind"], []).append(normalize(r.inputs))
    assert len(by_kind["Service"]) == 1 and len(by_kind["Trigger"]) == 2
    assert len(by_kind["NetworkPolicy"]) == 1 and len(by_kind["ServiceAccount"]) == 1
    assert by_kind["Service"][0]["spec"]["template"]["spec"]["containerConcurrency"] == 20


def test_partner_keys_use_the_runtime_rules():
    assert partner_keys_json({"bidv": ["k" * 16, "n" * 16]}) == '{"bidv": ["' + "k" * 16 + '", "' + "n" * 16 + '"]}'
    assert partner_keys_json(None) == "{}"
    with pytest.raises(ValueError, match="one or two keys"):
        partner_keys_json({"bidv": ["a" * 16, "b" * 16, "c" * 16]})  # rotation keeps at most two


def test_settings_reject_unknown_keys_and_require_the_basics():
    base = {"domain": "d", "imageRegistry": "r", "imageTag": "t", "cluster": {"mode": "existing"},
            "apiServerCidrs": ["10.0.0.0/24"]}
    StackSettings.from_values(base.get)
    with pytest.raises(SettingsError, match="unknown field"):
        StackSettings.from_values({**base, "nats": {"replicaz": 3}}.get)
    with pytest.raises(SettingsError, match="lscloud:imageTag"):
        StackSettings.from_values({k: v for k, v in base.items() if k != "imageTag"}.get)
    with pytest.raises(SettingsError, match="streamReplicas"):
        StackSettings.from_values({**base, "nats": {"replicas": 1, "streamReplicas": 3}}.get)


def test_security_groups_open_only_what_each_tier_needs():
    rules = tier_rules(ClusterSettings(mode="instances", externalNetworkId="x", sshPublicKey="k",
                                       sshAllowedCidrs=("10.1.0.0/24",), apiAllowedCidrs=("10.1.0.0/24",)))
    world = [(tier, r) for tier, rs in rules.items() for r in rs if r.cidr == "0.0.0.0/0"]
    assert world and all(tier == "ingress" and r.port_min in (80, 443) for tier, r in world)
    ssh = [r for rs in rules.values() for r in rs if r.port_min == 22]
    assert ssh and all(r.cidr == "10.1.0.0/24" for r in ssh)
    assert not any(r.port_min == 2379 and r.group != "control-plane" for rs in rules.values() for r in rs)
