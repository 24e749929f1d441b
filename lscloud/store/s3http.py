"""S3 requests on the wire: signed, retried where that is safe, one CLIENT span each.

:class:`ObjectStore` makes its few S3 calls through :class:`S3Http` (connections kept alive by
:mod:`lscloud.connections`, answers parsed by httptools, and :mod:`lscloud.store.sigv4`)
instead of boto3: a boto3 call cost a function 1.5–3 ms of CPU (request serialisation, the event
system, endpoint rules, response parsing, OpenTelemetry's botocore span), this costs about a
twentieth of that (measured against weed on the 2-core box, a recording span each: a GET
0.12 ms; 0.3 ms with urllib3 and ``http.client`` before, 2.5–2.8 ms with boto3), and a function
starts without importing botocore or parsing its S3 model.

Retries (at most three attempts, as botocore's standard mode, with its backoff): a refused or
timed-out connection, 429, 5xx and S3's throttling codes. A conditional write (``If-None-Match``,
``If-Match``) is retried too, but once an attempt may have landed (its answer was lost, or a 500,
502 or 504), a lost condition on a later attempt may be its own earlier write: that is reported as
:class:`Unreachable` (the store is then unavailable, and the caller's idempotency decides), never
as a conflict the write may not have had.

Inside a request (or an event delivery) the store's calls share one deadline
(:func:`start_deadline`, set by :mod:`lscloud.web.app` when the request starts): a caller behind
Knative's queue-proxy is cut off after ``timeoutSeconds`` (60 s) whatever the function does, so a
hung store must be answered as unavailable (a 503 with ``Retry-After``) before that, not after three
attempts of ``timeout_s`` each for every call the request makes. No attempt starts past the deadline
and each attempt's answer is awaited only until it; a read settling a conditional write's unknown
outcome (``read_back``) still gets one short attempt. Outside a request (the CLI, a migration, a
background thread) there is no deadline and every call has its three attempts.

A GET may also be sent ahead (:meth:`S3Http.start_get`, for :meth:`ObjectStore.ahead`) and its
answer read later: several reads leave one thread before any answer is waited for.

The span of a call follows the AWS SDK and S3 conventions (``S3.<Operation>``, ``rpc.*``,
``aws.s3.bucket``, ``aws.s3.key``) with the stable HTTP names for its answer
(``http.response.status_code``; ``error.type``, the status or the exception's class, when it
failed); a batch delete (``DeleteObjects``), which names no key, says instead the table its keys
share (``lscloud.store.table``) and how many they are (``lscloud.store.objects``: a count, never the
keys; the S3 conventions have no attribute for either). Each attempt is one HTTP request, recorded in ``http.client.request.duration`` (the HTTP
client convention's metric: the S3 conventions define none) with the method, ``server.address``,
``server.port``, the status or ``error.type``, and of the S3 ones the bounded ``rpc.method`` and
``aws.s3.bucket``: never the key, the path or the query. A GET sent ahead counts from its sending
to the reading of its answer; one whose answer nobody reads is not counted.
"""

from __future__ import annotations

import contextvars
import hashlib
import http.client
import random
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterable, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from . import sigv4
from ..connections import Connections, NotSent, default_ca_bundle, parse_url
from ..metrics import HTTP_CLIENT
from ..telemetry import STORE_TABLE

MAX_ATTEMPTS = 3
READ_BACK_S = 2.0
"""Inside a deadline, the one attempt a read settling a conditional write's unknown outcome gets,
even when the deadline has passed meanwhile: the answer "it was written" is worth that much more."""
_RETRY_STATUS = frozenset((429, 500, 502, 503, 504))
_AMBIGUOUS_STATUS = frozenset((500, 502, 504))       # the server may have acted before failing
_RETRY_CODES = frozenset(("RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "SlowDown",
                          "Throttling", "ThrottlingException", "RequestThrottled", "InternalError",
                          "ServiceUnavailable"))
_LOST_CONDITION = frozenset((404, 409, 412))
USER_AGENT = "lscloud"
_tracer = trace.get_tracer("lscloud.store")



class Unreachable(Exception):
    """No usable answer from the store after the retries (the cause says why). ``unsent``: no attempt
    went out at all (the request's deadline had passed), so nothing was written."""

    def __init__(self, message: str, *, unsent: bool = False):
        super().__init__(message)
        self.unsent = unsent


