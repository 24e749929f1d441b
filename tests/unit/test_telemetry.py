"""Telemetry: span propagation helpers, Flask server spans + RED metric, the JSON-lines span log."""

from __future__ import annotations

import json

import flask
import pytest
from opentelemetry import trace

from lscloud import events, telemetry
from lscloud.config import Settings
from lscloud.web.instrumentation import instrument

TYPE = "vn.langson.border.declaration.submitted.v1"


@pytest.fixture(scope="module")
def exporter():
    return telemetry.spans_in_memory("telemetry-test")


@pytest.fixture
def spans(exporter):
    exporter.clear()
    yield exporter
    exporter.clear()


def test_setup_is_idempotent(exporter):
    provider = trace.get_tracer_provider()
    telemetry.setup(Settings(service="another-name"))
    assert trace.get_tracer_provider() is provider


def test_a_service_tracer_records_as_that_service_and_is_built_once(spans):
    """Every publish asks for its service's tracer (Bus.publish): it is built once per service."""
    relay = telemetry.service_tracer("devices-relay")
    assert telemetry.service_tracer("devices-relay") is relay
    assert telemetry.service_tracer("telemetry-test") is not relay
    with telemetry.send_span({"id": "e1", "type": TYPE, "source": "/t", "specversion": "1.0"}, tracer_=relay):
        pass
    (span,) = spans.get_finished_spans()
    assert span.resource.attributes["service.name"] == "devices-relay"
    assert span.name == "publish lscloud.border.declaration.submitted" and span.kind.name == "PRODUCER"


def test_send_then_process_continues_the_trace(spans):
    ev = events.new_event(TYPE, "/x", {"a": 1})
    headers: dict = {}
    with telemetry.tracer().start_as_current_span("POST /v1/declarations"):
        with telemetry.send_span(ev) as producer:
            telemetry.inject(headers)
            sent_trace = telemetry.current_trace_id()
    assert headers["traceparent"].split("-")[1] == sent_trace
    # header names arrive in any case over NATS/HTTP
    with telemetry.process_span(ev, {"TraceParent": headers["traceparent"]}, consumer_group="border-x") as consumer:
        assert telemetry.current_trace_id() == sent_trace
    finished = {s.name: s for s in spans.get_finished_spans()}
    send = finished["publish lscloud.border.declaration.submitted"]
    proc = finished["process lscloud.border.declaration.submitted"]
    assert send.kind == trace.SpanKind.PRODUCER and proc.kind == trace.SpanKind.CONSUMER
    assert proc.parent.span_id == send.context.span_id
    assert send.attributes["messaging.system"] == "nats"
    assert send.attributes["messaging.destination.name"] == "lscloud.border.declaration.submitted"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.message.id"] == ev["id"]
    assert proc.attributes["messaging.operation.type"] == "process"
    assert proc.attributes["messaging.consumer.group.name"] == "border-x"
    assert producer is not consumer


def test_no_trace_outside_a_span():
    assert telemetry.current_trace_id() is None
    assert "traceparent" not in telemetry.inject({})


def test_process_span_records_failures(spans):
    ev = events.new_event(TYPE, "/x", {})
    with pytest.raises(RuntimeError):
        with telemetry.process_span(ev, {}):
            raise RuntimeError("handler broke")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.parent is None  # no traceparent: a new trace


def test_messaging_span_names_are_the_operation_name_and_the_destination(spans):
    """semconv: a messaging span's name is ``{messaging.operation.name} {destination}``. The PRODUCER
    span was ``send <subject>`` while its operation name was ``publish``; a JetStream publish's
    operation type is the conventions' ``send``, its name the system's ``publish`` (as the
    messaging.client.* metrics of the same publish say)."""
    from lscloud import metrics

    ev = events.new_event(TYPE, "/x", {})
    with telemetry.send_span(ev):
        pass
    with telemetry.process_span(ev, {}):
        pass
    send, process = spans.get_finished_spans()
    for span in (send, process):
        a = span.attributes
        assert span.name == f"{a['messaging.operation.name']} {a['messaging.destination.name']}"
    assert send.name == "publish lscloud.border.declaration.submitted"
    assert (send.attributes["messaging.operation.type"], send.attributes["messaging.operation.name"]) == \
        ("send", "publish")
    recorded = metrics._messaging("send", "lscloud.border.declaration.submitted")
    assert {k: send.attributes[k] for k in recorded} == recorded


