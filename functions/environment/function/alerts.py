"""Alerts with hysteresis, decided once per completed hour and published as events the IOC receives:
``vn.langson.environment.alert.raised.v1`` / ``…alert.cleared.v1``.

- **AQI** (air stations): raised when the hourly VN_AQI reaches ``alert_aqi`` (101, "poor"), raised
  again only when it climbs into a higher level of Table 1; cleared when it has stayed at or below
  ``alert_aqi − alert_margin`` for ``alert_clear_hours`` consecutive hours.
- **Noise** (noise stations): raised when the hour's LAeq exceeds the QCVN 26:2010 limit of the
  station's zone and period; cleared after ``alert_clear_hours`` hours at least ``noise_margin_db``
  under the limit.

A sensor flapping around a threshold therefore raises once and clears once. Each hour is judged
once (the state remembers the last hour judged; a late reading for an older hour changes that hour's
AQI but not the alerts already given), and event ids derive from station, alert, hour and level, so
a retried evaluation publishes nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lscloud import events as ce
from lscloud import outbox
from lscloud.store import ConditionalCheckFailed, DoesNotExist

from . import aqi, clock, noise, reports, storage
from .models import AlertState
from .settings import Settings

SOURCE = "/environment"
LEVELS = ["good", "moderate", "poor", "bad", "very_bad", "hazardous"]


def hourly_aqi(station: dict, end: datetime) -> aqi.Result:
    """The VN_AQI of the hour ending at ``end``, as the published hourly AQI has it
    (:func:`.reports.hourly_aqi`: complete hours only). An hour with a few readings (a station
    coming back) raised an alert the public figures showed as "not enough data"."""
    series = storage.hourly_series(station["id"], end - timedelta(hours=11), end)
    return reports.hourly_aqi(series, end, int(station.get("interval_s", 60)))


def _judge(kind: str, state: dict, value: float, threshold: float, clear_at: float, level_key: str | None,
           s: Settings) -> str | None:
    """Move ``state`` for one hour's ``value``; the event to publish (``raised`` / ``cleared``) or None."""
    if not state.get("raised"):
        if value >= threshold if kind == "aqi" else value > threshold:
            state.update(raised=True, level=level_key, below=0)
            return "raised"
        return None
    if kind == "aqi" and level_key and LEVELS.index(level_key) > LEVELS.index(state.get("level") or "good"):
        state.update(level=level_key, below=0)
        return "raised"
    if value <= clear_at:
        state["below"] = state.get("below", 0) + 1
        if state["below"] >= s.alert_clear_hours:
            state.update(raised=False, level=None, below=0)
            return "cleared"
    else:
        state["below"] = 0
    return None


def evaluate(station: dict, end: datetime, s: Settings) -> list[dict]:
    """Judge the hour ending at ``end`` for the station's alert; publish and return the events."""
    if station["kind"] == "air":
        r = hourly_aqi(station, end)
        if r.aqi is None:
            return []
        kind, value, level_key = "aqi", float(r.aqi), aqi.level(r.aqi)["key"]
        threshold, clear_at, detail = s.alert_aqi, s.alert_aqi - s.alert_margin, {"dominant": r.dominant,
                                                                                   "sub_indices": r.sub_indices}
    elif station["kind"] == "noise":
        summary = storage.hourly_series(station["id"], end, end).get(clock.hour_key(end), {}).get("laeq")
        judged = noise.assess(station.get("zone", "ordinary"), end.astimezone(clock.TZ).hour,
                              summary.get("mean") if summary and summary.get("n") else None)
        if judged is None:
            return []
        kind, value, level_key = "noise", judged["laeq"], None
        threshold, clear_at = judged["limit_dba"], judged["limit_dba"] - s.noise_margin_db
        detail = {"period": judged["period"], "zone": judged["zone"], "limit_verified": judged["verified"]}
    else:
        return []
    hour = clock.hour_key(end)
    for _ in range(5):
        try:
            item = AlertState.get(station["id"], kind)
        except DoesNotExist:
            item = AlertState(station["id"], kind, data={})
        state = dict(item.data)
        if state.get("pending"):
            # a move whose event a crash (or a lost answer) cut off after the state was written: the
            # state says "raised" and nobody heard it. Published now under its own id (a repeat is
            # dropped by id), then cleared
            outbox.publish([state.pop("pending")])
            item.data = state
            try:
                item.save()
            except ConditionalCheckFailed:
                continue
        if state.get("last_hour", "") >= hour:
            return []
        was = dict(state)
        move = _judge(kind, state, value, threshold, clear_at, level_key, Settings() if s is None else s)
        state["last_hour"] = hour
        if move == "raised":
            state["raised_hour"] = hour
        event = None if move is None else _event(station, kind, move, end, hour, value, threshold, clear_at,
                                                 level_key, detail, was)
        if event is not None:
            state["pending"] = event   # written with the move: it outlives a crash before the publish
        item.data = state
        try:
            item.save()
        except ConditionalCheckFailed:
            continue
        if event is None:
            return []
        outbox.publish([event])
        state.pop("pending")
        item.data = state
        try:
            item.save()
        except ConditionalCheckFailed:
            pass   # written again meanwhile: whoever did published it too (the same id), or will
        return [event]
    return []


def _event(station: dict, kind: str, move: str, end: datetime, hour: str, value: float, threshold: float,
           clear_at: float, level_key: str | None, detail: dict, was: dict) -> dict:
    """The CloudEvent of an alert's move (raised or cleared) for the hour ending at ``end``."""
    data = {"station": station["id"], "name": station["name"], "kind": station["kind"], "unit": station["unit"],
            "commune": station.get("commune"), "lat": station["lat"], "lon": station["lon"], "alert": kind,
            "hour": clock.iso(end), "value": value, "threshold": threshold, **detail}
    if move == "raised":
        lv = aqi.level(int(value)) if kind == "aqi" else None
        data.update(level=level_key, level_vi=lv["vi"] if lv else None, level_en=lv["en"] if lv else None,
                    advice_vi=lv["advice_vi"] if lv else None, advice_en=lv["advice_en"] if lv else None)
    else:
        data.update(clear_at=clear_at, raised_hour=clock.iso(clock.parse_hour_key(was.get("raised_hour", hour))),
                    level=was.get("level"))
    return ce.new_event(f"vn.langson.environment.alert.{move}.v1", SOURCE, data, subject=station["id"],
                        id=f"{station['id']}.{kind}.{hour}.{move}.{level_key or 'limit'}")
