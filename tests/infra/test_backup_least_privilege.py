"""The backups run with the least they need, since their pods reach outside the cluster: the mirror
reads the function buckets as a read-only store user (never MinIO's root), the stream upload holds
no store credentials at all, and the snapshot talks to NATS as a user that may snapshot the two
streams and nothing else (never admin, which has no permissions block)."""

from __future__ import annotations

import json
import re

import pytest

from infra_support import REPO, k8s_objects, normalize

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

pytest.importorskip("pulumi")

from lscloud import manifest  # noqa: E402

from components import natsauth  # noqa: E402

FUNCTIONS = [m.name for m in manifest.discover(REPO / "functions")]
BUCKETS = {f"lscloud-{f}" for f in FUNCTIONS}
STREAMS = ("LSCLOUD", "LSCLOUD_DLQ")
WRITES = re.compile(r"s3:(Put|Delete|Abort|Create|Replicate|Restore|Bypass)|s3:\*|admin:")


@pytest.fixture
def prod(program):
    return k8s_objects(program("prod"))


def _one(objs, kind, name):
    (o,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return o


def _pod(objs, cron):
    return _one(objs, "CronJob", cron)["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _secret_refs(container) -> dict[str, str]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}


def _mounted_secrets(pod, container) -> set[str]:
    vols = {v["name"]: v for v in pod["volumes"]}
    return {vols[m["name"]]["secret"]["secretName"] for m in container["volumeMounts"]
            if "secret" in vols.get(m["name"], {})}


def test_no_backup_container_gets_minio_root(prod):
    for cron in ("backup-objects", "backup-streams"):
        pod = _pod(prod, cron)
        for c in pod.get("initContainers", []) + pod["containers"]:
            assert "minio-root" not in _secret_refs(c).values(), (cron, c["name"])
            assert "minio-root" not in _mounted_secrets(pod, c), (cron, c["name"])


def test_the_mirror_reads_the_store_as_the_read_only_backup_user(prod):
    (mirror,) = _pod(prod, "backup-objects")["containers"]
    refs = _secret_refs(mirror)
    assert refs["SRC_USER"] == refs["SRC_PASSWORD"] == "minio-backup-reader"
    secret = _one(prod, "Secret", "minio-backup-reader")
    assert secret["metadata"]["namespace"] == "lscloud-data"
    assert secret["stringData"]["access-key"] == "backup-reader"

    cm = _one(prod, "ConfigMap", "minio-policies")["data"]
    policy = json.loads(cm["backup-reader.json"])
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert {"s3:ListBucket", "s3:GetObject"} <= actions
    assert not [a for a in actions if WRITES.search(a)], actions
    assert all(st["Effect"] == "Allow" for st in policy["Statement"])
    resources = {r for st in policy["Statement"] for r in st["Resource"]}
    # exactly the function buckets (and their objects): no wildcard bucket, no other bucket
    assert {r.removeprefix("arn:aws:s3:::").removesuffix("/*") for r in resources} == BUCKETS
    setup = cm["setup.sh"]
    assert 'mc admin user add lscloud backup-reader "$(cat /users/backup-reader.secret-key)"' in setup
    assert re.search(r"mc admin policy attach lscloud \S+ --user backup-reader", setup)
    assert "backup-reader.secret-key" in _one(prod, "Secret", "minio-function-users")["stringData"]


def test_the_stream_upload_holds_no_store_credentials(prod):
    pod = _pod(prod, "backup-streams")
    (upload,) = pod["containers"]
    assert not [n for n in _secret_refs(upload) if n.startswith("SRC_")]
    assert set(_secret_refs(upload).values()) == {"backup-target"}
    script = _one(prod, "ConfigMap", "backup-scripts")["data"]["upload.sh"]
    assert "alias set src" not in script and "$SRC_" not in script


def _nats_user(prod, email: str) -> str:
    accounts = _one(prod, "ConfigMap", "nats-config")["data"]["accounts.conf"]
    (line,) = [ln for ln in accounts.splitlines() if f'"{email}"' in ln]
    return line


def test_the_snapshot_is_a_nats_user_that_may_only_snapshot_the_two_streams(prod):
    pod = _pod(prod, "backup-streams")
    (snap,) = pod["initContainers"]
    (secret,) = _mounted_secrets(pod, snap) - {"minio-server-tls"}
    assert secret != "nats-admin"
    cert = _one(prod, "Certificate", secret)
    (email,) = cert["spec"]["emailAddresses"]
    assert cert["metadata"]["namespace"] == "lscloud-data" and email != "admin@nats.lscloud"
    assert "permissions" in _nats_user(prod, email)     # admin's line has none: it may do everything

    (user,) = [u for u in natsauth.platform_users("LSCLOUD") if u.email == email]
    assert not user.all_allowed and user.subscribe == (natsauth.INBOX,)
    expected = {"$JS.API.INFO"}
    for s in STREAMS:
        expected |= {f"$JS.API.STREAM.INFO.{s}", f"$JS.API.STREAM.SNAPSHOT.{s}", f"$JS.SNAPSHOT.ACK.{s}.>"}
    assert set(user.publish) == expected
    for s in STREAMS:
        assert f"stream backup {s} " in _one(prod, "ConfigMap", "backup-scripts")["data"]["snapshot.sh"]


def test_the_snapshots_certificate_is_issued_with_every_other_nats_clients(program):
    """By the internal CA component, as the functions', the bridges' and the clock's: the stack's
    ``lscloud:tls`` lifetimes apply, and the backups wait for it like every other client."""
    made_by = {normalize(r.inputs)["metadata"]["name"]: r.name for r in program("prod").resources
               if r.inputs.get("kind") == "Certificate"}
    clock = made_by["nats-clock"]
    internal_ca = clock[:clock.index("-certificate-")]
    assert made_by["nats-backup"].startswith(f"{internal_ca}-certificate-"), made_by["nats-backup"]


def test_the_mirror_has_no_nats_identity_and_each_pod_reaches_only_what_it_uses(prod):
    mirror_pod = _pod(prod, "backup-objects")
    assert not [v for v in mirror_pod["volumes"] if v.get("secret", {}).get("secretName", "").startswith("nats-")]
    for cron, reaches, never in (("backup-objects", "minio", "nats"), ("backup-streams", "nats", "minio")):
        policies = [p for p in prod if p["kind"] == "NetworkPolicy" and p["spec"]["podSelector"].get("matchLabels", {})
                    .get("app.kubernetes.io/name") == cron]
        policies += [p for p in prod if p["kind"] == "NetworkPolicy" and p["spec"]["podSelector"].get("matchLabels", {})
                     .get("app.kubernetes.io/component") == "backup"]
        peers = {f["podSelector"]["matchLabels"].get("app.kubernetes.io/name") for p in policies
                 for r in p["spec"].get("egress", []) for f in r.get("to", []) if "podSelector" in f}
        assert reaches in peers and never not in peers, (cron, peers)


def test_without_backups_there_is_no_backup_reader(program):
    dev = k8s_objects(program("dev"))
    assert not [o for o in dev if o["kind"] == "Secret" and o["metadata"]["name"] == "minio-backup-reader"]
    assert "backup-reader.json" not in _one(dev, "ConfigMap", "minio-policies")["data"]
