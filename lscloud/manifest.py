"""Function manifests: the Knative ``func.yaml`` of each folder under ``functions/``.

Only the parts the local cloud acts on are read: ``name``, ``runtime``, ``run.envs``,
``deploy.options.scale`` / ``deploy.options.resources`` (kept for display and for the
cluster's Pulumi code; ``resources.limits.concurrency`` also bounds what the local gateway lets
through, :func:`container_concurrency`) and ``deploy.subscriptions`` — the shape ``func subscribe
--filter type=... [--source broker]`` writes::

    deploy:
      subscriptions:
        - source: default
          filters:
            type: vn.langson.border.declaration.submitted.v1

Errors name the file and the field (as a JSON pointer), so a typo stops ``lscloud up``
with a message that says where to look.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from . import config

MANIFEST = "func.yaml"

_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")  # a DNS-1035 label, as Knative requires
NAME_MAX_CHARS = 49
"""Knative names a function's revisions ``<name>-00001`` and their private Services
``<name>-00001-private`` (knative/serving#3236): both must stay DNS labels of at most 63 characters,
so the name gets 63 - len("-00001-private") of them."""
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_TEMPLATE_RE = re.compile(r"^\{\{\s*env:(\w+)\s*\}\}$")
_OTHER_TEMPLATE_RE = re.compile(r"^\{\{\s*(secret|configMap):")
# paths the gateway or the platform owns; a function folder with such a name could not be routed
RESERVED_NAMES = frozenset({"docs", "health", "events", "static", "api"})


PLATFORM_CONTAINER_CONCURRENCY = 100
"""Knative's ``containerConcurrency`` for a func.yaml that sets none: the platform's default, the
cluster's ``functionDefaults.containerConcurrency`` (``infra/components/settings.py``)."""

PLATFORM_TIMEOUT_S = 60
"""Knative's ``timeoutSeconds`` for every function: the cluster's ``functionDefaults.timeoutSeconds``
(func.yaml has no field for it, so no function sets its own)."""

QUEUE_DEPTH_PER_SLOT = 10
"""Requests that may wait per ``containerConcurrency`` slot before more are refused (503): Knative's
queue-proxy sizes its breaker ``queueDepth := 10 * env.ContainerConcurrency`` (knative/serving
``cmd/queue/main.go``, ``buildBreaker``; ``pkg/queue/breaker.go`` holds ``queueDepth +
maxConcurrency`` requests in all, ``pkg/queue/handler.go`` answers 503 beyond them)."""

CONCURRENCY_FIELD = "/deploy/options/resources/limits/concurrency"


class ManifestError(ValueError):
    """A func.yaml is missing or malformed; the message names the file and the field."""

    def __init__(self, path: Path | str, field_: str, message: str):
        self.path = str(path)
        self.field = field_
        super().__init__(f"{path}: {field_ or '/'}: {message}")


@dataclass(frozen=True)
class Scale:
    min: int | None = None
    max: int | None = None
    target: float | None = None
    metric: str | None = None
    utilization: float | None = None


@dataclass(frozen=True)
class Resources:
    requests: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Subscription:
    """One ``deploy.subscriptions`` entry: events of ``type`` from the broker ``source``."""

    name: str  # unique in the function: the type as a slug (the dispatcher prefixes the function)
    type: str
    source: str = "default"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str | None  # None: taken from the cluster (secret/configMap), not available locally
    template: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A parsed func.yaml and where its function lives."""

    path: Path  # the func.yaml
    name: str
    runtime: str
    spec_version: str | None
    envs: tuple[EnvVar, ...] = ()
    scale: Scale = field(default_factory=Scale)
    resources: Resources = field(default_factory=Resources)
    subscriptions: tuple[Subscription, ...] = ()

    @property
    def root(self) -> Path:
        """The function's folder (holds func.yaml and the ``function/`` package)."""
        return self.path.parent

    @property
    def package(self) -> Path:
        return self.root / "function"

    @property
    def seed_module(self) -> Path | None:
        """``function/seed.py`` when the function ships reference data to load once."""
        p = self.package / "seed.py"
        return p if p.is_file() else None

    @property
    def seeds_in_cluster(self) -> bool:
        """False when ``seed.py`` declares ``CLUSTER = False``: data only the local cloud needs (a stand-in
        for a national registry the cluster reaches over HTTP). Read from the source, never imported,
        so the deployment program does not run a function's code."""
        if self.seed_module is None:
            return False
        import ast

        tree = ast.parse(self.seed_module.read_text(encoding="utf-8"), str(self.seed_module))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CLUSTER" for t in node.targets):
                return bool(ast.literal_eval(node.value))
        return True

    @property
    def migrate_module(self) -> Path | None:
        """``function/migrate.py`` when the function moves data an older version wrote (run once)."""
        p = self.package / "migrate.py"
        return p if p.is_file() else None

    def resolved_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The ``run.envs`` a local process gets; ``{{ env:X }}`` is read from ``environ``.

        Entries that refer to cluster secrets or config maps are left out: locally the
        ``LSCLOUD_*`` settings passed by the supervisor stand in for them.
        """
        environ = config.environ() if environ is None else environ
        out: dict[str, str] = {}
        for var in self.envs:
            if var.value is not None:
                out[var.name] = var.value
            elif var.template and (m := _ENV_TEMPLATE_RE.match(var.template)) and m.group(1) in environ:
                out[var.name] = environ[m.group(1)]
        return out


def container_concurrency(m: Manifest, default: int = PLATFORM_CONTAINER_CONCURRENCY) -> int:
    """Knative's ``containerConcurrency`` for ``m``: at most this many requests in flight in one
    replica (0: no limit). func.yaml keeps it as ``resources.limits.concurrency``; one that sets none
    gets ``default`` (the stack's ``functionDefaults`` in the cluster, the platform's locally). The
    cluster's Service and the local gateway both read it here, so they cannot disagree.
    :class:`ManifestError` when it is not a whole number of at least 0."""
    value = m.resources.limits.get("concurrency")
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _err(m.path, CONCURRENCY_FIELD, f"must be a whole number of at least 0, got {value!r}")
    return value


def _err(path: Path, pointer: str, message: str) -> ManifestError:
    return ManifestError(path, pointer, message)


def _mapping(path: Path, pointer: str, value: Any) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _err(path, pointer, f"must be a mapping, got {type(value).__name__}")
    return value


def _list(path: Path, pointer: str, value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _err(path, pointer, f"must be a list, got {type(value).__name__}")
    return value


def _number(path: Path, pointer: str, value: Any, *, integer: bool) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise _err(path, pointer, f"must be a {'whole ' if integer else ''}number, got {value!r}")
    if value < 0:
        raise _err(path, pointer, f"must not be negative, got {value!r}")
    return value


def _slug(event_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", event_type.lower()).strip("-")


def parse(text: str, path: Path | str) -> Manifest:
    """Parse func.yaml ``text`` read from ``path`` (used for messages and locations)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "?"
        raise _err(path, "", f"not valid YAML ({where}): {getattr(exc, 'problem', exc)}") from None
    doc = _mapping(path, "", doc)

    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise _err(path, "/name", "is required (the function's name, e.g. 'directory')")
    if not _NAME_RE.match(name):
        raise _err(path, "/name", f"must be lowercase letters, digits and '-', starting with a letter (got {name!r})")
    if len(name) > NAME_MAX_CHARS:
        raise _err(path, "/name", f"must be at most {NAME_MAX_CHARS} characters, got {len(name)} ({name!r}): Knative "
                                  f"adds '-00001-private' to it for a revision's Service, and that name must fit "
                                  f"a 63-character DNS label")
    if name in RESERVED_NAMES:
        raise _err(path, "/name", f"{name!r} is reserved by the gateway; choose another name")
    if path.parent.name and path.parent.name != name and path.name == MANIFEST:
        raise _err(path, "/name", f"is {name!r} but the folder is {path.parent.name!r}; they must match")

    runtime = doc.get("runtime")
    if runtime != "python":
        raise _err(path, "/runtime", f"must be 'python' (got {runtime!r})")
    spec_version = doc.get("specVersion")
    if spec_version is not None and not isinstance(spec_version, str):
        raise _err(path, "/specVersion", f"must be a string like '0.36.0', got {spec_version!r}")

    run = _mapping(path, "/run", doc.get("run"))
    envs = []
    seen = set()
    for i, item in enumerate(_list(path, "/run/envs", run.get("envs"))):
        ptr = f"/run/envs/{i}"
        item = _mapping(path, ptr, item)
        env_name = item.get("name")
        if not isinstance(env_name, str) or not _ENV_NAME_RE.match(env_name):
            raise _err(path, ptr + "/name", f"must be an environment variable name, got {env_name!r}")
        if env_name in seen:
            raise _err(path, ptr + "/name", f"{env_name!r} is set twice")
        seen.add(env_name)
        value = item.get("value")
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            raise _err(path, ptr + "/value", f"must be a string or number, got {value!r}")
        value = str(value)
        if _ENV_TEMPLATE_RE.match(value) or _OTHER_TEMPLATE_RE.match(value):
            envs.append(EnvVar(env_name, None, value))
        elif value.lstrip().startswith("{{"):
            raise _err(path, ptr + "/value", f"unknown template {value!r} (use '{{{{ env:NAME }}}}', "
                                             "'{{ secret:name:key }}' or '{{ configMap:name:key }}')")
        else:
            envs.append(EnvVar(env_name, value))

    deploy = _mapping(path, "/deploy", doc.get("deploy"))
    options = _mapping(path, "/deploy/options", deploy.get("options"))
    sc = _mapping(path, "/deploy/options/scale", options.get("scale"))
    scale = Scale(
        min=_number(path, "/deploy/options/scale/min", sc.get("min"), integer=True),
        max=_number(path, "/deploy/options/scale/max", sc.get("max"), integer=True),
        target=_number(path, "/deploy/options/scale/target", sc.get("target"), integer=False),
        metric=sc.get("metric"),
        utilization=_number(path, "/deploy/options/scale/utilization", sc.get("utilization"), integer=False),
    )
    if scale.min is not None and scale.max is not None and scale.max and scale.min > scale.max:
        raise _err(path, "/deploy/options/scale/min", f"({scale.min}) is greater than max ({scale.max})")
    if scale.metric is not None and scale.metric not in ("concurrency", "rps"):
        raise _err(path, "/deploy/options/scale/metric", f"must be 'concurrency' or 'rps', got {scale.metric!r}")
    res = _mapping(path, "/deploy/options/resources", options.get("resources"))
    resources = Resources(
        requests=dict(_mapping(path, "/deploy/options/resources/requests", res.get("requests"))),
        limits=dict(_mapping(path, "/deploy/options/resources/limits", res.get("limits"))),
    )

    subs = []
    for i, item in enumerate(_list(path, "/deploy/subscriptions", deploy.get("subscriptions"))):
        ptr = f"/deploy/subscriptions/{i}"
        item = _mapping(path, ptr, item)
        source = item.get("source", "default") or "default"
        if not isinstance(source, str):
            raise _err(path, ptr + "/source", f"must be a broker name, got {source!r}")
        filters = _mapping(path, ptr + "/filters", item.get("filters"))
        event_type = filters.get("type")
        if not isinstance(event_type, str) or not _EVENT_TYPE_RE.match(event_type):
            raise _err(path, ptr + "/filters/type", "is required: the CloudEvent type to receive, "
                                                    f"e.g. vn.langson.border.declaration.submitted.v1 (got {event_type!r})")
        other = sorted(set(filters) - {"type"})
        if other:
            # the local dispatcher (like the JetStream channel) filters on the type only; silently
            # ignoring a filter would deliver events the function does not expect
            raise _err(path, f"{ptr}/filters/{other[0]}", "only the 'type' filter is supported")
        if any(sub.type == event_type for sub in subs):
            raise _err(path, ptr + "/filters/type", f"{event_type!r} is subscribed twice")
        # named after the type, not the position: the durable consumer survives reordering the list
        subs.append(Subscription(name=_slug(event_type)[:150], type=event_type, source=source))

    manifest = Manifest(path=path, name=name, runtime=runtime, spec_version=spec_version, envs=tuple(envs),
                        scale=scale, resources=resources, subscriptions=tuple(subs))
    container_concurrency(manifest)   # a malformed one stops `lscloud up` here, not the gateway's first request
    return manifest


def load(path: Path | str) -> Manifest:
    """Read and parse one func.yaml (a file, or a function folder holding one)."""
    path = Path(path).absolute()
    if path.is_dir():
        path = path / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(path, "", "file not found") from None
    except OSError as exc:
        raise ManifestError(path, "", f"cannot be read: {exc.strerror}") from None
    manifest = parse(text, path)
    init = manifest.package / "__init__.py"
    if not init.is_file():
        raise ManifestError(path, "", f"the function package is missing: expected {init}")
    return manifest


def discover(functions_dir: Path | str | Iterable[Path | str]) -> list[Manifest]:
    """Every function under ``functions_dir`` (folders holding a func.yaml), sorted by name.

    Several folders may be given (the benchmark adds ``benchmarks/``); names must be unique
    across all of them, since the gateway routes by name.
    """
    dirs = [functions_dir] if isinstance(functions_dir, (str, Path)) else list(functions_dir)
    manifests = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise ManifestError(root, "", "functions folder not found")
        manifests += [load(p) for p in sorted(root.glob(f"*/{MANIFEST}"))]
    names: dict[str, Path] = {}
    for m in manifests:
        if m.name in names:
            raise ManifestError(m.path, "/name", f"{m.name!r} is also the name of {names[m.name]}")
        names[m.name] = m.path
    return sorted(manifests, key=lambda m: m.name)
