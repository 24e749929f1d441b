"""Who is calling: bearer tokens (JWT) for people and devices, signed requests for partner banks.

Every view declares its callers with exactly one :func:`allow`; the app refuses to serve if a
route has none (:func:`lscloud.web.check_access`). Inside a view, :func:`principal` answers
who called.

Partner requests are signed with HMAC-SHA256 over a canonical string (see :func:`canonical`);
each partner has up to two active keys so a bank can rotate without downtime. Timestamps
outside the window and reused nonces are refused; nonces are remembered in a JetStream key-value
bucket with a create-only write, so replicas share them (:mod:`lscloud.nonces`).

Where the keys come from: ``settings.partner_keys`` by default. A function that keeps its own
partner registry (the soft ATM registers banks in its store) passes a resolver to
:func:`lscloud.web.create_app` (``partner_keys=fn``): ``fn(partner) -> sequence | None`` gives
the partner's key slots in key-id order (``"1"``, ``"2"``); ``None`` or an empty slot is an
unknown key. The scheme (canonical string, window, nonces) is the same either way.

A refusal does not tell a caller without a key which partners or key slots exist: an unknown
partner, an empty slot and a wrong signature are one answer (``bad-signature``) after the same
work; the real reason is logged and on the span. A partner's verified requests are limited
(``LSCLOUD_PARTNER_RATE`` a minute, per replica) before their nonces are written, so one partner
cannot fill the nonce bucket every partner shares.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import unquote, urlsplit

# PyJWT and cryptography (a fifth of a function's import time) are imported by the functions that
# verify or sign: a function whose requests carry no token never loads them.
from . import roles as _roles
from .lru import LRU
from .context import app_state
from .problems import Problem

# --- principals and declarations ----------------------------------------------------------------

PUBLIC = _roles.PUBLIC
EVENTING = _roles.EVENTING  # Knative Eventing's deliveries to /events: internal, never routed from outside
PARTNER_ROLE = _roles.PARTNER

KNOWN_ROLES = frozenset(_roles.REGISTRY)
"""Every platform role (:mod:`lscloud.roles` is the registry)."""


@dataclass(frozen=True)
class Principal:
    """The caller of the current request. ``partner`` is set for signed partner requests."""

    sub: str | None
    role: str | None
    agency: str | None = None
    unit: str | None = None
    partner: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.sub is None and self.partner is None

    @property
    def id(self) -> str:
        """A stable identity string (used to scope idempotency keys)."""
        if self.partner:
            return f"partner:{self.partner}"
        if self.sub:
            return f"sub:{self.sub}"
        return "anonymous"


ANONYMOUS = Principal(sub=None, role=None)


@dataclass(frozen=True)
class Access:
    """What a view declared with :func:`allow` (read by the OpenAPI builder and tests)."""

    roles: tuple[str, ...]
    partner: bool = False

    @property
    def public(self) -> bool:
        return PUBLIC in self.roles

    @property
    def eventing(self) -> bool:
        return EVENTING in self.roles

    def as_dict(self) -> dict:
        return {"roles": list(self.roles), "partner": self.partner}


def allow(*roles: str, partner: bool = False) -> Callable:
    """Declare and enforce who may call a view.

    ``@allow("public")`` anyone; ``@allow("citizen", "officer")`` a bearer token with one of those
    roles; ``@allow(partner=True)`` a request signed by a partner bank (roles and ``partner`` can
    be combined: either credential is accepted). ``@allow("eventing")`` is the internal
    ``/events`` route: only an event delivery token is accepted (:func:`verify_event_sender`). Put it
    right under ``@app.route`` so it runs before validation and idempotency. The declaration is kept
    on the view as ``__lscloud_access__``. A role that is not in the platform's registry
    (:mod:`lscloud.roles`) is refused with TypeError.
    """
    if not roles and not partner:
        raise TypeError("allow() needs at least one role or partner=True")
    if (PUBLIC in roles or EVENTING in roles) and (len(roles) > 1 or partner):
        raise TypeError("'public' and 'eventing' cannot be combined with other roles")
    for r in roles:
        if not isinstance(r, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", r):
            raise TypeError(f"bad role name {r!r}")
        if r not in (PUBLIC, EVENTING) and not _roles.known(r):
            raise TypeError(f"@allow names {r!r}, which is not a platform role; register it in lscloud/roles.py "
                            f"(roles: {', '.join(_roles.names())})")
        if r == PARTNER_ROLE:
            raise TypeError(f"partner banks sign their requests: use @allow(partner=True), not {r!r}")
    access = Access(tuple(roles), partner)

    def decorate(view):
        if getattr(view, "__lscloud_access__", None) is not None:
            raise TypeError(f"{view.__name__} already has an @allow declaration; use exactly one")

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            from flask import g

            g.lscloud_principal = authenticate(access)
            return view(*args, **kwargs)

        wrapper.__lscloud_access__ = access
        return wrapper

    return decorate


def access_of(view) -> Access | None:
    return getattr(view, "__lscloud_access__", None)


def principal() -> Principal:
    """The current request's caller (``ANONYMOUS`` on public routes without a token)."""
    from flask import g

    return getattr(g, "lscloud_principal", ANONYMOUS)


