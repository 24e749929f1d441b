"""Tellers at a post-office point: withdrawals and deposits, commits and aborts, reading."""

from __future__ import annotations

from flask import Blueprint, g

from lscloud.auth import allow, principal
from lscloud.statemachine import Actor
from lscloud.web import responds, validate_body

from .. import actions, admission, journal, transfers
from ..offices import check_code
from ..refusals import WrongPoint
from .common import READERS, answer, offices, staff_sees

bp = Blueprint("softatm_tellers", __name__)


def _create(kind: str):
    req = transfers.normalise_create(g.body, kind)
    point = offices().soft_atm_point(principal().unit)
    doc, replayed = admission.receive(req, point, Actor.of(principal()))
    return answer(transfers.view(doc), 201, replayed)


@bp.post("/v1/withdrawals")
@allow("teller")
@validate_body("softatm/transfer-create.json")
@responds("softatm/transfer.json", status=201)
def create_withdrawal():
    """Create a withdrawal (cash-out) at the teller's point; the bank is asked to reserve."""
    return _create(transfers.WITHDRAWAL)


@bp.post("/v1/deposits")
@allow("teller")
@validate_body("softatm/transfer-create.json")
@responds("softatm/transfer.json", status=201)
def create_deposit():
    """Create a deposit (cash-in) at the teller's point; the bank is asked to confirm."""
    return _create(transfers.DEPOSIT)


@bp.post("/v1/withdrawals/<tid>/commit")
@allow("teller")
@validate_body("softatm/commit.json")
@responds("softatm/transfer.json")
def commit_withdrawal(tid):
    """Confirm that the reserved cash was handed over: the withdrawal is committed."""
    doc, replayed = actions.act(tid, "commit", g.body, Actor.of(principal()), visible=staff_sees)
    return answer(transfers.view(doc), 200, replayed)


@bp.post("/v1/transfers/<tid>/abort")
@allow("teller", "operator")
@validate_body("softatm/abort.json")
@responds("softatm/transfer.json")
def abort_transfer(tid):
    """Abort a transfer that is not final (the only way out of RESERVED besides commit)."""
    doc, replayed = actions.act(tid, "abort", g.body, Actor.of(principal()), visible=staff_sees,
                                reason=g.body["reason"])
    return answer(transfers.view(doc), 200, replayed)


@bp.get("/v1/transfers/<tid>")
@allow(*READERS)
@responds("softatm/transfer.json")
def get_transfer(tid):
    """A transfer (tellers: their point's)."""
    return answer(transfers.view(actions.read(tid, staff_sees)))


@bp.get("/v1/points/<code>/float")
@allow(*READERS)
@responds("softatm/float.json")
def get_float(code):
    """Cash at a point: free cash and cash held for withdrawals in flight."""
    p = principal()
    if p.role == "teller" and p.unit != code:
        raise WrongPoint()
    check_code(code)
    return answer(journal.float_of(code))
