"""What a reading may hold per kind of station, and the quality checks that flag values instead of
averaging them silently.

A value is **flagged** (kept in the hour's document, left out of every mean, counted in the hour's
summary) when it is negative, at or above the sensor ceiling, or stuck: the same value for
``STUCK_READINGS`` consecutive readings spanning at least ``STUCK_MINUTES``. The ceilings and the
stuck rule are this project's choices (typical ranges of field sensors), not a Vietnamese standard;
a station may set its own ceilings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping

PARAMETERS: dict[str, dict[str, dict]] = {
    "air": {
        "pm25": {"unit": "µg/m³", "ceiling": 1000}, "pm10": {"unit": "µg/m³", "ceiling": 2000},
        "o3": {"unit": "µg/m³", "ceiling": 2000}, "no2": {"unit": "µg/m³", "ceiling": 4000},
        "so2": {"unit": "µg/m³", "ceiling": 5000}, "co": {"unit": "µg/m³", "ceiling": 200000},
    },
    "noise": {
        "laeq": {"unit": "dB(A)", "ceiling": 140}, "lamax": {"unit": "dB(A)", "ceiling": 150},
    },
    "water": {
        "ph": {"unit": "pH", "ceiling": 14.01}, "do": {"unit": "mg/L", "ceiling": 25},
        "temperature": {"unit": "°C", "ceiling": 50}, "conductivity": {"unit": "µS/cm", "ceiling": 100000},
        "turbidity": {"unit": "NTU", "ceiling": 4000}, "tss": {"unit": "mg/L", "ceiling": 10000},
        "cod": {"unit": "mg/L", "ceiling": 2000}, "bod5": {"unit": "mg/L", "ceiling": 1000},
        "n_nh4": {"unit": "mg/L", "ceiling": 500}, "n_no3": {"unit": "mg/L", "ceiling": 500},
        "p_po4": {"unit": "mg/L", "ceiling": 100},
    },
}
KINDS = tuple(PARAMETERS)
STUCK_READINGS = 30
STUCK_MINUTES = 29   # 30 one-minute readings span 29 minutes between the first and the last


def unknown(kind: str, values: Mapping[str, float]) -> list[str]:
    """Parameters in ``values`` a station of ``kind`` does not measure."""
    return sorted(set(values) - set(PARAMETERS[kind]))


def flags(kind: str, values: Mapping[str, float], ceilings: Mapping[str, float] | None = None) -> dict[str, str]:
    """``{parameter: "negative" | "ceiling"}`` for the values that cannot be right on their own."""
    out = {}
    for p, v in values.items():
        ceiling = (ceilings or {}).get(p, PARAMETERS[kind][p]["ceiling"])
        if v < 0:
            out[p] = "negative"
        elif v >= ceiling:
            out[p] = "ceiling"
    return out


def mark_stuck(readings: dict[str, dict]) -> None:
    """Flag ``stuck`` every reading of a run of identical values (per parameter) long enough to be a
    frozen sensor, in place. ``readings`` maps observed_at (ISO, UTC) to ``{"v", "f"}``."""
    order = sorted(readings)
    params = {p for r in readings.values() for p in r["v"]}
    for p in params:
        run: list[str] = []
        last = None

        def close(run=None):
            run = run or []
            if len(run) >= STUCK_READINGS and _span_minutes(run[0], run[-1]) >= STUCK_MINUTES:
                for key in run:
                    readings[key].setdefault("f", {}).setdefault(p, "stuck")

        for key in order:
            v = readings[key]["v"].get(p)
            if v is None:
                continue
            if v == last and run:
                run.append(key)
            else:
                close(run)
                run, last = [key], v
        close(run)


def _span_minutes(a: str, b: str) -> float:
    return (datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00"))).total_seconds() / 60


def summary(kind: str, readings: Mapping[str, dict]) -> dict[str, dict]:
    """Per parameter: ``n`` valid readings, ``mean``, ``min``, ``max`` of the valid ones and
    ``flagged`` counts by reason. Noise levels are averaged as energy (LAeq), LAmax takes the max."""
    from .noise import leq

    out: dict[str, dict] = {}
    for p in PARAMETERS[kind]:
        valid, flagged = [], {}
        for r in readings.values():
            if p not in r["v"]:
                continue
            reason = (r.get("f") or {}).get(p)
            if reason:
                flagged[reason] = flagged.get(reason, 0) + 1
            else:
                valid.append(float(r["v"][p]))
        if not valid and not flagged:
            continue
        s = {"n": len(valid), "flagged": flagged}
        if valid:
            mean = leq(valid) if p == "laeq" else (max(valid) if p == "lamax" else sum(valid) / len(valid))
            s.update(mean=round(mean, 4), min=min(valid), max=max(valid))
        out[p] = s
    return out


def hour_complete(n: int, interval_s: int, share: float = 0.75) -> bool:
    """Whether ``n`` readings are enough for an hour at the station's interval (75 % by default:
    this project's completeness rule, the decision leaves quality control to the operator)."""
    return n >= max(1, int(3600 / max(1, interval_s) * share))
