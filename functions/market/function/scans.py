"""Copy detection: the rules a stamp's scans are held to. Plain Python over the scan record.

A signature proves a code was issued; it cannot stop a photocopy of a genuine stamp pasted on a
fake. Copies show themselves in how the code is scanned, so each scan is counted and two rules
flag a *possible copy* (the scan still says the code is authentic, with a warning):

- **too often**: more than ``scan_limit`` scans of one stamp (a shopper scans a few times; a
  pasted copy is scanned by every buyer of every copy);
- **implausible places**: two scans more than ``copy_distance_km`` apart whose implied ground
  speed is over ``copy_speed_kmh`` (one code in Lạng Sơn and in Hồ Chí Minh City within an hour).

Positions are optional (the scanning app shares one if the shopper allows) and kept only to
0.1° (about 11 km): enough to compare places, not enough to locate a shopper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from lscloud.statemachine import iso, parse_iso

KEEP_PLACES = 5
EARTH_KM = 6371.0088     # the mean Earth radius (IUGG)


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float

    @classmethod
    def coarse(cls, lat: float, lon: float) -> "Place":
        return cls(round(lat, 1), round(lon, 1))


def distance_km(a: Place, b: Place) -> float:
    """Great-circle distance (haversine) between two places."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def new_tally() -> dict:
    return {"count": 0, "first_at": None, "last_at": None, "places": [], "possible_copy": False, "reasons": []}


def observe(tally: dict, place: Place | None, at: datetime, *, scan_limit: int, copy_distance_km: float,
            copy_speed_kmh: float) -> bool:
    """Count one scan into ``tally`` (changed in place); True if this scan is the one that flagged it."""
    stamp = iso(at)
    tally["count"] += 1
    tally["first_at"] = tally["first_at"] or stamp
    tally["last_at"] = stamp
    reasons = []
    if tally["count"] > scan_limit:
        reasons.append("too-many-scans")
    if place is not None:
        for seen in tally["places"]:
            there = Place(seen["lat"], seen["lon"])
            km = distance_km(place, there)
            hours = max(abs((at - parse_iso(seen["at"])).total_seconds()) / 3600, 1 / 60)
            if km > copy_distance_km and km / hours > copy_speed_kmh:
                reasons.append("implausible-places")
                break
        tally["places"] = (tally["places"] + [{"lat": place.lat, "lon": place.lon, "at": stamp}])[-KEEP_PLACES:]
    new = [r for r in reasons if r not in tally["reasons"]]
    tally["reasons"] += new
    was = tally["possible_copy"]
    tally["possible_copy"] = bool(tally["reasons"])
    return tally["possible_copy"] and not was
