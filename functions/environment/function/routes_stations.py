"""Stations: registered by operators, read by anyone; MQTT credentials issued to a station's device."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify

from lscloud import devices, idempotency
from lscloud.auth import allow, principal
from lscloud.idempotency import idempotent
from lscloud.statemachine import Actor
from lscloud.web import page_params, query_params, responds, validate_body

from . import stations
from .route_ids import STATION_ID

bp = Blueprint("stations", __name__)


def public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("operator", "timestamps", "updated_at")}


@bp.post("/v1/stations")
@allow("operator")
@validate_body("environment/station-create.json")
# the station is its own idempotency record: its create-only write registers it once
@idempotent(key_from=lambda body: body.get("id"), in_record=True)
@responds("environment/station.json", status=201)
def register():
    """Register a monitoring station (air, noise or water) in a commune of the directory. The same
    request again (same operator, id and body) is answered with the station it registered; another
    body under that id is a 409 naming the fields that differ."""
    stamp = idempotency.first_request()
    doc, replayed = idempotency.created_or_resent(
        lambda: stations.register(current_app.config["PLATFORM"], g.body, Actor.of(principal()), request=stamp),
        lambda judge: stations.resend(g.body["id"], judge))
    resp = jsonify(public(doc))
    resp.status_code = 201
    return idempotency.mark_replayed(resp) if replayed else resp


@bp.get("/v1/stations")
@allow("public")
@responds("environment/station.json", page=True)
@query_params(("kind", "Only stations of this kind", {"type": "string", "enum": ["air", "noise", "water"]}),
              *page_params(default_limit=50, max_limit=200, offset=True))
def list_stations():
    """The stations, by id."""
    found = sorted(stations.all_stations(g.query["kind"]), key=lambda s: s["id"])
    start = g.query["offset"] or 0
    page = found[start:start + g.query["limit"]]
    more = start + len(page) < len(found)
    return jsonify(items=[public(s) for s in page], total=len(found),
                   next_page_token=None if not more else str(start + len(page)))


@bp.get(f"/v1/stations/<{STATION_ID}>")
@allow("public")
@responds("environment/station.json")
def read(station_id: str):
    """One station."""
    return jsonify(public(stations.get(station_id)))


@bp.post(f"/v1/stations/<{STATION_ID}>/mqtt-credentials")
@allow("operator")
@responds("environment/mqtt-credentials.json", status=201)
@query_params(("force", "replace credentials issued within the last 5 minutes (their password stops working)",
               {"type": "boolean", "default": False}))
def mqtt_credentials(station_id: str):
    """Issue (or rotate) the station's MQTT credentials; the password is shown once. Within 5
    minutes of an issue another is refused (409 ``credentials-just-issued``) unless ``force=true``:
    a retry or a double submit must not make the password the first answer showed dead. No
    Idempotency-Key replays it: the stored answer would keep the password in clear."""
    station = stations.get(station_id)
    topic = devices.topic("environment", "stations", station["id"], "observations")
    issued = stations.issue_credentials(station, topic, principal().sub or "operator", force=g.query["force"])
    return jsonify({"station": station["id"], "username": issued.user, "password": issued.password,
                    "topic": topic, "nats_subject": devices.subject(topic), "qos": 1,
                    "note": "the password is shown once; issuing again (force=true within 5 minutes) replaces it"}), 201


@bp.delete(f"/v1/stations/<{STATION_ID}>/mqtt-credentials")
@allow("operator")
@responds("environment/mqtt-credentials-revoked.json")
def revoke_mqtt_credentials(station_id: str):
    """Revoke the station's MQTT credentials (a station retired or its device lost).

    The broker refuses them within seconds, and closes the connections that used them; issuing
    again gives the station new ones. Repeating the call changes nothing (``revoked`` false)."""
    station = stations.get(station_id)
    return jsonify({"station": station["id"], "username": stations.device_user(station),
                    "revoked": stations.revoke_credentials(station)})