def authenticate(access: Access) -> Principal:
    """Check the current request against ``access``; raise a 401/403 :class:`Problem` if refused."""
    from flask import request

    settings = _settings()
    if access.eventing:
        return verify_event_sender(settings)
    if access.partner and request.headers.get(SIGNATURE_HEADER) is not None:
        return verify_partner_request(settings)
    has_bearer = request.headers.get("Authorization", "").strip() != ""
    if access.public:
        if not has_bearer:
            return ANONYMOUS
        try:  # a bad token on a public route is ignored: the route does not need it
            return verify_bearer(settings)
        except Problem:
            return ANONYMOUS
    if not access.roles:  # partner only, and no signature header
        raise Problem(401, "missing-header", "Missing signature header",
                      f"This endpoint needs a signed partner request ({SIGNATURE_HEADER} and friends).",
                      title_vi="Thiếu tiêu đề chữ ký",
                      detail_vi="Chức năng này yêu cầu yêu cầu có chữ ký của đối tác.",
                      errors=[{"field": SIGNATURE_HEADER, "message": "header is required"}])
    who = verify_bearer(settings)
    if who.role not in access.roles:
        raise Problem(403, "forbidden", "Forbidden",
                      f"Role {who.role!r} may not use this endpoint (allowed: {', '.join(access.roles)}).",
                      title_vi="Không có quyền truy cập",
                      detail_vi=f"Vai trò {who.role!r} không được phép dùng chức năng này.")
    return who


def _settings():
    return app_state().settings


# --- bearer tokens ------------------------------------------------------------------------------

_WWW = 'Bearer realm="lscloud"'
_EC_ALGS = {"ES256", "ES384", "ES512"}
_RSA_ALGS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}


def _unauthenticated(kind: str, title: str, detail: str, title_vi: str, detail_vi: str) -> Problem:
    return Problem(401, kind, title, detail, title_vi=title_vi, detail_vi=detail_vi,
                   headers={"WWW-Authenticate": f'{_WWW}, error="invalid_token"' if kind != "token-missing" else _WWW})


JWKS_FRESH_S = 300.0
"""How long a fetched JWKS is used before it is fetched again: a key taken out of the set (rotated
out, or compromised) stops verifying tokens within this long."""

JWKS_RETRY_S = 30.0
"""After a failed refetch, how long the last good set is used before the next try; and how often a
token naming a key the set lacks (rotation, or a made-up ``kid``) may fetch it again: one fetch per
request would hand the identity provider every caller's flood, and each would wait on it."""

JWKS_RETRY_EMPTY_S = 5.0
"""The same, with no usable set at all (every token is refused meanwhile): retried sooner."""

JWKS_TIMEOUT_S = 5.0
"""The one fetch's bound; a request waiting for the fetch in flight waits at most a second more."""


class _JwksUnavailable(Exception):
    """No key set good enough to decide: never fetched, fetch failed, past its grace period."""


class _RemoteKeys:
    """An identity provider's JWKS: one fetch at a time, the last good set kept through an outage.

    The set is refetched once it is :data:`JWKS_FRESH_S` old. A refetch that fails (the provider
    down or hanging) leaves the last good set in use for ``stale_s`` more seconds, retried every
    :data:`JWKS_RETRY_S`. The request that fetches waits for it; one that comes meanwhile takes the
    set in hand if it holds its key, else waits for the fetch in flight (bounded). PyJWT's client
    did the fetch under its lock: each waiting request then fetched again, one behind another."""

    def __init__(self, url: str, context, stale_s: float):
        import jwt

        self.url, self.stale_s = url, float(stale_s)
        # only its fetch is used: the set, its freshness and the cooldowns are kept here
        self._client = jwt.PyJWKClient(url, cache_keys=False, cache_jwk_set=False, timeout=JWKS_TIMEOUT_S,
                                       ssl_context=context)
        self._lock = threading.Lock()   # held for reads and writes of the state below, never while fetching
        self._keys: dict[str, object] | None = None
        self._fetched = self._failed = float("-inf")   # time.monotonic() of the last success / failure
        self._flight: threading.Event | None = None
        self._outage = False

    def key(self, kid: str | None) -> object | None:
        """The public key named ``kid`` (None: the set does not hold it); _JwksUnavailable when no
        usable set can say."""
        for _ in range(2):   # a look, and a second one after a fetch (ours or the one in flight)
            now = time.monotonic()
            with self._lock:
                keys, age, failed_ago, flight = self._keys, now - self._fetched, now - self._failed, self._flight
                usable = keys is not None and age < JWKS_FRESH_S + self.stale_s
                found = keys.get(kid) if usable and kid else None
                if age < JWKS_FRESH_S and (found is not None or min(age, failed_ago) < JWKS_RETRY_S):
                    return found   # fresh; an unknown kid fetches at most every JWKS_RETRY_S
                if usable and failed_ago < JWKS_RETRY_S:
                    return found   # the provider failed lately: the last good set, not another wait
                if not usable and failed_ago < JWKS_RETRY_EMPTY_S:
                    raise _JwksUnavailable
                mine = flight is None
                if mine:
                    flight = self._flight = threading.Event()
            if not mine:
                if found is not None:
                    return found   # a fetch is under way: the set in hand holds this key
                if not flight.wait(JWKS_TIMEOUT_S + 1):
                    raise _JwksUnavailable
                continue
            self._fetch(flight)
        with self._lock:
            keys, usable = self._keys, time.monotonic() - self._fetched < JWKS_FRESH_S + self.stale_s
        if keys is None or not usable:
            raise _JwksUnavailable
        return keys.get(kid) if kid else None

    def _fetch(self, flight: threading.Event) -> None:
        import http.client

        import jwt

        try:
            data = self._client.fetch_data()
            found = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(data).keys
                     if k.public_key_use in ("sig", None) and k.key_id}
        # PyJWT before 2.13 let a reset or a cut-short answer through unwrapped
        except (jwt.PyJWTError, OSError, http.client.HTTPException, ValueError, TypeError, AttributeError) as exc:
            with self._lock:
                self._failed, self._flight = time.monotonic(), None
                warn, self._outage = not self._outage, True
                held = self._keys is not None and time.monotonic() - self._fetched < JWKS_FRESH_S + self.stale_s
            if warn:   # once per outage; the URL and the error only, never a token
                _log.warning("JWKS %s could not be fetched (%s: %s); %s", self.url, type(exc).__name__,
                             str(exc)[:200], f"using the last good key set for up to {self.stale_s:g} s"
                             if held else "no key set to use: tokens it signs are answered 503")
            _stale_counter().add(1, {"lscloud.jwks.usable": held})
        else:
            with self._lock:
                self._keys, self._fetched, self._failed, self._flight = found, time.monotonic(), float("-inf"), None
                recovered, self._outage = self._outage, False
            if recovered:
                _log.warning("JWKS %s fetched again; the outage is over", self.url)
        finally:
            flight.set()


