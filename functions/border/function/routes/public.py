"""What anyone may read: the driver's lookup (by code and plate, in vi / zh / en) and a gate's
queue board."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from lscloud.auth import allow
from lscloud.query import Param
from lscloud.web import query_params, responds

from .. import i18n, lookup, queueing
from .common import GATE_CODE, gate, platform

bp = Blueprint("public", __name__)


@bp.get("/v1/lookup")
@allow("public")
@responds("border/lookup.json", headers={"Content-Language": "vi, zh or en (Accept-Language)"})
@query_params(Param("code", "The declaration code (e.g. LS7K3QZP9).", {"type": "string", "minLength": 1,
                                                                        "maxLength": 20}, required=True),
              Param("plate", "The tractor or trailer plate.", {"type": "string", "minLength": 1, "maxLength": 20},
                    required=True))
def driver_lookup():
    """A driver's status and queue position by declaration code + plate, in vi / zh / en."""
    lang = i18n.pick(request.headers.get("Accept-Language"))
    code, plate = g.query["code"], g.query["plate"]
    doc, where = queueing.where_read(lambda: lookup.find(code, plate, lang), platform(),
                                     "code:" + lookup.normal_code(code))
    resp = jsonify(lookup.answer(doc, where, lang))
    resp.headers["Content-Language"] = lang
    resp.headers["Vary"] = "Accept-Language"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get(f"/v1/gates/<{GATE_CODE}>/board")
@allow("public")
@responds("border/board.json")
def queue_board(gate_code: str):
    """The public queue board: waiting trucks per direction and lane, current slot, expected wait."""
    return jsonify(queueing.board(gate_code, gate(gate_code)))
