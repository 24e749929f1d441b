"""A function's hooks in the cluster: a check of its object store and its migration before it
serves; its seed, and its migration again once the rollout is over, after.

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
- **re-run when the pseudonym key changes**: a migration Job's name also carries a digest of the
  ``lscloud-pseudonym`` Secret's key (:func:`key_digest`, the config digest's
  :func:`.appconfig.digest_of`; never the key), so a new key re-keys the data before the revision
  that uses it serves (that revision is not ready while the bucket records another key:
  :class:`lscloud.serve.KeyGuard`);
- a seed whose ``seed.py`` says ``CLUSTER = False`` (identity's generated citizens: the cluster asks
  the national registry) gets no Job.

The store check and the migration Job must finish before the function's Service changes (the new
code reads the new layout); the seed Job runs after it (directory and procedures answer 503 ``not-seeded`` until then).
The Jobs reach only MinIO and DNS (their NetworkPolicy); nothing connects to them.

The migration runs a second time, ``--migrate --after-rollout`` (its own marker, :mod:`lscloud.serve`),
in a Job created after the Service: while Knative rolls the new revision out, the older revision's
replicas go on serving and writing the older layout (a report filed there has no owner entry, and
an erasure request would never find it). The Job's first step (an init container,
``python -m lscloud.rollout wait``) waits until no pod of an older revision of the Service is left,
at most :data:`ROLLOUT_WAIT_S`; then the Job fails at once (its ``podFailurePolicy``) and
``pulumi up`` with it. That step alone holds an API token (a ServiceAccount and Role of its own:
``get`` on the function's Service, ``list`` on pods, :mod:`.rollout`), and these Jobs alone reach the
API server (their NetworkPolicy). Its name changes with every image, as the others', so every deploy
runs it; the hook does nothing when this version already ran it.

Every hook Job runs with the function's own environment, the Service's: a bucket under object lock
(``functions.<name>.retention``) is named to the hooks as to the function (``LSCLOUD_S3_OBJECT_LOCK``).
"""

from __future__ import annotations

import hashlib

import pulumi

from lscloud.manifest import Manifest
from lscloud.serve import package_fingerprint

from . import appconfig
from . import k8s as kx
from . import rollout
from .function import KUBE_CA_CONFIGMAP, KUBE_CA_MOUNT, PlatformEndpoints, client_cert_secret, render_env
from .settings import FunctionOverride
from . import tls as tlsc

COMPONENT = "function-hook"
POLICY = "function-hooks"
AFTER_ROLLOUT = "migrate-after-rollout"
KINDS = ("store-check", "migrate", AFTER_ROLLOUT, "seed")
BEFORE_SERVING = ("store-check", "migrate")
"""The hooks that must complete before the function's Service changes, in this order."""
AFTER_SERVING = (AFTER_ROLLOUT, "seed")
"""The hooks created once the function's Service has changed (each depends on it)."""
COMMANDS = {"store-check": ["python", "-m", "lscloud.cli", "store-check", "--from-env"]}
HOOK_DEADLINE_S = 1800
ROLLOUT_WAIT_S = 1800
"""How long the after-rollout Job waits for the older revision's pods to go (Knative scales a
revision no route names down within minutes)."""
WAIT_STEP = "wait-rollout"
WAIT_TIMED_OUT = 3   # lscloud.rollout's exit status when older pods outlast the wait
ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def wanted(m: Manifest) -> list[str]:
    """The hooks of ``m`` that run in the cluster, in order (every function checks its store)."""
    out = ["store-check"]
    if m.migrate_module is not None:
        out += ["migrate", AFTER_ROLLOUT]
    if m.seed_module is not None and m.seeds_in_cluster:
        out.append("seed")
    return out


KEYED = ("migrate", AFTER_ROLLOUT)
"""The hooks that re-key the data under the pseudonym key: a changed key runs them again."""


def key_digest(pseudonym_key: str) -> str:
    """A digest of the pseudonym key, as the Service's config digest takes it (never the key)."""
    return appconfig.digest_of({"pseudonym": pseudonym_key})


def job_name(m: Manifest, kind: str, image: str, store_image: str = "", key_digest: str = "") -> str:
    """A name per version of what the hook depends on: the store check, the runtime's code and the
    store's (``store_image``); the data hooks, the code and the function's package; the migrations,
    the pseudonym key too (``key_digest``: :func:`key_digest`; empty: as before there was one)."""
    depends = store_image if kind == "store-check" else package_fingerprint(m.package)
    if kind in KEYED and key_digest:
        depends += "\0" + key_digest
    digest = hashlib.sha256((image + "\0" + depends).encode()).hexdigest()[:10]
    return kx.dns_name(kind, m.name, digest)


def job_deadline_s(kind: str) -> int:
    """The Job's ``activeDeadlineSeconds``: the hook's own time, plus the wait before it."""
    return HOOK_DEADLINE_S + (ROLLOUT_WAIT_S if kind == AFTER_ROLLOUT else 0)


def await_timeout(kind: str) -> str:
    """How long ``pulumi up`` waits for the Job (its default, 10 min, is shorter than the Job's deadline)."""
    return f"{job_deadline_s(kind) // 60 + 5}m"


