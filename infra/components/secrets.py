"""Application secrets: the JWT verification key, the partner banks' HMAC keys, the pseudonym key.

``lscloud-jwt`` (key ``public-key``) feeds ``LSCLOUD_JWT_PUBLIC_KEY`` when no JWKS URL is used;
``lscloud-pseudonym`` (key ``key``) feeds ``LSCLOUD_PSEUDONYM_KEY`` to every function and bridge: the
key of the keyed hashes that stand for personal identifiers in object keys. It is generated once
(a random 48-character string kept in the stack's state) and must never change without re-keying
the indexes (``lscloud migrate --force --from-env <function>`` with the new key, per function);
``lscloud-partners`` (key ``partner-keys``) holds ``LSCLOUD_PARTNER_KEYS``: JSON
``{"bank-code": ["key-1", "key-2"]}`` with one or two active keys per bank (rotation). A function
that verifies bank signatures references it in its func.yaml as
``{{ secret:lscloud-partners:partner-keys }}``.

The partner keys are checked with the runtime's own parser (:func:`lscloud.config.load`) at
``pulumi up``, so a key the functions would refuse at start never reaches the cluster.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import pulumi
import pulumi_random as random

from lscloud import config as runtime_config

from . import k8s as kx

JWT_SECRET = "lscloud-jwt"
PARTNERS_SECRET = "lscloud-partners"
PSEUDONYM_SECRET = "lscloud-pseudonym"


def partner_keys_json(keys: Mapping[str, Any] | str | None) -> str:
    """Validate partner keys as the functions will and return the LSCLOUD_PARTNER_KEYS value."""
    if keys is None or keys == "":
        keys = {}
    raw = keys if isinstance(keys, str) else json.dumps(keys, sort_keys=True)
    try:
        parsed = runtime_config.load({"LSCLOUD_PARTNER_KEYS": raw}).partner_keys if raw.strip() not in ("", "{}") else {}
    except runtime_config.ConfigError as exc:
        # the message names the partner, never a key
        raise ValueError(f"lscloud:partnerKeys: {exc}") from None
    return json.dumps({k: list(v) for k, v in sorted(parsed.items())})


def render(namespace: str, *, jwt_public_key: Any, partner_keys: Any, pseudonym_key: Any) -> list[dict]:
    lbl = kx.labels("lscloud-secrets", "secrets")
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": PSEUDONYM_SECRET, "namespace": namespace, "labels": lbl},
         "stringData": {"key": pseudonym_key}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": JWT_SECRET, "namespace": namespace, "labels": lbl},
         "stringData": {"public-key": jwt_public_key}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": PARTNERS_SECRET, "namespace": namespace, "labels": lbl},
         "stringData": {"partner-keys": partner_keys}},
    ]


class AppSecrets(pulumi.ComponentResource):
    """JWT public key, partner-bank HMAC keys and the pseudonym key as Kubernetes Secrets (values stay
    Pulumi secrets)."""

    def __init__(self, name: str, namespace: str, *, jwt_public_key: pulumi.Input[str],
                 partner_keys: pulumi.Input[Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:AppSecrets", name, None, opts)
        keys = pulumi.Output.secret(partner_keys).apply(partner_keys_json)
        pseudonym_key = random.RandomPassword(f"{name}-pseudonym-key", length=48, special=False,
                                              opts=pulumi.ResourceOptions(parent=self)).result
        jwt_key = pulumi.Output.secret(jwt_public_key)
        pseudonym = pulumi.Output.secret(pseudonym_key)
        self.objects = render(namespace, jwt_public_key=jwt_key, partner_keys=keys, pseudonym_key=pseudonym)
        # what a function's env may read from these, for the digest that rolls a new revision on rotation
        self.values = {JWT_SECRET: {"public-key": jwt_key}, PARTNERS_SECRET: {"partner-keys": keys},
                       PSEUDONYM_SECRET: {"key": pseudonym}}
        for obj in self.objects:
            kx.create(f"{name}-{obj['metadata']['name']}", obj, pulumi.ResourceOptions(parent=self))
        self.names = [o["metadata"]["name"] for o in self.objects]
        self.register_outputs({"secrets": self.names})
