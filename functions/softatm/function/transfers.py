"""Transfers: the two-phase state machine (a table on :mod:`lscloud.statemachine`), request checks and
what callers and events see of a transfer. Plain Python.

Withdrawal (cash-out): RECEIVED → RESERVED (the bank reserved the customer's funds) →
COMMITTED (the teller handed the cash over) | ABORTED. Deposit (cash-in): RECEIVED →
COMMITTED (the bank credited the account) | ABORTED. A transfer past its :func:`deadline` aborts
(``expired``): RECEIVED, when the bank did not answer within ``SOFTATM_EXPIRY_S`` (``expires_at``);
RESERVED, when no teller committed or aborted it within ``SOFTATM_RESERVED_EXPIRY_S`` of the
reservation (``reserved_until``: a customer who walked away must not keep their money reserved at
the bank, nor the point its cash held, for good). COMMITTED and ABORTED are final: there are no
reversals (a refund is a new transfer).

Every POST carries a client-chosen id; the normalised request is kept with the transfer, so a
resend with the same body gets the first answer again and a different body gets 409 naming
every field that differs, never its value (:func:`.admission.resend`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from lscloud import errors
from lscloud.identifiers import InvalidIdentifier, parse_cccd
from lscloud.pseudonyms import pseudonym
from lscloud.statemachine import Action, StateMachine, iso as _iso, parse_iso
from lscloud.workdays import local_day  # noqa: F401 - the transfers' day, as their callers import it

from . import reasons, settings

RECEIVED, RESERVED, COMMITTED, ABORTED = "RECEIVED", "RESERVED", "COMMITTED", "ABORTED"
FINAL = frozenset({COMMITTED, ABORTED})
WITHDRAWAL, DEPOSIT = "withdrawal", "deposit"
ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ACCOUNT_RE = re.compile(r"^[0-9]{6,20}$")
PHONE_RE = re.compile(r"^0[0-9]{9}$")

STATE_VI = {RECEIVED: "đã tiếp nhận", RESERVED: "đã giữ tiền", COMMITTED: "đã hoàn tất", ABORTED: "đã hủy"}

# Who may ask for a step is the routes' business (tellers at their point, a bank for its own
# transfers); the table says what each step may start from, for which kind, and where it leads.
MACHINE = StateMachine("softatm", [
    Action("receive", {"new"}, RECEIVED, "transfer.received"),
    Action("reserve", {RECEIVED}, RESERVED, "transfer.reserved", kinds={WITHDRAWAL}),
    Action("commit", {RESERVED}, COMMITTED, "transfer.committed", kinds={WITHDRAWAL}),
    Action("confirm", {RECEIVED}, COMMITTED, "transfer.committed", kinds={DEPOSIT}),
    Action("reject", {RECEIVED}, ABORTED, "transfer.aborted"),
    Action("abort", {RECEIVED, RESERVED}, ABORTED, "transfer.aborted"),
    # the system's abort of what nobody finished in time: the bank unanswered, or the teller after a reservation
    Action("expire", {RECEIVED, RESERVED}, ABORTED, "transfer.aborted"),
    # admission said no (daily limit, no cash, not admitted in time): the bank never hears of it
    Action("refuse", {RECEIVED}, ABORTED, "transfer.aborted"),
], states=(RECEIVED, RESERVED, COMMITTED, ABORTED), terminal=FINAL, state_field="state",
   noun=("transfer", "giao dịch"), state_names_vi=STATE_VI)


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    """Microseconds, as every transfer timestamp has always been written."""
    return _iso(t, "microseconds")


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
    """The request as stored and compared: checked fields, canonical forms. Raises errors.Invalid (422)."""
    bad = []
    tid = body.get("id")
    if not isinstance(tid, str) or not ID_RE.match(tid):
        bad.append(("/id", "8-64 letters, digits, '-' or '_'"))
    amount = body.get("amount_vnd")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        bad.append(("/amount_vnd", "a positive whole number of đồng"))
    elif amount % 1000:
        bad.append(("/amount_vnd", "cash moves in multiples of 1,000 VND"))
    account, phone = body.get("account"), body.get("phone")
    if (account is None) == (phone is None):
        bad.append(("/account", "give exactly one of account and phone"))
    elif account is not None and not (isinstance(account, str) and ACCOUNT_RE.match(account)):
        bad.append(("/account", "6-20 digits"))
    elif phone is not None and not (isinstance(phone, str) and PHONE_RE.match(phone.replace(" ", ""))):
        bad.append(("/phone", "a Vietnamese mobile number, 10 digits starting with 0"))
    number = body.get("customer_id_number")
    try:
        cccd = parse_cccd(number if isinstance(number, str) else "")
    except InvalidIdentifier as exc:
        bad.append(("/customer_id_number", str(exc)))
        cccd = None
    bank = body.get("bank")
    if not isinstance(bank, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,30}", bank):
        bad.append(("/bank", "a registered bank code"))
    if bad:
        raise errors.Invalid(f"{len(bad)} field(s) are invalid.", detail_vi=f"{len(bad)} trường không hợp lệ.",
                             errors=[errors.field(f, m) for f, m in bad])
    return {"id": tid, "kind": kind, "bank": bank, "amount_vnd": amount, "account": account,
            "phone": phone.replace(" ", "") if phone else None,
            "customer_id_number": cccd.number}


def reserve_until(doc: dict, at: datetime, seconds: int) -> None:
    """``doc`` reserved ``at``: the teller has ``seconds`` from then (``reserved_until``).

    The stored ``expires_at`` stays the bank's deadline, as every revision wrote it: the sweep's
    open entry is keyed by it (:func:`.documents.open_key`), by this code and by a replica of
    another revision alike (a rolling deploy, a rollback). Moving it, as the code after reservations
    began to expire did (the bank's kept as ``answer_by``), made a replica of the code before
    compute another key and delete the entry as a resend's orphan: the reservation never expired."""
    doc["reserved_until"] = iso(at + timedelta(seconds=seconds))


def deadline(doc: dict) -> datetime:
    """When ``doc`` expires if it is still open then, whichever revision reserved it:

    - ``reserved_until`` (this code's reservation): the teller's deadline;
    - ``answer_by`` without it (reserved by the code that moved ``expires_at``): ``expires_at`` is
      the teller's deadline there;
    - neither, RESERVED (reserved before reservations expired, or by such a replica): the stored
      ``expires_at`` is the bank's, long past; the reservation's deadline is counted from its
      ``reserved_at`` instead, not an abort of a teller's payout in progress at the first sweep;
    - otherwise ``expires_at``, the bank's."""
    if doc.get("reserved_until"):
        return parse_iso(doc["reserved_until"])
    if _reserved_before_expiry(doc):
        return parse_iso(doc["reserved_at"]) + timedelta(seconds=settings.current().reserved_expiry_s)
    return parse_iso(doc["expires_at"])


def _reserved_before_expiry(doc: dict) -> bool:
    return (doc["state"] == RESERVED and bool(doc.get("reserved_at"))
            and "answer_by" not in doc and not doc.get("reserved_until"))


def shown_expiry(doc: dict) -> str | None:
    """``expires_at`` as tellers and banks see it (:func:`view`): the bank's deadline, and from a
    reservation on the teller's, as it has been shown since reservations expire — whatever the
    stored ``expires_at`` of the revision that reserved it says."""
    if doc.get("reserved_until"):
        return doc["reserved_until"]
    if _reserved_before_expiry(doc):
        return iso(deadline(doc))
    return doc.get("expires_at")


def expired(doc: dict, at: datetime) -> bool:
    """Whether ``doc`` is open (RECEIVED or RESERVED) past its deadline."""
    return doc["state"] in (RECEIVED, RESERVED) and deadline(doc) <= at


def expired_already(doc: dict) -> bool:
    """Whether ``doc`` was aborted by its expiry: a later step is refused as :class:`.refusals.Expired`."""
    return doc["state"] == ABORTED and doc.get("abort_reason") == "expired"


def view(doc: dict) -> dict:
    """A transfer as callers see it (the customer's ID number masked)."""
    keep = ("id", "kind", "state", "bank", "point", "unit_code", "amount_vnd", "account", "phone", "created_at",
            "expires_at", "reserved_at", "committed_at", "aborted_at", "abort_reason", "bank_reference")
    out = {k: doc.get(k) for k in keep}
    out["expires_at"] = shown_expiry(doc)
    out["customer_id_number"] = mask_id(doc["customer_id_number"])
    out.update(reasons.explained(doc.get("abort_reason")))   # the raw reason stays as given, beside it
    return out


def event_data(doc: dict) -> dict:
    """What IOC events carry: no customer data."""
    return {"transfer_id": doc["id"], "kind": doc["kind"], "state": doc["state"], "bank": doc["bank"],
            "point": doc["point"], "unit_code": doc.get("unit_code"), "amount_vnd": doc["amount_vnd"],
            "abort_reason": doc.get("abort_reason")}
