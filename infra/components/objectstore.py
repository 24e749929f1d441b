"""The object store: MinIO in distributed mode, one private bucket per function, one user per function.

Least privilege: function ``f`` gets the MinIO user ``fn-f`` whose policy allows object reads and
writes in bucket ``<prefix>-f`` only (and the bucket-level calls the runtime makes: HeadBucket,
ListObjectsV2, multipart). No bucket has an anonymous policy: the setup Job sets every bucket to
``anonymous none`` on each run, so a manual ``mc anonymous set`` is undone by the next ``pulumi up``.

Every bucket gets a lifecycle rule that deletes the runtime's run-once records (``nonces/``,
``idempotency/``, ``events-seen/``) ``objectStore.runOnceExpiryDays`` after their last write: the
store's backstop to the runtime's own sweep on the clock's tick (``lscloud/runonce.py``), checked to
outlive the longest of those records. ``mc ilm rule import`` replaces the bucket's rules, so a
re-run applies the same rule again.

Buckets, users and policies are applied by an in-cluster Job running ``mc`` rather than the
pulumi-minio provider: the MinIO API is reachable only inside the cluster (NetworkPolicy), not from
the operator's machine, and a Job keeps provisioning to a single ``pulumi up``. The Job's name
carries a digest of the policies and bucket list, so a change re-runs it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_random as random

from lscloud import runonce

from . import k8s as kx
from .function import bucket_name, credentials_secret
from .settings import ObjectStoreSettings

NAME = "minio"
PORT = 9000
CONSOLE_PORT = 9001
ROOT_SECRET = "minio-root"
USERS_SECRET = "minio-function-users"
POLICIES = "minio-policies"
LIFECYCLE = "lifecycle-run-once.json"


def endpoint(namespace: str) -> str:
    return f"http://{NAME}.{namespace}.svc.cluster.local:{PORT}"


def user_name(function: str) -> str:
    return kx.dns_name("fn", function)


def policy_name(function: str) -> str:
    return kx.dns_name("lscloud", function, "rw")


def render_policy(bucket: str) -> dict:
    """The IAM policy of one function's user: its own bucket, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "OwnBucket", "Effect": "Allow",
             "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
             "Resource": [f"arn:aws:s3:::{bucket}"]},
            {"Sid": "OwnObjects", "Effect": "Allow",
             "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts"],
             "Resource": [f"arn:aws:s3:::{bucket}/*"]},
        ],
    }


def render_setup_script(functions: Sequence[str], prefix: str, namespace: str) -> str:
    lines = [
        "set -eu",
        f'mc alias set lscloud {endpoint(namespace)} "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"',
        "until mc admin info lscloud >/dev/null 2>&1; do echo waiting for minio; sleep 5; done",
    ]
    for fn in functions:
        b, u, p = bucket_name(prefix, fn), user_name(fn), policy_name(fn)
        lines += [
            f"mc mb --ignore-existing lscloud/{b}",
            f"mc anonymous set none lscloud/{b}",
            f"mc admin policy create lscloud {p} /policies/{fn}.json",
            f'mc admin user add lscloud {u} "$(cat /users/{fn}.secret-key)"',
            f"mc admin policy attach lscloud {p} --user {u} 2>/dev/null || true",
            f"mc ilm rule import lscloud/{b} < /policies/{LIFECYCLE}",
        ]
    return "\n".join(lines) + "\n"


