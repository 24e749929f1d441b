"""Telemetry: the OpenTelemetry Collector, configured by observability/collector.yaml (verbatim).

Functions send OTLP to ``otel-collector.<ns>:4318``; the collector exports traces to the backend
named in config (``TRACES_BACKEND_ENDPOINT``) and exposes Prometheus metrics on :8889.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi

from . import k8s as kx
from .settings import TelemetrySettings

NAME = "otel-collector"
OTLP_GRPC, OTLP_HTTP, PROMETHEUS, HEALTH = 4317, 4318, 8889, 13133


def otlp_endpoint(namespace: str) -> str:
    return f"http://{NAME}.{namespace}.svc.cluster.local:{OTLP_HTTP}"


# merged over collector.yaml by the collector (a second --config): the health_check extension the
# probes use, kept out of the shared file, which also serves local runs
HEALTH_CONFIG = f"""extensions:
  health_check:
    endpoint: 0.0.0.0:{HEALTH}
service:
  extensions: [health_check]
"""


def render(s: TelemetrySettings, namespace: str, config_text: str, *, client_namespaces: tuple[str, ...]) -> list[dict]:
    lbl = kx.labels(NAME, "telemetry")
    sel = kx.selector(NAME)
    digest = hashlib.sha256((config_text + HEALTH_CONFIG).encode()).hexdigest()[:12]
    probe = {"httpGet": {"path": "/", "port": HEALTH}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3}
    ports = [("otlp-grpc", OTLP_GRPC), ("otlp-http", OTLP_HTTP), ("metrics", PROMETHEUS)]
    objs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
         "data": {"collector.yaml": config_text, "health.yaml": HEALTH_CONFIG}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
         "spec": {"selector": sel, "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
         "spec": {
             "replicas": s.replicas,
             "selector": {"matchLabels": sel},
             "template": {
                 # a config change rolls the pods
                 "metadata": {"labels": lbl, "annotations": {"lscloud.langson.gov.vn/config-digest": digest}},
                 "spec": {
                     "automountServiceAccountToken": False,
                     "containers": [{
                         "name": "collector",
                         "image": s.image,
                         "args": ["--config=/etc/otelcol/collector.yaml", "--config=/etc/otelcol/health.yaml"],
                         "env": [{"name": "TRACES_BACKEND_ENDPOINT", "value": s.tracesBackend},
                                 {"name": "TRACES_BACKEND_INSECURE", "value": str(s.tracesBackendInsecure).lower()},
                                 {"name": "GOMEMLIMIT", "value": "400MiB"}],
                         "ports": [{"name": n, "containerPort": p} for n, p in ports] + [{"name": "health", "containerPort": HEALTH}],
                         "volumeMounts": [{"name": "config", "mountPath": "/etc/otelcol"}],
                         "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                         "readinessProbe": probe,
                         "livenessProbe": probe,
                         "securityContext": {**kx.restricted_security_context(), "runAsUser": 10001},
                     }],
                     "volumes": [{"name": "config", "configMap": {"name": NAME}}],
                 },
             },
         }},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
         "spec": {"podSelector": {"matchLabels": sel}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"namespaceSelector": kx.ns_selector(ns)} for ns in client_namespaces],
                               "ports": [{"protocol": "TCP", "port": OTLP_GRPC}, {"protocol": "TCP", "port": OTLP_HTTP}]},
                              {"from": [{"namespaceSelector": kx.ns_selector(s.metricsNamespace)}],
                               "ports": [{"protocol": "TCP", "port": PROMETHEUS}]}]}},
    ]
    if s.replicas > 1:
        objs.append(kx.pdb(NAME, namespace, sel, min_available=1))
    return objs


class Telemetry(pulumi.ComponentResource):
    """The OpenTelemetry Collector every function exports to."""

    def __init__(self, name: str, settings: TelemetrySettings, namespace: str, config_path: Path, *,
                 client_namespaces: tuple[str, ...], opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:Telemetry", name, None, opts)
        self.objects = render(settings, namespace, Path(config_path).read_text(encoding="utf-8"),
                              client_namespaces=client_namespaces)
        for obj in self.objects:
            kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj, pulumi.ResourceOptions(parent=self))
        self.endpoint = pulumi.Output.from_input(otlp_endpoint(namespace))
        self.register_outputs({"endpoint": self.endpoint})
