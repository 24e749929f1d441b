"""What the API answers, built from the projection and the catalogue (plain Python).

A :class:`Scope` says what the caller may see: everything (the IOC, officers), one commune (a
commune officer), or the public subset. Values are computed at ``as_of`` (default now): flows and
ratios over the preceding 24 hours, gauges at that instant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lscloud import errors

from . import catalogue, figures
from .projection import Projection


class NotYourCommune(errors.Forbidden):
    type = "not-your-commune"
    title, title_vi = "Not your commune", "Không thuộc xã, phường của bạn"


@dataclass(frozen=True)
class Scope:
    public_only: bool = False
    commune: str | None = None  # a commune officer's own commune: every figure is filtered to it

    def commune_for(self, asked: str | None) -> str | None:
        if self.commune is None:
            return asked
        if asked is not None and asked != self.commune:
            raise NotYourCommune("a commune officer sees their own commune's figures",
                                 detail_vi="Công chức xã, phường chỉ xem số liệu của xã, phường mình.")
        return self.commune

    def shows(self, ind: dict) -> bool:
        if self.public_only and not ind["public"]:
            return False
        return self.commune is None or "commune" in ind["dims"]


def window(as_of: datetime | None) -> tuple[str, str]:
    """The 24 hours up to ``as_of`` (default now), its end rounded up to the second so that a fact
    of this very second is in."""
    t = (as_of or datetime.now(timezone.utc)).astimezone(timezone.utc)
    t1 = t.replace(microsecond=0) + (timedelta(seconds=1) if t.microsecond else timedelta(0))
    return figures.fmt(t1 - figures.WINDOW), figures.fmt(t1)


def _one(proj: Projection, ind: dict, t0: str, t1: str, commune: str | None, connected: set[str],
         last: dict[str, str], breakdowns: bool) -> dict:
    out = catalogue.entry(ind)
    if ind["source"] not in connected:
        return {**out, "status": "no-source", "value": None, "last_event_at": None}
    where = {"commune": commune} if commune else None
    out.update(status="ok", value=figures.value(proj, ind["id"], t0, t1, where), last_event_at=last.get(ind["source"]))
    if breakdowns:
        out["by"] = {d: figures.breakdown(proj, ind["id"], d, t0, t1, where) for d in ind["dims"] if d != "commune" or not commune}
    return out


def areas(connected: set[str]) -> list[dict]:
    """The areas with their sources, each said connected or not."""
    out = []
    for a in catalogue.areas():
        srcs = [{"id": s, "name": {"vi": catalogue.sources()[s]["vi"], "en": catalogue.sources()[s]["en"]},
                 "connected": s in connected} for s in a["sources"]]
        out.append({"id": a["id"], "name": {"vi": a["vi"], "en": a["en"]}, "nine": a["nine"], "sources": srcs,
                    "status": "ok" if any(s["connected"] for s in srcs) else "no-source"})
    return out


def indicators(proj: Projection, scope: Scope, connected: set[str], *, area: str | None = None,
               commune: str | None = None, as_of: datetime | None = None, breakdowns: bool = True) -> dict:
    """``GET /v1/indicators``: the catalogue with each indicator's current value and breakdowns."""
    commune = scope.commune_for(commune)
    t0, t1 = window(as_of)
    return proj.memo(("indicators", scope, frozenset(connected), area, commune, t1, breakdowns),
                     lambda: _indicators(proj, scope, connected, area, commune, t0, t1, breakdowns))


def _indicators(proj, scope, connected, area, commune, t0, t1, breakdowns) -> dict:
    last = proj.last_at()
    items = [_one(proj, ind, t0, t1, commune, connected, last, breakdowns) for ind in catalogue.indicators()
             if scope.shows(ind) and (area is None or ind["area"] == area)
             and (commune is None or "commune" in ind["dims"])]
    return {"as_of": t1, "window": {"from": t0, "to": t1}, "commune": commune,
            "areas": [a for a in areas(connected) if area is None or a["id"] == area],
            "items": items, "total": len(items)}


def communes_in(body: dict) -> set[str]:
    """The commune codes an indicators answer names: its ``commune`` and its breakdowns' keys."""
    codes = {body["commune"]} if body.get("commune") else set()
    for item in body["items"]:
        codes.update((item.get("by") or {}).get("commune") or {})
    return codes


def indicator_or_404(indicator_id: str, scope: Scope) -> dict:
    ind = catalogue.indicator(indicator_id)
    if ind is None or not scope.shows(ind):
        raise errors.NotFound(f"no indicator {indicator_id!r}", detail_vi="Không có chỉ số này.")
    return ind


