"""OpenTelemetry for the runtime: one setup per process and the few helpers functions need.

:func:`setup` installs a tracer and a meter provider named after the service; spans and metrics
go to OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and spans also to a JSON-lines file
when ``LSCLOUD_TRACE_FILE`` is set, rotated at a size bound (:class:`JsonLinesSpanExporter`) and read
back by ``lscloud traces`` from its end (:func:`newest_traces`) or as a stream (:func:`iter_trace_file`),
shown with :func:`format_trace_tree`. With neither, nothing is exported and nothing is printed. The
OTLP exporters are made on their first export (:mod:`lscloud.otlp`), off the start's path.

Trace context crosses NATS and HTTP as W3C ``traceparent``/``tracestate`` headers
(:func:`inject`, :func:`extract`); span names and attributes follow the HTTP and messaging
semantic conventions. An event kept to be published later (:mod:`lscloud.outbox`) carries its
message creation context in itself, as the CloudEvents distributed-tracing extension
(``traceparent``/``tracestate`` attributes): the spans that publish and process it later link
to it (:func:`creation_context`).

Header values that carry secrets are never put in a span, and personal
identifiers (CCCD, passport, phone and account numbers) are redacted from every exported span's
name, attributes, events and status (:class:`RedactingSpanExporter`, patterns in
:mod:`lscloud.redaction`) and from every log record of the process.
"""

from __future__ import annotations

import collections
import fcntl
import heapq
import json
import os
import re
import threading
import weakref
from contextlib import contextmanager
from typing import Any, BinaryIO, Iterator, Mapping, Sequence

from . import otel_import  # noqa: F401 - first: the SDK without psutil (see there)

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import config, events, otlp, redaction
from .timestamps import today_here

INSTRUMENTATION_NAME = "lscloud"

# headers whose values are credentials: never recorded, whatever OTEL_* capture settings say
SENSITIVE_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
                     "signature", "x-signature", "x-lscloud-signature", "x-partner-signature")
_SENSITIVE_ATTR = re.compile(
    r"^http\.(request|response)\.header\.(" + "|".join(h.replace("-", "[_-]") for h in SENSITIVE_HEADERS) + r")$"
)

_lock = threading.Lock()
_tracer_provider: TracerProvider | None = None
_meter_provider: MeterProvider | None = None
_metric_tap: InMemoryMetricReader | None = None
_trace_files: set[str] = set()
_otlp_span_endpoints: set[str] = set()
_service_providers: dict[str, TracerProvider] = {}
_service_tracers: dict[tuple[str, str], trace.Tracer] = {}


def setup(settings=None) -> None:
    """Install the process's tracer and meter providers (idempotent; the first service name wins).

    A later call with another ``trace_file`` or ``otlp_endpoint`` adds that exporter.
    """
    global _tracer_provider, _meter_provider, _metric_tap
    if settings is None:
        settings = config.load()
    with _lock:
        if _tracer_provider is None:
            resource = Resource.create({SERVICE_NAME: settings.service})
            existing = trace.get_tracer_provider()
            if isinstance(existing, TracerProvider):  # someone (a test harness) installed one: share it
                _tracer_provider = existing
            else:
                _tracer_provider = TracerProvider(resource=resource)
                trace.set_tracer_provider(_tracer_provider)
            existing_mp = metrics.get_meter_provider()
            if isinstance(existing_mp, MeterProvider):
                _meter_provider = existing_mp
            else:
                # an in-memory reader keeps only aggregates (bounded): lets tests and local
                # tools read the process's metrics without an exporter
                _metric_tap = InMemoryMetricReader()
                readers = [_metric_tap]
                metrics_endpoint = settings.otlp_metrics_endpoint or (
                    settings.otlp_endpoint.rstrip("/") + "/v1/metrics" if settings.otlp_endpoint else "")
                if metrics_endpoint:
                    readers.append(PeriodicExportingMetricReader(otlp.metric_exporter(metrics_endpoint)))
                _meter_provider = MeterProvider(resource=resource, metric_readers=readers)
                metrics.set_meter_provider(_meter_provider)
        if settings.otlp_endpoint and settings.otlp_endpoint not in _otlp_span_endpoints:
            _tracer_provider.add_span_processor(BatchSpanProcessor(
                RedactingSpanExporter(otlp.span_exporter(settings.otlp_endpoint.rstrip("/") + "/v1/traces"))))
            _otlp_span_endpoints.add(settings.otlp_endpoint)
        if settings.trace_file and settings.trace_file not in _trace_files:
            span_log = JsonLinesSpanExporter(settings.trace_file, settings.trace_file_max_bytes, settings.trace_file_keep)
            _tracer_provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(span_log),
                                                                   schedule_delay_millis=500))
            _trace_files.add(settings.trace_file)
        redaction.install_log_redaction()


