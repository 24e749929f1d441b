"""The devices relay in the cluster: a Deployment of two replicas sharing the durable consumer on
``<stream>_DEVICES``, with NATS only (a client certificate), a tight NetworkPolicy and a PDB."""

from __future__ import annotations

import dataclasses
import json

import pytest
from infra_support import RecordingMocks, egress_peers, normalize

pulumi = pytest.importorskip("pulumi")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from components import bus, natsauth, telemetry
from components import devices as dv
from components import tls as tlsc
from components.function import PlatformEndpoints
from components.settings import TlsSettings
from test_event_bridge import K8S_VERSION

from lscloud import config
from lscloud import devices as runtime_devices

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# the program's endpoints (infra/__main__.py builds PlatformEndpoints from the same helpers)
PLATFORM = PlatformEndpoints(
    namespace="lscloud", s3_endpoint="https://minio.lscloud-data.svc.cluster.local:9000",
    nats_url=bus.client_url("lscloud-data"), stream="LSCLOUD",
    otlp_endpoint=telemetry.otlp_endpoint("lscloud-telemetry"),
    otlp_metrics_endpoint=telemetry.metrics_endpoint("lscloud-telemetry"),
    bucket_prefix="lscloud", jwt_issuer="https://id.example", jwt_audience="lscloud")
ENDPOINTS = dv.RelayEndpoints.from_platform(PLATFORM)
IMAGE = "registry.example/lscloud:2025.07.1"


def render() -> dict[str, dict]:
    return {o["kind"]: o for o in dv.render_all(ENDPOINTS, image=IMAGE)}


def container(dep: dict) -> dict:
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def env_of(dep: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container(dep)["env"]}


def test_endpoints_come_from_the_platform():
    assert ENDPOINTS == dv.RelayEndpoints(
        namespace="lscloud", nats_url="tls://nats.lscloud-data.svc.cluster.local:4222", stream="LSCLOUD",
        otlp_endpoint=PLATFORM.otlp_endpoint, data_namespace="lscloud-data", telemetry_namespace="lscloud-telemetry",
        otlp_metrics_endpoint=PLATFORM.otlp_metrics_endpoint)


def test_the_env_loads_with_the_runtime_settings_and_names_the_stream(tmp_path):
    env = {name: e["value"] for name, e in env_of(render()["Deployment"]).items()}
    assert not any("valueFrom" in e for e in env_of(render()["Deployment"]).values())  # no secret in the pod
    assert "LSCLOUD_ENV" not in env  # cluster mode would ask for a token key and the pseudonym key
    assert not any(n.startswith(("LSCLOUD_S3", "LSCLOUD_JWT", "LSCLOUD_PSEUDONYM", "LSCLOUD_BUCKET")) for n in env)
    for name, value in list(env.items()):  # the mounted certificate files (a volume in the cluster)
        if name.endswith("_FILE"):
            assert value.startswith(tlsc.MOUNT + "/")
            local = tmp_path / value.strip("/").replace("/", "_")
            local.write_text("x")
            env[name] = str(local)
    settings = config.load(env)
    assert settings.stream == "LSCLOUD" and settings.nats_url == ENDPOINTS.nats_url
    assert settings.nats_cert_file and settings.nats_key_file and settings.nats_ca_file
    assert settings.service == "devices-relay"
    assert settings.otlp_endpoint == PLATFORM.otlp_endpoint
    assert settings.otlp_metrics_endpoint == PLATFORM.otlp_metrics_endpoint
    # the relay consumes the stream its NATS user may read
    devices_stream = runtime_devices.stream_name(settings)
    assert devices_stream == "LSCLOUD_DEVICES"
    assert f"$JS.API.CONSUMER.MSG.NEXT.{devices_stream}.>" in natsauth.relay_user(settings.stream, ()).publish


def test_no_metrics_endpoint_no_variable():
    dep = dv.render_deployment(dataclasses.replace(ENDPOINTS, otlp_metrics_endpoint=""), image=IMAGE)
    assert "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" not in env_of(dep)