# a time.monotonic() by which the store calls of the current request must have ended (None: no bound)
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("lscloud_store_deadline", default=None)


def start_deadline(seconds: float | None) -> contextvars.Token:
    """Bound every store call made from now in this context (a request, an event delivery; threads
    started with a copy of it) to ``seconds`` from now in all, retries included; ``None`` or 0: no
    bound. Returns the token for :func:`end_deadline`. A request inside another (an app called
    in-process) has its own deadline, and the outer one's is back when it ends."""
    return _deadline.set(time.monotonic() + seconds if seconds else None)


def end_deadline(token: contextvars.Token) -> None:
    """End the bound :func:`start_deadline` returned ``token`` for."""
    try:
        _deadline.reset(token)
    except ValueError:
        # ended in another context than it started in (a response streamed after its request): the
        # bound must not outlive its request there either
        _deadline.set(None)


def deadline() -> float | None:
    """The current context's store deadline (a ``time.monotonic()``), or None."""
    return _deadline.get()


@dataclass(frozen=True)
class Reply:
    """One S3 answer; ``headers``' names are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def error_code(self) -> str:
        """S3's error code from the XML body, or the status when there is none (a HEAD's error)."""
        if self.body[:1] == b"<":
            try:
                code = ET.fromstring(self.body).findtext("Code")
            except ET.ParseError:
                code = None
            if code:
                return code
        return str(self.status)


def _retry_later(attempt: int) -> None:
    # botocore's standard mode: a random wait below 1 s, then below 2 s
    time.sleep(random.random() * (2 ** (attempt - 1)))


def _error_name(exc: BaseException) -> str:
    """``error.type`` of a request that got no answer: the class of what stopped it (a refused
    connection, not the NotSent or Unreachable that wraps it)."""
    while isinstance(exc, (NotSent, Unreachable)) and exc.__cause__ is not None:
        exc = exc.__cause__
    return type(exc).__name__


def _outcome(status: int | None, error: str | None = None) -> dict:
    """The HTTP conventions' attributes of one attempt's outcome: its status (and ``error.type``, the
    status, when it is an error), or, with no answer, ``error.type`` naming what stopped it. The
    same on the attempt's span and its ``http.client.request.duration`` sample."""
    if status is None:
        return {"error.type": error or "_OTHER"}
    return {"http.response.status_code": status, "error.type": str(status)} if status >= 400 \
        else {"http.response.status_code": status}


def _answered(span, reply: Reply) -> None:
    if span.is_recording():
        request_id = reply.headers.get("x-amz-request-id")
        # one call: each set_attribute takes the span's lock and cleans its value on its own
        attributes = _outcome(reply.status)
        if request_id:
            attributes["aws.request_id"] = request_id
        span.set_attributes(attributes)
        if reply.status >= 400:
            span.set_status(StatusCode.ERROR, f"{reply.status} {reply.error_code()}")
    span.end()


def _measured(labels: dict | None, started: float, span, status: int | None, error: str | None = None) -> None:
    """One HTTP attempt in ``http.client.request.duration``: ``labels`` (None when untraced) and its
    status, or ``error``; recorded in the call's span's context, so an exemplar leads to it."""
    if labels is None:
        return
    point = {**labels, **_outcome(status, error)}
    context = trace.set_span_in_context(span) if span.is_recording() else None
    HTTP_CLIENT("duration").record(time.perf_counter() - started, point, context=context)


def _retried(reply: Reply) -> bool:
    return reply.status in _RETRY_STATUS or (reply.status >= 400 and reply.error_code() in _RETRY_CODES)


