"""VN_AQI as Decision 1459/QĐ-TCMT (12 Nov 2019) computes it: sub-indices by linear interpolation
between Table 2's breakpoints, NowCast for PM2.5 and PM10, hourly and daily AQI, the dominant
pollutant, the level with its colour and health advice (``data/vn_aqi_1459.yaml`` cites the text).

Hours are labelled by their end (the hour 07:00–08:00 is "08:00") and a day runs from its 01:00 to
its 24:00 (the next day's 00:00), local time, as the decision's own tables do.

Where the decision is ambiguous, and what this module does (each case is also a unit test):

1. **Rounding.** "Giá trị AQI … được làm tròn thành số nguyên" — we round half up, on the final
   AQI and on each printed sub-index. Every worked example in section 2.3 comes out as printed
   except one: the hourly NO2 sub-index of 118.7 µg/m³ is (50/100)·18.7 + 50 = 59.35, printed as
   60 (so the printed hourly AQI is 60, ours 59). Rounding up would give 60 there but 66 instead of
   the printed 65 for the daily NO2 (130.8 µg/m³ → 65.4): no single rule reproduces both, so we keep
   the rule the text states and record the printed 60 as the decision's arithmetic slip.
2. **NowCast at w = 1/2.** The decision writes Σ (1/2)^i·c_i (not normalised; exponents from 1),
   which is only approximately the normalised form when all twelve hours are there and is wrong
   when some are missing (their weight is set to 0). We use the normalised form
   Σ w^(i−1)·c_i / Σ w^(i−1) for every w, as the decision does for w > 1/2.
3. **NowCast inputs.** Cmin and Cmax are taken over the hours that have data (the decision sets a
   missing hour's weight to 0). When every present value is 0, w* = 0/0: we take w = 1 (the value is 0
   whatever the weight).
4. **O3 in the daily AQI.** The text says C_x is the larger of the day's highest 1-hour and highest
   8-hour means; its worked example instead computes each against its own table (O3 8h: 45, O3 1h:
   36). Comparing two concentrations measured against different tables means nothing, so we follow
   the example: O3's daily sub-index is the larger of the two sub-indices, the 8-hour one left out
   when the highest 8-hour mean is above 400 µg/m³ (as the decision says).
5. **Beyond the table.** Table 2's last row is "≥" (≥ 500 µg/m³ for PM2.5): a concentration at or
   above it has the index 500, and the result says ``beyond_index: true``. A column that stops
   earlier (O3 8h: 400 µg/m³ → 300, then "-") covers its last breakpoint; only above it is beyond.
6. **Completeness.** The decision sets no minimum number of hours for a 24-hour or 8-hour mean, nor
   for the day's highest hourly value. We require 18 of 24 hours for the day and 6 of 8 hours for an
   8-hour mean (75 %, our choice, marked so in every answer); an hour or a day without enough data
   says so instead of giving a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Mapping, Sequence

from . import standards

POLLUTANTS = ("pm25", "pm10", "o3", "no2", "so2", "co")
PARTICLES = ("pm25", "pm10")
DAY_MIN_HOURS = 18          # of 24: completeness of a day (our choice, see 6. above)
EIGHT_HOUR_MIN = 6          # of 8: completeness of an 8-hour mean (our choice)
NOWCAST_HOURS = 12


def round_half_up(x: float) -> int:
    """The decision's "rounded to a whole number": half up (59.5 → 60), not Python's half to even."""
    return int(Decimal(repr(x)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _table(name: str) -> list[tuple[float, float]]:
    data = standards.vn_aqi()
    return [(bp, i) for bp, i in zip(data["breakpoints"][name], data["index_values"]) if bp is not None]


def sub_index(table: str, c: float | None) -> tuple[float | None, bool]:
    """(AQI_x exactly, beyond the table?) for concentration ``c`` (µg/m³) against Table 2's column
    ``table`` (``pm25``, ``o3_1h``, ``o3_8h`` …); (None, False) for no value or a negative one."""
    if c is None or c < 0:
        return None, False
    rows = _table(table)
    # only a full column ends in Table 2's "≥" row; a shorter one (O3 8h stops at 400 µg/m³ = 300,
    # rows 7-8 "-") still covers its last printed breakpoint, and is beyond the table only above it
    ends_open = len(rows) == len(standards.vn_aqi()["index_values"])
    if c > rows[-1][0] or (ends_open and c == rows[-1][0]):
        return float(rows[-1][1]), True
    for (bp_lo, i_lo), (bp_hi, i_hi) in zip(rows, rows[1:]):
        if bp_lo <= c <= bp_hi:
            return (i_hi - i_lo) / (bp_hi - bp_lo) * (c - bp_lo) + i_lo, False
    return None, False  # pragma: no cover - the rows cover [0, last]


def nowcast(hours: Sequence[float | None]) -> float | None:
    """NowCast of ``hours`` (hours[0] = c1, the current hour's mean; up to c12), or None when fewer
    than two of c1, c2, c3 have data ("không có dữ liệu")."""
    values = list(hours[:NOWCAST_HOURS])
    if sum(1 for c in values[:3] if c is not None) < 2:
        return None
    present = [(i, c) for i, c in enumerate(values) if c is not None]
    cmin, cmax = min(c for _, c in present), max(c for _, c in present)
    w = 1.0 if cmax == 0 else max(cmin / cmax, 0.5)
    return sum(w ** i * c for i, c in present) / sum(w ** i for i, _ in present)


def weight(hours: Sequence[float | None]) -> float | None:
    """The NowCast weight w for ``hours`` (for display), or None."""
    present = [c for c in hours[:NOWCAST_HOURS] if c is not None]
    if not present:
        return None
    cmax = max(present)
    return 1.0 if cmax == 0 else max(min(present) / cmax, 0.5)


def level(aqi: int) -> dict:
    """The level of a (rounded) AQI: key, names, colour, RGB, health effect and advice (vi + en)."""
    for lv in standards.vn_aqi()["levels"]:
        lo, hi = lv["range"]
        if lo <= aqi <= hi:
            return dict(lv)
    return dict(standards.vn_aqi()["levels"][-1])


@dataclass
class Result:
    """One hourly or daily AQI: ``aqi`` None when it cannot be computed (``missing`` says why)."""

    aqi: int | None
    sub_indices: dict[str, int] = field(default_factory=dict)
    exact: dict[str, float] = field(default_factory=dict)
    concentrations: dict[str, float] = field(default_factory=dict)
    dominant: str | None = None
    beyond_index: bool = False
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"aqi": self.aqi, "sub_indices": self.sub_indices, "concentrations": self.concentrations,
               "dominant": self.dominant, "level": None, "beyond_index": self.beyond_index,
               "missing": self.missing}
        if self.aqi is not None:
            lv = level(self.aqi)
            out["level"] = {k: lv[k] for k in ("key", "vi", "en", "colour", "colour_vi", "rgb", "health_vi",
                                              "health_en", "advice_vi", "advice_en", "advice_sensitive_vi",
                                              "advice_sensitive_en")}
        return out


def _combine(exact: dict[str, float], conc: dict[str, float], beyond: bool, missing: list[str]) -> Result:
    subs = {p: round_half_up(v) for p, v in exact.items()}
    if not any(p in exact for p in PARTICLES):
        # "bắt buộc phải có tối thiểu 01 trong 02 thông số PM10, PM2.5"
        return Result(None, subs, exact, conc, None, beyond, missing + ["pm25|pm10: the decision needs one of them"])
    dominant = max(exact, key=lambda p: (exact[p], -POLLUTANTS.index(p.split("_")[0])))
    return Result(round_half_up(exact[dominant]), subs, exact, conc, dominant.split("_")[0], beyond, missing)


def hourly(history: Mapping[str, Sequence[float | None]]) -> Result:
    """The hourly AQI of one hour from hourly means: ``history[p][0]`` is that hour's mean of
    pollutant ``p``, ``history[p][1]`` the hour before … (twelve hours for PM2.5 and PM10)."""
    exact, conc, beyond, missing = {}, {}, False, []
    for p in POLLUTANTS:
        hours = list(history.get(p) or [])
        if not hours:
            continue
        c = nowcast(hours) if p in PARTICLES else hours[0]
        table = "o3_1h" if p == "o3" else p
        value, over = sub_index(table, c)
        if value is None:
            if any(h is not None for h in hours[:3]):
                missing.append(f"{p}: not enough data" + (" (NowCast needs 2 of the last 3 hours)" if p in PARTICLES else ""))
            continue
        exact[p], conc[p], beyond = value, round(c, 3), beyond or over
    return _combine(exact, conc, beyond, missing)


def eight_hour_means(o3: Sequence[float | None]) -> list[float | None]:
    """Rolling 8-hour means: ``o3`` holds the 7 hours before the day then its 24 hours; one mean
    per hour of the day (the mean of the 8 hours ending with it), None under 6 of 8 hours."""
    out = []
    for end in range(7, len(o3)):
        window = [c for c in o3[end - 7:end + 1] if c is not None]
        out.append(sum(window) / len(window) if len(window) >= EIGHT_HOUR_MIN else None)
    return out


def daily(day: Mapping[str, Sequence[float | None]], o3_before: Sequence[float | None] = ()) -> Result:
    """The daily AQI from the day's 24 hourly means per pollutant (01:00 … 24:00) and, for the O3
    8-hour means, the 7 hours before the day (``o3_before``, oldest first)."""
    exact, conc, beyond, missing = {}, {}, False, []

    def add(name: str, table: str, c: float | None) -> None:
        nonlocal beyond
        value, over = sub_index(table, c)
        if value is not None:
            exact[name], conc[name], beyond = value, round(c, 3), beyond or over

    for p in POLLUTANTS:
        hours = list(day.get(p) or [])
        present = [c for c in hours if c is not None]
        if not present:
            continue
        if len(present) < DAY_MIN_HOURS:
            missing.append(f"{p}: {len(present)} of 24 hours (at least {DAY_MIN_HOURS} needed)")
            continue
        if p in PARTICLES:
            add(p, p, sum(present) / len(present))
        elif p == "o3":
            add("o3_1h", "o3_1h", max(present))
            eights = [c for c in eight_hour_means(list(o3_before)[-7:] + hours) if c is not None]
            best = max(eights) if eights else None
            if best is not None and best <= 400:
                add("o3_8h", "o3_8h", best)
        else:
            add(p, p, max(present))
    if "o3_1h" in exact or "o3_8h" in exact:
        keys = [k for k in ("o3_1h", "o3_8h") if k in exact]
        best = max(keys, key=lambda k: exact[k])
        exact["o3"], conc["o3"] = exact[best], conc[best]
    result = _combine({k: v for k, v in exact.items() if k in POLLUTANTS}, {k: v for k, v in conc.items() if k in POLLUTANTS},
                      beyond, missing)
    result.sub_indices.update({k: round_half_up(v) for k, v in exact.items() if k.startswith("o3_")})
    result.concentrations.update({k: v for k, v in conc.items() if k.startswith("o3_")})
    return result
