"""The event bridge: JetStream stream → Knative broker, one per broker (``python -m lscloud.bridge``).

Functions publish to the JetStream stream; Triggers deliver from a Broker. Each broker gets a
Deployment running :mod:`lscloud.bridge` (the local cloud's dispatcher with the broker's ingress as
its one endpoint) and a **SinkBinding** (``sources.knative.dev/v1``) that points it at the broker:
Knative resolves the broker's ingress URL and injects it as ``K_SINK`` — a Knative custom source.
It forwards the union of the event types the func.yaml subscriptions on that broker ask for
(``LSCLOUD_BRIDGE_TYPES``); the broker's Triggers then fan them out to the functions.

The replicas share one durable JetStream consumer (``bridge-<broker>``): each event is forwarded
once, by whichever replica pulled it; a PDB keeps one through node drains. The NetworkPolicy lets
it reach only NATS, the broker ingress, the collector and DNS; nothing may connect to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import pulumi

from lscloud.manifest import Manifest

from . import k8s as kx
from . import natsauth
from . import tls as tlsc
from .function import PlatformEndpoints
from .settings import BridgeSettings

NAME = "event-bridge"
COMPONENT = "event-bridge"
CLIENT_CERT = "nats-bridge"  # the NATS user "bridge": read the stream, dead-letter to lscloud-dlq.bridge.>
CONTAINER_PORT = 8080  # lscloud.bridge's health endpoints
COMMAND = ["python", "-m", "lscloud.bridge"]
# the multi-tenant broker's ingress pods (mt-channel-broker) and their ports (http, https)
BROKER_INGRESS_NAMESPACE = "knative-eventing"
BROKER_INGRESS_LABELS = {"eventing.knative.dev/brokerRole": "ingress"}
BROKER_INGRESS_PORTS = (8080, 8443)


def routes(manifests: Iterable[Manifest], brokers: Iterable[str] = ("default",)) -> dict[str, tuple[str, ...]]:
    """Broker -> the sorted event types its Triggers want (every broker of ``brokers`` included)."""
    out: dict[str, set[str]] = {b: set() for b in brokers}
    for m in manifests:
        for sub in m.subscriptions:
            out.setdefault(sub.source, set()).add(sub.type)
    return {b: tuple(sorted(types)) for b, types in sorted(out.items())}


def name_for(broker: str) -> str:
    return kx.dns_name(NAME, broker)


@dataclass(frozen=True)
class BridgeEndpoints:
    """Where the bridge's Deployment reaches (NATS, the collector) and what it is told."""

    namespace: str
    nats_url: str
    stream: str
    otlp_endpoint: str
    jwt_issuer: str
    jwt_audience: str
    jwt_jwks_url: str = ""
    jwt_secret: str = "lscloud-jwt"
    pseudonym_secret: str = "lscloud-pseudonym"
    data_namespace: str = "lscloud-data"
    telemetry_namespace: str = "lscloud-telemetry"
    otlp_metrics_endpoint: str = ""

    @classmethod
    def from_platform(cls, p: PlatformEndpoints) -> "BridgeEndpoints":
        return cls(namespace=p.namespace, nats_url=p.nats_url, stream=p.stream, otlp_endpoint=p.otlp_endpoint,
                   jwt_issuer=p.jwt_issuer, jwt_audience=p.jwt_audience, jwt_jwks_url=p.jwt_jwks_url,
                   jwt_secret=p.jwt_secret, pseudonym_secret=p.pseudonym_secret, data_namespace=p.data_namespace,
                   telemetry_namespace=p.telemetry_namespace, otlp_metrics_endpoint=p.otlp_metrics_endpoint)


def client_cert(p: BridgeEndpoints) -> tlsc.ClientCert:
    user = next(u for u in natsauth.platform_users(p.stream) if u.name == "bridge")
    return tlsc.ClientCert(CLIENT_CERT, p.namespace, user.email)