class Started:
    """A GET sent by :meth:`S3Http.start_get`, its answer not read yet."""

    __slots__ = ("_http", "_bucket", "_key", "_span", "_pending", "_labels", "_started", "_error")

    def __init__(self, http: "S3Http", bucket: str, key: str, span, pending, labels, started, error):
        self._http, self._bucket, self._key, self._span, self._pending = http, bucket, key, span, pending
        self._labels, self._started, self._error = labels, started, error

    def reply(self) -> Reply:
        """The answer, as :meth:`S3Http.request` gives it (and raises); asked for once."""
        pending, self._pending = self._pending, None
        span, self._span = self._span, trace.INVALID_SPAN
        reply, error = None, self._error   # start_get's, when it could not send it (counted then)
        if pending is not None:
            try:
                reply = Reply(*pending.read(deadline=_deadline.get()))
            except (http.client.HTTPException, OSError) as exc:
                error = _error_name(exc)
            _measured(self._labels, self._started, span, reply.status if reply is not None else None, error)
            if reply is not None and not _retried(reply):
                _answered(span, reply)
                return reply
        # no answer, or one to retry: this attempt's span ends, and the store's retries take over
        # after the pause they make between attempts (so a GET sent ahead has one attempt more)
        if span.is_recording():
            # a retried answer is an error of this attempt, whatever its status
            span.set_attributes({**_outcome(reply.status), "error.type": str(reply.status)}
                                if reply is not None else _outcome(None, error))
        span.set_status(StatusCode.ERROR, "retried")
        span.end()
        self._http._sleep(1)
        return self._http.request("GetObject", "GET", self._bucket, self._key)

    def discard(self) -> None:
        """Nobody needs the answer: the connection is closed, the span ends."""
        pending, self._pending = self._pending, None
        span, self._span = self._span, trace.INVALID_SPAN
        if pending is not None:
            pending.close()
        span.end()


