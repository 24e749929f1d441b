"""The environment function on real weed mini + nats-server: stations, observations (HTTP and a relayed
device message), VN_AQI from stored hours, alerts with hysteresis, NGSI-LD validated against the
Smart Data Models schemas, and who may call what."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from werkzeug.wrappers import Request, Response

from cuts import cut_once
from peer_stubs import Served
import role_matrix
from lscloud import devices

ROOT = Path(__file__).resolve().parents[2]
UNITS = {"05986": "Phường Tam Thanh", "06184": "Xã Đồng Đăng"}
TZ7 = timezone(timedelta(hours=7))


class Directory(Served):
    """Answers /directory/v1/units/<code> like the directory does."""

    def __init__(self):
        @Request.application
        def app(request):
            parts = request.path.strip("/").split("/")
            if len(parts) == 4 and parts[:3] == ["directory", "v1", "units"] and parts[3] in UNITS:
                return Response(json.dumps({"code": parts[3], "name": UNITS[parts[3]], "level": "commune"}),
                                mimetype="application/json")
            return Response('{"status":404}', status=404, mimetype="application/problem+json")

        super().__init__(app)


@pytest.fixture(scope="module")
def directory():
    d = Directory()
    yield d
    d.stop()


@pytest.fixture
def env(start_function, directory, rt):
    fn = start_function("environment", peer_url_template=directory.template)
    return fn.app.test_client()


def op(tokens):
    return tokens("operator", "op-1")


def station(client, tokens, sid="lsn-air-1", kind="air", unit="05986", **extra):
    body = {"id": sid, "kind": kind, "name": f"Trạm {sid}", "unit": unit, "lat": 21.85, "lon": 106.76, **extra}
    r = client.post("/v1/stations", json=body, headers=op(tokens))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def hours_of(start: datetime, n: int, per_hour: int, values) -> list[dict]:
    """``per_hour`` readings in each of ``n`` hours from ``start``; ``values(i_hour)`` gives the values."""
    out = []
    for h in range(n):
        for m in range(per_hour):
            t = start + timedelta(hours=h, minutes=1 + m * (59 // per_hour))
            # ±0.1 alternating: the hour's mean is the value, and no sensor looks stuck
            out.append({"observed_at": t.isoformat(), **{k: v + (0.1 if m % 2 else -0.1) for k, v in values(h).items()}})
    return out


def test_a_batch_sent_again_after_its_run_stopped_past_the_storing_is_finished(env, tokens, rt, monkeypatch):
    """A run that stored its readings, then stopped before the day summary, the event and the alert
    (a crash, a store failure), left a redelivery finding them stored: answered as duplicates, the
    rest never done, the IOC never told. A duplicate first stored within storage.REDO_S is taken as
    that redelivery and what follows its storing is done again (each step repeat-safe)."""
    from functions.environment.function import storage
    from lscloud.delivery import tail

    station(env, tokens)
    dev = tokens("device", "sensor-1", unit="lsn-air-1")
    now = datetime.now(TZ7).replace(second=0, microsecond=0)
    batch = [{"observed_at": (now - timedelta(minutes=2)).isoformat(), "pm25": 30.5, "pm10": 55}]
    write_days = storage.write_days

    def stops(*args, **kwargs):
        raise storage.ConditionalCheckFailed("the process stopped here")

    monkeypatch.setattr(storage, "write_days", stops)
    assert env.post("/v1/stations/lsn-air-1/observations", json=batch, headers=dev).status_code >= 409
    monkeypatch.setattr(storage, "write_days", write_days)
    again = env.post("/v1/stations/lsn-air-1/observations", json=batch, headers=dev).get_json()
    assert again["duplicates"] == 1 and again["accepted"] == 0   # answered as what it is
    day = storage.days("lsn-air-1", now.date(), now.date())
    assert any(h.get("pm25") for hours in day.values() for h in hours.values()), day   # the summary is there
    recorded = [m for m in tail(rt.settings, 50) if m["event"]["type"] == "vn.langson.environment.observations.recorded.v1"]
    assert [datetime.fromisoformat(m["event"]["data"]["readings"][0]["observed_at"].replace("Z", "+00:00"))
            for m in recorded] == [datetime.fromisoformat(batch[0]["observed_at"])]   # the IOC is told, once


def test_register_read_and_refuse(env, tokens):
    s = station(env, tokens)
    assert s["commune"] == "Phường Tam Thanh" and s["kind"] == "air"
    again = env.post("/v1/stations", json={"id": "lsn-air-1", "kind": "air", "name": "Trạm lsn-air-1", "unit": "05986",
                                           "lat": 21.85, "lon": 106.76}, headers=op(tokens))
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    other = env.post("/v1/stations", json={"id": "lsn-air-1", "kind": "air", "name": "khác", "unit": "05986",
                                           "lat": 21.85, "lon": 106.76}, headers=op(tokens))
    assert other.status_code == 409 and other.get_json()["errors"][0]["field"] == "/name"
    bad = env.post("/v1/stations", json={"id": "x-unit", "kind": "air", "name": "n", "unit": "99999", "lat": 21.8,
                                         "lon": 106.7}, headers=op(tokens))
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "/unit"
    assert env.get("/v1/stations/lsn-air-1").get_json()["id"] == "lsn-air-1"
    assert env.get("/v1/stations?kind=air").get_json()["total"] == 1
    assert env.get("/v1/stations/nope").status_code == 404


def test_observations_idempotent_flagged_and_named(env, tokens):
    station(env, tokens)
    dev = tokens("device", "sensor-1", unit="lsn-air-1")
    now = datetime.now(TZ7).replace(second=0, microsecond=0)
    batch = [{"observed_at": (now - timedelta(minutes=3)).isoformat(), "pm25": 30.5, "pm10": 55},
             {"observed_at": (now - timedelta(minutes=2)).isoformat(), "pm25": -4, "pm10": 50},
             {"observed_at": (now - timedelta(minutes=1)).isoformat(), "pm25": 1500, "no2": 40}]
    r = env.post("/v1/stations/lsn-air-1/observations", json=batch, headers=dev)
    body = r.get_json()
    assert r.status_code == 200 and body["accepted"] == 3 and body["flagged"] == 2, body
    assert [i.get("flags") for i in body["items"]] == [None, {"pm25": "negative"}, {"pm25": "ceiling"}]
    # the same readings again: duplicates; the same time with other values: a conflict, the first stays
    again = env.post("/v1/stations/lsn-air-1/observations", json=batch[:1] + [{**batch[1], "pm25": 5}], headers=dev).get_json()
    assert again["accepted"] == 0 and again["duplicates"] == 1 and again["conflicts"] == 1
    # another station's device, a parameter an air station does not measure, a time without offset
    assert env.post("/v1/stations/lsn-air-1/observations", json=batch,
                    headers=tokens("device", "s2", unit="other")).status_code == 403
    wrong = env.post("/v1/stations/lsn-air-1/observations", headers=dev,
                     json=[{"observed_at": now.isoformat(), "pm25": 1}, {"observed_at": now.isoformat(), "laeq": 60},
                           {"observed_at": (now + timedelta(hours=2)).isoformat(), "pm25": 1}])
    fields = {e["field"] for e in wrong.get_json()["errors"]}
    assert wrong.status_code == 422 and fields == {"/1/laeq", "/2/observed_at"}, wrong.get_json()
    no_offset = env.post("/v1/stations/lsn-air-1/observations", headers=dev, json=[{"observed_at": "2026-12-03T08:00:00", "pm25": 1}])
    assert no_offset.status_code == 422 and no_offset.get_json()["errors"][0]["field"] == "/0/observed_at"
    # year 1 at +14:00 has no UTC instant: it was converted before the range check refused it (a 500)
    ancient = env.post("/v1/stations/lsn-air-1/observations", headers=dev,
                       json=[{"observed_at": "0001-01-01T00:00:00+14:00", "pm25": 1}])
    assert ancient.status_code == 422 and ancient.get_json()["errors"][0]["field"] == "/0/observed_at"
    for q in ("aqi/daily?date=9999-12-31", "aqi/daily?date=0001-01-01", "aqi/hourly?to=0001-01-01T00:00:00Z"):
        assert env.get(f"/v1/stations/lsn-air-1/{q}").status_code == 400, q


def test_hourly_and_daily_aqi_from_stored_hours(env, tokens):
    station(env, tokens)
    dev = tokens("device", "sensor-1", unit="lsn-air-1")
    day_start = (datetime.now(TZ7) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    items = hours_of(day_start - timedelta(hours=7), 31, 46, lambda h: {"pm25": 55.7, "no2": 130.8 if h == 10 else 50.0,
                                                                    "o3": 89.3})
    for i in range(0, len(items), 500):
        assert env.post("/v1/stations/lsn-air-1/observations", json=items[i:i + 500], headers=dev).status_code == 200
    day = env.get(f"/v1/stations/lsn-air-1/aqi/daily?date={day_start.date().isoformat()}").get_json()
    assert day["aqi"] == 110 and day["dominant"] == "pm25" and day["sub_indices"]["no2"] == 65, day
    assert day["level"]["key"] == "poor" and day["level"]["advice_vi"]
    end = day_start + timedelta(hours=10)
    hours = env.get("/v1/stations/lsn-air-1/aqi/hourly", query_string={
        "from": (end - timedelta(hours=2)).isoformat(), "to": end.isoformat()}).get_json()["items"]
    assert [h["hour"] for h in hours] == [(end - timedelta(hours=1)).isoformat(), end.isoformat()]
    assert hours[-1]["sub_indices"]["pm25"] == 110 and hours[-1]["aqi"] == 110     # NowCast of a flat 55,7
    empty = env.get("/v1/stations/lsn-air-1/aqi/hourly", query_string={
        "from": (day_start - timedelta(days=5)).isoformat(), "to": (day_start - timedelta(days=5, hours=-1)).isoformat()}).get_json()
    assert empty["items"][0]["aqi"] is None and empty["items"][0]["missing"]


def test_alert_raised_once_and_cleared_with_hysteresis(env, tokens, rt):
    station(env, tokens)
    dev = tokens("device", "sensor-1", unit="lsn-air-1")
    start = (datetime.now(TZ7) - timedelta(hours=20)).replace(minute=0, second=0, microsecond=0)
    # PM2.5 flaps around the threshold's concentration, then stays low for long
    levels = [70, 90, 78, 82, 79, 81, 10, 10, 10, 10, 10, 10, 10, 10]
    answers = []
    for h, pm in enumerate(levels):
        answers.append(env.post("/v1/stations/lsn-air-1/observations", headers=dev,
                                json=hours_of(start + timedelta(hours=h), 1, 46, lambda _: {"pm25": pm})).get_json())
    types = [a["type"].split(".")[-2] for ans in answers for a in ans["alerts"]]
    assert types == ["raised", "cleared"], types


def test_an_alert_cut_off_after_its_state_is_published_by_the_next_judgement(env, tokens, rt, monkeypatch):
    """The alert's state said "raised" and a crash came before the publish: the device's resend
    found the hour judged and published nothing, and the IOC later heard a "cleared" for a raise it
    never had (the crash survey). The move's event is written with the state and published then."""
    from functions.environment.function import alerts
    from lscloud import outbox

    station(env, tokens)
    dev = tokens("device", "sensor-1", unit="lsn-air-1")
    start = (datetime.now(TZ7) - timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    sent: list[dict] = []
    real = outbox.publish

    def publish(evts, *a, **kw):
        sent.extend(evts)
        return real(evts, *a, **kw)

    monkeypatch.setattr(alerts.outbox, "publish", publish)
    # over the recorder: the cut publish never reaches ``sent``
    cut = cut_once(monkeypatch, alerts.outbox, "publish",
                   lambda evts, *_, **__: any(e["type"].endswith("alert.raised.v1") for e in evts),
                   error=RuntimeError("the process died here"))
    high = hours_of(start, 4, 46, lambda _: {"pm25": 150})
    first = env.post("/v1/stations/lsn-air-1/observations", headers=dev, json=high)
    assert first.status_code == 500 and cut   # cut off after the raised state was written
    again = env.post("/v1/stations/lsn-air-1/observations", headers=dev, json=high)   # the device resends
    assert again.status_code == 200, again.get_json()
    raised = [e for e in sent if e.get("type", "").endswith("alert.raised.v1")]
    assert len(raised) == 1 and raised[0]["data"]["station"] == "lsn-air-1"
    from functions.environment.function.models import AlertState

    assert "pending" not in AlertState.get("lsn-air-1", "aqi").data


def test_an_hour_without_enough_readings_raises_no_alert(env, tokens, rt):
    """The alert judged any hour with a reading, the published hourly AQI only hours with 75 % of
    theirs: a station coming back with a few high readings raised an alert (to the IOC) for an hour
    the public figures showed as "not enough data"."""
    station(env, tokens)
    dev = tokens("device", "sensor-1", unit="lsn-air-1")
    start = (datetime.now(TZ7) - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    calm = hours_of(start, 2, 46, lambda _: {"pm25": 10})   # two complete hours
    assert env.post("/v1/stations/lsn-air-1/observations", headers=dev, json=calm).status_code == 200
    few = hours_of(start + timedelta(hours=2), 1, 3, lambda _: {"pm25": 500})   # 3 readings where 60 are due
    assert env.post("/v1/stations/lsn-air-1/observations", headers=dev, json=few).status_code == 200
    # the next hour's first reading closes that hour: it is judged then
    answer = env.post("/v1/stations/lsn-air-1/observations", headers=dev,
                      json=hours_of(start + timedelta(hours=3), 1, 1, lambda _: {"pm25": 10})).get_json()
    assert answer["alerts"] == [], answer
    hour = env.get("/v1/stations/lsn-air-1/aqi/hourly", query_string={
        "from": (start + timedelta(hours=2)).isoformat(), "to": (start + timedelta(hours=3)).isoformat()}).get_json()
    # published: the three readings count for nothing (NowCast of the complete hours before it)
    assert hour["items"][-1]["readings"] == {"pm25": 3} and hour["items"][-1]["aqi"] == 20, hour


def test_device_message_relayed_from_nats(env, tokens, rt, settings):
    station(env, tokens)
    now = datetime.now(TZ7).replace(second=0, microsecond=0)
    event = devices.to_event("devices.environment.stations.lsn-air-1.observations",
                             json.dumps({"observed_at": now.isoformat(), "pm25": 12}).encode(), {"Nmqtt-Pub": "1"}, 7, now)
    assert event["type"] == "vn.langson.environment.device.message.received.v1" and event["devicechannel"] == "mqtt"
    from lscloud import auth, events

    headers, body = events.to_binary_http(event)
    r = env.post("/events", data=body, headers={**headers, **auth.delivery_headers(rt.settings.replace(service="environment"))})
    assert r.status_code == 200, r.get_json()
    hour = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H") if now.minute or now.second else now.strftime("%Y-%m-%dT%H")
    stored = env.get(f"/v1/stations/lsn-air-1/readings?hour={hour}", headers=op(tokens)).get_json()["readings"]
    assert stored[0]["via"] == "mqtt" and stored[0]["v"] == {"pm25": 12.0}

    # the busiest event there is (every station, every minute) keeps no events-seen record: the
    # reading is its own record (a repeat finds it, writes nothing and publishes nothing)
    from lscloud import store
    from lscloud.delivery import tail
    from store_calls import counting

    objects, bucket = store.connection()
    assert list(objects.list(bucket, "events-seen/")) == []
    with counting() as calls:
        again = env.post("/events", data=body,
                         headers={**headers, **auth.delivery_headers(rt.settings.replace(service="environment"))})
    assert again.status_code == 200 and calls["put"] == 0 and calls["delete"] == 0
    assert env.get(f"/v1/stations/lsn-air-1/readings?hour={hour}", headers=op(tokens)).get_json()["readings"] == stored
    recorded = [m for m in tail(rt.settings, 50) if m["event"]["type"] == "vn.langson.environment.observations.recorded.v1"
                and m["event"]["data"]["channel"] == "mqtt"]
    assert len(recorded) == 1
    bad = devices.to_event("devices.environment.stations.nope.observations",   # an observation, of no station
                           json.dumps({"observed_at": now.isoformat(), "pm25": 12}).encode(), {}, 8, now)
    headers, body = events.to_binary_http(bad)
    assert env.post("/events", data=body, headers={**headers, **auth.delivery_headers(rt.settings.replace(service="environment"))}).status_code == 404


def test_who_may_call_what(start_function, directory, keys, rt):
    fn = start_function("environment", peer_url_template=directory.template)
    assert role_matrix.check(fn.app, "environment", keys[0]) > 0


def test_a_day_slot_never_goes_back_to_an_older_summary_of_its_hour(rt):
    # two batches of one hour write their day slots in either order (found by `lscloud bench environment`)
    from functions.environment.function import storage
    from functions.environment.function.models import Day

    end = datetime(2026, 12, 3, 9, tzinfo=TZ7)
    storage.write_days("st-1", {end: ({"pm25": {"n": 2, "mean": 10.0}}, 2)})
    storage.write_days("st-1", {end: ({"pm25": {"n": 1, "mean": 9.0}}, 1)})
    assert storage.hourly_series("st-1", end, end)["2026-12-03T09"]["pm25"]["n"] == 2
    assert Day.get("st-1", "2026-12-03").hours["09"]["_version"] == 2
