"""What the alert rules and dashboard panels answer, evaluated by ``promtool test rules``.

test_observability.py checks that every name and label a rule uses is emitted; these check that the
expressions select the right series out of what the code emits:

* a Knative Trigger's dead letter (posted to a function's ``/events/dead-letters``) and a delivery
  its handler fails with a 5xx, driven through the real runtime, with the series names and labels
  read back from the process's metrics, reach ``EventDeadLettered`` and ``EventDeliveriesRetrying``;
* the soft ATM's float: several replicas each report the balances they last wrote to a point, and
  ``SoftatmFloatLow`` and the dashboard's cash panels take the newest write's;
* ``DossiersOverdueSweepMissing`` fires when the sweeps stop, whether the replicas that swept are
  still alive (re-reporting their last figures) or gone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from lscloud import events, knative, telemetry, web
from lscloud.auth import delivery_headers
from lscloud.config import Settings

from test_observability import OBS, prometheus_label, prometheus_name

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None,
                                reason="promtool is not installed (Debian: apt-get install prometheus)")

RULES = OBS / "alerts.yaml"
FAILING = "vn.langson.test.parcel.misrouted.v1"


def alert_expr(name: str) -> str:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return next(r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == name)


def panel_exprs(board: str, title: str) -> list[str]:
    panels = json.loads((OBS / "dashboards" / board).read_text(encoding="utf-8"))["panels"]
    return [t["expr"] for t in next(p for p in panels if p["title"] == title)["targets"]]


def panel_expr(board: str, title: str) -> str:
    return panel_exprs(board, title)[0]


def series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f"{k}={json.dumps(str(v), ensure_ascii=False)}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def promtool(tmp_path: Path, tests: list[dict]) -> None:
    """Run ``promtool test rules`` on alerts.yaml with these test groups (interval 1m)."""
    path = tmp_path / "rules_test.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m",
                                    "tests": [{"interval": "1m", **t} for t in tests]},
                                   allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- eventing: what a function records in the cluster ------------------------------------------------

def app_of(name: str):
    """A function's app: its name is the consumer group its /events metrics carry."""
    return lambda settings: web.create_app(name, settings=settings)


def on_misrouted(event: dict) -> None:
    raise RuntimeError("the parcel's office is down")   # a 5xx: the Trigger retries it


def emitted_points(consumer_group: str) -> list[tuple[str, dict[str, str]]]:
    """(Prometheus series name, labels) of every counter / histogram-count point this process
    recorded for ``consumer_group``, resource attributes included as the collector adds them."""
    data = telemetry.collect_metrics()
    assert data is not None, "another harness owns the meter provider"
    out = []
    for rm in data.resource_metrics:
        resource = {prometheus_label(k): str(v) for k, v in rm.resource.attributes.items()}
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                cls = type(metric.data).__name__
                if cls not in ("Sum", "Histogram") or (cls == "Sum" and not metric.data.is_monotonic):
                    continue
                kind = "histogram" if cls == "Histogram" else "counter"
                name = prometheus_name(metric.name, metric.unit or "", kind) + ("_count" if kind == "histogram" else "")
                for point in metric.data.data_points:
                    attrs = {prometheus_label(k): str(v) for k, v in point.attributes.items()}
                    if attrs.get("messaging_consumer_group_name") == consumer_group:
                        out.append((name, {**resource, **attrs}))
    return out


