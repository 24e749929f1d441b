"""Backups to a second S3 target outside the cluster (``lscloud:backup``), as two CronJobs in the
data namespace:

- ``backup-objects`` (hourly): ``mc mirror --overwrite --remove`` of every function's bucket to
  ``<target>/<backup.bucket>/objects/<bucket>/``: new and changed objects are copied, and an object
  deleted in the store is deleted in the copy too. The target bucket is **versioned**, so that
  deletion (and an overwrite) only makes the copy's version noncurrent: it stays recoverable
  ``keepDeletedDays`` (an object deleted by mistake, a store lost or emptied), then a lifecycle rule
  on the target removes it for good. Without that bound every object the platform deletes on
  purpose (expired idempotency answers, dead letters, plate readings, personal data erased under
  Law No. 91/2025/QH15, Art. 14) would live on in the copy and come back with a restore. The job
  itself turns versioning on and sets the rule at every run, before it mirrors, and stops when the
  target does not report versioning enabled: ``--remove`` into an unversioned bucket would make a
  mistaken deletion final within the hour. ``mc ilm rule import`` (not ``rule add``, which appends
  one more rule at every run) replaces the target bucket's rules: the job owns them. Objects are
  copied decrypted by MinIO and re-encrypted by the target's own encryption (set it up there);
- ``backup-streams`` (daily): ``nats stream backup`` of the functions' stream and its dead-letter
  stream (JetStream's own snapshot: messages, sequence numbers and consumers), copied to
  ``<target>/<backup.bucket>/streams/<UTC date>/``; snapshots older than ``keepStreamBackups`` days
  are removed from the target (their versions then go ``keepDeletedDays`` later, by the same rule).

What is not in these copies and must be kept elsewhere: the Pulumi stack's state (``pulumi stack
export``), which holds the generated keys — MinIO's KMS key (without it the object data cannot be
decrypted on a restored MinIO), the pseudonym key, ``softatm-kek`` — see infra/README.md, "Restore".

The target's credentials are the secrets ``backupAccessKey``/``backupSecretKey`` (they need the
bucket's versioning and lifecycle calls too); its addresses must be in ``backup.targetCidrs`` (the
jobs' only way out besides NATS, MinIO and DNS).

Least privilege, since both pods reach outside the cluster: the mirror reads the store as
``backup-reader`` (list and read the function buckets, :func:`.objectstore.render_backup_reader_policy`),
never as MinIO's root; the snapshot talks to NATS as ``backup`` (snapshot the two streams,
:func:`.natsauth.backup_user`), never as admin, with a client certificate of its own; the upload
container holds the target's credentials only. Each CronJob's pods reach only what they use.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import pulumi

from . import k8s as kx
from . import tls as tlsc
from . import natsauth
from .bus import client_url, dlq_stream_name, nats_cli
from .objectstore import BACKUP_READER_SECRET, MC_CA_DIR, MC_CONFIG, SERVER_CERT, endpoint, mc_trust
from .settings import BackupSettings, NatsSettings, ObjectStoreSettings

OBJECTS, STREAMS = "backup-objects", "backup-streams"
TARGET_SECRET = "backup-target"
NATS_CERT = "nats-backup"   # the snapshot's client certificate: NATS user ``backup``
COMPONENT = "backup"


def selectors() -> tuple[str, ...]:
    """The pod names (``app.kubernetes.io/name``) NATS and MinIO admit as backup clients."""
    return (OBJECTS, STREAMS)


def _mc_env(*, src: bool) -> list[dict]:
    ref = lambda secret, key: {"secretKeyRef": {"name": secret, "key": key}}  # noqa: E731
    env = [{"name": "MC_CONFIG_DIR", "value": MC_CONFIG}]
    if src:   # the store's read-only backup user (.objectstore), only where something reads the store
        env += [{"name": "SRC_USER", "valueFrom": ref(BACKUP_READER_SECRET, "access-key")},
                {"name": "SRC_PASSWORD", "valueFrom": ref(BACKUP_READER_SECRET, "secret-key")}]
    return env + [{"name": "DST_USER", "valueFrom": ref(TARGET_SECRET, "access-key")},
                  {"name": "DST_PASSWORD", "valueFrom": ref(TARGET_SECRET, "secret-key")}]


def _aliases(b: BackupSettings, namespace: str, *, src: bool) -> list[str]:
    source = [f'mc alias set src {endpoint(namespace)} "$SRC_USER" "$SRC_PASSWORD" >/dev/null'] if src else []
    return [*mc_trust(), *source, f'mc alias set dst {b.endpoint} "$DST_USER" "$DST_PASSWORD" >/dev/null',
            f"mc mb --ignore-existing dst/{b.bucket}"]


def target_lifecycle(keep_deleted_days: int) -> dict:
    """The target bucket's rules: a version made noncurrent (by the mirror's deletion or overwrite,
    or by the streams' pruning) goes ``keep_deleted_days`` later; a delete marker left with no
    version behind it goes too."""
    return {"Rules": [
        {"ID": "deleted-after-grace", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": int(keep_deleted_days)}},
        {"ID": "expired-delete-markers", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]}


def _versioned_target(b: BackupSettings) -> list[str]:
    dst = f"dst/{b.bucket}"
    refused = (f"Đích sao lưu {dst} không bật được lưu phiên bản (versioning): không sao chép với --remove, "
               f"vì một lần xoá nhầm sẽ mất hẳn. / The backup target {dst} did not enable versioning: "
               "not mirroring with --remove, a deletion by mistake would be final. "
               "See infra/README.md, Backups and restore.")
    rules = json.dumps(target_lifecycle(b.keepDeletedDays), sort_keys=True, separators=(",", ":"))
    return [
        f"mc version enable {dst}",
        # the status as the target reports it, not the exit code of the call: a target may accept
        # the call and leave the bucket unversioned (matched by the shell: no other tool assumed in the image)
        f"versioning=$(mc --no-color version info {dst})",
        (f"case \"$versioning\" in *'versioning is enabled'*) ;; "
         f"*) echo \"$versioning\" >&2; echo '{refused}' >&2; exit 1 ;; esac"),
        f"echo '{rules}' | mc ilm rule import {dst}",
    ]


def objects_script(b: BackupSettings, namespace: str, buckets: Sequence[str]) -> str:
    lines = ["set -eu", *_aliases(b, namespace, src=True), *_versioned_target(b)]
    lines += [f"mc mirror --overwrite --remove --preserve src/{bucket} dst/{b.bucket}/objects/{bucket}"
              for bucket in buckets]
    return "\n".join(lines) + "\n"


def streams_scripts(b: BackupSettings, n: NatsSettings, namespace: str) -> tuple[str, str]:
    """(snapshot with the nats CLI into /backup, upload with mc and prune)."""
    cli = nats_cli(client_url(namespace))
    snap = "\n".join(["set -eu", *[f"{cli} stream backup {s} /backup/{s}" for s in (n.stream, dlq_stream_name(n))]])
    upload = "\n".join(["set -eu", *_aliases(b, namespace, src=False),
                        'day=$(date -u +%Y-%m-%d)',
                        f"mc cp --recursive /backup/ dst/{b.bucket}/streams/$day/",
                        f"mc rm --recursive --force --older-than {b.keepStreamBackups}d dst/{b.bucket}/streams/ || true"])
    return snap + "\n", upload + "\n"


def _volumes(scratch_bytes: int | None = None, *, nats: bool) -> list[dict]:
    scratch: dict[str, Any] = {"name": "backup", "emptyDir": {}}
    if scratch_bytes:
        scratch["emptyDir"] = {"sizeLimit": str(scratch_bytes)}
    return [scratch, {"name": "tmp", "emptyDir": {}},
            {"name": "scripts", "configMap": {"name": "backup-scripts"}},
            {"name": "minio-ca", "secret": {"secretName": SERVER_CERT, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            *([tlsc.client_volume(NATS_CERT)] if nats else [])]


def client_cert(n: NatsSettings, namespace: str) -> tlsc.ClientCert:
    """The snapshot's client certificate, issued by the internal CA with every other NATS client's
    (infra/__main__.py): NATS maps it to the user ``backup`` (:mod:`.natsauth`)."""
    return tlsc.ClientCert(NATS_CERT, namespace, natsauth.backup_user(n.stream).email)


def _container(name: str, image: str, script: str, env: list[dict], mounts: list[dict]) -> dict:
    return {"name": name, "image": image, "command": ["sh", f"/scripts/{script}"], "env": env,
            "volumeMounts": [{"name": "scripts", "mountPath": "/scripts"}, *mounts],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
            "securityContext": {**kx.restricted_security_context(), "runAsUser": 1000}}


def _cron(name: str, namespace: str, schedule: str, spec: dict) -> dict:
    lbl = kx.labels(name, COMPONENT)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": namespace, "labels": lbl},
            "spec": {"schedule": schedule, "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"metadata": {"labels": lbl}, "spec": {
                         "backoffLimit": 2, "activeDeadlineSeconds": 6 * 3600,
                         "template": {"metadata": {"labels": lbl}, "spec": {
                             "restartPolicy": "Never", "automountServiceAccountToken": False,
                             "enableServiceLinks": False, **spec}}}}}}


def render(b: BackupSettings, n: NatsSettings, store: ObjectStoreSettings, namespace: str, buckets: Sequence[str], *,
           access_key: Any, secret_key: Any, target_cidrs: Sequence[str]) -> list[dict]:
    """Every Kubernetes object of the backups but the snapshot's certificate (:func:`client_cert`)."""
    snap, upload = streams_scripts(b, n, namespace)
    mc_mounts = [{"name": "tmp", "mountPath": "/tmp"},
                 {"name": "minio-ca", "mountPath": MC_CA_DIR, "readOnly": True}]   # (mc_trust)
    objs: list[dict] = [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": TARGET_SECRET, "namespace": namespace, "labels": kx.labels(TARGET_SECRET, COMPONENT)},
         "stringData": {"access-key": access_key, "secret-key": secret_key}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "backup-scripts", "namespace": namespace, "labels": kx.labels("backup-scripts", COMPONENT)},
         "data": {"objects.sh": objects_script(b, namespace, buckets), "snapshot.sh": snap, "upload.sh": upload}},
        _cron(OBJECTS, namespace, b.objectsSchedule, {
            "containers": [_container("mirror", store.mcImage, "objects.sh", _mc_env(src=True), mc_mounts)],
            "volumes": _volumes(nats=False)}),
        _cron(STREAMS, namespace, b.streamsSchedule, {
            "initContainers": [_container("snapshot", n.boxImage, "snapshot.sh", [],
                                          [{"name": "backup", "mountPath": "/backup"}, tlsc.client_mount()])],
            "containers": [_container("upload", store.mcImage, "upload.sh", _mc_env(src=False),
                                      [{"name": "backup", "mountPath": "/backup", "readOnly": True}, *mc_mounts])],
            "volumes": _volumes(n.store_bytes, nats=True)}),
    ]
    peers = lambda name, port: {"to": [{"podSelector": {"matchLabels": kx.selector(name)}}],  # noqa: E731
                                "ports": [{"protocol": "TCP", "port": port}]}
    target = {"to": [{"ipBlock": {"cidr": c}} for c in target_cidrs],
              "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 9000}]}
    # the mirror reads MinIO, the streams' pod NATS; each only what it uses, besides the target
    for job, inside in ((OBJECTS, peers("minio", 9000)), (STREAMS, peers("nats", 4222))):
        objs.append(kx.egress_only_policy(job, namespace, [inside, kx.dns_egress_rule(), target]))
    return objs


class Backups(pulumi.ComponentResource):
    def __init__(self, name: str, b: BackupSettings, n: NatsSettings, store: ObjectStoreSettings, namespace: str,
                 buckets: Sequence[str], *, access_key: pulumi.Input[str], secret_key: pulumi.Input[str],
                 target_cidrs: Sequence[str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:Backups", name, None, opts)
        self.objects = render(b, n, store, namespace, buckets, access_key=pulumi.Output.secret(access_key),
                              secret_key=pulumi.Output.secret(secret_key), target_cidrs=target_cidrs)
        for obj in self.objects:
            kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj, pulumi.ResourceOptions(parent=self))
        self.register_outputs({"target": b.endpoint, "bucket": b.bucket})
