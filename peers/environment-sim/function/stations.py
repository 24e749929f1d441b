"""The simulated stations: where they stand and how their readings behave (illustrative, not measured).

Communes are today's units (directory codes); the Hữu Nghị gate is taken to be in xã Đồng Đăng after the
2025 merger (not verified) and the quarry stands for the limestone quarries of Hữu Lũng.
"""

from __future__ import annotations

import math
import random
from datetime import datetime

from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")

STATIONS = [
    {"id": "lsn-tam-thanh-air", "kind": "air", "name": "Lạng Sơn — Tam Thanh (đô thị)", "unit": "05986",
     "commune": "Phường Tam Thanh", "lat": 21.8537, "lon": 106.7615, "via": "mqtt"},
    {"id": "dong-dang-air", "kind": "air", "name": "Đồng Đăng (thị trấn cũ, trục QL1A)", "unit": "06184",
     "commune": "Xã Đồng Đăng", "lat": 21.9430, "lon": 106.7000, "via": "mqtt"},
    {"id": "huu-nghi-gate-noise", "kind": "noise", "name": "Cửa khẩu Hữu Nghị — bãi chờ xe", "unit": "06184",
     "commune": "Xã Đồng Đăng", "lat": 21.9707, "lon": 106.7106, "via": "mqtt", "zone": "ordinary"},
    {"id": "huu-lung-quarry-air", "kind": "air", "name": "Mỏ đá Hữu Lũng", "unit": "06385",
     "commune": "Xã Hữu Lũng", "lat": 21.5050, "lon": 106.3430, "via": "http"},
]


def _bump(h: float, centre: float, width: float) -> float:
    return math.exp(-((h - centre) / width) ** 2)


def reading(station: dict, t: datetime) -> dict:
    """The station's values at minute ``t``: the same minute always gives the same values (resends are
    duplicates, never conflicts)."""
    minute = int(t.timestamp() // 60)
    rnd = random.Random(f"{station['id']}:{minute}")
    local = t.astimezone(TZ)
    h = local.hour + local.minute / 60
    day = (minute // 1440) % 7
    trucks = 1.0 if 6 <= h < 22 else 0.25                        # the gate's working hours
    traffic = 0.4 + _bump(h, 7.5, 1.5) + _bump(h, 17.5, 2)       # rush hours in town
    sun = max(0.0, math.sin(math.pi * (h - 6) / 12)) if 6 <= h <= 18 else 0.0

    def j(x: float, s: float = 0.08) -> float:
        return round(max(0.0, x * (1 + rnd.gauss(0, s))), 1)

    if station["id"] == "lsn-tam-thanh-air":
        pm25 = 22 + 20 * traffic + 6 * (day in (5, 6))
        return {"pm25": j(pm25), "pm10": j(pm25 * 1.6), "no2": j(25 + 30 * traffic), "o3": j(35 + 70 * sun),
                "so2": j(7), "co": j(700 + 500 * traffic)}
    if station["id"] == "dong-dang-air":
        pm25 = 30 + 28 * trucks + 10 * _bump(h, 9, 2)
        return {"pm25": j(pm25), "pm10": j(pm25 * 1.8), "no2": j(45 + 70 * trucks), "o3": j(30 + 55 * sun),
                "co": j(900 + 900 * trucks)}
    if station["id"] == "huu-lung-quarry-air":
        working = 1.0 if (7 <= h < 11 or 13 <= h < 17) and day != 6 else 0.0
        blast = 3.5 * (_bump(h, 10.0, 0.15) + _bump(h, 15.0, 0.15)) * working
        pm10 = 60 + 170 * working + 400 * blast
        return {"pm10": j(pm10, 0.12), "pm25": j(pm10 * 0.35, 0.12), "so2": j(6), "no2": j(20 + 15 * working)}
    # the gate's waiting yard: idling trucks by day, fewer at night (often above the night limit)
    laeq = 58 + 11 * trucks + 2 * _bump(h, 9, 2) + rnd.gauss(0, 1.5)
    return {"laeq": round(laeq, 1), "lamax": round(laeq + 12 + abs(rnd.gauss(0, 3)), 1)}
