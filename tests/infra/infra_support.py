"""Helpers for the infra tests (imported by name: `from infra_support import ...`) and their fixtures, re-exported by conftest.py.

``program(stack)`` runs ``infra/__main__.py`` with the config of ``infra/Pulumi.<stack>.yaml``
plus test-only secrets (the JWT key and :data:`REQUIRED_SECRETS`), and returns the resources it
registered (type, name, inputs).
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pulumi = pytest.importorskip("pulumi")

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
for p in (str(INFRA), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)

# distinctive values: a test fails if any of them shows up outside a Kubernetes Secret
JWT_PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETESTJWTKEYxxxxxxxxxxxxxxxx\n-----END PUBLIC KEY-----\n"
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n# test-kubeconfig-secret-marker\n"


def _stamp_key() -> str:
    """An Ed25519 PKCS#8 PEM as `openssl genpkey -algorithm ed25519` writes it (fixed: digests stay put)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes(range(32))).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


MARKET_STAMP_KEY = _stamp_key()
# what a stack cannot deploy without (the program refuses it): the census sets only these
REQUIRED_SECRETS = {"lscloud:secrets": json.dumps({"market-stamp-key": {"private-key": MARKET_STAMP_KEY}})}


@pytest.fixture(autouse=True)
def _main_thread_event_loop():
    """:func:`_an_event_loop` for a test that runs the program itself."""
    _an_event_loop()
    yield


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict
    state: dict


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources: list[Recorded] = []
        self.passwords: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"mock-password-{args.name}-Zq8"
            self.passwords.append(state["result"])
        if args.typ == "random:index/randomBytes:RandomBytes":
            import base64
            import hashlib

            raw = hashlib.sha256(args.name.encode()).digest()[: int(args.inputs.get("length", 32))]
            state["base64"], state["hex"] = base64.b64encode(raw).decode(), raw.hex()
            self.passwords.append(state["base64"])
        if args.typ == "openstack:containerinfra/cluster:Cluster":
            state["kubeconfig"] = {"rawConfig": KUBECONFIG, "host": "https://10.20.0.10:6443"}
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs), state))
        return [f"{args.name}_id", state]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def stack_config(stack: str, **changes) -> dict[str, str]:
    """The stack file's config as the engine passes it (objects as JSON), with ``changes``."""
    doc = yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    doc.update({f"lscloud:{k}": v for k, v in changes.items()})
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()}


def _an_event_loop() -> None:
    """Pulumi's mocks need an event loop in the main thread; an earlier test's ``asyncio.run``
    (the integration and e2e tests, when one pytest run collects them too) leaves none behind."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run_program(stack: str, *, secrets: dict | None = None, **changes) -> RecordingMocks:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="lscloud", stack=stack, preview=False)
    config = stack_config(stack, **changes)
    secret_values = {"lscloud:jwtPublicKey": JWT_PUBLIC_KEY, **REQUIRED_SECRETS}
    if secrets is not None:
        secret_values = secrets
    config.update(secret_values)
    pulumi.runtime.set_all_config(config, secret_keys=list(secret_values))

    @pulumi.runtime.test
    def run():
        runpy.run_path(str(INFRA / "__main__.py"), run_name="lscloud_infra_main")
        return pulumi.Output.from_input(True)

    run()
    return mocks


_cache: dict[str, RecordingMocks] = {}


@pytest.fixture(scope="session")
def program():
    def get(stack: str) -> RecordingMocks:
        if stack not in _cache:
            _cache[stack] = run_program(stack)
        return _cache[stack]
    return get


def k8s_objects(mocks: RecordingMocks) -> list[dict]:
    """The Kubernetes objects the program creates (typed and custom resources), as sent."""
    out = []
    for r in mocks.resources:
        if r.typ.startswith("kubernetes:") and "apiVersion" in r.inputs and "kind" in r.inputs \
                and not r.typ.endswith("Patch"):
            out.append(normalize(r.inputs))
    return out


# how the Pulumi wire format marks a secret value: {SIG_KEY: SECRET_SIG, "value": ...}
SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def is_secret(value) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def normalize(value):
    """Mocks send numbers as floats; give whole numbers back their int type (as YAML would) and
    unwrap secret envelopes (``is_secret`` tells them apart before normalizing)."""
    if is_secret(value):
        return normalize(value["value"])
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def egress_peers(policy: dict) -> dict[tuple[str, str], set[int]]:
    """An egress-only NetworkPolicy's peers: (namespace, pod labels as JSON) -> ports. Every peer must
    name a workload (namespace and pod selector), never a CIDR."""
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"} and policy["spec"]["ingress"] == []
    peers = {}
    for rule in policy["spec"]["egress"]:
        for peer in rule["to"]:
            assert "podSelector" in peer and "namespaceSelector" in peer  # named workloads only, no CIDR
            ns = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            peers[(ns, json.dumps(peer["podSelector"]["matchLabels"], sort_keys=True))] = {p["port"] for p in rule["ports"]}
    return peers

