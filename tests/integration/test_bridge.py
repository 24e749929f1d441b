"""The JetStream → broker bridge against a real nats-server and a stand-in for a broker ingress."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from lscloud import config, events, telemetry
from lscloud.bridge import Bridge, BridgeConfig, load_bridge_config
from lscloud.bus import Bus, SyncBus, delete_consumer
from lscloud.delivery import DLQ_SUBJECTS, dlq_stream, read_dlq
from lscloud.local.servers import free_port
from waiting import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SUBMITTED = "vn.langson.border.declaration.submitted.v1"
SUBMITTED_V2 = "vn.langson.border.declaration.submitted.v2"  # same subject, not configured
CLEARED = "vn.langson.border.declaration.cleared.v1"
ARRIVED = "vn.langson.border.truck.arrived.v1"
INGRESS_PATH = "/lscloud/default"  # what the MT broker's ingress URL looks like
FAST = dict(backoff=(0.05, 0.1), pull_wait_s=0.5)


class BrokerIngress:
    """Answers like a Knative broker ingress (202 Accepted), or from a script of statuses."""

    def __init__(self, delay_s: float = 0.0):
        self.deliveries: list[dict] = []
        self.started = threading.Event()  # a request arrived (before the delay)
        self.script: list[int] = []
        self.delay_s = delay_s
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.started.set()
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                with outer.lock:
                    outer.deliveries.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                             "body": body})
                    status = outer.script.pop(0) if outer.script else 202
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{INGRESS_PATH}"

    def got(self) -> list[dict]:
        with self.lock:
            return list(self.deliveries)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def create_streams(settings) -> None:
    """What the platform's stream Job does in the cluster (the bridge never creates streams)."""
    b = SyncBus(settings).start()
    try:
        b.ensure_stream()
        b.ensure_stream(dlq_stream(settings), DLQ_SUBJECTS)
    finally:
        b.close()


def consumer_state(settings, durable: str = "bridge-default"):
    async def run():
        bus = Bus(settings, create_stream=False)
        await bus.connect()
        try:
            return await bus.js.consumer_info(settings.stream, durable)
        finally:
            await bus.close()

    return asyncio.run(run())


def settled(settings, last_seq: int, durable: str = "bridge-default") -> bool:
    """The consumer acknowledged (or dropped) every message of its subjects up to ``last_seq``."""
    info = consumer_state(settings, durable)
    return info.ack_floor.stream_seq >= last_seq and info.num_ack_pending == 0 and info.num_pending == 0


def consumer_names(settings) -> list[str]:
    async def run():
        bus = Bus(settings, create_stream=False)
        await bus.connect()
        try:
            return sorted(c.name for c in await bus.js.consumers_info(settings.stream))
        finally:
            await bus.close()

    return asyncio.run(run())


def health(port: int, path: str) -> tuple[int, dict]:
    r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    return r.status_code, r.json()


@pytest.fixture
def ingress():
    i = BrokerIngress()
    yield i
    i.close()


@pytest.fixture
def bus(settings):
    b = SyncBus(settings).start()
    yield b
    b.close()


@pytest.fixture(scope="module")
def tracing():
    telemetry.setup(config.Settings(service="bridge-test"))


@pytest.fixture
def bridge_for(settings):
    started = []

    def make(ingress_url: str, types=(SUBMITTED,), *, streams: bool = True, **kw) -> Bridge:
        if streams:
            create_streams(settings)
        cfg = BridgeConfig(sink=ingress_url, types=tuple(types), port=0, max_deliveries=kw.pop("max_deliveries", 3),
                           timeout_s=kw.pop("timeout_s", 5), token_file=kw.pop("token_file", "/nonexistent/oidc/token"))
        # as main() does: the bridge's spans are service "bridge"
        b = Bridge(settings.replace(service="bridge"), cfg, host="127.0.0.1", retry_delays=(0.1,),
                   **{**FAST, **kw}).start()
        started.append(b)
        if streams:  # the consumer starts at new events: publish only once it exists
            wait_for(lambda: ready(b), "readiness")
        return b

    yield make
    for b in started:
        b.stop()
        assert not b.dispatcher.running


