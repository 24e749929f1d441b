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

import json  # noqa: E402

from lscloud import devices, manifest  # noqa: E402

from components import appconfig, bus, hooks, knative as kn, objectstore, telemetry  # noqa: E402
from components import tls as tlsc  # noqa: E402
from components.backup import Backups, client_cert as backup_cert, selectors as backup_selectors  # noqa: E402
from components.bridge import client_cert as bridge_cert  # noqa: E402
from components.clock import client_cert as clock_cert  # noqa: E402
from components.bridge import BridgeEndpoints, EventBridge  # noqa: E402
from components.bridge import routes as bridge_routes  # noqa: E402
from components.bus import EventBus  # noqa: E402
from components.clock import ClockEndpoints, PlatformClock  # noqa: E402
from components.devices import DevicesRelay, RelayEndpoints, client_cert as relay_cert  # noqa: E402
from components.cluster import ClusterNetwork  # noqa: E402
from components.function import Function, PlatformEndpoints, client_cert as function_cert  # noqa: E402
from components.knative import Knative  # noqa: E402
from components.namespaces import Namespaces  # noqa: E402
from components.objectstore import ObjectStore  # noqa: E402
from components.secrets import AppSecrets  # noqa: E402
from components.tls import InternalCA  # noqa: E402
from components.settings import (RETIRED_KEYS, SettingsError, StackSettings, check_nonce_lifetime,  # noqa: E402
                                 check_run_once_expiry, check_store_budget)
from components.telemetry import Telemetry  # noqa: E402

STRUCTURED = {"cluster", "nats", "objectStore", "knative", "telemetry", "bridge", "jwt", "cors", "tls", "backup",
              "functionDefaults", "functions", "egressCidrs", "apiServerCidrs", "configMaps", "generatedSecrets"}

# operator secrets a function cannot start without: empty, its Service never turns Ready and `pulumi
# up` fails waiting for it, so the program refuses first, saying how to make the value
STARTS_ONLY_WITH = {
    ("market-stamp-key", "private-key"): (
        "the market function refuses to start without it (MARKET_STAMP_KEY: the province's Ed25519 "
        "stamp-signing key, an unencrypted PKCS#8 PEM). Make one and set it: `openssl genpkey -algorithm "
        "ed25519 -out stamp.pem`, `pulumi config set --secret --path 'secrets.market-stamp-key.private-key' "
        "< stamp.pem`, then keep stamp.pem off-site like the stack's state (infra/README.md, First deployment)"),
}
# functions that must reach addresses outside the cluster only the operator knows
# (lscloud:functions.<name>.egress): without them they deploy, but that part of their work fails
REACHES_OUT = {
    "softatm": ("its webhooks to the banks are blocked (each transfer's webhook dead-letters and the sweep "
                "aborts the transfer): add each bank's webhook addresses from its registration, "
                "lscloud:functions.softatm.egress: [{cidr: …, ports: [443]}] (infra/README.md, Partner banks' "
                "addresses)"),
}


def secret_names(key: str) -> dict[str, set[str]]:
    """The names and keys an operator has set under a secret object (never its values): what the
    program must create and what it still warns about."""
    raw = pulumi.runtime.get_config(f"lscloud:{key}")
    doc = json.loads(raw) if raw else {}
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise SettingsError(f"lscloud:{key} must be a secret object {{name: {{key: value}}}}")
    return {name: {k for k, v in keys.items() if v not in (None, "")} for name, keys in doc.items()}


cfg = pulumi.Config()
settings = StackSettings.from_values(lambda key: cfg.get_object(key) if key in STRUCTURED else cfg.get(key))
for retired, why in RETIRED_KEYS.items():
    if pulumi.runtime.get_config(f"lscloud:{retired}") is not None:
        raise SettingsError(f"lscloud:{retired} is set, but {why}")
jwt_public_key = cfg.get_secret("jwtPublicKey")
if jwt_public_key is None and not settings.jwt.jwksUrl:
    raise SettingsError("set lscloud:jwt.jwksUrl or the secret lscloud:jwtPublicKey "
                        "(pulumi config set --secret jwtPublicKey < public.pem)")
