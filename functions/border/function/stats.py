"""Figures for the IOC: declared / cleared / exited per gate, direction and day; dwell time
(arrival in the yard → exit) median and p90; per-agency decision time; weighbridge mismatches."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from .queue import TZ


def _t(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _day(value: str) -> str:
    return _t(value).astimezone(TZ).date().isoformat()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no values."""
    if not values:
        return None
    data = sorted(values)
    return data[max(0, math.ceil(q * len(data)) - 1)]


def _summary(values: list[float]) -> dict:
    return {"count": len(values), "median_minutes": _r(percentile(values, 0.5)),
            "p90_minutes": _r(percentile(values, 0.9))}


def _r(v):
    return None if v is None else round(v, 1)


def compute(docs: list[dict]) -> dict:
    rows: dict[tuple, dict] = defaultdict(lambda: {"declared": 0, "cleared": 0, "exited": 0, "mismatches": 0})
    dwell: list[float] = []
    per_agency: dict[str, list[float]] = defaultdict(list)
    for d in docs:
        ts = d.get("timestamps", {})
        submitted = ts.get("submitted")
        if not submitted:
            continue
        key = (d["gate"], d["direction"], _day(submitted))
        rows[key]["declared"] += 1
        if ts.get("cleared"):
            rows[key]["cleared"] += 1
        if ts.get("exited"):
            rows[key]["exited"] += 1
            if ts.get("in_yard"):
                dwell.append((_t(ts["exited"]) - _t(ts["in_yard"])).total_seconds() / 60)
        rows[key]["mismatches"] += int(d.get("weight_mismatches", 0))
        for agency, dec in (d.get("decisions") or {}).items():
            per_agency[agency].append((_t(dec["at"]) - _t(submitted)).total_seconds() / 60)
    return {
        "by_gate_direction_day": [{"gate": g, "direction": dr, "day": day, **v}
                                  for (g, dr, day), v in sorted(rows.items())],
        "dwell_arrival_to_exit": _summary(dwell),
        "decision_time_by_agency": {a: _summary(v) for a, v in sorted(per_agency.items())},
        "mismatches": sum(v["mismatches"] for v in rows.values()),
    }
