"""The runtime's metric instruments, created lazily from :func:`lscloud.telemetry.meter`.

Semantic-convention names where one exists (messaging metrics, with the same attributes as the
messaging spans), ``lscloud.*`` for what the conventions lack. ``http.server.request.duration``
and ``http.server.active_requests`` are recorded with the SERVER spans (:mod:`lscloud.web.instrumentation`).

=======================================  =========  ===============================================
instrument                               recorded   attributes
=======================================  =========  ===============================================
``messaging.client.operation.duration``  bus        system, operation name/type, destination,
``messaging.client.sent.messages``       publish    ``error.type`` on failure
``messaging.client.consumed.messages``   /events    destination, consumer group, event type,
                                                    ``lscloud.event.outcome``
``messaging.process.duration``           /events    destination, consumer group, event type,
                                                    ``error.type`` when the handler failed
``lscloud.event.lag``                    /events    consumer group (the function), event type
``lscloud.eventing.deliveries``          dispatcher consumer group (the subscription), event type,
                                                    ``lscloud.delivery.outcome``, HTTP status
``lscloud.eventing.dead_letters``        dispatcher consumer group, ``lscloud.dead_letter.reason``
``lscloud.function.readiness.failures``  ready()    ``lscloud.dependency`` (``s3`` or ``nats``)
``http.client.request.duration``         calls out  method, ``server.address``/``port``, status or
                                         (S3, HTTP) ``error.type``; S3: ``rpc.method``, bucket
=======================================  =========  ===============================================

``observability/README.md`` lists the Prometheus names these become. :class:`ExpiringReadings` is
the per-replica cache a function's observable gauge reports from.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable, Generic, Hashable, Iterator, Mapping, TypeVar

from .telemetry import error_type

# seconds; the HTTP semconv's advisory buckets (the SDK default ones are for milliseconds)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
# event lag goes from milliseconds to a backlog of minutes (the SLO threshold, 60 s, is a bound)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

class Instruments:
    """A module's metric instruments, created once on first use from :func:`lscloud.telemetry.meter`.

    ``create(meter)`` returns ``{name: instrument}``; calling the object with a name gives that
    instrument. Creating lazily means after :func:`lscloud.telemetry.setup`, so the instruments
    record into the process's real provider, not the API's no-op default.
    """

    def __init__(self, create: Callable[[Any], dict[str, Any]], meter_name: str | None = None):
        self._create = create
        self._meter_name = meter_name
        self._made: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Any:
        made = self._made
        if made is None:
            with self._lock:
                if self._made is None:
                    from . import telemetry

                    meter = telemetry.meter(self._meter_name) if self._meter_name else telemetry.meter()
                    self._made = self._create(meter)
                made = self._made
        return made[name]


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringReadings(Generic[K, V]):
    """What an observable gauge reports when its values are only what this replica last saw: each
    reading counts for ``ttl_s`` seconds after it was last set, then it is no longer reported.

    Without the bound, a replica that stopped seeing a key (its requests went to other pods) would go
    on exporting the figure it last saw for as long as it lives, and a dashboard taking the max over
    pods would read it as current. :meth:`set` records one reading; :meth:`replace` records a full
    count at once (a sweep); :meth:`fresh` is what the gauge's callback reports. The expired entries
    are dropped by every :meth:`fresh` and :meth:`replace`, and by a :meth:`set` once in each
    sixteenth of ``ttl_s``, so memory holds only the keys seen within about ``ttl_s`` whether or not
    a metric reader collects. A key is reported while ``now - set_at <= ttl_s``.

    Thread-safe by construction: the entries are reached only through these methods, each of which
    reads the clock and changes or copies the entries under one lock (no I/O, no callback inside),
    so request threads setting readings and the reader's thread collecting them each see a call
    whole. ``clock`` gives monotonic seconds (a wall clock that jumps would expire or revive
    readings); tests pass their own.
    """

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[K, tuple[V, float]] = {}   # key -> (value, clock time it was set)
        self._dropped_at = clock()

    def _drop_expired(self, now: float) -> None:
        horizon = now - self.ttl_s
        for key in [k for k, (_v, at) in self._entries.items() if at < horizon]:
            del self._entries[key]
        self._dropped_at = now

    def set(self, key: K, value: V) -> None:
        """``value`` is the reading of ``key`` from now on, for ``ttl_s``."""
        with self._lock:
            now = self._clock()
            self._entries[key] = (value, now)
            # a set is on a request's path (every write of a soft ATM's journal): it walks every
            # key only now and then, which still bounds memory to the keys of about one ttl_s
            if now - self._dropped_at >= self.ttl_s / 16:
                self._drop_expired(now)

    def replace(self, readings: Mapping[K, V], missing: V) -> None:
        """One count of everything at once: each of ``readings`` is set now; a key it lacks reads
        ``missing`` (e.g. 0: none left) but keeps its time, so it expires ``ttl_s`` after the last
        count that had it. No collection sees the count half applied."""
        with self._lock:
            now = self._clock()
            self._entries = {k: (missing, at) for k, (_v, at) in self._entries.items()}
            self._entries.update((k, (v, now)) for k, v in readings.items())
            self._drop_expired(now)

    def fresh(self) -> list[tuple[K, V]]:
        """The ``(key, value)`` readings not yet expired (and the expired ones forgotten)."""
        with self._lock:
            self._drop_expired(self._clock())
            return [(k, v) for k, (v, _at) in self._entries.items()]


HTTP_CLIENT = Instruments(lambda m: {"duration": m.create_histogram(
    "http.client.request.duration", unit="s", description="Duration of HTTP client requests.",
    explicit_bucket_boundaries_advisory=DURATION_BUCKETS)})
"""``http.client.request.duration``: recorded by :mod:`lscloud.http_client` and the object store's
S3 client (:mod:`lscloud.store.s3http`), never with a URL, path, key or query."""


def _create(m) -> dict[str, Any]:
    return dict(
        publish_duration=m.create_histogram(
            "messaging.client.operation.duration", unit="s",
            description="Duration of messaging operation initiated by a producer or consumer client.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS),
        sent=m.create_counter(
            "messaging.client.sent.messages", unit="{message}",
            description="Number of messages producer attempted to send to the broker."),
        consumed=m.create_counter(
            "messaging.client.consumed.messages", unit="{message}",
            description="Number of messages that were delivered to the application."),
        process_duration=m.create_histogram(
            "messaging.process.duration", unit="s", description="Duration of processing operation.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS),
        lag=m.create_histogram(
            "lscloud.event.lag", unit="s",
            description="Time from the CloudEvent's time attribute to the start of its processing.",
            explicit_bucket_boundaries_advisory=LAG_BUCKETS),
        deliveries=m.create_counter(
            "lscloud.eventing.deliveries", unit="{delivery}",
            description="Delivery attempts of the trigger dispatcher, by outcome."),
        dead_letters=m.create_counter(
            "lscloud.eventing.dead_letters", unit="{message}",
            description="Events moved to the dead-letter stream."),
        readiness_failures=m.create_counter(
            "lscloud.function.readiness.failures", unit="{check}",
            description="Readiness checks that failed, by the dependency that did not answer."),
    )


_instrument = Instruments(_create)


def _messaging(operation: str, destination: str) -> dict[str, Any]:
    return {"messaging.system": "nats", "messaging.operation.type": operation,
            "messaging.operation.name": "publish" if operation == "send" else operation,
            "messaging.destination.name": destination}


@contextmanager
def publishing(destination: str) -> Iterator[None]:
    """Time one publish (with its retries) to ``destination``; count it, failed or not."""
    attrs = _messaging("send", destination)
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        attrs["error.type"] = error_type(exc)
        raise
    finally:
        _instrument("publish_duration").record(time.perf_counter() - started, attrs)
        _instrument("sent").add(1, attrs)


def event_time(event: Mapping[str, Any]) -> float | None:
    """The event's ``time`` as a POSIX timestamp, or None when it has none (or a bad one)."""
    value = event.get("time")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def destination(event_type: str | None) -> str | None:
    """The NATS subject events of ``event_type`` travel on (None for a type with no subject)."""
    from . import events

    try:
        return events.subject_for(event_type)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None