def render(s: ObjectStoreSettings, namespace: str, functions: Sequence[str], *, client_namespaces: tuple[str, ...],
           root: Mapping[str, Any], user_secrets: Mapping[str, Any], functions_namespace: str) -> list[dict]:
    """Every Kubernetes object of the object store, in creation order.

    ``root`` holds ``user``/``password`` and ``user_secrets`` each function's secret key: Pulumi
    secret Outputs in the program, plain strings in tests. They only ever land in Secrets.
    """
    lbl = kx.labels(NAME, "object-store")
    sel = kx.selector(NAME)
    setup_sel = kx.selector(f"{NAME}-setup")
    policies = {f"{fn}.json": json.dumps(render_policy(bucket_name(s.bucketPrefix, fn)), indent=2, sort_keys=True)
                for fn in functions}
    script = render_setup_script(functions, s.bucketPrefix, namespace)
    lifecycle = json.dumps(runonce.lifecycle_configuration(s.runOnceExpiryDays), indent=2, sort_keys=True)
    digest = hashlib.sha256((script + json.dumps(policies, sort_keys=True) + lifecycle).encode()).hexdigest()[:8]

    objs: list[dict] = [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": ROOT_SECRET, "namespace": namespace, "labels": lbl},
         "stringData": {"root-user": root["user"], "root-password": root["password"]}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": USERS_SECRET, "namespace": namespace, "labels": lbl},
         "stringData": {f"{fn}.secret-key": user_secrets[fn] for fn in functions}},
    ]
    for fn in functions:  # each function's own credentials, in the functions' namespace
        objs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"name": credentials_secret(fn), "namespace": functions_namespace,
                                  "labels": kx.labels(fn, "object-store-credentials")},
                     "stringData": {"access-key": user_name(fn), "secret-key": user_secrets[fn]}})
    objs.append({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": POLICIES, "namespace": namespace, "labels": lbl},
                 "data": {**policies, "setup.sh": script, LIFECYCLE: lifecycle}})

    servers = s.servers
    drives = (f"/data{{0...{s.drivesPerServer - 1}}}" if s.drivesPerServer > 1 else "/data0")
    if servers > 1:
        server_arg = f"http://{NAME}-{{0...{servers - 1}}}.{NAME}-hl.{namespace}.svc.cluster.local:{PORT}{drives}"
    else:
        server_arg = drives
    ports = [{"name": "s3", "port": PORT, "targetPort": PORT}]
    objs += [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{NAME}-hl", "namespace": namespace, "labels": lbl},
         "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": sel, "ports": ports}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
         "spec": {"selector": sel, "ports": ports}},
    ]
    claims = []
    for d in range(s.drivesPerServer):
        claim = {"metadata": {"name": f"data{d}"},
                 "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": s.volumeSize}}}}
        if s.storageClass:
            claim["spec"]["storageClassName"] = s.storageClass
        claims.append(claim)
    root_env = [
        {"name": "MINIO_ROOT_USER", "valueFrom": {"secretKeyRef": {"name": ROOT_SECRET, "key": "root-user"}}},
        {"name": "MINIO_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": ROOT_SECRET, "key": "root-password"}}},
    ]
    probe = lambda path: {"httpGet": {"path": path, "port": PORT}, "periodSeconds": 10, "timeoutSeconds": 5,  # noqa: E731
                          "failureThreshold": 3}
    objs.append({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
        "spec": {
            "serviceName": f"{NAME}-hl",
            "replicas": servers,
            "podManagementPolicy": "Parallel",  # distributed MinIO waits for all peers at start
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": lbl},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                   "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": sel}}],
                    "containers": [{
                        "name": "minio",
                        "image": s.image,
                        "args": ["server", server_arg, "--address", f":{PORT}", "--console-address", f":{CONSOLE_PORT}"],
                        "env": root_env + [{"name": "MINIO_PROMETHEUS_AUTH_TYPE", "value": "public"}],
                        "ports": [{"name": "s3", "containerPort": PORT}, {"name": "console", "containerPort": CONSOLE_PORT}],
                        "volumeMounts": [{"name": f"data{d}", "mountPath": f"/data{d}"} for d in range(s.drivesPerServer)],
                        "resources": {"requests": dict(s.requests), "limits": dict(s.limits)},
                        "startupProbe": {**probe("/minio/health/live"), "failureThreshold": 60},
                        "readinessProbe": probe("/minio/health/ready"),
                        "livenessProbe": probe("/minio/health/live"),
                        "securityContext": kx.restricted_security_context(),
                    }],
                },
            },
            "volumeClaimTemplates": claims,
        },
    })
    peers = {"podSelector": {"matchLabels": sel}}
    objs += [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": NAME, "namespace": namespace, "labels": lbl},
         "spec": {"podSelector": {"matchLabels": sel}, "policyTypes": ["Ingress", "Egress"],
                  "ingress": [{"from": [{"namespaceSelector": kx.ns_selector(ns)} for ns in client_namespaces]
                               + [peers, {"podSelector": {"matchLabels": setup_sel}}],
                               "ports": [{"protocol": "TCP", "port": PORT}]}],
                  "egress": [{"to": [peers], "ports": [{"protocol": "TCP", "port": PORT}]}, kx.dns_egress_rule()]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": f"{NAME}-setup", "namespace": namespace, "labels": lbl},
         "spec": {"podSelector": {"matchLabels": setup_sel}, "policyTypes": ["Ingress", "Egress"],
                  "egress": [{"to": [peers], "ports": [{"protocol": "TCP", "port": PORT}]}, kx.dns_egress_rule()]}},
        # erasure coding keeps reads and writes going with one server out
        kx.pdb(NAME, namespace, sel, max_unavailable=1),
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": {"name": kx.dns_name(NAME, "setup", digest), "namespace": namespace,
                      "labels": kx.labels(f"{NAME}-setup", "object-store")},
         "spec": {"backoffLimit": 10, "template": {
             "metadata": {"labels": kx.labels(f"{NAME}-setup", "object-store")},
             "spec": {
                 "restartPolicy": "OnFailure",
                 "automountServiceAccountToken": False,
                 "containers": [{
                     "name": "setup",
                     "image": s.mcImage,
                     "command": ["sh", "/policies/setup.sh"],
                     "env": root_env + [{"name": "MC_CONFIG_DIR", "value": "/tmp/mc"}],
                     "volumeMounts": [{"name": "policies", "mountPath": "/policies"},
                                      {"name": "users", "mountPath": "/users"},
                                      {"name": "tmp", "mountPath": "/tmp"}],
                     "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
                     "securityContext": {**kx.restricted_security_context(), "runAsUser": 1000},
                 }],
                 "volumes": [{"name": "policies", "configMap": {"name": POLICIES}},
                             {"name": "users", "secret": {"secretName": USERS_SECRET}},
                             {"name": "tmp", "emptyDir": {}}],
             }}}},
    ]
    return objs