@functools.lru_cache(maxsize=1)
def _stale_counter():
    from . import telemetry

    return telemetry.meter().create_counter(
        "lscloud.jwks.fetch_failures", unit="{fetch}",
        description="JWKS refetches that failed; the last good key set stays in use for its grace period")


class _KeyRing:
    """Public keys from settings (PEM blocks, several allowed for rotation) or a JWKS URL."""

    _cache: dict[tuple, "_KeyRing"] = {}
    _cache_lock = threading.Lock()

    def __init__(self, pem: str, jwks_url: str, ca_file: str = "", stale_s: float = 3600):
        from cryptography.hazmat.primitives import serialization

        self.keys = []
        for block in re.findall(r"-----BEGIN [A-Z ]*PUBLIC KEY-----.*?-----END [A-Z ]*PUBLIC KEY-----", pem or "", re.S):
            self.keys.append(serialization.load_pem_public_key(block.encode()))
        # a JWKS served under a private CA (the API server's) is verified against that CA only
        context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        # the set's keys are not cached apart from it (PyJWT's cache_keys is an lru_cache with no
        # expiry: a key taken out of the set went on verifying until the process ended)
        self.jwks = _RemoteKeys(jwks_url, context, stale_s) if jwks_url else None

    @classmethod
    def for_settings(cls, settings) -> "_KeyRing":
        return cls.of(settings.jwt_public_key, settings.jwt_jwks_url, stale_s=settings.jwks_stale_s)

    @classmethod
    def of(cls, pem: str, jwks_url: str, ca_file: str = "", stale_s: float = 3600) -> "_KeyRing":
        k = (pem, jwks_url, ca_file, stale_s)
        with cls._cache_lock:
            ring = cls._cache.get(k)
            if ring is None:
                ring = cls._cache[k] = cls(*k)
            return ring

    def candidates(self, token: str, algorithms: Iterable[str]) -> Iterable[tuple[object, list[str]] | None]:
        """(key, algorithms valid for that key type): a key is only ever tried with its own family,
        so an RSA key can never verify an HMAC or EC token (algorithm confusion). The PEM keys
        come first, then the JWKS's key for the token's ``kid`` (fetched only if no PEM key
        verified it); a JWKS that cannot be had yields None (answered 503 if nothing else decides)."""
        import jwt

        algs = set(algorithms)
        for key in self.keys:
            if (family := _family(key, algs)):
                yield key, family
        if self.jwks is None:
            return
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.jwks.key(kid if isinstance(kid, str) else None)
        except _JwksUnavailable:
            yield None
            return
        except jwt.PyJWTError:
            return
        if key is not None and (family := _family(key, algs)):
            yield key, family


def _family(key, algs: set[str]) -> list[str]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, ec.EllipticCurvePublicKey):
        return sorted(algs & _EC_ALGS)
    if isinstance(key, rsa.RSAPublicKey):
        return sorted(algs & _RSA_ALGS)
    return sorted(algs - _EC_ALGS - _RSA_ALGS - {"none"} - {a for a in algs if a.startswith("HS")})


def _jwks_unavailable() -> Problem:
    return Problem(503, "jwks-unavailable", "Token keys unavailable",
                   "The identity provider's keys could not be fetched; retry later.",
                   title_vi="Không lấy được khóa xác thực",
                   detail_vi="Không lấy được khóa của nhà cung cấp định danh; vui lòng thử lại sau.",
                   headers={"Retry-After": "5"})


def preload(settings) -> None:
    """Import the token verifier and read the platform's keys now rather than at the first token."""
    _KeyRing.for_settings(settings)


_LEEWAY_S = 30   # clock skew allowed on a bearer token's exp and iat

VERIFIED_FRESH_S = 60.0
"""How long a verified token is taken as verified (its expiry is still checked at each use)."""


class _Verified:
    """Tokens this replica verified lately: a client sends the same token with every request (and
    Knative's sender the same OIDC token with every delivery), and a signature check (PyJWT, ECDSA)
    is ~0.13 ms of CPU. Keyed by the token's SHA-256 and the settings it was checked against, so no
    token is kept and another issuer, audience or key set verifies it afresh; bounded, so a flood of
    distinct tokens costs memory for 4,096 at most. A refusal is never remembered."""

    def __init__(self, size: int = 4096):
        self._lru: LRU[tuple, tuple[Principal, int, float]] = LRU(size)

    def check(self, token: str, against: tuple, verify: Callable[[], tuple[Principal, int]],
              expired: Callable[[], Problem]) -> Principal:
        """The principal of ``token``: remembered if verified against ``against`` in the last
        :data:`VERIFIED_FRESH_S` seconds and not expired, else ``verify()`` (``(principal, exp)``)."""
        remembered = (hashlib.sha256(token.encode()).digest(), *against)
        hit = self._lru.get(remembered)
        now = time.time()
        if hit is not None:
            who, exp, fresh_until = hit
            if now < fresh_until:
                if exp <= now - _LEEWAY_S:   # as PyJWT decides it
                    raise expired()
                return who
            self._lru.pop(remembered)
        who, exp = verify()
        self._lru.put(remembered, (who, exp, now + VERIFIED_FRESH_S))
        return who

    def __iter__(self):
        """The keys held (hashes and settings, never a token): for tests."""
        return iter(self._lru)


