"""Indicator values computed from the projection, for a window ``[t0, t1)`` (UTC ``…Z`` strings).

Each indicator of the catalogue has a function here taking the entities of its kind (already
filtered to a commune, a gate …) and the window; ``flow`` and ``ratio`` indicators look at what
happened in the window, ``gauge`` ones at the state at ``t1``. A value is ``None`` when there is
nothing to divide by (no dossier finished, no rating given), never a made-up zero.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta
from statistics import median
from typing import Callable, Iterable

from lscloud.timestamps import iso, parse_iso
from lscloud.workdays import TZ

from . import catalogue
from .entities import Entity
from .projection import Projection
from .tallies import hours_of

KIND_OF_SOURCE = {"border": "declaration", "dossiers": "dossier", "reports": "report", "market": "shop",
                  "community": "commune-progress"}
BORDER_END = {"cleared", "exited", "refused", "cancelled", "expired"}
DOSSIER_END = {"done", "denied", "cancelled"}


def parse(t: str) -> datetime:
    """A fact's time (``YYYY-MM-DDTHH:MM:SSZ``)."""
    return parse_iso(t)


def fmt(t: datetime) -> str:
    """``t`` as facts hold times (whole seconds, UTC): compared as strings."""
    return iso(t, "seconds")


def _in(t: str | None, t0: str, t1: str) -> bool:
    return t is not None and t0 <= t < t1


def _facts_in(ents: Iterable[Entity], t0: str, t1: str):
    # an entity's history is sorted by time: the window's facts are one slice of it; a day's tally
    # (a station's hours rolled up) stands for its hours, each counted as its hour tally was
    for e in ents:
        lo, hi = bisect_left(e.times, t0), bisect_left(e.times, t1)
        if lo and "hours" in e.history[lo - 1]:   # a day that starts before the window may reach into it
            lo -= 1
        for f in e.history[lo:hi]:
            if "hours" in f:
                yield from ((e, h) for h in hours_of(f) if t0 <= h["at"] < t1)
            else:
                yield e, f


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


# -- border ------------------------------------------------------------------------------------

def border_declared(ents, t0, t1):
    return sum(1 for e in ents if _in(e.first("submitted"), t0, t1))


def border_cleared(ents, t0, t1):
    return sum(1 for e in ents if _in(e.first("cleared"), t0, t1))


def border_waiting(ents, t0, t1):
    n = 0
    for e in ents:
        last = e.at(t1)
        if last is not None and e.first("submitted") is not None and e.first("submitted") <= t1 \
                and last["state"] not in BORDER_END:
            n += 1
    return n


def border_clearance_median(ents, t0, t1):
    minutes = []
    for e in ents:
        cleared, submitted = e.first("cleared"), e.first("submitted")
        if _in(cleared, t0, t1) and submitted is not None and submitted <= cleared:
            minutes.append((parse(cleared) - parse(submitted)).total_seconds() / 60.0)
    return round(median(minutes), 1) if minutes else None


# -- dossiers ----------------------------------------------------------------------------------

def dossiers_received(ents, t0, t1):
    return sum(1 for e in ents if _in(e.first("received"), t0, t1))


def dossiers_online_share(ents, t0, t1):
    got = [e for e in ents if _in(e.first("received"), t0, t1)]
    # the channel the dossier came in by, as the reception said it
    return _pct(sum(1 for e in got if e.attr_at("channel", e.first("received")) == "online"), len(got))


def dossiers_on_time_rate(ents, t0, t1):
    done = on_time = 0
    for e in ents:
        finished = e.first("done", "denied")
        deadline = e.attrs.get("deadline")
        if _in(finished, t0, t1) and deadline:
            done += 1
            on_time += finished <= deadline
    return _pct(on_time, done)


def dossiers_overdue_rate(ents, t0, t1):
    open_ = late = 0
    for e in ents:
        received = e.first("received")
        if received is None or received > t1:
            continue
        if any(f["state"] in DOSSIER_END and f["at"] <= t1 for f in e.history):
            continue
        open_ += 1
        deadline = e.attr_at("deadline", t1)
        late += bool((deadline and deadline < t1) or any(f["state"] == "overdue" and f["at"] <= t1 for f in e.history))
    return _pct(late, open_)


