"""Gate devices (weighbridges, ANPR cameras) send their CloudEvents here; they come back to /events."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from lscloud.auth import allow
from lscloud.context import app_state
from lscloud.web import raw_body, responds

from .. import device_events
from .common import actor

bp = Blueprint("devices", __name__)


@bp.post("/v1/device-events")
@allow("device")
@raw_body()
@responds("border/device-event-accepted.json", status=202)
def ingest_device_event():
    """A gate device's CloudEvent (weighbridge reading, ANPR read): checked, then published to NATS."""
    out = device_events.accept(request.headers, request.get_data(cache=True), actor(), app_state().schemas.errors)
    return jsonify({"id": out["id"], "type": out["type"], "accepted": True}), 202
