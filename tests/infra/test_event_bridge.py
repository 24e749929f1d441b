"""The JetStream → broker bridge in the program (dev and prod) and its rendering."""

from __future__ import annotations

import json

import pytest
import yaml

from infra_support import REPO, RecordingMocks, egress_peers, k8s_objects, normalize

pulumi = pytest.importorskip("pulumi")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from lscloud import manifest  # noqa: E402

from components import bridge as br  # noqa: E402
from components import bus  # noqa: E402
from components.settings import BridgeSettings, NatsSettings, SettingsError, StackSettings  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

K8S_VERSION = "1.30.0"
STACKS = ("dev", "prod")


def subscribed_types(broker: str | None = None) -> set[str]:
    """What functions/*/func.yaml subscribe to (read as plain YAML, not with the program's parser)."""
    out = set()
    for path in sorted((REPO / "functions").glob("*/func.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for sub in (doc.get("deploy") or {}).get("subscriptions") or []:
            if broker is None or (sub.get("source") or "default") == broker:
                out.add(sub["filters"]["type"])
    return out


def of_kind(objs, kind, api=None):
    return [o for o in objs if o["kind"] == kind and (api is None or o["apiVersion"] == api)]


def bridges(objs) -> dict[str, dict]:
    """Broker -> its bridge Deployment."""
    return {d["metadata"]["labels"]["lscloud.langson.gov.vn/broker"]: d for d in of_kind(objs, "Deployment", "apps/v1")
            if d["metadata"]["labels"].get("app.kubernetes.io/component") == "event-bridge"}


def env_of(deployment) -> dict[str, dict]:
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.fixture(params=STACKS)
def objs(request, program):
    return k8s_objects(program(request.param))


# --- the program ---------------------------------------------------------------------------------

def test_every_broker_has_one_bridge_deployment(objs):
    brokers = {b["metadata"]["name"] for b in of_kind(objs, "Broker", "eventing.knative.dev/v1")}
    assert "default" in brokers
    assert set(bridges(objs)) == brokers


def test_bridge_deployment_runs_the_bridge_with_probes_limits_and_a_restricted_context(objs):
    dep = bridges(objs)["default"]
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] > 10  # in-flight deliveries finish on SIGTERM
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "lscloud.bridge"]
    assert c["image"].endswith(("/lscloud:main", "/lscloud:2025.07.1"))
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/readiness", "port": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health/liveness", "port": 8080}
    assert {"cpu", "memory"} <= set(c["resources"]["limits"]) and {"cpu", "memory"} <= set(c["resources"]["requests"])
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_bridge_gets_the_cluster_settings_but_not_k_sink_or_s3(objs):
    env = env_of(bridges(objs)["default"])
    assert env["LSCLOUD_ENV"]["value"] == "cluster"
    assert env["LSCLOUD_NATS_URL"]["value"].startswith("tls://nats.")
    # NATS over TLS as the user "bridge": its client certificate, mounted from nats-bridge
    assert env["LSCLOUD_NATS_CERT_FILE"]["value"] == "/var/run/lscloud/tls/tls.crt"
    assert {"name": "lscloud-tls", "secret": {"secretName": "nats-bridge", "defaultMode": 0o444}} in \
        bridges(objs)["default"]["spec"]["template"]["spec"]["volumes"]
    assert env["LSCLOUD_STREAM"]["value"] == "LSCLOUD"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].startswith("http://otel-collector.")
    assert env["OTEL_SERVICE_NAME"]["value"] == "bridge"
    assert env["LSCLOUD_BRIDGE_BROKER"]["value"] == "default"
    assert "LSCLOUD_JWT_JWKS_URL" in env or "secretKeyRef" in env["LSCLOUD_JWT_PUBLIC_KEY"]["valueFrom"]
    assert env["LSCLOUD_PSEUDONYM_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "lscloud-pseudonym"  # cluster mode
    assert "K_SINK" not in env  # the SinkBinding injects it
    assert not any(name.startswith("LSCLOUD_S3") or name == "LSCLOUD_BUCKET" for name in env)


def test_bridge_types_are_the_union_of_the_func_yaml_subscriptions(objs):
    forwarded = {}
    for broker, dep in bridges(objs).items():
        raw = env_of(dep)["LSCLOUD_BRIDGE_TYPES"]["value"]
        forwarded[broker] = {t for t in raw.split(",") if t}
        assert forwarded[broker] == subscribed_types(broker), broker
    assert set().union(*forwarded.values()) == subscribed_types()


def test_sink_binding_points_the_deployment_at_its_broker(objs):
    deployments = bridges(objs)
    bindings = of_kind(objs, "SinkBinding", "sources.knative.dev/v1")
    assert len(bindings) == len(deployments)
    for binding in bindings:
        spec = binding["spec"]
        subject = spec["subject"]
        (broker,) = [b for b, d in deployments.items() if d["metadata"]["name"] == subject["name"]]
        dep = deployments[broker]
        assert subject == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"],
                           "namespace": dep["metadata"]["namespace"]}
        assert spec["sink"] == {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": broker,
                                        "namespace": dep["metadata"]["namespace"]}}
        assert binding["metadata"]["namespace"] == dep["metadata"]["namespace"]
        assert set(binding["spec"]) == {"subject", "sink"}


