"""Knative: Serving (Kourier ingress, TLS through cert-manager) and Eventing on NATS JetStream.

- installs the release manifests of the configured versions (``knative.install``; off when the
  cluster's Knative is managed elsewhere);
- configures Serving: the domain, TLS on the external domain with HTTP redirected to HTTPS,
  secure pod defaults, requests/limits for the queue-proxy sidecar (so every container in a
  function pod has limits); Kourier appends the caller's address to ``X-Forwarded-For``, read from
  the load balancer's PROXY header with ``knative.proxyProtocol`` (Octavia's amphora proxies the
  connection: without it every caller has the amphora's address);
- configures Eventing: the NATS JetStream channel (eventing-natss) as the brokers' channel, with
  R3 streams bounded in bytes and age (``nats.channelMax*``: otherwise eventing-natss keeps every
  event forever in the store the functions' stream shares), reaching the bus over TLS as the NATS
  user ``eventing`` (its client certificate ``nats-eventing``);
- turns on Eventing's sender identity (``authentication-oidc``): brokers and channels present an
  OIDC token whose audience is the subscriber, which the functions verify against the API
  server's keys; the ClusterRoleBinding ``lscloud-oidc-discovery`` lets them read those keys
  (``/openid/v1/jwks`` is public key material: bound to ``system:unauthenticated``, as Kubernetes
  documents for service-account issuer discovery);
- points Serving's and Eventing's tracing (``config-observability``) at the collector, so a trace
  continues through broker → channel → trigger into the function;
- creates the brokers the functions subscribe to and the dead-letter channel behind them: a
  Trigger's dead letters go to its function's ``/events/dead-letters`` (:mod:`.function`), and what
  a broker cannot deliver at all (that sink failing too) to this JetStream-backed channel, bounded
  like the others. The channels' streams live in NATS account ``KNATIVE`` (:mod:`.natsauth`):
  inspect them with ``nats`` as the user ``eventing``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml

from . import k8s as kx
from . import natsauth, releases
from . import tls as tlsc
from .settings import KnativeSettings, NatsSettings, parse_bytes

CHANNEL_API = "messaging.knative.dev/v1alpha1"
CHANNEL_KIND = "NatsJetStreamChannel"
DEAD_LETTER = "lscloud-dead-letter"
BROKER_CONFIG = "lscloud-broker-channel"
EVENTING_NAMESPACE = "knative-eventing"
NATS_CLIENT_CERT = "nats-eventing"  # the NATS user "eventing" (components/natsauth.py)
OIDC_DISCOVERY = "lscloud-oidc-discovery"


def release_urls(s: KnativeSettings) -> list[str]:
    """The manifests to apply, in order; only assets :mod:`.releases` knows to be published (no
    net-certmanager: Serving's own controller talks to cert-manager since 1.15)."""
    serving = releases.find(releases.SERVING, s.servingVersion)
    eventing = releases.find(releases.EVENTING, s.eventingVersion)
    return [
        serving.url("serving-crds.yaml"),
        serving.url("serving-core.yaml"),
        releases.find(releases.KOURIER, s.kourierVersion).url("kourier.yaml"),
        eventing.url("eventing-crds.yaml"),
        eventing.url("eventing-core.yaml"),
        eventing.url("mt-channel-broker.yaml"),
        releases.find(releases.NATSS, s.natssVersion).url("eventing-jsm.yaml"),
    ]


def stream_limits(n: NatsSettings, *, dead_letter: bool = False) -> dict:
    """A channel stream's bounds (eventing-natss's ``spec.stream.config``): age and bytes, the oldest
    events dropped first, as many replicas as the platform's streams."""
    max_bytes, max_age, key = ((n.deadLetterChannelMaxBytes, n.deadLetterChannelMaxAge, "nats.deadLetterChannelMaxBytes")
                               if dead_letter else (n.channelMaxBytes, n.channelMaxAge, "nats.channelMaxBytes"))
    return {"replicas": n.streamReplicas, "retention": "Limits", "storage": "File", "discard": "Old",
            "maxAge": max_age, "maxBytes": parse_bytes(key, max_bytes)}


def channel_spec(n: NatsSettings, *, dead_letter: bool = False) -> dict:
    return {"stream": {"config": stream_limits(n, dead_letter=dead_letter)}}


def channel_template(n: NatsSettings) -> str:
    return yaml.safe_dump({"apiVersion": CHANNEL_API, "kind": CHANNEL_KIND, "spec": channel_spec(n)},
                          sort_keys=False)


def url_template(namespace: str, domain: str, *, tls: bool) -> str:
    """Where callers reach a function (``{name}``), as Serving publishes it: its default domain
    template ``{{.Name}}.{{.Namespace}}.{{.Domain}}``, over TLS when the external domain has it
    (``clusterIssuer`` set: ``external-domain-tls``)."""
    return f"{'https' if tls else 'http'}://{{name}}.{namespace}.{domain}"


ACCESS_LOG_TEMPLATE = ('[%START_TIME%] "%REQ(:METHOD)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
                       '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%REQ(:AUTHORITY)%" "%REQ(X-REQUEST-ID)%" '
                       '"%REQ(TRACEPARENT)%" %UPSTREAM_CLUSTER% %DOWNSTREAM_REMOTE_ADDRESS%\n')
"""Kourier's access log line (Envoy's format; it logs every request by default): Envoy's own default
without the path, the query and the user agent. A path can be a credential (a download link's
token) or name a person (a plate, a report), and the functions' spans already record every path
with those redacted (lscloud.redaction); the trace id here leads to them."""


def render_config_patches(s: KnativeSettings, domain: str, nats_url: str, nats: NatsSettings, *,
                          traces_endpoint: str = "", sampling_rate: float = 1.0) -> list[dict]:
    """Data merged into the ConfigMaps Knative installs (server-side apply patches)."""
    network = {"ingress-class": "kourier.ingress.networking.knative.dev"}
    if s.clusterIssuer:
        network.update({"external-domain-tls": "Enabled", "http-protocol": "Redirected"})
    patches = [
        ("knative-serving", "config-domain", {domain: ""}),
        ("knative-serving", "config-network", network),
        ("knative-serving", "config-kourier", {"enable-service-access-logging": "true",
                                               "service-access-log-template": ACCESS_LOG_TEMPLATE,
                                               **kourier_client_address(s)}),
        ("knative-serving", "config-features", {"secure-pod-defaults": "enabled"}),
        ("knative-serving", "config-deployment", {
            "queue-sidecar-cpu-request": "25m", "queue-sidecar-cpu-limit": "500m",
            "queue-sidecar-memory-request": "50Mi", "queue-sidecar-memory-limit": "200Mi"}),
        ("knative-eventing", "config-nats", {"eventing-nats": nats_config(nats_url)}),
        ("knative-eventing", "config-br-default-channel", {"channel-template-spec": channel_template(nats)}),
        # sender identity: every delivery carries an OIDC token for its subscriber's audience; and
        # Triggers may say how long a Retry-After is honoured (retryAfterMax: refused while this is off)
        ("knative-eventing", "config-features", {"authentication-oidc": "enabled", "delivery-retryafter": "enabled"}),
    ]
    if traces_endpoint:
        tracing = {"tracing-protocol": "http/protobuf", "tracing-endpoint": traces_endpoint,
                   "tracing-sampling-rate": str(sampling_rate)}
        patches += [("knative-serving", "config-observability", tracing),
                    ("knative-eventing", "config-observability", tracing)]
    if s.clusterIssuer:
        patches.append(("knative-serving", "config-certmanager",
                        {"issuerRef": yaml.safe_dump({"kind": "ClusterIssuer", "name": s.clusterIssuer}, sort_keys=False)}))
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}
            for ns, name, data in patches]