def service_tracer(service: str, name: str = INSTRUMENTATION_NAME) -> trace.Tracer:
    """A tracer whose spans carry ``service.name = service`` but go to this process's exporters.

    For a second component living in the same process (the local dispatcher beside the
    gateway in the supervisor): its spans are its own service's in the trace file and in OTLP.
    Before :func:`setup` it is the process tracer (no-op until something sets telemetry up).
    """
    provider = _tracer_provider
    if provider is None:
        return tracer(name)
    cached = _service_tracers.get((service, name))   # every publish asks: a Tracer is built once
    if cached is not None:
        return cached
    with _lock:
        sibling = _service_providers.get(service)
        if sibling is None:
            if provider.resource.attributes.get(SERVICE_NAME) == service:
                sibling = provider
            else:
                resource = provider.resource.merge(Resource({SERVICE_NAME: service}))
                # the same multi-processor: every exporter added to the main provider, now or later
                sibling = TracerProvider(resource=resource, shutdown_on_exit=False,
                                         active_span_processor=provider._active_span_processor)
            _service_providers[service] = sibling
        made = _service_tracers[(service, name)] = sibling.get_tracer(name)
    return made


def _ensure_setup() -> TracerProvider:
    if _tracer_provider is None:
        from .config import Settings

        setup(Settings())
    assert _tracer_provider is not None
    return _tracer_provider


def use_span_exporter(exporter: SpanExporter) -> SpanProcessor:
    """Also send every finished span to ``exporter``, synchronously and redacted (tests, local tools)."""
    provider = _ensure_setup()
    processor = SimpleSpanProcessor(RedactingSpanExporter(exporter))
    provider.add_span_processor(processor)
    return processor


def spans_in_memory(service: str | None = None):
    """Set telemetry up as ``service`` (when given) and keep every finished span of the process in
    memory, redacted, as :func:`use_span_exporter` does: an ``InMemorySpanExporter``
    (``get_finished_spans()``, ``clear()``) for tests and local tools."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if service is not None:
        setup(config.Settings(service=service))
    exporter = InMemorySpanExporter()
    use_span_exporter(exporter)
    return exporter


class RedactingSpanExporter(SpanExporter):
    """Hands ``delegate`` a copy of each span with personal identifiers redacted from its name,
    attributes, events and status (:func:`lscloud.redaction.redact`). Every exporter
    :func:`setup` and :func:`use_span_exporter` install is wrapped in one.

    Instrumentations record URL paths, query strings, object keys and exception messages as they
    are; redacting at the export boundary covers every one of them, present and future. It sits
    in front of the exporter rather than in a processor so that, behind a BatchSpanProcessor,
    the work runs on the export thread, not on the request's. Trace and span ids, kinds, times
    and links pass unchanged.
    """

    def __init__(self, delegate: SpanExporter):
        self.delegate = delegate

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        _forget_clean_in_a_new_year()
        return self.delegate.export([redacted_span(s) for s in spans])

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)


# Attribute values found to hold nothing to redact, by attribute name. Spans repeat the same
# values all day (methods, routes, addresses, user agents, bucket names), and running the
# patterns over them again was most of the export thread's CPU. Only clean values are
# remembered, so the memo never holds an identifier; long values (stack traces) are not
# remembered; the memo is emptied when full. Every value not seen clean goes through the
# patterns as before.
_CLEAN_MAX = 4096
_CLEAN_LONGEST = 256
_clean: dict[tuple[str | None, Any], None] = {}
_clean_year = [today_here().year]


def _forget_clean_in_a_new_year() -> None:
    # whether 12 digits can be a CCCD depends on this year (a birth year up to now): a number
    # clean last year may not be now
    year = today_here().year
    if year != _clean_year[0]:
        _clean.clear()
        _clean_year[0] = year


def _remember_clean(key: tuple[str | None, Any]) -> None:
    if len(_clean) >= _CLEAN_MAX:
        _clean.clear()
    _clean[key] = None


def _redacted_value(name: str, value: Any) -> Any:
    """:func:`lscloud.redaction.redact_value`, answered from the memo when ``value`` was clean before."""
    kind = type(value)
    if kind is not str and kind is not tuple:
        return value if not isinstance(value, (str, list, tuple)) else redaction.redact_value(name, value)
    if kind is str and len(value) > _CLEAN_LONGEST:
        return redaction.redact_value(name, value)
    key = (name, value)
    try:
        if key in _clean:
            return value
    except TypeError:  # a tuple holding something unhashable
        return redaction.redact_value(name, value)
    out = redaction.redact_value(name, value)
    if out == value:
        _remember_clean(key)
    return out


def _redacted_text(text: str) -> str:
    """:func:`lscloud.redaction.redact` of a span name, answered from the memo when it was clean before."""
    key = (None, text)
    if key in _clean:
        return text
    out = redaction.redact(text)
    if out == text and len(text) <= _CLEAN_LONGEST:
        _remember_clean(key)
    return out


def _attributes_of(span: ReadableSpan) -> Mapping[str, Any]:
    """A finished span's attributes, as the plain dict the SDK keeps them in where it does.

    The read-only view ``span.attributes`` iterates through the SDK's BoundedAttributes, which
    takes a lock and copies the keys, then looks each value up in Python: five times the cost
    of the dict inside, twice per exported span. A finished span's attributes no longer change.
    """
    attributes = getattr(span, "_attributes", None)
    if type(attributes) is not dict:
        attributes = getattr(attributes, "_dict", None)
    return attributes if type(attributes) is dict else (span.attributes or {})


def _events_of(span: ReadableSpan) -> Sequence[Event]:
    """A finished span's events without the copy under a lock that ``span.events`` makes."""
    events = getattr(span, "_events", None)
    if type(events) is not tuple and type(events) is not list:
        events = getattr(events, "_dq", None)
    return events if isinstance(events, (tuple, list, collections.deque)) else span.events


