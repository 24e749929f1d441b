"""A function's containerConcurrency and timeoutSeconds: one derivation (lscloud.manifest) for the
Knative Service infra renders and for the local gateway, which holds each function to the same
bounds (lscloud.local.gateway), so `lscloud up` refuses and queues where the cluster would."""

from __future__ import annotations

import pytest

pytest.importorskip("pulumi")

from lscloud import manifest  # noqa: E402
from lscloud.local.routes import Route  # noqa: E402

from components import function as fn  # noqa: E402
from components.settings import FunctionDefaults  # noqa: E402

PLATFORM = fn.PlatformEndpoints(
    namespace="lscloud", s3_endpoint="http://minio:9000", nats_url="nats://nats:4222", stream="LSCLOUD",
    otlp_endpoint="http://otel:4318", bucket_prefix="lscloud", jwt_issuer="https://id.example", jwt_audience="lscloud")


def parse(limits: str = "") -> manifest.Manifest:
    text = "name: held\nruntime: python\n"
    if limits:
        text += f"deploy:\n  options:\n    resources:\n      limits: {limits}\n"
    return manifest.parse(text, "/x/functions/held/func.yaml")


def test_the_platforms_defaults_are_the_clusters():
    d = FunctionDefaults()
    assert d.containerConcurrency == manifest.PLATFORM_CONTAINER_CONCURRENCY
    assert d.timeoutSeconds == manifest.PLATFORM_TIMEOUT_S


@pytest.mark.parametrize("limits, defaults, expected", [
    ("{cpu: '1', concurrency: 20}", FunctionDefaults(), 20),
    ("{concurrency: 0}", FunctionDefaults(), 0),          # Knative's "no limit"
    ("{cpu: '1'}", FunctionDefaults(), manifest.PLATFORM_CONTAINER_CONCURRENCY),
    ("", FunctionDefaults(containerConcurrency=7), 7),     # a stack's own default
])
def test_the_service_and_the_gateway_bound_a_function_alike(limits, defaults, expected):
    m = parse(limits)
    spec = fn.render_service(m, PLATFORM, image="i", defaults=defaults)["spec"]["template"]["spec"]
    assert spec["containerConcurrency"] == expected == manifest.container_concurrency(m, defaults.containerConcurrency)
    assert "concurrency" not in spec["containers"][0]["resources"]["limits"]   # Knative's, not a Kubernetes resource
    assert spec["timeoutSeconds"] == defaults.timeoutSeconds
    if defaults == FunctionDefaults():   # the local cloud runs with the platform's defaults
        route = Route.of(m, 8080)
        assert (route.concurrency, route.timeout_s) == (spec["containerConcurrency"], spec["timeoutSeconds"])


@pytest.mark.parametrize("value", ["-1", "lots", "2.5", "true"])
def test_a_concurrency_that_is_no_whole_number_stops_at_the_manifest(value):
    with pytest.raises(manifest.ManifestError) as refused:
        parse(f"{{concurrency: {value}}}")
    assert refused.value.field == "/deploy/options/resources/limits/concurrency"
    bare = parse()
    with pytest.raises(fn.RenderError, match="concurrency"):   # a stack default no better
        fn.render_service(bare, PLATFORM, image="i", defaults=FunctionDefaults(containerConcurrency=-1))
