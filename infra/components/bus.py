"""The event bus: a NATS JetStream cluster (StatefulSet, persistent volumes) and its R3 streams.

The stream matches what the runtime expects (:mod:`lscloud.bus`: subjects ``lscloud.>``, a
two-minute duplicate window for ``Nats-Msg-Id`` dedupe, file storage); it is created here with
``streamReplicas`` (3) replicas by a Job, before any function starts, so the runtime's
``ensure_stream`` finds it and never creates an R1 stream of its own. The same Job creates the
dead-letter stream ``<stream>_DLQ`` (``lscloud-dlq.>``) where the event bridge puts the events a
broker refused (the bridge only checks that both exist), and the key-value bucket of partner request
nonces ``<stream>_NONCES`` (:mod:`lscloud.nonces`; its stream ``KV_<stream>_NONCES``).

Every stream is bounded in bytes and age (``nats.*MaxBytes`` / ``*MaxAge``), and their sum with the
brokers' channel streams must fit the store (:func:`.settings.check_store_budget`).

NATS speaks TLS only (clients and cluster routes), with ``nats-server-tls`` from the internal CA;
a client is known by its certificate and may do only what its user may (:mod:`.natsauth`). A
sidecar signals nats-server to reload when cert-manager renews the certificate.

**Field devices** (when a function subscribes to a device domain's messages, :func:`lscloud.devices.domains`):
nats-server's own MQTT listener (TLS with the same server certificate; ``nats.mqttPort``) behind
the Service ``nats-mqtt`` (``nats.mqttServiceType``, reachable from ``nats.mqttSourceCidrs`` only).
A device authenticates with the username and password its domain's function issued and may publish
its own topics only; what it publishes lands in ``<stream>_DEVICES`` (created by the same Job), and
the devices relay (:mod:`.devices`) puts it on the stream as events. Credentials are issued at run
time, so they cannot be in the ConfigMap: nats.conf includes the accounts from a file that the
``device-users`` init container writes before the server starts and its sidecar twin rewrites when
credentials are issued or rotated, reloading the server (:func:`lscloud.devices.sync_users`; it
reads them, bcrypt hashes only, from the domains' buckets with a read-only store user of its own,
:mod:`.objectstore`).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import pulumi

from lscloud import devices, nonces
from lscloud.bus import DUPLICATE_WINDOW_S, STREAM_SUBJECTS
from lscloud.delivery import DLQ_SUBJECTS

from . import k8s as kx
from . import natsauth
from . import objectstore
from . import tls as tlsc
from .settings import NatsSettings, duration_ns, parse_bytes

NAME = "nats"
CLIENT_PORT, CLUSTER_PORT, MONITOR_PORT = 4222, 6222, 8222
SERVER_CERT = "nats-server-tls"
ADMIN_CERT = "nats-admin"
PID_FILE = "/var/run/nats/nats.pid"
MQTT_SERVICE = f"{NAME}-mqtt"
CONFIG_DIR = "/etc/nats"                         # the ConfigMap's files: nats.conf, …
ACCOUNTS_TEMPLATE = f"{CONFIG_DIR}/accounts.conf"  # the platform's users only
AUTH_DIR = "/etc/nats-auth"                      # the device-users containers' emptyDir
ACCOUNTS_FILE = f"{AUTH_DIR}/accounts.conf"      # the template with the issued device users
DEVICE_USERS = "device-users"
DEVICE_USERS_HEALTH_PORT = 8080  # the sidecar's probes (lscloud.health)


def client_url(namespace: str) -> str:
    return f"tls://{NAME}.{namespace}.svc.cluster.local:{CLIENT_PORT}"


def render_accounts(s: NatsSettings, functions, device_domains: Sequence[str] = ()) -> str:
    """The ``accounts`` block nats.conf includes: the platform's users, and the marker line where
    the device users go (:func:`lscloud.devices.render_users`; as it stands, a comment)."""
    return natsauth.render_accounts(natsauth.users(functions, s.stream, device_domains))


def render_config(s: NatsSettings, namespace: str, functions, *, device_domains: Sequence[str] = (),
                  store_dir: str = "/data", tls: natsauth.TlsPaths | None = None, pid_file: str = PID_FILE,
                  accounts_file: str | None = None, config_dir: str = CONFIG_DIR) -> str:
    """nats.conf: TLS with certificate-mapped users (the included ``accounts``), JetStream with a
    store as large as the volume less 10%, the cluster's routes (TLS, peers verified) when there are
    replicas, and with ``device_domains`` the MQTT listener (TLS; devices log in with a password).

    ``accounts_file``: where the accounts are (default: the device-users file when there are device
    domains, else the ConfigMap's template as it is). nats-server reads an ``include`` relative to
    the including file's folder, an absolute path too, so it is written relative to ``config_dir``."""
    tls = tls or natsauth.TlsPaths()
    accounts_file = accounts_file or (ACCOUNTS_FILE if device_domains else ACCOUNTS_TEMPLATE)
    routes = ", ".join(f"nats://{NAME}-{i}.{NAME}-headless.{namespace}.svc.cluster.local:{CLUSTER_PORT}"
                       for i in range(s.replicas))
    cluster = ""
    if s.replicas > 1:
        route_tls = natsauth.render_tls(tls, verify="verify").replace("\n", "\n  ")
        cluster = (f"cluster {{\n  name: lscloud\n  port: {CLUSTER_PORT}\n  routes: [{routes}]\n  {route_tls.rstrip()}\n}}\n")
    return (f"server_name: $SERVER_NAME\nport: {CLIENT_PORT}\nhttp_port: {MONITOR_PORT}\n"
            f"pid_file: {pid_file}\nmax_payload: 8MB\nlame_duck_duration: 30s\nlame_duck_grace_period: 10s\n"
            f"jetstream {{\n  store_dir: {store_dir}\n  max_file_store: {s.store_bytes}\n  max_memory_store: 256MB\n}}\n"
            + natsauth.render_tls(tls)
            + (_render_mqtt(s, tls) if device_domains else "")
            + f'include "{os.path.relpath(accounts_file, config_dir)}"\n'
            + cluster)


def _render_mqtt(s: NatsSettings, tls: natsauth.TlsPaths) -> str:
    # no client certificates here: a device logs in with its username and password, over TLS; its
    # MQTT session state lives in JetStream with as many replicas as the events' stream
    return (f"mqtt {{\n  port: {s.mqttPort}\n  stream_replicas: {s.streamReplicas}\n"
            f"  tls {{\n    cert_file: \"{tls.cert}\"\n    key_file: \"{tls.key}\"\n    timeout: 5\n  }}\n}}\n")


def _stream(name: str, subjects, s: NatsSettings, max_bytes: str, max_age: str, key: str,
            max_msg_size: int = -1) -> dict:
    return {
        "name": name,
        "subjects": list(subjects),
        "retention": "limits",
        "storage": "file",
        "num_replicas": s.streamReplicas,
        "duplicate_window": int(DUPLICATE_WINDOW_S * 1e9),
        "max_age": duration_ns(max_age),
        "max_bytes": parse_bytes(key, max_bytes),
        "discard": "old",
        "max_msgs": -1,
        "max_consumers": -1,
        "max_msgs_per_subject": -1,
        "max_msg_size": max_msg_size,
    }


def render_stream(s: NatsSettings) -> dict:
    """The stream's JetStream API config (what `nats stream add --config` reads)."""
    return _stream(s.stream, STREAM_SUBJECTS, s, s.streamMaxBytes, s.streamMaxAge, "nats.streamMaxBytes")


def render_devices_stream(s: NatsSettings) -> dict:
    """What field devices publish (``devices.>``), kept until the relay has moved it to the stream."""
    return _stream(devices.stream_name(s), devices.SUBJECTS, s, s.devicesMaxBytes, s.devicesMaxAge,
                   "nats.devicesMaxBytes", max_msg_size=devices.MAX_MESSAGE_BYTES)


def render_nonces_stream(s: NatsSettings) -> dict:
    """The partner nonces' key-value bucket (:mod:`lscloud.nonces`), as the runtime shapes it: each
    key kept ``noncesMaxAge``, new keys refused once ``noncesMaxBytes`` are held."""
    return nonces.bucket_config(s.stream, duration_ns(s.noncesMaxAge) / 1e9,
                                max_bytes=parse_bytes("nats.noncesMaxBytes", s.noncesMaxBytes),
                                replicas=s.streamReplicas).as_dict()


def dlq_stream_name(s: NatsSettings) -> str:
    return f"{s.stream}_DLQ"  # lscloud.delivery.dlq_stream


def render_dlq_stream(s: NatsSettings) -> dict:
    """The dead-letter stream: same replicas, its own subjects and limits."""
    return _stream(dlq_stream_name(s), DLQ_SUBJECTS, s, s.dlqMaxBytes, s.dlqMaxAge, "nats.dlqMaxBytes")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


RELOADER = f"""last=""
while true; do
  cur=$(cat /etc/nats-tls/tls.crt /etc/nats-tls/ca.crt 2>/dev/null | sha256sum)
  if [ -n "$last" ] && [ "$cur" != "$last" ] && [ -s {PID_FILE} ]; then
    nats-server --signal reload={PID_FILE} && echo "certificate renewed: nats-server reloaded"
  fi
  last="$cur"
  sleep 60
done
"""


def _device_users_container(s: NatsSettings, *, image: str, buckets: Sequence[str], namespace: str,
                            every: bool) -> dict:
    """``python -m lscloud.devices sync-users``: once before the server starts (``every`` False, the
    init container), then every ``deviceUsersEverySeconds`` beside it, reloading it on a change."""
    args = ["python", "-m", "lscloud.devices", "sync-users", "--template", ACCOUNTS_TEMPLATE, "--out", ACCOUNTS_FILE]
    for b in buckets:
        args += ["--bucket", b]
    probes = {}
    if every:
        args += ["--pid-file", PID_FILE, "--every", str(s.deviceUsersEverySeconds),
                 "--health-port", str(DEVICE_USERS_HEALTH_PORT)]
        probes = {"ports": [{"name": "users-health", "containerPort": DEVICE_USERS_HEALTH_PORT}],
                  **kx.health_probes(DEVICE_USERS_HEALTH_PORT)}
    secret = lambda key: {"secretKeyRef": {"name": objectstore.DEVICE_READER_SECRET, "key": key}}  # noqa: E731
    return {
        "name": DEVICE_USERS,
        "image": image,
        "command": args,
        "env": [{"name": "LSCLOUD_S3_ENDPOINT", "value": objectstore.endpoint(namespace)},
                {"name": "LSCLOUD_S3_ACCESS_KEY", "valueFrom": secret("access-key")},
                {"name": "LSCLOUD_S3_SECRET_KEY", "valueFrom": secret("secret-key")},
                {"name": "LSCLOUD_S3_CA_FILE", "value": "/etc/nats-ca/ca.crt"},
                {"name": "OTEL_SERVICE_NAME", "value": DEVICE_USERS},
                {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/nats"}, {"name": "auth", "mountPath": AUTH_DIR},
                         {"name": "pid", "mountPath": "/var/run/nats"},
                         {"name": "ca", "mountPath": "/etc/nats-ca", "readOnly": True}],
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "192Mi"}},
        **probes,
        "securityContext": kx.restricted_security_context(),
    }