functions = manifest.discover(REPO / "functions")
# the buckets' lifecycle rule must outlive every function's run-once records (their TTLs follow the env)
check_run_once_expiry(settings.objectStore.runOnceExpiryDays, [m.resolved_env({}) for m in functions])
# and the nonces' bucket must keep a nonce as long as any function's signature window lets it verify
check_nonce_lifetime(settings.nats, [m.resolved_env({}) for m in functions])
unknown = sorted(set(settings.functions) - {m.name for m in functions})
if unknown:
    raise SettingsError(f"lscloud:functions: no function folder named {unknown} under functions/")
brokers = sorted({sub.source for m in functions for sub in m.subscriptions})
# every stream and channel stream reserves its bytes on the JetStream store: they must all fit
check_store_budget(settings.nats, brokers=["default", *brokers])
# the functions' own config maps and secrets: each func.yaml reference resolved, or a clear error
operator_secrets = secret_names("secrets")
function_config = appconfig.plan(functions, settings.configMaps, settings.generatedSecrets,
                                 {n: {k: "set" for k in keys} for n, keys in operator_secrets.items()})
for (name, key), why in STARTS_ONLY_WITH.items():
    if key in function_config.operator.get(name, ()) and key not in operator_secrets.get(name, ()):
        raise SettingsError(f"secret {name}.{key} is not set: {why}")
for missing in function_config.missing_operator:
    pulumi.log.warn(f"secret {missing} is not set: `pulumi config set --secret --path 'secrets.{missing.split()[0]}' …`"
                    " (created empty until then: the function starts, and what needs the value fails)")
for name, why in REACHES_OUT.items():
    if name in {m.name for m in functions} and not getattr(settings.functions.get(name), "egress", ()):
        pulumi.log.warn(f"lscloud:functions.{name}.egress is not set: {why}")
ticked = "vn.langson.platform.clock.ticked.v1"
for m in functions:
    o = settings.functions.get(m.name)
    lo = o.minScale if o and o.minScale is not None else (m.scale.min if m.scale.min is not None
                                                           else settings.functionDefaults.minScale)
    if lo == 0 and any(sub.type == ticked for sub in m.subscriptions):
        pulumi.log.warn(f"{m.name}: min-scale 0 but it takes the platform clock's tick: it is woken every minute, "
                        "so it never stays at zero and pays a cold start each minute (infra/README.md, Scale)")
if not settings.backup.endpoint:
    pulumi.log.warn("lscloud:backup.endpoint is not set: no copy of the buckets or streams leaves the cluster")

# --- OpenStack -------------------------------------------------------------------------------
cluster = ClusterNetwork("lscloud", settings.cluster, kubeconfig=cfg.get_secret("kubeconfig"))
pulumi.export("mode", settings.cluster.mode)
if settings.cluster.mode == "instances" and cluster.kubeconfig is None:
    pulumi.log.warn("cluster.mode=instances: bootstrap Kubernetes on the nodes, then "
                    "`pulumi config set --secret kubeconfig < kubeconfig` and `pulumi up` again for the platform")