def ready(b: Bridge) -> bool:
    return health(b.port, "/health/readiness")[0] == 200


# --- forwarding -----------------------------------------------------------------------------------

def test_forwards_in_binary_mode_continuing_the_trace(settings, ingress, bus, bridge_for, tracing):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    telemetry.use_span_exporter(spans)
    b = bridge_for(ingress.url)
    ev = events.new_event(SUBMITTED, "/border", {"plate": "12C-345.67", "cửa khẩu": "Hữu Nghị"}, subject="d-1")
    with telemetry.tracer().start_as_current_span("POST /v1/declarations"):
        trace_id = telemetry.current_trace_id()
        bus.publish(ev)
    (got,) = wait_for(ingress.got, "delivery to the broker")
    h = got["headers"]
    assert got["path"] == INGRESS_PATH
    assert h["ce-id"] == ev["id"] and h["ce-type"] == SUBMITTED and h["ce-specversion"] == "1.0"
    assert h["ce-source"] == "/border" and h["ce-subject"] == "d-1"
    assert h["content-type"] == "application/json"
    assert events.from_http(h, got["body"]) == ev
    assert h["traceparent"].split("-")[1] == trace_id
    assert "authorization" not in h  # no OIDC token mounted (authentication-oidc off): none presented
    wait_for(lambda: b.dispatcher.stats.delivered == 1, "ack")
    # the bridge's own spans: in the publisher's trace, service "bridge", the POST is the broker's parent
    mine = wait_for(lambda: [sp for sp in spans.get_finished_spans()
                             if sp.resource.attributes.get("service.name") == "bridge"
                             and f"{sp.context.trace_id:032x}" == trace_id], "the bridge's spans")
    by_name = {sp.name: sp for sp in mine}
    assert {"process lscloud.border.declaration.submitted", "POST"} <= set(by_name)
    post = by_name["POST"]
    assert post.parent.span_id == by_name["process lscloud.border.declaration.submitted"].context.span_id
    assert h["traceparent"].split("-")[2] == f"{post.context.span_id:016x}"
    assert read_dlq(settings) == []


def test_presents_the_oidc_token_knative_mounts(settings, ingress, bus, bridge_for, tmp_path):
    """With authentication-oidc, Knative mounts a token for the broker's audience into the SinkBinding's
    subject; the bridge reads it for every POST (it is refreshed in place) and presents it."""
    token_file = tmp_path / "oidc" / "token"
    token_file.parent.mkdir()
    token_file.write_text("first-token\n")
    b = bridge_for(ingress.url, token_file=str(token_file))
    bus.publish(events.new_event(SUBMITTED, "/border", {"n": 1}))
    wait_for(lambda: b.dispatcher.stats.delivered == 1, "the first delivery")
    token_file.write_text("refreshed-token")
    bus.publish(events.new_event(SUBMITTED, "/border", {"n": 2}))
    wait_for(lambda: b.dispatcher.stats.delivered == 2, "the second delivery")
    assert [d["headers"]["authorization"] for d in ingress.got()] == ["Bearer first-token", "Bearer refreshed-token"]


def test_only_the_configured_types_are_forwarded(settings, ingress, bus, bridge_for):
    b = bridge_for(ingress.url, types=(SUBMITTED, ARRIVED))
    for t in (CLEARED, SUBMITTED_V2, ARRIVED, SUBMITTED):
        bus.publish(events.new_event(t, "/border", {"t": t}))
    marker = events.new_event(SUBMITTED, "/border", {"marker": True})
    last = bus.publish(marker)
    # the consumer settled everything up to the marker: nothing published before it can still come
    wait_for(lambda: settled(settings, last), "the consumer to settle the stream up to the marker")
    assert b.dispatcher.stats.skipped == 1   # v2 on the same subject: seen, not forwarded
    got = [d["headers"]["ce-type"] for d in ingress.got()]
    assert sorted(got) == sorted([SUBMITTED, ARRIVED, SUBMITTED])
    assert marker["id"] in {d["headers"]["ce-id"] for d in ingress.got()}