def test_the_container_runs_the_relay_with_limits_and_a_restricted_context():
    dep = render()["Deployment"]
    c = container(dep)
    assert c["name"] == "relay" and c["image"] == IMAGE
    assert c["command"] == ["python", "-m", "lscloud.devices"]
    assert "args" not in c  # `sync-users` is the nats sidecar's, not the relay's
    assert c["resources"] == {"requests": {"cpu": "20m", "memory": "96Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}}
    # its only port is its probes' (lscloud.health), on the PORT the relay reads
    assert c["ports"] == [{"name": "health", "containerPort": 8080}]
    assert {"name": "PORT", "value": "8080"} in c["env"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/readiness", "port": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health/liveness", "port": 8080}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == dv.NAME and pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False and 0 < pod["terminationGracePeriodSeconds"] <= 30


def test_the_relay_presents_the_certificate_of_its_nats_user():
    dep = render()["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (vol,) = pod["volumes"]
    assert vol["secret"]["secretName"] == dv.CLIENT_CERT == "nats-devices-relay"
    assert container(dep)["volumeMounts"] == [{"name": vol["name"], "mountPath": tlsc.MOUNT, "readOnly": True}]
    cert = dv.client_cert(ENDPOINTS)
    assert cert.secret == dv.CLIENT_CERT and cert.namespace == ENDPOINTS.namespace
    assert cert.email == natsauth.relay_user(ENDPOINTS.stream, ["weather"]).email == "devices-relay@nats.lscloud"
    # the certificate cert-manager issues names that user
    rendered = tlsc.render_client_cert(cert, TlsSettings())
    assert rendered["spec"]["secretName"] == dv.CLIENT_CERT and rendered["spec"]["emailAddresses"] == [cert.email]


def test_two_replicas_share_the_consumer_and_a_pdb_keeps_one():
    objs = render()
    dep, pdb = objs["Deployment"], objs["PodDisruptionBudget"]
    spec = dep["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    sel = spec["selector"]["matchLabels"]
    assert all(spec["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
    (spread,) = spec["template"]["spec"]["topologySpreadConstraints"]
    assert spread["labelSelector"] == {"matchLabels": sel} and spread["topologyKey"] == "kubernetes.io/hostname"
    assert pdb["spec"] == {"selector": {"matchLabels": sel}, "minAvailable": 1}
    assert pdb["metadata"]["namespace"] == dep["metadata"]["namespace"] == "lscloud"


def test_the_relay_reaches_only_nats_the_collector_and_dns():
    objs = render()
    pol, dep = objs["NetworkPolicy"], objs["Deployment"]
    assert pol["metadata"]["namespace"] == dep["metadata"]["namespace"]
    assert pol["spec"]["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    peers = egress_peers(pol)
    assert peers == {("lscloud-data", '{"app.kubernetes.io/name": "nats"}'): {4222},
                     ("lscloud-telemetry", '{"app.kubernetes.io/name": "otel-collector"}'): {4317, 4318},
                     ("lscloud-telemetry", '{"app.kubernetes.io/name": "otel-collector-metrics"}'): {4317, 4318},
                     ("kube-system", '{"k8s-app": "kube-dns"}'): {53}}


def test_relay_objects_validate_against_kubernetes_schemas():
    objs = dv.render_all(ENDPOINTS, image=IMAGE)
    assert [o["kind"] for o in objs] == ["ServiceAccount", "NetworkPolicy", "Deployment", "PodDisruptionBudget"]
    assert {o["metadata"]["name"] for o in objs} == {dv.NAME}
    for o in objs:
        kubernetes_validate.validate(o, K8S_VERSION, strict=True)


def test_the_component_creates_every_rendered_object():
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="lscloud", stack="unit", preview=False)
    created = {}

    @pulumi.runtime.test
    def run():
        relay = dv.DevicesRelay("lscloud-devices-relay", ENDPOINTS, image=IMAGE)
        created["objects"] = relay.objects
        created["keys"] = sorted(relay.resources)
        return pulumi.Output.from_input(True)

    run()
    component = [r for r in mocks.resources if r.typ == "lscloud:index:DevicesRelay"]
    assert [r.name for r in component] == ["lscloud-devices-relay"]
    sent = [normalize(r.inputs) for r in mocks.resources if r.typ.startswith("kubernetes:")]
    assert sorted(o["kind"] for o in sent) == ["Deployment", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"]
    assert created["keys"] == sorted(f"{o['kind']}/{dv.NAME}" for o in created["objects"])
    by_kind = {o["kind"]: o for o in sent}
    for obj in created["objects"]:  # what Pulumi sends is what was rendered
        assert by_kind[obj["kind"]]["metadata"]["name"] == obj["metadata"]["name"]
        assert by_kind[obj["kind"]]["metadata"]["namespace"] == obj["metadata"]["namespace"]
    assert by_kind["Deployment"]["spec"] == normalize(render()["Deployment"]["spec"])


def test_a_reading_is_remembered_longer_than_the_devices_stream_keeps_it():
    """border keeps a device reading's record READING_KEPT_S (it held plate numbers for good before):
    longer than the relay may bring the same reading again under a new envelope."""
    from functions.border.function.models import READING_KEPT_S

    from infra_support import stack_config

    from components.settings import NatsSettings, duration_ns

    for stack in ("dev", "prod"):
        nats = json.loads(stack_config(stack).get("lscloud:nats", "{}"))
        age = nats.get("devicesMaxAge", NatsSettings().devicesMaxAge)
        assert READING_KEPT_S > duration_ns(age) / 1e9, stack
