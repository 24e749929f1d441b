"""Figures for the IOC: declared / cleared / exited per gate, direction and day; dwell time
(arrival in the yard → exit) median and p90; per-agency decision time; weighbridge mismatches.

A declaration's part in them is its :func:`contribution`, small and JSON-able, so that of a
finished declaration is kept in its day's summary rather than read again (:mod:`.figures`)."""

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


def contribution(doc: dict) -> list | None:
    """A declaration's part in the figures, JSON-able: ``[gate, direction, submitted local day,
    cleared 0/1, exited 0/1, weight mismatches, dwell minutes or None, {agency: decision minutes}]``;
    None for one never submitted. A list, not a dict: a day's summary keeps one per finished
    declaration (:mod:`.figures`), and every request reads a month of them."""
    ts = doc.get("timestamps", {})
    submitted = ts.get("submitted")
    if not submitted:
        return None
    dwell = None
    if ts.get("exited") and ts.get("in_yard"):
        dwell = (_t(ts["exited"]) - _t(ts["in_yard"])).total_seconds() / 60
    decisions = {agency: (_t(dec["at"]) - _t(submitted)).total_seconds() / 60
                 for agency, dec in (doc.get("decisions") or {}).items()}
    return [doc["gate"], doc["direction"], _day(submitted), int(bool(ts.get("cleared"))),
            int(bool(ts.get("exited"))), int(doc.get("weight_mismatches", 0)), dwell, decisions]


def compute_contributions(contribs: list[list | None]) -> dict:
    """The figures of these declarations' :func:`contribution` (None ones left out)."""
    rows: dict[tuple, dict] = defaultdict(lambda: {"declared": 0, "cleared": 0, "exited": 0, "mismatches": 0})
    dwell: list[float] = []
    per_agency: dict[str, list[float]] = defaultdict(list)
    for c in contribs:
        if c is None:
            continue
        gate, direction, day, cleared, exited, mismatches, dwell_minutes, decisions = c
        row = rows[(gate, direction, day)]
        row["declared"] += 1
        row["cleared"] += cleared
        row["exited"] += exited
        row["mismatches"] += mismatches
        if dwell_minutes is not None:
            dwell.append(dwell_minutes)
        for agency, minutes in decisions.items():
            per_agency[agency].append(minutes)
    return {
        "by_gate_direction_day": [{"gate": g, "direction": dr, "day": day, **v}
                                  for (g, dr, day), v in sorted(rows.items())],
        "dwell_arrival_to_exit": _summary(dwell),
        "decision_time_by_agency": {a: _summary(v) for a, v in sorted(per_agency.items())},
        "mismatches": sum(v["mismatches"] for v in rows.values()),
    }


def compute(docs: list[dict]) -> dict:
    """The figures of these declarations (those never submitted left out)."""
    return compute_contributions([contribution(d) for d in docs])
