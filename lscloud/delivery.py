"""The local trigger dispatcher: what Knative Eventing and its NATS JetStream channel do in the cluster.

Each subscription of a function (from its func.yaml) gets one durable pull consumer on the
events stream, filtered on the subjects of the CloudEvent types it wants. Every event is POSTed
to the function in HTTP binary mode (``ce-*`` headers + ``traceparent``):

* 2xx: done (ack);
* 5xx, 429, a timeout or a refused connection: retried later with backoff (nak with delay)
  until ``max_deliveries``, then dead-lettered;
* any other 4xx: no retry can fix it, dead-lettered at once.

Two answers are waits, not failures, and do not count toward ``max_deliveries``:

* ``503 event-in-progress`` (:mod:`lscloud.knative`): another run of the function holds the event.
  That run renews its hold while it goes on and stops renewing when it dies, so the answer's
  ``Retry-After`` (what is left of the hold, at most ``retry_after_max_s``) is when to ask again: the
  run has finished (the redelivery is a duplicate, acked), renewed (a slow run: wait again) or died (the
  redelivery takes the event over). A slow handler is thus never dead-lettered nor run twice, and a
  killed run's event is done within a lease. Capped by time: an event told "in progress" for longer
  than ``in_progress_max_s`` since the first such answer (a hold stuck on a hung run) has its
  answers counted again, and is dead-lettered after ``max_deliveries`` more;
* no answer at all (a refused or dropped connection: the function is down or restarting, as in a
  crash loop whose back-off reaches 30 s): retried with a back-off growing to
  ``unreachable_backoff_max_s`` for ``unreachable_s`` (15 minutes) since the first, then counted.

What is uncounted is kept in memory: after a dispatcher restart an event's earlier waits count.

Each POST carries the sender's identity, as Knative Eventing's does with ``authentication-oidc``:
``Authorization: Bearer <token>`` whose audience is the subscriber (``Subscription.audience``,
by default the function's name). Locally the token is signed with the dispatcher's own key
(:func:`lscloud.auth.eventing_keys`, not the dev-token key), and functions refuse ``/events``
without it; the cluster's bridge presents the token Knative mounts for it instead (``credentials=``).

Delivery starts the moment an event is published: each subscription keeps one lingering pull
request of one message open (a pull that returns as soon as a message exists — no batch to fill,
no poll interval; an idle one is renewed every 30 s, or at once after a reconnect:
:mod:`lscloud.pulls`), and hands every message to its own task, at most ``max_in_flight`` at once per
subscription (Knative's NATS channel delivers in parallel too). Events about the same record (the
same CloudEvents ``subject``) still reach the subscriber one after the other, in stream order;
events about different records never wait on each other.

A dead letter is the original event with the subscription, the last status or error, its
``reason`` (:func:`_reason`: the status and the problem's type and titles, nothing of the answer's
details) and the delivery count, published to the stream ``<stream>_DLQ`` (subjects
``lscloud-dlq.>``), after it was handed to the subscriber's own dead-letter sink (a function's
``/events/dead-letters``, where its operators list it); then the original is terminated. A sink that
does not take it (the function is still down) is tried again with the whole delivery up to twice
``max_deliveries``; past that the platform's record is published, marked ``"sink": "pending"``,
and the original is kept (not terminated): it comes back every ``unreachable_backoff_max_s`` at most
and is handed to the sink alone, until the sink takes it. Consumers are durable, so after a NATS or
dispatcher restart delivery resumes where it stopped (an original still owed to its sink is then
delivered again as a whole).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

from . import nats_import  # noqa: F401 - first: nats-py without aiohttp (see there)

import nats.js.errors
from nats.js import api as js_api
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import events, loops, metrics, pulls, redaction, telemetry
from .bus import Bus, BusError, BusUnavailable
from .timestamps import iso

log = logging.getLogger(__name__)

DLQ_SUBJECTS = ("lscloud-dlq.>",)
SERVICE = "dispatcher"  # service.name of its spans
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _record_of(msg) -> str | None:
    """The record an event is about (its CloudEvents ``subject`` with its type's domain), or None."""
    try:
        doc = json.loads(msg.data)
    except (ValueError, TypeError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("subject"), str):
        return None
    return f"{doc.get('source')}|{doc['subject']}"


def dlq_stream(settings) -> str:
    """The dead-letter stream that goes with ``settings.stream``."""
    return f"{settings.stream}_DLQ"


def _token(value: str) -> str:
    return _UNSAFE.sub("_", value) or "_"


_UNREACHABLE = "connection error"

UNREACHABLE_S = 900.0
"""How long deliveries to a function that gives no answer at all are retried before they count (a
restart, a bad rollout, its store down): here by the dispatcher, in the cluster by each Trigger's
retries (infra/components/function.py), whose dead-letter sink is the same unreachable function."""
"""How :meth:`Dispatcher._post` words a delivery that got no answer at all (refused or dropped)."""
IN_PROGRESS_TYPE = "event-in-progress"
"""The problem type of a function's answer while another run holds the event (:mod:`lscloud.knative`)."""


def _held_for(status: int, answer: bytes, retry_after: str | None) -> float | None:
    """How long to wait when the answer is a 503 ``event-in-progress`` problem: its ``Retry-After``
    (seconds; 1 when it has none that can be read); None for any other answer."""
    if status != 503 or len(answer) > _PROBLEM_BYTES:
        return None
    try:
        doc = json.loads(answer)
    except ValueError:
        return None
    kind = doc.get("type") if isinstance(doc, dict) else None
    if not isinstance(kind, str) or kind.rstrip("/").rsplit("/", 1)[-1] != IN_PROGRESS_TYPE:
        return None
    try:
        return max(0.0, float(retry_after or "1"))
    except ValueError:   # an HTTP-date: not what the runtime sends
        return 1.0


@dataclass
class _Waits:
    """What the dispatcher remembers of a message whose deliveries were waits (not failures)."""

    uncounted: int = 0
    held_since: float | None = None         # first "event in progress" (monotonic)
    unreachable_since: float | None = None  # first delivery without an answer
    unreachable: int = 0                    # deliveries without an answer, and sink attempts since


def _no_answer(error: str | None) -> str:
    """``error.type`` of a delivery that got no answer: ``timeout``, or the class its error names
    (``connection error: ConnectError: …``)."""
    if (error or "").startswith("no answer within"):
        return "timeout"
    named = (error or "").split(": ")[1:2]
    return named[0] if named and named[0].isidentifier() else "_OTHER"


_PROBLEM_BYTES = 64 * 1024   # a problem document is small: a longer answer is a page, never parsed
_SHOWN_CHARS = 80


def _shown(value: Any) -> str:
    """A member of the answer as a reason shows it: one line, bounded, identifiers redacted (a
    foreign subscriber's title is whatever it chose to write)."""
    return redaction.redact(" ".join(str(value).split())[:_SHOWN_CHARS])


def _problem_of(answer: bytes | str) -> str | None:
    """What a reason may say of a refusal: the problem's ``type`` (its last segment) and its titles,
    bounded; None when the answer is no problem document. Read from the whole answer: bilingual
    problems with their ``errors[]`` are longer than the part of the answer a dead letter keeps,
    and a cut document parses as nothing. Never ``detail`` nor ``errors``: those say what was wrong
    with this event and echo its values (a plate, a name)."""
    if len(answer) > _PROBLEM_BYTES:
        return None
    try:
        doc = json.loads(answer)
    except ValueError:   # (UnicodeDecodeError is one)
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str) or not doc["type"].strip():
        return None
    titles = [_shown(doc[k]) for k in ("title", "title_vi") if isinstance(doc.get(k), str) and doc[k].strip()]
    shown = _shown(doc["type"].rstrip("/").rsplit("/", 1)[-1])
    return shown + (f" ({' / '.join(titles)})" if titles else "")


