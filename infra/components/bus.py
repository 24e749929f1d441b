"""The event bus: a NATS JetStream cluster (StatefulSet, persistent volumes) and its R3 streams.

The stream matches what the runtime expects (:mod:`lscloud.bus`: subjects ``lscloud.>``, a
two-minute duplicate window for ``Nats-Msg-Id`` dedupe, file storage); it is created here with
``streamReplicas`` (3) replicas by a Job, before any function starts, so the runtime's
``ensure_stream`` finds it and never creates an R1 stream of its own. The same Job creates the
dead-letter stream ``<stream>_DLQ`` (``lscloud-dlq.>``) where the event bridge puts the events a
broker refused; the bridge only checks that both exist.
"""

from __future__ import annotations

import json

import pulumi

from lscloud.bus import DUPLICATE_WINDOW_S, STREAM_SUBJECTS
from lscloud.delivery import DLQ_SUBJECTS

from . import k8s as kx
from .settings import NatsSettings

NAME = "nats"
CLIENT_PORT, CLUSTER_PORT, MONITOR_PORT = 4222, 6222, 8222


def client_url(namespace: str) -> str:
    return f"nats://{NAME}.{namespace}.svc.cluster.local:{CLIENT_PORT}"


def _size_bytes(size: str) -> str:
    """'10Gi' (a PVC size) -> the JetStream max_file_store, leaving 10% for the filesystem."""
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
    for suffix, mult in units.items():
        if size.endswith(suffix):
            return str(int(float(size[: -len(suffix)]) * mult * 0.9))
    return str(int(int(size) * 0.9))


def render_config(s: NatsSettings, namespace: str) -> str:
    routes = ", ".join(f"nats://{NAME}-{i}.{NAME}-headless.{namespace}.svc.cluster.local:{CLUSTER_PORT}"
                       for i in range(s.replicas))
    cluster = (f"cluster {{\n  name: lscloud\n  port: {CLUSTER_PORT}\n  routes: [{routes}]\n}}\n"
               if s.replicas > 1 else "")
    return (f"server_name: $SERVER_NAME\nport: {CLIENT_PORT}\nhttp_port: {MONITOR_PORT}\n"
            f"pid_file: /var/run/nats/nats.pid\nmax_payload: 8MB\nlame_duck_duration: 30s\nlame_duck_grace_period: 10s\n"
            f"jetstream {{\n  store_dir: /data\n  max_file_store: {_size_bytes(s.storageSize)}\n  max_memory_store: 256MB\n}}\n"
            + cluster)


def render_stream(s: NatsSettings) -> dict:
    """The stream's JetStream API config (what `nats stream add --config` reads)."""
    return {
        "name": s.stream,
        "subjects": list(STREAM_SUBJECTS),
        "retention": "limits",
        "storage": "file",
        "num_replicas": s.streamReplicas,
        "duplicate_window": int(DUPLICATE_WINDOW_S * 1e9),
        "max_age": _duration_ns(s.streamMaxAge),
        "max_bytes": _bytes(s.streamMaxBytes),
        "discard": "old",
        "max_msgs": -1,
        "max_consumers": -1,
        "max_msgs_per_subject": -1,
        "max_msg_size": -1,
    }


def dlq_stream_name(s: NatsSettings) -> str:
    return f"{s.stream}_DLQ"  # lscloud.delivery.dlq_stream


def render_dlq_stream(s: NatsSettings) -> dict:
    """The dead-letter stream: same replicas and limits, its own subjects."""
    return {**render_stream(s), "name": dlq_stream_name(s), "subjects": list(DLQ_SUBJECTS)}


def _duration_ns(v: str) -> int:
    units = {"h": 3600, "m": 60, "s": 1}
    return int(float(v[:-1]) * units[v[-1]] * 1e9) if v and v[-1] in units else int(v)


def _bytes(v: str) -> int:
    units = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}
    for suffix, mult in units.items():
        if v.upper().endswith(suffix):
            return int(float(v[: -len(suffix)]) * mult)
    return int(v)