def series(proj: Projection, scope: Scope, connected: set[str], indicator_id: str, start: datetime | None,
           end: datetime | None, step: str, commune: str | None) -> dict:
    """``GET /v1/indicators/{id}/series``: the indicator per hour or day."""
    ind = indicator_or_404(indicator_id, scope)
    commune = scope.commune_for(commune)
    if commune and "commune" not in ind["dims"]:
        raise errors.InvalidParameter("this indicator is not broken down by commune", detail_vi="Chỉ số này không tính theo xã, phường.",
                                      errors=[{"field": "commune", "message": "not a dimension of this indicator"}])
    end = (end or datetime.now(timezone.utc)).astimezone(timezone.utc)
    start = (start or end - figures.WINDOW).astimezone(timezone.utc)
    if start >= end:
        raise errors.InvalidParameter("from must be before to", detail_vi="Thời điểm bắt đầu phải trước thời điểm kết thúc.",
                                      errors=[{"field": "from", "message": "must be before to"}])
    if (end - start) / figures.STEPS[step] > MAX_BUCKETS:
        raise errors.InvalidParameter(f"at most {MAX_BUCKETS} {step}s per request",
                                      detail_vi=f"Tối đa {MAX_BUCKETS} khoảng mỗi lần.",
                                      errors=[{"field": "from", "message": f"at most {MAX_BUCKETS} steps of one {step} before to"}])
    points = [] if ind["source"] not in connected else figures.series(
        proj, ind["id"], start, end, step, {"commune": commune} if commune else None)
    return {"indicator": catalogue.entry(ind), "status": "ok" if ind["source"] in connected else "no-source",
            "step": step, "from": figures.fmt(start), "to": figures.fmt(end), "commune": commune, "points": points}


MAX_BUCKETS = 745  # a month of hours, two years of days


def commune_card(proj: Projection, scope: Scope, connected: set[str], code: str, as_of: datetime | None = None) -> dict:
    """``GET /v1/communes/{code}``: every figure broken down by commune, for this one."""
    code = scope.commune_for(code)
    body = indicators(proj, scope, connected, commune=code, as_of=as_of, breakdowns=True)
    return {"commune": code, "as_of": body["as_of"], "window": body["window"], "items": body["items"]}


def targets(proj: Projection, connected: set[str], as_of: datetime | None = None) -> dict:
    """``GET /v1/targets``: Resolution 49's measurable targets with current value and progress."""
    doc = catalogue.targets()
    t0, t1 = window(as_of)
    items = []
    for t in doc["measured"]:
        ind = catalogue.indicator(t["indicator"])
        current = None
        if ind["source"] in connected:
            current = figures.value(proj, ind["id"], t0, t1)
            if t["id"] == "trucks-declared-online":  # see the note in data/targets.yaml
                current = 100.0 if current else None
        progress = round(100.0 * current / t["target"], 1) if current is not None and t["target"] else None
        items.append({"id": t["id"], "name": {"vi": t["vi"], "en": t["en"]}, "indicator": t["indicator"],
                      "target": t["target"], "unit": t["unit"], "by": t["by"], "current": current,
                      "progress_percent": progress, "met": None if progress is None else progress >= 100,
                      "status": "ok" if ind["source"] in connected else "no-source",
                      "source": t["source"], "verified": t["verified"], "note": t.get("note")})
    return {"as_of": t1, "items": items,
            "not_measured": [{"name": {"vi": n["vi"], "en": n["en"]}, "why": n["why"], "source": n["source"]}
                             for n in doc["not_measured"]]}


def snapshot(proj: Projection, as_of: datetime) -> dict:
    """Every figure at ``as_of`` (all indicators, every breakdown, the last 48 hours per hour) and
    every fact held: what a replay must reproduce exactly, with its digest. The facts are in it
    whole, not only their ids: a tally of an older hour or day counts the same in both, or the
    digests differ, though no figure of the last 48 hours shows it."""
    connected = {i["source"] for i in catalogue.indicators()}
    body = indicators(proj, Scope(), connected, as_of=as_of)
    figs = {i["id"]: {"value": i["value"], "by": i.get("by")} for i in body["items"]}
    end = as_of.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    for ind in catalogue.indicators():
        figs[ind["id"]]["hourly"] = [p["value"] for p in figures.series(proj, ind["id"], end - 2 * figures.WINDOW, end, "hour")]
    digest = hashlib.sha256(json.dumps({"figures": figs}, sort_keys=True).encode())
    for fact_id in sorted(proj.fact_ids()):   # one at a time: a year of facts is no string to build whole
        digest.update(json.dumps(proj.fact(fact_id), sort_keys=True).encode())
    return {"facts": len(proj), "figures": figs, "digest": digest.hexdigest()}