def _reason(status: int | None, error: str | None, problem: str | None = None) -> str:
    """What a span's status, a log line and a dead letter's ``reason`` say of a delivery that failed:
    the status and the problem (:func:`_problem_of`: its type and titles), never the answer's body.
    A 422's schema messages echo the event's values (a plate, a name), and the body went into span
    statuses and log lines, past every redaction pattern. The dead letter's ``error`` keeps the
    start of the answer (beside the event it is about). Without ``problem`` it is read from
    ``error``, which holds only that start."""
    if status is None:
        return error or "no answer"   # a timeout or a refused connection: our own words
    if problem is None:
        problem = _problem_of((error or "").partition(": ")[2])
    return f"HTTP {status}" + (f" {problem}" if problem else "")


@dataclass(frozen=True)
class Subscription:
    """A function's wish to receive some event types at ``url`` (a func.yaml subscription)."""

    function: str
    name: str
    types: Sequence[str]
    url: str
    audience: str | None = None  # of the delivery token; None: the function's name

    def __post_init__(self):
        object.__setattr__(self, "types", tuple(self.types))
        if not self.types:
            raise ValueError(f"subscription {self.function}/{self.name} lists no event types")
        for t in self.types:
            events.check_type(t)
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"subscription {self.function}/{self.name}: url must be http(s)://..., got {self.url!r}")

    @property
    def durable(self) -> str:
        """The JetStream durable consumer name (``<function>-<name>``, NATS-safe)."""
        return _token(f"{self.function}-{self.name}")[:200]

    @property
    def subjects(self) -> list[str]:
        return sorted({events.subject_for(t) for t in self.types})

    @property
    def dlq_subject(self) -> str:
        return f"lscloud-dlq.{_token(self.function)}.{_token(self.name)}"

    @property
    def dead_letter_url(self) -> str | None:
        """The subscriber's dead-letter sink (:data:`lscloud.events.DEAD_LETTER_PATH` beside its ``/events``),
        or None for a subscriber that is not a function's ``/events``."""
        parsed = urlparse(self.url)
        path = parsed.path.rstrip("/")
        if not path.endswith(events.DELIVERY_PATH) or parsed.query:
            return None
        return parsed._replace(path=path[:-len(events.DELIVERY_PATH)] + events.DEAD_LETTER_PATH).geturl()

    @property
    def token_audience(self) -> str:
        """The audience of the token presented to the subscriber."""
        return self.audience or self.function

    def as_dict(self) -> dict[str, Any]:
        return {"function": self.function, "name": self.name, "types": list(self.types), "url": self.url}


