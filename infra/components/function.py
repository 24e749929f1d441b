"""One function: its Knative Service and Triggers rendered from ``functions/<name>/func.yaml``.

func.yaml is read with the local cloud's own parser (:mod:`lscloud.manifest`), so the
cluster and ``lscloud up`` agree on what a manifest means. The rendering functions return plain
dicts; :class:`Function` only creates them.

Environment of a function in the cluster:

- from the platform (these names are the platform's; a func.yaml may not set them):
  ``LSCLOUD_ENV=cluster``, ``LSCLOUD_S3_ENDPOINT``, ``LSCLOUD_BUCKET`` (the function's own bucket),
  ``LSCLOUD_NATS_URL``, ``LSCLOUD_STREAM``, ``LSCLOUD_JWT_ISSUER``/``_AUDIENCE``, ``LSCLOUD_JWT_JWKS_URL``
  (when configured), ``LSCLOUD_PSEUDONYM_KEY`` (from the ``lscloud-pseudonym`` Secret) and
  ``OTEL_EXPORTER_OTLP_ENDPOINT``; Knative sets ``K_SERVICE`` itself;
  who may deliver to ``/events`` (Knative Eventing's sender identity, ``authentication-oidc``):
  ``LSCLOUD_EVENTS_AUDIENCE`` (:func:`events_audience`, which the Triggers' subscribers carry too),
  ``LSCLOUD_EVENTS_JWKS_URL`` (the API server's service-account keys, verified with the cluster's
  CA ``kube-root-ca.crt``, ``LSCLOUD_EVENTS_JWKS_CA_FILE``) and ``LSCLOUD_EVENTS_SUBJECTS`` (the
  service accounts of the namespace, where each Trigger's OIDC identity lives);
  TLS to NATS and MinIO: the function's own client certificate ``nats-fn-<name>`` (NATS maps it
  to a user that may publish only ``lscloud.<name>.>``) and the internal CA (:mod:`.tls`);
  ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``: metrics go to the single metrics collector;
  ``LSCLOUD_CORS_ORIGINS``: the web pages that may call it from a browser (``lscloud:cors.origins``,
  the same for every function; unset when there are none);
- from func.yaml ``run.envs``: plain values as plain env, ``{{ secret:name:key }}`` as a
  ``secretKeyRef``, ``{{ configMap:name:key }}`` as a ``configMapKeyRef``. The secret name
  ``lscloud-s3`` means *this function's own object-store credentials* and is resolved to
  ``lscloud-s3-<function>`` (least privilege: the key only opens the function's bucket).
- a secret-looking variable (``*_SECRET*``, ``*PASSWORD*``, ``*TOKEN*``, ``*ACCESS_KEY``,
  ``LSCLOUD_PARTNER_KEYS`` …) with a plain value is refused: secrets only through secretKeyRef.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import pulumi

from lscloud.events import DEAD_LETTER_PATH, DELIVERY_PATH
from lscloud.manifest import Manifest, ManifestError, container_concurrency
from lscloud.delivery import UNREACHABLE_S
from lscloud.runonce import EVENT_LEASE_S

from . import k8s as kx
from . import natsauth
from . import tls as tlsc
from .settings import FunctionDefaults, FunctionOverride

# the func-python middleware's health endpoints and the port Knative gives the container
READINESS_PATH = "/health/readiness"
LIVENESS_PATH = "/health/liveness"
CONTAINER_PORT = 8080

# func.yaml's name for "this function's object-store credentials"
S3_SECRET = "lscloud-s3"

PLATFORM_ENV = frozenset({
    "LSCLOUD_ENV", "LSCLOUD_S3_ENDPOINT", "LSCLOUD_BUCKET", "LSCLOUD_NATS_URL", "LSCLOUD_STREAM",
    "LSCLOUD_JWT_ISSUER", "LSCLOUD_JWT_AUDIENCE", "LSCLOUD_JWT_JWKS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "LSCLOUD_PEER_URL_TEMPLATE", "LSCLOUD_PSEUDONYM_KEY", "LSCLOUD_EVENTS_AUDIENCE", "LSCLOUD_EVENTS_JWKS_URL",
    "LSCLOUD_EVENTS_SUBJECTS", "LSCLOUD_EVENTS_JWKS_CA_FILE", "LSCLOUD_EVENTS_ISSUER", "LSCLOUD_NATS_CA_FILE", "LSCLOUD_NATS_CERT_FILE",
    "LSCLOUD_TRUSTED_PROXIES", "LSCLOUD_CORS_ORIGINS",
    "LSCLOUD_NATS_KEY_FILE", "LSCLOUD_S3_CA_FILE", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "LSCLOUD_S3_OBJECT_LOCK",
    "K_SERVICE", "PORT",
})
# the API server's CA, which every namespace gets as this ConfigMap (it signs the JWKS endpoint)
KUBE_CA_CONFIGMAP = "kube-root-ca.crt"
KUBE_CA_MOUNT = "/var/run/lscloud/kube-ca"
SECRET_ENV_RE = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|ACCESS_KEY|PARTNER_KEYS|HMAC|CREDENTIAL")
_TEMPLATE_RE = re.compile(r"^\{\{\s*(secret|configMap|env):([^:}\s]+)(?::([^}\s]+))?\s*\}\}$")


class RenderError(ValueError):
    """A func.yaml asks for something the cluster deployment cannot do; names file and field."""


@dataclass(frozen=True)
class PlatformEndpoints:
    """What the platform gives every function (filled by __main__ from the other components)."""

    namespace: str
    s3_endpoint: str
    nats_url: str
    stream: str
    otlp_endpoint: str
    bucket_prefix: str
    jwt_issuer: str
    jwt_audience: str
    jwt_jwks_url: str = ""
    jwt_secret: str = "lscloud-jwt"  # holds key public-key when no JWKS URL is used
    pseudonym_secret: str = "lscloud-pseudonym"  # holds key "key": LSCLOUD_PSEUDONYM_KEY, the same everywhere
    data_namespace: str = "lscloud-data"
    telemetry_namespace: str = "lscloud-telemetry"
    ingress_namespaces: tuple[str, ...] = ("knative-serving", "kourier-system", "knative-eventing")
    knative_ingress_namespace: str = "kourier-system"  # where the gateway peers are reached through runs
    egress_cidrs: tuple[str, ...] = ()
    delivery_retry: int = 5
    # the keys of the tokens Knative Eventing presents at /events: the API server's service-account JWKS
    events_jwks_url: str = "https://kubernetes.default.svc/openid/v1/jwks"
    # the `iss` of those tokens: the API server's --service-account-issuer (KnativeSettings.eventsIssuer)
    events_issuer: str = "https://kubernetes.default.svc.cluster.local"
    # where the API server answers behind kubernetes.default.svc (the JWKS): egress on 443 and 6443
    api_server_cidrs: tuple[str, ...] = ()
    # the single collector that takes metrics (one path: no series exported twice), full OTLP URL
    otlp_metrics_endpoint: str = ""
    # where callers reach a function from outside ({name}): Knative's domain template through Kourier
    public_url_template: str = ""
    # the proxies' network (the pod CIDRs): LSCLOUD_TRUSTED_PROXIES (lscloud.ratelimit.client_address)
    trusted_proxies: tuple[str, ...] = ()
    # the web pages on other origins that may call from a browser (CorsSettings.origins): LSCLOUD_CORS_ORIGINS
    cors_origins: tuple[str, ...] = ()

    def public_url(self, function: str) -> str:
        return self.public_url_template.format(name=function)


def client_cert_secret(function: str) -> str:
    """The Secret holding a function's NATS client certificate and the internal CA."""
    return kx.dns_name("nats-fn", function)


