"""A transfer comes in: created once, then admitted — the daily limit counted and, for a
withdrawal, the cash set aside with a ``hold`` — before anyone else hears of it.

The admitting run holds a fence (``admit_by``): it never appends the hold after that time, and
nobody else declares the transfer unadmitted before ``admit_by`` + :data:`GRACE_S`; after that
the sweep decides from the journal (:func:`decide_unadmitted`). A create with an id already used
is a resend: the same body gets the first answer again, another body a 409 naming the fields
that differ, never their values (:func:`resend`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from lscloud import errors
from lscloud.aggregate import NoChange, save_quietly
from lscloud.resends import IdReused, changed_fields
from lscloud.statemachine import Actor
from lscloud.store import DoesNotExist

from . import banks, journal, ledger, limits, settings, telemetry as tm
from .consequences import bring_about, settle, settle_quietly
from .documents import TRANSFERS, open_key
from .models import OpenTransfer, Transfer
from .refusals import ADMISSION, TransactionLimit, UnknownBank
from .transfers import DEPOSIT, MACHINE, RECEIVED, WITHDRAWAL, iso, local_day, now, parse_iso, view

log = logging.getLogger("softatm.admission")

GRACE_S = 10.0
"""How long past a run's fence the sweep waits before it decides for it."""


class _Taken(errors.Conflict):
    """The id was taken between our read and our create: a concurrent first send."""


def receive(req: dict, point: dict, actor: Actor) -> tuple[dict, bool]:
    """A teller's create (``req`` normalised): checked against the bank's limit, created and admitted
    (or found again); returns (doc, replayed). A transfer refused at admission raises its refusal,
    to the first send and to every resend alike.

    The checks made before the create (the bank is registered, the amount within its per-transaction
    limit) judge a fresh create only: a transfer that exists was judged when it was created, under the
    limits it keeps, and may hold cash; a resend after an operator lowered a limit (or replaced the
    bank) gets that transfer again. What admission judges (daily limit, float) is stored with the
    transfer, so a resend gets that same answer, never a new judgement of today's float."""
    try:
        bank = banks.get(req["bank"])
        limit = int(bank["limits"]["per_transaction_vnd"])
        if req["amount_vnd"] > limit:
            raise TransactionLimit(req["bank"], limit)
    except (TransactionLimit, UnknownBank):
        # only when refusing: the fresh create's path reads nothing before its create-only write
        stored = _stored(req["id"])
        if stored is None:
            raise
        doc, replayed = found_again(stored, point, req), True
    else:
        doc, replayed = create(req, point=point, bank=bank, actor=actor)
    refused = (doc.get("answers") or {}).get("create", {}).get("problem")
    if refused:
        raise ADMISSION[refused](view(doc), replayed=replayed)
    return doc, replayed


def _stored(tid: str) -> dict | None:
    try:
        return Transfer.get(tid).data
    except DoesNotExist:
        return None


def create(req: dict, *, point: dict, bank: dict, actor: Actor) -> tuple[dict, bool]:
    """Create (or find again) the transfer ``req``; returns (doc, replayed). Admission follows.

    Create-only first, no read before it: a resend finds the id taken and reads the first send's
    transfer then. Its open entry, written before (another expiry, another key), is one the
    sweep deletes (:func:`.sweep.sweep`)."""
    tid = req["id"]
    at, cfg = now(), settings.current()
    doc = {**req, "state": "new", "point": point["code"], "unit_code": point.get("unit_code"),
           "created_at": iso(at), "day": local_day(at), "expires_at": iso(at + timedelta(seconds=cfg.expiry_s)),
           "admit_by": iso(at + timedelta(seconds=cfg.admit_window_s)), "admitted": False, "no_hold": False,
           "journal_from": journal.known_end(point["code"]).seq, "notified": None, "requests": {"create": req},
           "answers": {}, "limits": dict(bank["limits"]), "reserved_at": None, "committed_at": None,
           "aborted_at": None, "abort_reason": None, "bank_reference": None}
    received = MACHINE.apply(doc, "receive", actor, at=at)
    save_quietly(OpenTransfer("open", open_key(doc), transfer_id=tid))   # first: the sweep finds it whatever happens
    try:
        created = TRANSFERS.create(Transfer(tid, data=doc), [received], conflict=_Taken())
    except _Taken:
        return found_again(Transfer.get(tid).data, point, req), True
    tm.transfer(doc["kind"], "created")
    return admit(tid, created.item), False


def found_again(stored: dict, point: dict, req: dict) -> dict:
    """The transfer a create's id already names, for a resend of the same body from the same point."""
    if stored["point"] != point["code"]:
        # before any comparison: which fields differ from another point's customer would tell a
        # teller whether a guessed CCCD, account or phone is theirs
        raise IdReused(["/id"], key=stored["id"], detail="This id belongs to a transfer at another point.",
                       message="used by a transfer at another point",
                       message_vi="đã được dùng cho giao dịch ở điểm khác")
    return resend(stored, "create", req)