_VERIFIED = _Verified()


def verify_token(token: str, settings) -> Principal:
    """Verify a bearer JWT against ``settings``; raise a 401 :class:`Problem` saying what is wrong.

    Issuer and audience are checked, ``exp`` and ``iat`` are required (as RFC 9068 requires of
    JWT access tokens), 30 s leeway for clock skew. A token may live at most
    ``settings.jwt_max_lifetime_s`` (default 12 h): one issued for longer (``exp - iat``) or
    valid further ahead than that (``exp - now``) is refused, so a leaked token dies soon. The
    token itself never appears in the problem or in logs.

    A token this replica verified in the last :data:`VERIFIED_FRESH_S` seconds against the same
    settings is not checked again, except for its expiry, which is checked at every use.
    """
    against = ("bearer", settings.jwt_public_key, settings.jwt_jwks_url, settings.jwt_issuer, settings.jwt_audience,
               tuple(settings.jwt_algorithms), settings.jwt_max_lifetime_s)
    return _VERIFIED.check(token, against, lambda: _verify_token(token, settings), _expired)


def _expired() -> Problem:
    return _unauthenticated("token-expired", "Token expired", "The bearer token has expired.",
                            "Mã xác thực đã hết hạn", "Mã xác thực đã hết hạn; vui lòng đăng nhập lại.")


def _verify_token(token: str, settings) -> tuple[Principal, int]:
    """:func:`verify_token`'s full check; the caller and the token's ``exp``."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _unauthenticated("token-invalid", "Invalid token", "The bearer token is not a well-formed JWT.",
                               "Mã xác thực không hợp lệ", "Mã xác thực không đúng định dạng JWT.") from None
    alg = header.get("alg")
    if alg not in settings.jwt_algorithms:
        raise _unauthenticated("token-invalid", "Invalid token", f"Token algorithm {alg!r} is not accepted.",
                               "Mã xác thực không hợp lệ", "Thuật toán ký của mã xác thực không được chấp nhận.")
    last: Exception | None = None
    seen = unavailable = False
    for candidate in _KeyRing.for_settings(settings).candidates(token, settings.jwt_algorithms):
        if candidate is None:
            unavailable = True
            continue
        seen = True
        key, algorithms = candidate
        if alg not in algorithms:
            continue
        try:
            claims = jwt.decode(token, key, algorithms=algorithms, issuer=settings.jwt_issuer,
                                audience=settings.jwt_audience, leeway=_LEEWAY_S,
                                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise _expired() from None
        except jwt.InvalidIssuerError:
            raise _unauthenticated("token-invalid", "Invalid token", "The token's issuer is not accepted.",
                                   "Mã xác thực không hợp lệ", "Nơi cấp mã xác thực không được chấp nhận.") from None
        except jwt.InvalidAudienceError:
            raise _unauthenticated("token-invalid", "Invalid token", "The token is not meant for this service (audience).",
                                   "Mã xác thực không hợp lệ", "Mã xác thực không dành cho dịch vụ này.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthenticated("token-invalid", "Invalid token", f"The token lacks the {exc.claim!r} claim.",
                                   "Mã xác thực không hợp lệ", "Mã xác thực thiếu thông tin bắt buộc.") from None
        except jwt.ImmatureSignatureError:   # nbf or iat ahead of this clock by more than the leeway
            raise _unauthenticated("token-invalid", "Invalid token", "The token is not valid yet (check the clock).",
                                   "Mã xác thực không hợp lệ",
                                   "Mã xác thực chưa có hiệu lực (kiểm tra đồng hồ của máy).") from None
        except jwt.PyJWTError as exc:  # bad signature with this key: try the next one
            last = exc
            continue
        _check_lifetime(claims, settings.jwt_max_lifetime_s)
        role = claims.get("role")
        if not isinstance(role, str) or not role:
            raise _unauthenticated("token-invalid", "Invalid token", "The token carries no role.",
                                   "Mã xác thực không hợp lệ", "Mã xác thực không có vai trò.")
        return (Principal(sub=str(claims["sub"]), role=role, agency=claims.get("agency"), unit=claims.get("unit")),
                int(claims["exp"]))
    if unavailable:   # no key at hand decided, and the one that might is the provider's
        raise _jwks_unavailable()
    if not seen:
        raise _unauthenticated("token-invalid", "Invalid token", "No verification key is configured for this token.",
                               "Mã xác thực không hợp lệ", "Chưa cấu hình khóa để kiểm tra mã xác thực này.")
    detail = "The token's signature does not verify." if last is not None else f"Token algorithm {alg!r} does not match the configured keys."
    raise _unauthenticated("token-invalid", "Invalid token", detail,
                           "Mã xác thực không hợp lệ", "Chữ ký của mã xác thực không hợp lệ.")


def _check_lifetime(claims: dict, max_lifetime_s: int, leeway_s: int = _LEEWAY_S) -> None:
    """Refuse a token issued for longer than ``max_lifetime_s``, or valid further ahead than that."""
    exp, iat = int(claims["exp"]), int(claims["iat"])  # PyJWT checked that both read as integers
    if exp - iat > max_lifetime_s + leeway_s or exp - time.time() > max_lifetime_s + leeway_s:
        hours = f"{max_lifetime_s / 3600:g}"
        raise _unauthenticated("token-lifetime", "Token lifetime too long",
                               f"Bearer tokens may live at most {max_lifetime_s} s ({hours} h); ask for a shorter one.",
                               "Thời hạn mã xác thực quá dài",
                               f"Mã xác thực chỉ được có hiệu lực tối đa {hours} giờ; vui lòng xin mã mới.")


def verify_bearer(settings) -> Principal:
    """Verify the current request's ``Authorization: Bearer`` header."""
    from flask import request

    raw = request.headers.get("Authorization", "")
    scheme, _, token = raw.strip().partition(" ")
    if not raw:
        raise _unauthenticated("token-missing", "Authentication required", "A bearer token is required.",
                               "Cần xác thực", "Cần gửi kèm mã xác thực (Bearer).")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("token-invalid", "Invalid token", "The Authorization header must be 'Bearer <token>'.",
                               "Mã xác thực không hợp lệ", "Tiêu đề Authorization phải có dạng 'Bearer <mã>'.")
    return verify_token(token.strip(), settings)


