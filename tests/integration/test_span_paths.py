"""A citizen's number in the identity function's path, valid or mistyped, reaches no exported span.

The identity function served as Knative serves it, behind the local gateway, on the real object
store: ``GET /identity/v1/cccd/<number>`` for a valid CCCD, two with one digit off (no province
003; a birth year of 2399) and one a digit short. The redaction's plausibility check alone let the
mistyped ones through in both SERVER spans' ``url.path``.
"""

from __future__ import annotations

import json
import re
import os

import httpx
import pytest
from opentelemetry import trace

from asgi_support import Served  # tests/integration helper module
from waiting import wait_for  # tests/integration helper module
from lscloud import telemetry
from lscloud.function_server import FunctionApp
from lscloud.loading import load_function
from lscloud.local.gateway import Gateway, GatewayServer, Route
from lscloud.local.servers import free_port

pytestmark = pytest.mark.integration

NUMBERS = ["020095001234", "003095001234", "020899001234", "02009500123", "0200950012345"]


@pytest.fixture
def identity_behind_the_gateway(settings, keys, monkeypatch):
    from conftest import ROOT

    instance = load_function(ROOT / "functions" / "identity").new()
    for name, value in settings.replace(service="identity", jwt_public_key=keys[1]).env_vars().items():
        monkeypatch.setenv(name, value)   # func-python's lifespan start reads the environment
    served = Served(FunctionApp(instance)).start()
    gateway = None
    try:
        httpx.get(served.url + "/health/readiness", timeout=30).raise_for_status()
        gateway = GatewayServer(Gateway(lambda: {"identity": Route("identity", served.port, "ready")},
                                        read_timeout_s=15, max_body_bytes=1 << 20), "127.0.0.1", free_port()).start()
        yield f"http://127.0.0.1:{gateway.port}"
    finally:
        if gateway is not None:
            gateway.stop()
        served.stop()


def test_no_number_sent_to_the_cccd_route_is_in_an_exported_span(identity_behind_the_gateway):
    spans = telemetry.spans_in_memory("span-paths-test")   # exported as OTLP is: redacted
    for number in NUMBERS:
        trace_id = os.urandom(16).hex()
        r = httpx.get(f"{identity_behind_the_gateway}/identity/v1/cccd/{number}",
                      headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"}, timeout=30)
        assert r.status_code in (200, 422), r.text

        def both():
            mine = [s for s in spans.get_finished_spans() if s.context.trace_id == int(trace_id, 16)
                    and s.kind == trace.SpanKind.SERVER]
            return mine if len(mine) == 2 else []

        gateway_span, function_span = sorted(wait_for(both, f"both SERVER spans of {number}"),
                                             key=lambda s: "lscloud.function" not in s.attributes)
        # the function knows its route takes a person's number: the template, whatever was sent
        assert function_span.attributes["http.route"] == "/v1/cccd/<number>"
        assert function_span.attributes["url.path"] == "/v1/cccd/<number>", number
        # the gateway knows no routes: the redaction's net, plausible or not, a digit short or long
        assert re.fullmatch(r"/identity/v1/cccd/\[(cccd|phone|number)\]", gateway_span.attributes["url.path"]), number
        assert len(number) != 12 or gateway_span.attributes["url.path"].endswith("[cccd]")
        dumped = json.dumps([{**s.attributes, "name": s.name} for s in spans.get_finished_spans()
                             if s.context.trace_id == int(trace_id, 16)], default=str)
        assert number[:11] not in dumped and number[-11:] not in dumped
