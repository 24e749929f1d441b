"""The cluster's internal CA and every certificate it signs (cert-manager objects).

NATS and MinIO speak TLS only, with certificates from a CA of the cluster's own: a self-signed
root made by cert-manager (``lscloud-internal-ca``, in cert-manager's cluster resource namespace)
behind the ClusterIssuer ``lscloud-internal-ca``. It signs

- the servers: ``nats-server-tls`` and ``minio-server-tls`` (names of the Services and of each pod
  behind the headless Services, so peers verify each other too);
- a client certificate per NATS user (:mod:`.natsauth`): each function, the bridges, the clock, the
  eventing channel, the platform's admin jobs. NATS maps the certificate's e-mail address to the
  user and so to what that user may publish; the secret also carries ``ca.crt``, which is how a
  client trusts the servers (NATS and MinIO).

cert-manager renews every certificate ``tls.renewBefore`` before it expires; the servers pick up
the new files without a restart (MinIO watches its certs dir, NATS gets a reload from its sidecar)
and clients re-read theirs (:func:`lscloud.bus.tls_context`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi

from . import k8s as kx
from .settings import TlsSettings

API = "cert-manager.io/v1"
# Pulumi waits until cert-manager reports a certificate issued (and an issuer ready) before what mounts it
WAIT = {"pulumi.com/waitFor": "condition=Ready"}
SELF_SIGNED = "lscloud-selfsigned"
CA_ISSUER = "lscloud-internal-ca"
CA_SECRET = "lscloud-internal-ca"
# where a client certificate's secret is mounted in a pod, and its files
MOUNT = "/var/run/lscloud/tls"
CA_FILE, CERT_FILE, KEY_FILE = f"{MOUNT}/ca.crt", f"{MOUNT}/tls.crt", f"{MOUNT}/tls.key"
VOLUME = "lscloud-tls"


@dataclass(frozen=True)
class ClientCert:
    """A certificate a workload presents to NATS: ``email`` is the NATS user it maps to."""

    secret: str
    namespace: str
    email: str


def issuer_ref() -> dict:
    return {"name": CA_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"}


def render_ca(s: TlsSettings) -> list[dict]:
    """The self-signed root and the ClusterIssuer that signs with it."""
    lbl = kx.labels("internal-ca", "tls")
    return [
        {"apiVersion": API, "kind": "ClusterIssuer", "metadata": {"name": SELF_SIGNED, "labels": lbl, "annotations": WAIT},
         "spec": {"selfSigned": {}}},
        {"apiVersion": API, "kind": "Certificate",
         "metadata": {"name": CA_SECRET, "namespace": s.certManagerNamespace, "labels": lbl, "annotations": WAIT},
         "spec": {"isCA": True, "commonName": "Lang Son Cloud internal CA", "secretName": CA_SECRET,
                  "duration": s.caDuration, "privateKey": {"algorithm": "ECDSA", "size": 256},
                  "issuerRef": {"name": SELF_SIGNED, "kind": "ClusterIssuer", "group": "cert-manager.io"}}},
        {"apiVersion": API, "kind": "ClusterIssuer", "metadata": {"name": CA_ISSUER, "labels": lbl, "annotations": WAIT},
         "spec": {"ca": {"secretName": CA_SECRET}}},
    ]


def render_server_cert(name: str, namespace: str, dns_names: Sequence[str], s: TlsSettings) -> dict:
    """A server certificate (also a client one: cluster peers authenticate each other with it)."""
    return {"apiVersion": API, "kind": "Certificate",
            "metadata": {"name": name, "namespace": namespace, "labels": kx.labels(name, "tls"), "annotations": WAIT},
            "spec": {"secretName": name, "duration": s.certDuration, "renewBefore": s.renewBefore,
                     "commonName": dns_names[0], "dnsNames": list(dns_names),
                     "usages": ["server auth", "client auth", "digital signature", "key encipherment"],
                     "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                     "issuerRef": issuer_ref()}}


def render_client_cert(c: ClientCert, s: TlsSettings) -> dict:
    return {"apiVersion": API, "kind": "Certificate",
            "metadata": {"name": c.secret, "namespace": c.namespace, "labels": kx.labels(c.secret, "tls"),
                         "annotations": WAIT},
            "spec": {"secretName": c.secret, "duration": s.certDuration, "renewBefore": s.renewBefore,
                     "commonName": c.email.split("@", 1)[0], "emailAddresses": [c.email],
                     "usages": ["client auth", "digital signature", "key encipherment"],
                     "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                     "issuerRef": issuer_ref()}}


def service_dns_names(service: str, namespace: str, headless: str | None = None) -> list[str]:
    names = [f"{service}.{namespace}.svc.cluster.local", f"{service}.{namespace}.svc", f"{service}.{namespace}",
             service]
    if headless:
        names += [f"*.{headless}.{namespace}.svc.cluster.local", f"*.{headless}.{namespace}.svc"]
    return names


def client_volume(secret: str) -> dict:
    # a secret's files are root:root; the containers run as a user of their own (the platform image's
    # 10001, the tools' 1000) and no pod sets fsGroup (a Knative Service may not without a Serving
    # flag), so 0440 would leave the key unreadable and every pod failing its start. Read-only, and
    # nothing else runs in these containers to read it.
    return {"name": VOLUME, "secret": {"secretName": secret, "defaultMode": 0o444}}


def client_mount() -> dict:
    return {"name": VOLUME, "mountPath": MOUNT, "readOnly": True}


def client_env(*, nats: bool = True, s3: bool = True) -> list[dict]:
    """The runtime's settings for a pod that mounts a client certificate with :func:`client_volume`."""
    env = []
    if nats:
        env += [{"name": "LSCLOUD_NATS_CA_FILE", "value": CA_FILE},
                {"name": "LSCLOUD_NATS_CERT_FILE", "value": CERT_FILE},
                {"name": "LSCLOUD_NATS_KEY_FILE", "value": KEY_FILE}]
    if s3:
        env.append({"name": "LSCLOUD_S3_CA_FILE", "value": CA_FILE})
    return env


class InternalCA(pulumi.ComponentResource):
    """The self-signed root, its ClusterIssuer, and the certificates handed to it."""

    def __init__(self, name: str, settings: TlsSettings, certificates: Sequence[dict],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:InternalCA", name, None, opts)
        self.objects = render_ca(settings) + list(certificates)
        created: list[pulumi.Resource] = []
        ca: list[pulumi.Resource] = []
        for obj in self.objects:
            is_ca = obj["metadata"]["name"] in (SELF_SIGNED, CA_SECRET, CA_ISSUER)
            res = kx.create(f"{name}-{obj['kind'].lower()}-{obj['metadata'].get('namespace', 'cluster')}-"
                            f"{obj['metadata']['name']}", obj,
                            pulumi.ResourceOptions(parent=self, depends_on=[] if is_ca else list(ca)))
            (ca if is_ca else created).append(res)
        self.ready = ca + created
        self.register_outputs({"issuer": CA_ISSUER})