else:
    # --- platform on Kubernetes --------------------------------------------------------------
    backups_on = bool(settings.backup.endpoint)
    provider = k8s.Provider("lscloud-k8s", kubeconfig=cluster.kubeconfig) if cluster.kubeconfig is not None \
        else k8s.Provider("lscloud-k8s")
    on_cluster = pulumi.ResourceOptions(provider=provider)
    ns, data_ns, tel_ns = settings.namespace, settings.dataNamespace, settings.telemetryNamespace
    names = [m.name for m in functions]

    namespaces = Namespaces("lscloud", [ns, data_ns, tel_ns], deny_all=[ns, data_ns], opts=on_cluster)
    after_ns = pulumi.ResourceOptions(provider=provider, depends_on=namespaces.namespaces)
    # lscloud-partners stays empty: no function reads it (RETIRED_KEYS; components/secrets.py still makes it)
    secrets = AppSecrets("lscloud-secrets", ns, jwt_public_key=jwt_public_key or "", partner_keys={},
                         opts=after_ns)
    platform = PlatformEndpoints(
        namespace=ns, s3_endpoint=objectstore.endpoint(data_ns), nats_url=bus.client_url(data_ns),
        stream=settings.nats.stream, otlp_endpoint=telemetry.otlp_endpoint(tel_ns),
        otlp_metrics_endpoint=telemetry.metrics_endpoint(tel_ns),
        bucket_prefix=settings.objectStore.bucketPrefix, jwt_issuer=settings.jwt.issuer,
        jwt_audience=settings.jwt.audience, jwt_jwks_url=settings.jwt.jwksUrl, data_namespace=data_ns,
        telemetry_namespace=tel_ns,
        ingress_namespaces=("knative-serving", settings.knative.ingressNamespace, "knative-eventing"),
        knative_ingress_namespace=settings.knative.ingressNamespace,
        egress_cidrs=settings.egressCidrs, api_server_cidrs=settings.apiServerCidrs,
        delivery_retry=settings.knative.deliveryRetry, events_issuer=settings.knative.eventsIssuer,
        public_url_template=kn.url_template(ns, settings.domain, tls=bool(settings.knative.clusterIssuer)),
        trusted_proxies=settings.knative.podCidrs, cors_origins=settings.cors.origins)
    bridge_endpoints = BridgeEndpoints.from_platform(platform)
    clock_endpoints = ClockEndpoints.from_platform(platform)
    relay_endpoints = RelayEndpoints.from_platform(platform)
    # the functions that own device domains: MQTT on NATS, their devices' users, the relay
    device_domains = devices.domains(functions)

    # the internal CA and every certificate: NATS and MinIO servers, one client per NATS user
    # (eventing-natss's own is made by the Knative component, in the namespace its release creates)
    certificates = (bus.certificates(settings.nats, data_ns, settings.tls)
                    + objectstore.certificates(data_ns, settings.tls)
                    + [tlsc.render_client_cert(c, settings.tls) for c in
                       [function_cert(m.name, platform) for m in functions]
                       + [bridge_cert(bridge_endpoints), clock_cert(clock_endpoints)]
                       + ([relay_cert(relay_endpoints)] if device_domains else [])
                       + ([backup_cert(settings.nats, data_ns)] if backups_on else [])])
    internal_ca = InternalCA("lscloud-tls", settings.tls, certificates, opts=after_ns)
    # the servers and everything that mounts a certificate start once it is issued
    after_tls = pulumi.ResourceOptions(provider=provider, depends_on=[*namespaces.namespaces, *internal_ca.ready])

    retention = {fn: o.retention for fn, o in settings.functions.items() if o.retention}
    store = ObjectStore("lscloud-store", settings.objectStore, data_ns, names, functions_namespace=ns,
                        client_namespaces=(ns,), retention=retention, device_domains=device_domains,
                        backup_selectors=backup_selectors() if backups_on else (), opts=after_tls)
    event_bus = EventBus("lscloud-bus", settings.nats, data_ns, names, client_namespaces=(ns, "knative-eventing"),
                         monitor_namespaces=(tel_ns, settings.telemetry.metricsNamespace),
                         client_selectors=backup_selectors() if backups_on else (), device_domains=device_domains,
                         device_buckets=store.device_buckets, platform_image=settings.platform_image(),
                         opts=after_tls)
    collector = Telemetry("lscloud-telemetry", settings.telemetry, tel_ns, REPO / "observability" / "collector.yaml",
                          client_namespaces=(ns, "knative-serving", "knative-eventing",
                                             settings.knative.ingressNamespace), opts=after_ns)
    knative = Knative("lscloud-knative", settings.knative, domain=settings.domain, namespace=ns,
                      nats_url=event_bus.url, nats=settings.nats, brokers=brokers,
                      traces_endpoint=telemetry.traces_endpoint(tel_ns),
                      sampling_rate=settings.telemetry.knativeSamplingRate, tls=settings.tls, opts=after_tls)
    config = appconfig.FunctionConfig("lscloud-function-config", ns, function_config,
                                      cfg.get_secret_object("secrets") or {}, opts=after_ns)

    ready = [*knative.ready, event_bus.ready, store.ready, secrets, collector, config, *internal_ca.ready]
    hook_policy = hooks.HookPolicy("lscloud-hooks", platform, opts=after_ns)
    urls = {}
    # a changed key names new migration Jobs (hooks.key_digest): the data is re-keyed before the new revision serves
    pseudonym_key = secrets.values["lscloud-pseudonym"]["key"]
    for m in functions:
        image = settings.image_for(m.name)
        # a rotated or changed value the function reads rolls out a new revision
        reads = {"configMaps": {r.name: function_config.config_maps.get(r.name) for r in function_config.users[m.name]
                                if r.kind == "configMap"},
                 "secrets": {f"{r.name}/{r.key}": (config.values.get(r.name) or secrets.values.get(r.name) or {}).get(r.key)
                             for r in function_config.users[m.name] if r.kind == "secret"},
                 "pseudonym": pseudonym_key,
                 "s3": store.user_secrets[m.name]}
        digest = pulumi.Output.from_input(reads).apply(appconfig.digest_of)
        # the store check first (a store that breaks a conditional write never serves the function), then the migration
        before = []
        override = settings.functions.get(m.name)   # the hooks get the Service's environment (object lock)
        for kind in (k for k in hooks.wanted(m) if k in hooks.BEFORE_SERVING):
            before.append(hooks.FunctionHook(
                f"lscloud-{kind}-{m.name}", m, kind, platform, image=image, store_image=settings.objectStore.image,
                override=override, pseudonym_key=pseudonym_key,
                opts=pulumi.ResourceOptions(provider=provider, depends_on=[*ready, hook_policy, *before])))
        fn = Function(m.name, m, platform, image=image,
                      defaults=settings.functionDefaults, override=settings.functions.get(m.name),
                      config_digest=digest, opts=pulumi.ResourceOptions(provider=provider, depends_on=[*ready, *before]))
        # the seed, and the migration again once no replica of an older revision writes the older layout
        for kind in (k for k in hooks.wanted(m) if k in hooks.AFTER_SERVING):
            hooks.FunctionHook(f"lscloud-{kind}-{m.name}", m, kind, platform, image=image, override=override,
                               pseudonym_key=pseudonym_key, opts=pulumi.ResourceOptions(provider=provider, depends_on=[fn, hook_policy]))
        urls[m.name] = fn.url

    # JetStream -> brokers: one bridge per broker, forwarding the types its Triggers filter on
    bridges = {}
    for broker, types in bridge_routes(functions, ["default", *brokers]).items():
        EventBridge(f"lscloud-bridge-{broker}", broker, types, bridge_endpoints, settings.bridge,
                    image=settings.bridge_image(), opts=pulumi.ResourceOptions(provider=provider, depends_on=ready))
        bridges[broker] = list(types)

    # the platform clock: a tick a minute on the stream; the bridges forward it to the functions
    # that subscribe to vn.langson.platform.clock.ticked.v1 (their Triggers filter on it)
    PlatformClock("lscloud-clock", clock_endpoints, image=settings.platform_image(),
                  opts=pulumi.ResourceOptions(provider=provider, depends_on=[event_bus.ready, *internal_ca.ready]))

    if device_domains:
        # device messages (MQTT on NATS, <stream>_DEVICES) onto the stream as the domains' events
        DevicesRelay("lscloud-devices-relay", relay_endpoints, image=settings.platform_image(),
                     opts=pulumi.ResourceOptions(provider=provider, depends_on=[event_bus.ready, *internal_ca.ready]))

    if backups_on:
        Backups("lscloud-backup", settings.backup, settings.nats, settings.objectStore, data_ns,
                sorted(store.buckets.values()), access_key=cfg.get_secret("backupAccessKey") or "",
                secret_key=cfg.get_secret("backupSecretKey") or "", target_cidrs=settings.backup.targetCidrs,
                opts=pulumi.ResourceOptions(provider=provider,
                                            depends_on=[store.ready, event_bus.ready, *internal_ca.ready]))
        if cfg.get_secret("backupAccessKey") is None:
            pulumi.log.warn("backup.endpoint is set but the secrets backupAccessKey/backupSecretKey are not: "
                            "the backup jobs will fail until they are")

    pulumi.export("functions", urls)
    pulumi.export("bridges", bridges)
    pulumi.export("buckets", store.buckets)
    pulumi.export("natsUrl", event_bus.url)
    if device_domains:  # where field devices publish (MQTT over TLS; they trust the internal CA)
        pulumi.export("mqtt", {"service": f"{bus.MQTT_SERVICE}.{data_ns}", "port": settings.nats.mqttPort,
                               "hosts": list(settings.nats.mqttHosts), "domains": device_domains})
    pulumi.export("s3Endpoint", store.endpoint)
    pulumi.export("otlpEndpoint", collector.endpoint)
    pulumi.export("otlpMetricsEndpoint", collector.metrics_endpoint)
    if cluster.kubeconfig is not None:
        pulumi.export("kubeconfig", cluster.kubeconfig)  # a secret: `pulumi stack output --show-secrets kubeconfig`
