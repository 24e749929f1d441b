"""observability/: dashboards and alert rules only use metrics the runtime really emits.

The set of emitted metrics is not written down here: the module drives the real code paths
(a function's HTTP request and ``/events`` deliveries through ``lscloud.knative`` + ``web``, a
publish with ``SyncBus`` to the session's nats-server, the dispatcher delivering and dead-lettering,
a failed readiness check, and a border crossing from booking to the barrier with a refused booking),
reads the instruments back from the process's in-memory metric reader
and converts their names with the OTel -> Prometheus mapping documented in
``observability/README.md`` (:func:`prometheus_name`). Every metric and label a dashboard panel
or an alert rule references must be in that set.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from flask import jsonify

from lscloud import events, knative, telemetry, web
from lscloud.auth import allow, delivery_headers
from lscloud.bus import BusUnavailable, SyncBus, delete_streams
from lscloud.config import Settings
from lscloud.delivery import Dispatcher, Subscription
from lscloud.local.servers import free_port
from lscloud.problems import Problem

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "observability"
DASHBOARDS = sorted((OBS / "dashboards").glob("*.json"))
RECEIVED = "vn.langson.test.parcel.received.v1"
FUNCTION = "obs-sink"


# --- the OTel -> Prometheus name mapping (observability/README.md) -------------------------------

# the collector's prometheus exporter (add_metric_suffixes: true) spells UCUM units out
UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds", "min": "minutes",
              "h": "hours", "d": "days", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "%": "percent"}
PER_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def prometheus_name(name: str, unit: str, kind: str) -> str:
    """The base name the collector gives an OTel metric: non-alphanumerics -> ``_``, the unit
    spelled out as a suffix (annotations like ``{message}`` dropped), ``_total`` for counters,
    ``_ratio`` for unit ``1`` gauges. ``kind``: counter, gauge (incl. up-down counters), histogram."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    unit = re.sub(r"\{[^}]*\}", "", unit or "").strip()
    main, _, per = unit.partition("/")
    word = UNIT_WORDS.get(main, "" if main in ("", "1") else main)
    if word and parts[-1] != word:
        parts.append(word)
    if per:
        parts += ["per", PER_WORDS.get(per, per)]
    if kind == "counter":
        if parts[-1] == "total":
            parts.pop()
        parts.append("total")
    if unit == "1" and kind == "gauge":
        parts.append("ratio")
    return "_".join(parts)