class ObjectStore(pulumi.ComponentResource):
    """Distributed MinIO with one private bucket, user and policy per function."""

    def __init__(self, name: str, settings: ObjectStoreSettings, namespace: str, functions: Sequence[str], *,
                 functions_namespace: str, client_namespaces: tuple[str, ...], opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:ObjectStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        password = lambda n: random.RandomPassword(n, length=40, special=False, opts=child).result  # noqa: E731
        root = {"user": "lscloud-admin", "password": password(f"{name}-root-password")}
        users = {fn: password(f"{name}-{fn}-secret-key") for fn in functions}
        self.objects = render(settings, namespace, functions, client_namespaces=client_namespaces, root=root,
                              user_secrets=users, functions_namespace=functions_namespace)
        created: dict[str, pulumi.Resource] = {}
        for obj in self.objects:
            deps = [created["StatefulSet"]] if obj["kind"] == "Job" else []
            created[obj["kind"]] = kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj,
                                             pulumi.ResourceOptions(parent=self, depends_on=deps))
        self.ready = created["Job"]
        self.endpoint = pulumi.Output.from_input(endpoint(namespace))
        self.buckets = {fn: bucket_name(settings.bucketPrefix, fn) for fn in functions}
        self.register_outputs({"endpoint": self.endpoint, "buckets": self.buckets})
