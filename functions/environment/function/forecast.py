"""A short-range AQI forecast (1–24 h) from the station's own history, and its error measured on
held-back hours — so the answer says how good it is.

The model blends persistence with the station's diurnal profile: for a horizon h,
ŷ(t+h) = a_h·y(t) + (1 − a_h)·D(hour of day of t+h), where D is the mean AQI by hour of day and a_h is
fitted by least squares on the training part. It is compared, on the last quarter of the history
(never seen while fitting), with its two ingredients alone: persistence (ŷ = y(t)) and the diurnal
profile. Weather, traffic at the gate and quarry blasting are not in it: it cannot see an episode
coming, only the daily rhythm and the current level.
"""

from __future__ import annotations

from datetime import datetime, timedelta

HORIZONS = (1, 3, 6, 12, 24)
MIN_HOURS = 72


def _profile(points: list[tuple[datetime, float]]) -> dict[int, float]:
    by_hour: dict[int, list[float]] = {}
    for t, y in points:
        by_hour.setdefault(t.hour, []).append(y)
    overall = sum(y for _, y in points) / len(points)
    return {h: (sum(by_hour[h]) / len(by_hour[h]) if h in by_hour else overall) for h in range(24)}


def _pairs(series: dict[datetime, float], h: int, keep) -> list[tuple[float, float, float]]:
    """(y(t), D-slot hour of t+h placeholder, y(t+h)) for the t that ``keep`` admits."""
    out = []
    for t, y in series.items():
        target = series.get(t + timedelta(hours=h))
        if target is not None and keep(t):
            out.append((t, y, target))
    return out


def fit(series: dict[datetime, float], h: int, profile: dict[int, float], keep) -> float:
    num = den = 0.0
    for t, y, target in _pairs(series, h, keep):
        d = profile[(t + timedelta(hours=h)).hour]
        num += (y - d) * (target - d)
        den += (y - d) ** 2
    return min(1.0, max(0.0, num / den)) if den else 0.5


def evaluate(series: dict[datetime, float]) -> dict:
    """Fit on the first three quarters of ``series`` (hour end → AQI), measure on the last quarter:
    mean absolute error per horizon for the model, persistence and the diurnal profile."""
    times = sorted(series)
    if len(times) < MIN_HOURS:
        return {"enough_history": False, "hours": len(times), "needed": MIN_HOURS}
    cut = times[int(len(times) * 0.75)]
    train = [(t, series[t]) for t in times if t < cut]
    profile = _profile(train)
    out = {"enough_history": True, "hours": len(times), "held_back_from": cut.isoformat(), "horizons": {}}
    for h in HORIZONS:
        a = fit(series, h, profile, lambda t: t + timedelta(hours=h) < cut)
        test = _pairs(series, h, lambda t: t >= cut)
        if not test:
            continue
        err = {"model": 0.0, "persistence": 0.0, "diurnal": 0.0}
        for t, y, target in test:
            d = profile[(t + timedelta(hours=h)).hour]
            err["model"] += abs(a * y + (1 - a) * d - target)
            err["persistence"] += abs(y - target)
            err["diurnal"] += abs(d - target)
        out["horizons"][str(h)] = {"weight_on_now": round(a, 3), "cases": len(test),
                                   **{f"mae_{k}": round(v / len(test), 1) for k, v in err.items()}}
    return out


def predict(series: dict[datetime, float], hours: int) -> list[dict]:
    """AQI for the next ``hours`` hours after the last hour of ``series`` (fitted on all of it)."""
    times = sorted(series)
    if len(times) < MIN_HOURS:
        return []
    profile = _profile([(t, series[t]) for t in times])
    last = times[-1]
    out = []
    for h in range(1, hours + 1):
        a = fit(series, h, profile, lambda t: True)
        target = last + timedelta(hours=h)
        out.append({"hour": target.isoformat(), "aqi": round(a * series[last] + (1 - a) * profile[target.hour])})
    return out