def test_a_knative_triggers_dead_letters_and_retries_reach_the_eventing_alerts(base_settings, object_store, tmp_path):
    """In the cluster no dispatcher runs: a Trigger posts what it gave up on to the function's
    ``/events/dead-letters`` and retries what the function answered 5xx. Both alerts queried only
    the dispatcher's ``lscloud_eventing_*`` counters, so neither saw any of it."""
    telemetry.setup(Settings(service="observability-test"))
    function = f"obs-dl-{uuid.uuid4().hex[:8]}"
    bucket = f"t-{uuid.uuid4().hex[:20]}"
    object_store.ensure_bucket(bucket)
    settings = base_settings.replace(bucket=bucket, stream=f"T{uuid.uuid4().hex[:12].upper()}", service=function)
    instance = knative.function(app_of(function), events={FAILING: on_misrouted})()
    instance.start(settings.env_vars())
    try:
        client = instance.app.test_client()
        sender = delivery_headers(settings)
        # the Trigger's delivery, answered 500 (it retries, then gives up)
        event = events.new_event(FAILING, "/test/obs", {"n": 1})
        headers, body = events.to_binary_http(event)
        assert client.post("/events", data=body, headers={**headers, **sender}).status_code == 500
        # its deadLetterSink: the event with the knativeerror* attributes; a repeat is a duplicate
        failure = events.DeliveryFailure(500, "HTTP 500: office down", f"http://{function}.lscloud.svc.cluster.local/events")
        headers, body = events.to_binary_http({**event, **failure.extensions()})
        for status in ("kept", "duplicate"):
            answer = client.post(events.DEAD_LETTER_PATH, data=body, headers={**headers, **sender})
            assert answer.status_code == 200 and answer.get_json()["status"] == status, answer.get_data(as_text=True)
    finally:
        instance.stop()

    points = emitted_points(function)
    consumed = [labels for name, labels in points if name == "messaging_client_consumed_messages_total"]
    assert sorted(p["lscloud_event_outcome"] for p in consumed) == ["dead_letter", "duplicate", "failed"], consumed
    runs = [labels for name, labels in points if name == "messaging_process_duration_seconds_count"]
    assert [r.get("error_type") for r in runs] == ["RuntimeError"], runs

    # each series as Prometheus would hold it: the letter arrives at 1m (its duplicate too), and for
    # the retries, one delivery a minute fails (a run and a consumed "failed" a minute)
    inputs = [{"series": series(name, labels), "values": "0 1x15"} for name, labels in points
              if labels.get("lscloud_event_outcome") in ("dead_letter", "duplicate")]
    inputs += [{"series": series(name, labels), "values": "0+1x30"} for name, labels in points
               if labels.get("lscloud_event_outcome") == "failed" or name.startswith("messaging_process_duration")]
    # the local dispatcher's own count (what the alert already saw) stays selected beside it
    dispatcher = {"service_name": "lscloud-dispatcher", "messaging_system": "nats",
                  "messaging_consumer_group_name": f"{function}-parcels", "lscloud_dead_letter_reason": "rejected"}
    inputs.append({"series": series("lscloud_eventing_dead_letters_total", dispatcher), "values": "0 1x15"})
    promtool(tmp_path, [{
        "input_series": inputs,
        "promql_expr_test": [
            {"expr": alert_expr("EventDeadLettered"), "eval_time": "5m", "exp_samples": [
                {"labels": series("", {"messaging_consumer_group_name": f"{function}-parcels",
                                       "lscloud_dead_letter_reason": "rejected"}), "value": 1},
                {"labels": series("", {"messaging_consumer_group_name": function, "cloudevents_event_type": FAILING}),
                 "value": 1}]},
            # the platform dashboard's dead letters, over a 10 minute range: both counts show
            *[{"expr": expr.replace("$__range", "10m"), "eval_time": "5m", "exp_samples": [expected]}
              for expr, expected in zip(panel_exprs("platform.json", "Dead letters (in range)"), [
                  {"labels": series("", {"messaging_consumer_group_name": f"{function}-parcels",
                                         "lscloud_dead_letter_reason": "rejected"}), "value": 1},
                  {"labels": series("", {"messaging_consumer_group_name": function,
                                         "cloudevents_event_type": FAILING}), "value": 1}], strict=True)],
            # every delivery to /events failed with a 5xx: a ratio of 1, over the 0.2 the alert allows
            {"expr": alert_expr("EventDeliveriesRetrying"), "eval_time": "20m", "exp_samples": [
                {"labels": series("", {"messaging_consumer_group_name": function}), "value": 1}]},
        ],
    }])


# --- the soft ATM's float, reported by two replicas ----------------------------------------------------

def float_series(replica: str, point: str, cash: int, held: int, written: float, minutes: int) -> list[dict]:
    """What one replica exports after writing to ``point``: its balances and write time, ``minutes`` long."""
    where = {"service_name": "softatm", "service_instance_id": replica, "softatm_point": point}
    return [{"series": series("lscloud_softatm_float", {**where, "softatm_balance": "cash"}), "values": f"{cash}x{minutes}"},
            {"series": series("lscloud_softatm_float", {**where, "softatm_balance": "held"}), "values": f"{held}x{minutes}"},
            {"series": series("lscloud_softatm_float_write_time_seconds", where), "values": f"{written}x{minutes}"}]


