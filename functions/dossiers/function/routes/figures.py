"""Figures and housekeeping: the IOC's stats, the working-day calendar, the overdue sweep and the
outbox (the platform clock's tick does the last two every minute)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from lscloud import workdays
from lscloud.auth import allow, principal
from lscloud.idempotency import idempotent
from lscloud.statemachine import Actor, now
from lscloud.web import query_params, responds
from lscloud.web.caching import CACHED, cached_json

from .. import overdue, stats

bp = Blueprint("figures", __name__)
AGENCY_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


@bp.get("/v1/stats")
@allow("supervisor", "operator", "ioc", "auditor")
@responds("dossiers/stats.json")
@query_params(("from", "First local day, YYYY-MM-DD (default: 30 days ago).", {"type": "string", "format": "date"}),
              ("to", "Last local day, YYYY-MM-DD (default today; at most 366 days).", {"type": "string", "format": "date"}),
              ("agency", "Only dossiers decided by this agency (a supervisor: always their own).",
               {"type": "string", "pattern": AGENCY_PATTERN, "maxLength": 64}))
def get_stats():
    """Received, resolved, on time / late, overdue now and online share per agency, commune and procedure."""
    return jsonify(stats.report(Actor.of(principal()), g.query["from"], g.query["to"], g.query["agency"], now()))


# years a calendar can speak of; outside them there is nothing (404), never a date error (500)
@bp.get("/v1/calendar/<int(min=1900, max=2999):year>")
@allow("public")
@responds("dossiers/calendar.json", **CACHED)
def get_calendar(year: int):
    """The working-day calendar of a year: holidays and make-up Saturdays the deadlines use."""
    return cached_json(workdays.load().describe(year))


@bp.post("/v1/overdue/sweep")
@allow("operator")
@idempotent(required=False)
@responds("dossiers/sweep-result.json")
def sweep_overdue():
    """Flag steps past their deadline (one step.overdue event each) and refresh the overdue gauge;
    the platform clock's tick does it every minute."""
    return jsonify(overdue.sweep(now()))