def client_cert(function: str, p: PlatformEndpoints) -> tlsc.ClientCert:
    return tlsc.ClientCert(client_cert_secret(function), p.namespace, natsauth.function_user(function, p.stream).email)


def bucket_name(prefix: str, function: str) -> str:
    return kx.dns_name(prefix, function)


def credentials_secret(function: str) -> str:
    return kx.dns_name(S3_SECRET, function)


def service_account(function: str) -> str:
    return kx.dns_name("fn", function)


def events_audience(function: str, namespace: str) -> str:
    """The OIDC audience of a function's event deliveries, in Knative's ``<group>/<kind>/<namespace>/<name>``
    form. Knative Services do not announce one, so the Trigger's subscriber names it and the function
    expects it (``LSCLOUD_EVENTS_AUDIENCE``)."""
    return f"serving.knative.dev/service/{namespace}/{function}".lower()


def _env_from_manifest(m: Manifest) -> list[dict]:
    out = []
    for i, var in enumerate(m.envs):
        where = f"{m.path}: /run/envs/{i}"
        if var.name in PLATFORM_ENV:
            raise RenderError(f"{where}: {var.name} is set by the platform in the cluster; remove it from func.yaml")
        if var.value is not None:
            if SECRET_ENV_RE.search(var.name):
                raise RenderError(f"{where}: {var.name} looks secret but has a plain value; "
                                  "use '{{ secret:name:key }}'")
            out.append({"name": var.name, "value": var.value})
            continue
        match = _TEMPLATE_RE.match(var.template or "")
        if not match or not match.group(3) and match.group(1) != "env":
            raise RenderError(f"{where}: cannot render {var.template!r} (use '{{{{ secret:name:key }}}}' "
                              "or '{{ configMap:name:key }}')")
        kind, name, key = match.groups()
        if kind == "env":
            raise RenderError(f"{where}: '{{{{ env:{name} }}}}' reads the deployer's shell; in the cluster "
                              "use a secret or configMap reference instead")
        if kind == "secret":
            if name == S3_SECRET:
                name = credentials_secret(m.name)
            out.append({"name": var.name, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}})
        else:
            out.append({"name": var.name, "valueFrom": {"configMapKeyRef": {"name": name, "key": key}}})
    return out