def render(s: NatsSettings, namespace: str, functions=(), *, client_namespaces: tuple[str, ...],
           monitor_namespaces: tuple[str, ...], client_selectors: tuple[str, ...] = (),
           device_domains: Sequence[str] = (), device_buckets: Sequence[str] = (), platform_image: str = "") -> list[dict]:
    """Every Kubernetes object of the NATS cluster, in creation order (certificates: :mod:`.tls`).

    ``device_domains``: the functions that own device domains; ``device_buckets`` their buckets,
    where their devices' credentials are; ``platform_image`` runs the device-users containers."""
    if device_domains and not (device_buckets and platform_image):
        raise ValueError("device domains need their buckets and the platform image (the device-users sidecar)")
    lbl = kx.labels(NAME, "event-bus")
    sel = kx.selector(NAME)
    ports = [{"name": "client", "port": CLIENT_PORT, "targetPort": CLIENT_PORT},
             {"name": "cluster", "port": CLUSTER_PORT, "targetPort": CLUSTER_PORT},
             {"name": "monitor", "port": MONITOR_PORT, "targetPort": MONITOR_PORT}]
    if device_domains:
        ports.append({"name": "mqtt", "port": s.mqttPort, "targetPort": s.mqttPort})
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": f"{NAME}-config", "namespace": namespace, "labels": lbl},
                  "data": {"nats.conf": render_config(s, namespace, functions, device_domains=device_domains),
                           "accounts.conf": render_accounts(s, functions, device_domains), "reload.sh": RELOADER,
                           "stream.json": json.dumps(render_stream(s), indent=2, sort_keys=True),
                           "dlq-stream.json": json.dumps(render_dlq_stream(s), indent=2, sort_keys=True),
                           "devices-stream.json": json.dumps(render_devices_stream(s), indent=2, sort_keys=True),
                           "nonces-stream.json": json.dumps(render_nonces_stream(s), indent=2, sort_keys=True)}}
    headless = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": f"{NAME}-headless", "namespace": namespace, "labels": lbl},
                "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": sel, "ports": ports}}
    client = {"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
              "spec": {"selector": sel, "ports": ports[:1]}}
    mqtt_spec = {"type": s.mqttServiceType, "selector": sel, "ports": ports[3:]}
    if s.mqttServiceType != "ClusterIP":
        # the devices' own addresses reach the pods, so the NetworkPolicy's mqttSourceCidrs can judge them
        mqtt_spec["externalTrafficPolicy"] = "Local"
    mqtt = {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": MQTT_SERVICE, "namespace": namespace, "labels": lbl}, "spec": mqtt_spec}
    volume_claim = {"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": s.storageSize}}}}
    if s.storageClass:
        volume_claim["spec"]["storageClassName"] = s.storageClass
    health = lambda q: {"httpGet": {"path": f"/healthz{q}", "port": MONITOR_PORT}, "periodSeconds": 10,  # noqa: E731
                        "timeoutSeconds": 5, "failureThreshold": 3}
    config_digest = _digest(config_map["data"]["nats.conf"] + config_map["data"]["accounts.conf"])
    config_items = [{"key": "nats.conf", "path": "nats.conf"}, {"key": "reload.sh", "path": "reload.sh"},
                    {"key": "accounts.conf", "path": "accounts.conf"}]
    device_users = (dict(image=platform_image, buckets=list(device_buckets), namespace=namespace)
                    if device_domains else None)
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
        "spec": {
            "serviceName": f"{NAME}-headless",
            "replicas": s.replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": sel},
            "template": {
                # a changed config (a new function's user, new limits) rolls the servers one by one
                "metadata": {"labels": lbl, "annotations": {"lscloud.langson.gov.vn/config-digest": config_digest}},
                "spec": {
                    "automountServiceAccountToken": False,
                    # the reloader signals nats-server by the pid in its pid file
                    "shareProcessNamespace": True,
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
                    "topologySpreadConstraints": kx.spread_over_nodes(sel, hard=True),
                    "containers": [{
                        "name": "nats",
                        "image": s.image,
                        "args": ["--config", "/etc/nats/nats.conf"],
                        "env": [{"name": "SERVER_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "ports": [{"name": p["name"], "containerPort": p["port"]} for p in ports],
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/nats"}, {"name": "data", "mountPath": "/data"},
                                         {"name": "pid", "mountPath": "/var/run/nats"},
                                         {"name": "tls", "mountPath": "/etc/nats-tls", "readOnly": True}]
                        + ([{"name": "auth", "mountPath": AUTH_DIR, "readOnly": True}] if device_users else []),
                        "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
                        "startupProbe": {**health(""), "failureThreshold": 90},
                        "readinessProbe": health("?js-server-only=true"),
                        "livenessProbe": health("?js-enabled-only=true"),
                        "lifecycle": {"preStop": {"exec": {"command": ["nats-server", "--signal", "ldm=/var/run/nats/nats.pid"]}}},
                        "securityContext": kx.restricted_security_context(),
                    }, {
                        # cert-manager renews nats-server-tls in place: tell nats-server to re-read it
                        "name": "tls-reloader",
                        "image": s.image,
                        "command": ["sh", "/etc/nats/reload.sh"],
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/nats"},
                                         {"name": "pid", "mountPath": "/var/run/nats"},
                                         {"name": "tls", "mountPath": "/etc/nats-tls", "readOnly": True}],
                        "resources": {"requests": {"cpu": "5m", "memory": "16Mi"}, "limits": {"cpu": "50m", "memory": "32Mi"}},
                        "securityContext": kx.restricted_security_context(),
                    }] + ([_device_users_container(s, every=True, **device_users)] if device_users else []),
                    "volumes": [{"name": "config", "configMap": {"name": f"{NAME}-config", "items": config_items}},
                                {"name": "pid", "emptyDir": {}},
                                {"name": "tls", "secret": {"secretName": SERVER_CERT}}]
                    + ([{"name": "auth", "emptyDir": {}},
                        {"name": "ca", "secret": {"secretName": SERVER_CERT,
                                                  "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]
                       if device_users else []),
                },
            },
            "volumeClaimTemplates": [volume_claim],
        },
    }
    if device_users:
        # the accounts file exists before nats-server reads it (the platform's users at least)
        statefulset["spec"]["template"]["spec"]["initContainers"] = [
            _device_users_container(s, every=False, **device_users)]
    # what the setup Job creates (or brings to its declared config), from the ConfigMap's files
    streams = ((s.stream, "stream.json"), (dlq_stream_name(s), "dlq-stream.json"),
               (devices.stream_name(s), "devices-stream.json"), (f"KV_{nonces.bucket(s.stream)}", "nonces-stream.json"))
    setup = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": kx.dns_name(NAME, "streams", _digest("".join(config_map["data"][f] for _, f in streams))),
                     "namespace": namespace,
                     "labels": kx.labels(f"{NAME}-setup", "event-bus")},
        "spec": {
            "backoffLimit": 10,
            "template": {
                "metadata": {"labels": kx.labels(f"{NAME}-setup", "event-bus")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "containers": [{
                        "name": "streams",
                        "image": s.boxImage,
                        "command": ["sh", "-ec"],
                        # create, or bring an existing stream to the declared config (replicas included)
                        "args": ["\n".join(_stream_command(client_url(namespace), name, f"/etc/nats/{file}")
                                           for name, file in streams)],
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/nats"}, tlsc.client_mount()],
                        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
                        "securityContext": {**kx.restricted_security_context(), "runAsUser": 1000},
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": f"{NAME}-config", "items": [
                        {"key": f, "path": f} for _, f in streams]}},
                        tlsc.client_volume(ADMIN_CERT)],
                },
            },
        },
    }
    peers = {"podSelector": {"matchLabels": sel}}
    policy = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
        "spec": {
            "podSelector": {"matchLabels": sel},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [{"namespaceSelector": kx.ns_selector(ns)} for ns in client_namespaces]
                 + [{"podSelector": {"matchLabels": kx.selector(f"{NAME}-setup")}}]
                 + [{"podSelector": {"matchLabels": kx.selector(sel)}} for sel in client_selectors],
                 "ports": [{"protocol": "TCP", "port": CLIENT_PORT}]},
                {"from": [peers], "ports": [{"protocol": "TCP", "port": CLUSTER_PORT}]},
                {"from": [{"namespaceSelector": kx.ns_selector(ns)} for ns in monitor_namespaces],
                 "ports": [{"protocol": "TCP", "port": MONITOR_PORT}]},
            ] + ([{"from": [{"ipBlock": {"cidr": cidr}} for cidr in s.mqttSourceCidrs],
                   "ports": [{"protocol": "TCP", "port": s.mqttPort}]}] if device_users else []),
            "egress": [{"to": [peers], "ports": [{"protocol": "TCP", "port": CLUSTER_PORT}]}]
            # the device-users containers read the credentials from the object store
            + ([{"to": [{"podSelector": {"matchLabels": kx.selector(objectstore.NAME)}}],
                 "ports": [{"protocol": "TCP", "port": objectstore.PORT}]}] if device_users else [])
            + [kx.dns_egress_rule()],
        },
    }
    setup_policy = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": f"{NAME}-setup", "namespace": namespace, "labels": lbl},
        "spec": {"podSelector": {"matchLabels": kx.selector(f"{NAME}-setup")}, "policyTypes": ["Ingress", "Egress"],
                 "egress": [{"to": [peers], "ports": [{"protocol": "TCP", "port": CLIENT_PORT}]}, kx.dns_egress_rule()]},
    }
    budget = kx.pdb(NAME, namespace, sel, max_unavailable=1)  # R3 streams keep quorum with one server down
    return ([config_map, headless, client] + ([mqtt] if device_users else [])
            + [policy, setup_policy, statefulset, budget, setup])


