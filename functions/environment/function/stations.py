"""Monitoring stations: registered by operators (the commune checked against the directory), read by
everyone; devices write for the station named in their token's ``unit``."""

from __future__ import annotations

import re

from datetime import timedelta

from lscloud import communes, devices, errors, peers
from lscloud.aggregate import Aggregate, delete_quietly
from lscloud.statemachine import Action, Actor, StateMachine, iso, now
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey, Model, attributes as A

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


class CredentialHold(Model):
    """A station whose MQTT credentials were issued within :data:`ROTATION_HOLD_S`: while it lives
    a second issue is refused unless forced, so the password a first answer showed is not silently
    made dead by a retry. Its create-only write (or, forced, its replacement under ``If-Match``)
    decides which of two issues at once goes ahead. It holds no secret: a replayed answer would
    have kept the password in clear in an idempotency record for a day."""

    class Meta:
        table = "environment-credential-holds"
        ttl_max_s = ROTATION_HOLD_S

    station = A.UnicodeAttribute(hash_key=True)
    issued_at = A.UnicodeAttribute()
    until = A.TTLAttribute()


class CredentialsJustIssued(errors.Conflict):
    type = "credentials-just-issued"
    title, title_vi = "Credentials just issued", "Thông tin đăng nhập vừa được cấp"


def _just_issued(hold: CredentialHold | None) -> CredentialsJustIssued:
    at = hold.issued_at if hold is not None else None
    left = max(1, int((hold.until - now()).total_seconds()) + 1) if hold is not None else 1
    return CredentialsJustIssued(
        f"This station's MQTT credentials were issued moments ago{f' ({at})' if at else ''}: the password that "
        "answer showed works. If it was lost, issue again with force=true: that replaces the password.",
        detail_vi="Thông tin đăng nhập MQTT của trạm vừa được cấp: mật khẩu trong lần trả lời đó vẫn dùng được. "
                  "Nếu không nhận được, hãy cấp lại với force=true: mật khẩu cũ sẽ bị thay.",
        errors=[errors.field("force", "true replaces the credentials issued moments ago",
                             "true để thay thông tin đăng nhập vừa cấp")],
        issued_at=at, headers={"Retry-After": str(left)})


def _hold(station_id: str, force: bool) -> CredentialHold:
    """Take the station's hold for this issue, or refuse (:class:`CredentialsJustIssued`): a live
    hold is another issue's, replaced only when ``force`` (and only as read: of two forced issues at
    once, one goes ahead)."""
    at = now()
    for _ in range(3):
        try:
            return CredentialHold(station_id, issued_at=iso(at), until=at + timedelta(seconds=ROTATION_HOLD_S)).save()
        except ConditionalCheckFailed:
            pass
        try:
            live = CredentialHold.get(station_id)
        except DoesNotExist:
            continue   # expired or given back since: create it again
        if not force:
            raise _just_issued(live)
        live.issued_at, live.until = iso(at), at + timedelta(seconds=ROTATION_HOLD_S)
        try:
            return live.save()
        except ConditionalCheckFailed:
            raise _just_issued(None) from None
    raise _just_issued(None)


def issue_credentials(station: dict, topic: str, issued_by: str, *, force: bool = False) -> devices.Issued:
    """Issue (or rotate) the station's MQTT credentials (:func:`lscloud.devices.issue`), unless
    they were issued within :data:`ROTATION_HOLD_S` and ``force`` is not given."""
    hold = _hold(station["id"], force)
    try:
        return devices.issue("environment", device_user(station), [topic], issued_by=issued_by)
    except BaseException:
        try:
            hold.delete()   # nothing was issued: the operator's retry goes ahead
        except (DoesNotExist, ConditionalCheckFailed):
            pass
        raise


def revoke_credentials(station: dict) -> bool:
    """Revoke the station's MQTT credentials (:func:`lscloud.devices.revoke`); issuing again right
    after is not held back."""
    revoked = devices.revoke("environment", device_user(station))
    delete_quietly(CredentialHold, station["id"])
    return revoked


def may_write(station: dict, actor: Actor) -> None:
    """A device writes only for its own station (``unit`` = the station id); operators for any."""
    if actor.kind == "device" and actor.unit != station["id"]:
        raise NotYourStation("a device writes only for the station in its token's unit",
                             detail_vi="Thiết bị chỉ được gửi số liệu cho trạm của mình.")