def render_job(m: Manifest, kind: str, p: PlatformEndpoints, *, image: str, store_image: str = "",
               override: FunctionOverride | None = None, key_digest: pulumi.Input[str] | None = None) -> dict:
    """The Job of hook ``kind``, with the function's environment as its Service gets it (``override``:
    the function's stack settings, e.g. its bucket's retention; ``key_digest``: of the pseudonym key,
    :func:`key_digest`, in a migration's name; an Output gives an Output name)."""
    if kind not in KINDS:
        raise ValueError(f"unknown hook {kind!r}")
    if kind == AFTER_ROLLOUT:
        command = ["python", "-m", "lscloud.serve", "--migrate", "--after-rollout", f"/app/functions/{m.name}"]
    else:
        command = COMMANDS.get(kind) or ["python", "-m", "lscloud.serve", f"--{kind}", f"/app/functions/{m.name}"]
    component = rollout.COMPONENT if kind == AFTER_ROLLOUT else COMPONENT
    lbl = kx.labels(f"{kind}-{m.name}", component, **{"lscloud.langson.gov.vn/function": m.name})
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": _name(m, kind, image, store_image, key_digest), "namespace": p.namespace, "labels": lbl},
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": job_deadline_s(kind),
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
                        "env": render_env(m, p, override),
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
    if kind == AFTER_ROLLOUT:
        _wait_for_rollout_first(job, m, p, image)
    return job


def _name(m: Manifest, kind: str, image: str, store_image: str, key_digest: pulumi.Input[str] | None):
    if key_digest is None or isinstance(key_digest, str):
        return job_name(m, kind, image, store_image, key_digest or "")
    return pulumi.Output.from_input(key_digest).apply(lambda d: job_name(m, kind, image, store_image, d))


def _wait_for_rollout_first(job: dict, m: Manifest, p: PlatformEndpoints, image: str) -> None:
    """Make ``job`` wait, in an init container, until no pod of an older revision of ``m``'s Service is
    left; only that container gets the API token (the hook's own never does)."""
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    # podFailurePolicy needs Never: a wait that timed out fails the Job at once, not after 6 more waits
    pod["restartPolicy"] = "Never"
    spec["podFailurePolicy"] = {"rules": [{"action": "FailJob", "onExitCodes": {
        "containerName": WAIT_STEP, "operator": "In", "values": [WAIT_TIMED_OUT]}}]}
    pod["serviceAccountName"] = rollout.account_name(m.name)
    pod["initContainers"] = [{
        "name": WAIT_STEP,
        "image": image,
        "command": ["python", "-m", "lscloud.rollout", "wait", m.name, "--namespace", p.namespace,
                    "--timeout-s", str(ROLLOUT_WAIT_S)],
        "volumeMounts": [{"name": "kube-api", "mountPath": ACCOUNT_MOUNT, "readOnly": True}],
        # its bilingual verdict in the pod's status, where `kubectl describe job` shows it
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        "securityContext": kx.restricted_security_context(),
    }]
    # what automountServiceAccountToken would mount, in the waiting step only
    pod["volumes"].append({"name": "kube-api", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        {"configMap": {"name": KUBE_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ]}})


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
    """The hook Jobs' NetworkPolicies: MinIO and DNS; the after-rollout Jobs' also the API server."""

    def __init__(self, name: str, p: PlatformEndpoints, opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:HookPolicy", name, None, opts)
        self.object = render_network_policy(p)
        self.resource = kx.create(f"{name}-policy", self.object, pulumi.ResourceOptions(parent=self))
        self.rollout_object = rollout.render_network_policy(p)
        self.rollout_resource = kx.create(f"{name}-rollout-policy", self.rollout_object,
                                          pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


class FunctionHook(pulumi.ComponentResource):
    """One hook Job of one function (Pulumi waits for it to complete). ``override``: the function's
    stack settings, as its Service gets them. An after-rollout hook (kind :data:`AFTER_ROLLOUT`) must
    be created after the function's Service (``depends_on``); it brings its own account and Role.
    ``pseudonym_key``: the ``lscloud-pseudonym`` Secret's key (an Output, secret), whose digest names
    a migration's Job, so a changed key runs it again."""

    def __init__(self, name: str, m: Manifest, kind: str, p: PlatformEndpoints, *, image: str, store_image: str = "",
                 override: FunctionOverride | None = None, pseudonym_key: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:FunctionHook", name, None, opts)
        digest = None
        if pseudonym_key is not None and kind in KEYED:
            # a digest names no key: the Job's name need not be hidden in the stack's state and diffs
            digest = pulumi.Output.unsecret(pulumi.Output.from_input(pseudonym_key).apply(key_digest))
        self.object = render_job(m, kind, p, image=image, store_image=store_image, override=override,
                                 key_digest=digest)
        self.rbac = (rollout.create_rbac(name, m.name, p, pulumi.ResourceOptions(parent=self))
                     if kind == AFTER_ROLLOUT else [])
        timeout = await_timeout(kind)
        self.job = kx.create(f"{name}-job", self.object, pulumi.ResourceOptions(
            parent=self, depends_on=self.rbac, custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)))
        self.register_outputs({"job": self.object["metadata"]["name"]})
