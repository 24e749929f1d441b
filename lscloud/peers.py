"""Calling another function over HTTP: where it is, and a revalidating cache of its answers.

Functions never read each other's objects (each has its own bucket in the cluster); they ask
over HTTP. :func:`peer_url` builds the base URL from ``settings.peer_url_template``
(``LSCLOUD_PEER_URL_TEMPLATE``): locally the supervisor sets it to the gateway,
``http://127.0.0.1:<port>/{name}``; in the cluster it is the Knative Service's address,
``http://{name}.<namespace>.svc.cluster.local``.

:class:`PeerClient` GETs JSON with an ETag cache: a call asks the peer (``If-None-Match``) and a
``304`` reuses the stored body. An answer the peer lets be cached (``Cache-Control: max-age``, as
reference data is: the directory, the procedures) is served from memory for at most
``min(max-age, settings.peer_fresh_s)`` seconds before it is asked again, so what every request
reads costs no round trip while a change still reaches every replica within that bound (replicas
stay stateless: the cache is only a cache; the mechanism is :mod:`lscloud.freshness`, which a
function's own reference models use too). :func:`client` is the process's one client per
settings (a function asks it, not a new one per request). A peer that does not answer raises :class:`PeerUnavailable`; a 404 raises
:class:`PeerNotFound`, and so does a 400/422: a lookup by a code the peer refuses as malformed is
a lookup of something that does not exist (the caller answers "unknown …", not "unavailable").

A call made *on behalf of* the request's caller (``authorization=``: their own bearer token) lets
the peer judge the caller by its own rules instead of trusting this function with a broader
credential; those answers bypass the shared cache.

Paths are built with :func:`path`, which percent-encodes each segment: codes often come from a
caller's URL, and a ``?``, ``#`` or ``..`` in one must not change which resource is asked for.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import quote

from . import config, freshness, http_client


class PeerError(RuntimeError):
    """A peer call failed."""


class PeerUnavailable(PeerError):
    """The peer did not answer, or answered 5xx."""


class PeerNotFound(PeerError):
    """The peer answered 404 for that resource."""


class PeerForbidden(PeerError):
    """The peer refused the caller on whose behalf it was asked (401/403)."""


def path(base: str, *segments: str) -> str:
    """``base`` followed by each of ``segments`` percent-encoded (``/`` included), e.g.
    ``path("/v1/units", code)``."""
    parts = [quote(str(s), safe="") for s in segments]
    # "." and ".." are unreserved characters but dot-segments to a URL resolver: spell them out
    return "/".join([base.rstrip("/")] + [p.replace(".", "%2E") if p in (".", "..") else p for p in parts])


def peer_url(name: str, settings: config.Settings | None = None) -> str:
    """The base URL of the function ``name`` (no trailing slash)."""
    if settings is None:
        from . import runtime

        settings = runtime.current().settings
    if not name or not all(c.isalnum() or c == "-" for c in name):
        raise ValueError(f"bad function name {name!r}")
    return settings.peer_url_template.format(name=name).rstrip("/")


_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


def fresh_for(cache_control: str | None, cap_s: float) -> float:
    """How long an answer with this ``Cache-Control`` may be served without asking (at most ``cap_s``)."""
    if not cache_control or cap_s <= 0:
        return 0.0
    directives = cache_control.lower()
    if any(d in directives for d in ("no-cache", "no-store", "private")):
        return 0.0
    m = _MAX_AGE.search(directives)
    return min(float(m.group(1)), cap_s) if m else 0.0


class PeerClient:
    """GET JSON from peers through a small per-process ETag cache (see the module docstring)."""

    def __init__(self, settings: config.Settings, *, timeout_s: float = 3.0, max_entries: int = 256):
        self.settings = settings
        # each wait, and the whole answer in two of them: a peer dribbling bytes holds no request longer
        self._client = http_client.Client(timeout_s=timeout_s, deadline_s=2 * timeout_s, headers={
            "Accept": "application/json", "User-Agent": f"lscloud-{settings.service}"})
        # url -> (etag, body): the runtime's one mechanism for reference data in memory
        # a peer too slow to revalidate answers from what it said last, for a minute at most
        self._cache = freshness.Revalidating(max_entries, stale_if_error=(PeerUnavailable,), max_stale_s=60.0)
        self.fresh_cap_s = float(getattr(settings, "peer_fresh_s", 0))

    # what the cache did (for tests and metrics)
    revalidated = property(lambda self: self._cache.revalidated, doc="304 answers")
    fetched = property(lambda self: self._cache.fetched, doc="200 answers")
    served_fresh = property(lambda self: self._cache.served_fresh,
                            doc="answered from memory within the freshness bound, nobody asked")
    served_stale = property(lambda self: self._cache.served_stale,
                            doc="answered from memory past the bound because the peer did not answer")

    def get_json(self, name: str, path: str, *, authorization: str | None = None) -> Any:
        """The JSON at ``path`` (built with :func:`path`) of the function ``name``.

        ``authorization`` (the caller's own ``Authorization`` header) asks *on behalf of* the
        caller: the peer applies its own permission rules to the caller, not to this function.
        Such an answer is the caller's alone: it is neither cached nor answered from the cache.
        A peer that refuses the caller (401/403) raises :class:`PeerForbidden`.
        """
        url = peer_url(name, self.settings) + "/" + path.lstrip("/")
        if authorization:
            return self._ask(name, path, url, None, authorization)[1]
        return self._cache.get(url, lambda etag: self._ask(name, path, url, etag, None))

    def _ask(self, name: str, path: str, url: str, etag: str | None,
             authorization: str | None) -> tuple[str | None, Any, float]:
        """One GET (conditional on ``etag``): ``(etag, body or NOT_MODIFIED, how long it is fresh)``."""
        headers = {"If-None-Match": etag} if etag else {}
        if authorization:
            headers["Authorization"] = authorization
        try:   # a CLIENT span, and traceparent so the peer's spans join this request's trace
            resp = self._client.get(url, headers=headers, record_url=True)
        except ValueError:   # a path not built with path(): nothing can live there
            raise PeerNotFound(f"{name}: not a valid path") from None
        except http_client.NoAnswer as exc:
            raise PeerUnavailable(f"{name} did not answer: {exc.__cause__.__class__.__name__}") from None
        fresh = fresh_for(resp.header("Cache-Control"), self.fresh_cap_s)
        if resp.status_code == 304 and etag:
            return etag, freshness.NOT_MODIFIED, fresh
        if resp.status_code in (400, 404, 410, 422):
            raise PeerNotFound(f"{name}: {path} not found ({resp.status_code})")
        if resp.status_code in (401, 403):
            raise PeerForbidden(f"{name} refused the caller ({resp.status_code}) for {path}")
        if resp.status_code >= 500 or resp.status_code == 429:
            raise PeerUnavailable(f"{name} answered {resp.status_code}")
        if resp.status_code != 200:
            raise PeerError(f"{name} answered {resp.status_code} for {path}")
        try:
            body = resp.json()
        except ValueError:
            raise PeerError(f"{name} answered non-JSON for {path}") from None
        # the caller's own view is never shared with another caller; no ETag, nothing to revalidate
        return (None if authorization else resp.header("ETag")), body, fresh


_clients: dict[tuple[str, str], PeerClient] = {}
_clients_lock = threading.Lock()


def client(settings: config.Settings) -> PeerClient:
    """The process's :class:`PeerClient` for these settings (one per peer URL template, calling
    service and freshness bound), so its connections and ETag cache serve every request instead of
    one each. Settings with another bound get their own: a shared one would keep the first's."""
    key = (settings.peer_url_template, settings.service, settings.peer_fresh_s)
    with _clients_lock:
        c = _clients.get(key)
        if c is None:
            c = _clients[key] = PeerClient(settings)
        return c
