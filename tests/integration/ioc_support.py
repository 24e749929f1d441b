"""CloudEvents as the functions the IOC listens to publish them: each one's data keeps its
producer's contract in ``schemas/events/`` (a unit test holds every builder to it). Built here,
published on the real bus by the IOC's tests.

Also what the IOC's tests share: :func:`fold`, the ``no_peers`` fixture (a module takes it by
importing it by name, ``from ioc_support import no_peers  # noqa: F401``, with ``# ruff: noqa: F811``
at its top), :func:`deliver`, and :func:`misordered`."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from functions.reports.function.reports import new_id as report_id  # noqa: F401 - ids as reports issues them
from lscloud import auth, events, workdays


def fold(evts):
    """The IOC's projection of ``evts`` folded in order, as its consumer folds them (an event it keeps
    no fact of is passed over)."""
    from functions.ioc.function import live
    from functions.ioc.function.projection import Projection
    p = Projection()
    for e in evts:
        f = live.fact_of(e)
        if f is not None:
            p.apply(f)
    return p


@pytest.fixture
def no_peers() -> str:
    """A peer URL nothing answers at (not the default :8080, where someone's `lscloud up` may run)."""
    from lscloud.local.servers import free_port

    return f"http://127.0.0.1:{free_port()}/{{name}}"


def deliver(client, rt, event) -> dict:
    """``event`` posted to the IOC's /events as the platform delivers it; its 200 answer."""
    headers, body = events.to_binary_http(event)
    r = client.post("/events", data=body, headers={**headers, **auth.delivery_headers(rt.settings.replace(service="ioc"))})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def misordered(source: str, ids: list[str]) -> bool:
    """Whether the digests of these event ids (as the facts' ids are made) put the last move anywhere
    but last: where ordering a second's moves by ``(second, id)`` went wrong."""
    digests = [hashlib.sha256(f"{source}\n{i}".encode()).hexdigest() for i in ids]
    return max(digests) != digests[-1]

BORDER_FACT = {"submitted": "declaration.submitted", "cleared": "declaration.cleared", "exited": "truck.exited",
               "refused": "declaration.refused", "cancelled": "declaration.cancelled", "expired": "declaration.expired"}
DOSSIER_FACT = {"received": "dossier.received", "done": "dossier.done", "denied": "dossier.denied",
                "cancelled": "dossier.cancelled"}


def iso(t: datetime) -> str:
    return t.astimezone(workdays.TZ).isoformat(timespec="seconds")


def ago(minutes: float = 0, *, now: datetime | None = None) -> datetime:
    return (now or datetime.now(timezone.utc)) - timedelta(minutes=minutes)


def border(declaration_id: str, to: str, at: datetime, *, gate: str = "huu-nghi", id: str | None = None) -> dict:
    return events.new_event(f"vn.langson.border.{BORDER_FACT[to]}.v1", "/border", {
        "declaration_id": declaration_id, "code": "TK-1", "status": to, "gate": gate, "direction": "import",
        "flow": "in", "tractor_plate": "20C-123.45", "from": "x", "to": to, "action": to, "at": iso(at),
        "actor": {"sub": "enterprise-0101234567", "role": "enterprise"}, "reason": None, "details": {}}, id=id)


def dossier(dossier_id: str, to: str, at: datetime, *, deadline: datetime, channel: str = "online",
            unit: str = "06001", agency: str = "so-tu-phap", id: str | None = None) -> dict:
    """Every fact of a dossier carries its deadline (the dossiers function's transition contract)."""
    data = {"dossier_id": dossier_id, "code": "HS-1", "status": to, "procedure": "1.000001", "agency": agency,
            "unit": unit, "channel": channel, "owner": "001099012345", "from": "x", "to": to, "action": to, "at": iso(at),
            "actor": {"sub": "001099012345", "role": "citizen"}, "reason": None, "details": {},
            "deadline": iso(deadline)}
    return events.new_event(f"vn.langson.dossiers.{DOSSIER_FACT[to]}.v1", "/dossiers", data, id=id)


def report(rid: str, fact: str, to_state: str, status: str, at: datetime, *, commune: str = "06001",
           deadline: datetime | None = None, rating: int | None = None, category: str = "roads",
           service_code: str = "GT-HU-HONG", id: str | None = None) -> dict:
    """``rid``: the report's id, as the reports function issues them (:func:`report_id`, its
    ``new_id``); ``service_code``: one of its catalogue (GT-HU-HONG: a damaged road, category roads)."""
    return events.new_event(f"vn.langson.reports.report.{fact}.v1", "/reports", {
        "report_id": rid, "service_code": service_code, "category": category, "commune": commune,
        "agency": None, "status": status, "from_state": None, "to_state": to_state,
        "deadline": iso(deadline) if deadline else None, "occurred_at": iso(at), "channel": "app",
        "rating": rating}, id=id)


def transfer(transfer_id: str, amount: int, *, point: str = "bd-06001", unit: str = "06001", id: str | None = None) -> dict:
    return events.new_event("vn.langson.softatm.transfer.committed.v1", "/softatm", {
        "transfer_id": transfer_id, "kind": "withdrawal", "state": "COMMITTED", "bank": "MB", "point": point,
        "unit_code": unit, "amount_vnd": amount, "abort_reason": None}, id=id)


def aqi_alert(station: str, raised: bool, hour: datetime, value: float, *, commune: str = "06001",
              raised_hour: datetime | None = None) -> dict:
    """An AQI alert raised, or cleared (then with the level it cleared below and the hour it was
    raised, ``raised_hour``: by default the hour before)."""
    kind = "raised" if raised else "cleared"
    data = {"station": station, "name": "Trạm", "kind": "air", "unit": commune, "commune": commune, "lat": 21.8,
            "lon": 106.7, "alert": "aqi", "hour": iso(hour), "value": value, "threshold": 101, "dominant": "pm25",
            "sub_indices": {}, "level": "poor"}
    if not raised:
        data.update(clear_at=91, raised_hour=iso(raised_hour or hour - timedelta(hours=1)))
    return events.new_event(f"vn.langson.environment.alert.{kind}.v1", "/environment", data,
                            id=f"{station}.aqi.{hour:%Y%m%d%H}.{kind}")


def progress(commune: str, households: int, reached: int, at: datetime) -> dict:
    return events.new_event("vn.langson.community.progress.updated.v1", "/community", {
        "commune": commune, "commune_name": "Xã", "households": households, "households_source": "register",
        "indicators": {"shop-or-payment": {"reached": reached, "target_share": 0.5, "share": reached / households,
                                           "target_households": households // 2, "met": reached * 2 >= households}},
        "activities": {}, "updated_at": iso(at), "activity_id": f"act-{commune}-{reached}"})


def observations(station: str, at: datetime, readings: int = 1, *, commune: str = "06001",
                 channel: str = "mqtt") -> dict:
    """A station's batch of ``readings`` as the environment function records it, received at ``at``
    (its id the digest of the station and readings, as a resent batch dedupes)."""
    import hashlib
    import json

    items = [{"observed_at": (at - timedelta(seconds=i)).astimezone(timezone.utc).isoformat(timespec="seconds")
              .replace("+00:00", "Z"), "values": {"pm25": 12.0 + i}, "flags": {}} for i in range(readings)]
    digest = hashlib.sha256(json.dumps([station, items], sort_keys=True).encode()).hexdigest()[:32]
    return events.new_event("vn.langson.environment.observations.recorded.v1", "/environment", {
        "station": station, "kind": "air", "unit": commune, "channel": channel,
        "received_at": at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "readings": items}, subject=station, id=f"obs-{digest}")
