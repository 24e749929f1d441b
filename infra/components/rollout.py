"""What a function's after-rollout migration Job may do beyond the other hooks: ask the Kubernetes API
whether an older revision of its Service still has pods (:mod:`lscloud.rollout`, the Job's first
step; the Job itself is rendered by :mod:`.hooks`).

- a ServiceAccount per function (``rollout-<function>``), its token mounted in the waiting step only;
- a Role allowing ``get`` on that function's Knative Service (by name) and ``list`` on pods in the
  functions' namespace, nothing else (no watch, no secrets, no writes), bound to that account;
- one NetworkPolicy for every such Job: the API server (``apiServerCidrs``, 443 and 6443, as the
  functions reach its JWKS), MinIO and DNS; nothing connects to them.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from . import k8s as kx
from .function import PlatformEndpoints

COMPONENT = "function-rollout-hook"
POLICY = "function-rollout-hooks"
RBAC_COMPONENT = "function-rollout-rbac"


def account_name(function: str) -> str:
    return kx.dns_name("rollout", function)


def render_service_account(function: str, p: PlatformEndpoints) -> dict:
    """Its token is not mounted by default: the Job mounts it (projected) in its waiting step only."""
    return kx.service_account(account_name(function), p.namespace, RBAC_COMPONENT)


def render_role(function: str, p: PlatformEndpoints) -> dict:
    name = account_name(function)
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": p.namespace, "labels": kx.labels(name, RBAC_COMPONENT)},
            "rules": [
                {"apiGroups": ["serving.knative.dev"], "resources": ["services"], "resourceNames": [function],
                 "verbs": ["get"]},
                # list cannot be narrowed by name; the label selector is the waiting step's own
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
            ]}


def render_role_binding(function: str, p: PlatformEndpoints) -> dict:
    name = account_name(function)
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": p.namespace, "labels": kx.labels(name, RBAC_COMPONENT)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": p.namespace}]}


def render_network_policy(p: PlatformEndpoints) -> dict:
    """After-rollout Jobs reach the API server, MinIO and DNS only; nothing reaches them."""
    egress = [kx.egress_to(p.data_namespace, kx.selector("minio"), 9000), kx.dns_egress_rule()]
    if p.api_server_cidrs:
        # kubernetes.default.svc:443, DNAT-ed to the API server's 6443
        egress.append({"to": [{"ipBlock": {"cidr": c}} for c in p.api_server_cidrs],
                       "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]})
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": POLICY, "namespace": p.namespace, "labels": kx.labels(POLICY, "network-policy")},
        "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/component": COMPONENT}},
                 "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": egress},
    }


def create_rbac(name: str, function: str, p: PlatformEndpoints, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """The account, its Role and their binding (a Job that uses the account depends on all three)."""
    account = kx.create(f"{name}-sa", render_service_account(function, p), opts)
    role = render_role(function, p)
    binding = render_role_binding(function, p)
    # k8s.create knows no RBAC kind but ClusterRoleBinding: the typed classes, as Pulumi sends them
    return [account,
            k8s.rbac.v1.Role(f"{name}-role", metadata=role["metadata"], rules=role["rules"], opts=opts),
            k8s.rbac.v1.RoleBinding(f"{name}-binding", metadata=binding["metadata"], role_ref=binding["roleRef"],
                                    subjects=binding["subjects"], opts=opts)]
