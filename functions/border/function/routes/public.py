"""What anyone may read: the driver's lookup (by code and plate, in vi / zh / en) and a gate's
queue board."""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, g, jsonify, request

from lscloud import errors
from lscloud.auth import allow
from lscloud.query import InvalidQuery, Param
from lscloud.web import query_params, responds
from lscloud.web.instrumentation import record_exception

from .. import i18n, lookup, queueing, traffic
from .common import GATE_CODE, gate, platform

bp = Blueprint("public", __name__)
log = logging.getLogger("border.lookup")


def in_askers_language(view):
    """The lookup's refusals in the language its answers come in (vi, zh or en, Content-Language
    set): a driver who asked in Chinese must not be told in English that a field is missing.
    Above ``@query_params``, so that its 400 is said so too."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        lang = i18n.pick(request.headers.get("Accept-Language"))
        try:
            return view(*args, **kwargs)
        except InvalidQuery as exc:
            raise lookup.LookupBadQuery([e["field"] for e in exc.errors], lang) from None
        except Exception as exc:
            problem = errors.to_problem(exc)
            if problem is None or problem.status != 503:
                raise
            # the runtime's handler would have put it on the span and in the log; answered here, it is ours to
            record_exception(exc)
            log.warning("driver lookup answered 503 to %s", type(exc).__name__)
            raise lookup.unavailable(problem, lang) from exc

    return wrapper


@bp.get("/v1/lookup")
@allow("public")
@responds("border/lookup.json", headers={"Content-Language": "vi, zh or en (Accept-Language)"})
@in_askers_language
@query_params(Param("code", "The declaration code (e.g. LS7K3QZP9).", {"type": "string", "minLength": 1,
                                                                        "maxLength": 20}, required=True),
              Param("plate", "The tractor or trailer plate.", {"type": "string", "minLength": 1, "maxLength": 20},
                    required=True))
def driver_lookup():
    """A driver's status and queue position by declaration code + plate, in vi / zh / en."""
    lang = i18n.pick(request.headers.get("Accept-Language"))
    code, plate = g.query["code"], g.query["plate"]
    # the directory's gate, read once: for an in-yard truck's expected wait, and for the gate's name
    read_gate = functools.cache(gate)
    doc, where = queueing.where_read(lambda: lookup.find(code, plate, lang), platform(),
                                     "code:" + lookup.normal_code(code), read_gate=read_gate)
    orders = traffic.told_to(doc, lang, platform().peer_fresh_s)
    resp = jsonify(lookup.answer(doc, where, lang, orders, lookup.gate_name(lambda: read_gate(doc["gate"]), lang)))
    resp.headers["Content-Language"] = lang
    resp.headers["Vary"] = "Accept-Language"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get(f"/v1/gates/<{GATE_CODE}>/board")
@allow("public")
@responds("border/board.json", headers={"Content-Language": "The language of the gate's name: vi, zh or en "
                                                            "(Accept-Language)"})
def queue_board(gate_code: str):
    """The public queue board: waiting trucks per direction and lane, current slot, expected wait,
    the gate's name in the asker's language (vi / zh / en) where the directory has it."""
    lang = i18n.pick(request.headers.get("Accept-Language"))
    resp = jsonify(queueing.board(gate_code, gate(gate_code), lang))
    resp.headers["Content-Language"] = lang
    resp.headers["Vary"] = "Accept-Language"
    return resp