def render_env(m: Manifest, p: PlatformEndpoints, override: FunctionOverride | None = None) -> list[dict]:
    """The container env: the platform's settings, then the func.yaml's own entries. A function whose
    bucket is under object lock (``override.retention``) is told its mode, so its working objects
    keep their versions a day, not the records' retention (:mod:`lscloud.store.working`)."""
    env = [
        {"name": "LSCLOUD_ENV", "value": "cluster"},
        {"name": "LSCLOUD_S3_ENDPOINT", "value": p.s3_endpoint},
        {"name": "LSCLOUD_BUCKET", "value": bucket_name(p.bucket_prefix, m.name)},
        {"name": "LSCLOUD_NATS_URL", "value": p.nats_url},
        {"name": "LSCLOUD_STREAM", "value": p.stream},
        {"name": "LSCLOUD_JWT_ISSUER", "value": p.jwt_issuer},
        {"name": "LSCLOUD_JWT_AUDIENCE", "value": p.jwt_audience},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": p.otlp_endpoint},
        # functions call each other by their Knative Service's cluster address
        {"name": "LSCLOUD_PEER_URL_TEMPLATE", "value": f"http://{{name}}.{p.namespace}.svc.cluster.local"},
        {"name": "LSCLOUD_PSEUDONYM_KEY", "valueFrom": {"secretKeyRef": {"name": p.pseudonym_secret, "key": "key"}}},
        # /events: the Triggers' OIDC tokens (audience below, any service account of the namespace)
        {"name": "LSCLOUD_EVENTS_AUDIENCE", "value": events_audience(m.name, p.namespace)},
        {"name": "LSCLOUD_EVENTS_JWKS_URL", "value": p.events_jwks_url},
        {"name": "LSCLOUD_EVENTS_ISSUER", "value": p.events_issuer},
        {"name": "LSCLOUD_EVENTS_JWKS_CA_FILE", "value": f"{KUBE_CA_MOUNT}/ca.crt"},
        {"name": "LSCLOUD_EVENTS_SUBJECTS", "value": f"system:serviceaccount:{p.namespace}:*"},
        # NATS and MinIO over TLS: the function's own client certificate and the internal CA
        *tlsc.client_env(),
    ]
    if p.otlp_metrics_endpoint:
        env.append({"name": "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "value": p.otlp_metrics_endpoint})
    if p.public_url_template:
        # URLs that outlive a request name it (a certificate's CRL address), never 127.0.0.1
        env.append({"name": "LSCLOUD_PUBLIC_URL_TEMPLATE", "value": p.public_url_template})
    if p.jwt_jwks_url:
        env.append({"name": "LSCLOUD_JWT_JWKS_URL", "value": p.jwt_jwks_url})
    if p.trusted_proxies:
        env.append({"name": "LSCLOUD_TRUSTED_PROXIES", "value": ",".join(p.trusted_proxies)})
    if p.cors_origins:
        env.append({"name": "LSCLOUD_CORS_ORIGINS", "value": ",".join(p.cors_origins)})
    if override is not None and override.retention:
        env.append({"name": "LSCLOUD_S3_OBJECT_LOCK", "value": override.retention.mode})
    own = _env_from_manifest(m)
    names = {e["name"] for e in own}
    if not p.jwt_jwks_url and "LSCLOUD_JWT_PUBLIC_KEY" not in names:
        env.append({"name": "LSCLOUD_JWT_PUBLIC_KEY",
                    "valueFrom": {"secretKeyRef": {"name": p.jwt_secret, "key": "public-key"}}})
    if "OTEL_SERVICE_NAME" not in names:
        env.append({"name": "OTEL_SERVICE_NAME", "value": m.name})
    return env + own


def _resources(m: Manifest, d: FunctionDefaults) -> tuple[dict, int]:
    # func.yaml keeps Knative's containerConcurrency among the limits: not a Kubernetes resource
    limits = {k: v for k, v in m.resources.limits.items() if k != "concurrency"}
    requests = {**d.requests, **{k: str(v) for k, v in m.resources.requests.items()}}
    limits = {**d.limits, **{k: str(v) for k, v in limits.items()}}
    try:
        concurrency = container_concurrency(m, d.containerConcurrency)   # the local gateway's bound too
    except ManifestError as exc:
        raise RenderError(str(exc)) from None
    return {"requests": requests, "limits": limits}, concurrency


def _scale_annotations(m: Manifest, d: FunctionDefaults, o: FunctionOverride) -> dict[str, str]:
    s = m.scale
    lo = o.minScale if o.minScale is not None else (s.min if s.min is not None else d.minScale)
    hi = o.maxScale if o.maxScale is not None else (s.max if s.max is not None else d.maxScale)
    if hi and lo > hi:
        raise RenderError(f"{m.path}: min-scale {lo} > max-scale {hi} (after stack overrides)")
    ann = {
        "autoscaling.knative.dev/min-scale": str(lo),
        "autoscaling.knative.dev/max-scale": str(hi),
        "autoscaling.knative.dev/metric": s.metric or "concurrency",
        "autoscaling.knative.dev/target": _num(s.target if s.target is not None else 100),
    }
    if s.utilization is not None:
        ann["autoscaling.knative.dev/target-utilization-percentage"] = _num(s.utilization)
    return ann


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _probe(path: str, *, period: int, failures: int) -> dict:
    return {"httpGet": {"path": path, "port": CONTAINER_PORT}, "periodSeconds": period,
            "failureThreshold": failures, "timeoutSeconds": 2}


CONFIG_DIGEST = "lscloud.langson.gov.vn/config-digest"


def render_service(m: Manifest, p: PlatformEndpoints, *, image: str, defaults: FunctionDefaults | None = None,
                   override: FunctionOverride | None = None, config_digest: Any = None) -> dict:
    """The serving.knative.dev/v1 Service of function ``m``. ``config_digest`` (of every config and
    secret value its env reads) goes into the revision template: a rotated secret rolls out a new
    revision, since a running pod never sees a Secret's new value."""
    d = defaults or FunctionDefaults()
    resources, concurrency = _resources(m, d)
    lbl = kx.labels(m.name, "function")
    annotations = _scale_annotations(m, d, override or FunctionOverride())
    if config_digest is not None:
        annotations[CONFIG_DIGEST] = config_digest
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": m.name,
            "namespace": p.namespace,
            "labels": lbl,
            # Pulumi waits until Knative reports the revision Ready (image pulled, probes passing)
            "annotations": {"pulumi.com/waitFor": "condition=Ready"},
        },
        "spec": {
            "template": {
                "metadata": {"labels": lbl, "annotations": annotations},
                "spec": {
                    "serviceAccountName": service_account(m.name),
                    "containerConcurrency": concurrency,
                    "timeoutSeconds": d.timeoutSeconds,
                    "enableServiceLinks": False,
                    "volumes": [tlsc.client_volume(client_cert_secret(m.name)),
                                {"name": "kube-ca", "configMap": {"name": KUBE_CA_CONFIGMAP}}],
                    "containers": [{
                        "name": "function",
                        "image": image,
                        "ports": [{"name": "http1", "containerPort": CONTAINER_PORT}],
                        "env": render_env(m, p, override),
                        "volumeMounts": [tlsc.client_mount(),
                                         {"name": "kube-ca", "mountPath": KUBE_CA_MOUNT, "readOnly": True}],
                        "resources": resources,
                        "readinessProbe": _probe(READINESS_PATH, period=5, failures=3),
                        "livenessProbe": _probe(LIVENESS_PATH, period=10, failures=3),
                        "securityContext": kx.restricted_security_context(),
                    }],
                },
            },
        },
    }