def prometheus_label(attribute: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", attribute)


def test_name_mapping_examples():
    assert prometheus_name("http.server.request.duration", "s", "histogram") == "http_server_request_duration_seconds"
    assert prometheus_name("messaging.client.sent.messages", "{message}", "counter") == "messaging_client_sent_messages_total"
    assert prometheus_name("lscloud.eventing.dead_letters", "{message}", "counter") == "lscloud_eventing_dead_letters_total"
    assert prometheus_name("http.server.active_requests", "{request}", "gauge") == "http_server_active_requests"
    assert prometheus_name("x.cpu.utilization", "1", "gauge") == "x_cpu_utilization_ratio"


# --- PromQL: the metric and label names an expression uses ---------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan", "atan2"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def _without_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) referenced by ``expr`` (Grafana variables allowed)."""
    expr = _without_strings(expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors and subqueries
    labels: set[str] = set()
    for body in re.findall(r"\{([^}]*)\}", expr):
        labels.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", body))
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    for body in _GROUPING.findall(expr):
        labels.update(x.strip() for x in body.split(",") if x.strip())
    expr = _GROUPING.sub(" ", expr)
    metrics = set()
    for m in re.finditer(r"(?<![\w$.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        token = m.group(0)
        if token.lower() in _KEYWORDS or expr[m.end():].lstrip().startswith("("):
            continue  # a keyword, or a function call
        metrics.add(token)
    return metrics, labels


def test_promql_names_parser():
    metrics, labels = promql_names(
        'histogram_quantile(0.99, sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket'
        '{service_name=~"$service", x="a{b}"}[$__rate_interval]))) > 0.5 and on (job) up')
    assert metrics == {"http_server_request_duration_seconds_bucket", "up"}
    assert labels == {"le", "http_route", "service_name", "x", "job"}


# --- what the dashboards and rules reference ------------------------------------------------------


def dashboard_exprs(board: dict) -> list[str]:
    out = []

    def walk(panels):
        for p in panels:
            out.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
            walk(p.get("panels", []))

    walk(board.get("panels", []))
    for var in board.get("templating", {}).get("list", []):
        query = var.get("query")
        if var.get("type") == "query":
            q = query.get("query") if isinstance(query, dict) else query
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q or "")
            out.append(m.group(1) if m else q)
    return out


def load_rules() -> dict:
    return yaml.safe_load((OBS / "alerts.yaml").read_text(encoding="utf-8"))


def all_rules() -> list[dict]:
    return [r for g in load_rules()["groups"] for r in g["rules"]]


def recorded_series() -> dict[str, str]:
    return {r["record"]: r["expr"] for r in all_rules() if "record" in r}


def test_at_least_the_expected_files_exist():
    assert {p.name for p in DASHBOARDS} >= {"platform.json", "directory.json", "dossiers.json"}
    for name in ("alerts.yaml", "collector.yaml", "README.md", "SLO.md"):
        assert (OBS / name).is_file(), name


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_grafana_json(path):
    board = json.loads(path.read_text(encoding="utf-8"))
    assert board["uid"] and board["title"] and board["panels"]
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p["id"])
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
            if p["type"] != "row":
                assert p["targets"], p["title"]
                assert p["datasource"]["type"] == "prometheus", p["title"]
                for t in p["targets"]:
                    assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
            walk(p.get("panels", []))

    walk(board["panels"])
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    uids = [json.loads(p.read_text(encoding="utf-8"))["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_alert_rules_are_well_formed():
    doc = load_rules()
    names = [g["name"] for g in doc["groups"]]
    assert len(names) == len(set(names))
    recorded = recorded_series()
    alerts = [r for r in all_rules() if "alert" in r]
    assert {a["alert"] for a in alerts} >= {
        "AvailabilityBudgetBurnFast", "AvailabilityBudgetBurnSlow",
        "DirectoryLatencyBudgetBurnFast", "DirectoryLatencyBudgetBurnSlow",
        "EventDeadLettered", "EventLagHigh", "FunctionNotReady"}
    for rule in all_rules():
        assert ("record" in rule) != ("alert" in rule), rule
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule
    for a in alerts:
        assert a["labels"]["severity"] in ("page", "ticket"), a["alert"]
        assert a["annotations"]["summary"], a["alert"]
        used, _ = promql_names(a["expr"])
        # a recording rule's name has colons: each one an alert uses must be defined here
        assert {m for m in used if ":" in m} <= set(recorded), a["alert"]
    fast = next(a for a in alerts if a["alert"] == "AvailabilityBudgetBurnFast")
    for window in ("1h", "5m", "6h", "30m"):  # the workbook's page windows, 14.4x and 6x
        assert f"lscloud:http_errors:ratio_rate{window}" in fast["expr"]
    assert "14.4" in fast["expr"] and "6 *" in fast["expr"]


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian: apt-get install prometheus); the YAML checks above still ran")
def test_promtool_accepts_the_rules():
    result = subprocess.run(["promtool", "check", "rules", str(OBS / "alerts.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_collector_config_has_traces_and_metrics_pipelines():
    cfg = yaml.safe_load((OBS / "collector.yaml").read_text(encoding="utf-8"))
    pipelines = cfg["service"]["pipelines"]
    assert {"traces", "metrics"} <= set(pipelines)
    for name, p in pipelines.items():
        assert p["receivers"] == ["otlp"], name
        assert "batch" in p["processors"], name
        for section, used in (("receivers", p["receivers"]), ("processors", p["processors"]), ("exporters", p["exporters"])):
            assert set(used) <= set(cfg[section]), f"{name} uses an undefined {section[:-1]}"
    assert {"grpc", "http"} <= set(cfg["receivers"]["otlp"]["protocols"])
    traces_exporter = cfg["exporters"][pipelines["traces"]["exporters"][0]]
    assert "${env:TRACES_BACKEND_ENDPOINT}" in traces_exporter["endpoint"]  # Tempo or Jaeger, chosen by env
    prom = cfg["exporters"]["prometheus"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    # the name and label mapping the dashboards rely on
    assert prom["add_metric_suffixes"] is True and prom["resource_to_telemetry_conversion"]["enabled"] is True


# --- the real code paths, and what they emit -------------------------------------------------------


def on_received(event: dict) -> None:
    if (event.get("data") or {}).get("poison"):
        raise Problem(422, "unprocessable-parcel", "Unprocessable parcel", "No destination.",
                      title_vi="Bưu kiện không xử lý được", detail_vi="Bưu kiện không có địa chỉ đích.")


def create_app(settings):
    app = web.create_app(FUNCTION, settings=settings)

    @app.get("/v1/ping")
    @allow("public")
    def ping():
        """Answers pong."""
        return jsonify(pong=True)

    return app


class Endpoint:
    """A subscriber: 200 for events, 422 for the ones whose data says ``poison``."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(422 if b"poison" in body else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _wait(check, what, deadline_s=30.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- the border function's paths (functions/border/function/metrics.py) ---------------------------

def drive_border(base_settings, object_store, key_dir: Path) -> None:
    """One short crossing through the border app (booking, yard, priority, call, gate, every agency,
    a weighbridge mismatch then a good reading, release, the barrier refused then opened) and a
    booking refused because its slot is full: every ``lscloud.border.*`` instrument records."""
    import sys
    from datetime import datetime, timedelta, timezone

    from lscloud import runtime
    from lscloud.auth import dev_keys, issue_token
    from lscloud.loading import load_function
    from lscloud.runtime import Runtime

    if str(ROOT / "tests" / "integration") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from border_support import AGENCIES, TAX, DirectoryStub, declaration

    bucket = f"t-{uuid.uuid4().hex[:20]}"
    object_store.ensure_bucket(bucket)
    private, public = dev_keys(key_dir)
    directory = DirectoryStub()
    settings = base_settings.replace(bucket=bucket, stream=f"T{uuid.uuid4().hex[:12].upper()}", service="border",
                                     peer_url_template=directory.template, jwt_public_key=public)
    rt = runtime.install(Runtime(settings))
    try:
        rt.bus.ensure_stream()
        client = load_function(ROOT / "functions" / "border").new()._build(settings).test_client()

        def tok(role, sub=None, agency=None, unit=None, idem=True):
            h = {"Authorization": "Bearer " + issue_token(private, sub or f"{role}-obs", role, agency=agency, unit=unit)}
            return {**h, "Idempotency-Key": uuid.uuid4().hex} if idem else h

        def ok(resp, status=200):
            assert resp.status_code == status, resp.get_data(as_text=True)
            return resp.get_json()

        def device(type_, data):
            headers, body = events.to_binary_http(events.new_event(type_, "/border/devices/obs", data,
                                                                   id=f"{data['device']}.{data['reading_id']}"))
            ok(client.post("/events", data=body, headers={**headers, **delivery_headers(settings)}))

        ent = tok("enterprise", sub=TAX, idem=False)
        did = "d-obs-" + uuid.uuid4().hex[:12]
        ok(client.post("/v1/declarations", json=declaration(did, booking={"mode": "living"}), headers=ent), 201)
        ok(client.post(f"/v1/declarations/{did}/arrival", headers=tok("yard-operator", unit="huu-nghi")))
        ok(client.post(f"/v1/declarations/{did}/priority", json={"category": "perishable", "reason": "durian"},
                       headers=tok("operator")))
        gate = tok("gate-operator", unit="huu-nghi")
        ok(client.post("/v1/gates/huu-nghi/calls", json={"flow": "in", "count": 1}, headers=gate))
        ok(client.post(f"/v1/declarations/{did}/at-gate", headers=tok("gate-operator", unit="huu-nghi")))
        for agency in AGENCIES[1:]:
            ok(client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"},
                           headers=tok("officer", agency=agency)))
        weigh = {"gate": "huu-nghi", "plate": "桂A12345", "measured_at": "2025-09-01T08:00:00Z", "device": "wb-obs"}
        device("vn.langson.border.weight.measured.v1", {**weigh, "reading_id": "wb-1", "gross_kg": 45000})  # held
        device("vn.langson.border.weight.measured.v1", {**weigh, "reading_id": "wb-2", "gross_kg": 33400})  # resumed
        ok(client.post(f"/v1/declarations/{did}/release", json={"notes": "ok"}, headers=tok("officer", agency="customs")))
        read = {"gate": "huu-nghi", "camera": "barrier", "plate": "桂A·12345", "confidence": 0.97,
                "read_at": "2025-09-01T08:10:00Z", "device": "anpr-obs"}
        device("vn.langson.border.plate.read.v1", {**read, "reading_id": "b-1", "flow": "out"})   # refused
        device("vn.langson.border.plate.read.v1", {**read, "reading_id": "b-2", "flow": "in"})    # opened, exited
        doc = ok(client.get(f"/v1/declarations/{did}", headers=tok("officer", agency="customs", idem=False)))
        assert doc["status"] == "exited", doc["status"]

        # a reservation of a full slot is refused (capacity 1 at tan-thanh, inbound)
        ok(client.put("/v1/gates/tan-thanh/capacity/in", json={"per_hour": 1, "reason": "obs test"},
                      headers=tok("operator", idem=False)))
        slot = (datetime.now(timezone.utc) + timedelta(hours=30)).astimezone(
            __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y%m%d%H")
        booking = {"mode": "reservation", "slot": slot}
        ok(client.post("/v1/declarations", json=declaration("d-obs-" + uuid.uuid4().hex[:12], gate="tan-thanh",
                                                            booking=booking), headers=ent), 201)
        full = client.post("/v1/declarations", json=declaration("d-obs-" + uuid.uuid4().hex[:12], gate="tan-thanh",
                                                                booking=booking), headers=ent)
        assert full.status_code == 409 and full.get_json()["type"].endswith("slot-full"), full.get_data(as_text=True)
    finally:
        runtime.uninstall()
        directory.stop()
        try:
            delete_streams(settings, [settings.stream, settings.stream + "_DLQ"])
        except Exception:
            pass


def _drive_dossiers(settings, keys_dir) -> None:
    import sys

    from lscloud.auth import dev_keys, issue_token

    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from dossiers_support import CITIZEN, PeerStub, pdf

    stub = PeerStub()
    private, public = dev_keys(keys_dir)
    try:
        from functions.dossiers.function.app import create_app as dossiers_app

        app = dossiers_app(
            settings.replace(peer_url_template=stub.template, jwt_public_key=public, service="dossiers"))
        client = app.test_client()
        cit = {"Authorization": "Bearer " + issue_token(private, CITIZEN, "citizen")}
        docs = []
        for code in ("to-khai", "giay-chung-sinh"):
            r = client.post("/v1/attachments", data=pdf(code), headers={**cit, "Content-Type": "application/pdf"})
            assert r.status_code == 201, r.get_data(as_text=True)
            docs.append({"code": code, "sha256": r.get_json()["sha256"]})
        r = client.post("/v1/dossiers", json={"id": "obs-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": "05983",
                                              "documents": docs}, headers=cit)
        assert r.status_code == 201, r.get_data(as_text=True)
        op = {"Authorization": "Bearer " + issue_token(private, "scheduler", "operator")}
        assert client.post("/v1/overdue/sweep", headers=op).status_code == 200
        # a second dossier, denied by the commune's officer (a finished one: on time or not)
        r = client.post("/v1/dossiers", json={"id": "obs-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": "05983",
                                              "documents": docs}, headers=cit)
        clerk = {"Authorization": "Bearer " + issue_token(private, "clerk", "officer", agency="ubnd-05983", unit="05983"),
                 "Idempotency-Key": uuid.uuid4().hex}
        r = client.post(f"/v1/dossiers/{r.get_json()['id']}/deny", json={"reason": "Không thuộc thẩm quyền"}, headers=clerk)
        assert r.status_code == 200, r.get_data(as_text=True)
    finally:
        stub.stop()


@pytest.fixture(scope="module")
def emitted(base_settings, object_store, tmp_path_factory) -> dict[str, set[str]]:
    """Prometheus series name -> label names, from the instruments the real paths recorded."""
    telemetry.setup(Settings(service="observability-test"))
    bucket = f"t-{uuid.uuid4().hex[:20]}"
    object_store.ensure_bucket(bucket)
    settings = base_settings.replace(bucket=bucket, stream=f"T{uuid.uuid4().hex[:12].upper()}", service=FUNCTION)
    endpoint = Endpoint()
    dispatcher = Dispatcher(settings, [Subscription(FUNCTION, "parcels", [RECEIVED], endpoint.url)],
                            max_deliveries=1, backoff=(0.05,), timeout_s=5, pull_wait_s=0.5)
    instance = knative.function(create_app, events={RECEIVED: on_received})()
    bus = SyncBus(settings)
    try:
        # a function's HTTP request and /events deliveries (done, duplicate, failed, unsupported, malformed)
        instance.start(settings.env_vars())
        client = instance.app.test_client()
        assert client.get("/v1/ping").status_code == 200
        event = events.new_event(RECEIVED, "/test/obs", {"n": 1})
        sender = delivery_headers(settings)  # what the dispatcher presents
        for expected in (200, 200):  # the second is a duplicate
            headers, body = events.to_binary_http(event)
            assert client.post("/events", data=body, headers={**headers, **sender}).status_code == expected
        headers, body = events.to_binary_http(events.new_event(RECEIVED, "/test/obs", {"poison": True}))
        assert client.post("/events", data=body, headers={**headers, **sender}).status_code == 422
        headers, body = events.to_binary_http(events.new_event("vn.langson.test.parcel.lost.v1", "/test/obs", {}))
        assert client.post("/events", data=body, headers={**headers, **sender}).status_code == 400
        assert client.post("/events", data=b"{}", headers={"content-type": "application/json", **sender}).status_code == 400

        # the directory's routes, through its own app
        from functions.directory.function.app import create_app as directory_app

        dir_app = directory_app(settings)
        dir_app.test_client().get("/v1/units/20")

        # the dossiers' path: a submission (transitions counter) and the overdue sweep (gauge),
        # with the procedures/directory peers served by the integration tests' stand-in
        _drive_dossiers(settings, tmp_path_factory.mktemp("dossiers-keys"))

        # publishes, and the dispatcher delivering one event and dead-lettering another
        dispatcher.start()
        bus.publish(events.new_event(RECEIVED, "/test/obs", {"n": 2}))
        bus.publish(events.new_event(RECEIVED, "/test/obs", {"poison": True}))
        _wait(lambda: dispatcher.stats.delivered >= 1 and dispatcher.stats.dead_lettered >= 1, "a delivery and a dead letter")
        # a publish NATS never confirms (nothing listens there)
        nowhere = SyncBus(settings.replace(nats_url=f"nats://127.0.0.1:{free_port()}"), publish_timeout=0.3,
                          connect_timeout=0.3)
        with pytest.raises(BusUnavailable):
            nowhere.publish(events.new_event(RECEIVED, "/test/obs", {"n": 3}))
        nowhere.close()

        # the soft ATM's own instruments, through its real ledger path (a delivery and a hold)
        from lscloud import store

        store.configure(object_store, bucket)
        from functions.softatm.function import journal as satm_journal, telemetry as satm

        satm_journal.move("delivery", "bd-06040", 2_000_000, ref="obs-fund")
        satm_journal.move("hold", "bd-06040", 1_000_000, ref="obs-w1", bank="vcb")
        satm.transfer("withdrawal", "created")
        satm.webhook("vcb", "delivered")
        satm.mismatches("vcb", 1)

        # the IOC's: what it holds and what is loose (a start that read nothing back, then one fact)
        import ioc_support
        from functions.ioc.function import live as ioc_live, metrics as ioc_metrics

        ioc_state = ioc_live.Live()
        ioc_metrics.watch(ioc_state)
        assert ioc_state.absorb(ioc_support.transfer("obs-t1", 500_000))

        # a readiness check that fails (the bucket is gone)
        settings_missing = settings.replace(bucket=f"t-missing-{uuid.uuid4().hex[:8]}")
        instance.settings = settings_missing
        ok, _ = instance.ready()
        assert not ok
    finally:
        dispatcher.stop()
        endpoint.close()
        bus.close()
        instance.stop()
        try:
            delete_streams(settings, [settings.stream, settings.stream + "_DLQ"])
        except Exception:
            pass

    # the border domain (its own bucket, stream, directory stub and runtime)
    drive_border(base_settings, object_store, tmp_path_factory.mktemp("border-keys"))

    data = telemetry.collect_metrics()
    assert data is not None, "another harness owns the meter provider: cannot read the runtime's metrics"
    series: dict[str, set[str]] = {}
    for rm in data.resource_metrics:
        resource_labels = {prometheus_label(k) for k in rm.resource.attributes}
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                cls = type(metric.data).__name__
                if cls == "Histogram":
                    kind, names = "histogram", None
                elif cls == "Sum" and metric.data.is_monotonic:
                    kind = "counter"
                else:
                    kind = "gauge"
                base = prometheus_name(metric.name, metric.unit or "", kind)
                labels = set(resource_labels)
                for point in metric.data.data_points:
                    labels |= {prometheus_label(k) for k in point.attributes}
                names = [base + s for s in ("_bucket", "_sum", "_count")] if kind == "histogram" else [base]
                for n in names:
                    series.setdefault(n, set()).update(labels | ({"le"} if n.endswith("_bucket") else set()))
    return series


def test_runtime_emits_the_semconv_and_project_metrics(emitted):
    for name in ("http_server_request_duration_seconds_bucket", "messaging_client_operation_duration_seconds_count",
                 "messaging_client_sent_messages_total", "messaging_client_consumed_messages_total",
                 "messaging_process_duration_seconds_bucket", "lscloud_event_lag_seconds_bucket",
                 "lscloud_eventing_deliveries_total", "lscloud_eventing_dead_letters_total",
                 "lscloud_function_readiness_failures_total", "lscloud_dossiers_transitions_total",
                 "lscloud_dossiers_overdue"):
        assert name in emitted, f"{name} not emitted; got {sorted(emitted)}"
    assert {"http_route", "http_response_status_code", "http_request_method", "service_name"} <= \
        emitted["http_server_request_duration_seconds_count"]
    assert {"messaging_consumer_group_name", "cloudevents_event_type"} <= emitted["lscloud_event_lag_seconds_bucket"]
    assert {"messaging_consumer_group_name", "lscloud_dead_letter_reason"} <= emitted["lscloud_eventing_dead_letters_total"]
    assert "error_type" in emitted["messaging_process_duration_seconds_count"]  # the poison event's run
    assert {"lscloud_dossier_fact", "lscloud_dossier_agency", "lscloud_dossier_channel", "lscloud_dossier_on_time"} <= \
        emitted["lscloud_dossiers_transitions_total"]
    assert "lscloud_dossier_agency" in emitted["lscloud_dossiers_overdue"]


def _check_expr(expr: str, emitted: dict[str, set[str]], recorded_labels: dict[str, set[str]], where: str) -> None:
    metrics, labels = promql_names(expr)
    available = {"le", "service_name", "job", "instance"}
    for m in metrics:
        if m in recorded_labels:
            available |= recorded_labels[m]
            continue
        assert m in emitted, f"{where}: {m} is not emitted by the runtime (emitted: {sorted(emitted)})"
        available |= emitted[m]
    assert labels <= available, f"{where}: labels {sorted(labels - available)} are on none of {sorted(metrics)}"


def test_rules_reference_only_emitted_metrics_and_labels(emitted):
    recorded_labels: dict[str, set[str]] = {}
    for record, expr in recorded_series().items():  # defined before use, in file order
        _check_expr(expr, emitted, recorded_labels, f"record {record}")
        metrics, _ = promql_names(expr)
        recorded_labels[record] = set().union(*(emitted.get(m, set()) for m in metrics))
    for rule in all_rules():
        if "alert" in rule:
            _check_expr(rule["expr"], emitted, recorded_labels, f"alert {rule['alert']}")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_reference_only_emitted_metrics_and_labels(path, emitted):
    board = json.loads(path.read_text(encoding="utf-8"))
    exprs = dashboard_exprs(board)
    assert exprs
    for expr in exprs:
        _check_expr(expr, emitted, {}, f"{path.name}")



# --- the border domain -------------------------------------------------------------------------------

BORDER_SERIES = {
    "lscloud_border_transitions_total": {"lscloud_border_gate", "lscloud_border_flow", "lscloud_border_lane",
                                         "lscloud_border_previous_state", "lscloud_border_state"},
    "lscloud_border_priority_grants_total": {"lscloud_border_gate", "lscloud_border_flow",
                                             "lscloud_border_priority_category", "lscloud_border_state"},
    "lscloud_border_bookings_refused_total": {"lscloud_border_gate", "lscloud_border_flow", "lscloud_border_reason",
                                              "lscloud_border_booking_mode"},
    "lscloud_border_barrier_decisions_total": {"lscloud_border_gate", "lscloud_border_flow", "lscloud_border_outcome",
                                               "lscloud_border_reason"},
    "lscloud_border_weighings_total": {"lscloud_border_gate", "lscloud_border_flow", "lscloud_border_outcome"},
    "lscloud_border_agency_decisions_total": {"lscloud_border_gate", "lscloud_border_agency", "lscloud_border_decision"},
    "lscloud_border_dwell_duration_seconds_bucket": {"lscloud_border_gate", "lscloud_border_flow", "le"},
    "lscloud_border_decision_duration_seconds_bucket": {"lscloud_border_gate", "lscloud_border_agency", "le"},
    "lscloud_border_gate_capacity_per_hour": {"lscloud_border_gate", "lscloud_border_flow"},
}


def test_border_emits_its_domain_metrics(emitted):
    for name, labels in BORDER_SERIES.items():
        assert name in emitted, f"{name} not emitted; got {sorted(n for n in emitted if 'border' in n)}"
        assert labels <= emitted[name], (name, sorted(labels - emitted[name]))
    assert (OBS / "dashboards" / "border.json").is_file()
    border = next(g for g in load_rules()["groups"] if g["name"] == "lscloud-border")
    assert {r["alert"] for r in border["rules"] if "alert" in r} >= {
        "BorderSlotsFull", "BorderYardOverCapacity", "BorderBarrierRefusingClearedTrucks", "BorderWeightMismatchSpike"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_border_rules_derive_waiting_trucks():
    """promtool's rule unit tests: waiting = entered − left per lane, priority grants moving lanes."""
    result = subprocess.run(["promtool", "test", "rules", str(Path(__file__).with_name("border_rules_test.yaml"))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
