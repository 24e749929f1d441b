"""Copy detection: the rules a stamp's scans are held to. Plain Python over the scan record.

A signature proves a code was issued; it cannot stop a photocopy of a genuine stamp pasted on a
fake. Copies show themselves in how the code is scanned: by many different people, in places far
apart at the same time. A scan is anonymous and its position is the caller's word, so the rules
count *callers*, never scans: one caller scanning a hundred times, or claiming to stand in Lạng Sơn
and then in Hồ Chí Minh City, is one caller. A caller is who the runtime's rate limit counts (the
token's subject, else the client's address, an IPv6 one by its /64), kept on the stamp's record only
as a short tag keyed to that stamp (:func:`.stamps.caller_tag`): no address, and nothing that links
one shopper's scans of two stamps. Two rules flag a *possible copy* (the scan still says the code
is authentic, with a warning and the evidence it rests on):

- **too many callers**: more than ``scan_limit`` different callers scanned one stamp. A genuine
  stamp is on one package: its packer, a seller, the buyer and their family scan it, a handful;
  a copy pasted on many packages is scanned by every buyer of every copy;
- **implausible places**: at least :data:`COPY_CALLERS` different callers around each of two places
  more than ``copy_distance_km`` apart, each of whose scans is implausibly far from one at the
  other place (an implied ground speed over ``copy_speed_kmh``). One package is in one place at a
  time; copies sold in Lạng Sơn and in Hồ Chí Minh City the same day are scanned by several people
  at each end. A shopper who sends a photo of the stamp to a relative far away is one caller there,
  not two; whoever wants to flag a genuine stamp needs two addresses near each place (four in all,
  each under the scan's rate limit) where one was enough before.

Positions are optional (the scanning app shares one if the shopper allows) and kept only to
0.1° (about 11 km): enough to compare places, not enough to locate a shopper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from lscloud.statemachine import iso, parse_iso

KEEP_PLACES = 16
"""Located scans kept per stamp: each caller's latest, the most recent callers' (enough for two
places of :data:`COPY_CALLERS` each several times over)."""
COPY_CALLERS = 2
"""Different callers needed at *each* of the two far-apart places: one more than a shopper and
the relative they sent a photo to."""
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
    return {"count": 0, "first_at": None, "last_at": None, "callers": [], "places": [], "possible_copy": False,
            "reasons": [], "evidence": []}


def _upgraded(tally: dict) -> None:
    """A record kept before callers were counted: its places name nobody (they may all be one
    caller's) and its flag rests on scans anyone could repeat, so both go; the count stays."""
    if "callers" in tally:
        return
    tally.update(callers=[], places=[], possible_copy=False, reasons=[], evidence=[])


def observe(tally: dict, place: Place | None, at: datetime, *, by: str, scan_limit: int, copy_distance_km: float,
            copy_speed_kmh: float) -> bool:
    """Count one scan by the caller tagged ``by`` into ``tally`` (changed in place); True if this
    scan is the one that flagged it."""
    _upgraded(tally)
    stamp = iso(at)
    tally["count"] += 1
    tally["first_at"] = tally["first_at"] or stamp
    tally["last_at"] = stamp
    callers = tally["callers"]
    if by not in callers and len(callers) <= scan_limit:   # one past the limit is all the rule needs
        callers.append(by)
    found = []
    if len(callers) > scan_limit:
        found.append({"reason": "too-many-scans", "callers": len(callers), "limit": scan_limit})
    if place is not None:
        here = {"lat": place.lat, "lon": place.lon, "at": stamp, "by": by}
        tally["places"] = ([p for p in tally["places"] if p["by"] != by] + [here])[-KEEP_PLACES:]
        far = _far_apart(tally["places"], copy_distance_km, copy_speed_kmh)
        if far is not None:
            found.append(far)
    new = [e for e in found if e["reason"] not in tally["reasons"]]
    tally["reasons"] += [e["reason"] for e in new]
    tally["evidence"] += new
    was = tally["possible_copy"]
    tally["possible_copy"] = bool(tally["reasons"])
    return tally["possible_copy"] and not was


def _far_apart(places: list[dict], copy_distance_km: float, copy_speed_kmh: float) -> dict | None:
    """The implausible-places evidence the latest scan (``places[-1]``) completes, or None."""
    spots = [(Place(p["lat"], p["lon"]), parse_iso(p["at"]), p["by"]) for p in places]
    n, near, here = len(spots), copy_distance_km / 2, len(spots) - 1   # half the distance: one side, never both
    km = [[-1.0] * n for _ in range(n)]

    def dist(i: int, j: int) -> float:
        if km[i][j] < 0:
            km[i][j] = km[j][i] = distance_km(spots[i][0], spots[j][0])
        return km[i][j]

    def hours(i: int, j: int) -> float:
        return max(abs((spots[i][1] - spots[j][1]).total_seconds()) / 3600, 1 / 60)

    def implausible(i: int, j: int) -> bool:
        return spots[i][2] != spots[j][2] and dist(i, j) > copy_distance_km and dist(i, j) / hours(i, j) > copy_speed_kmh

    for there in range(n - 1):
        if not implausible(here, there):
            continue
        side_a = [i for i in range(n) if dist(i, here) <= near]
        side_b = [j for j in range(n) if dist(j, there) <= near]
        a = {spots[i][2] for i in side_a if any(implausible(i, j) for j in side_b)}
        b = {spots[j][2] for j in side_b if any(implausible(i, j) for i in side_a)}
        if len(a) >= COPY_CALLERS and len(b) >= COPY_CALLERS:
            return {"reason": "implausible-places", "callers": len(a) + len(b),
                    "distance_km": round(dist(here, there)), "hours": round(hours(here, there), 1)}
    return None


def explained(evidence: list[dict]) -> list[dict]:
    """The evidence a flag rests on, each item with what it means for a shopper (vi, en)."""
    out = []
    for e in evidence:
        if e["reason"] == "too-many-scans":
            en = (f"Scanned by more than {e['limit']} different people. A stamp belongs on one package: this "
                  "code may have been copied onto others.")
            vi = (f"Mã đã được hơn {e['limit']} người khác nhau quét. Mỗi tem chỉ dán trên một kiện hàng: mã này "
                  "có thể đã bị sao chép sang kiện khác.")
        else:
            within_en = "within an hour" if e["hours"] < 1 else f"within {round(e['hours'])} hours"
            within_vi = "trong vòng một giờ" if e["hours"] < 1 else f"trong vòng {round(e['hours'])} giờ"
            en = (f"Scanned by {e['callers']} different people at places {e['distance_km']} km apart {within_en}. "
                  "One package cannot be in both: this code may have been copied.")
            vi = (f"Mã đã được {e['callers']} người khác nhau quét ở những nơi cách nhau {e['distance_km']} km "
                  f"{within_vi}. Một kiện hàng không thể ở cả hai nơi: mã này có thể đã bị sao chép.")
        out.append({**e, "message": en, "message_vi": vi})
    return out