INGRESS_SERVICE = "kourier"
"""Kourier's LoadBalancer Service (its release manifest's, in ``ingressNamespace``)."""
OCTAVIA_PROXY_PROTOCOL = "loadbalancer.openstack.org/proxy-protocol"
"""cloud-provider-openstack's Service annotation: "true" makes the Octavia pool's protocol PROXY
(docs/openstack-cloud-controller-manager/expose-applications-using-loadbalancer-type-service.md)."""


def kourier_client_address(s: KnativeSettings) -> dict[str, str]:
    """How Kourier learns and passes on the caller's address (``config-kourier``, net-kourier's keys).

    ``use-remote-address``: Envoy appends the address it took the connection from to
    ``X-Forwarded-For`` (net-kourier's default, false, appends nothing and passes on whatever the
    caller wrote there: the functions then found only proxies' addresses, or one the caller chose).
    ``enable-proxy-protocol``: the external listeners (8080, 8443; not the internal one the functions
    call each other through, nor the probes') read the PROXY header the load balancer sends, so that
    address is the caller's, not the balancer's. Written either way: turning it off takes it off."""
    return {"use-remote-address": "true", "enable-proxy-protocol": "true" if s.proxyProtocol else "false"}


def ingress_service_patch(s: KnativeSettings) -> dict:
    """``externalTrafficPolicy: Local`` on Kourier's Service: with the default (``Cluster``) a node
    forwarding a request to another node's Kourier rewrites its source to the node's address. That
    keeps the caller's address only behind a balancer that forwards packets; an Octavia amphora
    proxies the connection (its own address is the source), so with ``knative.proxyProtocol`` the
    Service asks Octavia for a PROXY pool, which hands the caller's address to Kourier in a header
    (:func:`kourier_client_address`). The annotation is written either way, so turning it off does."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": INGRESS_SERVICE, "namespace": s.ingressNamespace,
                         "annotations": {OCTAVIA_PROXY_PROTOCOL: "true" if s.proxyProtocol else "false"}},
            "spec": {"externalTrafficPolicy": "Local"}}


def nats_config(nats_url: str) -> str:
    """eventing-natss's connection settings (the ``eventing-nats`` key of ``config-nats``): TLS, its
    client certificate (mTLS: NATS maps it to the user ``eventing``) and the internal CA."""
    return yaml.safe_dump({
        "url": nats_url,
        "connOpts": {"retryOnFailedConnect": True, "maxReconnects": -1, "reconnectWaitMilliseconds": 2000},
        "auth": {"tls": {"secret": {"name": NATS_CLIENT_CERT}}},
        "tls": {"secret": {"name": NATS_CLIENT_CERT}},
    }, sort_keys=False)


def certificates(tls_settings, stream: str) -> list[dict]:
    """eventing-natss's client certificate (the NATS user ``eventing``), in its own namespace."""
    user = next(u for u in natsauth.platform_users(stream) if u.name == "eventing")
    return [tlsc.render_client_cert(tlsc.ClientCert(NATS_CLIENT_CERT, EVENTING_NAMESPACE, user.email), tls_settings)]


