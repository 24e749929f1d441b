"""Tellers at a post-office point: withdrawals and deposits, commits and aborts, reading."""

from __future__ import annotations

from flask import Blueprint, Response, g, request
from werkzeug.datastructures import ETags
from werkzeug.http import unquote_etag

from lscloud.auth import allow, principal
from lscloud.statemachine import Actor
from lscloud.web import responds, validate_body

from .. import actions, admission, journal, transfers, watch
from ..offices import check_code
from ..refusals import WrongPoint
from .common import POINT, READERS, TID, TRANSFER_HEADERS, answer, offices, staff_sees, transfer_answer

bp = Blueprint("softatm_tellers", __name__)
WAIT_HEADERS = {"Preference-Applied": "wait=N when the request waited as Prefer: wait=N asked (absent: answered "
                                      "at once, e.g. every waiting slot of the replica was taken)"}


def _create(kind: str):
    """A create, answered at once or, with ``Prefer: wait=N``, once the bank has answered (or N s passed)."""
    req = transfers.normalise_create(g.body, kind)
    point = offices().soft_atm_point(principal().unit)
    seconds = watch.requested_wait(request.headers.getlist("Prefer"))
    # registered before the create: the bank's answer may come before this request reads it
    with watch.watching(req["id"], wanted=bool(seconds)) as waiter:
        doc, replayed = admission.receive(req, point, Actor.of(principal()))
        if waiter is None:
            return transfer_answer(doc, 201, replayed)
        created = watch.etag(transfers.view(doc))
        if doc["state"] == transfers.RECEIVED and doc["admitted"]:
            # as the create answered, until the bank's answer is in and settled (the teller's next step races nothing)
            doc = watch.wait(waiter, lambda tag: tag == created, seconds,
                             lambda: actions.read(req["id"], staff_sees), transfers.view) or doc
    return _applied(transfer_answer(doc, 201, replayed), seconds)


@bp.post("/v1/withdrawals")
@allow("teller")
@validate_body("softatm/transfer-create.json")
@responds("softatm/transfer.json", status=201, headers={**TRANSFER_HEADERS, **WAIT_HEADERS})
def create_withdrawal():
    """Create a withdrawal (cash-out) at the teller's point; the bank is asked to reserve.

    With ``Prefer: wait=N`` (RFC 7240, N ≤ 20 seconds) the answer waits until the bank has answered
    (the transfer as it is then) or N seconds pass (as created): the teller asks once instead of
    creating, then long-polling ``GET /v1/transfers/{id}``."""
    return _create(transfers.WITHDRAWAL)


@bp.post("/v1/deposits")
@allow("teller")
@validate_body("softatm/transfer-create.json")
@responds("softatm/transfer.json", status=201, headers={**TRANSFER_HEADERS, **WAIT_HEADERS})
def create_deposit():
    """Create a deposit (cash-in) at the teller's point; the bank is asked to confirm.

    ``Prefer: wait=N`` waits for the bank's answer as a withdrawal's create does."""
    return _create(transfers.DEPOSIT)


@bp.post(f"/v1/withdrawals/<{TID}>/commit")
@allow("teller")
@validate_body("softatm/commit.json")
@responds("softatm/transfer.json", headers=TRANSFER_HEADERS)
def commit_withdrawal(tid):
    """Confirm that the reserved cash was handed over: the withdrawal is committed."""
    doc, replayed = actions.act(tid, "commit", g.body, Actor.of(principal()), visible=staff_sees)
    return transfer_answer(doc, 200, replayed)


@bp.post(f"/v1/transfers/<{TID}>/abort")
@allow("teller", "operator")
@validate_body("softatm/abort.json")
@responds("softatm/transfer.json", headers=TRANSFER_HEADERS)
def abort_transfer(tid):
    """Abort a transfer that is not final (the only way out of RESERVED besides commit)."""
    doc, replayed = actions.act(tid, "abort", g.body, Actor.of(principal()), visible=staff_sees,
                                reason=g.body["reason"])
    return transfer_answer(doc, 200, replayed)


@bp.get(f"/v1/transfers/<{TID}>")
@allow(*READERS)
@responds("softatm/transfer.json", headers={**TRANSFER_HEADERS, **WAIT_HEADERS},
          also={304: "Not modified: still as If-None-Match says, at the end of the wait (Prefer: wait=N)"})
def get_transfer(tid):
    """A transfer (tellers: their point's).

    Long-poll: with ``If-None-Match: <its ETag>`` and ``Prefer: wait=N`` (RFC 7240, N ≤ 20 seconds)
    the answer waits until the transfer changes (200, new ETag) or N seconds pass (304): a teller
    waiting for the bank's reservation asks once instead of polling. Without ``Prefer: wait`` a
    matching ``If-None-Match`` is answered 304 at once."""
    held = held_tags(request.if_none_match)
    seconds = watch.requested_wait(request.headers.getlist("Prefer"))
    with watch.watching(tid, wanted=bool(request.if_none_match and seconds)) as waiter:
        doc = actions.read(tid, staff_sees)   # access checked here, once; a transfer never changes point
        tag = watch.etag(transfers.view(doc))
        if waiter is None:
            return transfer_answer(doc) if not held(tag) else _not_modified(tag)
        if not held(tag) and watch.settled(doc):
            return _applied(transfer_answer(doc), seconds)
        # unchanged, or changed with its consequences still running (the teller's commit would race them)
        changed = watch.wait(waiter, held, seconds, lambda: actions.read(tid, staff_sees), transfers.view)
    return _applied(transfer_answer(changed) if changed is not None else _not_modified(tag), seconds)


def held_tags(if_none_match: ETags):
    """Whether a (quoted) ETag is one the caller holds: ``If-None-Match``'s weak comparison
    (RFC 9110 §13.1.2), or ``*``."""
    return lambda tag: if_none_match.contains_weak(unquote_etag(tag)[0])


def _not_modified(tag: str) -> Response:
    return Response(status=304, headers={"ETag": tag})


def _applied(resp: Response, seconds: int) -> Response:
    resp.headers["Preference-Applied"] = f"wait={seconds}"
    return resp


@bp.get(f"/v1/points/<{POINT}>/float")
@allow(*READERS)
@responds("softatm/float.json")
def get_float(code):
    """Cash at a point: free cash and cash held for withdrawals in flight."""
    p = principal()
    if p.role == "teller" and p.unit != code:
        raise WrongPoint()
    check_code(code)
    return answer(journal.float_of(code))
