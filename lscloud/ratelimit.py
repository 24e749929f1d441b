"""A per-caller request rate limit shared by every replica: fixed windows counted in the store.

A function that is public and costly to abuse (a chat endpoint, a search anyone can call) declares
its own window model and a :class:`Limiter` over it::

    class RateWindow(Model):               # in the function's models.py
        class Meta:
            table = "assistant-rate"
            ttl_max_s = 120
        subject = A.UnicodeAttribute(hash_key=True)
        window = A.UnicodeAttribute(range_key=True)
        hits = A.NumberAttribute(default=0)
        expires_at = A.TTLAttribute()

    LIMITER = Limiter(RateWindow, limit=60, window_s=60)
    ...
    LIMITER.hit(caller_subject(principal(), request))   # in the view, before the work

Each hit adds one to the caller's counter of the current window with conditional writes
(create-only, then ``If-Match``), so concurrent replicas never lose a count. Beyond ``limit`` the
caller gets :class:`RateLimited`: 429 with ``Retry-After`` (the seconds left in the window).
Subjects are pseudonyms (:mod:`lscloud.pseudonyms`): no address or account id in an object key.

A limit on *failures* (wrong guesses at someone's data) refuses before the work and counts only
what failed: :meth:`Limiter.check` first, :meth:`Limiter.add` after a failure. Several limits on
one request (per caller *and* per target) are several limiters over one model, their subjects
scoped by a prefix (``"caller:" + who``, ``"target:" + number``); ``refuse`` lets each say its
own refusal.
The window model keeps a TTL (:class:`~lscloud.store.TTLAttribute`), so the function's runtime
sweeps old windows on the platform clock's tick (subscribe to it in ``func.yaml``).

:class:`MemoryLimiter` counts in the replica's memory instead (no store request per hit, each
replica its own count): the runtime's limit on each partner's verified signed calls
(``LSCLOUD_PARTNER_RATE``, :func:`lscloud.auth.verify_partner_request`).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

from . import errors
from .lru import LRU
from .pseudonyms import pseudonym
from .store import ConditionalCheckFailed
from .store.recent import RecentItems


class RateLimited(errors.TooManyRequests):
    """429 with ``Retry-After``: the caller has used up the current window."""

    type = "rate-limited"
    title, title_vi = "Too many requests", "Quá nhiều yêu cầu"

    def __init__(self, retry_after_s: int, limit: int, window_s: int):
        self.retry_after_s = retry_after_s
        super().__init__(f"At most {limit} requests per {window_s} s; retry after {retry_after_s} s.",
                         detail_vi=f"Tối đa {limit} yêu cầu mỗi {window_s} giây; vui lòng thử lại sau "
                                   f"{retry_after_s} giây.",
                         headers={"Retry-After": str(retry_after_s)})


def caller_subject(principal: Any, headers: Any, remote_addr: str | None) -> str:
    """Who is asking: the token's subject, else the client's address (:func:`client_address`)."""
    if principal is not None and not getattr(principal, "anonymous", True):
        return "sub:" + principal.id
    return "ip:" + client_address(headers, remote_addr)


def client_address(headers: Any, remote_addr: str | None) -> str:
    """The address of the client, from ``X-Forwarded-For``, as per-caller limits key it
    (:func:`caller_key`: an IPv6 client by its /64).

    Each proxy in front of the function appends the address it saw: the gateway locally; in the
    cluster Kourier (the client's), then the activator and queue-proxy (each the hop before it).
    Read from the right, an entry in ``trusted`` (``LSCLOUD_TRUSTED_PROXIES``, the cluster's pod
    network, the running function's settings) is a proxy, and the first that is not is
    the client; entries left of it are the client's to forge. With nothing trusted (locally), the
    last entry. Taking the last entry in the cluster made every anonymous caller one "address"
    (a proxy's), sharing one rate limit for the whole province."""
    forwarded = [p.strip() for p in (headers.get("X-Forwarded-For") or "").split(",") if p.strip()]
    if not forwarded:
        return caller_key(remote_addr) if remote_addr else "unknown"
    networks = _trusted_networks(_running_trusted())
    if networks:
        for entry in reversed(forwarded):
            address = _address(entry)
            if address is None:
                return entry   # not an address: nothing a trusted proxy wrote
            if not any(address in net for net in networks):
                return caller_key(entry)
        return caller_key(forwarded[0])
    return caller_key(forwarded[-1])


IPV6_PREFIX = 64
"""How much of an IPv6 address names one caller. A subscriber is given a whole /64 at least (a phone
on Viettel, VNPT or Mobifone its own /64, a home line a /64 or a /56: RFC 6177, RFC 7421), and its
devices pick, and change, their own addresses within it (privacy addresses, RFC 8981): keyed by the
exact address, one phone had 2^64 rate limits, a new one whenever it liked. A /64 is never split
between subscribers, so keying by it limits nobody for another's requests, as one IPv4 address
behind a home router already does."""


def caller_key(address: str) -> str:
    """``address`` as a per-caller limit counts it: an IPv4 address as it is (also when written as
    IPv4-mapped IPv6, ``::ffff:203.0.113.7``, as a dual-stack proxy reports it), an IPv6 one as its
    /:data:`IPV6_PREFIX` network (``2001:ee0:4f1:9a2::/64``); what is not an address, unchanged."""
    parsed = _address(address)
    if parsed is None:
        return address
    if parsed.version == 4:
        return str(parsed)
    return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))


def _address(entry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``entry`` as an address (its zone dropped, IPv4-mapped IPv6 as IPv4: a trusted IPv4 proxy
    network holds it then), or None."""
    try:
        address = ipaddress.ip_address(entry.split("%")[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _running_trusted() -> tuple[str, ...]:
    from . import runtime

    running = runtime.installed()   # none: a tool, or a test of this module
    return running.settings.trusted_proxies if running is not None else ()


@functools.lru_cache(maxsize=8)
def _trusted_networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


class _AtLimit(Exception):
    def __init__(self, count: int):
        self.count = count


class Limiter:
    """At most ``limit`` hits per caller per ``window_s`` seconds, counted in ``model``'s items.

    ``model`` has a hash key ``subject``, a range key ``window``, a number ``hits`` and a TTL
    ``expires_at`` (see the module's docstring). ``refuse(retry_after_s)`` builds the refusal
    (default :class:`RateLimited`): a function whose 429 says something of its own (a problem
    type, whose limit it was) passes its own. ``max_remembered``: how many callers' current
    counters this replica keeps to skip the read before a hit (about 200 bytes each).
    """

    def __init__(self, model: type, *, limit: int, window_s: int, clock: Callable[[], float] = time.time,
                 refuse: Callable[[int], Exception] | None = None, max_remembered: int = 10_000):
        if limit < 1 or window_s < 1:
            raise ValueError("a rate limit needs limit >= 1 and window_s >= 1")
        self.model, self.limit, self.window_s, self.clock = model, int(limit), int(window_s), clock
        self.refuse = refuse or (lambda retry_after_s: RateLimited(retry_after_s, self.limit, self.window_s))
        self._recent = RecentItems(model, max_items=max_remembered)

    def _window(self) -> tuple[str, int, int]:
        now = int(self.clock())
        start = now - now % self.window_s
        return f"{start:012d}", start, max(1, start + self.window_s - now)

    def _subject(self, caller: str) -> str:
        return pseudonym(self.model.Meta.table, caller)

    def _count(self, caller: str, *, cap: bool) -> int:
        """Add one to ``caller``'s counter of this window (conditional writes, retried); with ``cap``,
        a counter already at the limit is not written again. Raises ConditionalCheckFailed when the
        retries are used up.

        The counter this replica last wrote is remembered (:class:`~lscloud.store.recent.RecentItems`),
        so a caller's next hit here is one conditional PUT, not a GET and a PUT; a hit counted by
        another replica meanwhile fails the condition and is counted again on a fresh read. A copy
        already at the limit is enough to refuse: counts only grow within a window."""
        window, start, _ = self._window()
        subject = self._subject(caller)
        expires = datetime.fromtimestamp(start + 2 * self.window_s, tz=timezone.utc)

        def add_one(item) -> None:
            if cap and int(item.hits) >= self.limit:
                raise _AtLimit(int(item.hits) + 1)   # already refused: no need to write again
            item.hits = int(item.hits) + 1

        try:
            return int(self._recent.update(subject, window, add_one,
                                           create=lambda: self.model(subject, window, hits=0, expires_at=expires)).hits)
        except _AtLimit as at:
            return at.count

    def hit(self, caller: str) -> int:
        """Count one request of ``caller`` (from :func:`caller_subject`); the count so far in this
        window, or the refusal (:class:`RateLimited`) once it is beyond the limit."""
        remaining = self._window()[2]
        try:
            count = self._count(caller, cap=True)
        except ConditionalCheckFailed:
            count = self.limit + 1   # so contended a counter is itself a flood: refuse, never lose a count
        if count > self.limit:
            raise self.refuse(remaining)
        return count

    def peek(self, caller: str) -> int:
        """``caller``'s count in the current window, without counting."""
        try:
            return int(self.model.get(self._subject(caller), self._window()[0]).hits)
        except self.model.DoesNotExist:
            return 0

    def check(self, caller: str) -> None:
        """Refuse (429, ``Retry-After``) if ``caller`` has already used up this window; counts nothing."""
        if self.peek(caller) >= self.limit:
            raise self.refuse(self._window()[2])

    def add(self, caller: str) -> int:
        """Count one (a failure, after :meth:`check` let the request through); the new count. Never
        refuses for the count itself, only a counter so contended that the retries run out (itself
        an attack: refused for a whole window rather than losing the count)."""
        try:
            return self._count(caller, cap=False)
        except ConditionalCheckFailed:
            raise self.refuse(self.window_s) from None


class MemoryLimiter:
    """At most ``limit`` hits per caller per ``window_s`` seconds on this replica, counted in memory
    (a token bucket per caller: ``limit`` at once, then one more each ``window_s / limit``).

    For a limit on every call of a caller already known to be one of few (a partner whose signature
    verified): it writes nothing, where :class:`Limiter` writes the store on every hit. Each replica
    counts for itself, so N replicas let a caller through up to N × ``limit``; what it bounds is
    what one replica lets a caller make it do. ``max_callers``: buckets kept, least recently used
    dropped first (a dropped caller starts full again).
    """

    def __init__(self, *, limit: int, window_s: int, clock: Callable[[], float] = time.monotonic,
                 refuse: Callable[[int], Exception] | None = None, max_callers: int = 10_000):
        if limit < 1 or window_s < 1:
            raise ValueError("a rate limit needs limit >= 1 and window_s >= 1")
        self.limit, self.window_s, self.clock = int(limit), int(window_s), clock
        self.refuse = refuse or (lambda retry_after_s: RateLimited(retry_after_s, self.limit, self.window_s))
        self._buckets = LRU(max_callers)
        self._lock = threading.Lock()

    def hit(self, caller: str) -> float:
        """Count one request of ``caller``; what is left of its bucket, or the refusal
        (:class:`RateLimited`, ``Retry-After`` the seconds until one more is allowed)."""
        per_s = self.limit / self.window_s
        with self._lock:
            now = self.clock()
            held = self._buckets.get(caller)
            tokens, at = held if held is not None else (float(self.limit), now)
            tokens = min(float(self.limit), tokens + (now - at) * per_s)
            if tokens < 1.0:
                self._buckets.put(caller, (tokens, now))
                raise self.refuse(max(1, math.ceil((1.0 - tokens) / per_s)))
            self._buckets.put(caller, (tokens - 1.0, now))
            return tokens - 1.0