def render_oidc_discovery() -> dict:
    """The API server's service-account keys (``/.well-known/openid-configuration``, ``/openid/v1/jwks``)
    readable without a token: the functions verify the Triggers' tokens with them."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": OIDC_DISCOVERY, "labels": kx.labels(OIDC_DISCOVERY, "eventing")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "system:service-account-issuer-discovery"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}]}


def dead_letter_ref() -> dict:
    return {"apiVersion": CHANNEL_API, "kind": CHANNEL_KIND, "name": DEAD_LETTER}


def render_eventing(namespace: str, brokers: Iterable[str], nats: NatsSettings, retry: int) -> list[dict]:
    """The functions' namespace side: dead-letter channel, broker channel config, brokers."""
    lbl = kx.labels("eventing", "eventing")
    objs: list[dict] = [
        {"apiVersion": CHANNEL_API, "kind": CHANNEL_KIND,
         "metadata": {"name": DEAD_LETTER, "namespace": namespace, "labels": lbl},
         "spec": channel_spec(nats, dead_letter=True)},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": BROKER_CONFIG, "namespace": namespace, "labels": lbl},
         "data": {"channel-template-spec": channel_template(nats)}},
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
                 nats: NatsSettings, brokers: Sequence[str], traces_endpoint: str = "", sampling_rate: float = 1.0,
                 tls=None, opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:Knative", name, None, opts)
        deps: list[pulumi.Resource] = []
        if settings.install:
            deps.append(k8s.yaml.v2.ConfigGroup(f"{name}-release", files=release_urls(settings),
                                                opts=pulumi.ResourceOptions(parent=self)))
        after = pulumi.ResourceOptions(parent=self, depends_on=deps)
        kx.create(f"{name}-{OIDC_DISCOVERY}", render_oidc_discovery(), pulumi.ResourceOptions(parent=self))
        if tls is not None:  # eventing-natss's client certificate, once its namespace exists
            for cert in certificates(tls, nats.stream):
                deps.append(kx.create(f"{name}-certificate-{cert['metadata']['name']}", cert, after))
        self.patches = render_config_patches(settings, domain, "", nats, traces_endpoint=traces_endpoint,
                                             sampling_rate=sampling_rate)
        for patch in self.patches:
            data = dict(patch["data"])
            if patch["metadata"]["name"] == "config-nats":
                data["eventing-nats"] = pulumi.Output.from_input(nats_url).apply(nats_config)
            k8s.core.v1.ConfigMapPatch(f"{name}-{patch['metadata']['namespace']}-{patch['metadata']['name']}",
                                       metadata={**patch["metadata"],
                                                 "annotations": {"pulumi.com/patchForce": "true"}},
                                       data=data, opts=after)
        if settings.install:
            service = ingress_service_patch(settings)
            k8s.core.v1.ServicePatch(f"{name}-ingress-service",
                                     metadata={**service["metadata"],
                                               "annotations": {**service["metadata"]["annotations"],
                                                               "pulumi.com/patchForce": "true"}},
                                     spec=service["spec"], opts=after)
        self.objects = render_eventing(namespace, ["default", *brokers], nats, settings.deliveryRetry)
        self.ready: list[pulumi.Resource] = list(deps)
        for obj in self.objects:
            self.ready.append(kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj, after))
        self.dead_letter_sink = dead_letter_ref()
        self.register_outputs({"brokers": sorted({"default", *brokers})})