def render_env(broker: str, types: Sequence[str], p: BridgeEndpoints, s: BridgeSettings) -> list[dict]:
    """The cluster settings a function gets (minus its bucket: the bridge never touches S3), plus
    what to forward. ``K_SINK`` is not here: the SinkBinding injects it."""
    env = [
        {"name": "LSCLOUD_ENV", "value": "cluster"},
        {"name": "LSCLOUD_NATS_URL", "value": p.nats_url},
        {"name": "LSCLOUD_STREAM", "value": p.stream},
        {"name": "LSCLOUD_JWT_ISSUER", "value": p.jwt_issuer},
        {"name": "LSCLOUD_JWT_AUDIENCE", "value": p.jwt_audience},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": p.otlp_endpoint},
        {"name": "OTEL_SERVICE_NAME", "value": "bridge"},
        {"name": "LSCLOUD_BRIDGE_BROKER", "value": broker},
        {"name": "LSCLOUD_BRIDGE_TYPES", "value": ",".join(types)},
        {"name": "LSCLOUD_BRIDGE_MAX_DELIVERIES", "value": str(s.maxDeliveries)},
        {"name": "LSCLOUD_BRIDGE_TIMEOUT_S", "value": str(s.timeoutSeconds)},
        {"name": "PORT", "value": str(CONTAINER_PORT)},
        # LSCLOUD_ENV=cluster needs the pseudonym key too (the runtime's settings check it at start)
        {"name": "LSCLOUD_PSEUDONYM_KEY", "valueFrom": {"secretKeyRef": {"name": p.pseudonym_secret, "key": "key"}}},
        *tlsc.client_env(s3=False),
    ]
    if p.otlp_metrics_endpoint:
        env.append({"name": "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "value": p.otlp_metrics_endpoint})
    # LSCLOUD_ENV=cluster needs a token key (the runtime's settings check it at start)
    if p.jwt_jwks_url:
        env.append({"name": "LSCLOUD_JWT_JWKS_URL", "value": p.jwt_jwks_url})
    else:
        env.append({"name": "LSCLOUD_JWT_PUBLIC_KEY",
                    "valueFrom": {"secretKeyRef": {"name": p.jwt_secret, "key": "public-key"}}})
    return env


def render_deployment(broker: str, types: Sequence[str], p: BridgeEndpoints, s: BridgeSettings, *, image: str) -> dict:
    name = name_for(broker)
    lbl = kx.labels(name, COMPONENT, **{"lscloud.langson.gov.vn/broker": broker})
    sel = kx.selector(name)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": p.namespace, "labels": lbl},
        "spec": {
            "replicas": s.replicas,
            "selector": {"matchLabels": sel},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": lbl},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # SIGTERM: in-flight deliveries finish and are acked (bounded by the timeout)
                    "terminationGracePeriodSeconds": int(s.timeoutSeconds) + 20,
                    "topologySpreadConstraints": kx.spread_over_nodes(sel, hard=False),
                    "containers": [{
                        "name": "bridge",
                        "image": image,
                        "command": list(COMMAND),
                        "ports": [{"name": "health", "containerPort": CONTAINER_PORT}],
                        "env": render_env(broker, types, p, s),
                        "volumeMounts": [tlsc.client_mount()],
                        "resources": {"requests": dict(s.requests), "limits": dict(s.limits)},
                        **kx.health_probes(CONTAINER_PORT),
                        "securityContext": kx.restricted_security_context(),
                    }],
                    "volumes": [tlsc.client_volume(CLIENT_CERT)],
                },
            },
        },
    }


def render_sink_binding(broker: str, p: BridgeEndpoints) -> dict:
    """Knative resolves the broker's address and injects it into the Deployment as K_SINK."""
    name = name_for(broker)
    return {
        "apiVersion": "sources.knative.dev/v1", "kind": "SinkBinding",
        "metadata": {"name": name, "namespace": p.namespace, "labels": kx.labels(name, COMPONENT)},
        "spec": {
            "subject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "namespace": p.namespace},
            "sink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": broker,
                             "namespace": p.namespace}},
        },
    }


def render_network_policy(broker: str, p: BridgeEndpoints) -> dict:
    """No ingress except the kubelet's probes (not subject to policies); egress to NATS, the
    broker ingress, the collector and DNS only."""
    return kx.egress_only_policy(name_for(broker), p.namespace, [
        kx.egress_to(p.data_namespace, kx.selector("nats"), 4222),
        kx.egress_to(BROKER_INGRESS_NAMESPACE, BROKER_INGRESS_LABELS, *BROKER_INGRESS_PORTS),
        kx.egress_to(p.telemetry_namespace, kx.selector("otel-collector"), 4317, 4318),
        kx.egress_to(p.telemetry_namespace, kx.selector("otel-collector-metrics"), 4317, 4318),
        kx.dns_egress_rule()])


def render_service_account(broker: str, p: BridgeEndpoints) -> dict:
    return kx.service_account(name_for(broker), p.namespace, COMPONENT)


def render_all(broker: str, types: Sequence[str], p: BridgeEndpoints, s: BridgeSettings, *, image: str) -> list[dict]:
    """Every object of the bridge to ``broker``, in creation order (the SinkBinding before the
    Deployment, so the webhook can inject K_SINK into its first pods)."""
    objs = [render_service_account(broker, p), render_network_policy(broker, p), render_sink_binding(broker, p),
            render_deployment(broker, types, p, s, image=image)]
    if s.replicas > 1:
        objs.append(kx.pdb(name_for(broker), p.namespace, kx.selector(name_for(broker)), min_available=1))
    return objs


class EventBridge(pulumi.ComponentResource):
    """JetStream → the broker ``broker``: ServiceAccount, NetworkPolicy, SinkBinding, Deployment, PDB."""

    def __init__(self, name: str, broker: str, types: Sequence[str], endpoints: BridgeEndpoints,
                 settings: BridgeSettings, *, image: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:EventBridge", name, None, opts)
        self.objects = render_all(broker, types, endpoints, settings, image=image)
        self.resources: dict[str, pulumi.CustomResource] = {}
        binding = None
        for obj in self.objects:
            deps = [binding] if obj["kind"] == "Deployment" and binding is not None else []
            res = kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj,
                            pulumi.ResourceOptions(parent=self, depends_on=deps))
            self.resources[f"{obj['kind']}/{obj['metadata']['name']}"] = res
            if obj["kind"] == "SinkBinding":
                binding = res
        self.types = list(types)
        self.register_outputs({"broker": broker, "types": self.types})