def nats_cli(server: str) -> str:
    """The ``nats`` CLI as the admin user (its client certificate, the internal CA)."""
    return f"nats --server {server} --tlscert {tlsc.CERT_FILE} --tlskey {tlsc.KEY_FILE} --tlsca {tlsc.CA_FILE}"


def _stream_command(server: str, stream: str, config: str) -> str:
    cli = nats_cli(server)
    return (f"{cli} stream info {stream} >/dev/null 2>&1 "
            f"&& {cli} stream edit {stream} --config {config} --force "
            f"|| {cli} stream add {stream} --config {config}")


def certificates(s, namespace: str, tls_settings) -> list[dict]:
    """The server's certificate and the admin jobs' client certificate (signed by :mod:`.tls`)."""
    admin = next(u for u in natsauth.platform_users(s.stream) if u.name == "admin")
    # devices reach the MQTT listener by the names in nats.mqttHosts (and trust the internal CA)
    return [tlsc.render_server_cert(SERVER_CERT, namespace,
                                    tlsc.service_dns_names(NAME, namespace, f"{NAME}-headless")
                                    + tlsc.service_dns_names(MQTT_SERVICE, namespace) + list(s.mqttHosts),
                                    tls_settings),
            tlsc.render_client_cert(tlsc.ClientCert(ADMIN_CERT, namespace, admin.email), tls_settings)]


class EventBus(pulumi.ComponentResource):
    """NATS JetStream: 3 servers with persistent volumes, the R3 stream, its policies and PDB."""

    def __init__(self, name: str, settings: NatsSettings, namespace: str, functions=(), *,
                 client_namespaces: tuple[str, ...], monitor_namespaces: tuple[str, ...] = (),
                 client_selectors: tuple[str, ...] = (), device_domains: Sequence[str] = (),
                 device_buckets: Sequence[str] = (), platform_image: str = "",
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:EventBus", name, None, opts)
        self.objects = render(settings, namespace, functions, client_namespaces=client_namespaces,
                              monitor_namespaces=monitor_namespaces, client_selectors=client_selectors,
                              device_domains=device_domains, device_buckets=device_buckets,
                              platform_image=platform_image)
        created = {}
        for obj in self.objects:
            deps = [created["StatefulSet"]] if obj["kind"] == "Job" else []
            created[obj["kind"]] = kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj,
                                             pulumi.ResourceOptions(parent=self, depends_on=deps))
        self.ready = created["Job"]  # functions depend on the stream existing with its replicas
        self.url = pulumi.Output.from_input(client_url(namespace))
        self.stream = settings.stream
        self.register_outputs({"url": self.url, "stream": self.stream})
