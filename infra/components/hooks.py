"""A function's hooks in the cluster: a check of its object store and its migration before it
serves, its seed after.

The store check (``python -m lscloud.cli store-check --from-env``, :mod:`lscloud.store.conformance`)
sends the conditional requests the runtime's guarantees rest on (create-only, ``If-Match``, racing
writers, conditional GET and DELETE) to the function's own bucket with the function's own
credentials, and fails its Job when the store breaks one the runtime needs: the function then never
serves on it. Its Job's name carries a digest of the function's image and of MinIO's, so it runs
again whenever either changes (a MinIO release once wrote under ``If-Match`` to a missing key,
minio/minio#21526).

The local cloud runs ``function/migrate.py`` and ``function/seed.py`` at ``lscloud up``; in the
cluster each becomes a Job from the function's own image, with the function's environment (its
bucket, credentials, pseudonym key, CA), running ``python -m lscloud.serve --migrate|--seed``:

- **idempotent**: the hook writes a marker object per version of its data (seed) or of its code and
  pseudonym key (migrate), so a Job that runs again does nothing new (:mod:`lscloud.serve`);
- **re-run when the data changes**: the Job's name carries a digest of the image and of every file
  of the function's package, so a new image or new data makes a new Job; a changed name is a new
  Job that Pulumi creates and waits for;
- a seed whose ``seed.py`` says ``CLUSTER = False`` (identity's generated citizens: the cluster asks
  the national registry) gets no Job.

The store check and the migration Job must finish before the function's Service changes (the new
code reads the new layout); the seed Job runs after it (directory and procedures answer 503 ``not-seeded`` until then).
The Jobs reach only MinIO and DNS (their NetworkPolicy); nothing connects to them.
"""

from __future__ import annotations

import hashlib

import pulumi

from lscloud.manifest import Manifest
from lscloud.serve import package_fingerprint

from . import k8s as kx
from .function import KUBE_CA_CONFIGMAP, KUBE_CA_MOUNT, PlatformEndpoints, client_cert_secret, render_env
from . import tls as tlsc

COMPONENT = "function-hook"
POLICY = "function-hooks"
KINDS = ("store-check", "migrate", "seed")
BEFORE_SERVING = ("store-check", "migrate")
"""The hooks that must complete before the function's Service changes, in this order."""
COMMANDS = {"store-check": ["python", "-m", "lscloud.cli", "store-check", "--from-env"]}


def wanted(m: Manifest) -> list[str]:
    """The hooks of ``m`` that run in the cluster, in order (every function checks its store)."""
    out = ["store-check"]
    if m.migrate_module is not None:
        out.append("migrate")
    if m.seed_module is not None and m.seeds_in_cluster:
        out.append("seed")
    return out


def job_name(m: Manifest, kind: str, image: str, store_image: str = "") -> str:
    """A name per version of what the hook depends on: the store check, the runtime's code and the
    store's (``store_image``); the data hooks, the code and the function's package."""
    depends = store_image if kind == "store-check" else package_fingerprint(m.package)
    digest = hashlib.sha256((image + "\0" + depends).encode()).hexdigest()[:10]
    return kx.dns_name(kind, m.name, digest)


def render_job(m: Manifest, kind: str, p: PlatformEndpoints, *, image: str, store_image: str = "") -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown hook {kind!r}")
    command = COMMANDS.get(kind) or ["python", "-m", "lscloud.serve", f"--{kind}", f"/app/functions/{m.name}"]
    lbl = kx.labels(f"{kind}-{m.name}", COMPONENT, **{"lscloud.langson.gov.vn/function": m.name})
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job_name(m, kind, image, store_image), "namespace": p.namespace, "labels": lbl},
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 1800,
            "template": {
                "metadata": {"labels": lbl},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [{
                        "name": kind,
                        "image": image,
                        "command": command,
                        "env": render_env(m, p),
                        "volumeMounts": [tlsc.client_mount(),
                                         {"name": "kube-ca", "mountPath": KUBE_CA_MOUNT, "readOnly": True}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "1", "memory": "512Mi"}},
                        "securityContext": kx.restricted_security_context(),
                    }],
                    "volumes": [tlsc.client_volume(client_cert_secret(m.name)),
                                {"name": "kube-ca", "configMap": {"name": KUBE_CA_CONFIGMAP}}],
                },
            },
        },
    }


def render_network_policy(p: PlatformEndpoints) -> dict:
    """Hook Jobs reach MinIO and DNS only; nothing reaches them."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": POLICY, "namespace": p.namespace, "labels": kx.labels(POLICY, "network-policy")},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": COMPONENT}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [{"to": [{"namespaceSelector": kx.ns_selector(p.data_namespace),
                                "podSelector": {"matchLabels": kx.selector("minio")}}],
                        "ports": [{"protocol": "TCP", "port": 9000}]},
                       kx.dns_egress_rule()],
        },
    }


class HookPolicy(pulumi.ComponentResource):
    def __init__(self, name: str, p: PlatformEndpoints, opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:HookPolicy", name, None, opts)
        self.object = render_network_policy(p)
        self.resource = kx.create(f"{name}-policy", self.object, pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


class FunctionHook(pulumi.ComponentResource):
    """One hook Job of one function (Pulumi waits for it to complete)."""

    def __init__(self, name: str, m: Manifest, kind: str, p: PlatformEndpoints, *, image: str, store_image: str = "",
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:FunctionHook", name, None, opts)
        self.object = render_job(m, kind, p, image=image, store_image=store_image)
        self.job = kx.create(f"{name}-job", self.object, pulumi.ResourceOptions(parent=self))
        self.register_outputs({"job": self.object["metadata"]["name"]})
