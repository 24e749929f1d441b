"""The stack's configuration, typed: every environment-specific value lives in Pulumi.<stack>.yaml.

Structured keys (``lscloud:nats``, ``lscloud:objectStore`` …) map to the dataclasses below; an
unknown field is an error naming the key, so a typo in a stack file fails ``pulumi preview`` instead
of being silently ignored. Secrets are never read here: ``__main__`` reads them with
``require_secret``/``get_secret`` so they stay Pulumi secrets end to end.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import releases

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


_LIFETIME_ENV = ("LSCLOUD_IDEMPOTENCY_TTL_S", "LSCLOUD_SIGNATURE_WINDOW_S")
"""The functions' env that sets how long what they keep lives (the runtime's defaults when unset)."""


def _lifetimes(function_envs, key: str) -> list:
    """Each function's runtime settings as far as :data:`_LIFETIME_ENV` goes (SettingsError on ``key``)."""
    from lscloud import config

    try:
        return [config.load({k: v for k, v in dict(env).items() if k in _LIFETIME_ENV}) for env in function_envs]
    except config.ConfigError as exc:
        raise SettingsError(f"lscloud:{key}: {exc}") from None


def check_run_once_expiry(days: int, function_envs) -> None:
    """SettingsError unless ``objectStore.runOnceExpiryDays`` outlives every run-once record of the
    functions, whose lifetimes follow their env (``LSCLOUD_IDEMPOTENCY_TTL_S``, ``…_SIGNATURE_WINDOW_S``;
    the runtime's defaults when unset)."""
    from lscloud import runonce

    key = "objectStore.runOnceExpiryDays"
    settings = _lifetimes(function_envs, key)
    try:
        runonce.check_lifecycle_days(days, settings)
    except ValueError as exc:
        raise SettingsError(f"lscloud:{key}: {exc}") from None


def check_nonce_lifetime(nats: "NatsSettings", function_envs) -> None:
    """SettingsError unless ``nats.noncesMaxAge`` keeps a partner nonce for as long as it could verify
    again at every function (:func:`lscloud.nonces.lifetime_s` of its ``LSCLOUD_SIGNATURE_WINDOW_S``,
    the runtime's default when unset): shorter, a replay inside the window would be taken as new."""
    from lscloud import nonces

    windows = [s.signature_window_s for s in _lifetimes(function_envs, "nats.noncesMaxAge")]
    needed = max((nonces.lifetime_s(w) for w in windows), default=0.0)
    if duration_ns(nats.noncesMaxAge) / 1e9 < needed:
        raise SettingsError(f"lscloud:nats.noncesMaxAge ({nats.noncesMaxAge}) is shorter than a partner nonce must be "
                            f"kept: {needed:g} s (2 × the longest signature window {max(windows)} s + "
                            f"{nonces.MARGIN_S} s). Raise it, or shorten LSCLOUD_SIGNATURE_WINDOW_S")


def _positive(key: str, **values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SettingsError(f"lscloud:{key}.{name} must be a whole number >= 1, got {value!r}")


# --- quantities ------------------------------------------------------------------------------------

_PVC_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 1000, "M": 1000**2, "G": 1000**3,
              "T": 1000**4}
_BYTE_UNITS = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "KIB": 1024, "MIB": 1024**2,
               "GIB": 1024**3, "TIB": 1024**4, "B": 1}
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(h|m|s)$")


