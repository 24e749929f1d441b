"""Only ended hours are reported (Decision 1459/QĐ-TCMT: an hourly value is the mean of an hour,
labelled by its end), on real weed mini + nats-server. Minutes into an hour, one reading of it made
the NGSI-LD entity's pm25 with ``dateObserved``/``observedAt`` up to 59 minutes ahead, and
``/aqi/hourly`` listed that hour with its one reading. The clock they are read by is
``reports.now``: here 20 minutes into an hour that has passed, so every reading is in the past."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from test_environment_api import TZ7, Directory, hours_of, op, station
from lscloud.timestamps import parse_iso

pytestmark = pytest.mark.integration

ENTITY = "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:lsn-air-1"


@pytest.fixture(scope="module")
def directory():
    d = Directory()
    yield d
    d.stop()


@pytest.fixture
def asked(start_function, directory, rt, tokens, monkeypatch):
    """The station with three complete hours ended at ``hour``, and one reading 30 s before the clock
    (20 minutes into the next hour, which has not ended): (client, hour, clock)."""
    from functions.environment.function import reports

    client = start_function("environment", peer_url_template=directory.template).app.test_client()
    station(client, tokens, "lsn-air-1", "air", "05986", lat=21.8537, lon=106.7615)
    hour = datetime.now(TZ7).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    at = hour + timedelta(minutes=20)
    batch = hours_of(hour - timedelta(hours=3), 3, 46, lambda h: {"pm25": 30.0 + h, "pm10": 50.0})
    batch.append({"observed_at": (at - timedelta(seconds=30)).isoformat(), "pm25": 300.0, "pm10": 400.0})
    r = client.post("/v1/stations/lsn-air-1/observations", json=batch, headers=op(tokens))
    assert r.status_code == 200, r.get_json()
    monkeypatch.setattr(reports, "now", lambda: at.astimezone(timezone.utc), raising=False)
    return client, hour, at


def test_the_entity_is_the_last_ended_hour_never_one_observed_ahead(asked):
    client, hour, at = asked
    kv = client.get(ENTITY, query_string={"options": "keyValues"}).get_json()
    assert parse_iso(kv["dateObserved"]) == hour <= at, kv
    assert kv["pm25"] == 32.0 and kv["airQualityIndex"] is not None, kv
    norm = client.get(ENTITY).get_json()
    assert norm["pm25"]["value"] == 32.0 and parse_iso(norm["pm25"]["observedAt"]) == hour, norm
    concise = client.get(ENTITY, query_string={"options": "concise"}).get_json()
    assert parse_iso(concise["pm10"]["observedAt"]) == hour, concise
    # the query's entities are read by the same clock
    found = client.get("/ngsi-ld/v1/entities", query_string={"type": "AirQualityObserved", "q": "pm25>100"})
    assert found.status_code == 200 and found.get_json() == [], found.get_json()


def test_the_hourly_series_stops_at_the_last_ended_hour(asked):
    client, hour, at = asked
    items = client.get("/v1/stations/lsn-air-1/aqi/hourly").get_json()["items"]
    assert parse_iso(items[-1]["hour"]) == hour and items[-1]["readings"]["pm25"] == 46, items[-1]
    # asked up to a moment past the clock: still only what has ended
    ahead = client.get("/v1/stations/lsn-air-1/aqi/hourly", query_string={
        "from": (hour - timedelta(hours=2)).isoformat(), "to": (hour + timedelta(hours=2)).isoformat()}).get_json()
    assert [parse_iso(i["hour"]) for i in ahead["items"]] == [hour - timedelta(hours=1), hour]
    later = client.get("/v1/stations/lsn-air-1/aqi/hourly", query_string={
        "from": (hour + timedelta(minutes=30)).isoformat(), "to": (hour + timedelta(hours=2)).isoformat()}).get_json()
    assert later["items"] == []
    temporal = client.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:lsn-air-1", query_string={
        "timerel": "between", "timeAt": (hour - timedelta(hours=2)).isoformat(),
        "endTimeAt": (hour + timedelta(hours=2)).isoformat(), "attrs": "pm25", "options": "temporalValues"})
    assert temporal.status_code == 200, temporal.get_json()
    values = temporal.get_json()["pm25"]["values"]
    assert [parse_iso(t) for _, t in values] == [hour - timedelta(hours=1), hour], values
