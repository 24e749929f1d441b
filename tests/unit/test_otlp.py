"""The OTLP exporters are made on their first export (lscloud.otlp), and prefer what OTLP prefers.

The export itself, to a real OTLP/HTTP receiver through a whole local cloud, is held by
tests/e2e/test_trace_continuity.py (spans) and tests/e2e/test_privacy_scan.py (spans and metrics).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.environment_variables import (OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION,
                                                     OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE)

from lscloud import otlp

ENDPOINT = "http://127.0.0.1:9/v1/metrics"


class Recorder:
    """A stand-in delegate that records what reaches it (the real one would need a receiver)."""

    def __init__(self):
        self.calls: list[tuple] = []

    def export(self, data, **kwargs):
        self.calls.append(("export", data, kwargs))
        return "sent"

    def shutdown(self, **kwargs):
        self.calls.append(("shutdown", kwargs))

    def force_flush(self, timeout_millis=0):
        self.calls.append(("force_flush", timeout_millis))
        return False


class Factory:
    def __init__(self):
        self.made: list[Recorder] = []
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.made.append(Recorder())
            return self.made[-1]


def test_span_exporter_is_made_on_the_first_export_and_only_once():
    make = Factory()
    exporter = otlp.DeferredSpanExporter(make)
    assert exporter.force_flush(5) is True       # nothing made, nothing to flush
    assert make.made == []

    barrier = threading.Barrier(8)
    results = []

    def export(i):
        barrier.wait()
        results.append(exporter.export([f"span {i}"]))

    threads = [threading.Thread(target=export, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(make.made) == 1
    assert results == ["sent"] * 8
    assert sorted(c[1][0] for c in make.made[0].calls) == [f"span {i}" for i in range(8)]

    assert exporter.force_flush(7) is False       # the delegate's answer
    exporter.shutdown()
    assert make.made[0].calls[-2:] == [("force_flush", 7), ("shutdown", {})]


def test_span_exporter_shut_down_before_any_export_makes_nothing():
    make = Factory()
    exporter = otlp.DeferredSpanExporter(make)
    exporter.shutdown()
    assert make.made == []


def test_metric_exporter_is_made_on_the_first_export():
    make = Factory()
    exporter = otlp.DeferredMetricExporter(make)
    exporter.shutdown(timeout_millis=5)
    assert exporter.force_flush() is True
    assert make.made == []
    assert exporter.export("data", timeout_millis=3) == "sent"
    exporter.shutdown(timeout_millis=4)
    assert make.made[0].calls == [("export", "data", {"timeout_millis": 3}), ("shutdown", {"timeout_millis": 4})]


def test_the_sdk_s_metric_reader_drives_the_deferred_exporter():
    """As the SDK calls it: the reader's collection makes the exporter and exports to it; the
    provider's shutdown reaches it (the reader passes ``timeout=``, not ``timeout_millis=``)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricsData, PeriodicExportingMetricReader

    make = Factory()
    reader = PeriodicExportingMetricReader(otlp.DeferredMetricExporter(make), export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    assert make.made == []
    provider.get_meter("test").create_counter("lscloud.test.things").add(3)
    assert provider.force_flush()
    (exported,) = [c for c in make.made[0].calls if c[0] == "export"]
    assert isinstance(exported[1], MetricsData)
    points = [p for rm in exported[1].resource_metrics for sm in rm.scope_metrics for m in sm.metrics
              if m.name == "lscloud.test.things" for p in m.data.data_points]
    assert [p.value for p in points] == [3]
    provider.shutdown()
    assert make.made[0].calls[-1][0] == "shutdown" and "timeout" in make.made[0].calls[-1][1]
    assert len(make.made) == 1


def _preferences(exporter):
    aggregation = {kind: (type(a), getattr(a, "_boundaries", None))
                   for kind, a in exporter._preferred_aggregation.items()}
    return exporter._preferred_temporality, aggregation


def test_deferred_metric_exporter_prefers_what_otlp_prefers_by_default(monkeypatch):
    """A metric reader takes its exporter's preferences when it is made; if the deferred exporter's
    differed from OTLPMetricExporter's, an upgrade of the SDK would change what is exported."""
    monkeypatch.delenv(OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, raising=False)
    monkeypatch.delenv(OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION, raising=False)
    deferred = otlp.metric_exporter(ENDPOINT)
    assert isinstance(deferred, otlp.DeferredMetricExporter)
    assert _preferences(deferred) == _preferences(OTLPMetricExporter(endpoint=ENDPOINT))


@pytest.mark.parametrize("variable, value", [(OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, "delta"),
                                             (OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION,
                                              "base2_exponential_bucket_histogram")])
def test_a_set_preference_makes_the_otlp_exporter_at_once(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    exporter = otlp.metric_exporter(ENDPOINT)
    assert isinstance(exporter, OTLPMetricExporter)
    assert _preferences(exporter) == _preferences(OTLPMetricExporter(endpoint=ENDPOINT))


def test_setup_with_an_otlp_endpoint_imports_no_otlp_exporter():
    """The start of a function in the cluster (endpoint set) does not import the exporters."""
    code = ("import json, sys\n"
            "from lscloud import config, telemetry\n"
            "telemetry.setup(config.load())\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('opentelemetry.exporter',"
            " 'opentelemetry.proto', 'google.protobuf', 'requests')))))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LSCLOUD_"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_SERVICE_NAME="probe")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_the_makers_make_otlp_exporters_to_the_endpoint(monkeypatch):
    monkeypatch.delenv(OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, raising=False)
    monkeypatch.delenv(OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION, raising=False)
    spans = otlp.span_exporter("http://127.0.0.1:9/v1/traces")._delegate()
    assert isinstance(spans, OTLPSpanExporter) and spans._endpoint == "http://127.0.0.1:9/v1/traces"
    metrics = otlp.metric_exporter(ENDPOINT)._delegate()
    assert isinstance(metrics, OTLPMetricExporter) and metrics._endpoint == ENDPOINT