def test_bridge_has_a_disruption_budget_and_a_tight_network_policy(objs):
    dep = bridges(objs)["default"]
    name, selector = dep["metadata"]["name"], dep["spec"]["selector"]["matchLabels"]
    (pdb,) = [p for p in of_kind(objs, "PodDisruptionBudget") if p["metadata"]["name"] == name]
    assert pdb["spec"]["selector"]["matchLabels"] == selector and pdb["spec"]["minAvailable"] == 1
    (pol,) = [p for p in of_kind(objs, "NetworkPolicy") if p["spec"]["podSelector"].get("matchLabels") == selector]
    peers = egress_peers(pol)
    assert peers[("lscloud-data", '{"app.kubernetes.io/name": "nats"}')] == {4222}
    assert peers[("knative-eventing", '{"eventing.knative.dev/brokerRole": "ingress"}')] == {8080, 8443}
    assert peers[("lscloud-telemetry", '{"app.kubernetes.io/name": "otel-collector"}')] == {4317, 4318}
    assert peers[("lscloud-telemetry", '{"app.kubernetes.io/name": "otel-collector-metrics"}')] == {4317, 4318}
    assert peers[("kube-system", '{"k8s-app": "kube-dns"}')] == {53}
    assert len(peers) == 5


def test_bridge_objects_validate_against_kubernetes_schemas(objs):
    dep = bridges(objs)["default"]
    name = dep["metadata"]["name"]
    mine = [o for o in objs if o["metadata"]["name"] == name and o["apiVersion"] in
            ("v1", "apps/v1", "policy/v1", "networking.k8s.io/v1")]
    assert sorted(o["kind"] for o in mine) == ["Deployment", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"]
    for o in mine:
        kubernetes_validate.validate(normalize(o), K8S_VERSION, strict=True)


def test_the_stream_job_also_creates_the_dead_letter_stream(objs):
    (cm,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"] == "nats-config"]
    main, dlq = json.loads(cm["data"]["stream.json"]), json.loads(cm["data"]["dlq-stream.json"])
    assert dlq["name"] == main["name"] + "_DLQ" and dlq["subjects"] == ["lscloud-dlq.>"]
    assert dlq["num_replicas"] == main["num_replicas"] == 3
    (job,) = [o for o in of_kind(objs, "Job") if o["metadata"]["name"].startswith("nats-streams-")]
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "stream add LSCLOUD_DLQ --config /etc/nats/dlq-stream.json" in script
    assert "stream add LSCLOUD --config /etc/nats/stream.json" in script


# --- rendering, with subscriptions on two brokers --------------------------------------------------

FUNC_YAML = """
name: clearance
runtime: python
deploy:
  subscriptions:
    - source: default
      filters: {type: vn.langson.border.declaration.submitted.v1}
    - source: border
      filters: {type: vn.langson.border.truck.arrived.v1}
"""
YARD_YAML = """
name: yard
runtime: python
deploy:
  subscriptions:
    - filters: {type: vn.langson.border.declaration.submitted.v1}
    - filters: {type: vn.langson.border.declaration.cleared.v1}
"""
ENDPOINTS = br.BridgeEndpoints(namespace="lscloud", nats_url="nats://nats.lscloud-data.svc.cluster.local:4222",
                               stream="LSCLOUD", otlp_endpoint="http://otel-collector.lscloud-telemetry.svc.cluster.local:4318",
                               jwt_issuer="https://id.example", jwt_audience="lscloud")


def manifests():
    return [manifest.parse(FUNC_YAML, "/x/functions/clearance/func.yaml"),
            manifest.parse(YARD_YAML, "/x/functions/yard/func.yaml")]


def test_routes_group_the_types_by_broker_and_keep_the_default_broker():
    assert br.routes(manifests(), ["default", "idle"]) == {
        "border": ("vn.langson.border.truck.arrived.v1",),
        "default": ("vn.langson.border.declaration.cleared.v1", "vn.langson.border.declaration.submitted.v1"),
        "idle": (),
    }
    assert br.routes([]) == {"default": ()}


def test_rendered_bridge_for_another_broker():
    objs = br.render_all("border", ("vn.langson.border.truck.arrived.v1",), ENDPOINTS, BridgeSettings(replicas=3),
                         image="r/lscloud:1")
    assert [o["kind"] for o in objs] == ["ServiceAccount", "NetworkPolicy", "SinkBinding", "Deployment",
                                         "PodDisruptionBudget"]
    dep = objs[3]
    assert dep["metadata"]["name"] == "event-bridge-border" and dep["spec"]["replicas"] == 3
    env = env_of(dep)
    assert env["LSCLOUD_BRIDGE_TYPES"]["value"] == "vn.langson.border.truck.arrived.v1"
    assert env["LSCLOUD_BRIDGE_BROKER"]["value"] == "border"
    assert objs[2]["spec"]["sink"]["ref"]["name"] == "border"
    for o in objs:
        if o["kind"] != "SinkBinding":
            kubernetes_validate.validate(o, K8S_VERSION, strict=True)
    single = br.render_all("border", (), ENDPOINTS, BridgeSettings(replicas=1), image="i")
    assert "PodDisruptionBudget" not in [o["kind"] for o in single]  # a PDB of one would block drains


def test_bridge_component_creates_the_binding_before_the_deployment():
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="lscloud", stack="unit", preview=False)

    @pulumi.runtime.test
    def run():
        b = br.EventBridge("bridge-default", "default", ("vn.langson.border.declaration.submitted.v1",), ENDPOINTS,
                           BridgeSettings(), image="r/lscloud:1")
        return pulumi.Output.from_input(b.types).apply(lambda t: t == ["vn.langson.border.declaration.submitted.v1"])

    run()
    kinds = [r.inputs["kind"] for r in mocks.resources if "kind" in r.inputs]
    assert kinds.index("SinkBinding") < kinds.index("Deployment")
    assert sorted(kinds) == ["Deployment", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount", "SinkBinding"]


def test_bridge_settings():
    base = {"domain": "d", "imageRegistry": "r", "imageTag": "t", "cluster": {"mode": "existing"},
            "apiServerCidrs": ["10.0.0.0/24"]}
    assert StackSettings.from_values(base.get).bridge_image() == "r/lscloud:t"
    custom = StackSettings.from_values({**base, "bridge": {"image": "r/platform@sha256:abc", "replicas": 3}}.get)
    assert custom.bridge_image() == "r/platform@sha256:abc" and custom.bridge.replicas == 3
    with pytest.raises(SettingsError, match="unknown field"):
        StackSettings.from_values({**base, "bridge": {"replica": 3}}.get)
    with pytest.raises(SettingsError, match="limits"):
        StackSettings.from_values({**base, "bridge": {"limits": {"cpu": "1"}}}.get)


def test_dlq_stream_name_matches_the_runtime():
    from lscloud.config import Settings
    from lscloud.delivery import dlq_stream

    assert bus.dlq_stream_name(NatsSettings(stream="EVENTS")) == dlq_stream(Settings(stream="EVENTS"))