def test_503_then_202_is_retried(settings, ingress, bus, bridge_for):
    ingress.script = [503, 429, 202]
    b = bridge_for(ingress.url)
    ev = events.new_event(SUBMITTED, "/border", {"n": 1})
    bus.publish(ev)
    wait_for(lambda: b.dispatcher.stats.delivered == 1, "delivery after retries")
    assert [d["headers"]["ce-id"] for d in ingress.got()] == [ev["id"]] * 3
    assert b.dispatcher.stats.retried == 2
    assert read_dlq(settings) == []


def test_400_goes_to_the_dead_letter_stream_at_once(settings, ingress, bus, bridge_for):
    ingress.script = [400]
    b = bridge_for(ingress.url)
    ev = events.new_event(SUBMITTED, "/border", {"bad": True})
    bus.publish(ev)
    wait_for(lambda: b.dispatcher.stats.dead_lettered == 1, "dead letter")
    (dead,) = read_dlq(settings)
    assert dead["event"] == ev and dead["status"] == 400 and dead["deliveries"] == 1
    assert dead["subscription"]["function"] == "bridge" and dead["subscription"]["name"] == "default"
    assert dead["subscription"]["url"] == ingress.url
    assert dead["dlq_subject"] == "lscloud-dlq.bridge.default"
    assert len(ingress.got()) == 1


def test_5xx_after_the_last_attempt_is_dead_lettered(settings, ingress, bus, bridge_for):
    ingress.script = [500, 500]
    b = bridge_for(ingress.url, max_deliveries=2)
    bus.publish(events.new_event(SUBMITTED, "/border", {"n": 2}))
    wait_for(lambda: b.dispatcher.stats.dead_lettered == 1, "dead letter after retries")
    assert read_dlq(settings)[0]["status"] == 500 and len(ingress.got()) == 2


# --- health and lifecycle ---------------------------------------------------------------------------

def test_not_ready_until_the_platform_created_the_streams(settings, ingress, bridge_for):
    b = bridge_for(ingress.url, streams=False)
    status, body = health(b.port, "/health/readiness")
    assert status == 503 and body["status"] == "unavailable"
    wait_for(lambda: "does not exist" in health(b.port, "/health/readiness")[1].get("detail", ""), "the reason")
    assert health(b.port, "/health/liveness")[0] == 200  # waiting is not dead
    create_streams(settings)
    wait_for(lambda: ready(b), "readiness once the streams exist")
    info = consumer_state(settings)
    assert info.config.filter_subject == events.subject_for(SUBMITTED)
    assert health(b.port, "/nope")[0] == 404


def test_a_deleted_consumer_is_made_again(settings, ingress, bus, bridge_for):
    b = bridge_for(ingress.url)

    delete_consumer(settings, settings.stream, "bridge-default")
    status, body = health(b.port, "/health/readiness")
    # the dispatcher recreates a vanished consumer by itself: not ready until it did
    assert status == 200 or "bridge-default" in body["detail"]
    wait_for(lambda: ready(b), "readiness once the consumer is back")
    bus.publish(events.new_event(SUBMITTED, "/border", {"after": "recreate"}))
    wait_for(lambda: len(ingress.got()) == 1, "delivery through the new consumer")


def test_no_types_forwards_nothing_and_stays_ready(settings, ingress, bus, bridge_for):
    b = bridge_for(ingress.url, types=())
    assert bus.publish(events.new_event(SUBMITTED, "/border", {"n": 3})) >= 1
    assert ready(b) and b.dispatcher.subscriptions == []
    # no consumer exists on the stream, so nothing can ever be delivered
    assert consumer_names(settings) == [] and ingress.got() == []


def test_stop_is_clean_and_leaves_nothing_unacked(settings, ingress, bus, bridge_for):
    b = bridge_for(ingress.url)
    for i in range(5):
        bus.publish(events.new_event(SUBMITTED, "/border", {"i": i}))
    wait_for(lambda: b.dispatcher.stats.delivered == 5, "deliveries")
    b.stop()
    assert not b.dispatcher.running
    assert health_down(b.port)
    info = consumer_state(settings)
    assert info.num_ack_pending == 0 and info.num_pending == 0


