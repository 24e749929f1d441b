"""The functions' own config maps and secrets: every ``{{ configMap:name:key }}`` and
``{{ secret:name:key }}`` a func.yaml refers to exists because the program made it.

Where a value comes from:

- **platform secrets** (``lscloud-s3`` — resolved to the function's own credentials —, ``lscloud-jwt``,
  ``lscloud-partners``, ``lscloud-pseudonym``): :mod:`.secrets` and :mod:`.objectstore`;
- **config maps**: plain values in the stack file, ``lscloud:configMaps``
  (``{identity-registry: {url: https://…}}``); a key a func.yaml needs and the stack lacks stops the
  program, naming both;
- **generated secrets**: ``lscloud:generatedSecrets`` names a kind per key (``fernet``: a Fernet key,
  32 random bytes in URL-safe base64; ``password``: 40 random characters). Pulumi generates the
  value once and keeps it in the stack's state; ``pulumi up --replace <urn>`` makes a new one;
- **operator secrets**: values only a person can bring (a registry's API token), set with
  ``pulumi config set --secret --path 'secrets.<name>.<key>' …``. One still missing is created empty
  with a warning, so the rest deploys; the function refuses what needs it until it is set.

A name declared in the stack that no func.yaml uses is an error too (a typo would otherwise leave
the real reference unresolved). :func:`digest` covers every value a function's env reads: it goes
into the Knative Service's template, so changing or rotating a value rolls out a new revision (a
Secret's new value never reaches a running pod otherwise).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_random as random

from lscloud.manifest import Manifest

from . import k8s as kx
from .settings import SettingsError

PLATFORM_SECRETS = frozenset({"lscloud-s3", "lscloud-jwt", "lscloud-partners", "lscloud-pseudonym"})
GENERATED_KINDS = ("fernet", "password")
_REF_RE = re.compile(r"^\{\{\s*(secret|configMap):([^:}\s]+):([^}\s]+)\s*\}\}$")


@dataclass(frozen=True)
class Ref:
    kind: str  # "secret" | "configMap"
    name: str
    key: str


@dataclass
class Plan:
    """What the program must create, and for whom."""

    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    generated: dict[str, dict[str, str]] = field(default_factory=dict)       # name -> key -> kind
    operator: dict[str, set[str]] = field(default_factory=dict)              # name -> keys to bring
    users: dict[str, set[Ref]] = field(default_factory=dict)                 # function -> its references
    missing_operator: list[str] = field(default_factory=list)                # "name.key (function)" still unset


def references(m: Manifest) -> set[Ref]:
    out = set()
    for var in m.envs:
        match = _REF_RE.match(var.template or "")
        if match:
            out.add(Ref(*match.groups()))
    return out


def plan(manifests: Sequence[Manifest], config_maps: Mapping[str, Mapping[str, str]],
         generated: Mapping[str, Mapping[str, str]], operator_values: Mapping[str, Mapping[str, Any]]) -> Plan:
    """Check every reference against the stack and return what to create (SettingsError otherwise)."""
    p = Plan()
    used_maps: set[str] = set()
    used_generated: set[str] = set()
    for m in manifests:
        refs = references(m)
        p.users[m.name] = refs
        for r in sorted(refs, key=lambda r: (r.kind, r.name, r.key)):
            where = f"{m.path} ({m.name})"
            if r.kind == "configMap":
                value = (config_maps.get(r.name) or {}).get(r.key)
                if value is None:
                    raise SettingsError(f"{where} reads {{{{ configMap:{r.name}:{r.key} }}}}: set it in the stack file, "
                                        f"lscloud:configMaps: {{{r.name}: {{{r.key}: …}}}}")
                p.config_maps.setdefault(r.name, {})[r.key] = str(value)
                used_maps.add(r.name)
                continue
            if r.name in PLATFORM_SECRETS:
                continue
            kind = (generated.get(r.name) or {}).get(r.key)
            if kind is not None:
                if kind not in GENERATED_KINDS:
                    raise SettingsError(f"lscloud:generatedSecrets.{r.name}.{r.key}: kind must be one of "
                                        f"{GENERATED_KINDS}, got {kind!r}")
                p.generated.setdefault(r.name, {})[r.key] = kind
                used_generated.add(r.name)
                continue
            p.operator.setdefault(r.name, set()).add(r.key)
            if (operator_values.get(r.name) or {}).get(r.key) in (None, ""):
                p.missing_operator.append(f"{r.name}.{r.key} ({m.name})")
    for kind, declared, used in (("configMaps", config_maps, used_maps), ("generatedSecrets", generated, used_generated)):
        unused = sorted(set(declared) - used)
        if unused:
            raise SettingsError(f"lscloud:{kind}: no func.yaml refers to {unused} (a typo?)")
    for name in sorted(set(p.generated) & set(p.operator)):
        raise SettingsError(f"secret {name!r}: some keys are generated and some brought by the operator; "
                            "use one source per secret")
    unused_operator = sorted(set(operator_values) - set(p.operator))
    if unused_operator:
        raise SettingsError(f"lscloud:secrets: no func.yaml refers to {unused_operator} (a typo?)")
    return p


def fernet_key(b64: str) -> str:
    """32 random bytes as Fernet wants them: URL-safe base64 (the generator gives the standard alphabet)."""
    return b64.replace("+", "-").replace("/", "_")


def render(namespace: str, p: Plan, values: Mapping[str, Mapping[str, Any]]) -> list[dict]:
    """ConfigMaps with their plain values; Secrets with ``values`` (Outputs in the program)."""
    objs = []
    for name, data in sorted(p.config_maps.items()):
        objs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": name, "namespace": namespace, "labels": kx.labels(name, "function-config")},
                     "data": dict(sorted(data.items()))})
    for name in sorted(set(p.generated) | set(p.operator)):
        objs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"name": name, "namespace": namespace, "labels": kx.labels(name, "function-secret")},
                     "stringData": dict(values[name])})
    return objs


def digest_of(parts: Mapping[str, Any]) -> str:
    """A short digest of the values a function reads (never the values)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class FunctionConfig(pulumi.ComponentResource):
    """The config maps and secrets the functions' func.yaml refer to."""

    def __init__(self, name: str, namespace: str, p: Plan, operator_values: pulumi.Input[Mapping[str, Any]],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:FunctionConfig", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        values: dict[str, dict[str, Any]] = {}
        for sname, keys in sorted(p.generated.items()):
            for key, kind in sorted(keys.items()):
                rname = f"{name}-{sname}-{key}"
                if kind == "fernet":
                    value = random.RandomBytes(rname, length=32, opts=child).base64.apply(fernet_key)
                else:
                    value = random.RandomPassword(rname, length=40, special=False, opts=child).result
                values.setdefault(sname, {})[key] = pulumi.Output.secret(value)
        given = pulumi.Output.secret(operator_values)
        for sname, keys in sorted(p.operator.items()):
            for key in sorted(keys):
                values.setdefault(sname, {})[key] = given.apply(
                    lambda v, s=sname, k=key: str(((v or {}).get(s) or {}).get(k) or ""))
        self.values = values
        self.objects = render(namespace, p, values)
        self.resources = [kx.create(f"{name}-{o['kind'].lower()}-{o['metadata']['name']}", o, child)
                          for o in self.objects]
        self.register_outputs({"configMaps": sorted(p.config_maps), "secrets": sorted(values)})