def resend(doc: dict, action: str, req: dict) -> dict:
    """The transfer again for a resend of ``action``; another body is refused naming fields, never values
    (the first request may be another teller's customer)."""
    diff = changed_fields(doc["requests"].get(action), req)
    if diff:
        raise IdReused(diff, key=doc["id"])
    return doc


def admit(tid: str, item: Transfer | None = None) -> dict:
    """Count the daily limit and set the cash aside (withdrawals), within the admission fence.

    ``item``: the transfer as its create just stored it (saves reading it again)."""
    item = item if item is not None else Transfer.get(tid)
    doc = item.data
    if doc["admitted"] or doc["state"] != RECEIVED:
        return settle(tid, item)
    if now() > parse_iso(doc["admit_by"]):
        return settle(tid, item)  # too late for us: the sweep decides from the journal
    reason = None if limits.count(doc) else "daily-limit"
    if reason is None and doc["kind"] == WITHDRAWAL:
        if now() > parse_iso(doc["admit_by"]):
            return settle(tid)
        try:
            journal.move("hold", doc["point"], doc["amount_vnd"], ref=tid, bank=doc["bank"],
                         since_seq=doc["journal_from"])
        except ledger.Insufficient as exc:
            reason = "insufficient-float"
            log.info("withdrawal %s refused: %s", tid, exc)
    if reason is None:
        # no settle after it: the admission records its consequences done, or (the store failed
        # them) a settle now would only repeat at once what just failed, the event included, and a
        # read or the sweep settles it after SETTLE_GRACE_S
        return _mark_admitted(doc, item, notified=_announce(doc)).data
    return settle_quietly(tid, _refuse(tid, reason, item))


def _announce(doc: dict) -> str | None:
    """Bring about what an admitted RECEIVED transfer implies (the hold is there already: the day
    index, then the event the bank hears) before the admission is written, so that one write records
    both; RECEIVED if done, None if not (the store failed: the sweep or a read settles it later).
    NATS down does not fail it: its event waits in the outbox (:func:`.documents.publish`).

    The hold (withdrawals) or the daily count (deposits) is what admits a transfer; until the write
    lands, a bank that already heard finds it admitted by them (:func:`admitted_by_records`)."""
    try:
        bring_about({**doc, "admitted": True})
    except errors.DomainError:
        raise
    except Exception:  # noqa: BLE001 - the admission still stands; its consequences wait for a settle
        log.warning("consequences of admitting %s failed; a settle will finish them", doc["id"], exc_info=True)
        return None
    return RECEIVED


def admitted_by_records(doc: dict) -> bool:
    """Whether an admission whose run has not written it yet has happened: the withdrawal's hold is
    in the journal, or the deposit is in its day's counter (all a deposit's admission does)."""
    if doc["kind"] == WITHDRAWAL:
        return journal.holds(doc["point"], f"{doc['id']}:hold", doc["journal_from"])
    return limits.counted(doc)


def decide_unadmitted(doc: dict) -> None:
    """After the fence: the journal says whether the hold happened (withdrawals); decide accordingly."""
    held = doc["kind"] == DEPOSIT
    if doc["kind"] == WITHDRAWAL:
        held = ledger.find(journal.JOURNAL, doc["point"], f"{doc['id']}:hold", doc["journal_from"],
                           journal.head(doc["point"])) is not None
    if held:
        limits.count(doc)
        _mark_admitted(doc)
    else:
        _refuse(doc["id"], "not-admitted")
    settle(doc["id"])


def _mark_admitted(doc: dict, item: Transfer | None = None, notified: str | None = None) -> Transfer:
    """Record the admission (and ``notified``, when its consequences are done already); the transfer
    as written (``item``: as last read, to save a read). The day index is the settle's."""
    def mark(d):
        if d["state"] != RECEIVED or d["admitted"]:
            raise NoChange
        d["admitted"] = True
        if notified is not None:
            d["notified"] = notified
        return [], True

    return TRANSFERS.mutate(doc["id"], mark, item=item).item


def _refuse(tid: str, reason: str, item: Transfer | None = None) -> Transfer:
    def refuse(d):
        if d["state"] != RECEIVED or d["admitted"]:
            raise NoChange
        at = now()
        t = MACHINE.apply(d, "refuse", MACHINE.system, at=at, reason=reason)
        d.update(aborted_at=iso(at), abort_reason=reason, no_hold=True)
        d["answers"]["create"] = {"problem": reason}
        return [t]

    return TRANSFERS.mutate(tid, refuse, item=item).item