class S3Http:
    """Signed S3 requests to one endpoint (path-style), from a thread-safe pool of ``max_pool``
    kept-alive connections."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str, *, max_pool: int = 32,
                 timeout_s: float = 10.0, ca_file: str = "", sleep=_retry_later):
        where = parse_url(endpoint)
        self.scheme, self.hostname, self.port, self.host = where.scheme, where.hostname, where.port, where.host
        self.base_path = where.target.partition("?")[0].rstrip("/")
        self.region = region
        self.signer = sigv4.Signer(access_key, secret_key, region)
        self._sleep = sleep
        # over TLS the cluster's own CA signs the store's certificate; without one, the bundle botocore used
        self.connections = Connections(self.scheme, self.hostname, self.port, max_idle=max_pool, timeout_s=timeout_s,
                                       ca_file=(ca_file or default_ca_bundle()) if self.scheme == "https" else None)
        self._span_attributes = {"rpc.system": "aws-api", "rpc.service": "S3", "cloud.region": region,
                                 "server.address": self.hostname, "server.port": self.port}

    def path(self, bucket: str, key: str = "") -> str:
        return self.base_path + sigv4.uri_path(bucket, key)

    def request(self, operation: str, method: str, bucket: str, key: str = "", *,
                params: Iterable[tuple[str, str]] = (), headers: Mapping[str, str] | None = None,
                body: bytes = b"", conditional: bool = False, span_attributes: Mapping | None = None,
                read_back: bool = False) -> Reply:
        """Send one S3 request (``operation`` is the API name, ``PutObject``; ``headers`` lower-case)
        and return its answer, whatever its status, once no retry is due. Raises :class:`Unreachable`
        when no answer came, or when a retried conditional write lost a condition its own earlier
        attempt may have taken (see the module's docstring), or when the current request's deadline
        (:func:`start_deadline`) leaves no time for an attempt. ``span_attributes``: what the span of a
        call that names no key says of the objects it touches (a batch delete's table and count).
        ``read_back``: a read settling a write's unknown outcome; inside a deadline it has one attempt
        of at least :data:`READ_BACK_S`, past the deadline too."""
        path, query = self.path(bucket, key), sigv4.query_string(params)
        target = f"{path}?{query}" if query else path
        payload_hash = hashlib.sha256(body).hexdigest() if body else sigv4.EMPTY_SHA256
        span = self._span(operation, bucket, key, None if key else dict(params).get("prefix"), span_attributes)
        labels = self._labels(operation, method, bucket)
        until, attempts = _deadline.get(), MAX_ATTEMPTS
        if until is not None and read_back:
            until, attempts = max(until, time.monotonic() + READ_BACK_S), 1
        try:
            reply = self._send(method, path, query, target, headers, body, payload_hash, conditional, span, labels,
                               until, attempts)
        except Unreachable as exc:
            if span.is_recording():
                span.set_attribute("error.type", _error_name(exc))
            span.set_status(StatusCode.ERROR, str(exc))
            span.end()
            raise
        _answered(span, reply)
        return reply

    def start_get(self, bucket: str, key: str) -> "Started":
        """Send ``GET bucket/key`` now and read its answer later (:meth:`Started.reply`): several
        reads go out from one thread before any answer is waited for, instead of one thread each.
        A first attempt that fails, or answers what :meth:`request` would retry, is made again
        through :meth:`request` when the answer is asked for (a GET is always safe to repeat)."""
        path = self.path(bucket, key)
        span = self._span("GetObject", bucket, key)
        labels = self._labels("GetObject", "GET", bucket)
        signed = self.signer.sign("GET", self.host, path, "", {}, sigv4.EMPTY_SHA256)
        signed["user-agent"] = USER_AGENT
        started, error = time.perf_counter(), None
        try:
            pending = self.connections.send("GET", path, signed, None, _deadline.get())
        except (NotSent, http.client.HTTPException, OSError) as exc:
            pending, error = None, _error_name(exc)
            _measured(labels, started, span, None, error)
        return Started(self, bucket, key, span, pending, labels, started, error)

    def _labels(self, operation: str, method: str, bucket: str) -> dict | None:
        """The attributes of this call's ``http.client.request.duration`` samples (None when untraced)."""
        if otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY):
            return None   # telemetry.untraced(): the readiness probe's ping is no request anyone measures
        return {"http.request.method": method, "server.address": self.hostname, "server.port": self.port,
                "rpc.method": operation, "aws.s3.bucket": bucket}

    def _span(self, operation: str, bucket: str, key: str, prefix: str | None = None,
              extra: Mapping | None = None):
        if otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY):
            return trace.INVALID_SPAN  # telemetry.untraced(): e.g. the readiness probe's ping
        attributes = dict(self._span_attributes, **{"rpc.method": operation, "aws.s3.bucket": bucket})
        if extra:
            attributes.update(extra)
        if key:
            attributes["aws.s3.key"] = key
        elif prefix and "/" in prefix:
            # a listing names no key, and the S3 conventions have no attribute for its prefix: its
            # table (the prefix's first part, lscloud.store.keys) is ours; the rest (a partition
            # key, perhaps a pseudonym) stays out of the span
            attributes[STORE_TABLE] = prefix.partition("/")[0]
        return _tracer.start_span(f"S3.{operation}", kind=SpanKind.CLIENT, attributes=attributes)

    def _send(self, method, path, query, target, headers, body, payload_hash, conditional, span, labels,
              until: float | None = None, attempts: int = MAX_ATTEMPTS) -> Reply:
        """The attempts of one call; ``until``: the ``time.monotonic()`` past which none starts and
        none is waited for (the request's deadline), None for none."""
        may_have_landed = False
        reply: Reply | None = None
        error: BaseException | None = None
        for attempt in range(1, attempts + 1):
            if until is not None and time.monotonic() >= until:
                if reply is not None:
                    return reply   # no time for another attempt: the last answer stands, as the last attempt's would
                if error is None:
                    raise Unreachable("no time left before the request's deadline", unsent=True)
                raise Unreachable(f"{error.__class__.__name__} (then the request's deadline passed)") from error
            if attempt > 1:
                span.set_attribute("retry_attempts", attempt - 1)
            signed = self.signer.sign(method, self.host, path, query, dict(headers or {}), payload_hash)
            signed["user-agent"] = USER_AGENT
            started = time.perf_counter()
            try:
                # past the deadline the answer is not waited for (the socket's timeout bounds each wait only)
                status, reply_headers, data = self.connections.request(method, target, signed, body or None,
                                                                       deadline=until)
            except NotSent as exc:
                error, reply = exc, None          # never sent: always safe to send again
                _measured(labels, started, span, None, _error_name(exc))
            except (http.client.HTTPException, OSError) as exc:
                error, reply, may_have_landed = exc, None, True
                _measured(labels, started, span, None, _error_name(exc))
            else:
                _measured(labels, started, span, status)
                reply = Reply(status, reply_headers, data)
                if conditional and may_have_landed and reply.status in _LOST_CONDITION:
                    raise Unreachable(f"{method} outcome unknown: an earlier attempt may have landed")
                if not _retried(reply) or attempt == attempts:
                    return reply
                may_have_landed = may_have_landed or reply.status in _AMBIGUOUS_STATUS
                self._sleep(attempt)
                continue
            if attempt == attempts:
                raise Unreachable(error.__class__.__name__) from error
            self._sleep(attempt)
        raise AssertionError("unreachable")   # pragma: no cover - the loop returns or raises
