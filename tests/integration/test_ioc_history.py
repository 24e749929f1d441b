"""The IOC keeps its history and counts each message once, against real weed mini + nats-server: a
replay of a stream that keeps 30 days is not put live over the older facts it lacks, a report is
received when it was submitted, a station's message redelivered days later is not counted again,
and event values out of their contract's range count for nothing."""

# ruff: noqa: F811 (the no_peers fixture imported from ioc_support is named as a parameter)
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

import ioc_support as ev
from ioc_support import deliver, no_peers  # noqa: F401
from lscloud import auth, events

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"


def values(client, tokens) -> dict:
    return {i["id"]: i["value"] for i in client.get("/v1/indicators", headers=tokens.header("ioc")).get_json()["items"]}


def fact_id(event) -> str:
    from functions.ioc.function import live

    return live.fact_of(event)["id"]


def test_a_replay_lacking_older_live_facts_is_refused_unless_they_are_kept(start_function, rt, tokens, no_peers):
    """Facts older than the stream keeps (absorbed live, aged out of it) and a newer one on it. Put
    live as it was, the replay deleted the older ones from memory and the store for good."""
    one = start_function("ioc", peer_url_template=no_peers)
    client = one.app.test_client()
    now = ev.ago(0)
    rid = ev.report_id(now)
    aged = [ev.report(rid, "submitted", "submitted", "open", now - timedelta(days=40)),
            ev.progress("06001", 1000, 600, now - timedelta(days=40)),
            ev.border("d-aged-1", "submitted", now - timedelta(days=32))]
    for e in aged:
        deliver(client, rt, e)
    on_stream = ev.report(rid, "acknowledged", "acknowledged", "open", now - timedelta(hours=1))
    rt.bus.publish(on_stream)
    deliver(client, rt, on_stream)

    r = client.post("/v1/replay?apply=true", headers=tokens.header("operator"))
    assert r.status_code == 409, r.get_json()
    assert r.headers["Content-Type"].startswith("application/problem+json")
    problem = r.get_json()
    assert problem["only_live"] >= 3 and problem["detail_vi"] and problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["keep_older"]
    held = one.app.config["IOC_LIVE"].projection
    assert all(held.fact(fact_id(e)) is not None for e in aged)

    r = client.post("/v1/replay?apply=true&keep_older=true", headers=tokens.header("operator"))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["applied"] is True and r.get_json()["kept_live"] >= 3
    held = one.app.config["IOC_LIVE"].projection
    assert all(held.fact(fact_id(e)) is not None for e in aged + [on_stream])
    # kept in the store too: a restarted instance still holds them
    restarted = start_function("ioc", peer_url_template=no_peers).app.config["IOC_LIVE"].ensure_loaded()
    assert all(restarted.fact(fact_id(e)) is not None for e in aged + [on_stream])


def test_a_report_is_received_when_submitted_not_at_its_first_fact_held(start_function, rt, tokens, no_peers):
    """The IOC holds only a later fact of a report submitted before its facts begin: not received today."""
    client = start_function("ioc", peer_url_template=no_peers).app.test_client()
    before = values(client, tokens)["reports.received"] or 0
    now = ev.ago(0)
    deliver(client, rt, ev.report(ev.report_id(now), "acknowledged", "acknowledged", "open", now - timedelta(hours=1)))
    assert (values(client, tokens)["reports.received"] or 0) == before


def readings(client, tokens, start, end) -> float:
    s = f"/v1/indicators/environment.readings/series?step=hour&from={ev.iso(start)}&to={ev.iso(end)}"
    answer = client.get(s.replace("+", "%2B"), headers=tokens.header("ioc")).get_json()
    return sum(p["value"] or 0 for p in answer["points"])


def test_a_station_message_redelivered_days_later_is_not_counted_again(start_function, rt, tokens, no_peers):
    """An operator retries dead letters (or a replay reads the stream) after 48 h: the message's
    station-hour no longer keeps ids (its day rolled up, or an hour past TALLY_IDS_KEPT_H), and it
    was added to the readings a second time."""
    client = start_function("ioc", peer_url_template=no_peers).app.test_client()
    now = ev.ago(0).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=5)
    msgs = [ev.observations("lsn-late", now - timedelta(hours=h), 2) for h in (96, 60, 30, 1)]
    for e in msgs:
        deliver(client, rt, e)
    base = readings(client, tokens, start, now + timedelta(hours=1))
    assert base == 8.0
    for e in msgs:   # the rolled day's, the 60 h old hour's, and the two that still keep ids
        deliver(client, rt, e)
    assert readings(client, tokens, start, now + timedelta(hours=1)) == base


def test_values_out_of_their_range_count_for_nothing(start_function, rt, tokens, no_peers):
    """A negative transfer lowered softatm.volume; an AQI of 900 became environment.aqi-peak. Delivered,
    their contract refuses them now; read back from the stream by a replay (which the contract does
    not check), the IOC leaves the value out."""
    from functions.ioc.function import live

    client = start_function("ioc", peer_url_template=no_peers).app.test_client()
    before = values(client, tokens)
    negative, peak = ev.transfer("t-negative-1", -5_000_000), ev.aqi_alert("lsn-range", True, ev.ago(10), 900)
    for e, field in ((negative, "/data/amount_vnd"), (peak, "/data/value")):
        headers, body = events.to_binary_http(e)
        r = client.post("/events", data=body, headers={**headers, **auth.delivery_headers(rt.settings.replace(service="ioc"))})
        assert r.status_code == 422 and [x["field"] for x in r.get_json()["errors"]] == [field], r.get_json()
    after = values(client, tokens)
    assert after["softatm.volume"] == before["softatm.volume"]
    assert after["environment.aqi-peak"] == before["environment.aqi-peak"]
    assert live.fact_of(negative)["values"] == {} and live.fact_of(peak)["values"] == {}
    assert live.fact_of(ev.transfer("t-positive-1", 50_000))["values"] == {"amount_vnd": 50_000.0}


def _valid(schema_file: str, data: dict) -> bool:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    return not list(jsonschema.Draft202012Validator(schema).iter_errors(data))


@pytest.mark.parametrize("name", ["committed", "aborted", "received", "reserved"])
def test_a_transfer_event_holds_a_positive_amount(name):
    data = ev.transfer("t-range-1", 50_000)["data"]
    assert _valid(f"softatm/transfer.{name}.json", data)
    for amount in (0, -50_000):
        assert not _valid(f"softatm/transfer.{name}.json", {**data, "amount_vnd": amount})


@pytest.mark.parametrize("raised", [True, False])
def test_an_alert_event_holds_an_aqi_of_0_to_500(raised):
    data = ev.aqi_alert("lsn-range", raised, ev.ago(60), 500)["data"]
    schema = f"environment/alert.{'raised' if raised else 'cleared'}.json"
    assert _valid(schema, data)
    assert not _valid(schema, {**data, "value": 900}) and not _valid(schema, {**data, "value": -1})
    assert _valid(schema, {**data, "alert": "noise", "value": 640})   # a noise LAeq is no AQI
