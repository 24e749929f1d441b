"""Lạng Sơn Cloud on OpenStack + Kubernetes. Reads the stack's config and instantiates the components.

Everything environment-specific is in Pulumi.<stack>.yaml (see README.md); every function is read
from ../functions/*/func.yaml with the local cloud's own parser.
"""

import sys
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

INFRA = Path(__file__).resolve().parent
REPO = INFRA.parent
for p in (str(INFRA), str(REPO)):  # components/ and lscloud/ importable without an install
    if p not in sys.path:
        sys.path.insert(0, p)

from lscloud import manifest  # noqa: E402

from components import bus, objectstore, telemetry  # noqa: E402
from components.bridge import BridgeEndpoints, EventBridge  # noqa: E402
from components.bridge import routes as bridge_routes  # noqa: E402
from components.bus import EventBus  # noqa: E402
from components.clock import ClockEndpoints, PlatformClock  # noqa: E402
from components.cluster import ClusterNetwork  # noqa: E402
from components.function import Function, PlatformEndpoints  # noqa: E402
from components.knative import Knative  # noqa: E402
from components.namespaces import Namespaces  # noqa: E402
from components.objectstore import ObjectStore  # noqa: E402
from components.secrets import AppSecrets  # noqa: E402
from components.settings import SettingsError, StackSettings, check_run_once_expiry  # noqa: E402
from components.telemetry import Telemetry  # noqa: E402

STRUCTURED = {"cluster", "nats", "objectStore", "knative", "telemetry", "bridge", "jwt", "functionDefaults", "functions",
              "egressCidrs"}

cfg = pulumi.Config()
settings = StackSettings.from_values(lambda key: cfg.get_object(key) if key in STRUCTURED else cfg.get(key))
jwt_public_key = cfg.get_secret("jwtPublicKey")
if jwt_public_key is None and not settings.jwt.jwksUrl:
    raise SettingsError("set lscloud:jwt.jwksUrl or the secret lscloud:jwtPublicKey "
                        "(pulumi config set --secret jwtPublicKey < public.pem)")
partner_keys = cfg.get_secret_object("partnerKeys") or pulumi.Output.secret({})
functions = manifest.discover(REPO / "functions")
# the buckets' lifecycle rule must outlive every function's run-once records (their TTLs follow the env)
check_run_once_expiry(settings.objectStore.runOnceExpiryDays, [m.resolved_env({}) for m in functions])
unknown = sorted(set(settings.functions) - {m.name for m in functions})
if unknown:
    raise SettingsError(f"lscloud:functions: no function folder named {unknown} under functions/")

# --- OpenStack -------------------------------------------------------------------------------
cluster = ClusterNetwork("lscloud", settings.cluster, kubeconfig=cfg.get_secret("kubeconfig"))
pulumi.export("mode", settings.cluster.mode)
if settings.cluster.mode == "instances" and cluster.kubeconfig is None:
    pulumi.log.warn("cluster.mode=instances: bootstrap Kubernetes on the nodes, then "
                    "`pulumi config set --secret kubeconfig < kubeconfig` and `pulumi up` again for the platform")
else:
    # --- platform on Kubernetes --------------------------------------------------------------
    provider = k8s.Provider("lscloud-k8s", kubeconfig=cluster.kubeconfig) if cluster.kubeconfig is not None \
        else k8s.Provider("lscloud-k8s")
    on_cluster = pulumi.ResourceOptions(provider=provider)
    ns, data_ns, tel_ns = settings.namespace, settings.dataNamespace, settings.telemetryNamespace
    names = [m.name for m in functions]

    namespaces = Namespaces("lscloud", [ns, data_ns, tel_ns], deny_all=[ns, data_ns], opts=on_cluster)
    after_ns = pulumi.ResourceOptions(provider=provider, depends_on=namespaces.namespaces)
    secrets = AppSecrets("lscloud-secrets", ns, jwt_public_key=jwt_public_key or "", partner_keys=partner_keys,
                         opts=after_ns)
    event_bus = EventBus("lscloud-bus", settings.nats, data_ns, client_namespaces=(ns, "knative-eventing"),
                         monitor_namespaces=(tel_ns, settings.telemetry.metricsNamespace), opts=after_ns)
    store = ObjectStore("lscloud-store", settings.objectStore, data_ns, names, functions_namespace=ns,
                        client_namespaces=(ns,), opts=after_ns)
    collector = Telemetry("lscloud-telemetry", settings.telemetry, tel_ns, REPO / "observability" / "collector.yaml",
                          client_namespaces=(ns,), opts=after_ns)
    brokers = sorted({sub.source for m in functions for sub in m.subscriptions})
    knative = Knative("lscloud-knative", settings.knative, domain=settings.domain, namespace=ns,
                      nats_url=event_bus.url, stream_replicas=settings.nats.streamReplicas, brokers=brokers,
                      opts=after_ns)

    platform = PlatformEndpoints(
        namespace=ns, s3_endpoint=objectstore.endpoint(data_ns), nats_url=bus.client_url(data_ns),
        stream=settings.nats.stream, otlp_endpoint=telemetry.otlp_endpoint(tel_ns),
        bucket_prefix=settings.objectStore.bucketPrefix, jwt_issuer=settings.jwt.issuer,
        jwt_audience=settings.jwt.audience, jwt_jwks_url=settings.jwt.jwksUrl, data_namespace=data_ns,
        telemetry_namespace=tel_ns,
        ingress_namespaces=("knative-serving", settings.knative.ingressNamespace, "knative-eventing"),
        knative_ingress_namespace=settings.knative.ingressNamespace,
        egress_cidrs=settings.egressCidrs, dead_letter_sink=knative.dead_letter_sink,
        delivery_retry=settings.knative.deliveryRetry)
    ready = [*knative.ready, event_bus.ready, store.ready, secrets, collector]
    urls = {}
    for m in functions:
        fn = Function(m.name, m, platform, image=settings.image_for(m.name), domain=settings.domain,
                      defaults=settings.functionDefaults, override=settings.functions.get(m.name),
                      opts=pulumi.ResourceOptions(provider=provider, depends_on=ready))
        urls[m.name] = fn.url

    # JetStream -> brokers: one bridge per broker, forwarding the types its Triggers filter on
    bridge_endpoints = BridgeEndpoints.from_platform(platform)
    bridges = {}
    for broker, types in bridge_routes(functions, ["default", *brokers]).items():
        EventBridge(f"lscloud-bridge-{broker}", broker, types, bridge_endpoints, settings.bridge,
                    image=settings.bridge_image(), opts=pulumi.ResourceOptions(provider=provider, depends_on=ready))
        bridges[broker] = list(types)

    # the platform clock: a tick a minute on the stream; the bridges forward it to the functions
    # that subscribe to vn.langson.platform.clock.ticked.v1 (their Triggers filter on it)
    PlatformClock("lscloud-clock", ClockEndpoints.from_platform(platform), image=settings.platform_image(),
                  opts=pulumi.ResourceOptions(provider=provider, depends_on=[event_bus.ready]))

    pulumi.export("functions", urls)
    pulumi.export("bridges", bridges)
    pulumi.export("buckets", store.buckets)
    pulumi.export("natsUrl", event_bus.url)
    pulumi.export("s3Endpoint", store.endpoint)
    pulumi.export("otlpEndpoint", collector.endpoint)
    if cluster.kubeconfig is not None:
        pulumi.export("kubeconfig", cluster.kubeconfig)  # a secret: `pulumi stack output --show-secrets kubeconfig`
