"""Knative: Serving (Kourier ingress, TLS through cert-manager) and Eventing on NATS JetStream.

- installs the release manifests of the configured versions (``knative.install``; off when the
  cluster's Knative is managed elsewhere);
- configures Serving: the domain, TLS on the external domain with HTTP redirected to HTTPS,
  secure pod defaults, requests/limits for the queue-proxy sidecar (so every container in a
  function pod has limits);
- configures Eventing: the NATS JetStream channel (eventing-natss) as the brokers' channel, with
  R3 streams, pointing at the bus;
- creates the brokers the functions subscribe to and the dead-letter channel their Triggers use
  (a JetStream-backed channel, so dead letters are kept and can be inspected with ``nats``).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml

from . import k8s as kx
from .settings import KnativeSettings

CHANNEL_API = "messaging.knative.dev/v1alpha1"
CHANNEL_KIND = "NatsJetStreamChannel"
DEAD_LETTER = "lscloud-dead-letter"
BROKER_CONFIG = "lscloud-broker-channel"


def release_urls(s: KnativeSettings) -> list[str]:
    serving = f"https://github.com/knative/serving/releases/download/knative-v{s.servingVersion}"
    eventing = f"https://github.com/knative/eventing/releases/download/knative-v{s.eventingVersion}"
    urls = [
        f"{serving}/serving-crds.yaml",
        f"{serving}/serving-core.yaml",
        f"https://github.com/knative/net-kourier/releases/download/knative-v{s.kourierVersion}/kourier.yaml",
        f"{eventing}/eventing-crds.yaml",
        f"{eventing}/eventing-core.yaml",
        f"{eventing}/mt-channel-broker.yaml",
        f"https://github.com/knative-extensions/eventing-natss/releases/download/knative-v{s.natssVersion}/eventing-jsm.yaml",
    ]
    if s.clusterIssuer:
        urls.append(f"https://github.com/knative/net-certmanager/releases/download/knative-v{s.certManagerVersion}/net-certmanager.yaml")
    return urls


def channel_spec(stream_replicas: int) -> dict:
    return {"stream": {"config": {"replicas": stream_replicas}}}


def channel_template(stream_replicas: int) -> str:
    return yaml.safe_dump({"apiVersion": CHANNEL_API, "kind": CHANNEL_KIND, "spec": channel_spec(stream_replicas)},
                          sort_keys=False)


def render_config_patches(s: KnativeSettings, domain: str, nats_url: str, stream_replicas: int) -> list[dict]:
    """Data merged into the ConfigMaps Knative installs (server-side apply patches)."""
    network = {"ingress-class": "kourier.ingress.networking.knative.dev"}
    if s.clusterIssuer:
        network.update({"external-domain-tls": "Enabled", "http-protocol": "Redirected"})
    patches = [
        ("knative-serving", "config-domain", {domain: ""}),
        ("knative-serving", "config-network", network),
        ("knative-serving", "config-features", {"secure-pod-defaults": "enabled"}),
        ("knative-serving", "config-deployment", {
            "queue-sidecar-cpu-request": "25m", "queue-sidecar-cpu-limit": "500m",
            "queue-sidecar-memory-request": "50Mi", "queue-sidecar-memory-limit": "200Mi"}),
        ("knative-eventing", "config-nats", {"eventing-nats": nats_config(nats_url)}),
        ("knative-eventing", "config-br-default-channel", {"channel-template-spec": channel_template(stream_replicas)}),
    ]
    if s.clusterIssuer:
        patches.append(("knative-serving", "config-certmanager",
                        {"issuerRef": yaml.safe_dump({"kind": "ClusterIssuer", "name": s.clusterIssuer}, sort_keys=False)}))
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}
            for ns, name, data in patches]


def nats_config(nats_url: str) -> str:
    """eventing-natss's connection settings (the ``eventing-nats`` key of ``config-nats``)."""
    return yaml.safe_dump({
        "url": nats_url,
        "connOpts": {"retryOnFailedConnect": True, "maxReconnects": -1, "reconnectWaitMilliseconds": 2000},
    }, sort_keys=False)


def dead_letter_ref() -> dict:
    return {"apiVersion": CHANNEL_API, "kind": CHANNEL_KIND, "name": DEAD_LETTER}


def render_eventing(namespace: str, brokers: Iterable[str], stream_replicas: int, retry: int) -> list[dict]:
    """The functions' namespace side: dead-letter channel, broker channel config, brokers."""
    lbl = kx.labels("eventing", "eventing")
    objs: list[dict] = [
        {"apiVersion": CHANNEL_API, "kind": CHANNEL_KIND,
         "metadata": {"name": DEAD_LETTER, "namespace": namespace, "labels": lbl},
         "spec": channel_spec(stream_replicas)},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": BROKER_CONFIG, "namespace": namespace, "labels": lbl},
         "data": {"channel-template-spec": channel_template(stream_replicas)}},
    ]
    for broker in sorted(set(brokers)):
        objs.append({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
            "metadata": {"name": broker, "namespace": namespace, "labels": lbl,
                         "annotations": {"eventing.knative.dev/broker.class": "MTChannelBasedBroker",
                                         "pulumi.com/waitFor": "condition=Ready"}},
            "spec": {"config": {"apiVersion": "v1", "kind": "ConfigMap", "name": BROKER_CONFIG, "namespace": namespace},
                     "delivery": {"retry": retry, "backoffPolicy": "exponential", "backoffDelay": "PT0.5S",
                                  "deadLetterSink": {"ref": {**dead_letter_ref(), "namespace": namespace}}}},
        })
    return objs


class Knative(pulumi.ComponentResource):
    """Knative Serving and Eventing for Lạng Sơn Cloud: install, configuration, brokers, dead letters."""

    def __init__(self, name: str, settings: KnativeSettings, *, domain: str, namespace: str, nats_url: pulumi.Input[str],
                 stream_replicas: int, brokers: Sequence[str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:Knative", name, None, opts)
        deps: list[pulumi.Resource] = []
        if settings.install:
            deps.append(k8s.yaml.v2.ConfigGroup(f"{name}-release", files=release_urls(settings),
                                                opts=pulumi.ResourceOptions(parent=self)))
        after = pulumi.ResourceOptions(parent=self, depends_on=deps)
        self.patches = render_config_patches(settings, domain, "", stream_replicas)
        for patch in self.patches:
            data = dict(patch["data"])
            if patch["metadata"]["name"] == "config-nats":
                data["eventing-nats"] = pulumi.Output.from_input(nats_url).apply(nats_config)
            k8s.core.v1.ConfigMapPatch(f"{name}-{patch['metadata']['namespace']}-{patch['metadata']['name']}",
                                       metadata={**patch["metadata"],
                                                 "annotations": {"pulumi.com/patchForce": "true"}},
                                       data=data, opts=after)
        self.objects = render_eventing(namespace, ["default", *brokers], stream_replicas, settings.deliveryRetry)
        self.ready: list[pulumi.Resource] = list(deps)
        for obj in self.objects:
            self.ready.append(kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj, after))
        self.dead_letter_sink = dead_letter_ref()
        self.register_outputs({"brokers": sorted({"default", *brokers})})