# --- dev keys and tokens (local cloud, tests) ---------------------------------------------------


def dev_key_file(state_dir: str | os.PathLike) -> Path:
    """Where the local cloud's dev private key lives (see :func:`dev_keys`)."""
    return Path(state_dir) / "keys" / "dev-es256.pem"


def dev_keys(state_dir: str | os.PathLike) -> tuple[str, str]:
    """The local cloud's ES256 signing pair: created once under ``<state_dir>/keys/`` (0600), then loaded.

    Safe when several processes start at once: the private key is written to a temporary
    file and linked into place, so exactly one pair wins.
    """
    return _key_pair(dev_key_file(state_dir))


def _key_pair(private_path: Path) -> tuple[str, str]:
    """(private PEM, public PEM) of the ES256 pair at ``private_path``, created once (see :func:`dev_keys`);
    the public half is also written next to it as ``<stem>.pub.pem``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    keys = private_path.parent
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not private_path.exists():
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        tmp = keys / f".{private_path.stem}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        try:
            os.link(tmp, private_path)
        except FileExistsError:
            pass  # another process won; use its key
        finally:
            tmp.unlink()
    private_pem = private_path.read_text()
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    public_path = keys / f"{private_path.stem}.pub.pem"
    if not public_path.exists() or public_path.read_text() != public_pem:
        public_path.write_text(public_pem)
    return private_pem, public_pem


def issue_token(private_pem: str, sub: str, role: str, agency: str | None = None, unit: str | None = None,
                ttl_s: int = 3600, issuer: str = "lscloud-local", audience: str = "lscloud",
                kid: str | None = None) -> str:
    """Sign a bearer token (ES256 for EC keys, RS256 for RSA keys)."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_private_key(private_pem.encode() if isinstance(private_pem, str) else private_pem,
                                             password=None)
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    now = int(time.time())
    claims = {"sub": sub, "role": role, "iss": issuer, "aud": audience, "iat": now, "nbf": now,
              "exp": now + int(ttl_s), "jti": uuid.uuid4().hex}
    if agency is not None:
        claims["agency"] = agency
    if unit is not None:
        claims["unit"] = unit
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)


# --- event deliveries (/events) ----------------------------------------------------------------
#
# Knative Eventing's sender identity (feature ``authentication-oidc``): the broker's filter presents
# ``Authorization: Bearer <token>``, a Kubernetes service-account token of the Trigger's own OIDC
# identity (``sub`` = ``system:serviceaccount:<namespace>:<trigger>-oidc-eventing.knative.dev-trigger``,
# issuer = the API server's service-account issuer, ``aud`` = the subscriber's audience), and the
# subscriber verifies it. The local dispatcher does the same with a key pair of its own (not the
# dev-token key): audience = the subscribing function, subject = ``lscloud-local:dispatcher``.

DELIVERY_TOKEN_TTL_S = 300
_EVENT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
_EVENTS_WWW = 'Bearer realm="lscloud-events"'


def eventing_key_file(state_dir: str | os.PathLike) -> Path:
    """Where the local dispatcher's private key lives (see :func:`eventing_keys`)."""
    return Path(state_dir) / "keys" / "eventing-es256.pem"


def eventing_keys(state_dir: str | os.PathLike) -> tuple[str, str]:
    """The local dispatcher's ES256 pair (private PEM, public PEM), created once under ``<state_dir>/keys/``.

    Only the dispatcher signs with it; functions get the public half (``LSCLOUD_EVENTS_PUBLIC_KEY``).
    """
    return _key_pair(eventing_key_file(state_dir))


def events_audience(settings) -> str:
    """The audience a delivery to this function must carry: ``settings.events_audience``, else the
    function's own name (``K_SERVICE``)."""
    return settings.events_audience or settings.service


