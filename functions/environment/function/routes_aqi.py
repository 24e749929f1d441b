"""VN_AQI by hour and by day, noise against QCVN 26:2010, the forecast, the alerts in force."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, g, jsonify

from lscloud import errors
from lscloud.auth import allow
from lscloud.web import query_params, responds

from . import clock, forecast, reports, stations
from .models import AlertState
from .route_ids import STATION_ID

bp = Blueprint("aqi", __name__)
WINDOW = ({"type": "string", "format": "date-time"})


def _air(station_id: str, kind: str = "air") -> dict:
    station = stations.get(station_id)
    if station["kind"] != kind:
        raise errors.NotFound(f"{station_id} is a {station['kind']} station", detail_vi="Trạm này không đo thông số đó.")
    return station


def _window():
    now = datetime.now(timezone.utc)
    end = g.query["to"] or now
    start = g.query["from"] or end - timedelta(hours=24)
    return start, end


@bp.get(f"/v1/stations/<{STATION_ID}>/aqi/hourly")
@allow("public")
@responds("environment/aqi-hour.json", page=True)
@query_params(("from", "Start (exclusive), ISO 8601 with offset; default 24 h before to", WINDOW),
              ("to", "End (inclusive), ISO 8601 with offset; default now", WINDOW))
def aqi_hourly(station_id: str):
    """Hourly VN_AQI (hours labelled by their end, local time)."""
    items = reports.hourly(_air(station_id), *_window())
    return jsonify(items=items, total=len(items), next_page_token=None)


@bp.get(f"/v1/stations/<{STATION_ID}>/aqi/daily")
@allow("public")
@responds("environment/aqi-day.json")
@query_params(("date", "The local day (01:00 to 24:00); default yesterday", {"type": "string", "format": "date"}))
def aqi_daily(station_id: str):
    """Daily VN_AQI of one day."""
    day = g.query["date"] or (datetime.now(clock.TZ) - timedelta(days=1)).date()
    return jsonify(reports.daily(_air(station_id), day))


@bp.get(f"/v1/stations/<{STATION_ID}>/noise/hourly")
@allow("public")
@responds("environment/noise-hour.json", page=True)
@query_params(("from", "Start (exclusive), ISO 8601 with offset", WINDOW), ("to", "End (inclusive)", WINDOW))
def noise_hourly(station_id: str):
    """Hourly LAeq against the QCVN 26:2010/BTNMT limit of the station's zone and period."""
    items = reports.hourly(_air(station_id, "noise"), *_window())
    return jsonify(items=items, total=len(items), next_page_token=None)


@bp.get(f"/v1/stations/<{STATION_ID}>/forecast")
@allow("public")
@responds("environment/forecast.json")
@query_params(("hours", "How far ahead, 6 to 24 hours", {"type": "integer", "minimum": 6, "maximum": 24, "default": 24}),
              ("days", "History used, days", {"type": "integer", "minimum": 4, "maximum": 30, "default": 14}))
def aqi_forecast(station_id: str):
    """The next hours' AQI from the station's own history, with the model's error on held-back hours."""
    station = _air(station_id)
    now = datetime.now(timezone.utc)
    history = reports.hourly(station, now - timedelta(days=g.query["days"]), now)
    series = {datetime.fromisoformat(h["hour"]): float(h["aqi"]) for h in history if h.get("aqi") is not None}
    return jsonify(station=station["id"], model=forecast.__doc__.split("\n\n")[1].replace("\n", " "),
                   evaluation=forecast.evaluate(series), forecast=forecast.predict(series, g.query["hours"]))


@bp.get("/v1/alerts")
@allow("public")
@responds("environment/alert-state.json", page=True)
def alerts_in_force():
    """Alerts raised and not yet cleared, per station."""
    items = [{"station": a.station, "alert": a.alert, "level": a.data.get("level"),
              "raised_hour": a.data.get("raised_hour"), "last_hour": a.data.get("last_hour")}
             for a in AlertState.scan() if a.data.get("raised")]
    return jsonify(items=items, total=len(items), next_page_token=None)

