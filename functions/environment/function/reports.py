"""What a station's data says, read from its day summaries: hourly and daily VN_AQI, the latest hour,
noise against its limit. Hours without enough data say so (``aqi: null`` and ``missing``).

Only hours that have ended are reported. Decision 1459/QĐ-TCMT (``data/vn_aqi_1459.yaml``) makes an
hourly value the mean of the hour's readings, labelled by the hour's end: an hour still running has
no mean yet. Reported at its end while running, a few minutes' readings stood for the whole hour,
stamped observed up to 59 minutes ahead of the clock (NGSI-LD ``observedAt``, ``dateObserved``) and
beside an AQI of the hours before it. :func:`now` is the clock they are judged by.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from lscloud import errors
from lscloud.timestamps import now

from . import aqi, clock, noise, readings, storage

MAX_HOURS = 31 * 24


def last_ended(at: datetime) -> datetime:
    """The local end of the last hour that has ended at ``at`` (at 08:20 the hour 07:00–08:00; at
    08:00 sharp that same hour)."""
    return at.astimezone(clock.TZ).replace(minute=0, second=0, microsecond=0)


def history(series: dict, end: datetime, p: str, n: int, interval_s: int) -> list[float | None]:
    """The means of pollutant ``p`` over the ``n`` hours ending at ``end``, newest first; None for an
    hour without enough readings (:func:`.readings.hour_complete`): what an hourly AQI is made of."""
    out = []
    for i in range(n):
        s = (series.get(clock.hour_key(end - timedelta(hours=i))) or {}).get(p)
        ok = s and s.get("n") and readings.hour_complete(s["n"], interval_s)
        out.append(s["mean"] if ok else None)
    return out


def hourly_aqi(series: dict, end: datetime, interval_s: int) -> aqi.Result:
    """The VN_AQI of the hour ending at ``end`` from a station's hourly ``series`` (the 11 hours
    before it too, for the particles' NowCast), complete hours only."""
    history_ = {p: history(series, end, p, 12 if p in aqi.PARTICLES else 1, interval_s) for p in aqi.POLLUTANTS}
    return aqi.hourly({p: h for p, h in history_.items() if any(v is not None for v in h)})


def hourly(station: dict, start: datetime, end: datetime) -> list[dict]:
    """One item per hour end in (start, end] that has ended: the hour's AQI (air) or LAeq against its
    limit (noise)."""
    first, last = clock.hour_end(start + timedelta(microseconds=1)), clock.hour_end(end)   # from is exclusive
    if last < first:
        raise errors.Invalid.at("to", "to is before from", "Thời điểm kết thúc (to) đứng trước thời điểm bắt đầu (from).")
    if (last - first) > timedelta(hours=MAX_HOURS):
        raise errors.Invalid.at("to", f"at most {MAX_HOURS // 24} days per request",
                                f"Mỗi yêu cầu tối đa {MAX_HOURS // 24} ngày.")
    last = min(last, last_ended(now()))   # a window reaching past now: up to the last hour ended
    if last < first:
        return []
    series = storage.hourly_series(station["id"], first - timedelta(hours=11), last)
    interval = int(station.get("interval_s", 60))
    out, t = [], first
    while t <= last:
        summary = series.get(clock.hour_key(t), {})
        item = {"hour": clock.iso(t), "readings": {p: s.get("n", 0) for p, s in summary.items()},
                "flagged": {p: s["flagged"] for p, s in summary.items() if s.get("flagged")}}
        if station["kind"] == "air":
            r = hourly_aqi(series, t, interval)
            item.update(r.as_dict())
            if r.aqi is None and not r.missing:
                item["missing"] = ["no complete hour of data"]
        elif station["kind"] == "noise":
            item["noise"] = noise.assess(station.get("zone", "ordinary"), t.astimezone(clock.TZ).hour,
                                         (summary.get("laeq") or {}).get("mean") if (summary.get("laeq") or {}).get("n") else None)
        else:
            item["means"] = {p: round(s["mean"], 4) for p, s in summary.items() if s.get("n")}
            item["wqi"] = None
            item["missing"] = ["VN_WQI (Decision 1460/QĐ-TCMT) is not computed: its tables were not verified"]
        out.append(item)
        t += timedelta(hours=1)
    return out


def daily(station: dict, d: date) -> dict:
    """The day's AQI (air): 24-hour means for PM, the highest 1-hour (and 8-hour for O3) values."""
    hours = clock.day_hours(d)
    series = storage.hourly_series(station["id"], hours[0] - timedelta(hours=7), hours[-1])
    interval = int(station.get("interval_s", 60))

    def mean(t, p):
        s = (series.get(clock.hour_key(t)) or {}).get(p)
        return s["mean"] if s and s.get("n") and readings.hour_complete(s["n"], interval) else None

    out = {"date": d.isoformat(), "from": clock.iso(hours[0] - timedelta(hours=1)), "to": clock.iso(hours[-1])}
    if station["kind"] != "air":
        out.update(aqi=None, missing=["the daily AQI is for air stations"])
        return out
    day = {p: [mean(t, p) for t in hours] for p in aqi.POLLUTANTS}
    before = [mean(hours[0] - timedelta(hours=7 - i), "o3") for i in range(7)]
    r = aqi.daily({p: v for p, v in day.items() if any(x is not None for x in v)}, before)
    out.update(r.as_dict())
    out["hours_with_data"] = {p: sum(1 for x in v if x is not None) for p, v in day.items() if any(x is not None for x in v)}
    if r.aqi is None and not r.missing:
        out["missing"] = ["no complete day of data"]
    return out


def latest(station: dict, at: datetime) -> tuple[datetime, dict] | None:
    """The most recent hour ended by ``at`` (within two days) that has a summary, and that summary."""
    end = last_ended(at)
    series = storage.hourly_series(station["id"], end - timedelta(hours=47), end)
    if not series:
        return None
    key = max(series)
    return clock.parse_hour_key(key), series[key]