def issue_delivery_token(private_pem: str, audience: str, *, subject: str | None = None,
                         issuer: str | None = None, ttl_s: int = DELIVERY_TOKEN_TTL_S) -> str:
    """A short-lived delivery token for ``audience`` (the subscriber), signed with the dispatcher's key."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from .config import LOCAL_EVENTS_ISSUER, LOCAL_EVENTS_SUBJECT

    key = serialization.load_pem_private_key(private_pem.encode() if isinstance(private_pem, str) else private_pem,
                                             password=None)
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    now = int(time.time())
    claims = {"iss": issuer or LOCAL_EVENTS_ISSUER, "sub": subject or LOCAL_EVENTS_SUBJECT, "aud": audience,
              "iat": now, "nbf": now, "exp": now + int(ttl_s), "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm=alg)


def delivery_headers(settings, audience: str | None = None, **token_options) -> dict[str, str]:
    """``{"Authorization": "Bearer <delivery token>"}`` as the local dispatcher would send it to the
    function of ``settings`` (or to ``audience``), signed with the eventing key under ``settings.state_dir``.

    The one way tests (and local tools) deliver an event by hand."""
    private_pem, _ = eventing_keys(settings.state_dir)
    token = issue_delivery_token(private_pem, audience or events_audience(settings), **token_options)
    return {"Authorization": f"Bearer {token}"}


def check_eventing_settings(settings) -> None:
    """Raise ConfigError naming the variable when /events could not verify anything (a public key
    that does not load; in cluster mode no audience, keys or allowed subjects). Called at start by
    functions that take events."""
    from .config import ConfigError, check_public_keys

    if settings.events_public_key:  # config.load checked its PEM form; that it loads is checked here
        check_public_keys("LSCLOUD_EVENTS_PUBLIC_KEY(_FILE)", settings.events_public_key)
    if settings.env != "cluster":
        return
    if not settings.events_audience:
        raise ConfigError("LSCLOUD_EVENTS_AUDIENCE is required when LSCLOUD_ENV=cluster and the function takes "
                          "events (the audience its Triggers' tokens carry)")
    if not (settings.events_public_key or settings.events_jwks_url):
        raise ConfigError("LSCLOUD_EVENTS_JWKS_URL or LSCLOUD_EVENTS_PUBLIC_KEY(_FILE) is required when "
                          "LSCLOUD_ENV=cluster and the function takes events")
    if not settings.events_subjects:
        raise ConfigError("LSCLOUD_EVENTS_SUBJECTS is required when LSCLOUD_ENV=cluster and the function takes "
                          "events (the service accounts allowed to deliver)")


def _events_ring(settings) -> _KeyRing:
    pem, jwks_url = settings.events_public_key, settings.events_jwks_url
    if not (pem or jwks_url) and settings.env == "local":
        pem = eventing_keys(settings.state_dir)[1]  # the local cloud's own dispatcher key
    return _KeyRing.of(pem, jwks_url, settings.events_jwks_ca_file, settings.jwks_stale_s)


def subject_allowed(subject: str, allowed: Iterable[str]) -> bool:
    """Exact match, or a prefix match for an entry ending in ``*`` (as Knative's EventPolicy ``sub``)."""
    return any(subject == a or (a.endswith("*") and subject.startswith(a[:-1])) for a in allowed)


def _refused_delivery(kind: str, detail: str, detail_vi: str, status: int = 401) -> Problem:
    return Problem(status, kind, "Event sender not authenticated" if status == 401 else "Event sender not allowed",
                   detail, title_vi="Không xác thực được nơi gửi sự kiện" if status == 401
                   else "Nơi gửi sự kiện không được phép", detail_vi=detail_vi,
                   errors=[{"field": "Authorization", "message": detail}],
                   headers={"WWW-Authenticate": _EVENTS_WWW if kind == "token-missing"
                            else f'{_EVENTS_WWW}, error="invalid_token"'})


def verify_delivery_token(token: str, settings) -> Principal:
    """Verify an event delivery token against ``settings.events_*``; raise 401 (403: a subject not
    allowed) :class:`Problem` saying what is wrong. Issuer, audience, ``exp`` and ``sub`` are
    required, 30 s leeway for clock skew; the token itself never appears in the problem.

    Knative's sender presents one OIDC token for as long as it lives, and the local dispatcher one
    per subscriber until it nears expiry: a token verified in the last :data:`VERIFIED_FRESH_S`
    seconds against the same settings is not checked again, except for its expiry."""
    against = ("delivery", settings.env, settings.state_dir if settings.env == "local" else None,
               settings.events_public_key, settings.events_jwks_url, settings.events_jwks_ca_file,
               settings.events_issuer, events_audience(settings), tuple(settings.events_subjects))
    return _VERIFIED.check(token, against, lambda: _verify_delivery_token(token, settings),
                           lambda: _refused_delivery("token-expired", "The delivery token has expired.",
                                                     "Mã xác thực của nơi gửi sự kiện đã hết hạn."))


def _verify_delivery_token(token: str, settings) -> tuple[Principal, int]:
    """:func:`verify_delivery_token`'s full check: the sender and the token's ``exp``."""
    import jwt

    def bad(detail: str, detail_vi: str = "Mã xác thực của nơi gửi sự kiện không hợp lệ.") -> Problem:
        return _refused_delivery("token-invalid", detail, detail_vi)

    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        raise bad("The delivery token is not a well-formed JWT.") from None
    if alg not in _EVENT_ALGORITHMS:
        raise bad(f"Token algorithm {alg!r} is not accepted.")
    audience = events_audience(settings)
    last: Exception | None = None
    unavailable = False
    for candidate in _events_ring(settings).candidates(token, _EVENT_ALGORITHMS):
        if candidate is None:
            unavailable = True
            continue
        key, algorithms = candidate
        if alg not in algorithms:
            continue
        try:
            claims = jwt.decode(token, key, algorithms=algorithms, issuer=settings.events_issuer, audience=audience,
                                leeway=_LEEWAY_S, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise _refused_delivery("token-expired", "The delivery token has expired.",
                                    "Mã xác thực của nơi gửi sự kiện đã hết hạn.") from None
        except jwt.InvalidIssuerError:
            raise bad("The delivery token's issuer is not accepted.") from None
        except jwt.InvalidAudienceError:
            raise bad("The delivery token is not meant for this function (audience).",
                      "Mã xác thực không dành cho chức năng này.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise bad(f"The delivery token lacks the {exc.claim!r} claim.") from None
        except jwt.ImmatureSignatureError:
            raise bad("The delivery token is not valid yet (nbf/iat in the future).") from None
        except jwt.PyJWTError as exc:  # bad signature with this key: try the next one
            last = exc
            continue
        subject = str(claims["sub"])
        if not subject_allowed(subject, settings.events_subjects):
            raise _refused_delivery("sender-not-allowed", f"Subject {subject!r} may not deliver events here.",
                                    "Nơi gửi này không được phép gửi sự kiện tới chức năng.", status=403)
        return Principal(sub=subject, role=EVENTING), int(claims["exp"])
    if unavailable:
        raise _jwks_unavailable()
    raise bad("The delivery token's signature does not verify." if last is not None
              else "No key is configured that could verify this delivery token.")


def verify_event_sender(settings) -> Principal:
    """Authenticate the current request as an event delivery (``@allow("eventing")``, ``POST /events``)."""
    from flask import request

    raw = request.headers.get("Authorization", "").strip()
    scheme, _, token = raw.partition(" ")
    if not raw:
        raise _refused_delivery("token-missing", "Events are accepted only from the event dispatcher (Knative "
                                "Eventing in the cluster), with its bearer token.",
                                "Chỉ nhận sự kiện từ bộ điều phối sự kiện, kèm mã xác thực của nó.")
    if scheme.lower() != "bearer" or not token.strip():
        raise _refused_delivery("token-invalid", "The Authorization header must be 'Bearer <token>'.",
                                "Tiêu đề Authorization phải có dạng 'Bearer <mã>'.")
    return verify_delivery_token(token.strip(), settings)


# --- partner request signing --------------------------------------------------------------------

PARTNER_HEADER = "X-LSCloud-Partner"
KEY_ID_HEADER = "X-LSCloud-Key-Id"
TIMESTAMP_HEADER = "X-LSCloud-Timestamp"
NONCE_HEADER = "X-LSCloud-Nonce"
SIGNATURE_HEADER = "X-LSCloud-Signature"
_SIGNED_HEADERS = (PARTNER_HEADER, KEY_ID_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_STAMP_RE = re.compile(r"[0-9]{1,12}")
_PARTNER_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def _canonical_path(path: str) -> str:
    """Percent-decoded path plus the raw query string, so client and server agree however the
    path was encoded on the wire."""
    p, sep, q = path.partition("?")
    return unquote(p) + (sep + q if q else "")


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The string a partner signs: method, path (with query), timestamp, nonce, hex sha256 of the body."""
    return "\n".join([method.upper(), _canonical_path(path), str(timestamp), nonce,
                      hashlib.sha256(body or b"").hexdigest()])


def _mac(key: str | bytes, message: str) -> str:
    k = key.encode() if isinstance(key, str) else key
    digest = hmac.new(k, message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_request(method: str, path: str, body: bytes | str | None, partner: str, key_id: str | int, key: str | bytes,
                 *, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The headers that sign one partner request (``path`` includes the query string)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    nonce = nonce or secrets.token_urlsafe(18)
    return {
        PARTNER_HEADER: partner,
        KEY_ID_HEADER: str(key_id),
        TIMESTAMP_HEADER: ts,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: _mac(key, canonical(method, path, ts, nonce, body or b"")),
    }


def _signature_problem(kind: str, title: str, detail: str, title_vi: str, detail_vi: str,
                       field: str | None = None) -> Problem:
    errors = [{"field": field, "message": detail}] if field else []
    return Problem(401, kind, title, detail, title_vi=title_vi, detail_vi=detail_vi, errors=errors,
                   headers={"WWW-Authenticate": 'LSCloud-HMAC-SHA256 realm="lscloud-partners"'})


_log = logging.getLogger("lscloud.auth")
_NO_KEY = secrets.token_urlsafe(32)
"""What a request naming no usable key is checked against: the same HMAC as a real key's, so that
neither the answer nor the work (no store read, no early return) tells an unknown partner or an
empty slot from a wrong signature."""


def _refuse_signature(reason: str, partner: str, key_id: str) -> Problem:
    """The one answer to a signature that does not verify, whatever the reason (the reason is
    logged and on the span: the partner's operators ask with the trace id)."""
    from . import telemetry

    # caller-chosen headers: bounded, never a secret
    partner, key_id = partner[:64], key_id[:8]
    _log.info(f"partner signature refused ({reason}): partner {partner!r}, key id {key_id!r}")
    # a child of the request's span; a partner's bad signature is the caller's 4xx, not our failure, so
    # its status stays unset as the request span's does (OTel's HTTP server conventions)
    telemetry.tracer().start_span("partner signature", attributes={
        "lscloud.partner.refused": reason, "lscloud.partner": partner, "lscloud.partner.key_id": key_id,
        "error.type": "bad-signature"}).end()
    return _signature_problem("bad-signature", "Bad signature", "The request signature does not verify.",
                              "Chữ ký không hợp lệ", "Chữ ký của yêu cầu không hợp lệ.", SIGNATURE_HEADER)


def signed_path(request) -> str:
    """The request's path as its client sent it (still percent-encoded) and its raw query: what a
    partner signs, percent-decoded once by :func:`canonical`. The server has decoded
    ``request.path`` once already; decoding that again let a path differing by a ``%25``
    (``%2532`` sent, ``2`` signed) verify. From the ASGI ``raw_path`` (the runtime's bridge keeps
    the scope), else ``RAW_URI``/``REQUEST_URI`` (Werkzeug's servers and test client)."""
    env = request.environ
    scope = env.get("asgi.scope") or {}
    raw = scope.get("raw_path")
    if isinstance(raw, (bytes, bytearray)):
        path = bytes(raw).decode("utf-8", "replace")
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root):]
    else:
        uri = env.get("RAW_URI") or env.get("REQUEST_URI")
        if uri:
            # PEP 3333: the latin-1 str of the bytes sent; an absolute-form target keeps only its path
            path = uri.encode("latin-1", "replace").decode("utf-8", "replace").partition("?")[0]
            if not path.startswith("/"):
                path = urlsplit(path).path or "/"
            script = env.get("SCRIPT_NAME") or ""
            if script and path.startswith(script):
                path = path[len(script):]
        else:   # no server said: the decoded path, its '%' escaped so the one decoding leaves it whole
            path = request.path.replace("%", "%25")
    query = request.query_string.decode("latin-1")
    return path + ("?" + query if query else "")


def verify_partner_request(settings) -> Principal:
    """Verify the current request's partner signature; count it against the partner's rate limit;
    remember its nonce; return the bank's principal."""
    from flask import request

    h = request.headers
    for name in _SIGNED_HEADERS:
        if not h.get(name):
            raise _signature_problem("missing-header", "Missing signature header", f"Header {name} is required.",
                                     "Thiếu tiêu đề chữ ký", f"Thiếu tiêu đề {name}.", name)
    partner, key_id, ts, nonce, signature = (h[n].strip() for n in _SIGNED_HEADERS)
    # epoch seconds, at most 12 digits: a 400-digit one overflowed the float comparison below (a 500,
    # before any secret was needed). Decided before any key is looked up: it tells nothing of them
    stamp = int(ts) if _STAMP_RE.fullmatch(ts) else None
    now = time.time()
    if stamp is None or abs(now - stamp) > settings.signature_window_s:
        raise _signature_problem("stale-timestamp", "Timestamp outside the window",
                                 f"The request timestamp must be within {settings.signature_window_s} s of the server clock.",
                                 "Thời điểm ký không hợp lệ",
                                 f"Thời điểm ký phải lệch không quá {settings.signature_window_s} giây so với máy chủ.",
                                 TIMESTAMP_HEADER)
    if not _NONCE_RE.fullmatch(nonce):
        raise _signature_problem("bad-signature", "Bad signature", "The nonce must be 16-128 characters of [A-Za-z0-9_-].",
                                 "Chữ ký không hợp lệ", "Nonce phải gồm 16-128 ký tự [A-Za-z0-9_-].", NONCE_HEADER)
    keys = partner_keys_for(partner, settings) if _PARTNER_RE.fullmatch(partner) else None
    index = int(key_id) - 1 if key_id in ("1", "2") else -1
    key = keys[index] if keys and 0 <= index < len(keys) else ""
    body = request.get_data(cache=True)
    # a missing key is checked as a real one would be (against _NO_KEY, which verifies nothing)
    expected = _mac(key or _NO_KEY, canonical(request.method, signed_path(request), ts, nonce, body))
    verified = hmac.compare_digest(expected.encode(), signature.encode())
    if not (verified and key):
        reason = ("unknown partner" if not keys else "unknown key id" if index < 0
                  else "empty key slot" if not key else "signature does not verify")
        raise _refuse_signature(reason, partner, key_id)
    # counted once the partner is known (a forged name spends nobody's limit) and before its nonce
    # is written: one partner's flood is refused here, not by the bucket every partner shares
    _partner_limit(settings).hit(partner)
    _remember_nonce(partner, nonce, stamp, settings)
    return Principal(sub=partner, role=PARTNER_ROLE, partner=partner)


_LIMIT_KEY = "lscloud.partner_limit"
_limit_lock = threading.Lock()


def _partner_limit(settings):
    """The app's limiter of verified partner requests, ``settings.partner_rate`` a minute each (kept
    with the app: its counts are this replica's)."""
    from flask import current_app

    from .ratelimit import MemoryLimiter

    rate = int(settings.partner_rate)
    limiter = current_app.extensions.get(_LIMIT_KEY)
    if limiter is None or limiter.limit != rate:
        with _limit_lock:
            limiter = current_app.extensions.get(_LIMIT_KEY)
            if limiter is None or limiter.limit != rate:
                limiter = current_app.extensions[_LIMIT_KEY] = MemoryLimiter(limit=rate, window_s=60)
    return limiter


def partner_keys_for(partner: str, settings) -> tuple[str, ...] | None:
    """The key slots of ``partner``: from the app's resolver when it has one, else from settings."""
    resolver = app_state().partner_keys
    if resolver is None:
        return settings.partner_keys.get(partner)
    found = resolver(partner)
    return tuple(found) if found else None


def _remember_nonce(partner: str, nonce: str, stamp: int, settings) -> None:
    from . import nonces
    from .runtime import current

    # NATS not answering is lscloud.bus.BusUnavailable: the app's 503, and the partner retries
    if not nonces.remember(current().bus, settings, app_state().name, partner, nonce, stamp):
        raise _signature_problem("replayed-nonce", "Replayed request", "This nonce was already used.",
                                 "Yêu cầu bị gửi lại", "Nonce này đã được sử dụng.", NONCE_HEADER)