BACKOFF_DELAY_S = 0.5
"""The first retry's delay; each next one doubles it (``backoffPolicy: exponential``)."""
LEASE_COVER_S = 2 * EVENT_LEASE_S
"""How long a Trigger's retries must go on at least: one events-seen lease (a run that died holds its
event that long: :mod:`lscloud.runonce`) and as much again for the redelivery that takes it over."""
OUTAGE_COVER_S = UNREACHABLE_S
"""How long a Trigger's retries go on at least: a function that does not answer (a restart, a bad
rollout, its store down) for up to this long loses no event. Its dead-letter sink is the same
function, so a delivery that ran out of retries while it was down was lost: the Trigger's own
dead-letter sink is the only one a delivery has (the broker's applies to Triggers that set none).
The local dispatcher waits as long (:data:`lscloud.delivery.UNREACHABLE_S`)."""
RETRY_AFTER_MAX = f"PT{int(LEASE_COVER_S)}S"
"""The longest ``Retry-After`` a Trigger honours (``retryAfterMax``, Eventing's ``delivery-retryafter``
feature, enabled by :mod:`.knative`): a function answers "event in progress" with what is left of the
hold (at most one lease). Honoured only where the channel passes the answer to its back-off
(eventing-natss 1.19 does not: knative-extensions/eventing-natss#802), so the retries alone cover the lease."""


