"""Cash deliveries from VNPost's vault to a point and collections back: one movement each, under
an operator-chosen id (a resend gets the first answer, another body a 409 naming the fields)."""

from __future__ import annotations

from typing import NoReturn

from lscloud import errors
from lscloud.resends import IdReused, changed_fields
from lscloud.store import ConditionalCheckFailed

from . import journal, ledger
from .documents import fact, publish
from .models import CashOperation
from .refusals import CASH, CashInsufficient, FloatLimit
from .transfers import iso, now


def operation(kind: str, op_id: str, point: dict, amount: int, by: str) -> tuple[dict, bool]:
    """A delivery or collection: the id is claimed first (create-only), then the movement follows.

    Everything that can refuse the request outright is checked before the claim, and the float
    limit's answer is recorded in it: a claimed id is a promise that the movement (or a recorded
    refusal) follows, the same for every resend.
    """
    try:
        ledger.movement(kind, point["code"], amount, ref=op_id)
    except ValueError as exc:
        raise errors.Invalid.at("/amount_vnd", str(exc), "Số tiền phải là một số nguyên dương, tính bằng đồng.") from None
    req = {"id": op_id, "kind": kind, "point": point["code"], "amount_vnd": amount}
    head = journal.head(point["code"])
    data = {"request": req, "id": op_id, "kind": kind, "point": point["code"], "amount_vnd": amount, "by": by,
            "journal_from": head.seq, "at": iso(now())}
    if kind == "delivery":
        # decided before the claim and kept in it: a resend (or a run racing the first) is held to
        # the same answer, never to a check it skips while the first run is still recording a refusal
        total = head.balances.get(ledger.cash(point["code"]), 0) + head.balances.get(ledger.held(point["code"]), 0)
        limit = point.get("cash_float_limit_vnd")
        if limit and total + amount > limit:
            over = FloatLimit(f"The point may hold at most {limit} VND; this delivery would make {total + amount} VND.")
            data["refused"] = {"code": over.type, "message": over.detail}
    replayed = False
    try:
        CashOperation(op_id, data=data).save()
    except ConditionalCheckFailed:
        data = CashOperation.get(op_id).data
        diff = changed_fields(data["request"], req)
        if diff:
            raise IdReused(diff, key=op_id) from None
        replayed = True
    if data.get("refused"):
        raise CASH[data["refused"]["code"]](data["refused"]["message"])
    try:
        journal.move(kind, point["code"], amount, ref=op_id, since_seq=data["journal_from"])
    except ledger.Insufficient as exc:
        _refuse(op_id, CashInsufficient(str(exc)))
    publish([fact(f"cash.{'delivered' if kind == 'delivery' else 'collected'}",
                  {"operation_id": op_id, "point": point["code"], "amount_vnd": amount}, subject=point["code"],
                  id=f"{op_id}.{kind}")])
    return data, replayed


def _refuse(op_id: str, refusal: errors.DomainError) -> NoReturn:
    """Record why the operation is refused (a resend gets the same refusal), then raise it."""
    item = CashOperation.get(op_id)
    item.data = {**item.data, "refused": {"code": refusal.type, "message": refusal.detail}}
    try:
        item.save()
    except ConditionalCheckFailed:
        pass
    raise refusal