def render(s: NatsSettings, namespace: str, *, client_namespaces: tuple[str, ...], monitor_namespaces: tuple[str, ...]) -> list[dict]:
    """Every Kubernetes object of the NATS cluster, in creation order."""
    lbl = kx.labels(NAME, "event-bus")
    sel = kx.selector(NAME)
    ports = [{"name": "client", "port": CLIENT_PORT, "targetPort": CLIENT_PORT},
             {"name": "cluster", "port": CLUSTER_PORT, "targetPort": CLUSTER_PORT},
             {"name": "monitor", "port": MONITOR_PORT, "targetPort": MONITOR_PORT}]
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": f"{NAME}-config", "namespace": namespace, "labels": lbl},
                  "data": {"nats.conf": render_config(s, namespace),
                           "stream.json": json.dumps(render_stream(s), indent=2, sort_keys=True),
                           "dlq-stream.json": json.dumps(render_dlq_stream(s), indent=2, sort_keys=True)}}
    headless = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": f"{NAME}-headless", "namespace": namespace, "labels": lbl},
                "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": sel, "ports": ports}}
    client = {"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
              "spec": {"selector": sel, "ports": ports[:1]}}
    volume_claim = {"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": s.storageSize}}}}
    if s.storageClass:
        volume_claim["spec"]["storageClassName"] = s.storageClass
    health = lambda q: {"httpGet": {"path": f"/healthz{q}", "port": MONITOR_PORT}, "periodSeconds": 10,  # noqa: E731
                        "timeoutSeconds": 5, "failureThreshold": 3}
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
        "spec": {
            "serviceName": f"{NAME}-headless",
            "replicas": s.replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": lbl},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                   "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": sel}}],
                    "containers": [{
                        "name": "nats",
                        "image": s.image,
                        "args": ["--config", "/etc/nats/nats.conf"],
                        "env": [{"name": "SERVER_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "ports": [{"name": p["name"], "containerPort": p["port"]} for p in ports],
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/nats"}, {"name": "data", "mountPath": "/data"},
                                         {"name": "pid", "mountPath": "/var/run/nats"}],
                        "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
                        "startupProbe": {**health(""), "failureThreshold": 90},
                        "readinessProbe": health("?js-server-only=true"),
                        "livenessProbe": health("?js-enabled-only=true"),
                        "lifecycle": {"preStop": {"exec": {"command": ["nats-server", "--signal", "ldm=/var/run/nats/nats.pid"]}}},
                        "securityContext": kx.restricted_security_context(),
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": f"{NAME}-config", "items": [{"key": "nats.conf", "path": "nats.conf"}]}},
                                {"name": "pid", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [volume_claim],
        },
    }
    setup = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": kx.dns_name(NAME, "streams", _digest(config_map["data"]["stream.json"]
                                                                  + config_map["data"]["dlq-stream.json"])),
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
                                           for name, file in ((s.stream, "stream.json"),
                                                              (dlq_stream_name(s), "dlq-stream.json")))],
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/nats"}],
                        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
                        "securityContext": {**kx.restricted_security_context(), "runAsUser": 1000},
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": f"{NAME}-config", "items": [
                        {"key": "stream.json", "path": "stream.json"}, {"key": "dlq-stream.json", "path": "dlq-stream.json"}]}}],
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
                 + [{"podSelector": {"matchLabels": kx.selector(f"{NAME}-setup")}}],
                 "ports": [{"protocol": "TCP", "port": CLIENT_PORT}]},
                {"from": [peers], "ports": [{"protocol": "TCP", "port": CLUSTER_PORT}]},
                {"from": [{"namespaceSelector": kx.ns_selector(ns)} for ns in monitor_namespaces],
                 "ports": [{"protocol": "TCP", "port": MONITOR_PORT}]},
            ],
            "egress": [{"to": [peers], "ports": [{"protocol": "TCP", "port": CLUSTER_PORT}]}, kx.dns_egress_rule()],
        },
    }
    setup_policy = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": f"{NAME}-setup", "namespace": namespace, "labels": lbl},
        "spec": {"podSelector": {"matchLabels": kx.selector(f"{NAME}-setup")}, "policyTypes": ["Ingress", "Egress"],
                 "egress": [{"to": [peers], "ports": [{"protocol": "TCP", "port": CLIENT_PORT}]}, kx.dns_egress_rule()]},
    }
    budget = kx.pdb(NAME, namespace, sel, max_unavailable=1)  # R3 streams keep quorum with one server down
    return [config_map, headless, client, policy, setup_policy, statefulset, budget, setup]


def _stream_command(server: str, stream: str, config: str) -> str:
    return (f"nats --server {server} stream info {stream} >/dev/null 2>&1 "
            f"&& nats --server {server} stream edit {stream} --config {config} --force "
            f"|| nats --server {server} stream add {stream} --config {config}")


def _digest(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()[:8]


class EventBus(pulumi.ComponentResource):
    """NATS JetStream: 3 servers with persistent volumes, the R3 stream, its policies and PDB."""

    def __init__(self, name: str, settings: NatsSettings, namespace: str, *, client_namespaces: tuple[str, ...],
                 monitor_namespaces: tuple[str, ...] = (), opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:EventBus", name, None, opts)
        self.objects = render(settings, namespace, client_namespaces=client_namespaces, monitor_namespaces=monitor_namespaces)
        created = {}
        for obj in self.objects:
            deps = [created["StatefulSet"]] if obj["kind"] == "Job" else []
            created[obj["kind"]] = kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj,
                                             pulumi.ResourceOptions(parent=self, depends_on=deps))
        self.ready = created["Job"]  # functions depend on the stream existing with its replicas
        self.url = pulumi.Output.from_input(client_url(namespace))
        self.stream = settings.stream
        self.register_outputs({"url": self.url, "stream": self.stream})
