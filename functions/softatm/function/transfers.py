"""Transfers: the two-phase state machine, request checks and the resend rule. Plain Python.

Withdrawal (cash-out): RECEIVED → RESERVED (the bank reserved the customer's funds) →
COMMITTED (the teller handed the cash over) | ABORTED. Deposit (cash-in): RECEIVED →
COMMITTED (the bank credited the account) | ABORTED. A RECEIVED transfer past its expiry aborts;
a RESERVED one never expires and leaves RESERVED only by commit or an explicit abort. COMMITTED
and ABORTED are final: there are no reversals (a refund is a new transfer).

Every POST carries a client-chosen id; the normalised request is kept with the transfer, so a
resend with the same body gets the first answer again and a different body gets 409 naming
every field that differs, never its value (:class:`lscloud.resends.IdReused`).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from lscloud.identifiers import InvalidIdentifier, parse_cccd
from lscloud.pseudonyms import pseudonym

RECEIVED, RESERVED, COMMITTED, ABORTED = "RECEIVED", "RESERVED", "COMMITTED", "ABORTED"
FINAL = (COMMITTED, ABORTED)
WITHDRAWAL, DEPOSIT = "withdrawal", "deposit"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ACCOUNT_RE = re.compile(r"^[0-9]{6,20}$")
PHONE_RE = re.compile(r"^0[0-9]{9}$")

# action -> (kinds, states it may start from, target)
TRANSITIONS = {
    "reserve": ((WITHDRAWAL,), (RECEIVED,), RESERVED),
    "commit": ((WITHDRAWAL,), (RESERVED,), COMMITTED),
    "confirm": ((DEPOSIT,), (RECEIVED,), COMMITTED),
    "reject": ((WITHDRAWAL, DEPOSIT), (RECEIVED,), ABORTED),
    "abort": ((WITHDRAWAL, DEPOSIT), (RECEIVED, RESERVED), ABORTED),
    "expire": ((WITHDRAWAL, DEPOSIT), (RECEIVED,), ABORTED),
}


class TransferError(Exception):
    """A request the rules refuse; ``code`` is the problem type slug."""

    def __init__(self, code: str, message: str, *, status: int = 409, field: str | None = None, **extra):
        super().__init__(message)
        self.code, self.status, self.field, self.extra = code, status, field, extra


class IllegalTransition(TransferError):
    def __init__(self, action: str, kind: str, state: str):
        kinds, sources, _ = TRANSITIONS[action]
        what = f"a {kind} cannot be {action}ed" if kind not in kinds else f"the transfer is {state}"
        super().__init__("illegal-transition", f"Cannot {action}: {what}.", current_state=state, action=action,
                         allowed_from=list(sources) if kind in kinds else [])


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def local_day(t: datetime) -> str:
    return t.astimezone(TZ).strftime("%Y-%m-%d")


def micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def customer_key(bank: str, account: str | None, phone: str | None) -> str:
    """The customer a daily limit counts for: the bank's account, else the phone, as a pseudonym
    (a keyed hash: an account or phone number must not be readable, or guessable, in an object key)."""
    who = f"acct:{account}" if account else f"phone:{phone}"
    return pseudonym("softatm-customer", f"{bank}\n{who}")


def mask_id(number: str) -> str:
    return number[:3] + "*" * (len(number) - 6) + number[-3:]


def normalise_create(body: dict, kind: str) -> dict:
    """The request as stored and compared: checked fields, canonical forms. Raises TransferError (422)."""
    errors = []
    tid = body.get("id")
    if not isinstance(tid, str) or not ID_RE.match(tid):
        errors.append(("/id", "8-64 letters, digits, '-' or '_'"))
    amount = body.get("amount_vnd")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        errors.append(("/amount_vnd", "a positive whole number of đồng"))
    elif amount % 1000:
        errors.append(("/amount_vnd", "cash moves in multiples of 1,000 VND"))
    account, phone = body.get("account"), body.get("phone")
    if (account is None) == (phone is None):
        errors.append(("/account", "give exactly one of account and phone"))
    elif account is not None and not (isinstance(account, str) and ACCOUNT_RE.match(account)):
        errors.append(("/account", "6-20 digits"))
    elif phone is not None and not (isinstance(phone, str) and PHONE_RE.match(phone.replace(" ", ""))):
        errors.append(("/phone", "a Vietnamese mobile number, 10 digits starting with 0"))
    number = body.get("customer_id_number")
    try:
        cccd = parse_cccd(number if isinstance(number, str) else "")
    except InvalidIdentifier as exc:
        errors.append(("/customer_id_number", str(exc)))
        cccd = None
    bank = body.get("bank")
    if not isinstance(bank, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,30}", bank):
        errors.append(("/bank", "a registered bank code"))
    if errors:
        raise TransferError("validation-failed", f"{len(errors)} field(s) are invalid.", status=422,
                            errors=[{"field": f, "message": m} for f, m in errors])
    return {"id": tid, "kind": kind, "bank": bank, "amount_vnd": amount, "account": account,
            "phone": phone.replace(" ", "") if phone else None,
            "customer_id_number": cccd.number}



def check(action: str, doc: dict) -> str:
    """The target state of ``action`` on ``doc``, or IllegalTransition."""
    kinds, sources, target = TRANSITIONS[action]
    if doc["kind"] not in kinds or doc["state"] not in sources:
        raise IllegalTransition(action, doc["kind"], doc["state"])
    return target


def expired(doc: dict, at: datetime) -> bool:
    return doc["state"] == RECEIVED and parse_iso(doc["expires_at"]) <= at


def movements_for(doc: dict) -> list[str]:
    """The ledger movements a transfer in its current state must have (in order)."""
    if doc["kind"] == WITHDRAWAL:
        if doc.get("no_hold"):          # aborted before any cash was set aside
            return []
        return {RECEIVED: ["hold"], RESERVED: ["hold"], COMMITTED: ["hold", "payout"],
                ABORTED: ["hold", "release"]}[doc["state"]]
    return ["intake"] if doc["state"] == COMMITTED else []


def view(doc: dict) -> dict:
    """A transfer as callers see it (the customer's ID number masked)."""
    keep = ("id", "kind", "state", "bank", "point", "unit_code", "amount_vnd", "account", "phone", "created_at",
            "expires_at", "reserved_at", "committed_at", "aborted_at", "abort_reason", "bank_reference")
    out = {k: doc.get(k) for k in keep}
    out["customer_id_number"] = mask_id(doc["customer_id_number"])
    return out


def event_data(doc: dict) -> dict:
    """What IOC events carry: no customer data."""
    return {"transfer_id": doc["id"], "kind": doc["kind"], "state": doc["state"], "bank": doc["bank"],
            "point": doc["point"], "unit_code": doc.get("unit_code"), "amount_vnd": doc["amount_vnd"],
            "abort_reason": doc.get("abort_reason")}