Credentials = Callable[[Subscription], "str | None"]
"""``fn(subscription) -> bearer token | None``: what a delivery presents (None: no Authorization)."""


class LocalDeliveryTokens:
    """The local dispatcher's credentials, audience = the subscriber, signed with the eventing key
    under the state dir (created on first use). As Knative's sender does with its OIDC token, one
    token per subscriber is presented until it nears its expiry (less than :data:`RENEW_BEFORE_S`
    left), then a new one is issued: minting and verifying one per delivery was a millisecond of
    CPU per event on each side."""

    RENEW_BEFORE_S = 120

    def __init__(self, state_dir, clock: Callable[[], float] = time.time):
        from .auth import DELIVERY_TOKEN_TTL_S, eventing_keys

        self._private_pem, _ = eventing_keys(state_dir)
        self._ttl_s, self._clock = DELIVERY_TOKEN_TTL_S, clock
        self._tokens: dict[str, tuple[str, float]] = {}   # audience -> (token, when to renew it)
        self._lock = threading.Lock()

    def __call__(self, sub: Subscription) -> str:
        from .auth import issue_delivery_token

        now = self._clock()
        with self._lock:
            held = self._tokens.get(sub.token_audience)
            if held is not None and now < held[1]:
                return held[0]
            token = issue_delivery_token(self._private_pem, sub.token_audience, ttl_s=self._ttl_s)
            self._tokens[sub.token_audience] = (token, now + self._ttl_s - self.RENEW_BEFORE_S)
            return token


