"""Figures for the IOC."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from lscloud.auth import allow
from lscloud.web import query_params, responds

from .. import figures
from .common import GATE_PATTERN

bp = Blueprint("stats", __name__)


@bp.get("/v1/stats")
@allow("officer", "operator", "auditor")
@responds("border/stats.json")
@query_params(("from", "First local day, YYYY-MM-DD (default today).", {"type": "string", "format": "date"}),
              ("to", "Last local day, YYYY-MM-DD (default = from; at most 31 days).", {"type": "string", "format": "date"}),
              ("gate", "Only this gate (a gate code).", {"type": "string", "pattern": GATE_PATTERN, "maxLength": 64}))
def get_stats():
    """Declared / cleared / exited per gate, direction and day; dwell and decision times; waiting; mismatches."""
    return jsonify(figures.figures(g.query["from"], g.query["to"], g.query["gate"]))