def test_the_float_alert_and_panels_take_the_newest_write_of_a_point(tmp_path):
    """Replica A held 15M of bd-06040's 20M (cash 5M) and went on reporting it; replica B then took
    in a 30M delivery (cash 35M). The point has 35M free and 15M held: the minimum over replicas
    paged for 5M and the held panel summed 30M."""
    free = panel_expr("softatm.json", "Free cash per point (VND)")
    held = panel_expr("softatm.json", "Cash held for withdrawals in flight (VND)")
    low = {"summary": "Soft ATM: a point is running out of cash",
           "description": "bd-06040 holds less than 10M VND of free cash; schedule a cash delivery."}
    promtool(tmp_path, [
        {   # B's write is the newer one: 35M free, 15M held, no page
            "input_series": float_series("a", "bd-06040", 5_000_000, 15_000_000, 1_000.0, 40)
            + [{"series": s["series"], "values": "_ _ " + s["values"]}
               for s in float_series("b", "bd-06040", 35_000_000, 15_000_000, 1_120.0, 38)],
            "promql_expr_test": [
                {"expr": free, "eval_time": "20m",
                 "exp_samples": [{"labels": '{softatm_point="bd-06040"}', "value": 35_000_000}]},
                {"expr": held, "eval_time": "20m",
                 "exp_samples": [{"labels": '{softatm_point="bd-06040"}', "value": 15_000_000}]}],
            "alert_rule_test": [{"alertname": "SoftatmFloatLow", "eval_time": "30m", "exp_alerts": []}],
        },
        {   # the newer write is the low one: it pages, whatever the older replica still reports
            "input_series": float_series("a", "bd-06040", 40_000_000, 0, 1_000.0, 40)
            + [{"series": s["series"], "values": "_ _ " + s["values"]}
               for s in float_series("b", "bd-06040", 8_000_000, 0, 1_120.0, 38)],
            "alert_rule_test": [{"alertname": "SoftatmFloatLow", "eval_time": "30m", "exp_alerts": [
                {"exp_labels": {"severity": "ticket", "softatm_point": "bd-06040"}, "exp_annotations": low}]}],
        },
        {   # B (the newest write) goes away at 5m; A's older figure never stands in for it
            "input_series": float_series("a", "bd-06040", 5_000_000, 15_000_000, 1_000.0, 40)
            + [{"series": s["series"], "values": "_ _ " + s["values"]}
               for s in float_series("b", "bd-06040", 35_000_000, 15_000_000, 1_120.0, 3)],
            "promql_expr_test": [{"expr": free, "eval_time": "15m", "exp_samples": []}],
            "alert_rule_test": [{"alertname": "SoftatmFloatLow", "eval_time": "30m", "exp_alerts": []}],
        },
    ])


# --- the dossiers' overdue sweep -------------------------------------------------------------------------

def test_the_sweep_alert_fires_when_sweeps_stop_while_the_replica_lives_on_or_not(tmp_path):
    """promtool's clock starts at 0: a sweep at minute k reports ``60 k``. The replica swept every
    minute until 10m; ``absent(lscloud_dossiers_overdue)`` never fired while it lived on,
    re-reporting its last counts."""
    alive = {"service_name": "dossiers", "service_instance_id": "a"}
    agency = {**alive, "lscloud_dossier_agency": "ubnd-05983"}
    missing = {"summary": "No overdue sweep of the dossiers for 20 minutes",
               "description": "The platform clock's tick that runs the overdue sweep (or an operator's POST "
                              "/dossiers/v1/overdue/sweep) has not reached the dossiers function: the overdue "
                              "figures and step.overdue events are stale."}
    fired = [{"exp_labels": {"severity": "ticket"}, "exp_annotations": missing}]
    sweep_time = series("lscloud_dossiers_overdue_sweep_time_seconds", alive)
    promtool(tmp_path, [
        {   # sweeps stop at 10m, the replica lives on
            "input_series": [{"series": sweep_time, "values": "0+60x10 600x50"},
                             {"series": series("lscloud_dossiers_overdue", agency), "values": "3x60"}],
            "alert_rule_test": [{"alertname": "DossiersOverdueSweepMissing", "eval_time": "20m", "exp_alerts": []},
                                {"alertname": "DossiersOverdueSweepMissing", "eval_time": "35m", "exp_alerts": fired}],
        },
        {   # sweeps stop at 10m and the replica goes with them
            "input_series": [{"series": sweep_time, "values": "0+60x10"},
                             {"series": series("lscloud_dossiers_overdue", agency), "values": "3x10"}],
            "alert_rule_test": [{"alertname": "DossiersOverdueSweepMissing", "eval_time": "20m", "exp_alerts": []},
                                {"alertname": "DossiersOverdueSweepMissing", "eval_time": "35m", "exp_alerts": fired}],
        },
        {   # a sweep every minute on replica a; b swept once, at 0, and lives on
            "input_series": [{"series": sweep_time, "values": "0+60x60"},
                             {"series": series("lscloud_dossiers_overdue_sweep_time_seconds",
                                               {**alive, "service_instance_id": "b"}), "values": "0x60"}],
            "alert_rule_test": [{"alertname": "DossiersOverdueSweepMissing", "eval_time": "55m", "exp_alerts": []}],
        },
    ])