def health_down(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/health/liveness", timeout=1)
    except httpx.HTTPError:
        return True
    return False


def test_config_from_the_environment():
    cfg = load_bridge_config({"K_SINK": "http://broker-ingress.knative-eventing.svc.cluster.local/lscloud/default",
                              "LSCLOUD_BRIDGE_TYPES": f" {SUBMITTED},{ARRIVED},,{SUBMITTED} "})
    assert cfg.types == tuple(sorted((SUBMITTED, ARRIVED)))  # deduplicated, blanks dropped
    assert cfg.port == 8080 and cfg.broker == "default" and cfg.max_deliveries == 5
    assert cfg.token_file == "/oidc/token"  # where Knative mounts the SinkBinding subject's OIDC token
    sub = cfg.subscription()
    assert sub.durable == "bridge-default" and sub.url == cfg.sink
    assert load_bridge_config({"K_SINK": "http://x/y"}).subscription() is None
    for env, message in (({}, "K_SINK is required"), ({"K_SINK": "broker"}, "K_SINK must be"),
                         ({"K_SINK": "http://x", "LSCLOUD_BRIDGE_TYPES": "not a type!"}, "LSCLOUD_BRIDGE_TYPES"),
                         ({"K_SINK": "http://x", "PORT": "http"}, "PORT"),
                         ({"K_SINK": "http://x", "LSCLOUD_BRIDGE_BROKER": "Bad_Broker"}, "LSCLOUD_BRIDGE_BROKER"),
                         ({"K_SINK": "http://x", "LSCLOUD_BRIDGE_TOKEN_FILE": "oidc/token"}, "LSCLOUD_BRIDGE_TOKEN_FILE")):
        with pytest.raises(config.ConfigError, match=message):
            load_bridge_config(env)


# --- the real process: python -m lscloud.bridge ----------------------------------------------------

def start_process(settings, ingress_url: str, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LSCLOUD_", "OTEL_", "K_"))}
    env.update({k: v for k, v in settings.env_vars().items() if k != "K_SERVICE"})
    env.update({"K_SINK": ingress_url, "LSCLOUD_BRIDGE_TYPES": SUBMITTED, "PORT": str(port),
                "LSCLOUD_BRIDGE_TIMEOUT_S": "5", "PYTHONPATH": str(REPO)})
    return subprocess.Popen([sys.executable, "-m", "lscloud.bridge"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigterm_finishes_the_delivery_in_flight_and_acks_it(settings, bus, tracing):
    create_streams(settings)
    slow = BrokerIngress(delay_s=1.5)
    port = free_port()
    proc = start_process(settings, slow.url, port)
    try:
        wait_for(lambda: proc.poll() is None and _ready_port(port), "the process to be ready")
        ev = events.new_event(SUBMITTED, "/border", {"in": "flight"})
        with telemetry.tracer().start_as_current_span("publish"):
            trace_id = telemetry.current_trace_id()
            bus.publish(ev)
        assert slow.started.wait(20), "the delivery never started"
        proc.send_signal(signal.SIGTERM)  # while the broker is still answering
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        (got,) = slow.got()
        assert got["headers"]["ce-id"] == ev["id"] and got["headers"]["traceparent"].split("-")[1] == trace_id
        info = consumer_state(settings)
        assert info.num_ack_pending == 0 and info.num_pending == 0, "the in-flight event was not acked"
        assert info.delivered.consumer_seq == 1 and info.num_redelivered == 0
        assert "SIGTERM: stopping" in out and "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        slow.close()


def test_bad_settings_exit_with_a_message(settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LSCLOUD_", "OTEL_", "K_"))}
    env.update({"PYTHONPATH": str(REPO), "LSCLOUD_NATS_URL": settings.nats_url})
    done = subprocess.run([sys.executable, "-m", "lscloud.bridge"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "K_SINK is required" in done.stderr


def _ready_port(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/readiness", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
