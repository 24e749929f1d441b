"""Partner banks, with signed requests: their answers to our transfers, their transfers, their
settlement and reconciliation. A bank sees only its own transfers (anything else is "not found")."""

from __future__ import annotations

from flask import Blueprint, g

from lscloud.auth import allow, principal
from lscloud.query import Param, QueryError, unissued_page_token
from lscloud.statemachine import Actor
from lscloud.web import page_params, query_params, responds, validate_body

from .. import actions, documents, settlement, transfers
from .common import DAY, FORMAT, TID, TRANSFER_HEADERS, answer, settlement_response, transfer_answer

bp = Blueprint("softatm_partners", __name__)
MAX_PERIOD_DAYS = 31


def _bank_sees(doc: dict) -> bool:
    return doc["bank"] == principal().partner


def _answer_as_bank(tid: str, action: str, kind: str | None):
    """The bank's step on its transfer; on a route of one kind, a transfer of the other is not found."""
    body = g.body

    def visible(doc):
        return _bank_sees(doc) and (kind is None or doc["kind"] == kind)

    doc, replayed = actions.act(tid, action, body, Actor("bank", principal().partner), visible=visible,
                                reason=body.get("reason"), bank_reference=body.get("bank_reference"))
    return transfer_answer(doc, 200, replayed)


@bp.post(f"/v1/bank/withdrawals/<{TID}>/reserve")
@allow(partner=True)
@validate_body("softatm/bank-action.json")
@responds("softatm/transfer.json", headers=TRANSFER_HEADERS)
def bank_reserve(tid):
    """The bank reserved the customer's funds: the teller may now hand over the cash."""
    return _answer_as_bank(tid, "reserve", transfers.WITHDRAWAL)


@bp.post(f"/v1/bank/withdrawals/<{TID}>/reject")
@allow(partner=True)
@validate_body("softatm/bank-action.json")
@responds("softatm/transfer.json", headers=TRANSFER_HEADERS)
def bank_reject_withdrawal(tid):
    """The bank refuses the withdrawal (customer not authenticated, no funds …)."""
    return _answer_as_bank(tid, "reject", transfers.WITHDRAWAL)


@bp.post(f"/v1/bank/deposits/<{TID}>/confirm")
@allow(partner=True)
@validate_body("softatm/bank-action.json")
@responds("softatm/transfer.json", headers=TRANSFER_HEADERS)
def bank_confirm_deposit(tid):
    """The bank credited the account: the deposit is committed and the point's float grows."""
    return _answer_as_bank(tid, "confirm", transfers.DEPOSIT)


@bp.post(f"/v1/bank/deposits/<{TID}>/reject")
@allow(partner=True)
@validate_body("softatm/bank-action.json")
@responds("softatm/transfer.json", headers=TRANSFER_HEADERS)
def bank_reject_deposit(tid):
    """The bank refuses the deposit (the teller hands the cash back)."""
    return _answer_as_bank(tid, "reject", transfers.DEPOSIT)


@bp.post(f"/v1/bank/transfers/<{TID}>/abort")
@allow(partner=True)
@validate_body("softatm/bank-action.json")
@responds("softatm/transfer.json", headers=TRANSFER_HEADERS)
def bank_abort(tid):
    """Explicitly abort a transfer that is not final (e.g. a reserved withdrawal the customer cancelled)."""
    return _answer_as_bank(tid, "abort", None)


@bp.get(f"/v1/bank/transfers/<{TID}>")
@allow(partner=True)
@responds("softatm/transfer.json", headers=TRANSFER_HEADERS)
def bank_get(tid):
    """One of the bank's transfers."""
    return transfer_answer(actions.read(tid, _bank_sees))


@bp.get("/v1/bank/transfers")
@allow(partner=True)
@responds("softatm/transfer-list.json")
@query_params(Param("from", "First local day, YYYY-MM-DD", {"type": "string", "format": "date"}, required=True),
              ("to", "Last local day, YYYY-MM-DD (default: from; at most 31 days)", {"type": "string", "format": "date"}),
              *page_params(default_limit=500, max_limit=1000))
def bank_list():
    """The bank's transfers created in a period of local days (at most 31), in creation order, a page
    at a time: follow next_page_token with the same from and to."""
    d0 = g.query["from"]
    d1 = g.query["to"] or d0
    if not 0 <= (d1 - d0).days < MAX_PERIOD_DAYS:   # a period of at most 31 local days, as documented
        raise QueryError("to", f"to is on or after from, a period of at most {MAX_PERIOD_DAYS} days",
                         f"Ngày 'to' phải từ ngày 'from' trở đi, cả khoảng dài tối đa {MAX_PERIOD_DAYS} ngày.")
    try:
        docs, token = documents.created_page(principal().partner, d0, d1, g.query["limit"], g.query["page_token"] or None)
    except ValueError:
        raise unissued_page_token() from None
    items = [transfers.view(doc) for doc in docs]
    return answer({"items": items, "total": len(items), "next_page_token": token})


@bp.get(f"/v1/bank/settlements/<{DAY}>")
@allow(partner=True)
@responds("softatm/settlement.json", media={"text/csv": None})
@query_params(FORMAT)
def bank_settlement(day):
    """The bank's daily settlement: net position and every transfer committed that day."""
    return settlement_response(principal().partner, day)


@bp.post("/v1/bank/reconciliations")
@allow(partner=True)
@validate_body("softatm/reconciliation.json")
@responds("softatm/reconciliation-result.json", status=201,
          also={200: "A resend of the same id and body: the body of the first answer (Idempotent-Replayed: true)"})
def bank_reconcile():
    """Submit the bank's view of a day; every mismatch with ours is listed."""
    b = g.body
    data, replayed = settlement.reconcile(principal().partner, b["id"], b["day"], b["transfers"])
    return answer(data, 200 if replayed else 201, replayed)