def test_a_failed_messaging_operation_says_its_error_type(spans):
    """semconv: ``error.type`` is Conditionally Required if and only if the operation failed: the
    exception's class, a Problem's status, ``_OTHER`` when the caller only marked the span failed."""
    from lscloud.bus import BusUnavailable
    from lscloud.problems import Problem

    ev = events.new_event(TYPE, "/x", {})
    with pytest.raises(BusUnavailable):
        with telemetry.send_span(ev):
            raise BusUnavailable("publish not confirmed")
    with pytest.raises(Problem):
        with telemetry.process_span(ev, {}):
            raise Problem(503, detail="the store is away")
    with telemetry.process_span(ev, {}) as span:
        telemetry.mark_error(span, "will retry: 503")   # what the dispatcher does with a failed delivery
    with telemetry.send_span(ev):
        pass
    failed_send, failed_process, marked, fine = spans.get_finished_spans()
    assert failed_send.attributes["error.type"] == "BusUnavailable"
    assert failed_send.status.status_code == trace.StatusCode.ERROR
    assert failed_process.attributes["error.type"] == "503"
    assert marked.attributes["error.type"] == "_OTHER"
    assert "error.type" not in fine.attributes and fine.status.status_code == trace.StatusCode.UNSET


def test_an_event_carrying_its_creation_context_is_linked_to_it(spans):
    """An event kept in the outbox carries the context of the PRODUCER span that first tried to
    publish it (CloudEvents distributed tracing: traceparent, tracestate). Published again in another
    trace (a tick's), its PRODUCER span and its consumer's span link back to that creation context;
    a consumer that is the creation span's own child needs no link."""
    tracer = telemetry.tracer()
    with tracer.start_as_current_span("POST /v1/declarations") as request:
        with telemetry.capture_creation() as created:
            with telemetry.send_span(events.new_event(TYPE, "/x", {})) as first:
                pass
    assert created["traceparent"].split("-")[1:3] == [format(request.get_span_context().trace_id, "032x"),
                                                      format(first.get_span_context().span_id, "016x")]
    kept = {**events.new_event(TYPE, "/x", {}), **created}
    creation = first.get_span_context()
    assert telemetry.creation_context(kept) == trace.SpanContext(creation.trace_id, creation.span_id, True,
                                                                 creation.trace_flags, creation.trace_state)
    with tracer.start_as_current_span("POST /events (tick)") as tick:
        with telemetry.send_span(kept) as again:
            headers = telemetry.inject({})
    with telemetry.process_span(kept, headers, consumer_group="border-x"):
        pass
    with telemetry.process_span(kept, created, consumer_group="border-x"):   # the creation span's child
        pass
    finished = spans.get_finished_spans()
    republished = next(s for s in finished if s.context.span_id == again.get_span_context().span_id)
    consumed, child = finished[-2:]
    assert republished.context.trace_id == tick.get_span_context().trace_id
    assert [(link.context.trace_id, link.context.span_id) for link in republished.links] == \
        [(creation.trace_id, creation.span_id)]
    assert consumed.parent.span_id == republished.context.span_id      # the transport's parent, and
    assert [(link.context.trace_id, link.context.span_id) for link in consumed.links] == \
        [(creation.trace_id, creation.span_id)]                          # a link to the request's trace
    assert child.parent.span_id == creation.span_id and not child.links
    with telemetry.send_span(events.new_event(TYPE, "/x", {})):     # a plain publish links to nothing
        pass
    assert not spans.get_finished_spans()[-1].links
    assert telemetry.creation_context({**kept, "traceparent": "00-bad"}) is None


def test_safe_headers_drop_credentials():
    kept = telemetry.safe_headers({"Authorization": "Bearer x", "Signature": "s", "traceparent": "t", "Cookie": "c"})
    assert kept == {"traceparent": "t"}


def _app():
    app = flask.Flask("units")

    @app.get("/v1/units/<code>")
    def unit(code):
        if code == "missing":
            return {"title": "not found"}, 404
        if code == "boom":
            raise RuntimeError("the store fell over")
        return {"code": code}

    instrument(app)
    return app


def _duration_points():
    data = telemetry.collect_metrics()
    if data is None:
        pytest.skip("another harness owns the process meter provider")
    points = []
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "http.server.request.duration":
                    assert metric.unit == "s"
                    points.extend(metric.data.data_points)
    return points


def _count(points, route, status):
    return sum(p.count for p in points if p.attributes.get("http.route") == route
               and p.attributes.get("http.response.status_code") == status
               and p.attributes.get("http.request.method") == "GET")