@dataclass
class DispatchStats:
    """Counters since start (for `lscloud up`'s status line and tests)."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    per_subscription: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, durable: str, what: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        bucket = self.per_subscription.setdefault(durable, {"delivered": 0, "retried": 0, "dead_lettered": 0, "skipped": 0})
        bucket[what] += 1


class Dispatcher:
    """Delivers stream events to subscribed functions from its own thread and event loop."""

    def __init__(self, settings, subscriptions: Sequence[Subscription], *, max_deliveries: int = 5,
                 backoff: Sequence[float] = (0.2, 0.5, 1, 2, 5), timeout_s: float = 10,
                 pull_wait_s: float = pulls.WAIT_S, manage_streams: bool = True,
                 service: str = SERVICE, credentials: Credentials | None = None, max_in_flight: int = 64,
                 floor_every_s: float = pulls.FLOOR_EVERY_S, unreachable_s: float = UNREACHABLE_S,
                 unreachable_backoff_max_s: float = 30.0, in_progress_max_s: float = 600.0,
                 retry_after_max_s: float = 60.0):
        """``manage_streams=False`` (the cluster's bridge): the platform owns the streams (replicas,
        limits), so only check that the stream and its dead-letter stream exist, never create or
        update them. ``service``: the ``service.name`` of its spans (the bridge's are ``bridge``).
        ``credentials``: the bearer token each delivery presents (default: locally
        :class:`LocalDeliveryTokens`, elsewhere none). ``max_in_flight``: deliveries under way at once
        per subscription. ``pull_wait_s``: how long a pull lingers, which only sets how often an idle
        subscription asks again (:mod:`lscloud.pulls`); ``floor_every_s``: how often, at most, a
        subscription receiving events asks its consumer's ack floor (:class:`lscloud.pulls.AckFloors`).
        ``unreachable_s``: how long deliveries without any answer are retried before they count
        (0: at once), each after a back-off doubling from ``backoff[0]`` to ``unreachable_backoff_max_s``;
        ``in_progress_max_s``: how long "event in progress" answers are waited on before they count;
        ``retry_after_max_s``: the longest such an answer's ``Retry-After`` is honoured (as Knative's
        ``retryAfterMax``). See the module's docstring."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if not backoff:
            raise ValueError("backoff needs at least one delay")
        durables = [s.durable for s in subscriptions]
        if len(set(durables)) != len(durables):
            raise ValueError(f"two subscriptions map to the same consumer name: {sorted(durables)}")
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self.max_deliveries = max_deliveries
        self.backoff = tuple(float(b) for b in backoff)
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self.pull_wait_s = pull_wait_s
        self.manage_streams = manage_streams
        self.service = service
        self.unreachable_s = float(unreachable_s)
        self.unreachable_backoff_max_s = float(unreachable_backoff_max_s)
        self.in_progress_max_s = float(in_progress_max_s)
        self.retry_after_max_s = float(retry_after_max_s)
        # (consumer, stream sequence) -> its waits; -> (status, error) of a dead letter its sink still owes
        self._waits: dict[tuple[str, int], _Waits] = {}
        self._owed: dict[tuple[str, int], tuple[int | None, str | None]] = {}
        if credentials is None and settings.env == "local":
            credentials = LocalDeliveryTokens(settings.state_dir)
        self.credentials = credentials
        self.stats = DispatchStats()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._pulls: pulls.Pulls | None = None
        self._floors = pulls.AckFloors(floor_every_s)   # where a consumer made again starts
        self._startup_error: BaseException | None = None
        self._bus: Bus | None = None
        self._http = None   # an aiohttp.ClientSession while running
        self._client_error: type[Exception] = Exception   # aiohttp.ClientError, once imported
        self._tracer = telemetry.tracer()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> "Dispatcher":
        """Create the streams and consumers, then deliver in the background. Raises if set-up fails."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="lscloud-dispatcher", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise BusUnavailable(f"dispatcher could not set up its consumers within {timeout:g}s")
        if self._startup_error is not None:
            error = self._startup_error
            self._thread.join(10)
            self._thread = None
            raise error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop fetching, let in-flight deliveries finish (bounded), close, join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and self._stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # the loop already ended
                pass
        thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def check(self, timeout: float = 2.0) -> None:
        """Raise BusUnavailable/BusError unless delivering: NATS connected, every consumer there."""
        loop, bus = self._loop, self._bus
        if not self.running or not self._ready.is_set() or loop is None or bus is None or loop.is_closed():
            raise BusUnavailable("the dispatcher is not running")
        future = asyncio.run_coroutine_threadsafe(self._check(timeout), loop)
        try:
            future.result(timeout + 1.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BusUnavailable(f"NATS did not answer within {timeout:g}s") from None

    async def _check(self, timeout: float) -> None:
        assert self._bus is not None
        if not self._bus.connected:
            raise BusUnavailable(f"NATS at {self.settings.nats_url} is not connected (reconnecting)")
        for sub in self.subscriptions:
            try:
                await asyncio.wait_for(self._bus.js.consumer_info(self.settings.stream, sub.durable), timeout)
            except nats.js.errors.NotFoundError:
                raise BusError(f"consumer {sub.durable} does not exist on stream {self.settings.stream}") from None
            except asyncio.TimeoutError:
                raise BusUnavailable(f"NATS did not answer within {timeout:g}s") from None

    def _run(self) -> None:
        loop = loops.loop_factory()()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced by start() when it happens during set-up
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                log.exception("dispatcher stopped on an error")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                asyncio.set_event_loop(None)

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._pulls = pulls.Pulls(self.pull_wait_s)
        self._bus = Bus(self.settings, name=f"{self.settings.service}-dispatcher", create_stream=False,
                        on_reconnected=self._pulls.reconnected)
        # its spans are the dispatcher's own service, also when it runs inside the supervisor
        self._tracer = telemetry.service_tracer(self.service)
        # aiohttp (its C parser), not httpx: httpx was half of the dispatcher's CPU per delivery.
        # Imported here, not at the top: functions import this module for its helpers.
        import aiohttp

        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=self.timeout_s), auto_decompress=False, trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar())   # one function's cookie never reaches the next
        self._client_error = aiohttp.ClientError
        tasks: list[asyncio.Task] = []
        try:
            if self.manage_streams:
                await self._bus.ensure_stream()
                await self._bus.ensure_stream(dlq_stream(self.settings), DLQ_SUBJECTS)
            else:
                await self._require_streams()
            await self._ensure_consumers()
            self._ready.set()
            tasks = [asyncio.create_task(self._consume(sub), name=f"consume {sub.durable}") for sub in self.subscriptions]
            await self._stopping.wait()
        finally:
            # consumers waiting on a pull stop now (nothing is in their hands: a message that comes
            # for the pull meanwhile is never acked, so it is delivered again later); the others
            # notice _stopping once their deliveries have a slot free: give them the delivery
            # timeout to finish, then cancel (unacked messages are redelivered later)
            self._pulls.stop()
            if tasks:
                done, pending = await asyncio.wait(tasks, timeout=self.timeout_s + 2)
                for t in pending:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            await self._http.close()
            await self._bus.close(drain=False)

    async def _require_streams(self) -> None:
        await self._bus.connect()
        for name in (self.settings.stream, dlq_stream(self.settings)):
            try:
                await self._bus.js.stream_info(name)
            except nats.js.errors.NotFoundError:
                raise BusError(f"stream {name} does not exist (the platform creates it)") from None

    async def _ensure_consumers(self) -> None:
        """Every subscription's consumer, set up together (one request each, independent: not one
        round trip after another, 47 under `lscloud up`). Each ends before this does, and a failure
        names every consumer that failed: none is left running on a bus being closed, no error lost.
        The stream is asked once first, for where consumers made again later start (:class:`lscloud.pulls.AckFloors`)."""
        if self.subscriptions:
            await self._floors.know(self._bus.js, self.settings.stream)
        results = await asyncio.gather(*(self._ensure_consumer(sub) for sub in self.subscriptions),
                                       return_exceptions=True)
        failed = [(sub, r) for sub, r in zip(self.subscriptions, results) if isinstance(r, BaseException)]
        if not failed:
            return
        for _, exc in failed:
            if not isinstance(exc, Exception):   # cancelled (stopping) or interrupted: that, not a summary
                raise exc
        if len(failed) == 1:
            raise failed[0][1]
        summary = "; ".join(f"{sub.durable}: {type(exc).__name__}: {exc}" for sub, exc in failed)
        kind = BusUnavailable if all(isinstance(exc, BusUnavailable) for _, exc in failed) else BusError
        raise kind(f"{len(failed)} consumers could not be set up: {summary}") from failed[0][1]

    async def _ensure_consumer(self, sub: Subscription) -> None:
        """``sub``'s consumer: new, it delivers what is published from now on; made again after it
        vanished (:meth:`lscloud.pulls.Pulls.failed` comes here), it starts just after its ack floor,
        so that nothing published while it was gone is lost (:class:`lscloud.pulls.AckFloors`)."""
        subjects = sub.subjects
        config = js_api.ConsumerConfig(
            durable_name=sub.durable,
            description=f"lscloud trigger {sub.function}/{sub.name} -> {sub.url}",
            ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=js_api.DeliverPolicy.NEW,
            # the dispatcher counts deliveries and dead-letters itself: the server must never
            # silently stop redelivering a message we have not dead-lettered yet
            max_deliver=-1,
            ack_wait=self.timeout_s + 10,
            max_ack_pending=1000,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
        )
        js = self._bus.js
        after = await self._floors.start(js, self.settings.stream, sub.durable)
        if after:
            config = dataclasses.replace(config, **after)
        try:
            await js.add_consumer(self.settings.stream, config)
        except nats.js.errors.BadRequestError as exc:
            # an existing durable whose filter changed in func.yaml: update what may be updated
            info = await js.consumer_info(self.settings.stream, sub.durable)
            updated = dataclasses.replace(info.config, filter_subject=config.filter_subject,
                                          filter_subjects=config.filter_subjects, ack_wait=config.ack_wait,
                                          description=config.description)
            try:
                await js.add_consumer(self.settings.stream, updated)
            except nats.js.errors.APIError:
                raise BusError(f"consumer {sub.durable} exists with an incompatible config: {exc.description}") from None

    # --- delivery -----------------------------------------------------------------------------

    async def _consume(self, sub: Subscription) -> None:
        assert self._stopping is not None and self._bus is not None and self._pulls is not None
        slots = asyncio.Semaphore(self.max_in_flight)
        tails: dict[str, asyncio.Future] = {}  # record subject -> done-future of its last delivery
        running: set[asyncio.Task] = set()
        psub = None
        try:
            while not self._stopping.is_set():
                await slots.acquire()
                try:
                    if psub is None:
                        psub = await self._bus.js.pull_subscribe_bind(durable=sub.durable, stream=self.settings.stream)
                    msg = await self._pulls.next(psub)
                except asyncio.CancelledError:
                    slots.release()
                    raise
                except Exception as exc:  # noqa: BLE001 - a vanished consumer, a connection down
                    slots.release()
                    await self._pulls.failed(exc, sub.durable, lambda sub=sub: self._ensure_consumer(sub))
                    continue
                await self._floors.note(psub, self.settings.stream, sub.durable, got=msg is not None)
                if msg is None:   # expired, or ended to stop or to pull again
                    slots.release()
                    continue
                task = asyncio.create_task(self._in_order(sub, msg, tails, slots))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            if running:  # the deliveries under way finish (bounded by the caller's wait in _main)
                await asyncio.gather(*running, return_exceptions=True)

    async def _in_order(self, sub: Subscription, msg, tails: dict[str, asyncio.Future],
                        slots: asyncio.Semaphore) -> None:
        """Deliver ``msg`` after the delivery before it about the same record (if any) ended."""
        done = asyncio.get_running_loop().create_future()
        key = _record_of(msg)
        before = tails.get(key) if key is not None else None
        if key is not None:
            tails[key] = done
        try:
            if before is not None:
                await before
            await self._handle(sub, msg)
        except Exception:  # noqa: BLE001 - unacked: JetStream redelivers it after ack_wait
            log.exception("delivery for %s failed", sub.durable)
        finally:
            done.set_result(None)
            if key is not None and tails.get(key) is done:
                del tails[key]
            slots.release()

    def _delay(self, delivered: int) -> float:
        return self.backoff[min(max(delivered, 1) - 1, len(self.backoff) - 1)]

    def _unreachable_delay(self, n: int) -> float:
        return min(self.unreachable_backoff_max_s, self.backoff[0] * 2 ** min(max(n, 1) - 1, 30))

    def _excused(self, key: tuple[str, int], status: int | None, error: str | None,
                 held_s: float | None) -> float | None:
        """The delay before the next delivery when this one was a wait, not a failure (see the
        module's docstring), noted as uncounted; None when it counts."""
        now = time.monotonic()
        if held_s is not None:
            waits = self._waits.setdefault(key, _Waits())
            waits.held_since = now if waits.held_since is None else waits.held_since
            if now - waits.held_since >= self.in_progress_max_s:
                return None   # a hold that never ends: a hung run's, counted so that it ends in a dead letter
            waits.uncounted += 1
            return max(self.backoff[0], min(held_s, self.retry_after_max_s))
        if status is None and (error or "").startswith(_UNREACHABLE):
            waits = self._waits.setdefault(key, _Waits())
            waits.unreachable_since = now if waits.unreachable_since is None else waits.unreachable_since
            if now - waits.unreachable_since >= self.unreachable_s:
                return None
            waits.uncounted += 1
            waits.unreachable += 1
            return self._unreachable_delay(waits.unreachable)
        return None

    async def _handle(self, sub: Subscription, msg) -> None:
        meta = msg.metadata
        delivered = meta.num_delivered
        key = (sub.durable, meta.sequence.stream)
        try:
            event = events.from_structured(msg.data)
        except ValueError as exc:
            await self._dead_letter(sub, msg, {"raw": msg.data.decode("utf-8", "replace")}, None,
                                    f"malformed event: {exc}", delivered)
            return
        if events.subject_for(event["type"]) != msg.subject:
            # NATS permissions let a publisher write only its own subjects (infra's natsauth): the
            # subject is what says who sent it. An event whose type belongs on another subject was
            # sent by someone who may not publish that type (reports forging softatm's "transfer
            # committed", which becomes a signed webhook telling a bank to spend a hold): never run
            await self._dead_letter(sub, msg, event, None,
                                    f"event type {event['type']} is not published on {msg.subject}", delivered)
            return
        if event["type"] not in sub.types:  # another version of a subscribed fact shares the subject
            self.stats.count(sub.durable, "skipped")
            metrics.delivery(sub.durable, event["type"], "skipped")
            await self._settle(msg.ack())
            return
        if key in self._owed:   # dead-lettered already: only its sink is left to tell
            await self._owe(sub, msg, key, event)
            return
        with telemetry.process_span(event, msg.headers or {}, destination=msg.subject,
                                    consumer_group=sub.durable, tracer_=self._tracer) as span:
            span.set_attribute("messaging.nats.delivery_count", delivered)
            status, error, problem, held_s = await self._post(sub, event)
            if status is not None and 200 <= status < 300:
                self._waits.pop(key, None)
                self.stats.count(sub.durable, "delivered")
                metrics.delivery(sub.durable, event["type"], "delivered", status)
                await self._settle(msg.ack())
                return
            retryable = status is None or status >= 500 or status == 429
            reason = _reason(status, error, problem)
            # the subscriber's answer (or, with none, why there was none): what failed the delivery
            span.set_attribute("error.type", str(status) if status is not None else _no_answer(error))
            wait = self._excused(key, status, error, held_s) if retryable else None
            waited = self._waits.get(key)
            counted = delivered - (waited.uncounted if waited is not None else 0)
            if wait is not None or retryable and counted < self.max_deliveries:
                self.stats.count(sub.durable, "retried")
                metrics.delivery(sub.durable, event["type"], "retry", status)
                span.set_status(Status(StatusCode.ERROR, f"will retry: {reason}"[:200]))
                await self._settle(msg.nak(delay=self._delay(counted) if wait is None else wait))
                return
            span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {reason}"[:200]))
            await self._dead_letter(sub, msg, event, status, error, delivered, reason=reason, counted=counted)

    @staticmethod
    async def _settle(awaitable) -> None:
        # an ack lost in a NATS restart only means the event comes again: handlers are idempotent
        try:
            await awaitable
        except Exception as exc:
            log.debug("ack/nak failed: %s", exc)

    async def _post(self, sub: Subscription, event: dict,
                    to: str | None = None) -> tuple[int | None, str | None, str | None, float | None]:
        """POST ``event`` to the subscriber (or ``to``, its dead-letter sink): ``(status, error,
        problem, held_s)``; ``problem``: what the answer names of a refusal, for :func:`_reason`;
        ``held_s``: the ``Retry-After`` of an "event in progress" answer (:func:`_held_for`), else None."""
        assert self._http is not None
        headers, body = events.to_binary_http(event)
        target = to or sub.url
        url = urlparse(target)
        attrs = {"http.request.method": "POST", "url.full": target, "server.address": url.hostname or "",
                 "server.port": url.port or (443 if url.scheme == "https" else 80)}
        with self._tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes=attrs) as span:
            telemetry.inject(headers)
            try:
                token = self.credentials(sub) if self.credentials is not None else None
            except Exception as exc:  # noqa: BLE001 - no credentials now: retried like a refused connection
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, "no credentials"))
                return None, f"no credentials for the delivery: {type(exc).__name__}: {exc}", None, None
            if token:
                headers["authorization"] = f"Bearer {token}"
            try:
                async with self._http.post(target, data=body, headers=headers, allow_redirects=False) as resp:
                    status, answer = resp.status, await resp.read()
                    retry_after = resp.headers.get("Retry-After")
            except asyncio.TimeoutError:
                span.set_attribute("error.type", "timeout")
                span.set_status(Status(StatusCode.ERROR, "timeout"))
                return None, f"no answer within {self.timeout_s:g}s", None, None
            except self._client_error as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, "connection error"))
                return None, f"{_UNREACHABLE}: {type(exc).__name__}: {exc}", None, None
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            if 200 <= status < 300:
                return status, None, None, None
            return (status, f"HTTP {status}: {answer.decode('utf-8', 'replace')[:500]}", _problem_of(answer),
                    _held_for(status, answer, retry_after))

    async def _dead_letter(self, sub: Subscription, msg, event: dict, status: int | None, error: str | None,
                           delivered: int, *, reason: str | None = None, counted: int | None = None) -> None:
        """Dead-letter ``msg``: to the subscriber's sink and the platform's stream. ``counted``: its
        deliveries that were failures, not waits (default: all)."""
        assert self._bus is not None
        counted = delivered if counted is None else counted
        told = await self._tell_sink(sub, event, status, error)
        if not told and counted < 2 * self.max_deliveries:
            # the function is down or restarting (its sink did not answer): the whole delivery is
            # tried again later, as Knative's broker retries a Trigger whose sink failed too. An event
            # the subscriber refused (4xx) reaches it once more then; handlers are idempotent by event
            # id, and dead-lettering it now would hide it from the function's operators.
            self.stats.count(sub.durable, "retried")
            metrics.delivery(sub.durable, event.get("type"), "retry", status)
            await self._settle(msg.nak(delay=self.backoff[-1]))
            return
        meta = msg.metadata
        record = {
            "event": event,
            "subscription": sub.as_dict(),
            "status": status,
            "error": error,
            "reason": reason or _reason(status, error),
            "deliveries": delivered,
            "stream": self.settings.stream,
            "stream_seq": meta.sequence.stream,
            "subject": msg.subject,
            "dead_lettered_at": iso(datetime.now(timezone.utc), "auto"),
        }
        if not told:   # the function's operators are still to be told: see _owe
            record["sink"] = "pending"
        # one dead letter per (subscription, message) even if this runs twice after a crash
        headers = {"Nats-Msg-Id": f"{sub.durable}:{meta.sequence.stream}", "content-type": "application/json"}
        telemetry.inject(headers)
        try:
            await self._bus.publish_message(sub.dlq_subject, json.dumps(record, ensure_ascii=False).encode("utf-8"),
                                            headers, stream=dlq_stream(self.settings), timeout=self.timeout_s)
        except (BusError, Exception) as exc:
            # keep the original: it comes back after the delay and we try again
            log.warning("dead letter for %s failed (%s); will retry", sub.durable, exc)
            await self._settle(msg.nak(delay=self.backoff[-1]))
            return
        self.stats.count(sub.durable, "dead_lettered")
        metrics.delivery(sub.durable, event.get("type"), "dead_letter", status)
        metrics.dead_lettered(sub.durable, metrics.dead_letter_reason(status, error))
        key = (sub.durable, meta.sequence.stream)
        self._waits.pop(key, None)
        if not told:
            # the record alone would keep it where the function's operators never look (its
            # /platform/dead-letters): the original stays, and is handed to the sink once it answers
            self._owed[key] = (status, error)
            await self._settle(msg.nak(delay=self._unreachable_delay(1)))
            return
        await self._settle(msg.term())

    async def _owe(self, sub: Subscription, msg, key: tuple[str, int], event: dict) -> None:
        """Hand a dead letter whose sink did not answer before to the sink: terminate the original once
        it took it, else wait longer (up to ``unreachable_backoff_max_s``) and try again."""
        status, error = self._owed[key]
        if await self._tell_sink(sub, event, status, error):
            del self._owed[key]
            self._waits.pop(key, None)
            log.info("dead letter for %s handed to its sink (event %s)", sub.durable, event.get("id"))
            await self._settle(msg.term())
            return
        waits = self._waits.setdefault(key, _Waits())
        waits.unreachable += 1
        await self._settle(msg.nak(delay=self._unreachable_delay(waits.unreachable)))

    async def _tell_sink(self, sub: Subscription, event: dict, status: int | None, error: str | None) -> bool:
        """Deliver a dead letter to the subscriber's sink, as Knative does to a Trigger's
        ``deadLetterSink`` (the event with its ``knativeerror*`` attributes). False when the sink
        should be tried again (no answer, 5xx, 429); True when it took it, refused it for good (a
        4xx) or there is none. Either way ``<stream>_DLQ`` keeps the platform's own record."""
        sink = sub.dead_letter_url
        if sink is None or "id" not in event:   # (a message that was not a CloudEvent has no sink)
            return True
        failure = events.DeliveryFailure(status, error or "", sub.url)
        told, why, problem, _ = await self._post(sub, {**event, **failure.extensions()}, to=sink)
        if told is not None and 200 <= told < 300:
            return True
        log.warning("dead letter for %s not taken by its sink: %s", sub.durable, _reason(told, why, problem))
        return told is not None and 400 <= told < 500 and told != 429


