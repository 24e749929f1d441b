"""Small helpers shared by the components: names, labels, and creating resources from dicts.

Rendering functions return Kubernetes objects as plain dicts (camelCase, as in YAML). ``create``
turns one into the matching pulumi-kubernetes resource (a CustomResource for kinds without a
typed class), so what a test validates is exactly what Pulumi sends.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping

import pulumi
import pulumi_kubernetes as k8s

from lscloud import health

PART_OF = "lscloud"
MANAGED_BY = "pulumi"


def dns_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1123 label from ``parts`` joined by '-'; too long -> cut and suffixed by a short hash."""
    raw = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return name[: limit - 9].rstrip("-") + "-" + digest


def labels(name: str, component: str, **extra: str) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    out.update(extra)
    return out


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def ns_selector(namespace: str) -> dict:
    """Select a namespace by the label Kubernetes puts on every namespace."""
    return {"matchLabels": {"kubernetes.io/metadata.name": namespace}}


def health_probes(port: int) -> dict:
    """The probes of a platform process that serves :mod:`lscloud.health` on ``port`` (the event
    bridge, the devices relay, the device-users sidecar): ready checked every 5 s, alive every 10 s."""
    def probe(path: str, period: int) -> dict:
        return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "failureThreshold": 3,
                "timeoutSeconds": 3}

    return {"readinessProbe": probe(health.READINESS_PATH, 5),
            "livenessProbe": {**probe(health.LIVENESS_PATH, 10), "initialDelaySeconds": 5}}


def egress_to(namespace: str, match_labels: Mapping[str, str], *ports: int) -> dict:
    """Egress to the pods labelled ``match_labels`` in ``namespace``, on TCP ``ports``."""
    return {"to": [{"namespaceSelector": ns_selector(namespace), "podSelector": {"matchLabels": dict(match_labels)}}],
            "ports": [{"protocol": "TCP", "port": port} for port in ports]}


def egress_only_policy(name: str, namespace: str, egress: list[dict]) -> dict:
    """The NetworkPolicy of a workload nothing connects to (the kubelet's probes are not subject to
    policies): no ingress, egress to ``egress`` only (add :func:`dns_egress_rule` to resolve names)."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(name, "network-policy")},
        "spec": {"podSelector": {"matchLabels": selector(name)}, "policyTypes": ["Ingress", "Egress"],
                 "ingress": [], "egress": list(egress)},
    }


def spread_over_nodes(match_labels: Mapping[str, str], *, hard: bool) -> list[dict]:
    """The ``topologySpreadConstraints`` that spread the pods labelled ``match_labels`` evenly over
    the nodes; ``hard``: a pod stays Pending rather than skew the spread (``DoNotSchedule``)."""
    return [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
             "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
             # a node the pods may not run on (a tainted control plane) is not a place to spread to:
             # counted, its zero would cap every other node at one pod (dev: 4 MinIO servers on 3 workers)
             "nodeTaintsPolicy": "Honor", "labelSelector": {"matchLabels": dict(match_labels)}}]


def service_account(name: str, namespace: str, component: str) -> dict:
    """A workload's own ServiceAccount, whose token it does not mount (it talks to no Kubernetes API)."""
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "labels": labels(name, component)},
            "automountServiceAccountToken": False}


def dns_egress_rule() -> dict:
    """Egress to the cluster DNS (every pod with a default-deny egress policy needs it)."""
    return {
        "to": [{"namespaceSelector": ns_selector("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def restricted_security_context() -> dict:
    """The container securityContext of the 'restricted' Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def default_deny(namespace: str) -> dict:
    """Deny all ingress and egress in ``namespace`` unless another policy allows it."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": namespace, "labels": labels("default-deny", "network-policy")},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def pdb(name: str, namespace: str, match_labels: Mapping[str, str], *, max_unavailable: int | None = None,
        min_available: int | None = None) -> dict:
    spec: dict[str, Any] = {"selector": {"matchLabels": dict(match_labels)}}
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    if min_available is not None:
        spec["minAvailable"] = min_available
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace, "labels": labels(name, "disruption-budget")},
            "spec": spec}


# kind -> (resource class, {object field: constructor keyword}) for the typed core kinds we create
_TYPED = {
    ("v1", "Namespace"): (k8s.core.v1.Namespace, {"spec": "spec"}),
    ("v1", "ConfigMap"): (k8s.core.v1.ConfigMap, {"data": "data"}),
    ("v1", "Secret"): (k8s.core.v1.Secret, {"stringData": "string_data", "type": "type"}),
    ("v1", "Service"): (k8s.core.v1.Service, {"spec": "spec"}),
    ("v1", "ServiceAccount"): (k8s.core.v1.ServiceAccount, {"automountServiceAccountToken": "automount_service_account_token"}),
    ("apps/v1", "StatefulSet"): (k8s.apps.v1.StatefulSet, {"spec": "spec"}),
    ("apps/v1", "Deployment"): (k8s.apps.v1.Deployment, {"spec": "spec"}),
    ("batch/v1", "Job"): (k8s.batch.v1.Job, {"spec": "spec"}),
    ("batch/v1", "CronJob"): (k8s.batch.v1.CronJob, {"spec": "spec"}),
    ("policy/v1", "PodDisruptionBudget"): (k8s.policy.v1.PodDisruptionBudget, {"spec": "spec"}),
    ("networking.k8s.io/v1", "NetworkPolicy"): (k8s.networking.v1.NetworkPolicy, {"spec": "spec"}),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): (k8s.rbac.v1.ClusterRoleBinding,
                                                              {"roleRef": "role_ref", "subjects": "subjects"}),
}


def create(resource_name: str, obj: Mapping[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Create the pulumi-kubernetes resource for the Kubernetes object ``obj``."""
    key = (obj["apiVersion"], obj["kind"])
    if key in _TYPED:
        cls, fields = _TYPED[key]
        kwargs = {kw: obj[f] for f, kw in fields.items() if f in obj}
        unknown = set(obj) - set(fields) - {"apiVersion", "kind", "metadata"}
        if unknown:
            raise ValueError(f"{obj['kind']} {obj['metadata'].get('name')}: cannot create fields {sorted(unknown)}")
        return cls(resource_name, metadata=obj["metadata"], opts=opts, **kwargs)
    extra = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    return k8s.apiextensions.CustomResource(resource_name, api_version=obj["apiVersion"], kind=obj["kind"],
                                            metadata=obj["metadata"], opts=opts, **extra)