def test_flask_server_spans_and_red_metric_recorded_once(spans, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "authorization,signature,x-request-id")
    app = _app()
    before_ok = _count(_duration_points(), "/v1/units/<code>", 200)
    before_404 = _count(_duration_points(), "/v1/units/<code>", 404)
    client = app.test_client()
    assert client.get("/v1/units/20", headers={"Authorization": "Bearer top-secret-token",
                                                "Signature": "hmac-secret", "X-Request-Id": "r1"}).status_code == 200
    assert client.get("/v1/units/missing").status_code == 404
    assert client.get("/v1/units/21").status_code == 200

    server = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert len(server) == 3
    first = server[0]
    assert first.name == "GET /v1/units/<code>"
    assert first.attributes["http.route"] == "/v1/units/<code>"
    assert first.attributes["http.response.status_code"] == 200
    dumped = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in first.attributes.items()})
    assert "top-secret-token" not in dumped and "hmac-secret" not in dumped
    assert first.attributes["http.request.header.x_request_id"] == ("r1",)

    points = _duration_points()
    # exactly one histogram sample per request
    assert _count(points, "/v1/units/<code>", 200) - before_ok == 2
    assert _count(points, "/v1/units/<code>", 404) - before_404 == 1


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
DURATION_LABELS = {"http.request.method", "url.scheme", "network.protocol.version", "http.response.status_code",
                   "http.route", "error.type"}


def test_server_span_and_duration_carry_the_conventional_names(spans):
    """What dashboards, alerts, `lscloud traces` and the trace-continuity tests read off a request
    (stable HTTP semconv): pinned so that whatever records it keeps it."""
    app = _app()
    client = app.test_client()
    ok = client.get("/v1/units/20?lang=vi", headers={"traceparent": TRACEPARENT, "tracestate": "lscloud=1",
                                                      "User-Agent": "bench/1"})
    assert ok.status_code == 200
    assert client.get("/v1/units/boom").status_code == 500

    first, failed = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert first.name == "GET /v1/units/<code>"
    assert format(first.context.trace_id, "032x") == TRACEPARENT.split("-")[1]  # the caller's trace goes on
    assert first.parent is not None and first.parent.is_remote and format(first.parent.span_id, "016x") == TRACEPARENT.split("-")[2]
    assert first.context.trace_state.get("lscloud") == "1"
    attrs = first.attributes
    assert (attrs["http.request.method"], attrs["http.route"], attrs["http.response.status_code"]) == \
        ("GET", "/v1/units/<code>", 200)
    assert (attrs["url.path"], attrs["url.scheme"], attrs["server.address"]) == ("/v1/units/20", "http", "localhost")
    assert attrs["user_agent.original"] == "bench/1" and "error.type" not in attrs
    assert first.status.status_code == trace.StatusCode.UNSET

    assert failed.name == "GET /v1/units/<code>" and failed.parent is None  # no traceparent: a trace of its own
    assert failed.attributes["http.response.status_code"] == 500 and failed.attributes["error.type"] == "500"
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert [e.attributes["exception.type"] for e in failed.events if e.name == "exception"] == ["RuntimeError"]

    points = [p for p in _duration_points() if p.attributes.get("http.route") == "/v1/units/<code>"]
    assert points and all(set(p.attributes) <= DURATION_LABELS for p in points)  # never the raw path
    linked = {format(e.trace_id, "032x") for p in points for e in p.exemplars}
    assert TRACEPARENT.split("-")[1] in linked  # a latency sample leads to its trace
    errors = [p for p in points if p.attributes["http.response.status_code"] == 500]
    assert errors and all(p.attributes["error.type"] == "500" and p.attributes["http.request.method"] == "GET"
                          for p in errors)


def test_an_error_a_function_answers_for_is_still_on_its_server_span(spans):
    """A function's app renders an unexpected exception as a 500 problem itself (lscloud.web); the
    exception is recorded on the SERVER span all the same, where someone reading the trace looks."""
    from lscloud.auth import allow
    from lscloud.web import create_app

    app = create_app("failing", settings=Settings())

    @app.get("/v1/records/<rid>")
    @allow("public")
    def record(rid):
        """Read a record."""
        raise KeyError(f"no record {rid} in the store")

    assert app.test_client().get("/v1/records/r1").status_code == 500
    (server,) = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert server.name == "GET /v1/records/<rid>" and server.attributes["error.type"] == "500"
    assert server.status.status_code == trace.StatusCode.ERROR
    assert [e.attributes["exception.type"] for e in server.events if e.name == "exception"] == ["KeyError"]


