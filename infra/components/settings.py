"""The stack's configuration, typed: every environment-specific value lives in Pulumi.<stack>.yaml.

Structured keys (``lscloud:nats``, ``lscloud:objectStore`` …) map to the dataclasses below; an
unknown field is an error naming the key, so a typo in a stack file fails ``pulumi preview`` instead
of being silently ignored. Secrets are never read here: ``__main__`` reads them with
``require_secret``/``get_secret`` so they stay Pulumi secrets end to end.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

CLUSTER_MODES = ("magnum", "instances", "existing")
OBJECT_STORE_ENGINES = ("minio",)


class SettingsError(ValueError):
    """A config value is missing or malformed; the message names the key."""


def _build(cls, key: str, raw: Mapping[str, Any] | None):
    raw = dict(raw or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise SettingsError(f"lscloud:{key}: unknown field(s) {unknown}; known: {sorted(names)}")
    try:
        return cls(**raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"lscloud:{key}: {exc}") from None


def check_run_once_expiry(days: int, function_envs) -> None:
    """SettingsError unless ``objectStore.runOnceExpiryDays`` outlives every run-once record of the
    functions, whose lifetimes follow their env (``LSCLOUD_IDEMPOTENCY_TTL_S``, ``…_SIGNATURE_WINDOW_S``;
    the runtime's defaults when unset)."""
    from lscloud import config, runonce

    wanted = ("LSCLOUD_IDEMPOTENCY_TTL_S", "LSCLOUD_SIGNATURE_WINDOW_S")
    try:
        runonce.check_lifecycle_days(days, [config.load({k: v for k, v in dict(env).items() if k in wanted})
                                            for env in function_envs])
    except (ValueError, config.ConfigError) as exc:
        raise SettingsError(f"lscloud:objectStore.runOnceExpiryDays: {exc}") from None


def _positive(key: str, **values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SettingsError(f"lscloud:{key}.{name} must be a whole number >= 1, got {value!r}")


@dataclass(frozen=True)
class ClusterSettings:
    """OpenStack layer. ``mode``: ``magnum`` (a Magnum cluster), ``instances`` (Nova VMs you
    bootstrap with kubeadm, then give ``lscloud:kubeconfig``) or ``existing`` (no OpenStack)."""

    mode: str = "magnum"
    externalNetworkId: str = ""
    subnetCidr: str = "10.20.0.0/22"
    dnsNameservers: tuple[str, ...] = ("1.1.1.1", "8.8.8.8")
    sshPublicKey: str = ""
    sshAllowedCidrs: tuple[str, ...] = ()
    apiAllowedCidrs: tuple[str, ...] = ()
    ingressAllowedCidrs: tuple[str, ...] = ("0.0.0.0/0",)
    nodeImage: str = "fedora-coreos-40"
    controlPlaneFlavor: str = "m1.large"
    workerFlavor: str = "m1.xlarge"
    controlPlaneCount: int = 3
    workerCount: int = 3
    dockerVolumeSize: int = 50
    kubernetesVersion: str = "v1.30.4"
    availabilityZone: str = ""

    def __post_init__(self):
        if self.mode not in CLUSTER_MODES:
            raise SettingsError(f"lscloud:cluster.mode must be one of {CLUSTER_MODES}, got {self.mode!r}")
        object.__setattr__(self, "dnsNameservers", tuple(self.dnsNameservers))
        object.__setattr__(self, "sshAllowedCidrs", tuple(self.sshAllowedCidrs))
        object.__setattr__(self, "apiAllowedCidrs", tuple(self.apiAllowedCidrs))
        object.__setattr__(self, "ingressAllowedCidrs", tuple(self.ingressAllowedCidrs))
        _positive("cluster", controlPlaneCount=self.controlPlaneCount, workerCount=self.workerCount)
        if self.mode != "existing":
            if not self.externalNetworkId:
                raise SettingsError("lscloud:cluster.externalNetworkId is required (the provider network for the router)")
            if not self.sshPublicKey:
                raise SettingsError("lscloud:cluster.sshPublicKey is required (the nodes' keypair)")


@dataclass(frozen=True)
class NatsSettings:
    replicas: int = 3
    image: str = "nats:2.10.22-alpine"
    boxImage: str = "natsio/nats-box:0.14.5"
    storageSize: str = "10Gi"
    storageClass: str = ""
    stream: str = "LSCLOUD"
    streamReplicas: int = 3
    streamMaxBytes: str = "5GB"
    streamMaxAge: str = "720h"

    def __post_init__(self):
        _positive("nats", replicas=self.replicas, streamReplicas=self.streamReplicas)
        if self.streamReplicas > self.replicas:
            raise SettingsError(f"lscloud:nats.streamReplicas ({self.streamReplicas}) exceeds nats.replicas ({self.replicas})")


@dataclass(frozen=True)
class ObjectStoreSettings:
    engine: str = "minio"
    servers: int = 4
    drivesPerServer: int = 1
    volumeSize: str = "50Gi"
    storageClass: str = ""
    image: str = "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z"
    mcImage: str = "quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z"
    bucketPrefix: str = "lscloud"
    requests: Mapping[str, str] = field(default_factory=lambda: {"cpu": "250m", "memory": "1Gi"})
    limits: Mapping[str, str] = field(default_factory=lambda: {"cpu": "2", "memory": "4Gi"})
    # the buckets' lifecycle rule deletes run-once records (nonces, idempotency and events-seen
    # records) this many days after their last write: a backstop to the runtime's sweep on the
    # clock's tick, so it must outlive the longest of them (lscloud/runonce.py)
    runOnceExpiryDays: int = 3

    def __post_init__(self):
        if self.engine not in OBJECT_STORE_ENGINES:
            raise SettingsError(f"lscloud:objectStore.engine must be one of {OBJECT_STORE_ENGINES}, got {self.engine!r}")
        _positive("objectStore", servers=self.servers, drivesPerServer=self.drivesPerServer,
                  runOnceExpiryDays=self.runOnceExpiryDays)
        check_run_once_expiry(self.runOnceExpiryDays, [{}])
        if self.servers * self.drivesPerServer < 4 and self.servers > 1:
            raise SettingsError("lscloud:objectStore: distributed MinIO needs at least 4 drives (servers x drivesPerServer)")


@dataclass(frozen=True)
class KnativeSettings:
    install: bool = True
    servingVersion: str = "1.16.0"
    eventingVersion: str = "1.16.0"
    natssVersion: str = "1.16.0"
    kourierVersion: str = "1.16.0"
    ingressNamespace: str = "kourier-system"
    # TLS for the public domain through cert-manager (a ClusterIssuer you run); "" disables
    clusterIssuer: str = "letsencrypt"
    certManagerVersion: str = "1.16.0"  # net-certmanager release
    deliveryRetry: int = 5

    def __post_init__(self):
        _positive("knative", deliveryRetry=self.deliveryRetry)


@dataclass(frozen=True)
class TelemetrySettings:
    replicas: int = 2
    image: str = "otel/opentelemetry-collector-contrib:0.111.0"
    tracesBackend: str = "tempo-distributor.monitoring.svc.cluster.local:4317"
    tracesBackendInsecure: bool = True
    metricsNamespace: str = "monitoring"  # where Prometheus runs (may scrape :8889)

    def __post_init__(self):
        _positive("telemetry", replicas=self.replicas)


@dataclass(frozen=True)
class BridgeSettings:
    """The JetStream -> broker bridge (one Deployment per broker). ``image`` "" = the platform image
    ``<imageRegistry>/lscloud:<imageTag>`` (the repository's distribution: runtime, CLI, bridge)."""

    replicas: int = 2
    image: str = ""
    requests: Mapping[str, str] = field(default_factory=lambda: {"cpu": "50m", "memory": "96Mi"})
    limits: Mapping[str, str] = field(default_factory=lambda: {"cpu": "500m", "memory": "256Mi"})
    maxDeliveries: int = 5  # attempts at the broker before an event goes to <stream>_DLQ
    timeoutSeconds: int = 10  # per POST to the broker

    def __post_init__(self):
        _positive("bridge", replicas=self.replicas, maxDeliveries=self.maxDeliveries,
                  timeoutSeconds=self.timeoutSeconds)
        for kind, values in (("requests", self.requests), ("limits", self.limits)):
            missing = {"cpu", "memory"} - set(values or {})
            if missing:
                raise SettingsError(f"lscloud:bridge.{kind} needs {sorted(missing)}")


@dataclass(frozen=True)
class JwtSettings:
    issuer: str = "https://id.langson.gov.vn"
    audience: str = "lscloud"
    jwksUrl: str = ""  # when set, functions fetch keys from it; else lscloud:jwtPublicKey (secret)


@dataclass(frozen=True)
class FunctionDefaults:
    """What a func.yaml leaves out: every container still gets requests, limits and bounds."""

    requests: Mapping[str, str] = field(default_factory=lambda: {"cpu": "50m", "memory": "64Mi"})
    limits: Mapping[str, str] = field(default_factory=lambda: {"cpu": "500m", "memory": "256Mi"})
    containerConcurrency: int = 100
    minScale: int = 0
    maxScale: int = 10
    timeoutSeconds: int = 60


@dataclass(frozen=True)
class FunctionOverride:
    """Per-stack changes to one function: image tag or full image, scale bounds."""

    tag: str = ""
    image: str = ""
    minScale: int | None = None
    maxScale: int | None = None


@dataclass(frozen=True)
class StackSettings:
    domain: str
    imageRegistry: str
    imageTag: str
    namespace: str = "lscloud"
    dataNamespace: str = "lscloud-data"
    telemetryNamespace: str = "lscloud-telemetry"
    egressCidrs: tuple[str, ...] = ()
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)
    objectStore: ObjectStoreSettings = field(default_factory=ObjectStoreSettings)
    knative: KnativeSettings = field(default_factory=KnativeSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    bridge: BridgeSettings = field(default_factory=BridgeSettings)
    jwt: JwtSettings = field(default_factory=JwtSettings)
    functionDefaults: FunctionDefaults = field(default_factory=FunctionDefaults)
    functions: Mapping[str, FunctionOverride] = field(default_factory=dict)

    @classmethod
    def from_values(cls, get) -> "StackSettings":
        """Build from ``get(key)`` -> the plain (non-secret) config value or None."""
        missing = [k for k in ("domain", "imageRegistry", "imageTag") if not get(k)]
        if missing:
            raise SettingsError(f"missing config: {', '.join('lscloud:' + k for k in missing)}")
        functions = {name: _build(FunctionOverride, f"functions.{name}", raw) for name, raw in (get("functions") or {}).items()}
        return cls(
            domain=get("domain"),
            imageRegistry=get("imageRegistry").rstrip("/"),
            imageTag=str(get("imageTag")),
            namespace=get("namespace") or "lscloud",
            dataNamespace=get("dataNamespace") or "lscloud-data",
            telemetryNamespace=get("telemetryNamespace") or "lscloud-telemetry",
            egressCidrs=tuple(get("egressCidrs") or ()),
            cluster=_build(ClusterSettings, "cluster", get("cluster")),
            nats=_build(NatsSettings, "nats", get("nats")),
            objectStore=_build(ObjectStoreSettings, "objectStore", get("objectStore")),
            knative=_build(KnativeSettings, "knative", get("knative")),
            telemetry=_build(TelemetrySettings, "telemetry", get("telemetry")),
            bridge=_build(BridgeSettings, "bridge", get("bridge")),
            jwt=_build(JwtSettings, "jwt", get("jwt")),
            functionDefaults=_build(FunctionDefaults, "functionDefaults", get("functionDefaults")),
            functions=functions,
        )

    def image_for(self, function: str) -> str:
        o = self.functions.get(function, FunctionOverride())
        if o.image:
            return o.image
        return f"{self.imageRegistry}/{function}:{o.tag or self.imageTag}"

    def platform_image(self) -> str:
        """The repository's distribution (runtime, CLI, bridge, clock): ``<imageRegistry>/lscloud:<imageTag>``."""
        return f"{self.imageRegistry}/lscloud:{self.imageTag}"

    def bridge_image(self) -> str:
        return self.bridge.image or self.platform_image()


# the config keys that must only ever hold Pulumi secrets (set with `pulumi config set --secret`)
SECRET_KEYS = ("jwtPublicKey", "partnerKeys", "kubeconfig")
