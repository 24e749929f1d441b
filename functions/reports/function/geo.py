"""Where a report is: a geohash cell (precision 7, about 153 m × 153 m) keys the "me too" index, so
a nearby lookup reads nine small key lists (the cell and its neighbours) whatever the table's size;
distances are great-circle (haversine)."""

from __future__ import annotations

import math

import pygeohash

PRECISION = 7
EARTH_RADIUS_M = 6_371_000.0
# Lạng Sơn's bounding box with a margin (WGS84): a point outside it is not the province's
LAT_RANGE, LON_RANGE = (21.2, 22.6), (106.0, 107.4)


def cell(lat: float, lon: float) -> str:
    return pygeohash.encode(lat, lon, precision=PRECISION)


def neighbourhood(lat: float, lon: float) -> list[str]:
    """The point's cell and its eight neighbours: every point within ~150 m is in one of them."""
    c = cell(lat, lon)
    ring = []
    for ns in ("top", "bottom", None):
        row = pygeohash.get_adjacent(c, ns) if ns else c
        ring += [row, pygeohash.get_adjacent(row, "left"), pygeohash.get_adjacent(row, "right")]
    return sorted(set(ring))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def in_province(lat: float, lon: float) -> bool:
    return LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]
