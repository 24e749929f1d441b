"""Namespaces of Lạng Sơn Cloud, with the 'restricted' Pod Security Standard and default-deny policies.

``lscloud`` (functions), ``lscloud-data`` (NATS, MinIO) and ``lscloud-telemetry`` (the collector).
Functions and data start from deny-all, ingress and egress; each workload's own NetworkPolicy opens
exactly what it needs. The telemetry namespace is not default-deny on egress: the collector exports
to a trace backend outside the cluster's namespaces.
"""

from __future__ import annotations

from typing import Sequence

import pulumi

from . import k8s as kx


def render(namespaces: Sequence[str], deny_all: Sequence[str]) -> list[dict]:
    objs: list[dict] = []
    for ns in namespaces:
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": {**kx.labels(ns, "namespace"),
                                                         "pod-security.kubernetes.io/enforce": "restricted",
                                                         "pod-security.kubernetes.io/warn": "restricted"}}})
    for ns in deny_all:
        objs.append(kx.default_deny(ns))
    return objs


class Namespaces(pulumi.ComponentResource):
    def __init__(self, name: str, namespaces: Sequence[str], *, deny_all: Sequence[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:Namespaces", name, None, opts)
        self.objects = render(namespaces, deny_all)
        created: list[pulumi.Resource] = []
        for obj in self.objects:
            deps = created if obj["kind"] != "Namespace" else []
            res = kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata'].get('namespace', '')}-{obj['metadata']['name']}".replace("--", "-"),
                            obj, pulumi.ResourceOptions(parent=self, depends_on=list(deps)))
            if obj["kind"] == "Namespace":
                created.append(res)
        self.namespaces = created
        self.register_outputs({"namespaces": list(namespaces)})