def _event_attrs(destination: str | None, consumer_group: str, event_type: str | None) -> dict[str, Any]:
    attrs = {**_messaging("process", destination or ""), "messaging.consumer.group.name": consumer_group}
    if destination is None:
        del attrs["messaging.destination.name"]
    if event_type:
        attrs["cloudevents.event_type"] = event_type
    return attrs


def consumed(destination: str | None, consumer_group: str, event_type: str | None, outcome: str) -> None:
    """One event delivered to a function: ``outcome`` is ``done``, ``failed``, ``duplicate``,
    ``in_progress``, ``unsupported`` or ``malformed``; ``dead_letter`` for one its dead-letter sink
    kept (:mod:`lscloud.deadletters`), ``done_after_all`` for one kept settled because its event
    was done after all."""
    attrs = _event_attrs(destination, consumer_group, event_type)
    attrs["lscloud.event.outcome"] = outcome
    _instrument("consumed").add(1, attrs)


@contextmanager
def processing(event: Mapping[str, Any], destination: str | None, consumer_group: str) -> Iterator[None]:
    """Around a handler run: the lag of ``event`` now, then the run's duration (``error.type`` if it raised)."""
    attrs = _event_attrs(destination, consumer_group, event.get("type"))
    sent_at = event_time(event)
    if sent_at is not None:
        _instrument("lag").record(max(0.0, time.time() - sent_at),
                                  {"messaging.consumer.group.name": consumer_group,
                                   "cloudevents.event_type": attrs.get("cloudevents.event_type", "")})
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        attrs["error.type"] = error_type(exc)
        raise
    finally:
        _instrument("process_duration").record(time.perf_counter() - started, attrs)


def delivery(subscription: str, event_type: str | None, outcome: str, status: int | None = None) -> None:
    """A dispatcher delivery attempt: ``outcome`` is ``delivered``, ``retry``, ``dead_letter`` or ``skipped``."""
    attrs: dict[str, Any] = {"messaging.system": "nats", "messaging.consumer.group.name": subscription,
                             "lscloud.delivery.outcome": outcome}
    if event_type:
        attrs["cloudevents.event_type"] = event_type
    if status is not None:
        attrs["http.response.status_code"] = status
    _instrument("deliveries").add(1, attrs)


def dead_letter_reason(status: int | None, error: str | None) -> str:
    """A low-cardinality reason: ``malformed``, ``rejected`` (a 4xx no retry fixes),
    ``failed`` (5xx/429 until the last delivery) or ``no_answer`` (timeouts, refused connections)."""
    if status is None:
        return "malformed" if (error or "").startswith("malformed") else "no_answer"
    if status >= 500 or status == 429:
        return "failed"
    return "rejected"


def dead_lettered(subscription: str, reason: str) -> None:
    _instrument("dead_letters").add(1, {"messaging.system": "nats", "messaging.consumer.group.name": subscription,
                                         "lscloud.dead_letter.reason": reason})


def readiness_failed(dependency: str) -> None:
    _instrument("readiness_failures").add(1, {"lscloud.dependency": dependency})