def _redacted_attributes(attributes) -> dict[str, Any]:
    return {k: _redacted_value(k, v) for k, v in (attributes or {}).items()}


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    """``span`` as exported: the same span with identifier-shaped values redacted."""
    name = _redacted_text(span.name)
    source = _attributes_of(span)
    changed = name != span.name or bool(_events_of(span)) or bool(span.status.description)
    if not changed:
        clean = _clean
        for k, v in source.items():
            kind = type(v)
            if kind is int or kind is bool or kind is float or (kind is str and (k, v) in clean):
                continue  # the common case, without a call
            out = _redacted_value(k, v)
            if out is not v and out != v:
                changed = True
                break
        else:
            return span  # nothing to redact (most spans): no copy
    attributes = _redacted_attributes(source)
    status = span.status
    if status.description:
        status = Status(status.status_code, redaction.redact(status.description))
    return ReadableSpan(
        name=name, context=span.context, parent=span.parent, resource=span.resource, attributes=attributes,
        events=[Event(e.name, _redacted_attributes(e.attributes), e.timestamp) for e in span.events],
        links=span.links, kind=span.kind, status=status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope)


def force_flush(timeout_ms: int = 5000) -> None:
    """Export what is buffered now (before reading the trace file, or at shutdown)."""
    if _tracer_provider is not None:
        _tracer_provider.force_flush(timeout_ms)
    if _meter_provider is not None:
        _meter_provider.force_flush(timeout_ms)


def collect_metrics() -> MetricsData | None:
    """A snapshot of this process's metrics (cumulative), or None if another setup owns metrics."""
    _ensure_setup()
    if _metric_tap is None:
        return None
    return _metric_tap.get_metrics_data() or MetricsData(resource_metrics=[])


def tracer(name: str = INSTRUMENTATION_NAME) -> trace.Tracer:
    """The process tracer (a no-op until :func:`setup`; spans recorded from then on)."""
    return trace.get_tracer(name)


def meter(name: str = INSTRUMENTATION_NAME) -> metrics.Meter:
    """The process meter, for RED and domain metrics (recorded once :func:`setup` has run)."""
    return metrics.get_meter(name)


class _LowerGetter:
    """Reads carrier headers whatever their case (NATS keeps it, HTTP does not care)."""

    def get(self, carrier: Mapping[str, str], key: str):
        value = carrier.get(key.lower())
        if value is None:
            return None
        return value if isinstance(value, list) else [value]

    def keys(self, carrier: Mapping[str, str]):
        return list(carrier.keys())


_getter = _LowerGetter()


@contextmanager
def untraced() -> Iterator[None]:
    """Make no spans for the calls inside (a readiness probe every few seconds is not a trace
    anyone wants). It sets OpenTelemetry's own suppression key, which the store's S3 client and
    every OpenTelemetry instrumentation honour."""
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        otel_context.detach(token)


def inject(headers: dict, context: otel_context.Context | None = None) -> dict:
    """Write ``traceparent`` (and ``tracestate``, baggage) of the current context into ``headers``."""
    propagate.inject(headers, context=context)
    return headers


