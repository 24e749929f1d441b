"""Settings from the environment, in one place.

Every part of the runtime reads its settings from :class:`Settings`, built once by
:func:`load` from ``LSCLOUD_*`` and ``OTEL_*`` variables. Defaults fit the local cloud
(`lscloud up`); in the cluster the Knative Service sets the variables. A bad value stops
the process at start with a message naming the variable, not at the first request.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar
from urllib.parse import urlparse

from .lru import LRU


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


# the pseudonym key of anything that runs without one (tests, a bare `lscloud` command): public by
# design, refused in the cluster; `lscloud up` generates its own per state dir instead
LOCAL_PSEUDONYM_KEY = "lscloud-local-pseudonym-key-not-a-secret"
PSEUDONYM_KEY_MIN_CHARS = 32
# a bearer token may not be made to live longer than this, whatever the setting says
JWT_LIFETIME_CEILING_S = 7 * 86_400

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

# Who may deliver to /events (see lscloud.auth.verify_event_sender). Locally the dispatcher signs
# with its own key; in the cluster Knative Eventing presents a Kubernetes service-account token,
# issued by the API server: its --service-account-issuer, which the platform renders as
# LSCLOUD_EVENTS_ISSUER (infra: knative.eventsIssuer); without it, kubeadm's default.
LOCAL_EVENTS_ISSUER = "lscloud-local-dispatcher"
LOCAL_EVENTS_SUBJECT = "lscloud-local:dispatcher"
CLUSTER_EVENTS_ISSUER = "https://kubernetes.default.svc.cluster.local"
_SUBJECT_RE = re.compile(r"^[^\s,*]+\*?$|^\*$")


@dataclass(frozen=True)
class Settings:
    """The runtime's settings. Build with :func:`load`; never mutate."""

    service: str = "lscloud"
    env: str = "local"  # "local" (the embedded cloud, dev tokens) or "cluster"
    # object storage (any S3 API: SeaweedFS locally, MinIO in the cluster)
    s3_endpoint: str = "http://127.0.0.1:8333"
    s3_access_key: str = field(default="lscloud", repr=False)
    s3_secret_key: str = field(default="lscloud-local-secret", repr=False)
    s3_region: str = "us-east-1"
    # the CA bundle that signs the store's TLS certificate (the cluster's own CA); "" = the system's
    s3_ca_file: str = ""
    # whether the store honours If-Match on DELETE (SeaweedFS does; MinIO ignores it and deletes
    # anyway): without it a conditional delete goes through a conditional tombstone write
    # (lscloud.store.objects.ObjectStore.delete). The cluster's default is no.
    s3_conditional_delete: bool = True
    # the function's bucket is under object lock in this mode ("governance" or "compliance"; "" when
    # it is not): its working objects then carry their own short retention (lscloud.store.working)
    s3_object_lock: str = ""
    # how long an attempt of a store call waits (to connect, for each part of the answer) before it is
    # made again, three attempts at most (lscloud.store.s3http)
    s3_timeout_s: int = 10
    # the store calls of one request (an event delivery too) end within this many seconds in all,
    # retries included, and the request is answered 503 with Retry-After: Knative cuts a caller off
    # after timeoutSeconds (60 s) whatever the function does, and a hung store took 63 s. 0: no bound
    s3_request_deadline_s: int = 30
    bucket: str = "lscloud"
    # messaging
    nats_url: str = "nats://127.0.0.1:4222"
    stream: str = "LSCLOUD"
    # TLS to NATS (the cluster): the CA that signs the servers, and this process's client
    # certificate and key, which NATS maps to a user with its own publish permissions
    nats_ca_file: str = ""
    nats_cert_file: str = ""
    nats_key_file: str = field(default="", repr=False)
    # how long a request waits for NATS to confirm an event before keeping it in the function's
    # outbox, published again on the clock's tick (lscloud.outbox; outside requests a publish waits 10 s)
    nats_request_publish_timeout_s: int = 2
    # where field devices reach NATS's MQTT listener (informational: shown to operators issuing credentials)
    mqtt_url: str = ""
    # auth: PEM public keys (or a JWKS URL in the cluster) that sign bearer tokens
    jwt_issuer: str = "lscloud-local"
    jwt_audience: str = "lscloud"
    jwt_public_key: str = field(default="", repr=False)
    jwt_jwks_url: str = ""
    jwt_algorithms: tuple[str, ...] = ("RS256", "ES256")
    # how long a JWKS (bearer tokens' and event deliveries') is still used after its refetch fails:
    # an identity provider's outage does not refuse every token whose key was known (lscloud.auth)
    jwks_stale_s: int = 3600
    # the longest a bearer token may live (exp - iat, and exp - now): a stolen token dies soon
    jwt_max_lifetime_s: int = 43_200
    # the dev private key that signs tokens: the local cloud gives its path to its token issuer
    # (the identity function) alone; empty everywhere else and in the cluster (an identity provider signs)
    jwt_signing_key_file: str = ""
    # event deliveries to /events: the token's issuer, its audience (empty: this function's name,
    # K_SERVICE), the keys that sign it (PEM blocks, or a JWKS URL in the cluster; locally empty:
    # the dispatcher's key under state_dir) and the subjects allowed to deliver ("prefix*" allowed)
    events_issuer: str = LOCAL_EVENTS_ISSUER
    events_audience: str = ""
    events_public_key: str = field(default="", repr=False)
    events_jwks_url: str = ""
    # the CA that signs the JWKS endpoint's certificate (the API server's: kube-root-ca.crt)
    events_jwks_ca_file: str = ""
    events_subjects: tuple[str, ...] = (LOCAL_EVENTS_SUBJECT,)
    # the networks of the proxies in front of a function that append to X-Forwarded-For (the
    # cluster's pod network: Kourier, the activator, queue-proxy); locally none (the gateway appends
    # the client's address last). See lscloud.ratelimit.client_address
    trusted_proxies: tuple[str, ...] = ()
    # partner systems (banks) signing requests: {"partner": ["key-current", "key-next"]}
    partner_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    signature_window_s: int = 300
    # a partner's verified signed requests a minute, per replica (lscloud.auth; 429 beyond): a bank's
    # calls are a few per transfer, and one bank must not fill the nonce bucket every partner shares
    partner_rate: int = 600
    # the key of the keyed hashes that stand for personal identifiers in object keys
    # (lscloud.pseudonyms); the local default is public, the cluster must set its own
    pseudonym_key: str = field(default=LOCAL_PSEUDONYM_KEY, repr=False)
    # limits
    max_body_bytes: int = 1_048_576
    blob_max_bytes: int = 20 * 1_048_576
    # how long a download link a function hands out works (lscloud.web.downloads; at most a day)
    download_link_ttl_s: int = 300
    idempotency_ttl_s: int = 86_400
    # other functions' base URL ({name} = the function): the gateway locally, the Service in the cluster
    peer_url_template: str = "http://127.0.0.1:8080/{name}"
    # where callers outside the platform reach a function ({name}): Kourier's https://{name}.<ns>.<domain>
    # in the cluster, the gateway locally. For URLs that outlive a request (a certificate's CRL
    # address); an answer's own URLs use the caller's origin (lscloud.web.origin)
    public_url_template: str = "http://127.0.0.1:8080/{name}"
    # a peer's answer that allows caching (Cache-Control: max-age, reference data) is served from
    # memory for at most this long before it is revalidated by ETag (0: revalidate on every call)
    peer_fresh_s: int = 5
    # the web pages on other origins that may call the API from a browser (CORS, lscloud.web.app):
    # exact origins, scheme://host[:port]; "*" lets any page read the public GET routes and nothing
    # else. Empty (the default): no CORS headers at all, a page elsewhere reads nothing
    cors_origins: tuple[str, ...] = ()
    # where the local cloud keeps its data, traces and keys
    state_dir: str = ".lscloud"
    # telemetry: the OTel SDK reads OTEL_* itself; these are the ones the runtime acts on
    otlp_endpoint: str = ""
    # metrics may go elsewhere than traces (the standard per-signal variable, a full URL): the
    # cluster sends them to one single collector so no series is exported twice
    otlp_metrics_endpoint: str = ""
    trace_file: str = ""  # local span log for `lscloud traces` (JSON lines)
    trace_file_max_bytes: int = 256 * 1_048_576
    """The span log's size bound: a batch that would take the file past it first renames the file to
    ``<trace_file>.1`` (what was ``.1`` becomes ``.2``, and so on). Under load the local cloud writes
    some 30 MB a minute, and an unbounded log filled the disk and could no longer be read."""
    trace_file_keep: int = 2
    """How many rotated span logs are kept beside the current one (``.1`` … ``.N``; the oldest goes):
    the log takes at most (N + 1) × ``trace_file_max_bytes`` of disk."""
    # the function's own variables, <SERVICE>_* (BORDER_CALL_MINUTES): read through section()
    function_env: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets (SOFTATM_KEK)

    def public_url(self, function: str | None = None) -> str:
        """Where callers outside the platform reach ``function`` (default: this one, its ``service``)."""
        return self.public_url_template.format(name=function or self.service)

    def replace(self, **changes) -> "Settings":
        """A copy with some values changed (for tests and the local cloud)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)

    def env_vars(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        out = {}
        for f in fields(self):
            name = _ENV_NAMES.get(f.name, "LSCLOUD_" + f.name.upper())
            value = getattr(self, f.name)
            if f.name == "function_env":
                out.update(value)
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, Mapping):
                value = json.dumps({k: list(v) for k, v in value.items()})
            out[name] = str(value)
        return out


# settings whose variable is not simply LSCLOUD_<NAME>
_ENV_NAMES = {
    "service": "K_SERVICE",
    "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "otlp_metrics_endpoint": "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
}


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("1", "0", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return value in ("1", "true", "yes")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def _int(name: str, raw: str, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")
    return value


def _url_template(name: str, raw: str) -> str:
    """An http(s) URL holding ``{name}`` (a function's name goes there)."""
    if "{name}" not in raw or not _url(name, raw.replace("{name}", "x"), ("http", "https")):
        raise ConfigError(f"{name} must be an http(s) URL holding {{name}}, got {raw!r}")
    return raw


def _url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ConfigError(f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}, got {raw!r}")
    return raw.rstrip("/")


_PEM_PUBLIC_KEY = re.compile(r"-----BEGIN [A-Z ]*PUBLIC KEY-----(.*?)-----END [A-Z ]*PUBLIC KEY-----", re.S)


def _public_keys(name: str, raw: str) -> str:
    """PEM public key blocks (several allowed, for rotation), each of base64 text.

    Whether each loads as a key is :func:`check_public_keys`, run at start by every function that
    verifies with them (:func:`lscloud.auth.check_eventing_settings`): it needs ``cryptography``,
    which a function that never verifies an event need not import to start."""
    blocks = _PEM_PUBLIC_KEY.findall(raw)
    if not blocks:
        raise ConfigError(f"{name} must hold one or more PEM public keys (-----BEGIN PUBLIC KEY-----)")
    for body in blocks:
        try:
            base64.b64decode("".join(body.split()), validate=True)
        except binascii.Error:
            raise ConfigError(f"{name} holds a PEM block that is not a valid public key") from None
    return raw


def check_public_keys(name: str, raw: str) -> None:
    """Raise :class:`ConfigError` naming ``name`` unless every PEM block of ``raw`` loads as a public key."""
    from cryptography.hazmat.primitives import serialization

    for match in _PEM_PUBLIC_KEY.finditer(raw):
        try:
            serialization.load_pem_public_key(match.group(0).encode())
        except ValueError:
            raise ConfigError(f"{name} holds a PEM block that is not a valid public key") from None


def _readable_file(name: str, raw: str) -> str:
    """A path that names a readable file ("" stays ""): a missing certificate stops the start."""
    if raw and not os.access(raw, os.R_OK):
        raise ConfigError(f"{name} must name a readable file, got {raw!r}")
    return raw


def _subjects(name: str, raw: str) -> tuple[str, ...]:
    out = tuple(s.strip() for s in raw.split(",") if s.strip())
    for subject in out:
        if not _SUBJECT_RE.match(subject):
            raise ConfigError(f"{name}: {subject!r} is not a subject (no spaces; '*' only at the end, as a prefix match)")
    return out


def _networks(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated CIDRs (``10.100.0.0/16``), each checked, kept as written normalised."""
    out = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigError(f"{name}: {part!r} is not a network (an address range like 10.100.0.0/16)") from None
    return tuple(out)


_ORIGIN_RE = re.compile(r"(https?)://([a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]{2,45}\])(?::([0-9]{1,5}))?")
_DEFAULT_PORT = {"http": "80", "https": "443"}
CORS_ANY = "*"
"""In ``LSCLOUD_CORS_ORIGINS``: any page may read the public GET routes (no credentials are involved:
the API takes bearer tokens, never cookies), and nothing else."""


def parse_origins(name: str, raw: str, *, https_only: bool = False) -> tuple[str, ...]:
    """Comma-separated web origins as a browser sends them in ``Origin`` (``https://host[:port]``:
    lowercase, no path, no default port), or ``*``; ``https_only``: ``http://`` pages refused (the
    cluster: a page served in the clear can be altered on the way to hold a citizen's token)."""
    out = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if part == CORS_ANY:
            out.append(part)
            continue
        m = _ORIGIN_RE.fullmatch(part.lower())
        if not m:
            raise ConfigError(f"{name}: {part!r} is not an origin: scheme://host[:port] with no path (not even a "
                              "trailing '/'), e.g. https://dichvucong.langson.gov.vn, or '*'")
        scheme, _, port = m.groups()
        if port is not None and (port == _DEFAULT_PORT[scheme] or not 1 <= int(port) <= 65535):
            raise ConfigError(f"{name}: {part!r}: a browser never sends the default port, nor a port outside 1-65535; "
                              "write the origin as the page's address bar shows it")
        if https_only and scheme != "https":
            raise ConfigError(f"{name}: {part!r}: only https:// pages may call the API in the cluster")
        out.append(part.lower())
    return tuple(dict.fromkeys(out))


def _partner_keys(name: str, raw: str) -> dict[str, tuple[str, ...]]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(f"{name} must be JSON like {{\"bank-code\": [\"key1\", \"key2\"]}}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{name} must be a JSON object of partner -> keys")
    out = {}
    for partner, keys in data.items():
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not 1 <= len(keys) <= 2 or not all(isinstance(k, str) and len(k) >= 16 for k in keys):
            raise ConfigError(f"{name}: partner {partner!r} needs one or two keys of at least 16 characters")
        out[partner] = tuple(keys)
    return out


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings from ``environ`` (default: ``os.environ``).

    Raises :class:`ConfigError` naming the first bad variable.
    """
    env = os.environ if environ is None else environ
    d = Settings()

    def get(var: str, default):
        return env.get(var, "").strip() or default

    service = get("K_SERVICE", get("OTEL_SERVICE_NAME", d.service))
    mode = get("LSCLOUD_ENV", d.env)
    if mode not in ("local", "cluster"):
        raise ConfigError(f"LSCLOUD_ENV must be 'local' or 'cluster', got {mode!r}")
    bucket = get("LSCLOUD_BUCKET", d.bucket)
    if not _BUCKET_RE.match(bucket):
        raise ConfigError(f"LSCLOUD_BUCKET must be a valid S3 bucket name (3-63 lowercase letters, digits, '-', '.'), got {bucket!r}")
    stream = get("LSCLOUD_STREAM", d.stream)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", stream):
        raise ConfigError(f"LSCLOUD_STREAM must be letters, digits, '_' or '-', got {stream!r}")
    algorithms = tuple(a.strip() for a in get("LSCLOUD_JWT_ALGORITHMS", ",".join(d.jwt_algorithms)).split(",") if a.strip())
    for alg in algorithms:
        if alg not in ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA"):
            raise ConfigError(f"LSCLOUD_JWT_ALGORITHMS: {alg!r} is not an asymmetric JWT algorithm")
    public_key = get("LSCLOUD_JWT_PUBLIC_KEY", "")
    key_file = get("LSCLOUD_JWT_PUBLIC_KEY_FILE", "")
    if key_file and not public_key:
        try:
            public_key = Path(key_file).read_text()
        except OSError as exc:
            raise ConfigError(f"LSCLOUD_JWT_PUBLIC_KEY_FILE cannot be read: {exc}") from None
    # in the cluster a key set comes over TLS only: one fetched in clear could be swapped on the way
    jwks_schemes = ("https",) if mode == "cluster" else ("http", "https")
    jwks = get("LSCLOUD_JWT_JWKS_URL", "")
    if jwks:
        jwks = _url("LSCLOUD_JWT_JWKS_URL", jwks, jwks_schemes)
    if mode == "cluster" and not (public_key or jwks):
        raise ConfigError("LSCLOUD_JWT_PUBLIC_KEY(_FILE) or LSCLOUD_JWT_JWKS_URL is required when LSCLOUD_ENV=cluster")
    pseudonym_key = get("LSCLOUD_PSEUDONYM_KEY", "")
    if mode == "cluster" and (not pseudonym_key or pseudonym_key == LOCAL_PSEUDONYM_KEY):
        raise ConfigError("LSCLOUD_PSEUDONYM_KEY is required when LSCLOUD_ENV=cluster (a random secret of at least "
                          f"{PSEUDONYM_KEY_MIN_CHARS} characters, the same for every function)")
    # the local store's credentials are public (they are the defaults in this file): in the cluster
    # they would be a store user anyone can name, and the secret key also signs download links
    # (lscloud.web.downloads), so anyone could forge one. Only a process given a store of its own is
    # held to it: the event bridge runs as the cluster with none (infra/components/bridge.py)
    if mode == "cluster" and (get("LSCLOUD_S3_ENDPOINT", d.s3_endpoint) != d.s3_endpoint
                              or get("LSCLOUD_BUCKET", d.bucket) != d.bucket):
        for var, local in (("LSCLOUD_S3_ACCESS_KEY", d.s3_access_key), ("LSCLOUD_S3_SECRET_KEY", d.s3_secret_key)):
            if get(var, local) == local:
                raise ConfigError(f"{var} is required when LSCLOUD_ENV=cluster (the function's own store user, "
                                  "from its credentials Secret; the local default is public)")
    if pseudonym_key and len(pseudonym_key) < PSEUDONYM_KEY_MIN_CHARS:
        raise ConfigError(f"LSCLOUD_PSEUDONYM_KEY must be at least {PSEUDONYM_KEY_MIN_CHARS} characters")
    max_lifetime = _int("LSCLOUD_JWT_MAX_LIFETIME_S", get("LSCLOUD_JWT_MAX_LIFETIME_S", str(d.jwt_max_lifetime_s)), 60)
    if max_lifetime > JWT_LIFETIME_CEILING_S:
        raise ConfigError(f"LSCLOUD_JWT_MAX_LIFETIME_S must be at most {JWT_LIFETIME_CEILING_S} (7 days), "
                          f"got {max_lifetime}")
    events_key = get("LSCLOUD_EVENTS_PUBLIC_KEY", "")
    events_key_file = get("LSCLOUD_EVENTS_PUBLIC_KEY_FILE", "")
    if events_key_file and not events_key:
        try:
            events_key = Path(events_key_file).read_text()
        except OSError as exc:
            raise ConfigError(f"LSCLOUD_EVENTS_PUBLIC_KEY_FILE cannot be read: {exc}") from None
        events_key = _public_keys("LSCLOUD_EVENTS_PUBLIC_KEY_FILE", events_key)
    elif events_key:
        events_key = _public_keys("LSCLOUD_EVENTS_PUBLIC_KEY", events_key)
    events_jwks = get("LSCLOUD_EVENTS_JWKS_URL", "")
    if events_jwks:
        events_jwks = _url("LSCLOUD_EVENTS_JWKS_URL", events_jwks, jwks_schemes)
    events_audience = get("LSCLOUD_EVENTS_AUDIENCE", "")
    if re.search(r"\s", events_audience):
        raise ConfigError(f"LSCLOUD_EVENTS_AUDIENCE must not contain spaces, got {events_audience!r}")
    # the cluster has no default sender: its subjects are the Triggers' identities, set by the deployment
    events_subjects = _subjects("LSCLOUD_EVENTS_SUBJECTS", get("LSCLOUD_EVENTS_SUBJECTS",
                                                                ",".join(d.events_subjects) if mode == "local" else ""))
    peers = _url_template("LSCLOUD_PEER_URL_TEMPLATE", get("LSCLOUD_PEER_URL_TEMPLATE", d.peer_url_template))
    public = _url_template("LSCLOUD_PUBLIC_URL_TEMPLATE", get("LSCLOUD_PUBLIC_URL_TEMPLATE", d.public_url_template))
    otlp = get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if otlp:
        otlp = _url("OTEL_EXPORTER_OTLP_ENDPOINT", otlp, ("http", "https"))
    otlp_metrics = get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "")
    if otlp_metrics:
        otlp_metrics = _url("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", otlp_metrics, ("http", "https"))
    nats_cert = _readable_file("LSCLOUD_NATS_CERT_FILE", get("LSCLOUD_NATS_CERT_FILE", ""))
    nats_key = _readable_file("LSCLOUD_NATS_KEY_FILE", get("LSCLOUD_NATS_KEY_FILE", ""))
    if bool(nats_cert) != bool(nats_key):
        raise ConfigError("LSCLOUD_NATS_CERT_FILE and LSCLOUD_NATS_KEY_FILE go together (a client certificate and its key)")

    return Settings(
        service=service,
        env=mode,
        s3_endpoint=_url("LSCLOUD_S3_ENDPOINT", get("LSCLOUD_S3_ENDPOINT", d.s3_endpoint), ("http", "https")),
        s3_access_key=get("LSCLOUD_S3_ACCESS_KEY", d.s3_access_key),
        s3_secret_key=get("LSCLOUD_S3_SECRET_KEY", d.s3_secret_key),
        s3_region=get("LSCLOUD_S3_REGION", d.s3_region),
        s3_ca_file=_readable_file("LSCLOUD_S3_CA_FILE", get("LSCLOUD_S3_CA_FILE", "")),
        s3_conditional_delete=_flag("LSCLOUD_S3_CONDITIONAL_DELETE",
                                    get("LSCLOUD_S3_CONDITIONAL_DELETE", "true" if mode == "local" else "false")),
        s3_object_lock=_choice("LSCLOUD_S3_OBJECT_LOCK", get("LSCLOUD_S3_OBJECT_LOCK", "").strip().lower(),
                               ("", "governance", "compliance")),
        s3_timeout_s=_int("LSCLOUD_S3_TIMEOUT_S", get("LSCLOUD_S3_TIMEOUT_S", str(d.s3_timeout_s)), 1, 60),
        s3_request_deadline_s=_int("LSCLOUD_S3_REQUEST_DEADLINE_S",
                                   get("LSCLOUD_S3_REQUEST_DEADLINE_S", str(d.s3_request_deadline_s)), 0, 55),
        bucket=bucket,
        nats_ca_file=_readable_file("LSCLOUD_NATS_CA_FILE", get("LSCLOUD_NATS_CA_FILE", "")),
        nats_cert_file=nats_cert,
        nats_key_file=nats_key,
        nats_request_publish_timeout_s=_int("LSCLOUD_NATS_REQUEST_PUBLISH_TIMEOUT_S",
                                            get("LSCLOUD_NATS_REQUEST_PUBLISH_TIMEOUT_S",
                                                str(d.nats_request_publish_timeout_s)), 1, 10),
        nats_url=",".join(_url("LSCLOUD_NATS_URL", u.strip(), ("nats", "tls")) for u in get("LSCLOUD_NATS_URL", d.nats_url).split(",")),
        stream=stream,
        mqtt_url=_url("LSCLOUD_MQTT_URL", mqtt, ("mqtt", "mqtts", "ssl", "tcp")) if (mqtt := get("LSCLOUD_MQTT_URL", "")) else "",
        jwt_issuer=get("LSCLOUD_JWT_ISSUER", d.jwt_issuer),
        jwt_audience=get("LSCLOUD_JWT_AUDIENCE", d.jwt_audience),
        jwt_public_key=public_key,
        jwt_jwks_url=jwks,
        jwt_algorithms=algorithms,
        jwt_max_lifetime_s=max_lifetime,
        jwks_stale_s=_int("LSCLOUD_JWKS_STALE_S", get("LSCLOUD_JWKS_STALE_S", str(d.jwks_stale_s)), 0, 86_400),
        jwt_signing_key_file=get("LSCLOUD_JWT_SIGNING_KEY_FILE", d.jwt_signing_key_file),
        events_issuer=get("LSCLOUD_EVENTS_ISSUER", d.events_issuer if mode == "local" else CLUSTER_EVENTS_ISSUER),
        events_audience=events_audience,
        events_public_key=events_key,
        events_jwks_url=events_jwks,
        events_jwks_ca_file=_readable_file("LSCLOUD_EVENTS_JWKS_CA_FILE", get("LSCLOUD_EVENTS_JWKS_CA_FILE", "")),
        events_subjects=events_subjects,
        trusted_proxies=_networks("LSCLOUD_TRUSTED_PROXIES", get("LSCLOUD_TRUSTED_PROXIES", "")),
        partner_keys=_partner_keys("LSCLOUD_PARTNER_KEYS", env["LSCLOUD_PARTNER_KEYS"]) if env.get("LSCLOUD_PARTNER_KEYS", "").strip() else {},
        pseudonym_key=pseudonym_key or d.pseudonym_key,
        signature_window_s=_int("LSCLOUD_SIGNATURE_WINDOW_S", get("LSCLOUD_SIGNATURE_WINDOW_S", str(d.signature_window_s)), 1),
        partner_rate=_int("LSCLOUD_PARTNER_RATE", get("LSCLOUD_PARTNER_RATE", str(d.partner_rate)), 1),
        max_body_bytes=_int("LSCLOUD_MAX_BODY_BYTES", get("LSCLOUD_MAX_BODY_BYTES", str(d.max_body_bytes)), 1024),
        blob_max_bytes=_int("LSCLOUD_BLOB_MAX_BYTES", get("LSCLOUD_BLOB_MAX_BYTES", str(d.blob_max_bytes)), 1),
        download_link_ttl_s=_int("LSCLOUD_DOWNLOAD_LINK_TTL_S",
                                 get("LSCLOUD_DOWNLOAD_LINK_TTL_S", str(d.download_link_ttl_s)), 1, 86_400),
        idempotency_ttl_s=_int("LSCLOUD_IDEMPOTENCY_TTL_S", get("LSCLOUD_IDEMPOTENCY_TTL_S", str(d.idempotency_ttl_s)), 1),
        peer_url_template=peers.rstrip("/"),
        public_url_template=public.rstrip("/"),
        peer_fresh_s=_int("LSCLOUD_PEER_FRESH_S", get("LSCLOUD_PEER_FRESH_S", str(d.peer_fresh_s)), 0),
        cors_origins=parse_origins("LSCLOUD_CORS_ORIGINS", get("LSCLOUD_CORS_ORIGINS", ""),
                                   https_only=mode == "cluster"),
        state_dir=get("LSCLOUD_STATE_DIR", d.state_dir),
        otlp_endpoint=otlp,
        otlp_metrics_endpoint=otlp_metrics,
        trace_file=get("LSCLOUD_TRACE_FILE", d.trace_file),
        trace_file_max_bytes=_int("LSCLOUD_TRACE_FILE_MAX_BYTES",
                                  get("LSCLOUD_TRACE_FILE_MAX_BYTES", str(d.trace_file_max_bytes)), 65_536),
        trace_file_keep=_int("LSCLOUD_TRACE_FILE_KEEP", get("LSCLOUD_TRACE_FILE_KEEP", str(d.trace_file_keep)), 1, 100),
        function_env=_function_env(env, service),
    )


def environ() -> dict[str, str]:
    """A copy of the process environment: the one place the project reads it (a child process's
    environment is built from this copy, a function's ``start(cfg)`` gets it)."""
    return dict(os.environ)


def replace_environ(env: Mapping[str, str]) -> None:
    """Make ``env`` the whole process environment: a process forked to become a function
    (:mod:`lscloud.local.forkserver`) takes the environment it would have been spawned with."""
    os.environ.clear()
    os.environ.update(env)


def env_prefix(service: str) -> str:
    """The prefix of a function's own variables: ``softatm`` -> ``SOFTATM_``, ``bank-sim`` -> ``BANK_SIM_``."""
    return re.sub(r"[^A-Z0-9]", "_", service.upper()) + "_"


def _function_env(env: Mapping[str, str], service: str) -> dict[str, str]:
    prefix = env_prefix(service)
    if prefix in _RUNTIME_PREFIXES:  # a process that is no function (the CLI, the supervisor)
        return {}
    return {k: v for k, v in env.items() if k.startswith(prefix) and v.strip()}


_RUNTIME_PREFIXES = ("LSCLOUD_", "OTEL_", "K_")


S = TypeVar("S")

_sections: LRU[tuple[int, type, str | None], tuple[Settings, Any]] = LRU(64)
"""Parsed sections by settings object (one per runtime, a test's ``replace()``s): the settings are
kept with their section, so the ``id`` in the key is never another object's."""


def section(settings: Settings, cls: type[S], *, service: str | None = None) -> S:
    """A function's own settings, typed: a frozen dataclass whose fields come from
    ``<SERVICE>_<FIELD>`` variables (``call_minutes`` of ``border`` is ``BORDER_CALL_MINUTES``).

    Each field's type (``int``, ``float``, ``bool``, ``str``) parses the value; its default is
    used when the variable is unset; ``field(metadata={"min": 1})`` bounds a number. A bad value
    raises :class:`ConfigError` naming the variable, so a function checks its section in
    ``create_app`` and a misconfigured Service stops at start. Only this module reads the
    environment: functions get their variables through ``settings.function_env``.

    The section of a given settings object is parsed once and remembered (settings are frozen), so
    domain code may ask for it on every request instead of carrying it around.
    """
    key = (id(settings), cls, service)
    kept = _sections.get(key)
    if kept is not None and kept[0] is settings:
        return kept[1]
    value = _parse_section(settings, cls, service)
    _sections.put(key, (settings, value))
    return value


def _parse_section(settings: Settings, cls: type[S], service: str | None) -> S:
    if not is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass")
    prefix = env_prefix(service or settings.service)
    env = settings.function_env if service is None or env_prefix(settings.service) == prefix else {}
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        var = prefix + f.name.upper()
        raw = env.get(var, "").strip()
        if not raw:
            continue
        kind = hints.get(f.name, str)
        if kind is bool:
            value: object = _flag(var, raw)
        elif kind in (int, float):
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{var} must be a {'whole ' if kind is int else ''}number, got {raw!r}") from None
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if lo is not None and value < lo:
                raise ConfigError(f"{var} must be at least {lo}, got {raw}")
            if hi is not None and value > hi:
                raise ConfigError(f"{var} must be at most {hi}, got {raw}")
        else:
            value = raw
        values[f.name] = value
    return cls(**values)
