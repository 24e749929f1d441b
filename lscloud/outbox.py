"""Publishing domain events without losing one: JetStream first, the store when NATS does not confirm.

A function commits its write to the store, then publishes the events that write implies. If
NATS does not confirm one (down, slow, partitioned), the event is kept create-only in the
function's outbox in the object store and re-published by :func:`flush` — on the platform
clock's tick and by operators. Event ids are stable, so a re-publish inside JetStream's
duplicate window is stored once, and consumers drop repeats by id in any case.

A kept event keeps its message creation context too: the ``traceparent``/``tracestate`` of the
PRODUCER span that first tried to publish it, as the event's CloudEvents distributed-tracing
extension attributes. The later publish happens in another trace (a tick's, an operator's); its
PRODUCER span and the consumers' spans link back to the request that made the event
(:func:`lscloud.telemetry.creation_context`).

Inside a request (:func:`start_request`, from :mod:`lscloud.web.app`) a publish waits
``nats_request_publish_timeout_s`` (2 s), not the bus's 10 s: the outbox keeps what NATS did not
confirm, and a caller behind Knative is cut off at 60 s. While the client knows it has lost its
connection (nats-py reconnecting), and after one event of the request was kept, the request's further
events are kept at once without waiting for NATS: a write with five events took 50 s while NATS was
down, and the events kept after one failed are published again in their order with it
(:func:`flush`), not ahead of it.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
from typing import Iterable

from opentelemetry.trace import Status, StatusCode

from . import metrics, runtime, telemetry
from .store import ConditionalCheckFailed, DoesNotExist, Model, attributes as A

log = logging.getLogger(__name__)


class PendingEvent(Model):
    """An event NATS did not confirm, under the publishing function's name; ``id``: :func:`key_of`
    (the event's id alone for entries kept before: :func:`flush` sends and deletes those too)."""

    class Meta:
        table = "outbox"
        working = True   # kept until NATS confirms it, never a record (lscloud.store.working)

    service = A.UnicodeAttribute(hash_key=True)
    id = A.UnicodeAttribute(range_key=True)
    event = A.JSONAttribute()


def _service() -> str:
    return runtime.current().settings.service


def key_of(event: dict) -> str:
    """Where ``event`` waits: a digest of its ``source`` and ``id``, the pair that tells events apart
    (CloudEvents, and JetStream's ``Nats-Msg-Id``). The id alone did not: one function publishes
    events of several sources whose ids may coincide, and the second was taken for the first, "kept
    already", and lost. A digest, not the pair: ids are often chosen by clients, and an object key
    never holds what they could put in one."""
    return hashlib.sha256(f"{event.get('source')}\n{event['id']}".encode("utf-8")).hexdigest()[:32]


def _in_order(kept: Iterable[PendingEvent]) -> list[PendingEvent]:
    # digests are in no order: the events of one write share their time, and their ids say their
    # order (<record>.<version>.<i>), which the outbox keyed by id kept
    return sorted(kept, key=lambda p: (metrics.event_time(p.event) or 0.0, str(p.event.get("id"))))


class _Request:
    """What the outbox knows of the request it publishes for: how long a publish waits, and whether
    an event of the request was kept already."""

    __slots__ = ("publish_timeout_s", "kept")

    def __init__(self, publish_timeout_s: float):
        self.publish_timeout_s = publish_timeout_s
        self.kept = False


_request: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("lscloud_outbox_request", default=None)


def start_request(publish_timeout_s: float) -> contextvars.Token:
    """The work starting now in this context is a request (an event delivery too): its publishes
    wait ``publish_timeout_s`` at most, and once one of its events is kept the rest are kept at once.
    Returns the token for :func:`end_request`."""
    return _request.set(_Request(publish_timeout_s))


def end_request(token: contextvars.Token) -> None:
    """End what :func:`start_request` began (``token``: what it returned)."""
    try:
        _request.reset(token)
    except ValueError:
        _request.set(None)   # ended in another context than it began in: it must not outlive its request


def publish(events: Iterable[dict]) -> None:
    """Publish ``events`` in order; keep any that NATS does not confirm for a later :func:`flush`.

    Once one is kept, the rest of this call's (and of the request's) are kept without being tried,
    as they are while the bus knows it is disconnected: published later, in their order."""
    bus = None
    request = _request.get()
    kept = request is not None and request.kept
    for event in events:
        bus = bus or runtime.current().bus
        with telemetry.capture_creation() as created:
            if kept or bus.disconnected:
                _not_tried(bus, event)
            else:
                try:
                    if request is None:
                        bus.publish(event)
                    else:
                        bus.publish(event, timeout=min(bus.publish_timeout, request.publish_timeout_s))
                    continue
                except Exception as exc:  # noqa: BLE001 - kept, not lost
                    log.warning("event %s not confirmed (%s); kept in the outbox", event["id"], exc.__class__.__name__)
            kept = True
            if request is not None:
                request.kept = True
            try:
                # with the creation context of the attempt; one the event carries (kept before) stays
                PendingEvent(_service(), key_of(event), event={**created, **event}).save()
            except ConditionalCheckFailed:
                pass  # kept already by an earlier attempt


def _not_tried(bus, event: dict) -> None:
    """The PRODUCER span of an event kept without a publish (as a publish NATS did not confirm
    records it, failed): its context is the event's creation context, which the later publish links to."""
    with telemetry.send_span(event, tracer_=telemetry.service_tracer(bus.settings.service)) as span:
        span.set_attribute("error.type", "BusUnavailable")
        span.set_status(Status(StatusCode.ERROR, "not tried: NATS is disconnected, or an earlier event of the "
                                                 "request was kept"))
    log.info("event %s kept in the outbox without a publish", event["id"])


def flush(limit: int = 500) -> dict:
    """Re-publish what the outbox holds (each ``limit`` read in event order); ``{"sent": n, "failed": m}``."""
    bus = runtime.current().bus
    sent = failed = 0
    for pending in _in_order(PendingEvent.query(_service(), limit=limit)):
        try:
            bus.publish(pending.event)
        except Exception:  # noqa: BLE001 - stays for the next flush
            failed += 1
            continue
        try:
            pending.delete()
        except (DoesNotExist, ConditionalCheckFailed):
            pass  # another flush (a tick, an operator) took it meanwhile: same event id, stored once
        sent += 1
    return {"sent": sent, "failed": failed}


def pending(limit: int = 100) -> list[dict]:
    """The events waiting in this function's outbox (for operators and tests)."""
    return [p.event for p in _in_order(PendingEvent.query(_service(), limit=limit))]
