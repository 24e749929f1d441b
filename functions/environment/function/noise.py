"""Noise against QCVN 26:2010/BTNMT (``data/qcvn_26_2010.yaml``): an hour's equivalent level and the
limit of its zone and period (day 06:00–21:00, night 21:00–06:00, local time).

QCVN 26:2010 is superseded by QCVN 26:2025/BNNMT from 14/11/2025, whose limits table could not be
read: every limit says so (``verified`` false, ``superseded_by``) rather than passing as current."""

from __future__ import annotations

import math
from typing import Iterable

from . import standards

ZONES = ("special", "ordinary")


def leq(levels: Iterable[float]) -> float | None:
    """The energy mean of equivalent levels over equal intervals: 10·log10(mean(10^(L/10)))."""
    values = [10 ** (v / 10) for v in levels]
    return 10 * math.log10(sum(values) / len(values)) if values else None


def period(hour_end: int) -> str:
    """``day`` or ``night`` for the hour ending at ``hour_end`` (0–23, local): the hour 05:00–06:00
    (labelled 6) is night, 20:00–21:00 (labelled 21) is day."""
    start = (hour_end - 1) % 24
    return "day" if 6 <= start < 21 else "night"


def limit(zone: str, hour_end: int) -> dict:
    """The zone's limit for that hour: ``{"period", "limit_dba", "zone", "verified", "source"}``, and
    ``superseded_by`` (the regulation in force, with the date) when the source is no longer."""
    data = standards.qcvn_26()
    z, src = data["zones"][zone], data["source"]
    p = period(hour_end)
    superseded = src.get("superseded_by")
    out = {"period": p, "limit_dba": z["limits_dba"][p], "zone": zone,
           "verified": bool(z.get("limits_verified")) and src.get("verified") is True and not superseded,
           "source": src["document"]}
    if superseded:
        out["source_status"] = src.get("status", "superseded")
        out["superseded_by"] = f"{superseded['document']}, in force from {superseded['from']}"
    return out


def assess(zone: str, hour_end: int, laeq: float | None) -> dict | None:
    """The hour against its limit (None without a level)."""
    if laeq is None:
        return None
    out = limit(zone, hour_end)
    out.update(laeq=round(laeq, 1), exceeds=laeq > out["limit_dba"], excess_db=round(max(0.0, laeq - out["limit_dba"]), 1))
    return out