def trigger_retries(at_least: int, cover_s: float = max(LEASE_COVER_S, OUTAGE_COVER_S),
                    delay_s: float = BACKOFF_DELAY_S) -> int:
    """The fewest retries, ``at_least`` or more, whose exponential back-off from ``delay_s`` spans
    ``cover_s`` (Knative's 5 from 0.5 s spanned 15.5 s: a run killed mid-event held it 300 s then, and
    30 s now, so its event was dead-lettered before anyone could take it over)."""
    n = max(1, at_least)
    while delay_s * (2 ** n - 1) < cover_s:
        n += 1
    return n


def render_triggers(m: Manifest, p: PlatformEndpoints) -> list[dict]:
    """One eventing.knative.dev/v1 Trigger per func.yaml subscription, delivering to the function's
    ``/events``, with the function's own ``/events/dead-letters`` as its dead-letter sink
    (:mod:`lscloud.deadletters`: the function keeps what it was not able to take, for its
    operators to see and act on). Both carry the function's audience: the broker presents a token
    for it (``authentication-oidc``) to the sink as to the subscriber. The sink is the same function,
    so retries span an outage of it (:data:`OUTAGE_COVER_S`) as well as an events-seen lease
    (:func:`trigger_retries`), and honour a ``Retry-After`` up to :data:`RETRY_AFTER_MAX`."""
    out = []
    audience = events_audience(m.name, p.namespace)
    service = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": m.name, "namespace": p.namespace}
    for sub in m.subscriptions:
        delivery: dict[str, Any] = {"retry": trigger_retries(p.delivery_retry), "backoffPolicy": "exponential",
                                    "backoffDelay": f"PT{BACKOFF_DELAY_S:g}S", "retryAfterMax": RETRY_AFTER_MAX,
                                    "deadLetterSink": {"ref": dict(service), "uri": DEAD_LETTER_PATH,
                                                       "audience": audience}}
        out.append({
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            "metadata": {"name": kx.dns_name(m.name, sub.name), "namespace": p.namespace,
                         "labels": kx.labels(m.name, "trigger")},
            "spec": {
                "broker": sub.source,
                "filter": {"attributes": {"type": sub.type}},
                # a relative uri is resolved against the Service's address: the function serves events
                # at /events only (its / is the function's own API)
                "subscriber": {"ref": dict(service), "uri": DELIVERY_PATH,
                               # the token the broker presents is for this audience (authentication-oidc)
                               "audience": audience},
                "delivery": delivery,
            },
        })
    return out


