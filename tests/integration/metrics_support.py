"""Reading metrics back in a test, from a meter of the test's own.

The process's provider (``lscloud.telemetry``) holds every series the whole suite made, and the SDK
keeps at most 2,000 attribute sets per instrument: past that, a new set (a test's fresh bucket,
its proxy's port) is folded into an overflow series, and a test reading its own samples from the
process's provider passes alone and fails in the full suite. :func:`own_meter` gives an
:class:`lscloud.metrics.Instruments` a private provider for the test's duration."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader


def own_meter(monkeypatch, instruments) -> InMemoryMetricReader:
    """Make ``instruments`` (a :class:`lscloud.metrics.Instruments`) create its instruments from a
    fresh provider until the test ends; the reader to collect them with."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    monkeypatch.setattr(instruments, "_made", instruments._create(meter))
    return reader


def samples(reader: InMemoryMetricReader, name: str, unit: str | None = None) -> dict[frozenset, int]:
    """The histogram ``name``'s samples so far, counted by attribute set."""
    data = reader.get_metrics_data()
    out: dict[frozenset, int] = {}
    for rm in (data.resource_metrics if data else []):
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    if unit is not None:
                        assert metric.unit == unit
                    for point in metric.data.data_points:
                        key = frozenset(point.attributes.items())
                        out[key] = out.get(key, 0) + point.count
    return out
