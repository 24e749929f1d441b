"""What the soft ATM's routes share: the answer (with ``Idempotent-Replayed`` on a resend), the
directory's points, who sees which transfer, and a settlement in JSON or CSV."""

from __future__ import annotations

from flask import Response, current_app, g, jsonify

from lscloud.auth import principal
from lscloud.idempotency import REPLAYED_HEADER

from .. import settlement, transfers, watch
from ..offices import Offices

TID = 'schema("softatm/transfer-create.json#/properties/id"):tid'
"""The route argument of a transfer's client-chosen id, as its create names it (:mod:`lscloud.web.pathparams`)."""

BANK = 'schema("softatm/bank-register.json#/properties/code", match=False):{}'
"""A partner bank's code, as its registration names it (a route names the argument: ``BANK.format("code")``);
routed whatever it holds, so that any code no bank has is the view's ``unknown-bank``."""
POINT = 'schema("directory/post-office.json#/properties/code"):code'
"""A soft ATM point: the post office's code in the directory."""
DAY = 'schema("softatm/reconciliation.json#/properties/day", match=False):day'
"""A settlement's local day: documented, and checked by the view (a 400 naming ``day``)."""

READERS = ("teller", "operator", "auditor")
FORMAT = ("format", "json (default) or csv", {"type": "string", "enum": ["json", "csv"], "default": "json"})


def answer(body, status: int = 200, replayed: bool = False) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    if replayed:
        resp.headers[REPLAYED_HEADER] = "true"
    return resp


TRANSFER_HEADERS = {"ETag": "Strong validator of the transfer as you see it: send it back in If-None-Match "
                            "(with Prefer: wait=N on GET, to wait for it to change)"}


def transfer_answer(doc: dict, status: int = 200, replayed: bool = False) -> Response:
    """A transfer as the caller sees it, with its ETag (what a long-poll waits to see change)."""
    view = transfers.view(doc)
    resp = answer(view, status, replayed)
    resp.headers["ETag"] = watch.etag(view)
    return resp


def offices() -> Offices:
    return current_app.extensions["softatm.offices"]


def staff_sees(doc: dict) -> bool:
    """Operators and auditors see every transfer; a teller those of the point in their token."""
    p = principal()
    return p.role in ("operator", "auditor") or (p.role == "teller" and p.unit == doc["point"])


def settlement_response(bank: str, day: str) -> Response:
    data = settlement.report(bank, settlement.check_day(day))
    if g.query["format"] == "csv":
        return Response(settlement.csv_bytes(data), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="settlement-{bank}-{day}.csv"'})
    return answer(data)
