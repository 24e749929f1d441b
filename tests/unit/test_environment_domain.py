"""The environment domain without servers: quality flags, noise limits, alert hysteresis, NGSI-LD
parsing, the forecast's honesty check, hour labels."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from functions.environment.function import alerts, clock, forecast, ngsi, noise, readings
from functions.environment.function.settings import Settings
from lscloud.patterns import ecma_regex

UTC = timezone.utc


def test_hours_are_labelled_by_their_end_and_days_run_to_24():
    t = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)                    # 07:30 local
    assert clock.hour_key(clock.hour_end(t)) == "2026-12-03T08"
    assert clock.hour_key(clock.hour_end(datetime(2026, 12, 3, 1, 0, tzinfo=UTC))) == "2026-12-03T08"   # 08:00 sharp
    midnight = datetime(2026, 12, 4, 0, 0, tzinfo=clock.TZ)
    assert clock.day_of(midnight).isoformat() == "2026-12-03" and clock.slot(midnight) == "24"


def test_flags_negative_ceiling_and_stuck():
    assert readings.flags("air", {"pm25": -1, "pm10": 2500, "no2": 40}) == {"pm25": "negative", "pm10": "ceiling"}
    assert readings.flags("air", {"pm25": 600}, {"pm25": 500}) == {"pm25": "ceiling"}
    start = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    rs = {clock.utc(start + timedelta(minutes=m)): {"v": {"pm25": 42.0, "no2": 30.0 + m}, "f": {}} for m in range(30)}
    readings.mark_stuck(rs)
    assert all(r["f"] == {"pm25": "stuck"} for r in rs.values())
    s = readings.summary("air", rs)
    assert s["pm25"] == {"n": 0, "flagged": {"stuck": 30}} and s["no2"]["n"] == 30
    short = {k: v for k, v in list({clock.utc(start + timedelta(minutes=m)): {"v": {"pm25": 42.0}, "f": {}}
                                    for m in range(29)}.items())}
    readings.mark_stuck(short)
    assert not any(r["f"] for r in short.values())


def test_noise_periods_limits_and_energy_mean():
    assert noise.period(6) == "night" and noise.period(7) == "day" and noise.period(21) == "day" and noise.period(22) == "night"
    assert noise.limit("ordinary", 14)["limit_dba"] == 70 and noise.limit("special", 23)["limit_dba"] == 45
    assert noise.limit("ordinary", 14)["verified"] is False          # limits from secondary transcriptions
    assert noise.leq([60, 60]) == pytest.approx(60) and noise.leq([60, 70]) == pytest.approx(67.4, abs=0.05)
    assert noise.assess("ordinary", 23, 58.0)["exceeds"] is True


@pytest.mark.parametrize("values,events", [
    ([120, 99, 101, 95, 102, 80, 85, 40], ["raised", None, None, None, None, None, "cleared", None]),   # flapping: once each
    ([120, 160, 210, 150, 60, 60], ["raised", "raised", "raised", None, None, "cleared"]),              # escalation per level
    ([50, 60, 100, 90], [None, None, None, None]),
])
def test_aqi_alert_hysteresis(values, events):
    s, state, got = Settings(), {}, []
    from functions.environment.function import aqi
    for v in values:
        got.append(alerts._judge("aqi", state, float(v), s.alert_aqi, s.alert_aqi - s.alert_margin, aqi.level(v)["key"], s))
    assert got == events


def test_noise_alert_clears_under_the_margin_only():
    s, state = Settings(), {}
    seq = [alerts._judge("noise", state, v, 55, 52, None, s) for v in (56, 54, 53.5, 51, 51.9)]
    assert seq == ["raised", None, None, None, "cleared"]


def test_the_entity_id_schema_is_the_ids_the_broker_issues():
    """``schemas/environment/entity-id.json`` (the entity routes' ``entity_id``) names the broker's
    types (:data:`ngsi.TYPES`) and the station id of a registration; each id the broker gives
    matches it and reads back."""
    schemas = Path(__file__).resolve().parents[2] / "schemas" / "environment"
    pattern = json.loads((schemas / "entity-id.json").read_text())["pattern"]
    station_id = json.loads((schemas / "station-create.json").read_text())["properties"]["id"]["pattern"]
    types, station = re.fullmatch(r"\^urn:ngsi-ld:\(\?:([A-Za-z|]+)\):(.*)", pattern).groups()
    assert sorted(types.split("|")) == sorted(ngsi.TYPES.values()) and "^" + station == station_id
    for kind, type_ in ngsi.TYPES.items():
        entity = ngsi.entity_id({"kind": kind, "id": "lsn-" + kind + "-1"})
        assert ecma_regex(pattern).search(entity) and ngsi.station_of(entity) == (type_, "lsn-" + kind + "-1")



@pytest.mark.parametrize("value", [
    "urn:ngsi-ld:AirQualityObserved:abc", "https://example.org/x", "https://user:pw@example.org:8443/a/b?c=d&e#f",
    "urn:ngsi-ld:Foo:bar", "http://[::1]/x", "http://[2001:db8::7]:80", "http://[v1.fe]/", "mailto:a@b.vn",
    "tag:example.org,2026:x%20y", "file:///tmp/x", "a+b-c.d:", "urn:x?=a#"])
def test_an_entity_id_is_a_uri(value):
    assert ngsi.is_uri(value)


@pytest.mark.parametrize("value", [
    "abc", "", " urn:x", "urn:x ", "urn:x y", "urn:x\n", "urn:x\ty", "urn:\x7f", "1urn:x", ":x", "-a:x",
    "urn:%zz", "urn:%2", "urn:a<b", "urn:a\"b", "urn:a{b}", "urn:a\\b", "urn:a|b", "urn:đồng-đăng",
    "http://[::1", "http://[::g]/", "http://[fe80::1%eth0]/", "http://a/b[c]", "urn:a#b#c", None, 42])
def test_what_is_not_a_uri(value):
    assert not ngsi.is_uri(value)


def test_station_of_tells_a_non_uri_from_an_unknown_entity():
    """5.7.1.4 / 5.7.3.4: not a URI → BadRequestData naming ``id``; a URI not ours → ResourceNotFound."""
    for value in ("abc", " x", "urn:x y", ""):
        with pytest.raises(ngsi.BadRequestData) as bad:
            ngsi.station_of(value)
        assert bad.value.errors[0]["field"] == "id" and bad.value.detail_vi
    for value in ("urn:ngsi-ld:Foo:bar", "urn:ngsi-ld:AirQualityObserved:X", "https://example.org/x"):
        with pytest.raises(ngsi.ResourceNotFound):
            ngsi.station_of(value)
    # RFC 8141: the scheme and the namespace id are case-insensitive, the rest is not
    assert ngsi.station_of("URN:NGSI-LD:AirQualityObserved:lsn-air-1") == ("AirQualityObserved", "lsn-air-1")
    assert ngsi.canonical_id("Urn:Ngsi-Ld:NoiseLevelObserved:a") == "urn:ngsi-ld:NoiseLevelObserved:a"
    with pytest.raises(ngsi.ResourceNotFound):
        ngsi.station_of("urn:ngsi-ld:AIRQUALITYOBSERVED:lsn-air-1")

def test_ngsi_q_near_and_durations():
    groups = ngsi.parse_q('pm25>30;no2<100|name=="A"')
    assert ngsi.matches({"pm25": 31, "no2": 50}, groups) and ngsi.matches({"name": "A"}, groups)
    assert not ngsi.matches({"pm25": 31, "no2": 150}, groups)
    for bad in ("(pm25>1", "pm25>>1", "pm25>abc"):
        with pytest.raises(ngsi.BadRequestData):
            ngsi.parse_q(bad)
    assert ngsi.parse_near("near;maxDistance==2000", "Point", "[106.76,21.85]") == (106.76, 21.85, "max", 2000.0)
    assert 9_000 < ngsi.distance_m(106.7615, 21.8537, 106.70, 21.943) < 12_000     # Lạng Sơn city → Đồng Đăng
    assert ngsi.parse_duration_hours("PT1H") == 1 and ngsi.parse_duration_hours("P1DT6H") == 30
    with pytest.raises(ngsi.BadRequestData):
        ngsi.parse_duration_hours("PT30M")
    assert ngsi.aggregate([{"n": 2, "mean": 10, "min": 9, "max": 11}, {"n": 1, "mean": 40, "min": 40, "max": 40}], "avg", False) == 20


def test_forecast_reports_its_error_against_baselines():
    start = datetime(2026, 11, 1, tzinfo=clock.TZ)
    series = {start + timedelta(hours=h): 60 + 30 * math.sin(2 * math.pi * (h % 24) / 24) + (h // 24 % 3) * 5
              for h in range(24 * 20)}
    ev = forecast.evaluate(series)
    assert ev["enough_history"] and set(ev["horizons"]) == {"1", "3", "6", "12", "24"}
    six = ev["horizons"]["6"]
    assert six["mae_model"] <= six["mae_persistence"] and six["mae_model"] <= six["mae_diurnal"] + 0.5
    assert len(forecast.predict(series, 24)) == 24
    assert forecast.evaluate(dict(list(series.items())[:10])) == {"enough_history": False, "hours": 10, "needed": 72}