def extract(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The context carried by ``headers`` (case-insensitive); the current one when they carry none."""
    items = headers.items() if headers is not None and hasattr(headers, "items") else (headers or [])
    lower = {str(k).lower(): v for k, v in items}
    return propagate.extract(lower, getter=_getter)


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` without the ones that carry credentials (for logs and dead letters)."""
    return {k: v for k, v in headers.items() if str(k).lower() not in SENSITIVE_HEADERS}


# messaging.operation.type -> messaging.operation.name: a JetStream producer publishes (the
# client's js.publish, the protocol's PUB); the type is the conventions' generic "send"
_OPERATION_NAMES = {"send": "publish", "process": "process"}
_TRACE_CONTEXT = TraceContextTextMapPropagator()
_CREATION_CARRIER = otel_context.create_key("lscloud.creation_context")


def _messaging_attributes(operation: str, destination: str, event: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "messaging.system": "nats",
        "messaging.destination.name": destination,
        "messaging.operation.type": operation,
        "messaging.operation.name": _OPERATION_NAMES.get(operation, operation),
    }
    for key, attr in (("id", "messaging.message.id"), ("id", "cloudevents.event_id"),
                      ("type", "cloudevents.event_type"), ("source", "cloudevents.event_source"),
                      ("subject", "cloudevents.event_subject"), ("specversion", "cloudevents.event_spec_version")):
        if isinstance(event.get(key), str):
            attrs[attr] = event[key]
    return attrs


def _destination(event: Mapping[str, Any]) -> str:
    try:
        return events.subject_for(event.get("type"))  # type: ignore[arg-type]
    except ValueError:
        return str(event.get("type") or "unknown")


def error_type(exc: BaseException) -> str:
    """``error.type`` of a failure, on a span and on its metric alike (:mod:`lscloud.metrics` records
    it by this too): a problem's HTTP status (it says more than the class), else the exception's
    class name."""
    status = getattr(exc, "status", None)
    return str(status) if isinstance(status, int) else type(exc).__name__


def creation_context(event: Mapping[str, Any]) -> trace.SpanContext | None:
    """The message creation context ``event`` carries in itself (the CloudEvents distributed-tracing
    extension: ``traceparent``, ``tracestate``), or None when it carries none (or a malformed one)."""
    traceparent = event.get("traceparent")
    if not isinstance(traceparent, str):
        return None
    carrier = {"traceparent": traceparent}
    if isinstance(event.get("tracestate"), str):
        carrier["tracestate"] = event["tracestate"]
    # an empty base: a malformed traceparent must not hand back the current span's context
    found = trace.get_current_span(_TRACE_CONTEXT.extract(carrier, context=otel_context.Context())).get_span_context()
    return found if found.is_valid else None


@contextmanager
def capture_creation() -> Iterator[dict[str, str]]:
    """Yield a dict that the PRODUCER span of a publish made inside fills with its own context
    (``traceparent``, ``tracestate``): the creation context of a message NATS did not confirm,
    which :mod:`lscloud.outbox` keeps with the event so its later publish and processing link to it."""
    carrier: dict[str, str] = {}
    token = otel_context.attach(otel_context.set_value(_CREATION_CARRIER, carrier))
    try:
        yield carrier
    finally:
        otel_context.detach(token)


@contextmanager
def _failures(span: trace.Span) -> Iterator[None]:
    """``error.type`` on a messaging span whose operation failed (Conditionally Required then):
    the exception's (:func:`error_type`), or ``_OTHER`` when the caller only set an ERROR status."""
    try:
        yield
    except BaseException as exc:
        if span.is_recording():
            span.set_attribute("error.type", error_type(exc))
        raise
    finally:
        if span.is_recording():
            status = getattr(span, "status", None)
            if status is not None and status.status_code is StatusCode.ERROR and \
                    "error.type" not in (getattr(span, "attributes", None) or {}):
                span.set_attribute("error.type", "_OTHER")


@contextmanager
def send_span(event: Mapping[str, Any], destination: str | None = None, *,
              tracer_: trace.Tracer | None = None) -> Iterator[trace.Span]:
    """PRODUCER span ``publish <subject>`` around publishing ``event`` (messaging semconv: the name
    is ``{messaging.operation.name} {destination}``); ``tracer_`` records it for another service of
    the process (:func:`service_tracer`).

    Its context is the message's creation context, which the publisher injects into the message's
    headers; an event that carries a creation context of its own (one published again from the
    outbox) keeps it, and the span links to it. Inside :func:`capture_creation` the span's context
    is also written to the captured dict."""
    dest = destination or _destination(event)
    attrs = _messaging_attributes("send", dest, event)
    created = creation_context(event)
    with (tracer_ or tracer()).start_as_current_span(
            f"{attrs['messaging.operation.name']} {dest}", kind=SpanKind.PRODUCER, attributes=attrs,
            links=(trace.Link(created),) if created is not None else None) as span:
        carrier = otel_context.get_value(_CREATION_CARRIER)
        if carrier is not None and created is None:
            _TRACE_CONTEXT.inject(carrier)   # the current context: this span
        with _failures(span):
            yield span


@contextmanager
def process_span(event: Mapping[str, Any], headers: Mapping[str, str] | None = None, *,
                 destination: str | None = None, consumer_group: str | None = None,
                 tracer_: trace.Tracer | None = None) -> Iterator[trace.Span]:
    """CONSUMER span ``process <subject>`` for handling ``event``, child of the producer's context.

    The parent comes from the ``traceparent`` in ``headers`` (NATS or HTTP), so the trace of the
    request that published the event continues here; when the current span already continues
    that trace (the SERVER span of an HTTP delivery), the CONSUMER span nests under it. When the
    event carries its own creation context (:func:`creation_context`: it went through the outbox,
    and was published again in another trace) the span links to it, unless that is its parent.
    A handler's exception sets ``error.type``.
    ``tracer_`` records the span for another service of the process (:func:`service_tracer`).
    """
    dest = destination or _destination(event)
    attrs = _messaging_attributes("process", dest, event)
    if consumer_group:
        attrs["messaging.consumer.group.name"] = consumer_group
    parent = extract(headers) if headers else None
    current = trace.get_current_span().get_span_context()
    if parent is not None:
        carried = trace.get_current_span(parent).get_span_context()
        if current.is_valid and (not carried.is_valid or current.trace_id == carried.trace_id):
            parent = None  # already inside the carried trace: keep the current span as parent
    links = None
    created = creation_context(event)
    if created is not None:
        above = current if parent is None else trace.get_current_span(parent).get_span_context()
        if (above.trace_id, above.span_id) != (created.trace_id, created.span_id):
            links = (trace.Link(created),)
    with (tracer_ or tracer()).start_as_current_span(f"process {dest}", context=parent, kind=SpanKind.CONSUMER,
                                                     attributes=attrs, links=links) as span:
        with _failures(span):
            yield span


# --- the local span log --------------------------------------------------------------------

def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """One span as the JSON object written to the trace file."""
    ctx = span.get_span_context()
    parent = span.parent
    attributes = {k: _plain(v) for k, v in (span.attributes or {}).items() if not _SENSITIVE_ATTR.match(k)}
    return {
        "trace_id": trace.format_trace_id(ctx.trace_id),
        "span_id": trace.format_span_id(ctx.span_id),
        "parent_span_id": trace.format_span_id(parent.span_id) if parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": attributes,
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "events": [{"name": e.name, "time_ns": e.timestamp,
                    "attributes": {k: _plain(v) for k, v in (e.attributes or {}).items()}} for e in span.events],
        "service": span.resource.attributes.get(SERVICE_NAME, "unknown"),
    }


_KIND_NAMES = {kind: kind.name for kind in SpanKind}
_STATUS_NAMES = {code: code.name for code in StatusCode}
# attribute name → whether it names a credential header (attribute names are few: a bounded memo)
_sensitive_names: dict[str, bool] = {}
# id(resource) → (resource, its service name): a process has one or two resources
_services: dict[int, tuple[Resource, str]] = {}


def _sensitive(name: str) -> bool:
    hit = _sensitive_names.get(name)
    if hit is None:
        hit = _SENSITIVE_ATTR.match(name) is not None
        if len(_sensitive_names) >= 4096:
            _sensitive_names.clear()
        _sensitive_names[name] = hit
    return hit


def _service(resource: Resource) -> str:
    entry = _services.get(id(resource))
    if entry is None or entry[0] is not resource:
        entry = (resource, resource.attributes.get(SERVICE_NAME, "unknown"))
        if len(_services) >= 64:
            _services.clear()
        _services[id(resource)] = entry
    return entry[1]


def span_json(span: ReadableSpan) -> bytes:
    """One line of the trace file: :func:`span_to_dict` of ``span`` as UTF-8 JSON, newline included.

    Built and encoded in one go (orjson, several times the standard encoder's speed) on the
    export thread; it parses to exactly what :func:`span_to_dict` gives
    (``tests/unit/test_telemetry.py`` holds the two equal).
    """
    import orjson  # here, not at start: it brings zoneinfo along (~7 ms), and starts are measured

    return _span_line(span, orjson)


def _span_line(span: ReadableSpan, orjson) -> bytes:
    ctx = span.context
    parent = span.parent
    status = span.status
    record = {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        "name": span.name,
        "kind": _KIND_NAMES[span.kind],
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": {k: v for k, v in _attributes_of(span).items() if not _sensitive(k)},
        "status": {"code": _STATUS_NAMES[status.status_code], "description": status.description},
        "events": [{"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
                   for e in _events_of(span)],
        "service": _service(span.resource),
    }
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # an integer beyond 64 bits, a lone surrogate: the standard encoder takes them
        return (json.dumps(span_to_dict(span), default=str) + "\n").encode("ascii")


WRITE_LAG_NS = 60 * 1_000_000_000
"""How long after a span ends its line may still be written to the span log (the batch processor
waits half a second, a busy process's export thread longer): readers of the log's end
(:func:`newest_traces`, :mod:`lscloud.local.trace_profile`) look this much further back, and a span
written later than that after its end may be left out of what they show."""

# a writer that opened the log just as another process rotated it opens it again; past this many
# rotations in a row (a bound smaller than a batch) it writes where it is
_OPEN_TRIES = 4

_exporters: weakref.WeakSet[JsonLinesSpanExporter] = weakref.WeakSet()
_held_at_fork: list[JsonLinesSpanExporter] = []


def _before_fork() -> None:
    # a child forked while an export holds the log's lock would keep the locked descriptor, unknown
    # to it, for as long as it lives, and every writer of the log would wait for it: no fork mid-write
    _held_at_fork[:] = list(_exporters)
    for exporter in _held_at_fork:
        exporter._lock.acquire()


def _after_fork() -> None:
    for exporter in _held_at_fork:
        exporter._lock.release()
    _held_at_fork.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON line per span to a file shared by every process of the local cloud, and
    keeps it bounded: a batch that would take the file past ``max_bytes`` first renames it to
    ``path.1`` (``.1`` to ``.2``, and so on up to ``keep``; the oldest goes) and starts a new one.
    Bounds default to :attr:`lscloud.config.Settings.trace_file_max_bytes` and ``trace_file_keep``.

    Each process opens the file for every batch and writes the batch in one go under an exclusive
    ``flock`` of it, so lines of several processes never interleave, even on a short write. The
    process that rotates holds that lock while it renames, and a writer that opened the file just
    before finds, once it has the lock, that the name now leads to another file and opens that one:
    nothing is written into a rotated file, and a reader sees whole lines (and, at the very end of
    the current file, perhaps a line being written).
    """

    def __init__(self, path: str | os.PathLike, max_bytes: int | None = None, keep: int | None = None):
        self.path = os.fspath(path)
        self.max_bytes = config.Settings.trace_file_max_bytes if max_bytes is None else max_bytes
        self.keep = config.Settings.trace_file_keep if keep is None else keep
        if self.max_bytes < 1 or self.keep < 1:
            raise ValueError(f"a span log needs max_bytes and keep of at least 1, got {self.max_bytes}, {self.keep}")
        self._lock = threading.Lock()
        _exporters.add(self)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        import orjson  # see span_json

        data = b"".join([_span_line(s, orjson) for s in spans])
        if not data:
            return SpanExportResult.SUCCESS
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            with self._lock:
                self._append(data)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _append(self, data: bytes) -> None:
        for attempt in range(_OPEN_TRIES):
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)   # released by the close
                except OSError:   # a file system without locks: lines may interleave, as they could before
                    pass
                held = os.fstat(fd)
                if attempt < _OPEN_TRIES - 1:
                    if not _names(self.path, held):
                        continue   # rotated by another process between our open and our lock
                    if held.st_size and held.st_size + len(data) > self.max_bytes:
                        self._rotate()
                        continue
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                return
            finally:
                os.close(fd)

    def _rotate(self) -> None:
        """Under the lock of the current file: make room for a new one."""
        for n in _rotated(self.path):
            if n > self.keep:   # kept by an earlier, larger ``keep``
                _remove(f"{self.path}.{n}")
        for n in range(self.keep - 1, 0, -1):
            try:
                os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
            except FileNotFoundError:
                pass
        os.replace(self.path, f"{self.path}.1")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _names(path: str, held: os.stat_result) -> bool:
    """Whether ``path`` still names the file ``held`` describes."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rotated(path: str | os.PathLike) -> list[int]:
    """The numbers of the rotated files beside the span log ``path`` (``path.1`` …), lowest first."""
    folder, name = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    prefix = name + "."
    return sorted(int(n[len(prefix):]) for n in names
                  if n.startswith(prefix) and n[len(prefix):].isascii() and n[len(prefix):].isdigit())


def trace_files(path: str | os.PathLike) -> list[str]:
    """The files of the span log ``path``, oldest first: its rotated ones (``path.N`` … ``path.1``),
    then ``path`` itself (whether or not they exist yet)."""
    path = os.fspath(path)
    return [f"{path}.{n}" for n in reversed(_rotated(path))] + [path]


def _open_log(path: str | os.PathLike) -> list[tuple[BinaryIO, int]]:
    """The span log's files, open, with their size now, oldest first.

    They are opened newest first, each file once: a rotation meanwhile moves a file that was opened
    under one name to the next, and what is open stays readable whatever its name becomes."""
    opened: list[tuple[BinaryIO, int]] = []
    seen = set()
    try:
        for name in reversed(trace_files(path)):
            try:
                fh = open(name, "rb")
            except FileNotFoundError:
                continue
            st = os.fstat(fh.fileno())
            if (st.st_dev, st.st_ino) in seen:
                fh.close()
                continue
            seen.add((st.st_dev, st.st_ino))
            opened.append((fh, st.st_size))
    except BaseException:
        for fh, _ in opened:
            fh.close()
        raise
    opened.reverse()
    return opened


def _lines(fh: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    """The lines of ``fh`` that begin in [start, end): what the file held when it was opened."""
    fh.seek(start)
    at = start
    for line in fh:
        if at >= end:
            return
        at += len(line)
        yield line


def _lines_backward(fh: BinaryIO, end: int, block: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """The lines of ``fh`` before ``end``, last first, each with the offset where it begins, read
    a block at a time from the end."""
    at, carry = end, b""
    while at > 0:
        step = min(block, at)
        at -= step
        fh.seek(at)
        chunk = fh.read(step) + carry
        parts = chunk.split(b"\n")
        carry = parts[0]   # its beginning is in the block before
        cursor = at + len(chunk)
        for part in reversed(parts[1:]):
            cursor -= len(part)
            yield cursor, part
            cursor -= 1
    if carry:
        yield 0, carry


def _span_in(line: bytes, loads) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        span = loads(line)
    except ValueError:
        try:   # the standard decoder takes what orjson refuses (an escaped lone surrogate)
            span = json.loads(line.decode("utf-8", errors="replace"))
        except ValueError:
            return None   # a line cut short by a killed process
    return span if isinstance(span, dict) and "trace_id" in span else None


def iter_trace_file(path: str | os.PathLike, trace_id: str | None = None) -> Iterator[dict[str, Any]]:
    """The spans of the span log ``path`` and its rotated files (of trace ``trace_id`` only, when
    given), oldest file first and in the order they were written, read one line at a time: memory
    stays that of a span, whatever the log's size. Damaged lines are skipped; lines written after
    the files were opened (on the first ``next``) are not read."""
    import orjson  # see span_json

    needle = trace_id.encode() if trace_id is not None else None
    files = _open_log(path)
    try:
        for fh, size in files:
            for line in _lines(fh, 0, size):
                if needle is not None and needle not in line:
                    continue   # most lines, when looking for one trace: not even parsed
                span = _span_in(line, orjson.loads)
                if span is not None and (trace_id is None or span["trace_id"] == trace_id):
                    yield span
    finally:
        for fh, _ in files:
            fh.close()


def read_trace_file(path: str | os.PathLike, trace_id: str | None = None) -> list[dict[str, Any]]:
    """The spans in the span log ``path`` and its rotated files (damaged lines skipped), oldest
    first: all in memory, so for one trace (``trace_id``) or a small log. A large one is read
    with :func:`iter_trace_file` or :func:`newest_traces`."""
    spans = list(iter_trace_file(path, trace_id))
    spans.sort(key=lambda s: s.get("start_ns") or 0)
    return spans


def newest_traces(path: str | os.PathLike, n: int) -> list[dict[str, Any]]:
    """The spans of the ``n`` traces of the span log ``path`` (with its rotated files) that started
    last, by their earliest span, oldest first.

    Read from the end: a span is written once it has ended, so going back, once a span ended
    :data:`WRITE_LAG_NS` before the ``n``-th latest start seen, none written before it belongs to a
    later trace or to one of those. That much is read twice (once for the traces' starts, then for
    their spans), whatever lies before it not at all: ``lscloud traces -n 2`` reads a minute of the
    log, not the gigabyte before it.
    """
    import orjson  # see span_json

    if n < 1:
        return []
    files = _open_log(path)
    try:
        starts: dict[str, int] = {}
        begin = _last_minutes(files, n, starts, orjson.loads)
        chosen = set(heapq.nlargest(n, starts, key=starts.__getitem__))
        spans = []
        for index in range(begin[0], len(files)):
            fh, size = files[index]
            for line in _lines(fh, begin[1] if index == begin[0] else 0, size):
                span = _span_in(line, orjson.loads)
                if span is not None and span["trace_id"] in chosen:
                    spans.append(span)
    finally:
        for fh, _ in files:
            fh.close()
    spans.sort(key=lambda s: s.get("start_ns") or 0)
    return spans


def _last_minutes(files: Sequence[tuple[BinaryIO, int]], n: int, starts: dict[str, int], loads) -> tuple[int, int]:
    """Read ``files`` back from their end, filling ``starts`` (trace id → earliest start), until
    what lies before cannot touch the ``n`` latest traces: where that is, (file index, offset)."""
    cutoff: int | None = None   # the n-th latest start, recomputed now and then: it may only be too high
    since = 0
    for index in range(len(files) - 1, -1, -1):
        fh, size = files[index]
        for offset, line in _lines_backward(fh, size):
            span = _span_in(line, loads)
            if span is None:
                continue
            start, end = span.get("start_ns"), span.get("end_ns")
            if isinstance(start, int):
                known = starts.get(span["trace_id"])
                if known is None or start < known:
                    starts[span["trace_id"]] = start
            if len(starts) < n or not isinstance(end, int):
                continue
            since += 1
            if cutoff is None or since >= 256:
                cutoff, since = heapq.nlargest(n, starts.values())[-1], 0
            if end + WRITE_LAG_NS < cutoff:
                cutoff, since = heapq.nlargest(n, starts.values())[-1], 0   # it may have come down
                if end + WRITE_LAG_NS < cutoff:
                    return index, offset
    return 0, 0


def format_trace_tree(spans: Sequence[Mapping[str, Any]]) -> str:
    """Spans as indented trees, one per trace, children under their parent in start order."""
    by_trace: dict[str, list[Mapping[str, Any]]] = {}
    for s in sorted(spans, key=lambda s: s.get("start_ns") or 0):
        by_trace.setdefault(s["trace_id"], []).append(s)
    lines: list[str] = []
    for trace_id, members in by_trace.items():
        ids = {s["span_id"] for s in members}
        children: dict[str | None, list[Mapping[str, Any]]] = {}
        for s in members:
            parent = s.get("parent_span_id")
            children.setdefault(parent if parent in ids else None, []).append(s)
        if lines:
            lines.append("")
        lines.append(f"trace {trace_id}")

        def walk(span: Mapping[str, Any], depth: int) -> None:
            start, end = span.get("start_ns"), span.get("end_ns")
            took = f"{(end - start) / 1e6:.1f} ms" if start and end else "?"
            status = (span.get("status") or {}).get("code", "UNSET")
            attributes = span.get("attributes") or {}
            # trace files written before the S3 client's spans took the stable name hold the older one
            http_status = attributes.get("http.response.status_code", attributes.get("http.status_code"))
            extra = f" {http_status}" if http_status is not None else ""
            flag = " ERROR" if status == "ERROR" else ""
            lines.append(f"{'  ' * (depth + 1)}{span['name']}{store_table(attributes)} [{span.get('service', '?')}] "
                         f"{span.get('kind', '?')}{extra} {took}{flag}")
            for child in children.get(span["span_id"], []):
                walk(child, depth + 1)

        for root in children.get(None, []):
            walk(root, 0)
    return "\n".join(lines)


STORE_TABLE = "lscloud.store.table"
"""The span attribute naming the table an S3 listing reads (:mod:`lscloud.store.s3http`): a listing
names no key, and the S3 conventions have no attribute for its prefix."""


def store_table(attributes: Mapping[str, Any]) -> str:
    """A span's label for the stored item it touched, its table: an object key starts with it
    (:mod:`lscloud.store.keys`), so a trace tells which six PutObjects a request made. The rest
    of the key (pseudonyms, ids) stays out of the tree. A listing names its table in its own
    attribute (:data:`STORE_TABLE`)."""
    key = attributes.get("aws.s3.key")
    if isinstance(key, str) and "/" in key:
        return f" {key.partition('/')[0]}"
    table = attributes.get(STORE_TABLE)
    return f" {table}" if isinstance(table, str) and table else ""


def mark_error(span: trace.Span, description: str) -> None:
    """Set ERROR status on ``span`` with a short reason (never a secret)."""
    span.set_status(Status(StatusCode.ERROR, description))
