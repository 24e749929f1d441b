"""Telemetry: the OpenTelemetry Collector, configured from observability/collector.yaml.

Two Deployments run that configuration, each with one of its pipelines:

- ``otel-collector`` (``telemetry.replicas``, behind one Service): **traces**, exported to the
  backend named in config (``TRACES_BACKEND_ENDPOINT``). Knative's own components send theirs here
  too (``config-observability``), so a trace continues through broker → channel → trigger;
- ``otel-collector-metrics`` (exactly one replica, replaced with ``Recreate``): **metrics**, served on
  :8889 for Prometheus. One path on purpose: a cumulative series a function sends now to one replica
  and now to another would be exported by both and counted twice. Functions send their metrics
  here (``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``); a restart loses nothing, the SDKs resend their
  cumulative values.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi
import yaml

from . import k8s as kx
from .settings import TelemetrySettings

NAME = "otel-collector"
METRICS_NAME = "otel-collector-metrics"
OTLP_GRPC, OTLP_HTTP, PROMETHEUS, HEALTH = 4317, 4318, 8889, 13133


def otlp_endpoint(namespace: str) -> str:
    return f"http://{NAME}.{namespace}.svc.cluster.local:{OTLP_HTTP}"


def traces_endpoint(namespace: str) -> str:
    """Where Knative's components send their spans (OTLP over HTTP)."""
    return f"{otlp_endpoint(namespace)}/v1/traces"


def metrics_endpoint(namespace: str) -> str:
    """The one collector that takes metrics (``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``: a full URL)."""
    return f"http://{METRICS_NAME}.{namespace}.svc.cluster.local:{OTLP_HTTP}/v1/metrics"


def split_config(config_text: str, signal: str) -> str:
    """collector.yaml reduced to one pipeline (``traces`` or ``metrics``) and the exporters it uses."""
    doc = yaml.safe_load(config_text)
    pipelines = doc["service"]["pipelines"]
    if signal not in pipelines:
        raise ValueError(f"collector.yaml has no {signal} pipeline")
    kept = pipelines[signal]
    doc["service"]["pipelines"] = {signal: kept}
    doc["exporters"] = {k: v for k, v in doc["exporters"].items() if k in kept["exporters"]}
    used = set(kept.get("processors", []))
    doc["processors"] = {k: v for k, v in doc.get("processors", {}).items() if k in used}
    return (f"# observability/collector.yaml, {signal} pipeline only (infra/components/telemetry.py)\n"
            + yaml.safe_dump(doc, sort_keys=False))


# merged over collector.yaml by the collector (a second --config): the health_check extension the
# probes use, kept out of the shared file, which also serves local runs
HEALTH_CONFIG = f"""extensions:
  health_check:
    endpoint: 0.0.0.0:{HEALTH}
service:
  extensions: [health_check]
"""


def _collector(name: str, namespace: str, config_text: str, *, replicas: int, ports, image: str, env,
               strategy: dict | None = None) -> list[dict]:
    lbl = kx.labels(name, "telemetry")
    sel = kx.selector(name)
    digest = hashlib.sha256((config_text + HEALTH_CONFIG).encode()).hexdigest()[:12]
    probe = {"httpGet": {"path": "/", "port": HEALTH}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3}
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": sel},
        "template": {
            # a config change rolls the pods
            "metadata": {"labels": lbl, "annotations": {"lscloud.langson.gov.vn/config-digest": digest}},
            "spec": {
                "automountServiceAccountToken": False,
                "containers": [{
                    "name": "collector",
                    "image": image,
                    "args": ["--config=/etc/otelcol/collector.yaml", "--config=/etc/otelcol/health.yaml"],
                    "env": env,
                    "ports": [{"name": n, "containerPort": p} for n, p in ports] + [{"name": "health", "containerPort": HEALTH}],
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/otelcol"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                    "readinessProbe": probe,
                    "livenessProbe": probe,
                    "securityContext": {**kx.restricted_security_context(), "runAsUser": 10001},
                }],
                "volumes": [{"name": "config", "configMap": {"name": name}}],
            },
        },
    }
    if strategy:
        spec["strategy"] = strategy
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace, "labels": lbl},
         "data": {"collector.yaml": config_text, "health.yaml": HEALTH_CONFIG}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace, "labels": lbl},
         "spec": {"selector": sel, "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace, "labels": lbl},
         "spec": spec},
    ]


def render(s: TelemetrySettings, namespace: str, config_text: str, *, client_namespaces: tuple[str, ...]) -> list[dict]:
    """The traces collector (replicated) and the metrics collector (one), with their policies."""
    otlp = [("otlp-grpc", OTLP_GRPC), ("otlp-http", OTLP_HTTP)]
    otlp_ports = [{"protocol": "TCP", "port": OTLP_GRPC}, {"protocol": "TCP", "port": OTLP_HTTP}]
    clients = [{"namespaceSelector": kx.ns_selector(ns)} for ns in client_namespaces]
    objs = _collector(NAME, namespace, split_config(config_text, "traces"), replicas=s.replicas, ports=otlp,
                      image=s.image, env=[{"name": "TRACES_BACKEND_ENDPOINT", "value": s.tracesBackend},
                                          {"name": "TRACES_BACKEND_INSECURE", "value": str(s.tracesBackendInsecure).lower()},
                                          {"name": "GOMEMLIMIT", "value": "400MiB"}])
    # never two at once, not even during a rollout: two would export the same series twice
    objs += _collector(METRICS_NAME, namespace, split_config(config_text, "metrics"), replicas=1,
                       ports=otlp + [("metrics", PROMETHEUS)], image=s.image,
                       env=[{"name": "GOMEMLIMIT", "value": "400MiB"}], strategy={"type": "Recreate"})
    objs += [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": NAME, "namespace": namespace, "labels": kx.labels(NAME, "telemetry")},
         "spec": {"podSelector": {"matchLabels": kx.selector(NAME)}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": clients, "ports": otlp_ports}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": METRICS_NAME, "namespace": namespace, "labels": kx.labels(METRICS_NAME, "telemetry")},
         "spec": {"podSelector": {"matchLabels": kx.selector(METRICS_NAME)}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": clients, "ports": otlp_ports},
                              {"from": [{"namespaceSelector": kx.ns_selector(s.metricsNamespace)}],
                               "ports": [{"protocol": "TCP", "port": PROMETHEUS}]}]}},
    ]
    if s.replicas > 1:
        objs.append(kx.pdb(NAME, namespace, kx.selector(NAME), min_available=1))
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
        self.metrics_endpoint = pulumi.Output.from_input(metrics_endpoint(namespace))
        self.register_outputs({"endpoint": self.endpoint, "metricsEndpoint": self.metrics_endpoint})