# -- soft ATM, market, community -------------------------------------------------------------

def softatm_transfers(ents, t0, t1):
    return sum(1 for _ in _facts_in(ents, t0, t1))


def softatm_volume(ents, t0, t1):
    return int(sum(f["values"].get("amount_vnd", 0) for _, f in _facts_in(ents, t0, t1)))


def count_facts(ents, t0, t1):
    return sum(1 for _ in _facts_in(ents, t0, t1))


def market_shops_opened(ents, t0, t1):
    return sum(1 for e in ents if _in(e.history[0]["at"], t0, t1))


def community_share(ents, t0, t1):
    households = reached = 0.0
    for e in ents:
        last = e.at(t1)
        if last is not None and last["values"].get("households"):
            households += last["values"]["households"]
            reached += last["values"].get("reached", 0)
    return round(100.0 * reached / households, 2) if households else None


# -- reports -----------------------------------------------------------------------------------

def _report_open(f: dict) -> bool:
    """Whether a report is open as its fact ``f`` says (its status, or else its state)."""
    status = f["attrs"].get("status")
    return status == "open" if status else f["state"] not in ("closed", "rejected")


def _open_at(e: Entity, t1: str) -> dict | None:
    last = e.at(t1)
    return last if last is not None and _report_open(last) else None


def reports_received(ents, t0, t1):
    # from its submission, as border.declared: the first fact held is a later one for a report
    # submitted before the facts kept (a replay of a stream that keeps 30 days)
    return sum(1 for e in ents if _in(e.first("submitted"), t0, t1))


def reports_open(ents, t0, t1):
    return sum(1 for e in ents if _open_at(e, t1) is not None)


def reports_overdue(ents, t0, t1):
    n = 0
    for e in ents:
        if _open_at(e, t1) is not None:
            deadline = e.attr_at("deadline", t1)
            n += bool(deadline and deadline < t1)
    return n


def reports_satisfaction(ents, t0, t1):
    ratings = []
    for e in ents:
        rated = [f for f in e.history if t0 <= f["at"] < t1 and f["values"].get("rating") is not None]
        if rated:
            ratings.append(rated[-1]["values"]["rating"])  # a report re-rated counts once, its latest
    return round(sum(ratings) / len(ratings), 2) if ratings else None


# -- environment -------------------------------------------------------------------------------

def env_alerts_active(ents, t0, t1):
    return sum(1 for e in ents if (last := e.at(t1)) is not None and last["state"] == "raised")


def env_aqi_peak(ents, t0, t1):
    values = [f["values"]["value"] for e, f in _facts_in(ents, t0, t1)
              if f["state"] == "raised" and f["attrs"].get("alert") == "aqi" and "value" in f["values"]]
    return max(values) if values else None


def env_readings(ents, t0, t1):
    return int(sum(f["values"].get("readings", 0) for _, f in _facts_in(ents, t0, t1)))


COMPUTE: dict[str, tuple[str, Callable]] = {
    "border.declared": ("declaration", border_declared),
    "border.cleared": ("declaration", border_cleared),
    "border.waiting": ("declaration", border_waiting),
    "border.clearance-median": ("declaration", border_clearance_median),
    "dossiers.received": ("dossier", dossiers_received),
    "dossiers.online-share": ("dossier", dossiers_online_share),
    "dossiers.on-time-rate": ("dossier", dossiers_on_time_rate),
    "dossiers.overdue-rate": ("dossier", dossiers_overdue_rate),
    "softatm.transfers": ("transfer", softatm_transfers),
    "softatm.volume": ("transfer", softatm_volume),
    "softatm.float-alerts": ("float-alert", count_facts),
    "market.shops-opened": ("shop", market_shops_opened),
    "community.shop-or-payment-share": ("commune-progress", community_share),
    "reports.received": ("report", reports_received),
    "reports.open": ("report", reports_open),
    "reports.overdue": ("report", reports_overdue),
    "reports.satisfaction": ("report", reports_satisfaction),
    "environment.alerts-active": ("env-alert", env_alerts_active),
    "environment.aqi-peak": ("env-alert", env_aqi_peak),
    "environment.readings": ("observations", env_readings),
}
"""Indicator id -> (the entity kind it counts, its function)."""

