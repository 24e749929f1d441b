"""The IOC's API: indicators, series, a commune's card, targets, the live stream, a replay."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from flask import Blueprint, Response, current_app, g, jsonify, request

from lscloud import errors, runtime
from lscloud.auth import allow, principal
from lscloud.ratelimit import caller_subject
from lscloud.web import query_params, query_schema, responds

from . import catalogue, facts, figures, live, views

bp = Blueprint("ioc_api", __name__)

FULL = ("ioc", "officer", "supervisor", "operator", "auditor")
"""Roles that see every figure of every commune; a commune-officer sees their commune; others the public subset."""
CARD_READERS = FULL + ("commune-officer",)
DATE_TIME = {"type": "string", "format": "date-time"}
SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
COMMUNE_CODE = "ioc/commune-code.json"
"""A commune's code (five digits): the card's path parameter and the ``commune`` query of the series."""
COMMUNE = query_schema(SCHEMAS_DIR, COMMUNE_CODE)
KEEPALIVE_S = 10.0
STREAM_SLOTS = 8
"""Streams open at once per instance (each holds a worker thread; the ASGI bridge has 16)."""
STREAMS_PER_CALLER = 2
"""Streams one caller (a token's subject, else an address) may hold at once: a wall and its reload."""
STAFF = ("ioc", "officer", "operator")
STAFF_SLOTS = 2
"""Slots only a caller with a STAFF token may take: anonymous callers cannot take every one."""
STREAM_RETRY_S = 15


class StreamSlots:
    """Who holds the instance's stream slots. A stream is refused, never queued: a waiting request
    would hold a worker thread as surely as an open stream."""

    def __init__(self, total: int = STREAM_SLOTS, per_caller: int = STREAMS_PER_CALLER, staff_only: int = STAFF_SLOTS):
        self.total, self.per_caller, self.staff_only = total, per_caller, staff_only
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def take(self, caller: str, staff: bool):
        """A release function (call it once the stream is over; more calls do nothing), or
        :class:`errors.TooManyRequests` when ``caller`` holds its share or no slot is left for it."""
        with self._lock:
            in_use = sum(self._held.values())
            if self._held.get(caller, 0) >= self.per_caller:
                raise _refusal(f"at most {self.per_caller} streams per caller may be open at once",
                               f"Mỗi người dùng chỉ được mở tối đa {self.per_caller} luồng trực tiếp cùng lúc")
            if in_use >= self.total - (0 if staff else self.staff_only):
                raise _refusal("every stream slot open to this caller is taken",
                               "Đã hết luồng trực tiếp dành cho người dùng này")
            self._held[caller] = self._held.get(caller, 0) + 1
        done = threading.Event()

        def release() -> None:
            with self._lock:
                if done.is_set():
                    return
                done.set()
                left = self._held[caller] - 1
                if left:
                    self._held[caller] = left
                else:
                    del self._held[caller]
        return release


def _refusal(why: str, why_vi: str) -> errors.TooManyRequests:
    return errors.TooManyRequests(
        f"{why}; the figures stay readable from /v1/indicators. Retry after {STREAM_RETRY_S} s.",
        detail_vi=f"{why_vi}; số liệu vẫn đọc được tại /v1/indicators. Vui lòng thử lại sau {STREAM_RETRY_S} giây.",
        headers={"Retry-After": str(STREAM_RETRY_S)})


def _scope() -> views.Scope:
    who = principal()
    if who.role in FULL:
        return views.Scope()
    if who.role == "commune-officer":
        return views.Scope(commune=who.unit or "-")
    return views.Scope(public_only=True)


def _state():
    state: live.Live = current_app.config["IOC_LIVE"]
    proj = state.ensure_loaded()
    seen = {f for f in proj.last_at()}
    return proj, current_app.config["IOC_SOURCES"].connected(seen)


def _names(codes) -> dict[str, str]:
    return current_app.config["IOC_NAMES"].of(codes)


@bp.get("/v1/indicators")
@allow("public")
@responds("ioc/indicators.json")
@query_params(("area", "only this area's indicators", {"type": "string", "enum": [a["id"] for a in catalogue.areas()]}),
              ("commune", "figures of one commune (directory code)", COMMUNE),
              ("as_of", "the instant the figures are for (default now)", DATE_TIME))
def list_indicators():
    """The catalogue with every indicator's current value, its breakdowns, and the areas' sources;
    ``commune_names``: the directory's name of each commune code in the answer."""
    proj, connected = _state()
    body = views.indicators(proj, _scope(), connected, area=g.query["area"], commune=g.query["commune"],
                            as_of=g.query["as_of"])
    return jsonify({**body, "commune_names": _names(views.communes_in(body))})


@bp.get('/v1/indicators/<schema("ioc/indicator-id.json"):indicator_id>/series')
@allow("public")
@responds("ioc/series.json")
@query_params(("from", "start (default: 24 hours before `to`)", DATE_TIME),
              ("to", "end (default now)", DATE_TIME),
              ("step", "bucket size", {"type": "string", "enum": ["hour", "day"], "default": "hour"}),
              ("commune", "one commune's series", COMMUNE))
def indicator_series(indicator_id: str):
    """One indicator per hour or day (days start at midnight, Vietnam time)."""
    proj, connected = _state()
    return jsonify(views.series(proj, _scope(), connected, indicator_id, g.query["from"], g.query["to"],
                                g.query["step"], g.query["commune"]))


@bp.get(f'/v1/communes/<schema("{COMMUNE_CODE}", match=False):code>')
@allow(*CARD_READERS)
@responds("ioc/commune-card.json")
@query_params(("as_of", "the instant the figures are for (default now)", DATE_TIME))
def commune_card(code: str):
    """A commune's card: every figure that is broken down by commune, for this one; ``name``: the
    directory's name of the commune (null when the directory has none to give)."""
    if not facts.COMMUNE.match(code):
        raise errors.InvalidParameter("a commune code is five digits", detail_vi="Mã xã, phường gồm 5 chữ số.",
                                      errors=[{"field": "code", "message": "must be five digits"}])
    proj, connected = _state()
    card = views.commune_card(proj, _scope(), connected, code, g.query["as_of"])
    return jsonify({**card, "name": _names([card["commune"]]).get(card["commune"])})


@bp.get("/v1/targets")
@allow("public")
@responds("ioc/targets.json")
def list_targets():
    """Resolution 49's targets this data can measure (target, current value, progress) and those it cannot."""
    proj, connected = _state()
    return jsonify(views.targets(proj, connected))


@bp.get("/v1/stream")
@allow("public")
@responds(None, media={"text/event-stream": None},
          also={429: f"This caller holds {STREAMS_PER_CALLER} streams already, or every slot open to it is taken "
                     f"({STAFF_SLOTS} of {STREAM_SLOTS} are kept for {', '.join(STAFF)} tokens): wait Retry-After seconds"},
          description="Server-Sent Events (hello, changed, keep-alive comments, bye) until max_seconds")
@query_params(("max_seconds", "close the stream after this long (the browser reconnects)",
               {"type": "integer", "minimum": 1, "maximum": 60, "default": 25}))
def stream():
    """Server-Sent Events: `changed` (the sources whose figures moved) as soon as a fact is folded in."""
    state: live.Live = current_app.config["IOC_LIVE"]
    slots: StreamSlots = current_app.config["IOC_STREAM_SLOTS"]
    limit = g.query["max_seconds"]
    who = principal()
    # a stream holds one of the server's worker threads while it is open: refused before the answer
    # starts (a 429 the browser's EventSource gives up on, and the wall retries later), never queued
    release = slots.take(caller_subject(who, request.headers, request.remote_addr), who.role in STAFF)

    def events():
        try:
            seq = state.seq
            yield f"retry: 2000\nid: {seq}\nevent: hello\ndata: {json.dumps({'seq': seq})}\n\n"
            deadline = time.monotonic() + limit
            while (left := deadline - time.monotonic()) > 0:
                now, changed = state.wait(seq, min(left, KEEPALIVE_S))
                if now > seq:
                    seq = now
                    yield f"id: {seq}\nevent: changed\ndata: {json.dumps({'seq': seq, 'sources': sorted(changed)})}\n\n"
                else:
                    yield ": keep-alive\n\n"
            yield f"event: bye\ndata: {json.dumps({'seq': seq})}\n\n"
        finally:
            release()

    response = Response(events(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(release)   # also when the answer is dropped before its first chunk
    return response


@bp.post("/v1/replay")
@allow("operator")
@responds("ioc/replay.json")
@query_params(("apply", "put the rebuilt projection live (refused while it lacks live facts: keep_older)",
               {"type": "boolean", "default": False}),
              ("keep_older", "with apply: keep the live facts older than the stream's first message",
               {"type": "boolean", "default": False}),
              ("as_of", "the instant compared (default now)", DATE_TIME))
def replay():
    """Rebuild every figure from the stream's beginning and compare it with the live figures."""
    state: live.Live = current_app.config["IOC_LIVE"]
    # made before the stream is read: what is absorbed from then on is kept for it (live.adopt)
    fresh = figures.new_projection()
    stored = runtime.current().bus.replay(facts.HANDLED)
    for event in stored:
        fact = live.fact_of(event)
        if fact is not None:
            fresh.apply(fact)
    current = state.ensure_loaded()
    as_of = g.query["as_of"] or datetime.now(timezone.utc)
    a, b = views.snapshot(current, as_of), views.snapshot(fresh, as_of)
    live_ids, replayed_ids = current.fact_ids(), fresh.fact_ids()
    body = {"as_of": figures.fmt(as_of),
            "events": len(stored), "identical": a["digest"] == b["digest"],
            "facts": {"live": len(live_ids), "replayed": len(replayed_ids),
                      "only_live": len(live_ids - replayed_ids), "only_replayed": len(replayed_ids - live_ids)},
            "digest": {"live": a["digest"], "replayed": b["digest"]},
            "differences": sorted(k for k in a["figures"] if a["figures"][k] != b["figures"][k]),
            "applied": False}
    if g.query["apply"]:
        # what was absorbed since the rebuild began is no loss: adopt folds it in
        body["kept_live"] = _keep_older(current, fresh, live_ids - replayed_ids - state.folded_since(fresh.begun), stored)
        state.adopt(fresh)
        body["applied"] = True
    return jsonify(body)


def _keep_older(current, fresh, only_live: set[str], stored: list) -> int:
    """Fold into ``fresh`` the live facts it lacks that are older than the stream's first message
    (``keep_older``); how many. The stream keeps 30 days: a rebuild put live as it is deletes all
    history before them for good (reports received again, open dossiers and waiting trucks gone),
    so without ``keep_older`` it is refused. A lacking fact newer than that was on the stream and
    the rebuild read it otherwise: the rebuild's reading stands."""
    if only_live and not g.query["keep_older"]:
        raise errors.Conflict(
            f"The replay lacks {len(only_live)} facts the live projection holds (older than the stream "
            "keeps, or read otherwise): putting it live would delete them. Pass keep_older=true to keep "
            "the ones older than the stream's first message.",
            detail_vi=f"Bản dựng lại thiếu {len(only_live)} dữ kiện mà bản đang chạy có (cũ hơn thời hạn "
                      "luồng lưu giữ, hoặc được đọc khác đi): áp dụng sẽ xoá chúng. Thêm keep_older=true "
                      "để giữ các dữ kiện cũ hơn thông điệp đầu tiên của luồng.",
            errors=[errors.field("keep_older", "required to apply a replay that lacks live facts",
                                 "cần có để áp dụng bản dựng lại thiếu dữ kiện đang có")],
            only_live=len(only_live))
    first = min(filter(None, (facts.utc(e.get("time")) for e in stored)), default=None)
    kept = 0
    for fid in only_live:
        fact = current.fact(fid)
        if fact is not None and (first is None or fact["at"] < first):
            kept += fresh.apply(fact)
    return kept