def parse_bytes(key: str, value: str | int) -> int:
    """'5GB', '512MiB' or a whole number of bytes -> bytes (> 0: a limit, never 'unlimited')."""
    text = str(value).strip().upper()
    number, mult = text, 1
    for suffix in sorted(_BYTE_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            number, mult = text[: -len(suffix)], _BYTE_UNITS[suffix]
            break
    try:
        n = int(float(number) * mult)
    except ValueError:
        raise SettingsError(f"lscloud:{key} must be a size like 5GB or 512MiB, got {value!r}") from None
    if n <= 0:
        raise SettingsError(f"lscloud:{key} must be a positive size (every stream and channel is bounded), "
                            f"got {value!r}")
    return n


def parse_duration(key: str, value: str) -> str:
    """'720h', '30m' or '45s' (Go's duration syntax, which eventing-natss reads) -> the same string."""
    m = _DURATION_RE.match(str(value).strip())
    if not m or float(m.group(1)) <= 0:
        raise SettingsError(f"lscloud:{key} must be a positive duration like 720h, 30m or 45s, got {value!r}")
    return str(value).strip()


def duration_ns(value: str) -> int:
    m = _DURATION_RE.match(value)
    return int(float(m.group(1)) * {"h": 3600, "m": 60, "s": 1}[m.group(2)] * 1_000_000_000)


def pvc_bytes(key: str, size: str) -> int:
    """A Kubernetes quantity ('50Gi', '10G') -> bytes."""
    text = str(size).strip()
    for suffix in sorted(_PVC_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            try:
                return int(float(text[: -len(suffix)]) * _PVC_UNITS[suffix])
            except ValueError:
                break
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"lscloud:{key} must be a Kubernetes quantity like 50Gi, got {size!r}") from None


def _fmt(n: int) -> str:
    return f"{n / 1000**3:.2f} GB" if n >= 1000**3 else f"{n / 1000**2:.0f} MB"


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
    kubernetesVersion: str = "v1.34.1"  # Knative 1.23 refuses to run on anything older than 1.34
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
    """The NATS JetStream cluster and everything it stores.

    Every stream on the servers' file store is bounded (bytes and age) and JetStream *reserves* a
    stream's ``max_bytes`` on each server holding a replica of it when the stream is created: the
    functions' stream, its dead-letter stream, one stream per broker channel and one for the
    dead-letter channel (eventing-natss makes those). Their sum must fit each server's store
    (``storageSize`` less the 10% left to the filesystem), else the last one created fails with
    "insufficient storage resources" and no event flows; :func:`check_store_budget` refuses such a
    stack before anything is deployed.
    """

    replicas: int = 3
    image: str = "nats:2.14.4-alpine"
    boxImage: str = "natsio/nats-box:0.14.5"
    storageSize: str = "10Gi"
    storageClass: str = ""
    stream: str = "LSCLOUD"
    streamReplicas: int = 3
    # the functions' events (lscloud.>): what the bridge forwards and what a restore replays
    streamMaxBytes: str = "4GB"
    streamMaxAge: str = "720h"
    # <stream>_DLQ: events the bridge could not hand to a broker
    dlqMaxBytes: str = "1GB"
    dlqMaxAge: str = "720h"
    # each broker's NatsJetStreamChannel (events between the broker and its Triggers)
    channelMaxBytes: str = "1GB"
    channelMaxAge: str = "168h"
    # the Triggers' dead-letter channel (events a function refused or kept failing on)
    deadLetterChannelMaxBytes: str = "1GB"
    deadLetterChannelMaxAge: str = "720h"
    # <stream>_DEVICES: what field devices publish (MQTT), until the relay has put it on the stream
    devicesMaxBytes: str = "256MB"
    devicesMaxAge: str = "168h"
    # <stream>_NONCES: the key-value bucket of partner request nonces (lscloud.nonces). A nonce is
    # kept noncesMaxAge after its write, which must outlast every function's signature window
    # (check_nonce_lifetime); full, the bucket refuses new nonces (partner calls get 503), never
    # forgets one early. 11m: what the default window needs (lscloud.nonces.lifetime_s, 2 × 300 s +
    # 60 s); kept longer, each nonce holds its bytes for nothing and the bucket fills sooner
    noncesMaxBytes: str = "256MB"
    noncesMaxAge: str = "11m"
    # nats-server's MQTT listener (TLS, the internal CA's server certificate): the Service devices
    # reach, the networks they come from, and the names they use for it (in the certificate)
    mqttPort: int = 8883
    mqttServiceType: str = "LoadBalancer"
    mqttSourceCidrs: tuple[str, ...] = ("0.0.0.0/0",)
    mqttHosts: tuple[str, ...] = ()
    # the sidecar that puts issued device credentials into nats-server's users: seconds between reads.
    # A read lists the credentials and fetches only those that changed (lscloud.devices.UsersReader):
    # one LIST per 500 devices of a domain, per server, per read
    deviceUsersEverySeconds: int = 5

    def __post_init__(self):
        _positive("nats", replicas=self.replicas, streamReplicas=self.streamReplicas, mqttPort=self.mqttPort,
                  deviceUsersEverySeconds=self.deviceUsersEverySeconds)
        if self.mqttServiceType not in ("LoadBalancer", "NodePort", "ClusterIP"):
            raise SettingsError("lscloud:nats.mqttServiceType must be LoadBalancer, NodePort or ClusterIP, "
                                f"got {self.mqttServiceType!r}")
        for name in ("mqttSourceCidrs", "mqttHosts"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise SettingsError(f"lscloud:nats.{name} must be a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for cidr in self.mqttSourceCidrs:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise SettingsError(f"lscloud:nats.mqttSourceCidrs: {cidr!r} is not a network") from None
        if self.streamReplicas > self.replicas:
            raise SettingsError(f"lscloud:nats.streamReplicas ({self.streamReplicas}) exceeds nats.replicas ({self.replicas})")
        for name in ("streamMaxBytes", "dlqMaxBytes", "channelMaxBytes", "deadLetterChannelMaxBytes", "devicesMaxBytes",
                     "noncesMaxBytes"):
            parse_bytes(f"nats.{name}", getattr(self, name))
        for name in ("streamMaxAge", "dlqMaxAge", "channelMaxAge", "deadLetterChannelMaxAge", "devicesMaxAge",
                     "noncesMaxAge"):
            parse_duration(f"nats.{name}", getattr(self, name))
        pvc_bytes("nats.storageSize", self.storageSize)
        check_store_budget(self, brokers=("default",))

    @property
    def store_bytes(self) -> int:
        """JetStream's ``max_file_store`` on each server: the volume less 10% for the filesystem."""
        return int(pvc_bytes("nats.storageSize", self.storageSize) * 0.9)

    def reservations(self, brokers) -> list[tuple[str, int]]:
        """(what, bytes reserved on each server holding a replica) for every stream on the store."""
        out = [(self.stream, parse_bytes("nats.streamMaxBytes", self.streamMaxBytes)),
               (f"{self.stream}_DLQ", parse_bytes("nats.dlqMaxBytes", self.dlqMaxBytes)),
               (f"{self.stream}_DEVICES", parse_bytes("nats.devicesMaxBytes", self.devicesMaxBytes)),
               (f"KV_{self.stream}_NONCES", parse_bytes("nats.noncesMaxBytes", self.noncesMaxBytes))]
        out += [(f"channel of broker {b}", parse_bytes("nats.channelMaxBytes", self.channelMaxBytes))
                for b in sorted(set(brokers))]
        out.append(("dead-letter channel", parse_bytes("nats.deadLetterChannelMaxBytes", self.deadLetterChannelMaxBytes)))
        return out


def check_store_budget(nats: "NatsSettings", brokers) -> None:
    """SettingsError unless every stream's reservation fits the JetStream store of each server.

    Conservative on purpose: with ``streamReplicas`` equal to ``replicas`` every server holds a
    replica of every stream; with fewer, JetStream may still place several on one server.
    """
    parts = nats.reservations(brokers)
    total = sum(n for _, n in parts)
    if total > nats.store_bytes:
        listing = ", ".join(f"{what} {_fmt(n)}" for what, n in parts)
        raise SettingsError(
            f"lscloud:nats: the streams reserve {_fmt(total)} ({listing}) but each server's JetStream store "
            f"holds {_fmt(nats.store_bytes)} (storageSize {nats.storageSize} less 10%): JetStream would refuse "
            "the last stream with 'insufficient storage resources'. Lower nats.streamMaxBytes, dlqMaxBytes, "
            "devicesMaxBytes, noncesMaxBytes, channelMaxBytes or deadLetterChannelMaxBytes, or raise nats.storageSize")


@dataclass(frozen=True)
class ObjectStoreSettings:
    engine: str = "minio"
    servers: int = 4
    drivesPerServer: int = 1
    volumeSize: str = "50Gi"
    storageClass: str = ""
    # The first release after minio/minio#21550 (merged 2025-08-29): before it, a PUT under If-Match
    # to a missing key wrote anyway (#21526), so a stale writer brought a deleted document back.
    # That this image holds the fix is inferred from the dates, not checked here (unverified): every
    # function's store-check Job (infra/components/hooks.py) checks it on the running store and
    # stops the deploy if not. The community edition publishes no later images (source only).
    image: str = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
    mcImage: str = "quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z"
    bucketPrefix: str = "lscloud"
    requests: Mapping[str, str] = field(default_factory=lambda: {"cpu": "250m", "memory": "1Gi"})
    limits: Mapping[str, str] = field(default_factory=lambda: {"cpu": "2", "memory": "4Gi"})
    # the buckets' lifecycle rule deletes run-once records (idempotency and events-seen records, and
    # nonces left from before they moved to NATS) this many days after their last write: a backstop to the runtime's sweep on the
    # clock's tick, so it must outlive the longest of them (lscloud/runonce.py)
    runOnceExpiryDays: int = 3
    # every bucket is versioned: an overwritten or deleted object stays recoverable this many days
    noncurrentVersionDays: int = 30
    # each server on a node of its own (required anti-affinity): with two on one node, losing it takes
    # half the drives of the erasure set, below MinIO's write quorum, and every function's writes fail.
    # Needs at least `servers` nodes; a stack with fewer (dev) sets false: the servers are then spread
    # as evenly as the nodes allow, and losing a node that holds two stops writes until it is back
    onePerNode: bool = True

    def __post_init__(self):
        if self.engine not in OBJECT_STORE_ENGINES:
            raise SettingsError(f"lscloud:objectStore.engine must be one of {OBJECT_STORE_ENGINES}, got {self.engine!r}")
        if not isinstance(self.onePerNode, bool):
            raise SettingsError(f"lscloud:objectStore.onePerNode must be true or false, got {self.onePerNode!r}")
        _positive("objectStore", servers=self.servers, drivesPerServer=self.drivesPerServer,
                  runOnceExpiryDays=self.runOnceExpiryDays, noncurrentVersionDays=self.noncurrentVersionDays)
        check_run_once_expiry(self.runOnceExpiryDays, [{}])
        if self.servers * self.drivesPerServer < 4 and self.servers > 1:
            raise SettingsError("lscloud:objectStore: distributed MinIO needs at least 4 drives (servers x drivesPerServer)")


@dataclass(frozen=True)
class KnativeSettings:
    """Knative's release manifests (only versions listed in :mod:`.releases`, whose assets are known
    to be published) and its configuration."""

    install: bool = True
    servingVersion: str = "1.23.0"
    eventingVersion: str = "1.23.0"
    kourierVersion: str = "1.23.0"
    natssVersion: str = "1.19.6"
    ingressNamespace: str = "kourier-system"
    # TLS for the public domain through cert-manager (a ClusterIssuer you run); "" disables.
    # Serving's own controller does it (no net-certmanager since Serving 1.15).
    clusterIssuer: str = "letsencrypt"
    deliveryRetry: int = 5
    # the API server's service-account issuer (its --service-account-issuer; `kubectl get --raw
    # /.well-known/openid-configuration` shows it): the `iss` of the tokens Knative Eventing presents
    # at the functions' /events. kubeadm's default, which most installers keep.
    eventsIssuer: str = "https://kubernetes.default.svc.cluster.local"
    # the pod network (Kourier, the activator and queue-proxy append to X-Forwarded-For from there):
    # the functions take the last address outside it as the client's (LSCLOUD_TRUSTED_PROXIES), so
    # anonymous callers' rate limits are per citizen, not per proxy. Magnum's Calico pool by default;
    # set your CNI's pod CIDRs for a cluster built otherwise
    podCidrs: tuple[str, ...] = ("10.100.0.0/16",)
    # the load balancer in front of Kourier speaks the PROXY protocol (infra/README.md, "The
    # caller's address"): an Octavia amphora is a TCP proxy, so without it Kourier sees the
    # amphora's address and every anonymous caller shares one rate limit. Both ends switch together:
    # Kourier's Service asks Octavia for a PROXY pool, Kourier's external listeners expect the header
    # (a connection without it is refused). Off unless the stack says so: on a balancer that sends no
    # PROXY header, it would refuse every request
    proxyProtocol: bool = False

    def __post_init__(self):
        _positive("knative", deliveryRetry=self.deliveryRetry)
        if not isinstance(self.proxyProtocol, bool):
            raise SettingsError(f"lscloud:knative.proxyProtocol must be true or false, got {self.proxyProtocol!r}")
        object.__setattr__(self, "podCidrs", tuple(self.podCidrs))
        for cidr in self.podCidrs:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise SettingsError(f"lscloud:knative.podCidrs: {cidr!r} is not a network (10.100.0.0/16)") from None
        if not self.eventsIssuer.startswith("https://"):
            raise SettingsError(f"lscloud:knative.eventsIssuer must be an https:// URL (the API server's "
                                f"service-account issuer), got {self.eventsIssuer!r}")
        for key, repo in (("servingVersion", releases.SERVING), ("eventingVersion", releases.EVENTING),
                          ("kourierVersion", releases.KOURIER), ("natssVersion", releases.NATSS)):
            try:
                releases.find(repo, getattr(self, key))
            except KeyError as exc:
                raise SettingsError(f"lscloud:knative.{key}: {exc.args[0]}") from None
        if releases.minor(self.natssVersion) > releases.minor(self.eventingVersion):
            raise SettingsError(f"lscloud:knative.natssVersion {self.natssVersion} is newer than eventingVersion "
                                f"{self.eventingVersion}: the channel is built against its Eventing release")
        if releases.minor(self.servingVersion) != releases.minor(self.eventingVersion):
            raise SettingsError("lscloud:knative: servingVersion and eventingVersion must be the same minor release "
                                f"(got {self.servingVersion} and {self.eventingVersion})")


@dataclass(frozen=True)
class TelemetrySettings:
    replicas: int = 2
    image: str = "otel/opentelemetry-collector-contrib:0.111.0"
    tracesBackend: str = "tempo-distributor.monitoring.svc.cluster.local:4317"
    tracesBackendInsecure: bool = True
    metricsNamespace: str = "monitoring"  # where Prometheus runs (may scrape :8889)
    # the share of requests and events Knative's own components trace (config-observability)
    knativeSamplingRate: float = 1.0

    def __post_init__(self):
        _positive("telemetry", replicas=self.replicas)
        if not isinstance(self.knativeSamplingRate, (int, float)) or not 0 <= self.knativeSamplingRate <= 1:
            raise SettingsError(f"lscloud:telemetry.knativeSamplingRate must be between 0 and 1, "
                                f"got {self.knativeSamplingRate!r}")


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
class TlsSettings:
    """The cluster's internal CA (cert-manager): it signs the NATS and MinIO servers and every
    client certificate NATS maps to a user. ``certManagerNamespace`` is cert-manager's cluster
    resource namespace, where a ClusterIssuer's CA secret must live."""

    certManagerNamespace: str = "cert-manager"
    caDuration: str = "87600h"    # 10 years; cert-manager renews it at two thirds
    certDuration: str = "2160h"   # 90 days for servers and clients
    renewBefore: str = "720h"     # renewed 30 days before expiry (servers reload, clients re-read)

    def __post_init__(self):
        for key in ("caDuration", "certDuration", "renewBefore"):
            parse_duration(f"tls.{key}", getattr(self, key))
        if duration_ns(self.renewBefore) >= duration_ns(self.certDuration):
            raise SettingsError("lscloud:tls.renewBefore must be shorter than tls.certDuration")


@dataclass(frozen=True)
class BackupSettings:
    """Copies of the data outside the cluster: every bucket mirrored to ``endpoint`` (any S3 API:
    another MinIO, the province's object storage) and the JetStream streams backed up there too.
    ``endpoint`` "" = no backups (a warning at every ``pulumi up``). The target's credentials are
    the secrets ``backupAccessKey`` and ``backupSecretKey``. A deletion reaches the copy at the next
    mirror; what it deleted stays recoverable there ``keepDeletedDays``, then is gone for good (erased
    personal data must not outlive its erasure in a backup: Law No. 91/2025/QH15, Art. 14)."""

    endpoint: str = ""
    targetCidrs: tuple[str, ...] = ()        # where the target answers (the jobs' egress, 443/9000)
    bucket: str = "lscloud-backup"
    objectsSchedule: str = "17 * * * *"     # hourly mirror of every bucket (new, changed and deleted objects)
    streamsSchedule: str = "40 1 * * *"     # daily JetStream snapshot of every stream
    keepStreamBackups: int = 14              # snapshots kept on the target
    keepDeletedDays: int = 30                # grace for a deleted or overwritten object in the copy

    def __post_init__(self):
        object.__setattr__(self, "targetCidrs", tuple(self.targetCidrs))
        if self.endpoint and not re.match(r"^https?://[^/\s]+", self.endpoint):
            raise SettingsError(f"lscloud:backup.endpoint must be an http(s) URL, got {self.endpoint!r}")
        if self.endpoint and not self.targetCidrs:
            raise SettingsError("lscloud:backup.targetCidrs is required with backup.endpoint: the addresses the "
                                "backup jobs may reach")
        _positive("backup", keepStreamBackups=self.keepStreamBackups, keepDeletedDays=self.keepDeletedDays)
        for key in ("objectsSchedule", "streamsSchedule"):
            if len(str(getattr(self, key)).split()) != 5:
                raise SettingsError(f"lscloud:backup.{key} must be a cron schedule of five fields")


RETENTION_MODES = ("governance", "compliance")


@dataclass(frozen=True)
class Retention:
    """Object lock on a function's bucket: every object version is kept ``days`` days. ``governance``
    lets an operator holding the bypass right delete early; ``compliance`` lets nobody (not even root)."""

    mode: str = "governance"
    days: int = 3650

    def __post_init__(self):
        if self.mode not in RETENTION_MODES:
            raise SettingsError(f"retention.mode must be one of {RETENTION_MODES}, got {self.mode!r}")
        _positive("retention", days=self.days)


@dataclass(frozen=True)
class CorsSettings:
    """Web pages that call the functions from a browser (``lscloud:cors``). Every function has a host
    of its own (``https://<function>.<namespace>.<domain>``), so every web page is on another origin:
    without its origin here a browser lets no page read an answer. ``origins``: exact origins as the
    page's address bar shows them (``https://dichvucong.langson.gov.vn``; https only, no path), or
    ``*`` (any page may read the public GET routes, nothing else). Empty: no page (the default).
    Every function gets the same list (``LSCLOUD_CORS_ORIGINS``, :mod:`lscloud.web.app`)."""

    origins: tuple[str, ...] = ()

    def __post_init__(self):
        from lscloud import config

        if isinstance(self.origins, str) or not all(isinstance(o, str) and o.strip() for o in self.origins):
            raise SettingsError(f"lscloud:cors.origins must be a list of origins, got {self.origins!r}")
        try:
            origins = config.parse_origins("lscloud:cors.origins", ",".join(self.origins), https_only=True)
        except config.ConfigError as exc:
            raise SettingsError(str(exc)) from None
        object.__setattr__(self, "origins", origins)


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
class EgressRule:
    """Addresses outside the cluster one function may reach (``functions.<name>.egress``), on
    these TCP ports: the function's NetworkPolicy gets it, no other function's."""

    cidr: str
    ports: tuple[int, ...] = (443,)

    def __post_init__(self):
        try:
            net = ipaddress.ip_network(str(self.cidr))
        except ValueError:
            raise SettingsError(f"cidr: {self.cidr!r} is not a network (a CIDR such as 192.0.2.0/24, "
                                "host bits zero)") from None
        object.__setattr__(self, "cidr", str(net))
        ports = self.ports
        if isinstance(ports, (str, int)) or not ports:
            raise SettingsError(f"ports: a list of TCP ports such as [443], got {ports!r}")
        # `pulumi config set --path 'functions.x.egress[0].ports[0]' 443` stores the port as text
        ports = [int(port) if isinstance(port, str) and port.isdigit() else port for port in ports]
        for port in ports:
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                raise SettingsError(f"ports: {port!r} is not a port (1-65535)")
        object.__setattr__(self, "ports", tuple(sorted(set(ports))))

    @property
    def network(self):
        return ipaddress.ip_network(self.cidr)


@dataclass(frozen=True)
class FunctionOverride:
    """Per-stack changes to one function: image tag or full image, scale bounds, egress."""

    tag: str = ""
    image: str = ""
    minScale: int | None = None
    maxScale: int | None = None
    # legal records (dossiers, documents): object lock with a default retention on the bucket
    retention: Retention | None = None
    # addresses outside the cluster only this function reaches (softatm: its banks' webhooks)
    egress: tuple[EgressRule, ...] = ()

    def __post_init__(self):
        if isinstance(self.retention, Mapping):
            try:
                object.__setattr__(self, "retention", Retention(**self.retention))
            except TypeError as exc:
                raise SettingsError(f"retention: {exc}") from None
        if isinstance(self.egress, (str, Mapping)):
            raise SettingsError(f"egress: a list of {{cidr, ports}}, got {self.egress!r}")
        rules = []
        for i, rule in enumerate(self.egress or ()):
            if isinstance(rule, EgressRule):
                rules.append(rule)
                continue
            if not isinstance(rule, Mapping):
                raise SettingsError(f"egress[{i}]: a {{cidr, ports}} mapping, got {rule!r}")
            unknown = sorted(set(rule) - {"cidr", "ports"})
            if unknown or "cidr" not in rule:
                raise SettingsError(f"egress[{i}]: needs cidr (and ports), unknown field(s) {unknown}")
            try:
                rules.append(EgressRule(**rule))
            except SettingsError as exc:
                raise SettingsError(f"egress[{i}].{exc}") from None
        object.__setattr__(self, "egress", tuple(rules))


@dataclass(frozen=True)
class StackSettings:
    domain: str
    imageRegistry: str
    imageTag: str
    namespace: str = "lscloud"
    dataNamespace: str = "lscloud-data"
    telemetryNamespace: str = "lscloud-telemetry"
    egressCidrs: tuple[str, ...] = ()
    # where the API server answers (its JWKS verifies the event senders' tokens): the control
    # plane's addresses, port 443/6443; default the cluster's subnet (magnum, instances)
    apiServerCidrs: tuple[str, ...] = ()
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)
    objectStore: ObjectStoreSettings = field(default_factory=ObjectStoreSettings)
    knative: KnativeSettings = field(default_factory=KnativeSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    bridge: BridgeSettings = field(default_factory=BridgeSettings)
    jwt: JwtSettings = field(default_factory=JwtSettings)
    cors: CorsSettings = field(default_factory=CorsSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    functionDefaults: FunctionDefaults = field(default_factory=FunctionDefaults)
    functions: Mapping[str, FunctionOverride] = field(default_factory=dict)
    # the functions' own config maps and generated secrets, by the names their func.yaml refers to
    # ({{ configMap:name:key }}, {{ secret:name:key }}); see components/appconfig.py
    configMaps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    generatedSecrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self):
        if not self.apiServerCidrs:
            if self.cluster.mode == "existing":
                raise SettingsError("lscloud:apiServerCidrs is required with cluster.mode=existing: the API "
                                    "server's addresses (functions read its JWKS to verify event senders)")
            object.__setattr__(self, "apiServerCidrs", (self.cluster.subnetCidr,))
        store = self.objectStore
        if (self.cluster.mode != "existing" and store.onePerNode and store.servers > 1
                and self.cluster.workerCount < store.servers):
            raise SettingsError(f"lscloud:objectStore.onePerNode needs a node per MinIO server: objectStore.servers is "
                                f"{store.servers} but cluster.workerCount is {self.cluster.workerCount} (one server "
                                "would never be scheduled); add workers, or set objectStore.onePerNode: false")
        for kind, value in (("configMaps", self.configMaps), ("generatedSecrets", self.generatedSecrets)):
            if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
                raise SettingsError(f"lscloud:{kind} must map a name to {{key: value}}")
        # an egress rule opens addresses outside the cluster: one onto the pod network would let the
        # function past the other pods' policies, by address instead of by name
        pods = [ipaddress.ip_network(c) for c in self.knative.podCidrs]
        for name, o in self.functions.items():
            for i, rule in enumerate(o.egress):
                inside = [str(net) for net in pods if rule.network.version == net.version and rule.network.overlaps(net)]
                if inside:
                    raise SettingsError(f"lscloud:functions.{name}.egress[{i}].cidr {rule.cidr} overlaps the pod "
                                        f"network {inside} (knative.podCidrs): egress rules are for addresses "
                                        "outside the cluster")

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
            apiServerCidrs=tuple(get("apiServerCidrs") or ()),
            cluster=_build(ClusterSettings, "cluster", get("cluster")),
            nats=_build(NatsSettings, "nats", get("nats")),
            objectStore=_build(ObjectStoreSettings, "objectStore", get("objectStore")),
            knative=_build(KnativeSettings, "knative", get("knative")),
            telemetry=_build(TelemetrySettings, "telemetry", get("telemetry")),
            bridge=_build(BridgeSettings, "bridge", get("bridge")),
            jwt=_build(JwtSettings, "jwt", get("jwt")),
            cors=_build(CorsSettings, "cors", get("cors")),
            tls=_build(TlsSettings, "tls", get("tls")),
            backup=_build(BackupSettings, "backup", get("backup")),
            configMaps={str(k): {str(kk): str(vv) for kk, vv in (v or {}).items()}
                        for k, v in (get("configMaps") or {}).items()},
            generatedSecrets={str(k): dict(v or {}) for k, v in (get("generatedSecrets") or {}).items()},
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
SECRET_KEYS = ("jwtPublicKey", "kubeconfig", "secrets", "backupAccessKey", "backupSecretKey")
# keys the program no longer reads: set, they stop the program (a value set there would do nothing)
RETIRED_KEYS = {
    "partnerKeys": "no function reads it: the soft ATM keeps its banks' HMAC keys in its own store, set "
                   "through its API (infra/README.md, \"Rotating a bank's key\"). Remove it: "
                   "`pulumi config rm partnerKeys`",
}