def test_json_lines_file_and_tree(tmp_path, spans):
    path = tmp_path / "traces.jsonl"
    exporter = telemetry.JsonLinesSpanExporter(path)
    with telemetry.tracer().start_as_current_span("GET /v1/units/<code>", kind=trace.SpanKind.SERVER) as root:
        root.set_attribute("http.request.header.authorization", ["Bearer leaked"])
        root.set_attribute("http.response.status_code", 200)
        with telemetry.send_span(events.new_event(TYPE, "/x", {})):
            pass
        with telemetry.tracer().start_as_current_span("S3.PutObject", kind=trace.SpanKind.CLIENT,
                                                      attributes={"aws.s3.key": "softatm-transfers/p~2Dx/_.json",
                                                                  "http.status_code": 412}):
            pass
    with telemetry.tracer().start_as_current_span("other"):
        pass
    exporter.export(spans.get_finished_spans())
    with open(path, "a") as fh:
        fh.write('{"trace_id": "cut sho')  # a writer killed mid-line
    read = telemetry.read_trace_file(path)
    assert [s["name"] for s in read] == ["GET /v1/units/<code>", "publish lscloud.border.declaration.submitted",
                                         "S3.PutObject", "other"]
    first = read[0]
    assert set(first) >= {"trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns",
                          "attributes", "status", "service"}
    assert first["service"] == "telemetry-test" or first["service"]  # first setup in the process names it
    assert "http.request.header.authorization" not in first["attributes"]
    assert read[1]["parent_span_id"] == first["span_id"]
    assert len(telemetry.read_trace_file(path, trace_id=first["trace_id"])) == 3

    tree = telemetry.format_trace_tree(read)
    lines = tree.splitlines()
    root_line = next(i for i, line in enumerate(lines) if "GET /v1/units/<code>" in line)
    assert "SERVER 200" in lines[root_line]
    child = lines[root_line + 1]
    assert "publish lscloud.border.declaration.submitted" in child and "PRODUCER" in child
    assert len(child) - len(child.lstrip()) > len(lines[root_line]) - len(lines[root_line].lstrip())
    assert tree.count("trace ") == 2
    # a store call names its table and its answer, not the rest of its key
    (put,) = [line for line in lines if "S3.PutObject" in line]
    assert "S3.PutObject softatm-transfers [" in put and "CLIENT 412" in put and "p~2Dx" not in put
    assert telemetry.read_trace_file(tmp_path / "absent.jsonl") == []


def test_setup_with_trace_file_writes_spans(tmp_path, exporter):
    path = tmp_path / "spans.jsonl"
    telemetry.setup(Settings(service="telemetry-test", trace_file=str(path)))
    with telemetry.tracer().start_as_current_span("written"):
        pass
    telemetry.force_flush()
    assert any(s["name"] == "written" for s in telemetry.read_trace_file(path))


class _Collected:
    """A span exporter that keeps what it is handed (what the trace file's exporter is handed)."""

    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return 0

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