# --- reading streams without consuming them (CLI: `lscloud dlq`, `lscloud events tail`) --------

async def _last_messages(settings, stream: str, n: int) -> list[tuple[int, str, bytes, dict | None]]:
    bus = Bus(settings, name=f"{settings.service}-reader", create_stream=False)
    await bus.connect()
    try:
        try:
            info = await bus.js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            return []
        first, seq = info.state.first_seq, info.state.last_seq
        out = []
        while seq >= first and seq > 0 and len(out) < n:
            try:
                raw = await bus.js.get_msg(stream, seq)
                out.append((seq, raw.subject, raw.data or b"", raw.headers))
            except nats.js.errors.NotFoundError:
                pass  # deleted or expired
            seq -= 1
        out.reverse()
        return out
    finally:
        await bus.close()


def _run_sync(coro):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # called from inside an event loop: run on a private thread instead of nesting loops
    result: dict[str, Any] = {}

    def target():
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:
            result["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def read_dlq(settings, limit: int = 50) -> list[dict[str, Any]]:
    """The last ``limit`` dead letters, oldest first, each with its DLQ ``seq``; nothing consumed."""
    out = []
    for seq, subject, data, _ in _run_sync(_last_messages(settings, dlq_stream(settings), limit)):
        try:
            record = json.loads(data)
        except ValueError:
            record = {"raw": data.decode("utf-8", "replace")}
        record["seq"] = seq
        record["dlq_subject"] = subject
        out.append(record)
    return out


def tail(settings, n: int = 20) -> list[dict[str, Any]]:
    """The last ``n`` events of the main stream, oldest first: ``{seq, subject, traceparent, event}``."""
    out = []
    for seq, subject, data, headers in _run_sync(_last_messages(settings, settings.stream, n)):
        try:
            event: Any = json.loads(data)
        except ValueError:
            event = {"raw": data.decode("utf-8", "replace")}
        out.append({"seq": seq, "subject": subject, "traceparent": (headers or {}).get("traceparent"), "event": event})
    return out
