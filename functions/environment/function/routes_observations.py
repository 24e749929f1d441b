"""Observations by HTTP, and a station's stored readings (with their flags) for operators."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify

from lscloud import errors
from lscloud.auth import allow, principal
from lscloud.statemachine import Actor
from lscloud.web import body_limit, query_params, responds, validate_body

from . import clock, ingest, stations, storage
from .route_ids import STATION_ID

bp = Blueprint("observations", __name__)


@bp.post(f"/v1/stations/<{STATION_ID}>/observations")
@allow("device", "operator")
@body_limit(512 * 1024)
@validate_body("environment/observations.json")
@responds("environment/ingest-result.json")
def post_observations(station_id: str):
    """Send readings (a JSON list); each is idempotent on (station, observed_at)."""
    station = stations.get(station_id)
    stations.may_write(station, Actor.of(principal()))
    return jsonify(ingest.record(station, g.body, "http", current_app.config["ENVIRONMENT"]))


@bp.get(f"/v1/stations/<{STATION_ID}>/readings")
@allow("operator", "auditor")
@responds("environment/hour-readings.json")
@query_params(("hour", "The hour, by its local end: 2026-12-03T08", {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}$"}))
def hour_readings(station_id: str):
    """One hour's stored readings of a station, each with its flags and the channel it came by."""
    station = stations.get(station_id)
    hour = g.query["hour"]
    if hour is None:
        raise errors.Invalid.at("hour", "hour is required", "Cần có tham số hour (giờ cần xem).")
    try:
        clock.parse_hour_key(hour)
    except ValueError:
        raise errors.Invalid.at("hour", "not a calendar hour", "hour không phải là một giờ có thật trên lịch.") from None
    rs = storage.hour_readings(station["id"], hour)
    return jsonify(station=station["id"], hour=hour, readings=[{"observed_at": k, **v} for k, v in sorted(rs.items())])
