"""Application secrets from Pulumi secrets: the JWT verification key and the partner banks' HMAC keys.

``lscloud-jwt`` (key ``public-key``) feeds ``LSCLOUD_JWT_PUBLIC_KEY`` when no JWKS URL is used;
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

from lscloud import config as runtime_config

from . import k8s as kx

JWT_SECRET = "lscloud-jwt"
PARTNERS_SECRET = "lscloud-partners"


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


def render(namespace: str, *, jwt_public_key: Any, partner_keys: Any) -> list[dict]:
    lbl = kx.labels("lscloud-secrets", "secrets")
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": JWT_SECRET, "namespace": namespace, "labels": lbl},
         "stringData": {"public-key": jwt_public_key}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": PARTNERS_SECRET, "namespace": namespace, "labels": lbl},
         "stringData": {"partner-keys": partner_keys}},
    ]


class AppSecrets(pulumi.ComponentResource):
    """JWT public key and partner-bank HMAC keys as Kubernetes Secrets (values stay Pulumi secrets)."""

    def __init__(self, name: str, namespace: str, *, jwt_public_key: pulumi.Input[str],
                 partner_keys: pulumi.Input[Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:AppSecrets", name, None, opts)
        keys = pulumi.Output.secret(partner_keys).apply(partner_keys_json)
        self.objects = render(namespace, jwt_public_key=pulumi.Output.secret(jwt_public_key), partner_keys=keys)
        for obj in self.objects:
            kx.create(f"{name}-{obj['metadata']['name']}", obj, pulumi.ResourceOptions(parent=self))
        self.names = [o["metadata"]["name"] for o in self.objects]
        self.register_outputs({"secrets": self.names})
