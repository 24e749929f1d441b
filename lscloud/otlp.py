"""OTLP/HTTP exporters that are built on their first export, not when the process starts.

Every function in the cluster exports to OTLP (``OTEL_EXPORTER_OTLP_ENDPOINT``), and importing
the OTLP/HTTP exporters (``requests``, ``protobuf`` and the generated OTLP messages) added
37-55 ms and 9 MB to a function's cold start, measured with ``lscloud bench coldstart`` and the
endpoint set: a fifth of the start of the directory function. Nothing needs them before the first
export, which runs on the exporter's own thread (the span processor's worker, the metric reader's
timer) seconds after the process is ready, so that is where they are imported now.

:class:`DeferredSpanExporter` and :class:`DeferredMetricExporter` wrap a factory of the real
exporter and call it once, on the first ``export``; a shutdown or flush before that has nothing
to send. A metric reader asks its exporter for the temporality and aggregation it prefers when the
reader is made, at start, so :func:`metric_exporter` defers only when the two environment
variables that change OTLP's preference are unset, and gives exactly what the OTLP exporter
prefers by default (``tests/unit/test_otlp.py`` holds the two equal); with either variable set it
builds the OTLP exporter at once, which reads them itself.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from . import otel_import  # noqa: F401 - first: the SDK without psutil (see there)

from opentelemetry.sdk.environment_variables import (OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION,
                                                     OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE)
from opentelemetry.sdk.metrics import (Counter, Histogram, ObservableCounter, ObservableGauge,
                                       ObservableUpDownCounter, UpDownCounter)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import config


class _Once:
    """The exporter ``make`` returns, made on the first call from whichever thread calls first."""

    def __init__(self, make: Callable):
        self._make = make
        self._lock = threading.Lock()
        self.made = None

    def __call__(self):
        if self.made is None:
            with self._lock:
                if self.made is None:
                    self.made = self._make()
        return self.made


class DeferredSpanExporter(SpanExporter):
    """A span exporter that makes its delegate (``make()``) on the first export."""

    def __init__(self, make: Callable[[], SpanExporter]):
        self._delegate = _Once(make)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._delegate().export(spans)

    def shutdown(self) -> None:
        if self._delegate.made is not None:
            self._delegate.made.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        made = self._delegate.made
        return True if made is None else made.force_flush(timeout_millis)


def otlp_default_temporality() -> dict[type, AggregationTemporality]:
    """What ``OTLPMetricExporter`` prefers with ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``
    unset: cumulative for every instrument."""
    return {kind: AggregationTemporality.CUMULATIVE for kind in
            (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge)}


def otlp_default_aggregation() -> dict:
    """What ``OTLPMetricExporter`` prefers with ``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``
    unset: explicit-bucket histograms."""
    return {Histogram: ExplicitBucketHistogramAggregation()}


class DeferredMetricExporter(MetricExporter):
    """A metric exporter that makes its delegate (``make()``) on the first export; it prefers what the
    OTLP exporter prefers by default (see the module docstring)."""

    def __init__(self, make: Callable[[], MetricExporter]):
        super().__init__(preferred_temporality=otlp_default_temporality(),
                         preferred_aggregation=otlp_default_aggregation())
        self._delegate = _Once(make)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        return self._delegate().export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        made = self._delegate.made
        return True if made is None else made.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        if self._delegate.made is not None:
            self._delegate.made.shutdown(timeout_millis=timeout_millis, **kwargs)


def _otlp_span_exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint)


def _otlp_metric_exporter(endpoint: str) -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=endpoint)


def span_exporter(endpoint: str) -> SpanExporter:
    """The OTLP/HTTP span exporter to ``endpoint`` (``…/v1/traces``), made on its first export."""
    return DeferredSpanExporter(lambda: _otlp_span_exporter(endpoint))


def metric_exporter(endpoint: str) -> MetricExporter:
    """The OTLP/HTTP metric exporter to ``endpoint`` (``…/v1/metrics``): made on its first export
    unless the environment sets OTLP's temporality or histogram preference (then at once)."""
    env = config.environ()
    if any(env.get(v) for v in (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
                                OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION)):
        return _otlp_metric_exporter(endpoint)
    return DeferredMetricExporter(lambda: _otlp_metric_exporter(endpoint))