def _representative_spans():
    """Spans of every shape the trace file gets, redacted by the exporter in front of it."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    collected = _Collected()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "giấy-tờ"}))
    provider.add_span_processor(SimpleSpanProcessor(telemetry.RedactingSpanExporter(collected)))
    tracer = provider.get_tracer("lscloud")
    cccd, phone = "020095001234", "0912345678"
    for _ in range(2):  # twice: the second time through, clean values come from the memo
        with tracer.start_as_current_span(f"GET /v1/cccd/{cccd}", kind=trace.SpanKind.SERVER, attributes={
                "http.request.method": "GET", "url.path": f"/v1/cccd/{cccd}", "url.query": f"phone={phone}",
                "server.port": 8080, "http.request.header.x-request-id": ("r-1", "r-2"),
                "http.request.header.authorization": ("Bearer secret",), "ratio": 0.25, "ok": True,
                "lscloud.note": "Lạng Sơn — cửa khẩu Hữu Nghị", "ref.number": "12345678"}) as server:
            server.add_event("note", {"text": f"caller {phone}", "sizes": (1, 2, 3)})
            try:
                raise KeyError(f"no record identity/{cccd}")
            except KeyError as exc:
                server.record_exception(exc)
            server.set_status(trace.Status(trace.StatusCode.ERROR, f"KeyError: no record {cccd}"))
            with tracer.start_as_current_span("S3.GetObject", kind=trace.SpanKind.CLIENT, attributes={
                    "rpc.system": "aws-api", "aws.s3.key": "directory/units/20314.json",
                    "bank.account": "12345678", "http.status_code": 200}) as client:
                client.add_link(server.get_span_context(), {"link.kind": "follows"})
        with tracer.start_as_current_span("plain", links=[trace.Link(server.get_span_context())]):
            pass
    provider.shutdown()
    return collected.spans


def test_span_json_is_span_to_dict_encoded(tmp_path):
    spans = _representative_spans()
    assert len(spans) == 6
    # what the file held before: span_to_dict through the standard encoder
    before = [json.loads(json.dumps(telemetry.span_to_dict(s), ensure_ascii=False, default=str)) for s in spans]
    after = [json.loads(telemetry.span_json(s)) for s in spans]
    assert after == before
    for line in (telemetry.span_json(s) for s in spans):
        assert line.endswith(b"\n") and line.count(b"\n") == 1
    # the exporter writes the same lines
    path = tmp_path / "traces.jsonl"
    assert telemetry.JsonLinesSpanExporter(path).export(spans) == telemetry.SpanExportResult.SUCCESS
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == before
    # and what it holds is redacted and readable, the same both times the values were seen
    server, client = before[1], before[0]
    assert server["name"] == "GET /v1/cccd/[cccd]" and server["kind"] == "SERVER"
    assert server["attributes"]["url.path"] == "/v1/cccd/[cccd]"
    assert server["attributes"]["url.query"] == "phone=[phone]"
    assert server["attributes"]["http.request.header.x-request-id"] == ["r-1", "r-2"]
    assert "http.request.header.authorization" not in server["attributes"]
    assert server["attributes"]["lscloud.note"] == "Lạng Sơn — cửa khẩu Hữu Nghị"
    assert server["attributes"]["ref.number"] == "12345678"
    assert client["attributes"]["bank.account"] == "[account]"  # same value, an account's name: redacted
    assert server["status"] == {"code": "ERROR", "description": "KeyError: no record [cccd]"}
    assert [e["name"] for e in server["events"]] == ["note", "exception"]
    assert server["events"][0]["attributes"] == {"text": "caller [phone]", "sizes": [1, 2, 3]}
    assert "[cccd]" in server["events"][1]["attributes"]["exception.message"]
    assert client["parent_span_id"] == server["span_id"] and server["service"] == "giấy-tờ"
    assert before[:3] != before[3:] and [s["name"] for s in before[:3]] == [s["name"] for s in before[3:]]
    assert [s["attributes"] for s in before[:3]] == [s["attributes"] for s in before[3:]]
    for raw in ("020095001234", "0912345678", "secret"):
        assert raw not in path.read_text(encoding="utf-8")


def test_span_json_takes_what_its_fast_encoder_refuses():
    """An integer beyond 64 bits or a lone surrogate: the line is still written, as the standard encoder would."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan

    ctx = trace.SpanContext(0x1234, 0x5678, is_remote=False)
    span = ReadableSpan(name="odd", context=ctx, resource=Resource({"service.name": "x"}),
                        attributes={"big": 2 ** 70, "text": "a\ud800b"}, start_time=1, end_time=2)
    assert json.loads(telemetry.span_json(span)) == json.loads(json.dumps(telemetry.span_to_dict(span), default=str))


def test_clean_values_are_judged_again_in_a_new_year(monkeypatch):
    """Whether 12 digits can be a CCCD depends on the year: what was clean is forgotten when it turns."""
    telemetry._redacted_value("ref.number", "12345678")
    assert ("ref.number", "12345678") in telemetry._clean
    monkeypatch.setattr(telemetry, "_clean_year", [telemetry._clean_year[0] - 1])
    telemetry.RedactingSpanExporter(_Collected()).export([])
    assert ("ref.number", "12345678") not in telemetry._clean


def test_a_query_is_recorded_decoded_so_the_redaction_finds_its_identifiers(spans):
    """Server spans recorded url.query as sent, percent-encoded: a file name "CCCD+020088002468" or
    "%2B84912345678" went out readable, no pattern of the redaction matching the encoding."""
    client = _app().test_client()
    for raw in ("filename=CCCD+020088002468.pdf", "filename=%2B84912345678.png"):
        client.get(f"/v1/units/20?{raw}")
    queries = [s.attributes["url.query"] for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert queries == ["filename=CCCD [cccd].pdf", "filename=[phone].png"]   # as exported: redacted