WINDOW = timedelta(hours=24)
"""The window of a tile's flow and ratio values: the last 24 hours."""


LINGERS: dict[str, Callable[[dict], bool]] = {
    "declaration": lambda f: f["state"] not in BORDER_END,       # waiting
    "dossier": lambda f: f["state"] not in DOSSIER_END,          # open (overdue-rate)
    "report": _report_open,                                      # open, overdue
    "env-alert": lambda f: f["state"] == "raised",               # active
    "commune-progress": lambda f: True,                          # its last figures stand
    "transfer": lambda f: False, "float-alert": lambda f: False, "shop": lambda f: False,
    "observations": lambda f: False,
}
"""Per kind, whether an entity whose latest fact is ``f`` can still count in a window that starts
after ``f``: the gauges' open things. Every other entity counts in no such window (each function
above looks at facts in the window, or at the state at its end, which is its last), so
:meth:`.Projection.entities` passes it over, as it does an entity whose first fact is after the
window (nothing of it is in the window or at its end): the figures' cost grows with what is open
and recent, not with all the IOC has seen (a test holds every indicator to the full scan's values)."""


def _dims() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ind in catalogue.indicators():
        out.setdefault(COMPUTE[ind["id"]][0], {"commune"}).update(ind["dims"])  # commune: the one filter
    return out


def new_projection() -> Projection:
    """A projection indexed the way the figures read it (:data:`LINGERS`, the catalogue's dimensions)."""
    return Projection(lingers=LINGERS, dims=_dims())


def value(proj: Projection, indicator: str, t0: str, t1: str, where: dict[str, str] | None = None):
    """One indicator's value over ``[t0, t1)``, on the entities whose attributes match ``where``."""
    kind, fn = COMPUTE[indicator]
    return fn(_matching(proj.entities(kind, since=t0, until=t1), where), t0, t1)


def _matching(ents: list[Entity], where: dict[str, str] | None) -> list[Entity]:
    if not where:
        return ents
    return [e for e in ents if all(e.attrs.get(k) == v for k, v in where.items())]


def breakdown(proj: Projection, indicator: str, dim: str, t0: str, t1: str, where: dict | None = None) -> dict:
    """The indicator per value of one dimension (communes, gates …), keys sorted."""
    kind, fn = COMPUTE[indicator]
    groups: dict[str, list[Entity]] = {}
    for e in _matching(proj.entities(kind, since=t0, until=t1), where):
        if dim in e.attrs:
            groups.setdefault(e.attrs[dim], []).append(e)
    keys = proj.attr_values(kind, dim, where)   # a value whose entities were all passed over: its figure too
    if keys is None:
        keys = {e.attrs[dim] for e in _matching(proj.entities(kind), where) if dim in e.attrs}
    return {k: fn(groups.get(k, []), t0, t1) for k in sorted(keys)}


STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def buckets(start: datetime, end: datetime, step: str) -> list[tuple[str, str]]:
    """``[t0, t1)`` windows of ``step`` covering ``[start, end)``, aligned on the local hour or day."""
    # the province's day starts at midnight Asia/Ho_Chi_Minh
    local = start.astimezone(TZ).replace(minute=0, second=0, microsecond=0)
    if step == "day":
        local = local.replace(hour=0)
    out, t = [], local
    while t < end:
        out.append((fmt(t), fmt(t + STEPS[step])))
        t += STEPS[step]
    return out


def series(proj: Projection, indicator: str, start: datetime, end: datetime, step: str,
           where: dict | None = None) -> list[dict]:
    """The indicator per bucket: flows and ratios over each bucket, gauges at each bucket's end."""
    return [{"from": a, "to": b, "value": value(proj, indicator, a, b, where)} for a, b in buckets(start, end, step)]
