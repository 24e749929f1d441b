"""Monitoring stations: registered by operators (the commune checked against the directory), read by
everyone; devices write for the station named in their token's ``unit``."""

from __future__ import annotations

import re

from lscloud import communes, errors, peers
from lscloud.aggregate import Aggregate
from lscloud.statemachine import Action, Actor, StateMachine
from lscloud.store import DoesNotExist, InvalidKey

from .models import Station

ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])$")
MACHINE = StateMachine("environment", [
    Action("register", {"new"}, "active", "station.registered", actors={"operator"}),
], states=("active",), noun=("station", "trạm quan trắc"), state_names_vi={"active": "đang hoạt động"})
SOURCE = "/environment"


class NoSuchStation(errors.NotFound):
    type = "station-not-found"
    title, title_vi = "No such station", "Không có trạm quan trắc này"


class NotYourStation(errors.Forbidden):
    type = "not-your-station"
    title, title_vi = "Not your station", "Không phải trạm của thiết bị"


def records() -> Aggregate:
    return Aggregate(Station, machine=MACHINE, source=SOURCE, mirror=("kind",),
                     summary=lambda d: {k: d.get(k) for k in ("id", "kind", "name", "unit", "commune", "lat", "lon", "zone")})


def register(settings, body: dict, actor: Actor) -> dict:
    """Register a station; a station with this id already there is a 409."""
    if body["kind"] != "noise" and "zone" in body:
        raise errors.Invalid.at("/zone", "only noise stations have a QCVN 26:2010 zone",
                                "Chỉ trạm đo tiếng ồn mới có khu vực theo QCVN 26:2010.")
    unit = communes.commune(peers.client(settings), body["unit"], "/unit")
    doc = {"id": body["id"], "kind": body["kind"], "name": body["name"], "unit": body["unit"],
           "commune": unit.get("name"), "lat": body["lat"], "lon": body["lon"],
           "interval_s": body.get("interval_s", 60), "ceilings": body.get("ceilings") or {},
           "operator": actor.sub, "status": "new"}
    if body["kind"] == "noise":
        doc["zone"] = body.get("zone", "ordinary")
    t = MACHINE.apply(doc, "register", actor)
    doc["registered_at"] = t.at
    return records().create(Station(doc["id"], kind=doc["kind"], data=doc), [t]).doc


def get(station_id: str) -> dict:
    """The station (NoSuchStation if there is none)."""
    try:
        return Station.get(station_id).data
    except (DoesNotExist, InvalidKey):
        raise NoSuchStation(f"no station {station_id[:64]!r}", detail_vi="Không có trạm quan trắc này.") from None


def device_user(station: dict) -> str:
    """The station's MQTT username (its credentials: :func:`lscloud.devices.issue`)."""
    return f"env-{station['id']}"


def all_stations(kind: str | None = None) -> list[dict]:
    out, token = [], None
    while True:
        page = Station.scan(limit=200, page_token=token)
        out += [s.data for s in page if kind is None or s.kind == kind]
        token = page.page_token
        if not token:
            return out


def may_write(station: dict, actor: Actor) -> None:
    """A device writes only for its own station (``unit`` = the station id); operators for any."""
    if actor.kind == "device" and actor.unit != station["id"]:
        raise NotYourStation("a device writes only for the station in its token's unit",
                             detail_vi="Thiết bị chỉ được gửi số liệu cho trạm của mình.")
