"""Monitoring stations: registered by operators (the commune checked against the directory), read by
everyone; devices write for the station named in their token's ``unit``."""

from __future__ import annotations

import re

from lscloud import communes, devices, errors, peers
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


def register(settings, body: dict, actor: Actor, request: dict | None = None) -> dict:
    """Register a station; a station with this id already there is a 409. The station is its own
    idempotency record: ``request`` is what it keeps of the request
    (:func:`lscloud.idempotency.first_request`), so a resend finds it (:func:`resend`)."""
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
    return records().create(Station(doc["id"], kind=doc["kind"], data=doc, request=request), [t]).doc


def resend(station_id: str, judge) -> dict | None:
    """The station a refused register is the resend of (its event published again, should a crash
    have cut it off), or None (:meth:`lscloud.aggregate.Aggregate.resend`)."""
    out = records().resend(station_id, judge)
    return out.doc if out is not None else None


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


ROTATION_HOLD_S = 300
"""How long a station's freshly issued MQTT credentials are kept from being replaced without
``force``: an operator console's retry after a lost answer, or a double submit, comes within it."""


class CredentialsJustIssued(errors.Conflict):
    type = "credentials-just-issued"
    title, title_vi = "Credentials just issued", "Thông tin đăng nhập vừa được cấp"


def _just_issued(held: devices.JustIssued) -> CredentialsJustIssued:
    return CredentialsJustIssued(
        f"This station's MQTT credentials were issued moments ago ({held.issued_at}): the password that "
        "answer showed works. If it was lost, issue again with force=true: that replaces the password.",
        detail_vi="Thông tin đăng nhập MQTT của trạm vừa được cấp: mật khẩu trong lần trả lời đó vẫn dùng được. "
                  "Nếu không nhận được, hãy cấp lại với force=true: mật khẩu cũ sẽ bị thay.",
        errors=[errors.field("force", "true replaces the credentials issued moments ago",
                             "true để thay thông tin đăng nhập vừa cấp")],
        issued_at=held.issued_at, headers={"Retry-After": str(held.retry_after_s)})


def issue_credentials(station: dict, topic: str, issued_by: str, *, force: bool = False) -> devices.Issued:
    """Issue (or rotate) the station's MQTT credentials (:func:`lscloud.devices.issue`), unless
    they were issued within :data:`ROTATION_HOLD_S` and ``force`` is not given
    (:class:`CredentialsJustIssued`: the password a first answer showed is not made dead by a retry;
    no replayed answer does this instead, as it would keep the password in clear)."""
    try:
        return devices.issue("environment", device_user(station), [topic], issued_by=issued_by,
                             not_within_s=0 if force else ROTATION_HOLD_S)
    except devices.JustIssued as held:
        raise _just_issued(held) from None


def revoke_credentials(station: dict) -> bool:
    """Revoke the station's MQTT credentials (:func:`lscloud.devices.revoke`); they are deleted, so
    issuing again right after is not held back."""
    return devices.revoke("environment", device_user(station))


def may_write(station: dict, actor: Actor) -> None:
    """A device writes only for its own station (``unit`` = the station id); operators for any."""
    if actor.kind == "device" and actor.unit != station["id"]:
        raise NotYourStation("a device writes only for the station in its token's unit",
                             detail_vi="Thiết bị chỉ được gửi số liệu cho trạm của mình.")