def render_network_policy(m: Manifest, p: PlatformEndpoints, override: FunctionOverride | None = None) -> dict:
    """Ingress only from Knative's data path (ingress gateway, activator, broker); egress only to
    NATS, the object store, the collector, DNS, and other functions through Knative's internal
    ingress (``LSCLOUD_PEER_URL_TEMPLATE``: ``<name>.<ns>.svc`` is an ExternalName onto it),
    plus the shared CIDRs on 443 (the IdP, the population registry) and this function's own
    ``override.egress`` (softatm: its banks' webhook addresses), which no other function gets."""
    def to(ns: str, name: str, *ports: int) -> dict:
        return kx.egress_to(ns, kx.selector(name), *ports)

    egress = [to(p.data_namespace, "nats", 4222), to(p.data_namespace, "minio", 9000),
              to(p.telemetry_namespace, "otel-collector", 4317, 4318),
              to(p.telemetry_namespace, "otel-collector-metrics", 4317, 4318), kx.dns_egress_rule(),
              # peers, through Kourier's gateway: kourier-internal:80 is its 8081 listener
              {"to": [{"namespaceSelector": kx.ns_selector(p.knative_ingress_namespace),
                       "podSelector": {"matchLabels": {"app": "3scale-kourier-gateway"}}}],
               "ports": [{"protocol": "TCP", "port": 8081}]}]
    if p.egress_cidrs:
        egress.append({"to": [{"ipBlock": {"cidr": c}} for c in p.egress_cidrs], "ports": [{"protocol": "TCP", "port": 443}]})
    if p.api_server_cidrs:
        # the JWKS that verifies event senders: kubernetes.default.svc:443, DNAT-ed to the API server's 6443
        egress.append({"to": [{"ipBlock": {"cidr": c}} for c in p.api_server_cidrs],
                       "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]})
    for rule in (override.egress if override is not None else ()):
        egress.append({"to": [{"ipBlock": {"cidr": rule.cidr}}],
                       "ports": [{"protocol": "TCP", "port": port} for port in rule.ports]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": kx.dns_name("fn", m.name), "namespace": p.namespace, "labels": kx.labels(m.name, "network-policy")},
        "spec": {
            "podSelector": {"matchLabels": {"serving.knative.dev/service": m.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"namespaceSelector": kx.ns_selector(ns)} for ns in p.ingress_namespaces]}],
            "egress": egress,
        },
    }


def render_service_account(m: Manifest, p: PlatformEndpoints) -> dict:
    """A ServiceAccount of its own, without an API token: functions never talk to Kubernetes."""
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": service_account(m.name), "namespace": p.namespace, "labels": kx.labels(m.name, "function")},
            "automountServiceAccountToken": False}


def render_pdb(m: Manifest, p: PlatformEndpoints, service: Mapping) -> dict | None:
    """Keep one pod through node drains when the function keeps two or more warm."""
    lo = int(service["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"])
    if lo < 2:
        return None
    return kx.pdb(kx.dns_name("fn", m.name), p.namespace, {"serving.knative.dev/service": m.name}, min_available=1)


def render_all(m: Manifest, p: PlatformEndpoints, *, image: str, defaults: FunctionDefaults | None = None,
               override: FunctionOverride | None = None, config_digest: Any = None) -> list[dict]:
    """Every Kubernetes object of function ``m``, in creation order."""
    svc = render_service(m, p, image=image, defaults=defaults, override=override, config_digest=config_digest)
    objs = [render_service_account(m, p), render_network_policy(m, p, override), svc]
    pdb = render_pdb(m, p, svc)
    if pdb:
        objs.append(pdb)
    return objs + render_triggers(m, p)


class Function(pulumi.ComponentResource):
    """A function of Lạng Sơn Cloud: ServiceAccount, NetworkPolicy, Knative Service, PDB, Triggers."""

    def __init__(self, name: str, manifest: Manifest, platform: PlatformEndpoints, *, image: str,
                 defaults: FunctionDefaults | None = None, override: FunctionOverride | None = None,
                 config_digest: pulumi.Input[str] | None = None, opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:Function", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.objects = render_all(manifest, platform, image=image, defaults=defaults, override=override,
                                  config_digest=config_digest)
        self.resources: dict[str, pulumi.CustomResource] = {}
        service = None
        for obj in self.objects:
            kind = obj["kind"]
            opts_ = child
            if kind == "Trigger" and service is not None:
                opts_ = pulumi.ResourceOptions(parent=self, depends_on=[service])
            res = kx.create(f"{name}-{kind.lower()}-{obj['metadata']['name']}", obj, opts_)
            self.resources[f"{kind}/{obj['metadata']['name']}"] = res
            if kind == "Service":
                service = res
        self.url = pulumi.Output.from_input(platform.public_url(manifest.name))
        self.register_outputs({"url": self.url})
