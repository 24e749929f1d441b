"""The devices relay in the cluster: a Deployment running ``python -m lscloud.devices``.

Field devices publish over MQTT (nats-server's own listener) and the ``<stream>_DEVICES`` JetStream
stream keeps what they send; the relay (:class:`lscloud.devices.Relay`) binds its durable consumer
``devices-relay`` on that stream and republishes each message as the CloudEvent
``vn.langson.<domain>.device.message.received.v1`` on the platform stream, where the bridge
forwards it to the broker like any domain event. In the cluster the relay never creates a stream
(``main()`` builds ``Relay(..., create_streams=False)``): the streams are the setup Job's, and the
relay's NATS user (:func:`.natsauth.relay_user`) may not create or change one.

The replicas share the one durable consumer: each device message is relayed once, by whichever
replica pulled it; a PDB keeps one through node drains. A replica that finds the consumer deleted
makes it again from just after its ack floor (asked every 10 s), not from the stream's first
message: the stream keeps ``devicesMaxAge`` of readings, which would otherwise all be relayed again. The pod needs nothing but NATS (its client
certificate maps to the NATS user ``devices-relay``): no service account token, no S3. Its only
port is its probes' (:mod:`lscloud.health`); its NetworkPolicy allows no ingress (the kubelet's
probes are not subject to policies) and egress to NATS, the collector and DNS only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from . import k8s as kx
from . import natsauth
from . import tls as tlsc
from .function import PlatformEndpoints

NAME = "devices-relay"
COMPONENT = "devices-relay"
COMMAND = ["python", "-m", "lscloud.devices"]
REPLICAS = 2
REQUESTS = {"cpu": "20m", "memory": "96Mi"}
LIMITS = {"cpu": "500m", "memory": "256Mi"}
NATS_PORT = 4222
CONTAINER_PORT = 8080  # lscloud.health's probes
OTLP_PORTS = (4317, 4318)
# the NATS user "devices-relay": its consumer on <stream>_DEVICES, and publishes the device events only
CLIENT_CERT = "nats-devices-relay"
# SIGTERM ends the relay's waiting pull at once (lscloud.pulls); a publish in flight waits at most
# 10 s, then the message is acked or comes again to another replica
TERMINATION_GRACE_S = 20


@dataclass(frozen=True)
class RelayEndpoints:
    """Where the relay's Deployment reaches (NATS, the collector) and what it is told."""

    namespace: str
    nats_url: str
    stream: str
    otlp_endpoint: str
    data_namespace: str = "lscloud-data"
    telemetry_namespace: str = "lscloud-telemetry"
    otlp_metrics_endpoint: str = ""

    @classmethod
    def from_platform(cls, p: PlatformEndpoints) -> RelayEndpoints:
        return cls(namespace=p.namespace, nats_url=p.nats_url, stream=p.stream, otlp_endpoint=p.otlp_endpoint,
                   data_namespace=p.data_namespace, telemetry_namespace=p.telemetry_namespace,
                   otlp_metrics_endpoint=p.otlp_metrics_endpoint)


def client_cert(p: RelayEndpoints) -> tlsc.ClientCert:
    # the user's e-mail is its name's: the domains (what it may publish) do not change the certificate
    user = natsauth.relay_user(p.stream, ())
    return tlsc.ClientCert(CLIENT_CERT, p.namespace, user.email)


def render_env(p: RelayEndpoints) -> list[dict]:
    # no LSCLOUD_ENV=cluster: that asks for a token key (LSCLOUD_JWT_PUBLIC_KEY or _JWKS_URL) and the
    # pseudonym key, and the relay verifies no token and pseudonymizes nothing; the local defaults it
    # would otherwise change (S3, the events' issuer and senders) are settings the relay never reads
    env = [
        {"name": "LSCLOUD_NATS_URL", "value": p.nats_url},
        {"name": "LSCLOUD_STREAM", "value": p.stream},
        {"name": "OTEL_SERVICE_NAME", "value": "devices-relay"},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": p.otlp_endpoint},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PORT", "value": str(CONTAINER_PORT)},
        *tlsc.client_env(s3=False),
    ]
    if p.otlp_metrics_endpoint:
        env.append({"name": "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "value": p.otlp_metrics_endpoint})
    return env


def render_deployment(p: RelayEndpoints, *, image: str) -> dict:
    lbl = kx.labels(NAME, COMPONENT)
    sel = kx.selector(NAME)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": p.namespace, "labels": lbl},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": sel},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": lbl},
                "spec": {
                    "serviceAccountName": NAME,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
                    "topologySpreadConstraints": kx.spread_over_nodes(sel, hard=False),
                    # an error that ends Relay.run (NATS unreachable at start, the consumer refused)
                    # ends the process and the kubelet starts it again; a loop that stops coming
                    # round fails liveness (lscloud.devices.Relay.alive); ready = bound to the stream
                    "containers": [{
                        "name": "relay",
                        "image": image,
                        "command": list(COMMAND),
                        "ports": [{"name": "health", "containerPort": CONTAINER_PORT}],
                        "env": render_env(p),
                        "volumeMounts": [tlsc.client_mount()],
                        "resources": {"requests": dict(REQUESTS), "limits": dict(LIMITS)},
                        **kx.health_probes(CONTAINER_PORT),
                        "securityContext": kx.restricted_security_context(),
                    }],
                    "volumes": [tlsc.client_volume(CLIENT_CERT)],
                },
            },
        },
    }


def render_network_policy(p: RelayEndpoints) -> dict:
    """No ingress; egress to NATS, the collector and DNS only."""
    return kx.egress_only_policy(NAME, p.namespace, [
        kx.egress_to(p.data_namespace, kx.selector("nats"), NATS_PORT),
        kx.egress_to(p.telemetry_namespace, kx.selector("otel-collector"), *OTLP_PORTS),
        kx.egress_to(p.telemetry_namespace, kx.selector("otel-collector-metrics"), *OTLP_PORTS),
        kx.dns_egress_rule()])


def render_service_account(p: RelayEndpoints) -> dict:
    return kx.service_account(NAME, p.namespace, COMPONENT)


def render_pdb(p: RelayEndpoints) -> dict:
    return kx.pdb(NAME, p.namespace, kx.selector(NAME), min_available=1)


def render_all(p: RelayEndpoints, *, image: str) -> list[dict]:
    """Every object of the relay, in creation order."""
    return [render_service_account(p), render_network_policy(p), render_deployment(p, image=image), render_pdb(p)]


class DevicesRelay(pulumi.ComponentResource):
    """The relay Deployment with its ServiceAccount, NetworkPolicy and PDB."""

    def __init__(self, name: str, endpoints: RelayEndpoints, *, image: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:DevicesRelay", name, None, opts)
        self.objects = render_all(endpoints, image=image)
        self.resources: dict[str, pulumi.CustomResource] = {}
        for obj in self.objects:
            self.resources[f"{obj['kind']}/{obj['metadata']['name']}"] = kx.create(
                f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj, pulumi.ResourceOptions(parent=self))
        self.register_outputs({"replicas": REPLICAS})
